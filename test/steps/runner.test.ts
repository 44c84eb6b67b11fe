// The step runner (steps/run.ts, steps/runner.ts): MI_BACKEND picks the backend and a bad one
// writes nothing; finished steps are cached; the quick run finishes every step; --model runs the
// steps that apply on a Hugging Face checkpoint.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { quickRun } from '../helpers/quick-run.ts';

const ROOT = resolve(import.meta.dirname, '../..');

function runCli(args: string[], env: Record<string, string> = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'steps/run.ts'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_V8_COVERAGE: '', ...env },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), 'mi-runner-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
const runDir = join(tmp, 'run');

test('step 0 runs, writes the full config, and is cached on a second run', () => {
  const first = runCli(['--step', '0', '--quick', '--backend', 'cpu', '--out', runDir]);
  assert.is(first.code, 0, first.stderr);
  const config = JSON.parse(readFileSync(join(runDir, 'config.json'), 'utf8'));
  for (const key of [
    'seed',
    'backend',
    'tasks',
    'train',
    'collect',
    'sae',
    'probes',
    'circuit',
    'patching',
    'perturb',
    'temporal',
    'dynamics',
    'scale',
  ]) {
    assert.ok(key in config, `config.json has ${key}`);
  }
  const setup = JSON.parse(readFileSync(join(runDir, 'step-00-setup', 'setup.json'), 'utf8'));
  assert.is(setup.seed, config.seed);
  assert.match(setup.backend.description, /cpu/);
  const second = runCli(['--step', '0', '--quick', '--backend', 'cpu', '--out', runDir]);
  assert.is(second.code, 0);
  assert.match(second.stdout, /cached/);
});

// Misuse of the CLI (flags, config fields, --model folders, --out paths) against a finished run:
// test/reliability/runs.test.ts.

test('MI_BACKEND chooses the backend when --backend is not given; a bad value is an error naming it', () => {
  const out = join(tmp, 'env-backend');
  const ok = runCli(['--step', '0', '--quick', '--out', out], { MI_BACKEND: 'cpu' });
  assert.is(ok.code, 0, ok.stderr);
  assert.is(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).backend, 'cpu');
  const bad = runCli(['--step', '0', '--quick', '--out', join(tmp, 'env-bad')], { MI_BACKEND: 'foo' });
  assert.is.not(bad.code, 0);
  assert.match(bad.stderr, /backend must be auto, cpu or webgpu, got "foo" \(from MI_BACKEND\)/);
  assert.not.ok(existsSync(join(tmp, 'env-bad', 'config.json')), 'nothing written');
  // --backend wins over the environment
  const flag = runCli(['--step', '0', '--quick', '--backend', 'cpu', '--out', join(tmp, 'env-flag')], { MI_BACKEND: 'foo' });
  assert.is(flag.code, 0, flag.stderr);
});

test('the quick run completes every step, each with a report', async () => {
  const dir = await quickRun();
  const steps = readdirSync(dir).filter((d) => /^step-\d\d-/.test(d) && !d.endsWith('.partial'));
  const ids = steps.map((d) => Number(d.slice(5, 7))).sort((a, b) => a - b);
  assert.equal(
    ids,
    Array.from({ length: 15 }, (_, i) => i),
    `steps present: ${ids.join(',')}`,
  );
  for (const d of steps) {
    const done = JSON.parse(readFileSync(join(dir, d, 'done.json'), 'utf8'));
    assert.type(done.summary, 'string');
    assert.ok(done.seconds >= 0);
    if (d !== 'step-12-report') assert.ok(existsSync(join(dir, d, 'report.json')), `${d} has report.json`);
  }
});

// Steps 2, 3, 4, 6, 8 and 9 on a Hugging Face checkpoint given with --model (the tiny fixture):
// each `--step N --model DIR` run works on its own (running the steps it needs first), skips the
// toy-model steps, and writes artefacts about that checkpoint.
const MODEL = resolve(ROOT, '../shared/fixtures/hf-mamba/tiny/model');

const dirOf = (runDir: string, id: number) => {
  const names: Record<number, string> = { 2: 'collect', 3: 'sae', 4: 'probes', 6: 'patching', 8: 'temporal', 9: 'dynamics' };
  return join(runDir, `step-${String(id).padStart(2, '0')}-${names[id]}`);
};

for (const id of [2, 3, 4, 6, 8, 9]) {
  test(`--step ${id} --model <tiny fixture> works on the checkpoint`, () => {
    const runDir = join(tmp, `model-run-${id}`);
    const r = runCli(['--step', String(id), '--model', MODEL, '--quick', '--backend', 'cpu', '--out', runDir]);
    const out = `${r.stdout}\n${r.stderr}`;
    assert.is(r.code, 0, out.slice(-3000));
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
