// Malformed checkpoints, config.json files and golden files, generated here (test/helpers/
// malformed-checkpoints.ts), through the entry points a user meets: the library's loadPretrained,
// `scripts/parity.ts` (npm run parity) and `steps/run.ts --step 2 --model`. Each runs in a child
// process with a heap cap and a harness timeout; each must exit 1 with one line `error: ...`
// naming the file, tensor or field, and no stack trace; steps/run.ts must leave a finished run
// directory byte for byte as it was.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { goldenPath, modelDir } from '../helpers/hf-fixture.ts';
import { buildCase, layout, malformedCases, rawSafetensors, type MalformedCase } from '../helpers/malformed-checkpoints.ts';
import { withTempDir } from '../helpers/temp-dir.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const HEAP_MB = 256; // the tiny fixture loads in a few MB; a 1e9-layer config must fail long before
const TIMEOUT_MS = 60_000; // a bound for a hang, not a speed requirement
const PARALLEL = 4; // children at once: tsx startup is CPU-bound and the machine is shared

interface Outcome {
  code: number | null;
  stderr: string;
  timedOut: boolean;
}

function runChild(args: string[]): Promise<Outcome> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [`--max-old-space-size=${HEAP_MB}`, '--import', 'tsx', ...args], {
      cwd: ROOT,
      env: { ...process.env, MI_DEBUG: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code, stderr, timedOut });
    });
  });
}

/** Runs `jobs` PARALLEL at a time, results in order. */
async function inBatches<T>(jobs: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      out[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return out;
}

/** Exit 1, one stderr line `error: ...` matching `expect`, no stack frames, in time. */
function assertOneLineError(o: Outcome, expect: RegExp, what: string): void {
  assert.not.ok(o.timedOut, `${what}: killed after ${TIMEOUT_MS} ms`);
  const lines = o.stderr.split('\n').filter((l) => l.trim());
  assert.not.ok(
    lines.some((l) => /^\s+at /.test(l)),
    `${what}: a stack trace\n${o.stderr}`,
  );
  assert.is(lines.length, 1, `${what}: ${lines.length} stderr lines\n${o.stderr}`);
  assert.match(lines[0], /^error: /, `${what}: ${lines[0]}`);
  assert.match(lines[0], expect, `${what}: ${lines[0]}`);
  assert.is(o.code, 1, `${what}: exit code ${o.code}\n${o.stderr}`);
}

/** Every file under `dir` (relative path) with its bytes. */
function snapshot(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(relative(dir, p), readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

const cases = malformedCases();

test(
  `${cases.length} malformed checkpoints through loadPretrained and npm run parity, each in a capped child process`,
  withTempDir('mi-reliability-', async (root) => {
    assert.ok(cases.length >= 40, `${cases.length} cases`);
    const dirs = cases.map((c, i) => buildCase(root, i, c));
    const golden = goldenPath('tiny');
    // Every case through the library; every other one through the parity CLI as well (it loads
    // with loadPretrained too: what it adds is its own error path, which half the cases show).
    const jobs = cases.flatMap((c, i) => [
      async () => ({ c, what: `loadPretrained: ${c.name}`, o: await runChild(['test/reliability/load-child.ts', dirs[i]]) }),
      ...(i % 2
        ? []
        : [
            async () => ({
              c,
              what: `parity: ${c.name}`,
              o: await runChild(['scripts/parity.ts', '--model', dirs[i], '--golden', golden, '--only', 'f32.logits']),
            }),
          ]),
    ]);
    for (const { c, what, o } of await inBatches(jobs)) assertOneLineError(o, c.expect, what);
  }),
);

test(
  'bad golden files through npm run parity',
  withTempDir('mi-reliability-', async (root) => {
    const file = readFileSync(goldenPath('tiny'));
    const n = Number(file.readBigUInt64LE(0));
    const header = JSON.parse(file.subarray(8, 8 + n).toString('utf-8'));
    const data = file.subarray(8 + n);
    const ids = header.input_ids as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const idBytes = data.subarray(ids.data_offsets[0], ids.data_offsets[1]);
    const logitsEntry = header['f32.logits'] as { dtype: string; shape: number[]; data_offsets: [number, number] };
    const logits = { name: 'f32.logits', dtype: 'F32', shape: logitsEntry.shape, bytes: data.subarray(...logitsEntry.data_offsets) };
    const inputIds = (bytes: Uint8Array, dtype = 'I64', shape = ids.shape) => ({ name: 'input_ids', dtype, shape, bytes });
    const golden = (tensors: { name: string; dtype: string; shape: number[]; bytes: Uint8Array }[]) =>
      rawSafetensors(JSON.stringify(layout(tensors)), Buffer.concat(tensors.map((t) => t.bytes)));
    const outOfVocab = Buffer.from(idBytes);
    outOfVocab.writeBigInt64LE(64n, 8 * 3); // vocab_size is 64: token 64 at flat index 3
    const goldens: MalformedCase[] = [
      { name: 'empty golden', build: (p) => writeFileSync(p, ''), expect: /golden\.safetensors: file is 0 bytes/ },
      {
        name: 'truncated golden',
        build: (p) => writeFileSync(p, file.subarray(0, file.length - 100)),
        expect: /golden\.safetensors: tensor "[^"]+".*truncated/,
      },
      {
        name: 'golden with trailing bytes',
        build: (p) => writeFileSync(p, Buffer.concat([file, Buffer.alloc(8)])),
        expect: /golden\.safetensors: 8 trailing bytes/,
      },
      { name: 'golden without input_ids', build: (p) => writeFileSync(p, golden([logits])), expect: /golden\.safetensors: no input_ids/ },
      {
        name: 'golden input_ids as floats',
        build: (p) => writeFileSync(p, golden([inputIds(new Uint8Array(idBytes.length / 2), 'F32'), logits])),
        expect: /golden\.safetensors: tensor "input_ids" must be integer \[batch, seq\]/,
      },
      {
        name: 'golden input_ids one-dimensional',
        build: (p) => writeFileSync(p, golden([inputIds(idBytes, 'I64', [idBytes.length / 8]), logits])),
        expect: /golden\.safetensors: tensor "input_ids" must be integer \[batch, seq\]/,
      },
      {
        name: 'golden input_ids outside the vocabulary',
        build: (p) => writeFileSync(p, golden([inputIds(outOfVocab), logits])),
        expect: /golden\.safetensors: tensor "input_ids" holds 64 at flat index 3, outside the vocabulary \[0, 64\)/,
      },
    ];
    const jobs = goldens.map((g, i) => async () => {
      const path = join(root, `${i}-golden.safetensors`);
      g.build(path);
      return { g, o: await runChild(['scripts/parity.ts', '--model', modelDir('tiny'), '--golden', path]) };
    });
    for (const { g, o } of await inBatches(jobs)) assertOneLineError(o, g.expect, `parity: ${g.name}`);
  }),
);

test(
  'steps/run.ts --step 2 --model BAD refuses with one line and leaves a finished run as it was',
  withTempDir('mi-reliability-', async (root) => {
    const run = join(root, 'run');
    const setup = await runChild(['steps/run.ts', '--step', '0', '--quick', '--backend', 'cpu', '--out', run]);
    assert.is(setup.code, 0, `setting up the run: ${setup.stderr}`);
    const before = snapshot(run);
    const names = [
      'truncated in the data',
      'trailing bytes',
      'NaN weight',
      'missing tensor',
      'config num_hidden_layers = 1000000000',
      'config hidden_act = "gelu"',
    ];
    const jobs = names.map((name, i) => async () => {
      const c = cases.find((x) => x.name === name)!;
      assert.ok(c, name);
      const model = buildCase(join(root, 'models'), i, c);
      const copy = join(root, `run-${i}`);
      cpSync(run, copy, { recursive: true });
      const o = await runChild(['steps/run.ts', '--step', '2', '--quick', '--backend', 'cpu', '--model', model, '--out', copy]);
      return { c, o, after: snapshot(copy) };
    });
    for (const { c, o, after } of await inBatches(jobs)) {
      assertOneLineError(o, c.expect, `steps/run.ts: ${c.name}`);
      assert.equal([...after.keys()].sort(), [...before.keys()].sort(), `${c.name}: files added or removed`);
      for (const [p, bytes] of before) assert.ok(bytes.equals(after.get(p)!), `${c.name}: ${p} changed`);
    }
  }),
);

test.run();
