// The step runner (steps/run.ts, steps/runner.ts): bad input gives one clear error line and a
// non-zero exit without touching existing results; finished steps are cached; the quick run
// finishes every step; --model runs the steps that apply on a Hugging Face checkpoint.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

/** Every file under dir with its size and mtime, to show nothing was touched. */
function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else out.push(`${p} ${s.size} ${s.mtimeMs}`);
    }
  };
  walk(dir);
  return out.join('\n');
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

const bad: [string, string[], RegExp][] = [
  ['an unknown step number', ['--step', '99'], /unknown step "99"/],
  ['a step that is a space', ['--step', ' '], /unknown step " "/],
  ['a step in hex', ['--step', '0x2'], /unknown step "0x2"/],
  ['--all with --step', ['--all', '--step', '2'], /--all and --step ask for different steps; give one/],
  ['--step with --from', ['--step', '2', '--from', '3'], /--step and --from ask for different steps/],
  ['an unreadable config', ['--all', '--config', join(tmp, 'missing.json')], /missing\.json: cannot read/],
  ['a config that is not JSON', ['--all', '--config', 'BADJSON'], /not valid JSON/],
  ['a config field of the wrong type', ['--all', '--config', 'BADTYPE'], /"train\.steps" must be number, got string/],
  ['an unknown config field', ['--all', '--config', 'UNKNOWN'], /unknown config field "train\.stepz"/],
  ['a --model folder without a checkpoint', ['--all', '--model', 'EMPTYMODEL'], /--model .*config\.json: cannot read/],
  ['a --model folder whose config has no weights', ['--all', '--model', 'NOWEIGHTS'], /no model\.safetensors/],
  ['an unknown flag', ['--frobnicate'], /unknown argument "--frobnicate"/],
  [
    'no seeds (would replace the trained models with nothing)',
    ['--all', '--config', 'NOSEEDS'],
    /"train\.seeds" must be an integer in \[1, 1000\], got 0/,
  ],
  ['no tasks', ['--all', '--config', 'NOTASKS'], /"tasks" must be a non-empty list of tasks, got \[\]/],
  ['an unknown task', ['--all', '--config', 'BADTASK'], /"tasks" must be tasks among .*induction.*, got "sorting"/],
  ['a negative hidden size', ['--all', '--config', 'NEGHIDDEN'], /"train\.hiddenSize" must be an integer in \[1, 65536\], got -32/],
  ['a fractional layer count', ['--all', '--config', 'HALFLAYER'], /"train\.layers" must be an integer .*, got 1\.5/],
  ['an unknown SAE kind', ['--all', '--config', 'BADSAE'], /"sae\.kinds" must be kinds among relu, topk, got "gated"/],
  [
    'permutations past the cap',
    ['--all', '--config', 'MANYPERMS'],
    /"permutations" must be an integer in \[1, 10000000\], got 1000000000000/,
  ],
  ['an unknown preset', ['--all', '--preset', 'huge'], /--preset: unknown preset "huge" \(presets: quick, paper, text, text-quick\)/],
  ['two presets', ['--all', '--quick', '--preset', 'paper'], /--quick and --preset paper ask for two presets/],
];

test('bad input: one clear error line, exit non-zero, existing results untouched', () => {
  writeFileSync(join(tmp, 'bad.json'), '{ "train": ');
  writeFileSync(join(tmp, 'type.json'), JSON.stringify({ train: { steps: 'many' } }));
  writeFileSync(join(tmp, 'unknown.json'), JSON.stringify({ train: { stepz: 3 } }));
  mkdirSync(join(tmp, 'empty-model'), { recursive: true });
  mkdirSync(join(tmp, 'no-weights'), { recursive: true });
  writeFileSync(
    join(tmp, 'no-weights', 'config.json'),
    JSON.stringify({ vocab_size: 16, hidden_size: 8, num_hidden_layers: 1, state_size: 4 }),
  );
  const configs: Record<string, unknown> = {
    NOSEEDS: { train: { seeds: 0 } },
    NOTASKS: { tasks: [] },
    BADTASK: { tasks: ['sorting'] },
    NEGHIDDEN: { train: { hiddenSize: -32 } },
    HALFLAYER: { train: { layers: 1.5 } },
    BADSAE: { sae: { kinds: ['gated'] } },
    MANYPERMS: { permutations: 1e12 },
  };
  for (const [k, v] of Object.entries(configs)) writeFileSync(join(tmp, `${k}.json`), JSON.stringify(v));
  const subst: Record<string, string> = {
    ...Object.fromEntries(Object.keys(configs).map((k) => [k, join(tmp, `${k}.json`)])),
    BADJSON: join(tmp, 'bad.json'),
    BADTYPE: join(tmp, 'type.json'),
    UNKNOWN: join(tmp, 'unknown.json'),
    EMPTYMODEL: join(tmp, 'empty-model'),
    NOWEIGHTS: join(tmp, 'no-weights'),
  };
  assert.ok(existsSync(runDir), 'the first test made a run directory');
  const before = snapshot(runDir);
  for (const [what, args, pattern] of bad) {
    const r = runCli([...args.map((a) => subst[a] ?? a), '--out', runDir]);
    assert.is.not(r.code, 0, `${what}: exit code`);
    const lines = r.stderr.trim().split('\n');
    assert.is(lines.length, 1, `${what}: one error line, got:\n${r.stderr}`);
    assert.match(lines[0], /^error: /, what);
    assert.match(lines[0], pattern, what);
  }
  assert.is(snapshot(runDir), before, 'no file of the run directory changed');
});

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
