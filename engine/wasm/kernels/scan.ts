// The Mamba selective scan (engine/ops/scan.ts; the scalar reference is engine/cpu/kernels/scan.ts),
// forward and backward in WebAssembly SIMD, float32 state and accumulation, every flag of
// ScanParams. The code is generated in scan/codegen.ts (the layout, the passes and the order of
// every sum are described there), the vectorised exp / softplus / silu in scan/vmath.ts.
//
// Split over threads (WasmSplit): the work is a list of units, each computed the same way whichever
// part it falls in.
//   forward: a unit is a group of 4 channels of one batch row (batch * ceil(E / 4) units), so
//     decode-shaped calls (batch 1, large E) split too. Channels are independent: no partials.
//   backward: a unit is a batch row when batch > 1, else a chunk of BWD_CHUNK channels. dA, dD and
//     d(delta bias) sum over the batch: each row's sums go to shared scratch, combined in row order
//     by finish (for batch 1 straight into the outputs). dB and dC sum over channels: each unit
//     sums its own channels in a fixed order into its rows of dB, dC (batch > 1: one unit per
//     row), or for batch 1 into per-chunk partials in shared scratch, combined in chunk order by
//     finish.
// So the results do not depend on the number of threads or the ranges given to part; `run` is
// part over every unit then finish.
import type { TypedArray } from '../../dtype.ts';
import { type KernelParams, type ScanArrays, type ScanParams, scanArrays } from '../../kernels.ts';
import type { WasmHeap } from '../memory.ts';
import { kernelModule, type WasmExports, type WasmKernel } from '../kernel.ts';
import { BWD_LANE_ACC, buildScanModule, bwdRecordBytes, DEFAULT_OPTIONS, FWD_RECORD, type ScanCodegenOptions } from './scan/codegen.ts';

/** Calls of at least this many (t, e, n) steps are split over threads (as the scalar kernel). */
export const SPLIT_MIN_STEPS = 1 << 18;
/** Channels per backward unit when batch is 1 (a multiple of 4). */
export const BWD_CHUNK = 64;

type ScanModule = (heap: WasmHeap) => WasmExports;

type BwdParams = KernelParams['scan_bwd'];

/** The heap addresses of the scan's inputs in the order fwd and bwd take them (0 for an absent one). */
const inputPointers = (heap: WasmHeap, q: ScanArrays<TypedArray>) =>
  [q.x, q.delta, q.A, q.B, q.C, q.D, q.z, q.h0, q.deltaBias].map((v) => ptr(heap, v));

const allF32 = (arrays: TypedArray[]) => arrays.every((a) => a instanceof Float32Array);
const groups = (p: ScanParams) => Math.ceil(p.E / 4);
const steps = (p: ScanParams) => p.batch * p.T * p.E * p.N;

function ptr(heap: WasmHeap, a: TypedArray | undefined): number {
  return a ? heap.offsetOf(a) : 0;
}

/** Nothing to scan (no batch rows or no channels): every output is empty or an empty sum. */
function degenerate(p: ScanParams, outs: TypedArray[]): boolean {
  if (p.batch > 0 && p.E > 0) return false;
  for (const o of outs) o.fill(0);
  return true;
}

// ---- forward

const fwdUnits = (p: ScanParams) => p.batch * groups(p);
const fwdScratch = (p: ScanParams) => Math.max(16, FWD_RECORD * p.T);

function fwdPart(
  mod: ScanModule,
  heap: WasmHeap,
  ins: TypedArray[],
  outs: TypedArray[],
  p: ScanParams,
  u0: number,
  u1: number,
  scratch: number,
): void {
  if (degenerate(p, outs)) return;
  const q = scanArrays(ins, p);
  const [y, hT, hs] = outs;
  const a = (v: TypedArray | undefined) => ptr(heap, v);
  mod(heap).fwd(...inputPointers(heap, q), a(y), a(hT), p.saveStates ? a(hs) : 0, p.T, p.E, p.N, p.deltaSoftplus ? 1 : 0, u0, u1, scratch);
}

// ---- backward

/** How the backward's work and its partial sums are laid out (shapes only). */
interface BwdLayout {
  /** groups of 4 channels per unit, units per batch row, units */
  chg: number;
  nch: number;
  units: number;
  /** per batch row (batch > 1): dA [E, N], dD [E], d(bias) [E] in shared scratch, this many bytes apart */
  rowBytes: number;
  /** per chunk (batch 1, several chunks): dB [T, N], dC [T, N] in shared scratch, this many bytes apart */
  chunkBytes: number;
  shared: number;
}

function bwdLayout(p: ScanParams): BwdLayout {
  const { batch, T, E, N } = p;
  const G = groups(p);
  const chg = batch > 1 ? Math.max(1, G) : BWD_CHUNK / 4;
  const nch = Math.max(1, Math.ceil(G / chg));
  const rowBytes = batch > 1 ? 4 * (E * N + 2 * E) : 0;
  const chunkBytes = batch === 1 && nch > 1 ? 8 * T * N : 0;
  return { chg, nch, units: batch * nch, rowBytes, chunkBytes, shared: batch * rowBytes + nch * chunkBytes };
}

interface BwdArrays {
  q: ScanArrays<TypedArray>;
  dy: TypedArray;
  dhT?: TypedArray;
  dhs?: TypedArray;
  dx: TypedArray;
  ddelta: TypedArray;
  dA: TypedArray;
  dB: TypedArray;
  dC: TypedArray;
  dD?: TypedArray;
  dz?: TypedArray;
  dh0?: TypedArray;
  dBias?: TypedArray;
}

function bwdArrays(ins: TypedArray[], outs: TypedArray[], p: BwdParams): BwdArrays {
  const q = scanArrays(ins, p);
  const [dy, ...cot] = q.rest;
  const dhT = p.hasDhT ? cot.shift() : undefined;
  const dhs = p.hasDhs ? cot.shift() : undefined;
  const { x: dx, delta: ddelta, A: dA, B: dB, C: dC, D: dD, z: dz, h0: dh0, deltaBias: dBias } = scanArrays(outs, p);
  return { q, dy, dhT, dhs, dx, ddelta, dA, dB, dC, dD, dz, dh0, dBias };
}

function bwdPart(
  mod: ScanModule,
  heap: WasmHeap,
  ins: TypedArray[],
  outs: TypedArray[],
  p: BwdParams,
  u0: number,
  u1: number,
  scratch: number,
  shared: number,
): void {
  if (degenerate(p, outs)) return;
  const r = bwdArrays(ins, outs, p);
  const { q } = r;
  const L = bwdLayout(p);
  const { T, E, N } = p;
  const a = (v: TypedArray | undefined) => ptr(heap, v);
  // the row sums: the outputs themselves for batch 1, else each row's slot of shared scratch
  const rows = p.batch > 1;
  const dAo = rows ? shared : a(r.dA);
  const dDo = !r.dD ? 0 : rows ? shared + 4 * E * N : a(r.dD);
  const dbo = !r.dBias ? 0 : rows ? shared + 4 * (E * N + E) : a(r.dBias);
  // the channel sums: each row's dB, dC, or for batch 1 with several chunks each chunk's partial
  const chunks = L.chunkBytes > 0;
  const dBo = chunks ? shared : a(r.dB);
  const dCo = chunks ? shared + 4 * T * N : a(r.dC);
  mod(heap).bwd(
    ...inputPointers(heap, q),
    a(r.dy),
    a(r.dhT),
    a(r.dhs),
    a(r.dx),
    a(r.ddelta),
    a(r.dz),
    a(r.dh0),
    dAo,
    dDo,
    dbo,
    L.rowBytes,
    dBo,
    dCo,
    chunks ? 0 : 4 * T * N,
    L.chunkBytes,
    T,
    E,
    N,
    p.deltaSoftplus ? 1 : 0,
    u0,
    u1,
    L.chg,
    L.nch,
    scratch,
  );
}

function bwdFinish(mod: ScanModule, heap: WasmHeap, ins: TypedArray[], outs: TypedArray[], p: BwdParams, shared: number): void {
  if (p.batch === 0 || p.E === 0) return;
  const r = bwdArrays(ins, outs, p);
  const L = bwdLayout(p);
  const { batch, T, E, N } = p;
  const e = mod(heap);
  if (batch > 1) {
    e.sum_rows(shared, batch, L.rowBytes, E * N, heap.offsetOf(r.dA));
    if (r.dD) e.sum_rows(shared + 4 * E * N, batch, L.rowBytes, E, heap.offsetOf(r.dD));
    if (r.dBias) e.sum_rows(shared + 4 * (E * N + E), batch, L.rowBytes, E, heap.offsetOf(r.dBias));
  }
  if (L.chunkBytes > 0) {
    e.sum_rows(shared, L.nch, L.chunkBytes, T * N, heap.offsetOf(r.dB));
    e.sum_rows(shared + 4 * T * N, L.nch, L.chunkBytes, T * N, heap.offsetOf(r.dC));
  }
}

// ---- the kernels

const variants = new Map<string, { scan: WasmKernel<'scan'>; scan_bwd: WasmKernel<'scan_bwd'> }>();

/**
 * The two kernels on a module generated with these options (bench/wasm-scan.ts compares variants;
 * every variant computes the same maths, not necessarily the same bits: the exp polynomial differs).
 */
export function scanKernels(o: ScanCodegenOptions = DEFAULT_OPTIONS): { scan: WasmKernel<'scan'>; scan_bwd: WasmKernel<'scan_bwd'> } {
  const key = `nb${o.nb}-bnb${o.bnb}-exp${o.degree}-${o.hoist ? 'hoisted' : 'inline'}`;
  const known = variants.get(key);
  if (known) return known;
  const bwdScratch = (p: ScanParams) => bwdRecordBytes(o) * (p.T + 1) + BWD_LANE_ACC * p.N * p.T;
  const mod: ScanModule = kernelModule(o === DEFAULT_OPTIONS ? 'scan' : `scan/${key}`, (shared) => buildScanModule(shared, o));
  const scan: WasmKernel<'scan'> = {
    accepts: (ins, outs) => allF32(ins) && allF32(outs),
    run(heap, ins, outs, p) {
      const scratch = heap.alloc(fwdScratch(p));
      try {
        fwdPart(mod, heap, ins, outs, p, 0, fwdUnits(p), scratch);
      } finally {
        heap.free(scratch);
      }
    },
    split: {
      range: (p) => (steps(p) >= SPLIT_MIN_STEPS && fwdUnits(p) > 1 ? { n: fwdUnits(p), align: 1 } : null),
      partScratch: (p) => fwdScratch(p),
      part: (heap, ins, outs, p, r0, r1, scratch) => fwdPart(mod, heap, ins, outs, p, r0, r1, scratch),
    },
  };

  const scan_bwd: WasmKernel<'scan_bwd'> = {
    accepts: (ins, outs) => allF32(ins) && allF32(outs),
    run(heap, ins, outs, p) {
      const L = bwdLayout(p);
      const scratch = heap.alloc(bwdScratch(p));
      const shared = L.shared > 0 ? heap.alloc(L.shared) : 0;
      try {
        bwdPart(mod, heap, ins, outs, p, 0, L.units, scratch, shared);
        bwdFinish(mod, heap, ins, outs, p, shared);
      } finally {
        heap.free(scratch);
        if (shared) heap.free(shared);
      }
    },
    split: {
      range: (p) => {
        const { units } = bwdLayout(p);
        return steps(p) >= SPLIT_MIN_STEPS && units > 1 ? { n: units, align: 1 } : null;
      },
      partScratch: (p) => bwdScratch(p),
      sharedScratch: (p) => bwdLayout(p).shared,
      part: (heap, ins, outs, p, r0, r1, scratch, shared) => bwdPart(mod, heap, ins, outs, p, r0, r1, scratch, shared),
      finish: (heap, ins, outs, p, shared) => bwdFinish(mod, heap, ins, outs, p, shared),
    },
  };
  const k = { scan, scan_bwd };
  variants.set(key, k);
  return k;
}

export const { scan, scan_bwd } = scanKernels();
