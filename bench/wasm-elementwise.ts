// The WebAssembly SIMD float32 kernels other than matmul (engine/wasm/kernels/{elementwise,softmax,
// rmsnorm,conv1d,reduce}.ts) against the CPU backend's scalar TypeScript kernels
// (engine/cpu/kernels/*.ts), one thread each, in the same run, on the same heap buffers: add over
// 4M elements with a same-run copy (TypedArray.set) as the memory baseline, a bias add, exp / silu
// / softplus over 4M, softmax and log-softmax rows, cross-entropy, rmsnorm forward and backward,
// conv1d, a sum. Each figure is the best of 3 timed calls after warm-up calls; the load average
// (1, 5, 15 min) is printed before and after: on a shared machine, above the core count, other jobs
// took turns on the cores and the two columns of a row ran at different moments.
//   npx tsx bench/wasm-elementwise.ts [--quick] [--write]
import { loadavg } from 'node:os';
import * as sConv from '../engine/cpu/kernels/conv1d.ts';
import * as sEw from '../engine/cpu/kernels/elementwise.ts';
import * as sReduce from '../engine/cpu/kernels/reduce.ts';
import * as sRms from '../engine/cpu/kernels/rmsnorm.ts';
import * as sSoft from '../engine/cpu/kernels/softmax.ts';
import * as mi from '../engine/index.ts';
import * as wConv from '../engine/wasm/kernels/conv1d.ts';
import * as wEw from '../engine/wasm/kernels/elementwise.ts';
import * as wReduce from '../engine/wasm/kernels/reduce.ts';
import * as wRms from '../engine/wasm/kernels/rmsnorm.ts';
import * as wSoft from '../engine/wasm/kernels/softmax.ts';
import { WasmHeap } from '../engine/wasm/memory.ts';
import { bestMs } from './lib/best.ts';
import { benchFlags, writeResultsSection } from './lib/results.ts';
import { reportErrorsAsOneLine } from '../steps/cli-main.ts';

reportErrorsAsOneLine(); // a failure is one line `error: ...`, exit 1 (2 for a bad flag)

const { quick, write } = benchFlags('bench/wasm-elementwise.ts');
const rng = new mi.Rng('bench/wasm-elementwise');
const heap = new WasmHeap({ initialPages: 2048 });
const REPS = 3;

const best = (fn: () => void, warm = 2) => bestMs(fn, REPS, warm);

function random(n: number, scale = 1): Float32Array {
  const a = heap.allocF32(n);
  for (let i = 0; i < n; i++) a[i] = scale * rng.normal();
  return a;
}

const load = () =>
  loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

interface Row {
  name: string;
  size: string;
  scalar: number;
  wasm: number;
  /** what the rate counts: bytes moved (GB/s) or elements (Gelem/s) */
  bytes?: number;
  elements?: number;
}
const rows: Row[] = [];

function row(name: string, size: string, scalar: () => void, wasm: () => void, rate: { bytes?: number; elements?: number }): void {
  const r: Row = { name, size, scalar: best(scalar), wasm: best(wasm), ...rate };
  rows.push(r);
  const fmt = (ms: number) => {
    if (r.bytes) return `${(r.bytes / (ms * 1e6)).toFixed(2)} GB/s`;
    if (r.elements) return `${(r.elements / (ms * 1e6)).toFixed(3)} Gelem/s`;
    return '';
  };
  console.log(
    `${name.padEnd(26)} ${size.padEnd(16)} scalar ${r.scalar.toFixed(3).padStart(8)} ms ${fmt(r.scalar).padStart(15)}   wasm ${r.wasm.toFixed(3).padStart(8)} ms ${fmt(r.wasm).padStart(15)}   ${(r.scalar / r.wasm).toFixed(1)}x`,
  );
}

const loadBefore = load();
console.log(`load average ${loadBefore}`);
const N = quick ? 1 << 20 : 1 << 22;
const label = `${N >> 20}M`;
const a = random(N),
  b = random(N),
  out = heap.allocF32(N);

// the memory baseline: a copy reads and writes 4 bytes an element
const tCopy = best(() => out.set(a));
console.log(`copy (TypedArray.set)      ${label.padEnd(16)} ${tCopy.toFixed(3)} ms ${((8 * N) / (tCopy * 1e6)).toFixed(2)} GB/s`);

const add: Parameters<typeof sEw.binary>[2] = { op: 'add', shape: [N], aStrides: [1], bStrides: [1] };
row(
  'add',
  label,
  () => sEw.binary([a, b], [out], add),
  () => wEw.binary.run(heap, [a, b], [out], add),
  { bytes: 12 * N },
);
const cols = 1024;
const bias: Parameters<typeof sEw.binary>[2] = { op: 'add', shape: [N / cols, cols], aStrides: [cols, 1], bStrides: [0, 1] };
row(
  'add, bias broadcast',
  `${N / cols}x${cols} + ${cols}`,
  () => sEw.binary([a, b], [out], bias),
  () => wEw.binary.run(heap, [a, b], [out], bias),
  { bytes: 8 * N },
);
for (const op of ['exp', 'silu', 'softplus'] as const) {
  const p = { op, size: N, alpha: 0, beta: 0 };
  row(
    op,
    label,
    () => sEw.unary([a], [out], p),
    () => wEw.unary.run(heap, [a], [out], p),
    { elements: N },
  );
}

for (const [r, c] of quick
  ? [[1024, 256]]
  : [
      [4096, 256],
      [256, 4096],
    ]) {
  const x = random(r * c, 3),
    y = heap.allocF32(r * c);
  for (const log of [false, true]) {
    const p = { rows: r, cols: c, log };
    row(
      log ? 'log-softmax' : 'softmax',
      `${r}x${c}`,
      () => sSoft.softmax([x], [y], p),
      () => wSoft.softmax.run(heap, [x], [y], p),
      { elements: r * c },
    );
  }
  const t = heap.i32(heap.alloc(4 * r), r);
  for (let i = 0; i < r; i++) t[i] = (i * 31) % c;
  const loss = heap.allocF32(r);
  const q = { rows: r, cols: c, ignoreIndex: -100 };
  row(
    'cross_entropy',
    `${r}x${c}`,
    () => sSoft.cross_entropy([x, t], [loss], q),
    () => wSoft.cross_entropy.run(heap, [x, t], [loss], q),
    { elements: r * c },
  );
}

{
  const [r, c] = quick ? [1024, 768] : [4096, 768];
  const x = random(r * c),
    w = random(c),
    y = heap.allocF32(r * c),
    rstd = heap.allocF32(r),
    dw = heap.allocF32(c);
  const p = { rows: r, cols: c, eps: 1e-5 };
  row(
    'rmsnorm',
    `${r}x${c}`,
    () => sRms.rmsnorm([x, w], [y, rstd], p),
    () => wRms.rmsnorm.run(heap, [x, w], [y, rstd], p),
    { elements: r * c },
  );
  row(
    'rmsnorm_bwd',
    `${r}x${c}`,
    () => sRms.rmsnorm_bwd([x, w, rstd, x], [y, dw], p),
    () => wRms.rmsnorm_bwd.run(heap, [x, w, rstd, x], [y, dw], p),
    { elements: r * c },
  );
}

{
  const p = { batch: quick ? 2 : 8, T: 256, C: 256, K: 4, hasBias: true };
  const n = p.batch * p.T * p.C;
  const x = random(n),
    w = random(p.C * p.K),
    bs = random(p.C),
    y = heap.allocF32(n),
    dw = heap.allocF32(p.C * p.K),
    db = heap.allocF32(p.C);
  const size = `b${p.batch} T${p.T} C${p.C} K${p.K}`;
  row(
    'conv1d',
    size,
    () => sConv.conv1d([x, w, bs], [y], p),
    () => wConv.conv1d.run(heap, [x, w, bs], [y], p),
    { elements: n },
  );
  row(
    'conv1d_bwd',
    size,
    () => sConv.conv1d_bwd([x, w, x], [y, dw, db], p),
    () => wConv.conv1d_bwd.run(heap, [x, w, x], [y, dw, db], p),
    { elements: n },
  );
}

{
  const p = { op: 'sum' as const, outer: 1, len: N, inner: 1 };
  const s = heap.allocF32(1);
  row(
    'sum',
    label,
    () => sReduce.reduce([a], [s], p),
    () => wReduce.reduce.run(heap, [a], [s], p),
    { bytes: 4 * N },
  );
}
const loadAfter = load();
console.log(`load average ${loadAfter}`);

if (write) {
  const fmtRate = (r: Row, ms: number) =>
    r.bytes ? `${(r.bytes / (ms * 1e6)).toFixed(2)} GB/s` : r.elements ? `${(r.elements / (ms * 1e6)).toFixed(3)} Gelem/s` : '';
  const lines = [
    '## WebAssembly kernels (elementwise, softmax, rmsnorm, conv1d, reduce)',
    '',
    'Written by `npx tsx bench/wasm-elementwise.ts --write`. Best of 3 calls after warm-up, one thread, scalar',
    `TypeScript kernel and WebAssembly SIMD kernel in the same run. Copy (TypedArray.set) of ${label} floats:`,
    `${((8 * N) / (tCopy * 1e6)).toFixed(2)} GB/s. Load average before ${loadBefore}, after ${loadAfter}.`,
    '',
    '| kernel | size | scalar ms | scalar rate | wasm ms | wasm rate | speed-up |',
    '| --- | --- | ---: | --- | ---: | --- | ---: |',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.size} | ${r.scalar.toFixed(3)} | ${fmtRate(r, r.scalar)} | ${r.wasm.toFixed(3)} | ${fmtRate(r, r.wasm)} | ${(r.scalar / r.wasm).toFixed(1)}x |`,
    ),
    '',
  ];
  writeResultsSection('## WebAssembly kernels (elementwise', lines.join('\n'));
}
