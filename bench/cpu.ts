// CPU backend benchmarks (tinybench, medians): the blocked float32 matmul kernel against the naive
// triple loop, elementwise add against a plain Float32Array copy, and the selective scan forward
// and backward. Each baseline is measured in the same run as what it is compared with.
//   npx tsx bench/cpu.ts [--quick] [--write]   (--write replaces the "## CPU backend" section of
//   bench/RESULTS.md with this run's table)
import { readFileSync, existsSync } from 'node:fs';
import { median } from './lib/median.ts';
import { benchFlags, writeResultsSection } from './lib/results.ts';
import { MIXER_SCAN_FLAGS } from './lib/scan.ts';
import { cpus, loadavg } from 'node:os';
import * as mi from '../engine/index.ts';
import { matmul as matmulBlocked, matmulNaive } from '../engine/cpu/kernels/matmul.ts';
import { threadsReady } from '../engine/cpu/threads.ts';
import { processHeap } from '../engine/wasm/memory.ts';
import type { KernelParams, ScanParams } from '../engine/kernels.ts';

const { quick, write } = benchFlags('bench/cpu.ts');
const rng = new mi.Rng('bench/cpu');

/** Median wall time of fn in ms, over at least `iterations` runs and `timeMs` of running (up to two warm-up runs). */
const timed = (name: string, fn: () => void, iterations: number, timeMs: number) =>
  median(name, fn, iterations, { timeMs, warmup: Math.min(2, iterations) });

// views of the CPU backend's heap, as its buffers are: the threaded kernels then split and write in place
function randomF32(n: number): Float32Array {
  const a = processHeap().allocF32(n);
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
    `${row.what.padEnd(28)} ${row.size.padEnd(22)} ${fmt(row.ms, 3).padStart(10)} ms  ${row.rate.padEnd(16)} ${row.baseline.padEnd(26)} ${row.ratio}`,
  );
}

// ---- matmul ----------------------------------------------------------------------------------
async function benchMatmul(n: number): Promise<void> {
  const a = randomF32(n * n),
    b = randomF32(n * n),
    out = randomF32(n * n);
  const p: KernelParams['matmul'] = { batch: 1, M: n, N: n, K: n, transA: false, transB: false, aBatchStride: 0, bBatchStride: 0 };
  const flops = 2 * n ** 3;
  // the naive loop at 1024 takes seconds per call: few iterations, no time budget
  const iters = n >= 1024 ? 3 : n >= 512 ? 5 : 20;
  const tBlocked = await timed(`matmul ${n}`, () => matmulBlocked([a, b], [out], p), iters, quick ? 100 : 500);
  const tNaive = await timed(`matmulNaive ${n}`, () => matmulNaive(a, b, out, n, n, n), n >= 1024 ? 2 : iters, 0);
  const gf = (ms: number) => flops / (ms * 1e6);
  report({
    what: 'matmul f32 (blocked kernel)',
    size: `${n}x${n}x${n}`,
    ms: tBlocked,
    rate: `${fmt(gf(tBlocked))} GFLOP/s`,
    baseline: `naive ${fmt(gf(tNaive))} GFLOP/s`,
    ratio: `${fmt(tNaive / tBlocked, 1)}x`,
  });
}

// ---- elementwise -----------------------------------------------------------------------------
async function benchAdd(): Promise<void> {
  const n = 4 * 1024 * 1024;
  const be = mi.cpuBackend();
  const a = mi.tensor(randomF32(n)),
    b = mi.tensor(randomF32(n)),
    out = mi.empty([n]);
  const params: KernelParams['binary'] = { op: 'add', shape: [n], aStrides: [1], bStrides: [1] };
  const src = randomF32(n),
    dst = new Float32Array(n);
  const tKernel = await timed('add kernel', () => be.run('binary', [a.buffer, b.buffer], [out.buffer], params), 10, quick ? 200 : 1000);
  const tOp = await timed('mi.add', () => mi.add(a, b).dispose(), 10, quick ? 200 : 1000);
  const tCopy = await timed('Float32Array.set', () => dst.set(src), 10, quick ? 200 : 1000);
  // bytes moved: add reads two arrays and writes one; the copy reads one and writes one
  const gbs = (bytes: number, ms: number) => bytes / (ms * 1e6);
  const copyRate = gbs(2 * 4 * n, tCopy);
  for (const [what, t] of [
    ['add f32 (binary kernel)', tKernel],
    ['add f32 (mi.add, allocates)', tOp],
  ] as const) {
    report({
      what,
      size: '4M elements',
      ms: t,
      rate: `${fmt(gbs(3 * 4 * n, t))} GB/s`,
      baseline: `Float32Array.set ${fmt(copyRate)} GB/s`,
      ratio: `${fmt(gbs(3 * 4 * n, t) / copyRate)} of copy`,
    });
  }
  for (const t of [a, b, out]) t.dispose();
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
  const be = mi.cpuBackend();
  const x = mi.randn([batch, T, E], rng),
    delta = mi.randn([batch, T, E], rng, { std: 0.5 }),
    z = mi.randn([batch, T, E], rng);
  const A = mi.rand([E, N], rng, { lo: -2, hi: -0.1 }),
    B = mi.randn([batch, T, N], rng),
    C = mi.randn([batch, T, N], rng);
  const D = mi.randn([E], rng),
    bias = mi.randn([E], rng, { std: 0.1 });
  const dy = mi.randn([batch, T, E], rng);
  const p: ScanParams = { batch, T, E, N, ...MIXER_SCAN_FLAGS };
  const ins = [x, delta, A, B, C, D, z, bias];
  const y = mi.empty([batch, T, E]),
    hT = mi.empty([batch, E, N]);
  const grads = ins.map((t) => mi.empty(t.shape));
  const inBufs = ins.map((t) => t.buffer);
  const fwd = () => be.run('scan', inBufs, [y.buffer, hT.buffer], p);
  const bwd = () =>
    be.run(
      'scan_bwd',
      [...inBufs, dy.buffer],
      grads.map((g) => g.buffer),
      { ...p, hasDhT: false, hasDhs: false },
    );
  const tF = await timed('scan fwd', fwd, 5, quick ? 200 : 1000);
  const tB = await timed('scan bwd', bwd, 5, quick ? 200 : 1000);
  const bytes = scanBytes(batch, T, E, N);
  const size = `b${batch} T${T} E${E} N${N}`;
  report({
    what: 'selective scan forward',
    size,
    ms: tF,
    rate: `${fmt(bytes.fwd / (tF * 1e6), 3)} GB/s`,
    baseline: `${(bytes.fwd / 1e6).toFixed(2)} MB moved`,
    ratio: '',
  });
  report({
    what: 'selective scan backward',
    size,
    ms: tB,
    rate: `${fmt(bytes.bwd / (tB * 1e6), 3)} GB/s`,
    baseline: `${(bytes.bwd / 1e6).toFixed(2)} MB moved`,
    ratio: '',
  });
  for (const t of [...ins, dy, y, hT, ...grads]) t.dispose();
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
    'Written by `npx tsx bench/cpu.ts --write` (part of `npm run bench`). Medians of tinybench samples;',
    'each baseline is measured in the same run. Kernels are timed on preallocated buffers except the',
    '`mi.add` row, which includes allocating and freeing the output tensor. A load average above the',
    'core count means other jobs shared the cores: timings are inflated, and ratios (whose two sides ran',
    'at different moments) are noisy.',
    '',
    ...machine(),
    '',
    '| benchmark | size | median ms | rate | baseline (same run) | ratio |',
    '|---|---|---:|---|---|---|',
    ...rows.map((r) => `| ${r.what} | ${r.size} | ${fmt(r.ms, 3)} | ${r.rate} | ${r.baseline} | ${r.ratio} |`),
    '',
    'Matmul: GFLOP/s = 2 n^3 / time; ratio = naive time / blocked time. Add: GB/s counts 3 x 4 bytes per',
    'element (two reads, one write), the copy 2 x 4. Selective scan (float32; D, z gate, delta bias and',
    'softplus on; no h0): bytes are the compulsory traffic,',
    'forward 4 (4 bTE + 2 bTN + EN + 2E + bEN), backward 4 (7 bTE + 4 bTN + 2 EN + 4E);',
    'the scan is bound by its exp() and dependent recurrence, not by memory, so these rates are low by design.',
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  await threadsUp();
  machineLines = describeMachine();
  mi.setBackend(mi.cpuBackend());
  console.log(machine().join('\n'));
  for (const n of quick ? [256, 512] : [256, 512, 1024]) await benchMatmul(n);
  await benchAdd();
  await benchScan();
  if (write) writeResultsSection('## CPU backend', markdown());
}

await main();
