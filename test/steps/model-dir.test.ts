// Steps 2, 3, 4, 6, 8 and 9 on a Hugging Face checkpoint given with --model (the tiny fixture):
// each `--step N --model DIR` run works on its own (running the steps it needs first), skips the
// toy-model steps, and writes artefacts about that checkpoint.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const ROOT = resolve(import.meta.dirname, '../..');
const MODEL = resolve(ROOT, '../shared/fixtures/hf-mamba/tiny/model');
const tmp = mkdtempSync(join(tmpdir(), 'mi-model-dir-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): { code: number; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'steps/run.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_V8_COVERAGE: '' },
  });
  return { code: r.status ?? -1, out: `${r.stdout}\n${r.stderr}` };
}

const dirOf = (runDir: string, id: number) => {
  const names: Record<number, string> = { 2: 'collect', 3: 'sae', 4: 'probes', 6: 'patching', 8: 'temporal', 9: 'dynamics' };
  return join(runDir, `step-${String(id).padStart(2, '0')}-${names[id]}`);
};

for (const id of [2, 3, 4, 6, 8, 9]) {
  test(`--step ${id} --model <tiny fixture> works on the checkpoint`, () => {
    const runDir = join(tmp, `run-${id}`);
    const r = run(['--step', String(id), '--model', MODEL, '--quick', '--backend', 'cpu', '--out', runDir]);
    assert.is(r.code, 0, r.out.slice(-3000));
    const dir = dirOf(runDir, id);
    assert.ok(existsSync(join(dir, 'done.json')), `step ${id} finished`);
    assert.not.ok(existsSync(join(runDir, 'step-01-train')), 'no toy models were trained');
    const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
    assert.is(report.step, id);
    assert.ok(report.summary.length > 0, 'a summary');
    const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
    assert.is(config.model, MODEL);
    // the artefacts name the checkpoint's model, not a toy task model
    const text = JSON.stringify(report);
    assert.not.match(text, /induction-s1|selective-copying-s0|mqar-s0/, 'toy models named in the report');
  });
}

test.run();
