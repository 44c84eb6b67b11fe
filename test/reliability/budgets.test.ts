// Resource and numerical guards of steps/run.ts (issue 17), each in a child process with a heap cap
// and a harness timeout: a config whose buffers would exceed the memory budget is one error line
// before anything is written (steps/budget.ts), and a model whose activations overflow to NaN fails
// step 2 naming the shard tensor, leaving the finished step 2 byte-identical (steps/finite.ts).
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openSafetensors, writeSafetensors } from '../../mamba/safetensors.ts';
import { COLLECT_DIR, loadCollections, TRAIN_DIR } from '../../steps/artefacts.ts';
import { hashTree } from '../helpers/hash-tree.ts';
import { quickRun } from '../helpers/quick-run.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const tmp = mkdtempSync(join(tmpdir(), 'mi-budgets-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));

/** steps/run.ts in a child with a 512 MB heap: the one line of stderr and the exit code. */
function run(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      ['--max-old-space-size=512', '--import', 'tsx', join(ROOT, 'steps/run.ts'), ...args],
      { cwd: ROOT, timeout: 120_000, env: { ...process.env, MI_DEBUG: '', NODE_V8_COVERAGE: '' } },
      (e, _out, stderr) => res({ code: e ? ((e as { code?: number }).code ?? null) : 0, stderr }),
    );
  });
}

function oneErrorLine(r: { code: number | null; stderr: string }, want: RegExp): void {
  assert.is(r.code, 1, r.stderr);
  // progress bars (steps/progress.ts) also go to stderr; besides them, one line
  const lines = r.stderr
    .split(/[\r\n]+/)
    .filter((l) => l.trim())
    .filter((l) => !/^\s+.*\[[#.]+\] \d+\/\d+$/.test(l));
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0], /^error: /);
  assert.match(lines[0], want);
}

test('a config over the memory budget is one line naming the fields and bytes, and nothing is written', async () => {
  const cfg = join(tmp, 'big.json');
  writeFileSync(cfg, JSON.stringify({ collect: { batches: 65536, batchSize: 65536 } }));
  const runDir = join(tmp, 'big-run');
  mkdirSync(runDir);
  writeFileSync(join(runDir, 'keep.txt'), 'before');
  const before = hashTree(runDir);
  const r = await run(['--all', '--quick', '--backend', 'cpu', '--config', cfg, '--out', runDir]);
  oneErrorLine(
    r,
    /^error: collect\.batches 65536 x collect\.batchSize 65536 x sae\.latentsMultiplier 2: step 3 would hold at least [\d.]+ TB for .* \(budget [\d.]+ [kMGT]?B, half of RAM\)$/,
  );
  assert.equal(hashTree(runDir), before);
});

test('NaN activations fail step 2 naming the shard tensor, and the finished step 2 stays as it was', async () => {
  const dir = join(tmp, 'nan-run');
  cpSync(await quickRun(), dir, { recursive: true });
  // finite weights whose products overflow: every in_proj weight of one studied model at +-3e38,
  // so the loader's finite-weight check passes and the forward pass meets Inf - Inf
  const label = loadCollections(dir)[0].dir.split('/').pop()!;
  const ckpt = join(dir, TRAIN_DIR, 'models', label, 'model.safetensors');
  const f = await openSafetensors(ckpt);
  const tensors = [];
  for (const name of f.names) {
    const t = await f.read(name);
    if (name.includes('in_proj')) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i] < 0 ? -3e38 : 3e38;
    tensors.push({ name, dtype: t.dtype as 'F32', shape: t.shape, data: t.data });
  }
  await f.close();
  await writeSafetensors(ckpt, tensors);
  const before = hashTree(join(dir, COLLECT_DIR));
  // one more sequence a batch: step 2's hash changes, so it reruns (a larger config is no shrink)
  const cfg = join(tmp, 'b17.json');
  writeFileSync(cfg, JSON.stringify({ collect: { batchSize: 17 } }));
  const r = await run(['--step', '2', '--quick', '--backend', 'cpu', '--config', cfg, '--out', dir]);
  oneErrorLine(
    r,
    new RegExp(
      `^error: step 2 \\(collect\\) failed: acts/${label}/blocks\\.0\\.\\w+\\.0\\.safetensors: tensor "acts" holds (NaN|-?Infinity) at flat index \\d+ \\(of shape \\[\\d+,\\d+\\]\\)$`,
    ),
  );
  assert.equal(hashTree(join(dir, COLLECT_DIR)), before);
});

test.run();
