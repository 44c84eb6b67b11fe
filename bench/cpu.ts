// CPU backend benchmarks (tinybench, medians), the scalar TypeScript kernels and the WebAssembly
// SIMD kernels in the same run on the same inputs and threads: matmul 256/512/1024 (GFLOP/s), add
// over 4M elements (GB/s against the same run's copy), the selective scan forward and backward (ns
// per (t, e, n) step per thread).
//   npx tsx bench/cpu.ts [--quick] [--write]   (--write replaces the "## CPU backend" section of
//   bench/RESULTS.md with this run's table)
import { readFileSync, existsSync } from 'node:fs';
import { median } from './lib/median.ts';
import { benchFlags, writeResultsSection } from './lib/results.ts';
import { MIXER_SCAN_FLAGS } from './lib/scan.ts';
import { cpus, loadavg } from 'node:os';
import * as mi from '../engine/index.ts';
import { CpuBackend } from '../engine/cpu/backend.ts';
import type { Buffer } from '../engine/backend.ts';
import { threadsReady } from '../engine/cpu/threads.ts';
import type { KernelParams, ScanParams } from '../engine/kernels.ts';
import { reportErrorsAsOneLine } from '../steps/cli-main.ts';

reportErrorsAsOneLine(); // a failure is one line `error: ...`, exit 1 (2 for a bad flag)

const { quick, write } = benchFlags('bench/cpu.ts');
const rng = new mi.Rng('bench/cpu');

/** Median wall time of fn in ms, over at least `iterations` runs and `timeMs` of running (up to two warm-up runs). */
const timed = (name: string, fn: () => void, iterations: number, timeMs: number) =>
  median(name, fn, iterations, { timeMs, warmup: Math.min(2, iterations) });

// host data, uploaded to each backend's buffers (in the shared heap, where the threads see them)
function randomHost(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.uniform() * 2 - 1;
  return a;
}

interface Row {
  what: string;
  size: string;
  ms: number;
  rate: string;
  baseline: string;
  ratio: string;
}
const rows: Row[] = [];
const fmt = (x: number, d = 2) => x.toFixed(d);
function report(row: Row): void {
  rows.push(row);
  console.log(
    `${row.what.padEnd(34)} ${row.size.padEnd(22)} ${fmt(row.ms, 3).padStart(10)} ms  ${row.rate.padEnd(16)} ${row.baseline.padEnd(26)} ${row.ratio}`,
  );
}

// ---- the two CPU backends, same heap, same threads ---------------------------------------------
// scalar: the TypeScript kernels (float64 accumulation in matmul, the reference of every test);
// wasm: the WebAssembly SIMD kernels (float32, engine/wasm/kernels/). Both split over the same
// worker threads, so each pair of rows below is measured in the same run on the same inputs.
const BACKENDS: [string, CpuBackend][] = [
  ['scalar', new CpuBackend({ wasm: false })],
  ['wasm', new CpuBackend({ wasm: true })],
];

function upload(be: CpuBackend, data: Float32Array): Buffer {
  const buf = be.alloc('float32', data.length);
  be.write(buf, data);
  return buf;
}

// ---- matmul ----------------------------------------------------------------------------------
async function benchMatmul(n: number): Promise<void> {
  const p: KernelParams['matmul'] = { batch: 1, M: n, N: n, K: n, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0 };
  const flops = 2 * n ** 3;
  const gf = (ms: number) => flops / (ms * 1e6);
  const a = randomHost(n * n),
    b = randomHost(n * n);
  const ms: Record<string, number> = {};
  for (const [name, be] of BACKENDS) {
    const [ba, bb] = [upload(be, a), upload(be, b)];
    const out = be.alloc('float32', n * n);
    // the scalar kernel at 1024 takes about half a second a call: few iterations
    const iters = name === 'scalar' ? (n >= 1024 ? 3 : n >= 512 ? 5 : 20) : 10;
    ms[name] = await timed(`matmul ${n} ${name}`, () => be.run('matmul', [ba, bb], [out], p), iters, quick ? 100 : 500);
    for (const x of [ba, bb, out]) be.free(x);
  }
  for (const [name] of BACKENDS)
    report({
      what: `matmul f32 (${name})`,
      size: `${n}x${n}x${n}`,
      ms: ms[name],
      rate: `${fmt(gf(ms[name]))} GFLOP/s`,
      baseline: name === 'wasm' ? `scalar ${fmt(gf(ms.scalar))} GFLOP/s` : '',
      ratio: name === 'wasm' ? `${fmt(ms.scalar / ms.wasm, 1)}x` : '',
    });
}

// ---- elementwise -----------------------------------------------------------------------------
async function benchAdd(): Promise<void> {
  const n = 4 * 1024 * 1024;
  const params: KernelParams['binary'] = { op: 'add', shape: [n], aStrides: [1], bStrides: [1] };
  const src = randomHost(n),
    dst = new Float32Array(n);
  // bytes moved: add reads two arrays and writes one; the copy (Float32Array.set, a memcpy) reads one and writes one
  const gbs = (bytes: number, ms: number) => bytes / (ms * 1e6);
  const tCopy = await timed('Float32Array.set', () => dst.set(src), 10, quick ? 200 : 1000);
  const copyRate = gbs(2 * 4 * n, tCopy);
  for (const [name, be] of BACKENDS) {
    const [a, b] = [upload(be, src), upload(be, randomHost(n))];
    const out = be.alloc('float32', n);
    const t = await timed(`add ${name}`, () => be.run('binary', [a, b], [out], params), 10, quick ? 200 : 1000);
    report({
      what: `add f32 (${name})`,
      size: '4M elements',
      ms: t,
      rate: `${fmt(gbs(3 * 4 * n, t))} GB/s`,
      baseline: `copy ${fmt(copyRate)} GB/s`,
      ratio: `${fmt(gbs(3 * 4 * n, t) / copyRate)} of copy`,
    });
    for (const x of [a, b, out]) be.free(x);
  }
}

// ---- selective scan --------------------------------------------------------------------------
/**
 * Compulsory traffic, float32 (4 bytes), with Mamba's flags (D, z, delta bias, softplus; no h0):
 *   forward:  reads x, delta, z [b,T,E]; B, C [b,T,N]; A [E,N]; D, bias [E]; writes y [b,T,E], hT [b,E,N]
 *             = 4 (4 bTE + 2 bTN + EN + 2E + bEN)
 *   backward: reads x, delta, z, dy [b,T,E]; B, C [b,T,N]; A; D, bias; writes dx, ddelta, dz [b,T,E],
 *             dB, dC [b,T,N], dA [E,N], dD, dbias [E]
 *             = 4 (7 bTE + 4 bTN + 2 EN + 4E)
 */
export function scanBytes(batch: number, T: number, E: number, N: number): { fwd: number; bwd: number } {
  const bTE = batch * T * E,
    bTN = batch * T * N;
  return {
    fwd: 4 * (4 * bTE + 2 * bTN + E * N + 2 * E + batch * E * N),
    bwd: 4 * (7 * bTE + 4 * bTN + 2 * E * N + 4 * E),
  };
}

async function benchScan(): Promise<void> {
  const [batch, T, E, N] = [8, 256, 128, 16];
  const host = (n: number, lo: number, hi: number) => Float32Array.from(randomHost(n), (v) => lo + ((v + 1) / 2) * (hi - lo));
  const bTE = batch * T * E,
    bTN = batch * T * N;
  // x, delta, A, B, C, D, z, bias (A negative, delta small), then dy
  const inputs = [
    host(bTE, -1, 1),
    host(bTE, -1, 1),
    host(E * N, -2, -0.1),
    host(bTN, -1, 1),
    host(bTN, -1, 1),
    host(E, -1, 1),
    host(bTE, -1, 1),
    host(E, -0.1, 0.1),
  ];
  const dy = host(bTE, -1, 1);
  const p: ScanParams = { batch, T, E, N, ...MIXER_SCAN_FLAGS };
  const bytes = scanBytes(batch, T, E, N);
  const size = `b${batch} T${T} E${E} N${N}`;
  // the scan splits over batch rows: each thread runs batch / threads of them
  const threads = Math.min(threadsReady(), batch);
  const nsPerStep = (ms: number) => (ms * 1e6 * threads) / (bTE * N);
  const ms: Record<string, { f: number; b: number }> = {};
  for (const [name, be] of BACKENDS) {
    const ins = inputs.map((x) => upload(be, x));
    const dyBuf = upload(be, dy);
    const outs = [be.alloc('float32', bTE), be.alloc('float32', batch * E * N)];
    const grads = inputs.map((x) => be.alloc('float32', x.length));
    const fwd = () => be.run('scan', ins, outs, p);
    const bwd = () => be.run('scan_bwd', [...ins, dyBuf], grads, { ...p, hasDhT: false, hasDhs: false });
    ms[name] = {
      f: await timed(`scan fwd ${name}`, fwd, 5, quick ? 200 : 1000),
      b: await timed(`scan bwd ${name}`, bwd, 5, quick ? 200 : 1000),
    };
    for (const x of [...ins, dyBuf, ...outs, ...grads]) be.free(x);
  }
  for (const [dir, key, b] of [
    ['forward', 'f', bytes.fwd],
    ['backward', 'b', bytes.bwd],
  ] as const)
    for (const [name] of BACKENDS) {
      const t = ms[name][key];
      report({
        what: `selective scan ${dir} (${name})`,
        size,
        ms: t,
        rate: `${fmt(nsPerStep(t), 2)} ns/step/thread`,
        baseline:
          name === 'wasm'
            ? `scalar ${fmt(nsPerStep(ms.scalar[key]), 2)} ns; ${fmt(b / (t * 1e6), 2)} GB/s`
            : `${fmt(b / (t * 1e6), 3)} GB/s`,
        ratio: name === 'wasm' ? `${fmt(ms.scalar[key] / t, 1)}x` : '',
      });
    }
}

// ---- report ----------------------------------------------------------------------------------
/** Measured once, at start, so the console and RESULTS.md agree. */
let machineLines: string[] = [];
function machine(): string[] {
  return machineLines;
}

/** Starts the CPU worker threads and waits (up to 20 s) until they are up. */
async function threadsUp(): Promise<void> {
  for (let i = 0; i < 200 && threadsReady() < 2; i++) await new Promise((r) => setTimeout(r, 100));
}

function describeMachine(): string[] {
  const model = existsSync('/proc/cpuinfo')
    ? (readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? cpus()[0]?.model)
    : cpus()[0]?.model;
  return [
    `- CPU: ${model ?? 'unknown'} (${cpus().length} logical cores visible; matmul and scan split over ${threadsReady()} thread(s), engine/cpu/threads.ts)`,
    `- Node ${process.versions.node}, V8 ${process.versions.v8}`,
    // the cores may be shared: a load average above the core count means the timings are inflated
    `- Load average at start (1 min): ${loadavg()[0].toFixed(1)} on ${cpus().length} cores`,
    `- Date: ${new Date().toISOString().slice(0, 10)}${quick ? ' (--quick run: fewer sizes and iterations)' : ''}`,
  ];
}

function markdown(): string {
  const lines = [
    '## CPU backend',
    '',
    'Written by `npx tsx bench/cpu.ts --write` (part of `npm run bench`). Medians of tinybench samples.',
    'Each kernel runs on the scalar TypeScript kernels (`new CpuBackend({ wasm: false })`, the reference',
    'the tests hold the WebAssembly kernels to) and on the WebAssembly SIMD kernels, in the same run, on',
    'the same inputs, split over the same worker threads, timed on preallocated buffers. A load average',
    'above the core count means other jobs shared the cores: timings are inflated.',
    '',
    ...machine(),
    '',
    '| benchmark | size | median ms | rate | baseline (same run) | ratio |',
    '|---|---|---:|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.size} | ${fmt(r.ms, 3)} | ${r.rate} | ${r.baseline} | ${r.ratio} |`),
    '',
    'Matmul: GFLOP/s = 2 n^3 / time; ratio = scalar time / WebAssembly time. Add: GB/s counts 3 x 4',
    'bytes per element (two reads, one write), the copy (`Float32Array.set`) 2 x 4. Selective scan',
    '(float32; D, z gate, delta bias and softplus on; no h0): ns per (t, e, n) step per thread =',
    'time x threads / (b T E N) (the scan splits over batch rows); GB/s counts the compulsory traffic,',
    'forward 4 (4 bTE + 2 bTN + EN + 2E + bEN), backward 4 (7 bTE + 4 bTN + 2 EN + 4E);',
    'the scan is bound by its exp() and dependent recurrence, not by memory, so these rates are low by design.',
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  await threadsUp();
  machineLines = describeMachine();
  console.log(machine().join('\n'));
  for (const n of quick ? [256, 512] : [256, 512, 1024]) await benchMatmul(n);
  await benchAdd();
  await benchScan();
  if (write) writeResultsSection('## CPU backend', markdown());
}

await main();
