// npm run parity -- --model DIR --golden FILE [--backend cpu|webgpu] [--only SUBSTR,...]
// Compares this project's Mamba with Hugging Face's on a golden file: one row per tensor; exits 1
// if any check fails or the file holds a tensor nothing here computes.
import { parseArgs } from 'node:util';
import { initBackend } from '../engine/index.ts';
import { checkParity, formatRows } from '../mamba/parity.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    golden: { type: 'string' },
    backend: { type: 'string', default: 'cpu' },
    only: { type: 'string' },
    'rel-tol': { type: 'string' },
  },
});
if (!values.model || !values.golden) {
  console.error('usage: npm run parity -- --model DIR --golden FILE [--backend cpu|webgpu] [--only SUBSTR,...] [--rel-tol X]');
  process.exit(2);
}
if (values.backend !== 'cpu' && values.backend !== 'webgpu') {
  console.error(`parity: --backend must be cpu or webgpu, got '${values.backend}'`);
  process.exit(2);
}
const backend = await initBackend(values.backend);
console.log(`parity: ${values.model} against ${values.golden} on ${backend.description}`);
const rows = await checkParity(values.model, values.golden, {
  backend,
  only: values.only?.split(','),
  relTol: values['rel-tol'] ? Number(values['rel-tol']) : undefined,
});
console.log(formatRows(rows));
const failed = rows.filter((r) => !r.ok);
console.log(
  `${rows.length - failed.length}/${rows.length} ok${backend.name === 'cpu' ? '' : ' (f64.* goldens checked with the float32 model)'}`,
);
process.exit(failed.length ? 1 : 0);
