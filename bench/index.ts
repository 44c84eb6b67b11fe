// Runs every benchmark file in bench/ (each *.ts here except this one), one child process each so
// that one file's JIT state and memory do not colour the next one's numbers. Arguments are passed
// through: --quick for fewer sizes and iterations, --write to update bench/RESULTS.md.
//   npm run bench [-- --quick] [-- --write] [-- NAME...]   (NAME: only the bench files whose name contains it)
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { reportErrorsAsOneLine, UsageError } from '../steps/cli-main.ts';

reportErrorsAsOneLine(); // a failure is one line `error: ...`, exit 1 (2 for a bad flag)

const here = fileURLToPath(new URL('.', import.meta.url));
const self = basename(fileURLToPath(import.meta.url));
const { values, positionals: only } = parseArgs({
  options: { quick: { type: 'boolean' }, write: { type: 'boolean' } },
  allowPositionals: true,
});
const files = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && f !== self && !f.endsWith('.d.ts'))
  // bench/peers.ts needs PyTorch installed (../shared/peers/README.md): run it by hand
  .filter((f) => f !== 'peers.ts')
  .filter((f) => !only.length || only.some((o) => f.includes(o)))
  .sort();
if (!files.length) {
  throw new UsageError(`bench: no bench files match ${only.join(' ')}`);
}

const flags = [...(values.quick ? ['--quick'] : []), ...(values.write ? ['--write'] : [])];
let failed = 0;
for (const f of files) {
  console.log(`\n=== bench/${f} ${flags.join(' ')}`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(here, f), ...flags], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed++;
    console.error(`bench/${f} exited with ${r.status ?? r.signal}`);
  }
}
if (failed) process.exitCode = 1;
