// npm run parity -- --model DIR --golden FILE [--backend cpu|webgpu] [--only SUBSTR,...]
// Compares this project's Mamba with Hugging Face's on a golden file: one row per tensor; exits 1
// if any check fails or the file holds a tensor nothing here computes. A bad checkpoint, golden
// file or flag is one line `error: ...` (steps/cli-main.ts), exit 1 (2 for a bad flag).
import { parseArgs } from 'node:util';
import { initBackend } from '../engine/index.ts';
import { checkParity, formatRows } from '../mamba/parity.ts';
import { runMain, UsageError } from '../steps/cli-main.ts';

const USAGE =
  'usage: npm run parity -- --model DIR --golden FILE [--backend cpu|webgpu] [--only SUBSTR,...] [--rel-tol X] [--allow-non-finite]';

await runMain(async () => {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' },
      golden: { type: 'string' },
      backend: { type: 'string', default: 'cpu' },
      only: { type: 'string' },
      'rel-tol': { type: 'string' },
      'allow-non-finite': { type: 'boolean' },
    },
  });
  if (!values.model || !values.golden) throw new UsageError(`parity: --model and --golden are required (${USAGE})`);
  if (values.backend !== 'cpu' && values.backend !== 'webgpu') {
    throw new UsageError(`parity: --backend must be cpu or webgpu, got '${values.backend}'`);
  }
  const relTol = values['rel-tol'] === undefined ? undefined : Number(values['rel-tol']);
  if (relTol !== undefined && !(relTol > 0 && Number.isFinite(relTol))) {
    throw new UsageError(`parity: --rel-tol must be a positive number, got '${values['rel-tol']}'`);
  }
  const backend = await initBackend(values.backend);
  console.log(`parity: ${values.model} against ${values.golden} on ${backend.description}`);
  const rows = await checkParity(values.model, values.golden, {
    backend,
    only: values.only?.split(','),
    relTol,
    allowNonFinite: values['allow-non-finite'],
  });
  console.log(formatRows(rows));
  const failed = rows.filter((r) => !r.ok);
  console.log(
    `${rows.length - failed.length}/${rows.length} ok${backend.name === 'cpu' ? '' : ' (f64.* goldens checked with the float32 model)'}`,
  );
  return failed.length ? 1 : 0;
});
