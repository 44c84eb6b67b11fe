// The WebAssembly SIMD selective scan (engine/wasm/kernels/scan.ts), forward and backward, against
// the CPU backend's scalar kernel (engine/cpu/kernels/scan.ts: float64 state and sums, run here on
// plain Float32Arrays, one thread), on seeded inputs of awkward sizes (batch 1, 2, 3; T 1, 7, 33,
// 1025; E 1, 7, 33, 130; N 1, 7, 16, 17) with every flag combination, outputs NaN-poisoned first.
// Then determinism under splitting (part over several ranges, then finish, equals run bit for bit),
// and the vectorised exp / softplus / sigmoid / silu against Math.
//
// The error bound. Every output is a sum of products along the recurrence; its natural scale is
// M, the same computation with every term replaced by its magnitude (|C| |h|, the state's
// magnitude carried through the decays, |dh| likewise backwards; computed here in float64, see
// `magnitudes`). The kernel works in float32 with relative error u = 2^-24 per rounding, and exp,
// softplus, sigmoid and silu within 5u (measured below: 9.9e-8, 2.6e-7, 1.6e-7, 1.7e-7). A state
// is a chain of up to T steps, each step adding at most about 10u of its terms' magnitude (the
// argument dt A, exp, the two products, the add, and softplus's error in dt), and an error made at
// step s is carried to step t by the same decays as the state itself: so the state's error is at
// most about 10u T times its magnitude (less when the decays forget: the factor is then the
// memory length, not T). Sums add their own rounding: N terms (y, ddelta, dx), T terms (dA, dD,
// d(bias)), the channels (dB, dC: E), the batch rows. The backward's states are recomputed
// (another T-step chain) and its dh runs one more chain backwards. So the test asserts, for every
// element,
//     |wasm - ref| <= 10 u (L + 16) M + 1e-30,   L = T + N (forward),  3T + N + E + batch (backward),
// the reference being within 1e-15 M of exact. The worst ratio measured, |wasm - ref| / (u M), is
// printed by MI_SCAN_REPORT=1; it stays far below the bound (states forget long before T, and
// roundings mostly cancel): measured y 6.7, hT 10.3, hs 11.6, dx 8.4, ddelta 10.2, dA 11.9, dB 7.8,
// dC 7.3, dD 5.3, dz 8.7, dh0 27.8, d(bias) 3.9 over all the cases here. The bound still catches
// slips: leaving the bias out of the softplus's derivative fails it by a factor of 800 (T = 7).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { scanBatches, scanBwdBatches, scanBwdCombine, scanBwdPartialSize } from '../../../engine/cpu/kernels/scan.ts';
import type { KernelParams, ScanParams } from '../../../engine/kernels.ts';
import { Rng } from '../../../engine/random.ts';
import { ModuleBuilder } from '../../../engine/wasm/assembler.ts';
import { scan, scan_bwd, scanKernels } from '../../../engine/wasm/kernels/scan.ts';
import { DEFAULT_OPTIONS } from '../../../engine/wasm/kernels/scan/codegen.ts';
import {
  activationConstants,
  emitExp,
  emitLog1p,
  emitSigmoid,
  emitSilu,
  emitSiluGrad,
  emitSoftplus,
  expConstants,
  VConsts,
  vtemps,
} from '../../../engine/wasm/kernels/scan/vmath.ts';
import { WasmHeap } from '../../../engine/wasm/memory.ts';
import { scanInputsByName } from '../kernel-reference.ts';

const test = suite('wasm scan');
const heap = new WasmHeap({ initialPages: 512 });
const U = 2 ** -24;
const REPORT = process.env.MI_SCAN_REPORT === '1';
type BwdParams = KernelParams['scan_bwd'];

// ---- inputs

const FLAGS = ['hasD', 'hasZ', 'hasH0', 'hasDeltaBias', 'deltaSoftplus', 'saveStates'] as const;
function paramsOf(batch: number, T: number, E: number, N: number, mask: number): ScanParams {
  const p = { batch, T, E, N } as ScanParams;
  FLAGS.forEach((f, i) => {
    p[f] = !!(mask & (1 << i));
  });
  return p;
}

/** Seeded inputs in kernel order, as plain arrays: Mamba-like ranges (A in [-8, -0.1], dt ~ 0.05..2). */
function inputs(rng: Rng, p: ScanParams): Float32Array[] {
  const { batch, T, E, N } = p;
  const arr = (n: number, f: () => number) => Float32Array.from({ length: n }, f);
  const randn = () => rng.normal();
  const ins = [
    arr(batch * T * E, randn),
    p.deltaSoftplus ? arr(batch * T * E, () => rng.normal() - 1) : arr(batch * T * E, () => 0.02 + 0.5 * rng.uniform()),
    arr(E * N, () => -Math.exp(rng.uniform() * Math.log(80)) / 10),
    arr(batch * T * N, randn),
    arr(batch * T * N, randn),
  ];
  if (p.hasD) ins.push(arr(E, randn));
  if (p.hasZ) ins.push(arr(batch * T * E, () => 2 * rng.normal()));
  if (p.hasH0) ins.push(arr(batch * E * N, randn));
  if (p.hasDeltaBias) ins.push(p.deltaSoftplus ? arr(E, () => 0.5 * rng.normal()) : arr(E, () => 0.1 * rng.uniform()));
  return ins;
}

function cotangents(rng: Rng, p: BwdParams): Float32Array[] {
  const { batch, T, E, N } = p;
  const arr = (n: number) => Float32Array.from({ length: n }, () => rng.normal());
  const c = [arr(batch * T * E)];
  if (p.hasDhT) c.push(arr(batch * E * N));
  if (p.hasDhs) c.push(arr(batch * T * E * N));
  return c;
}

const fwdSizes = ({ batch, T, E, N, saveStates }: ScanParams) => [batch * T * E, batch * E * N, ...(saveStates ? [batch * T * E * N] : [])];
function bwdSizes(p: ScanParams): number[] {
  const { batch, T, E, N } = p;
  const s = [batch * T * E, batch * T * E, E * N, batch * T * N, batch * T * N];
  if (p.hasD) s.push(E);
  if (p.hasZ) s.push(batch * T * E);
  if (p.hasH0) s.push(batch * E * N);
  if (p.hasDeltaBias) s.push(E);
  return s;
}

/** Copies into the heap (and back out, for results). */
const onHeap = (a: Float32Array) => {
  const v = heap.allocF32(a.length);
  v.set(a);
  return v;
};
const poisoned = (n: number) => heap.allocF32(n).fill(NaN);
const release = (...as: Float32Array[]) => {
  for (const a of as) heap.free(a.byteOffset);
};

// ---- the reference and the magnitudes

function refForward(ins: Float32Array[], p: ScanParams): Float32Array[] {
  const outs = fwdSizes(p).map((n) => new Float32Array(n).fill(NaN));
  scanBatches(ins, outs, p, 0, p.batch);
  return outs;
}

function refBackward(ins: Float32Array[], p: BwdParams): Float32Array[] {
  const outs = bwdSizes(p).map((n) => new Float32Array(n).fill(NaN));
  const partials = new Float64Array(scanBwdPartialSize(p));
  scanBwdBatches(ins, outs, p, 0, p.batch, partials);
  scanBwdCombine(outs, p, partials);
  return outs;
}

const softplus = (x: number) => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

/**
 * The magnitude of every output: the scalar kernel's computation with each term replaced by its
 * absolute value (and the decays exp(dt A) > 0 as they are). Forward outputs then backward ones,
 * in kernel order.
 */
function magnitudes(ins: Float32Array[], p: BwdParams, saveStates: boolean): { fwd: Float64Array[]; bwd: Float64Array[] } {
  const { batch, T, E, N } = p;
  const { x, delta, A, B, C, D, z, h0, bias, rest } = scanInputsByName(ins, p);
  const [dy, ...cot] = rest;
  const dhT = p.hasDhT ? cot.shift() : undefined;
  const dhs = p.hasDhs ? cot.shift() : undefined;
  const yM = new Float64Array(batch * T * E),
    hTM = new Float64Array(batch * E * N),
    hsM = new Float64Array(batch * T * E * N);
  const [dxM, ddM, dAM, dBM, dCM] = [batch * T * E, batch * T * E, E * N, batch * T * N, batch * T * N].map((n) => new Float64Array(n));
  const dDM = new Float64Array(E),
    dzM = new Float64Array(batch * T * E),
    dh0M = new Float64Array(batch * E * N),
    dbM = new Float64Array(E);
  const hM = new Float64Array((T + 1) * N),
    abar = new Float64Array(T * N),
    dts = new Float64Array(T),
    sM = new Float64Array(T),
    dhM = new Float64Array(N);
  for (let b = 0; b < batch; b++)
    for (let e = 0; e < E; e++) {
      const so = (b * E + e) * N;
      for (let n = 0; n < N; n++) hM[n] = h0 ? Math.abs(h0[so + n]) : 0;
      for (let t = 0; t < T; t++) {
        const it = (b * T + t) * E + e,
          bt = (b * T + t) * N;
        const dr = delta[it] + (bias ? bias[e] : 0);
        const dt = p.deltaSoftplus ? softplus(dr) : dr;
        dts[t] = dt;
        let s = D ? Math.abs(D[e] * x[it]) : 0;
        for (let n = 0; n < N; n++) {
          abar[t * N + n] = Math.exp(dt * A[e * N + n]);
          hM[(t + 1) * N + n] = abar[t * N + n] * hM[t * N + n] + Math.abs(dt * B[bt + n] * x[it]);
          s += Math.abs(C[bt + n]) * hM[(t + 1) * N + n];
          hsM[it * N + n] = hM[(t + 1) * N + n];
        }
        sM[t] = s;
        yM[it] = s * (z ? Math.abs(z[it] * sigmoid(z[it])) : 1);
      }
      for (let n = 0; n < N; n++) hTM[so + n] = hM[T * N + n];
      for (let n = 0; n < N; n++) dhM[n] = dhT ? Math.abs(dhT[so + n]) : 0;
      for (let t = T - 1; t >= 0; t--) {
        const it = (b * T + t) * E + e,
          bt = (b * T + t) * N;
        const dt = dts[t];
        const sg = z ? sigmoid(z[it]) : 1;
        const g = Math.abs(dy[it] * (z ? z[it] * sg : 1));
        if (z) dzM[it] = Math.abs(dy[it]) * sM[t] * sg * (1 + Math.abs(z[it]) * (1 - sg));
        let dxv = D ? g * Math.abs(D[e]) : 0;
        if (D) dDM[e] += g * Math.abs(x[it]);
        let ddt = 0;
        for (let n = 0; n < N; n++) {
          if (dhs) dhM[n] += Math.abs(dhs[it * N + n]);
          const dhn = dhM[n] + g * Math.abs(C[bt + n]);
          dCM[bt + n] += g * hM[(t + 1) * N + n];
          const w = abar[t * N + n] * hM[t * N + n];
          ddt += dhn * (Math.abs(A[e * N + n]) * w + Math.abs(B[bt + n] * x[it]));
          dAM[e * N + n] += dhn * dt * w;
          dBM[bt + n] += dhn * dt * Math.abs(x[it]);
          dxv += dhn * dt * Math.abs(B[bt + n]);
          dhM[n] = dhn * abar[t * N + n];
        }
        dxM[it] = dxv;
        const dr = delta[it] + (bias ? bias[e] : 0);
        ddM[it] = p.deltaSoftplus ? ddt * sigmoid(dr) : ddt;
        dbM[e] += ddM[it];
      }
      for (let n = 0; n < N; n++) dh0M[so + n] = dhM[n];
    }
  const fwd = [yM, hTM, ...(saveStates ? [hsM] : [])];
  const bwd = [dxM, ddM, dAM, dBM, dCM];
  if (p.hasD) bwd.push(dDM);
  if (p.hasZ) bwd.push(dzM);
  if (p.hasH0) bwd.push(dh0M);
  if (p.hasDeltaBias) bwd.push(dbM);
  return { fwd, bwd };
}

// ---- comparisons

const FWD_NAMES = ['y', 'hT', 'hs'];
const BWD_NAMES = (p: ScanParams) => [
  'dx',
  'ddelta',
  'dA',
  'dB',
  'dC',
  ...(p.hasD ? ['dD'] : []),
  ...(p.hasZ ? ['dz'] : []),
  ...(p.hasH0 ? ['dh0'] : []),
  ...(p.hasDeltaBias ? ['dbias'] : []),
];
const worst = new Map<string, number>();

function within(what: string, got: Float32Array, ref: Float32Array, M: Float64Array, L: number): void {
  const tol = 10 * U * (L + 16);
  assert.is(got.length, ref.length, `${what}: length`);
  let ratio = 0;
  for (let i = 0; i < ref.length; i++) {
    const err = Math.abs(got[i] - ref[i]);
    if (!(err <= tol * M[i] + 1e-30))
      assert.unreachable(`${what}[${i}] = ${got[i]}, reference ${ref[i]}: error ${err} > ${tol} * magnitude ${M[i]}`);
    if (M[i] > 0) ratio = Math.max(ratio, err / (U * M[i]));
  }
  const key = what.replace(/ .*:/, ':');
  worst.set(key, Math.max(worst.get(key) ?? 0, ratio));
}

const bitsEqual = (x: Float32Array, y: Float32Array) => {
  const ux = new Uint32Array(x.buffer, x.byteOffset, x.length),
    uy = new Uint32Array(y.buffer, y.byteOffset, y.length);
  if (ux.length !== uy.length) return -2;
  for (let i = 0; i < ux.length; i++) if (ux[i] !== uy[i]) return i;
  return -1;
};

interface Ran {
  fwd: Float32Array[];
  bwd: Float32Array[];
}

/** Runs forward and backward on the heap (outputs NaN-poisoned), compared with the reference; returns copies. */
function check(p: ScanParams, dhT: boolean, dhs: boolean, seed: string): Ran {
  const rng = new Rng(`wasm-scan/${seed}`);
  const pb: BwdParams = { ...p, saveStates: false, hasDhT: dhT, hasDhs: dhs };
  const ins = inputs(rng, p);
  const cot = cotangents(rng, pb);
  const name = `b${p.batch} T${p.T} E${p.E} N${p.N} flags ${FLAGS.filter((f) => p[f]).join(',') || '-'}${dhT ? ' dhT' : ''}${dhs ? ' dhs' : ''}`;
  const M = magnitudes([...ins, ...cot], pb, p.saveStates);
  // forward
  const hIns = ins.map(onHeap);
  const hOuts = fwdSizes(p).map(poisoned);
  assert.ok(scan.accepts(hIns, hOuts, p));
  scan.run(heap, hIns, hOuts, p);
  const ref = refForward(ins, p);
  hOuts.forEach((o, j) => {
    within(`${FWD_NAMES[j]} ${name}:`, o, ref[j], M.fwd[j], p.T + p.N);
  });
  // backward
  const hCot = cot.map(onHeap);
  const bOuts = bwdSizes(p).map(poisoned);
  const bIns = [...hIns, ...hCot];
  assert.ok(scan_bwd.accepts(bIns, bOuts, pb));
  scan_bwd.run(heap, bIns, bOuts, pb);
  const bref = refBackward([...ins, ...cot], pb);
  const names = BWD_NAMES(p);
  bOuts.forEach((o, j) => {
    within(`${names[j]} ${name}:`, o, bref[j], M.bwd[j], 3 * p.T + p.N + p.E + p.batch);
  });
  const ran = { fwd: hOuts.map((o) => o.slice()), bwd: bOuts.map((o) => o.slice()) };
  release(...hIns, ...hOuts, ...hCot, ...bOuts);
  return ran;
}

// ---- the cases

test('every flag combination (64), small awkward sizes, forward and backward (dhT, dhs alternating)', () => {
  const shapes = [
    [1, 7, 7, 7],
    [2, 7, 33, 16],
    [3, 33, 7, 17],
    [1, 1, 1, 1],
  ];
  for (let mask = 0; mask < 64; mask++)
    shapes.forEach(([b, T, E, N], s) => {
      check(paramsOf(b, T, E, N, mask), (mask + s) % 2 === 1, (mask + s) % 3 === 0, `flags/${mask}/${s}`);
    });
});

test('awkward sizes: batch 1, 2, 3; T 1, 7, 33; E 1, 7, 33, 130; N 1, 7, 16, 17 (model flags and all flags)', () => {
  let i = 0;
  for (const batch of [1, 2, 3])
    for (const T of [1, 7, 33])
      for (const E of [1, 7, 33, 130])
        for (const N of [1, 7, 16, 17]) {
          const mask = i % 2 ? 0b001111 | 0b010000 : 0b111111; // model flags (D, z, bias, softplus) + h0, or everything
          check(paramsOf(batch, T, E, N, mask), i % 3 === 0, i % 4 === 1, `sizes/${i}`);
          i++;
        }
});

test('long scans: T 1025 (every flag off, model flags, every flag on)', () => {
  check(paramsOf(1, 1025, 7, 16, 0), false, false, 'long/0');
  check(paramsOf(2, 1025, 33, 17, 0b011011), true, false, 'long/1');
  check(paramsOf(3, 1025, 5, 7, 0b111111), true, true, 'long/2');
});

test('sizes of zero: T 0, N 0, E 0, batch 0', () => {
  for (const [b, T, E, N] of [
    [2, 0, 5, 3],
    [2, 5, 5, 0],
    [2, 5, 0, 3],
    [0, 5, 5, 3],
  ])
    check(paramsOf(b, T, E, N, 0b111111), true, true, `zero/${b}${T}${E}${N}`);
});

// ---- determinism under splitting

function splitRun<K extends 'scan' | 'scan_bwd'>(
  kernel: typeof scan | typeof scan_bwd,
  ins: Float32Array[],
  outs: Float32Array[],
  p: KernelParams[K],
  bounds: number[],
): void {
  const split = kernel.split!;
  const k = split as unknown as {
    partScratch?: (p: KernelParams[K], r0: number, r1: number) => number;
    sharedScratch?: (p: KernelParams[K]) => number;
    part: (...a: unknown[]) => void;
    finish?: (...a: unknown[]) => void;
  };
  const sharedBytes = k.sharedScratch?.(p) ?? 0;
  const shared = sharedBytes ? heap.alloc(sharedBytes) : 0;
  // the parts in reverse order, as another thread might finish first
  for (let i = bounds.length - 2; i >= 0; i--) {
    const bytes = k.partScratch?.(p, bounds[i], bounds[i + 1]) ?? 0;
    const scratch = bytes ? heap.alloc(bytes) : 0;
    k.part(heap, ins, outs, p, bounds[i], bounds[i + 1], scratch, shared);
    if (scratch) heap.free(scratch);
  }
  k.finish?.(heap, ins, outs, p, shared);
  if (shared) heap.free(shared);
}

function splitCase(p: ScanParams, seed: string, rangesOf: (n: number) => number[][]): void {
  const rng = new Rng(`wasm-scan/split/${seed}`);
  const pb: BwdParams = { ...p, saveStates: false, hasDhT: true, hasDhs: true };
  const ins = inputs(rng, p).map(onHeap);
  const cot = cotangents(rng, pb).map(onHeap);
  const bIns = [...ins, ...cot];
  const whole = fwdSizes(p).map(poisoned);
  scan.run(heap, ins, whole, p);
  const bWhole = bwdSizes(p).map(poisoned);
  scan_bwd.run(heap, bIns, bWhole, pb);
  const fr = scan.split!.range(p),
    br = scan_bwd.split!.range(pb);
  assert.ok(fr && br, 'these calls split');
  for (const bounds of rangesOf(fr.n)) {
    const outs = fwdSizes(p).map(poisoned);
    splitRun(scan, ins, outs, p, bounds);
    outs.forEach((o, j) => {
      assert.is(bitsEqual(o, whole[j]), -1, `forward ${FWD_NAMES[j]}, parts ${bounds}`);
    });
    release(...outs);
  }
  for (const bounds of rangesOf(br.n)) {
    const outs = bwdSizes(p).map(poisoned);
    splitRun(scan_bwd, bIns, outs, pb, bounds);
    outs.forEach((o, j) => {
      assert.is(bitsEqual(o, bWhole[j]), -1, `backward ${BWD_NAMES(p)[j]}, parts ${bounds}`);
    });
    release(...outs);
  }
  release(...ins, ...cot, ...whole, ...bWhole);
}

/** [0, n] in one part, every unit alone, two halves, and uneven thirds. */
const RANGES = (n: number) => [[0, n], Array.from({ length: n + 1 }, (_, i) => i), [0, n >> 1, n], [0, 1, Math.max(1, n - 2), n]];

test('split by batch rows (batch 3): part over several ranges then finish equals run, bit for bit', () => {
  splitCase(paramsOf(3, 300, 70, 17, 0b111111), 'batch', RANGES);
});

test('split of a decode-shaped call (batch 1, E 1536 / 389): channel groups and chunks, bit for bit', () => {
  splitCase(paramsOf(1, 16, 1536, 16, 0b011111), 'decode', RANGES);
  splitCase(paramsOf(1, 48, 389, 16, 0b111111), 'decode-odd', RANGES);
});

test("the generated code's shape (states per pass 1, 2, 4; constants hoisted or not) does not change a bit", () => {
  const p = paramsOf(2, 33, 13, 17, 0b111111);
  const pb: BwdParams = { ...p, saveStates: false, hasDhT: true, hasDhs: true };
  const rng = new Rng('wasm-scan/variants');
  const ins = inputs(rng, p).map(onHeap);
  const bIns = [...ins, ...cotangents(rng, pb).map(onHeap)];
  const runWith = (k: ReturnType<typeof scanKernels>) => {
    const outs = fwdSizes(p).map(poisoned),
      bOuts = bwdSizes(p).map(poisoned);
    k.scan.run(heap, ins, outs, p);
    k.scan_bwd.run(heap, bIns, bOuts, pb);
    const copies = [...outs, ...bOuts].map((o) => o.slice());
    release(...outs, ...bOuts);
    return copies;
  };
  const want = runWith(scanKernels());
  for (const nb of [1, 2, 4])
    for (const bnb of [1, 2])
      for (const hoist of [true, false]) {
        const got = runWith(scanKernels({ ...DEFAULT_OPTIONS, nb, bnb, hoist }));
        got.forEach((g, j) => {
          assert.is(bitsEqual(g, want[j]), -1, `nb ${nb} bnb ${bnb} hoist ${hoist}: output ${j}`);
        });
      }
  release(...bIns);
});

test('the split does not apply to small calls', () => {
  assert.is(scan.split!.range(paramsOf(2, 7, 7, 7, 0)), null);
  assert.is(scan_bwd.split!.range({ ...paramsOf(2, 7, 7, 7, 0), hasDhT: false, hasDhs: false }), null);
});

// ---- the vectorised functions

const FNS = ['exp5', 'exp6', 'log1p', 'softplus', 'sigmoid', 'silu', 'silu_grad'] as const;
type Fn = (typeof FNS)[number];

const mathExports = (() => {
  const m = new ModuleBuilder();
  m.importMemory({ initial: 0, maximum: 65536, shared: true });
  for (const name of FNS) {
    m.function(
      name,
      ['i32', 'i32', 'i32'],
      [],
      (f, src, dst, n) => {
        const i = f.local.declare('i32'),
          x = f.local.declare('v128');
        const k = new VConsts(f, true);
        const t = vtemps(f);
        k.hoist([...expConstants(name === 'exp6' ? 6 : 5), ...activationConstants()]);
        f.for(
          i,
          0,
          () => f.i32.shl(n, 2),
          16,
          () => {
            f.local.set(x, () => f.v128.load(() => f.i32.add(src, i)));
            f.v128.store(
              () => f.i32.add(dst, i),
              () => {
                if (name === 'exp5' || name === 'exp6') emitExp(f, k, x, t, name === 'exp5' ? 5 : 6);
                else if (name === 'log1p') emitLog1p(f, k, x, t);
                else if (name === 'softplus') emitSoftplus(f, k, x, t, 6);
                else if (name === 'sigmoid') emitSigmoid(f, k, x, t, 6);
                else if (name === 'silu') emitSilu(f, k, x, t, 6);
                else emitSiluGrad(f, k, x, t, 6);
              },
            );
          },
        );
      },
      { export: true },
    );
  }
  return new WebAssembly.Instance(m.compile(), { env: { memory: heap.memory } }).exports as Record<
    Fn,
    (s: number, d: number, n: number) => void
  >;
})();

function apply(fn: Fn, xs: Float32Array): Float32Array {
  const n = Math.ceil(xs.length / 4) * 4;
  const src = heap.allocF32(n),
    dst = heap.allocF32(n);
  src.set(xs);
  mathExports[fn](src.byteOffset, dst.byteOffset, n);
  const out = dst.slice(0, xs.length);
  release(src, dst);
  return out;
}

/** Max over a sweep of |f(x) - ref(x)| / scale(x), by default |ref(x)|. */
function sweep(
  fn: Fn,
  lo: number,
  hi: number,
  ref: (x: number) => number,
  scale = (_x: number, r: number) => Math.abs(r),
  n = 1 << 21,
): number {
  const xs = Float32Array.from({ length: n }, (_, i) => lo + ((hi - lo) * i) / (n - 1));
  const ys = apply(fn, xs);
  let w = 0;
  for (let i = 0; i < n; i++) {
    const r = ref(xs[i]);
    const e = Math.abs(ys[i] - r) / scale(xs[i], r);
    if (!(e <= w)) w = e;
  }
  if (REPORT) console.log(`  ${fn} on [${lo}, ${hi}]: worst relative error ${w.toExponential(3)}`);
  return w;
}

test('exp: relative error <= 3e-7 (degree 5) and <= 1.2e-7 (degree 6) over [-86.9, 88.72]; edges', () => {
  assert.ok(sweep('exp5', -86.9, 88.72, Math.exp) <= 3e-7);
  assert.ok(sweep('exp6', -86.9, 88.72, Math.exp) <= 1.2e-7);
  assert.ok(sweep('exp6', -1, 1, Math.exp) <= 1.2e-7);
  const edges = [0, -0, -1e-30, 1e-30, -86.99, -87.5, -100, -1e30, -Infinity, 88.72, 88.723, 89, 1e30, Infinity, NaN];
  const want = [1, 1, 1, 1, 0, 0, 0, 0, 0, Math.fround(Math.exp(Math.fround(88.72))), Infinity, Infinity, Infinity, Infinity, NaN];
  const got = apply('exp6', Float32Array.from(edges));
  edges.forEach((x, i) => {
    const w = want[i];
    const ok = Number.isNaN(w) ? Number.isNaN(got[i]) : w === 0 || !Number.isFinite(w) ? got[i] === w : Math.abs(got[i] / w - 1) < 2e-7;
    assert.ok(ok, `exp(${x}) = ${got[i]}, want ${w}`);
  });
  // degree 6 is exact at 0: exp(0 * A) = 1 keeps a state as it is
  assert.is(apply('exp6', Float32Array.of(0))[0], 1);
});

test('log1p, softplus, sigmoid, silu, silu_grad: relative error within 4e-7', () => {
  assert.ok(sweep('log1p', 0, 1, Math.log1p) <= 3e-7);
  assert.ok(sweep('log1p', 0, 1e-4, Math.log1p) <= 3e-7);
  assert.ok(sweep('softplus', -80, 80, softplus) <= 4e-7);
  assert.ok(sweep('sigmoid', -80, 80, sigmoid) <= 3e-7);
  assert.ok(sweep('silu', -80, 80, (x) => x * sigmoid(x)) <= 3e-7);
  // silu' = s (1 + x (1 - s)) crosses zero near -1.28: relative to the size of its terms, s (1 + |x| (1 - s))
  const siluGrad = (x: number) => sigmoid(x) * (1 + x * (1 - sigmoid(x)));
  assert.ok(sweep('silu_grad', -80, 80, siluGrad, (x) => sigmoid(x) * (1 + Math.abs(x) * (1 - sigmoid(x)))) <= 4e-7);
});

test.after(() => {
  if (!REPORT) return;
  console.log('  worst |wasm - ref| / (u M) per output:');
  for (const [k, v] of [...worst].sort()) console.log(`    ${k.padEnd(8)} ${v.toFixed(1)}`);
});

test.run();
