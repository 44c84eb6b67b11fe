// steps/run.ts misuse (issue 17), as a careless user would try it: bad flags, bad --config
// contents, bad --model folders, a shrinking config and bad --out paths, all aimed at a copy of a
// finished quick run. Each case runs in a child process with a heap cap and a harness timeout, and
// must exit with its code (2 for a command-line usage error, 1 otherwise) and one line
// `error: ...` naming the flag, field or path, with no stack trace; afterwards the finished run is
// byte for byte as it was.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { hashTree } from '../helpers/hash-tree.ts';
import { quickRun } from '../helpers/quick-run.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const HEAP_MB = 512;
const TIMEOUT_MS = 60_000;
/** Children at a time: the machines running CI have 2 cores. */
const PARALLEL = 3;

interface Outcome {
  code: number | null;
  stderr: string;
  killed: boolean;
}

function run(args: string[], env: Record<string, string>): Promise<Outcome> {
  return new Promise((res) => {
    execFile(
      process.execPath,
      [`--max-old-space-size=${HEAP_MB}`, '--import', 'tsx', 'steps/run.ts', ...args],
      { cwd: ROOT, timeout: TIMEOUT_MS, env: { ...process.env, NODE_V8_COVERAGE: '', MI_DEBUG: '', ...env } },
      (e, _out, stderr) => {
        const err = e as (Error & { code?: number; killed?: boolean }) | null;
        res({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stderr, killed: !!err?.killed });
      },
    );
  });
}

const tmp = mkdtempSync(join(tmpdir(), 'mi-runs-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));
const dir = join(tmp, 'run');

/** A --config file holding `value`, by name. */
function cfg(name: string, value: unknown): string {
  const p = join(tmp, `${name}.json`);
  writeFileSync(p, typeof value === 'string' ? value : JSON.stringify(value));
  return p;
}

// [what, args (the run directory is added as --out unless the case gives one), exit code, line, env]
type Case = [string, string[], 1 | 2, RegExp, Record<string, string>?];
function cases(): Case[] {
  mkdirSync(join(tmp, 'empty-model'), { recursive: true });
  mkdirSync(join(tmp, 'no-weights'), { recursive: true });
  writeFileSync(
    join(tmp, 'no-weights', 'config.json'),
    JSON.stringify({ vocab_size: 16, hidden_size: 8, num_hidden_layers: 1, state_size: 4 }),
  );
  const all = (file: string) => ['--all', '--quick', '--backend', 'cpu', '--config', file];
  return [
    // the command line
    ['an unknown step number', ['--step', '99'], 2, /unknown step "99"/],
    ['an empty step', ['--step', ''], 2, /--step needs a value/],
    ['a step that is a space', ['--step', ' '], 2, /unknown step " "/],
    ['a step in hex', ['--step', '0x2'], 2, /unknown step "0x2"/],
    ['--all with --step', ['--all', '--step', '2'], 2, /--all and --step ask for different steps; give one/],
    ['--step with --from', ['--step', '2', '--from', '3'], 2, /--step and --from ask for different steps/],
    ['an unknown flag', ['--frobnicate'], 2, /unknown argument "--frobnicate"/],
    ['an unknown preset', ['--all', '--preset', 'huge'], 2, /--preset: unknown preset "huge"/],
    ['two presets', ['--all', '--quick', '--preset', 'paper'], 2, /--quick and --preset paper ask for two presets/],
    ['an empty --backend', ['--step', '0', '--quick', '--backend', ''], 2, /--backend needs a value/],
    ['an unknown --backend', ['--step', '0', '--quick', '--backend', 'tpu'], 1, /backend must be auto, cpu or webgpu, got "tpu"/],
    ['an unknown MI_BACKEND', ['--step', '0', '--quick'], 1, /got "foo" \(from MI_BACKEND\)/, { MI_BACKEND: 'foo' }],
    // --config files and their fields
    ['an unreadable config', all(join(tmp, 'missing.json')), 1, /missing\.json: cannot read/],
    ['a config that is not JSON', all(cfg('bad', '{ "train": ')), 1, /bad\.json.*not valid JSON/],
    ['a field of the wrong type', all(cfg('type', { train: { steps: 'many' } })), 1, /"train\.steps" must be number, got string/],
    ['an unknown field', all(cfg('unknown', { train: { stepz: 3 } })), 1, /unknown config field "train\.stepz"/],
    ['no seeds', all(cfg('seeds0', { train: { seeds: 0 } })), 1, /"train\.seeds" must be an integer in \[1, 1000\], got 0/],
    ['no tasks', all(cfg('notasks', { tasks: [] })), 1, /"tasks" must be a non-empty list of tasks, got \[\]/],
    ['an unknown task', all(cfg('badtask', { tasks: ['sorting'] })), 1, /"tasks" must be tasks among .*, got "sorting"/],
    ['a negative hidden size', all(cfg('neg', { train: { hiddenSize: -32 } })), 1, /"train\.hiddenSize" must be an integer .*got -32/],
    ['a huge hidden size', all(cfg('huge', { train: { hiddenSize: 1e9 } })), 1, /"train\.hiddenSize" must be an integer .*got 1000000000/],
    ['a fractional layer count', all(cfg('half', { train: { layers: 1.5 } })), 1, /"train\.layers" must be an integer .*got 1\.5/],
    ['negative collect batches', all(cfg('batches', { collect: { batches: -1 } })), 1, /"collect\.batches" must be an integer .*got -1/],
    ['an unknown SAE kind', all(cfg('sae', { sae: { kinds: ['gated'] } })), 1, /"sae\.kinds" must be kinds among relu, topk, got "gated"/],
    ['permutations past the cap', all(cfg('perms', { permutations: 1e12 })), 1, /"permutations" must be an integer in \[1, 10000000\]/],
    ['a fractional seed', all(cfg('seed', { seed: 1.5 })), 1, /"seed" must be an integer .*got 1\.5/],
    ['negative workers', all(cfg('workers', { train: { workers: -1 } })), 1, /"train\.workers" must be an integer .*got -1/],
    // --model folders (malformed checkpoints themselves: checkpoints.test.ts)
    ['a --model folder without a checkpoint', ['--all', '--model', join(tmp, 'empty-model')], 1, /--model .*config\.json: cannot read/],
    ['a --model config without weights', ['--all', '--model', join(tmp, 'no-weights')], 1, /no model\.safetensors/],
    // a finished run is not shrunk without --force
    [
      'fewer seeds',
      ['--step', '1', '--quick', '--backend', 'cpu', '--config', cfg('s1', { train: { seeds: 1 } })],
      1,
      /train\.seeds would shrink/,
    ],
    [
      'fewer tasks',
      ['--step', '1', '--quick', '--backend', 'cpu', '--config', cfg('t1', { tasks: ['induction'] })],
      1,
      /tasks would shrink \(without selective-copying, mqar\)/,
    ],
    [
      'fewer collected batches',
      ['--step', '2', '--quick', '--backend', 'cpu', '--config', cfg('b1', { collect: { batches: 1 } })],
      1,
      /step 2 \(collect\).*collect\.batches would shrink/,
    ],
    // --out paths the run cannot use
    ['--out under /proc', ['--step', '0', '--quick', '--out', '/proc/x'], 1, /--out \/proc\/x: cannot write in \/proc/],
    ['--out under a file', ['--step', '0', '--quick', '--out', join(dir, 'config.json', 'x')], 1, /config\.json is a file/],
    ['an empty --out', ['--step', '0', '--quick', '--out', ''], 2, /--out needs a value/],
  ];
}

test('every misuse of steps/run.ts is one error line naming the thing, and a finished run is left as it was', async () => {
  cpSync(await quickRun(), dir, { recursive: true });
  const before = hashTree(dir);
  const all = cases();
  for (let i = 0; i < all.length; i += PARALLEL) {
    const batch = all.slice(i, i + PARALLEL);
    const outcomes = await Promise.all(
      batch.map(([, args, , , env]) => run(args.includes('--out') ? args : [...args, '--out', dir], env ?? {})),
    );
    outcomes.forEach((r, j) => {
      const [what, , code, line] = batch[j];
      assert.not.ok(r.killed, `${what}: still running after ${TIMEOUT_MS / 1000} s`);
      assert.is(r.code, code, `${what}: exit ${r.code}, want ${code}\n${r.stderr}`);
      const lines = r.stderr.trim().split('\n');
      assert.is(lines.length, 1, `${what}: one line, got\n${r.stderr}`);
      assert.match(lines[0], /^error: /, what);
      assert.match(lines[0], line, `${what}: ${lines[0]}`);
      assert.not.match(r.stderr, /\n\s+at /, `${what}: a stack trace`);
    });
  }
  assert.equal(hashTree(dir), before, 'the finished run directory changed');
});

test.run();
