// Code generation of the selective scan kernels (engine/wasm/kernels/scan.ts): the forward and the
// backward in WebAssembly SIMD (SIMD128, no relaxed SIMD), float32 state and sums, vectorised over
// channels.
//
// Layout. One v128 holds 4 consecutive channels e0..e0+3 of one batch row (a "group"): x, delta, z,
// dy [batch, T, E] are then one 16-byte load per step t, B[t, n] and C[t, n] are splats, and the 4
// channels' A[., n], h0[., n], hT[., n] are 4 lanes at a stride of N floats (gathered once per
// state, outside the loop over t). A group runs in three passes over t:
//   A: delta (+ bias, softplus), x (and the gate) into a scratch record per t;
//   B: for nb states n side by side (then one at a time for the rest): the recurrence over t,
//        h = exp(dt A[., n]) h + (dt x) B[t, n],  y[t] += C[t, n] h  (y's sum in the record),
//      so a state is one v128 in a register, the exp's constants are loop invariants, and
//      nothing is summed across lanes;
//   C: y = (sum + D x) silu(z), written out.
// The backward's pass B, bnb states at a time: the recurrence again, forward, keeping each step's
// exp(dt A) and previous state in the record; then the reverse pass over t (dh, and the sums of
// ddelta, dx per step, dA per state, dB, dC per lane); its pass C: dz, ddelta, dD, d(bias), dx.
// The last group of a row may have fewer than 4 channels: the same code with lane loads and
// stores guarded by the count (its dead lanes compute on zeros and are never stored).
//
// Order of the float32 sums, fixed by the shapes only (not by nb, bnb, nor by how the work is
// split: tested): y[t] sums n in increasing order from +0, then adds D x. The backward recomputes
// each state exactly as the forward computes it (same instructions) and accumulates, per channel,
// over n in increasing order (ddelta, dx: from g D) or over t in decreasing order (dA) or
// increasing (dD, d(bias)); per unit of work (one batch row, or for batch 1 a chunk of channels)
// dB and dC are summed over the unit's groups in increasing order in one accumulator per lane,
// the 4 lanes then added as ((l0 + l1) + l2) + l3; units are combined in increasing order by
// sum_rows (the split's finish).
//
// Measured (bench/wasm-scan.ts --variants, CPU time, one thread): forward 4 states per pass
// 1.12 ns per (t, e, n) step against 1.28 (2) and 1.41 (1); backward 2 states 2.15 against 2.30;
// the degree-6 exp about 8% slower than degree 5 in both; hoisting the constants makes no difference.
import { type FunctionBuilder, type Local, ModuleBuilder, type Operand } from '../../assembler.ts';
import {
  activationConstants,
  emitExp,
  emitSigmoid,
  emitSilu,
  emitSiluGrad,
  emitSoftplus,
  expConstants,
  VConsts,
  type VTemps,
  vtemps,
} from './vmath.ts';

export interface ScanCodegenOptions {
  /** states n per pass of the forward's recurrence (1, 2 or 4) */
  nb: number;
  /** states n per pass of the backward's (1 or 2) */
  bnb: number;
  /** degree of exp's polynomial */
  degree: 5 | 6;
  /** constants in locals set before the loops (true) or v128.const at each use */
  hoist: boolean;
}

export const DEFAULT_OPTIONS: ScanCodegenOptions = { nb: 4, bnb: 2, degree: 6, hoist: true };

/** Bytes of the forward's scratch record per step t: dt, dt x, the running y. */
export const FWD_RECORD = 48;
/** Bytes of the backward's record per step t (T + 1 of them): see `bwd`. */
export const bwdRecordBytes = (o: ScanCodegenOptions) => 96 + 32 * o.bnb;
const abarAt = (j: number) => 96 + 32 * j;
const hAt = (j: number) => 112 + 32 * j;
/** Bytes of the backward's per-lane dB, dC accumulators per (n, t). */
export const BWD_LANE_ACC = 32;

type I32Names<N extends string> = Record<N, Local>;
function i32s<const N extends string>(f: FunctionBuilder, ...names: N[]): I32Names<N> {
  return Object.fromEntries(names.map((n) => [n, f.local.declare('i32')])) as I32Names<N>;
}

/** A loop running `count` (i32 >= 0, evaluated once) times, counting down on local c. */
function times(f: FunctionBuilder, c: Local, count: Operand, body: () => void): void {
  f.local.set(c, count);
  f.if(c, () =>
    f.loop((top) => {
      body();
      f.br_if(top, () => f.local.tee(c, () => f.i32.sub(c, 1)));
    }),
  );
}

/** p += d (bytes). */
function bump(f: FunctionBuilder, p: Local, d: Operand): void {
  f.local.set(p, () => f.i32.add(p, d));
}

/**
 * The state dimensions n = 0 .. N-1 in blocks of nb while a whole block fits, then one at a time
 * (nb > 1): `block(k)` emits the work of k state dimensions from n and advances n by k. Forward
 * and backward walk N this way.
 */
function stateBlocks(f: FunctionBuilder, n: Local, N: Local, nb: number, block: (k: number) => void): void {
  f.local.set(n, 0);
  const whileFits = (k: number) =>
    f.block((done) =>
      f.loop((top) => {
        f.br_if(done, () => f.i32.gt_s(() => f.i32.add(n, k), N));
        block(k);
        f.br(top);
      }),
    );
  whileFits(nb);
  if (nb > 1) whileFits(1);
}

/**
 * Lane access of one group: 4 floats at addr + k * stride (stride in bytes, a local or a constant),
 * all 4 (`full`) or the first `nv` (the rest loaded as zero, not stored).
 */
class Lanes {
  constructor(
    private readonly f: FunctionBuilder,
    private readonly full: boolean,
    private readonly nv: Local,
    private readonly tmp: Local,
  ) {}

  private each(addr: Operand, stride: Local | number, lane: (k: number, at: Operand, offset: number) => void): void {
    const f = this.f;
    if (typeof stride === 'number') {
      f.local.set(this.tmp, addr);
      for (let k = 0; k < 4; k++) {
        const go = () => lane(k, this.tmp, k * stride);
        if (this.full || k === 0) go();
        else f.if(() => f.i32.gt_s(this.nv, k), go);
      }
      return;
    }
    f.local.set(this.tmp, addr);
    for (let k = 0; k < 4; k++) {
      const go = () => {
        if (k > 0) bump(f, this.tmp, stride);
        lane(k, this.tmp, 0);
      };
      if (this.full || k === 0) go();
      else f.if(() => f.i32.gt_s(this.nv, k), go);
    }
  }

  /** into = the lanes at addr. */
  load(into: Local, addr: Operand, stride: Local | number): void {
    const f = this.f;
    if (this.full && stride === 4) {
      f.local.set(into, () => f.v128.load(addr));
      return;
    }
    this.each(addr, stride, (k, at, offset) => {
      if (k === 0) f.local.set(into, () => f.v128.load32_zero(at, offset));
      else f.local.set(into, () => f.v128.load32_lane(k, at, into, offset));
    });
  }

  /** Stores the lanes of value at addr. */
  store(addr: Operand, value: Local, stride: Local | number): void {
    const f = this.f;
    if (this.full && stride === 4) {
      f.v128.store(addr, value);
      return;
    }
    this.each(addr, stride, (k, at, offset) => f.v128.store32_lane(k, at, value, offset));
  }
}

const zero = (f: FunctionBuilder) => () => f.i32x4.splat(0);

/** A v128 local per name. */
function v128s<const N extends string>(f: FunctionBuilder, ...names: N[]): Record<N, Local> {
  return Object.fromEntries(names.map((n) => [n, f.local.declare('v128')])) as Record<N, Local>;
}

/**
 * fwd(x, delta, A, B, C, D, z, h0, bias, y, hT, hs, T, E, N, softplus, u0, u1, scratch): units
 * [u0, u1) of batch * ceil(E / 4) groups (unit u: batch row u / groups, group u % groups).
 * Absent inputs / outputs are null pointers (0). scratch: FWD_RECORD * T bytes.
 */
function fwd(m: ModuleBuilder, o: ScanCodegenOptions): void {
  m.function(
    'fwd',
    Array(19).fill('i32'),
    [],
    (f, x, delta, A, B, C, D, z, h0, bias, y, hT, hs, T, E, N, sp, u0, u1, scr) => {
      const L = i32s(f, 'u', 'b', 'e0', 'nv', 'G', 'c', 'n', 'io', 'rec', 'pB', 'pC', 'phs', 'N4', 'E4', 'EN4', 'aOff', 'sOff', 'tmp');
      const V = v128s(f, 'raw', 'dt', 'dtx', 'xv', 'yv', 'biasv', 'Dv', 'zv');
      const h = Array.from({ length: o.nb }, () => f.local.declare('v128'));
      const an = Array.from({ length: o.nb }, () => f.local.declare('v128'));
      const t = vtemps(f);
      const k = new VConsts(f, o.hoist);
      k.hoist([...expConstants(o.degree), ...activationConstants()]);
      const { u, b, e0, nv, G, c, n, io, rec, pB, pC, phs, N4, E4, EN4, aOff, sOff } = L;

      f.local.set(G, () => f.i32.shr_u(() => f.i32.add(E, 3), 2));
      f.local.set(N4, () => f.i32.shl(N, 2));
      f.local.set(E4, () => f.i32.shl(E, 2));
      f.local.set(EN4, () => f.i32.mul(E4, N));

      const unit = (full: boolean) => {
        const lanes = new Lanes(f, full, nv, L.tmp);
        // io: the byte offset of [b, t, e0] in a [batch, T, E] array, at t = 0
        f.local.set(io, () => f.i32.shl(() => f.i32.add(() => f.i32.mul(() => f.i32.mul(b, T), E), e0), 2));
        f.if(bias, () => lanes.load(V.biasv, () => f.i32.add(bias, () => f.i32.shl(e0, 2)), 4));
        f.if(D, () => lanes.load(V.Dv, () => f.i32.add(D, () => f.i32.shl(e0, 2)), 4));
        // pass A: dt, dt x per step, y's sum zeroed
        f.local.set(rec, scr);
        times(f, c, T, () => {
          lanes.load(V.raw, () => f.i32.add(delta, io), 4);
          f.if(bias, () => f.local.set(V.raw, () => f.f32x4.add(V.raw, V.biasv)));
          f.if(
            sp,
            () => emitSoftplus(f, k, V.raw, t, o.degree),
            () => f.local.get(V.raw),
            'v128',
          );
          f.local.set(V.dt);
          lanes.load(V.xv, () => f.i32.add(x, io), 4);
          f.v128.store(rec, V.dt, 0);
          f.v128.store(rec, () => f.f32x4.mul(V.dt, V.xv), 16);
          f.v128.store(rec, zero(f), 32);
          bump(f, rec, FWD_RECORD);
          bump(f, io, E4);
        });
        // pass B: the recurrence, nb states at a time, then one at a time
        const block = (nb: number) => {
          // aOff: A[e0, n]; sOff: [b, e0, n] of a [batch, E, N] array
          f.local.set(aOff, () => f.i32.shl(() => f.i32.add(() => f.i32.mul(e0, N), n), 2));
          f.local.set(sOff, () => f.i32.add(() => f.i32.mul(b, EN4), aOff));
          for (let j = 0; j < nb; j++) {
            lanes.load(an[j], () => f.i32.add(A, () => f.i32.add(aOff, 4 * j)), N4);
            f.if(
              h0,
              () => lanes.load(h[j], () => f.i32.add(h0, () => f.i32.add(sOff, 4 * j)), N4),
              () => f.local.set(h[j], zero(f)),
            );
          }
          const loop = (states: boolean) => {
            f.local.set(rec, scr);
            f.local.set(pB, () => f.i32.add(B, () => f.i32.shl(() => f.i32.add(() => f.i32.mul(() => f.i32.mul(b, T), N), n), 2)));
            f.local.set(pC, () => f.i32.add(C, () => f.i32.sub(pB, B)));
            if (states) f.local.set(phs, () => f.i32.add(hs, () => f.i32.add(() => f.i32.mul(() => f.i32.mul(b, T), EN4), aOff)));
            times(f, c, T, () => {
              f.local.set(V.dt, () => f.v128.load(rec, 0));
              f.local.set(V.dtx, () => f.v128.load(rec, 16));
              f.local.set(V.yv, () => f.v128.load(rec, 32));
              for (let j = 0; j < nb; j++) {
                f.local.set(h[j], () =>
                  f.f32x4.add(
                    () => f.f32x4.mul(() => emitExp(f, k, () => f.f32x4.mul(V.dt, an[j]), t, o.degree), h[j]),
                    () => f.f32x4.mul(V.dtx, () => f.v128.load32_splat(pB, 4 * j)),
                  ),
                );
                if (states) lanes.store(() => f.i32.add(phs, 4 * j), h[j], N4);
                f.local.set(V.yv, () => f.f32x4.add(V.yv, () => f.f32x4.mul(() => f.v128.load32_splat(pC, 4 * j), h[j])));
              }
              f.v128.store(rec, V.yv, 32);
              bump(f, rec, FWD_RECORD);
              bump(f, pB, N4);
              bump(f, pC, N4);
              if (states) bump(f, phs, EN4);
            });
          };
          f.if(
            hs,
            () => loop(true),
            () => loop(false),
          );
          for (let j = 0; j < nb; j++) lanes.store(() => f.i32.add(hT, () => f.i32.add(sOff, 4 * j)), h[j], N4);
          bump(f, n, nb);
        };
        stateBlocks(f, n, N, o.nb, block);
        // pass C: y = (sum + D x) silu(z)
        f.local.set(io, () => f.i32.shl(() => f.i32.add(() => f.i32.mul(() => f.i32.mul(b, T), E), e0), 2));
        f.local.set(rec, scr);
        times(f, c, T, () => {
          f.local.set(V.yv, () => f.v128.load(rec, 32));
          f.if(D, () => {
            lanes.load(V.xv, () => f.i32.add(x, io), 4);
            f.local.set(V.yv, () => f.f32x4.add(V.yv, () => f.f32x4.mul(V.Dv, V.xv)));
          });
          f.if(z, () => {
            lanes.load(V.zv, () => f.i32.add(z, io), 4);
            f.local.set(V.yv, () => f.f32x4.mul(V.yv, () => emitSilu(f, k, V.zv, t, o.degree)));
          });
          lanes.store(() => f.i32.add(y, io), V.yv, 4);
          bump(f, rec, FWD_RECORD);
          bump(f, io, E4);
        });
      };

      f.for(u, u0, u1, 1, () => {
        f.local.set(b, () => f.i32.div_u(u, G));
        f.local.set(e0, () => f.i32.shl(() => f.i32.sub(u, () => f.i32.mul(b, G)), 2));
        f.local.set(nv, () => f.i32.sub(E, e0));
        f.if(
          () => f.i32.ge_s(nv, 4),
          () => unit(true),
          () => unit(false),
        );
      });
    },
    { export: true },
  );
}

/**
 * bwd(x, delta, A, B, C, D, z, h0, bias, dy, dhT, dhs, dx, ddelta, dz, dh0, dAo, dDo, dbo,
 *     pstride, dBo, dCo, rowStride, chunkStride, T, E, N, softplus, u0, u1, chg, nch, scratch):
 * units [u0, u1) of batch * nch (unit u: batch row u / nch, chunk u % nch of chg groups).
 * Per channel outputs (dx, ddelta, dz, dh0) go where they belong; the row sums dA [E, N], dD [E],
 * d(bias) [E] of row b to dAo / dDo / dbo + b * pstride; the unit's dB, dC [T, N] to
 * dBo / dCo + b * rowStride + chunk * chunkStride. scratch: bwdRecordBytes * (T + 1) +
 * BWD_LANE_ACC * T * N bytes.
 *
 * The record of step t: 0 dt, 16 x, 32 g = dy silu(z), 48 the ungated sum C h (for dz), 64 ddt,
 * 80 dx, then for each of the pass's bnb states 96 + 32 j exp(dt A[., n + j]) and 112 + 32 j
 * the state before step t (record T: the last state). The lane accumulators: [T][N] x (dB, dC).
 */
function bwd(m: ModuleBuilder, o: ScanCodegenOptions): void {
  m.function(
    'bwd',
    Array(33).fill('i32'),
    [],
    (
      f,
      x,
      delta,
      A,
      B,
      C,
      D,
      z,
      h0,
      bias,
      dy,
      dhT,
      dhs,
      dx,
      ddelta,
      dz,
      dh0,
      dAo,
      dDo,
      dbo,
      pstride,
      dBo,
      dCo,
      rowStride,
      chunkStride,
      T,
      E,
      N,
      sp,
      u0,
      u1,
      chg,
      nch,
      scr,
    ) => {
      const L = i32s(
        f,
        'u',
        'b',
        'ch',
        'g',
        'g1',
        'G',
        'e0',
        'nv',
        'c',
        'n',
        'io',
        'rec',
        'pl',
        'pB',
        'pC',
        'pdhs',
        'N4',
        'E4',
        'EN4',
        'aOff',
        'sOff',
        'acc',
        'dst',
        'tmp',
        'NL',
      );
      const V = v128s(
        f,
        'raw',
        'dt',
        'xv',
        'gv',
        'biasv',
        'Dv',
        'zv',
        's',
        'abar',
        'dhn',
        'w',
        'bn',
        'dhdt',
        'ddt',
        'dxv',
        'dDv',
        'dbv',
        'q',
      );
      const an = Array.from({ length: o.bnb }, () => f.local.declare('v128'));
      const h = Array.from({ length: o.bnb }, () => f.local.declare('v128'));
      const dh = Array.from({ length: o.bnb }, () => f.local.declare('v128'));
      const dAv = Array.from({ length: o.bnb }, () => f.local.declare('v128'));
      const REC = bwdRecordBytes(o);
      const t: VTemps = vtemps(f);
      const k = new VConsts(f, o.hoist);
      k.hoist([...expConstants(o.degree), ...activationConstants()]);
      const { u, b, ch, g, g1, G, e0, nv, c, n, io, rec, pl, pB, pC, pdhs, N4, E4, EN4, aOff, sOff, acc, dst, NL } = L;
      const f32 = f.f32x4;

      f.local.set(G, () => f.i32.shr_u(() => f.i32.add(E, 3), 2));
      f.local.set(N4, () => f.i32.shl(N, 2));
      f.local.set(E4, () => f.i32.shl(E, 2));
      f.local.set(EN4, () => f.i32.mul(E4, N));
      f.local.set(NL, () => f.i32.mul(N, BWD_LANE_ACC));
      f.local.set(acc, () => f.i32.add(scr, () => f.i32.mul(() => f.i32.add(T, 1), REC)));
      const ioAt0 = () => f.local.set(io, () => f.i32.shl(() => f.i32.add(() => f.i32.mul(() => f.i32.mul(b, T), E), e0), 2));

      const group = (full: boolean) => {
        const lanes = new Lanes(f, full, nv, L.tmp);
        const laneAddr = (base: Local, off: Operand) => () => f.i32.add(base, off);
        f.if(bias, () =>
          lanes.load(
            V.biasv,
            laneAddr(bias, () => f.i32.shl(e0, 2)),
            4,
          ),
        );
        f.if(D, () =>
          lanes.load(
            V.Dv,
            laneAddr(D, () => f.i32.shl(e0, 2)),
            4,
          ),
        );
        // pass A
        ioAt0();
        f.local.set(rec, scr);
        times(f, c, T, () => {
          lanes.load(V.raw, laneAddr(delta, io), 4);
          f.if(bias, () => f.local.set(V.raw, () => f32.add(V.raw, V.biasv)));
          f.if(
            sp,
            () => emitSoftplus(f, k, V.raw, t, o.degree),
            () => f.local.get(V.raw),
            'v128',
          );
          f.local.set(V.dt);
          f.v128.store(rec, V.dt, 0);
          lanes.load(V.xv, laneAddr(x, io), 4);
          f.v128.store(rec, V.xv, 16);
          lanes.load(V.gv, laneAddr(dy, io), 4);
          f.if(z, () => {
            lanes.load(V.zv, laneAddr(z, io), 4);
            f.local.set(V.gv, () => f32.mul(V.gv, () => emitSilu(f, k, V.zv, t, o.degree)));
          });
          f.v128.store(rec, V.gv, 32);
          f.v128.store(rec, zero(f), 48);
          f.v128.store(rec, zero(f), 64);
          f.if(
            D,
            () => f32.mul(V.gv, V.Dv),
            () => zero(f)(),
            'v128',
          );
          f.local.set(V.q);
          f.v128.store(rec, V.q, 80);
          bump(f, rec, REC);
          bump(f, io, E4);
        });
        // pass B, bnb states at a time (then one at a time): the recurrence recomputed forward,
        // then the reverse pass
        const block = (nb: number) => {
          f.local.set(aOff, () => f.i32.shl(() => f.i32.add(() => f.i32.mul(e0, N), n), 2));
          f.local.set(sOff, () => f.i32.add(() => f.i32.mul(b, EN4), aOff));
          for (let j = 0; j < nb; j++) {
            lanes.load(
              an[j],
              laneAddr(A, () => f.i32.add(aOff, 4 * j)),
              N4,
            );
            f.if(
              h0,
              () =>
                lanes.load(
                  h[j],
                  laneAddr(h0, () => f.i32.add(sOff, 4 * j)),
                  N4,
                ),
              () => f.local.set(h[j], zero(f)),
            );
          }
          f.local.set(pB, () => f.i32.add(B, () => f.i32.shl(() => f.i32.add(() => f.i32.mul(() => f.i32.mul(b, T), N), n), 2)));
          f.local.set(pC, () => f.i32.add(C, () => f.i32.sub(pB, B)));
          const forward = (withSum: boolean) => {
            f.local.set(rec, scr);
            times(f, c, T, () => {
              f.local.set(V.dt, () => f.v128.load(rec, 0));
              // dt x, as the forward computes it
              f.local.set(V.xv, () => f32.mul(V.dt, () => f.v128.load(rec, 16)));
              if (withSum) f.local.set(V.s, () => f.v128.load(rec, 48));
              for (let j = 0; j < nb; j++) {
                f.local.set(V.abar, () => emitExp(f, k, () => f32.mul(V.dt, an[j]), t, o.degree));
                f.v128.store(rec, V.abar, abarAt(j));
                f.v128.store(rec, h[j], hAt(j));
                f.local.set(h[j], () =>
                  f32.add(
                    () => f32.mul(V.abar, h[j]),
                    () => f32.mul(V.xv, () => f.v128.load32_splat(pB, 4 * j)),
                  ),
                );
                if (withSum) f.local.set(V.s, () => f32.add(V.s, () => f32.mul(() => f.v128.load32_splat(pC, 4 * j), h[j])));
              }
              if (withSum) f.v128.store(rec, V.s, 48);
              bump(f, rec, REC);
              bump(f, pB, N4);
              bump(f, pC, N4);
            });
            for (let j = 0; j < nb; j++) f.v128.store(rec, h[j], hAt(j));
          };
          f.if(
            z,
            () => forward(true),
            () => forward(false),
          );
          // reverse: from t = T - 1 down
          f.local.set(rec, () => f.i32.sub(rec, REC));
          f.local.set(pl, () =>
            f.i32.add(acc, () => f.i32.mul(() => f.i32.add(() => f.i32.mul(() => f.i32.sub(T, 1), N), n), BWD_LANE_ACC)),
          );
          bump(f, pB, () => f.i32.sub(0, N4));
          bump(f, pC, () => f.i32.sub(0, N4));
          for (let j = 0; j < nb; j++) {
            f.if(
              dhT,
              () =>
                lanes.load(
                  dh[j],
                  laneAddr(dhT, () => f.i32.add(sOff, 4 * j)),
                  N4,
                ),
              () => f.local.set(dh[j], zero(f)),
            );
            f.local.set(dAv[j], zero(f));
          }
          const reverse = (withDhs: boolean) => {
            if (withDhs)
              f.local.set(pdhs, () =>
                f.i32.add(dhs, () => f.i32.add(() => f.i32.mul(() => f.i32.sub(() => f.i32.mul(() => f.i32.add(b, 1), T), 1), EN4), aOff)),
              );
            times(f, c, T, () => {
              f.local.set(V.gv, () => f.v128.load(rec, 32));
              f.local.set(V.xv, () => f.v128.load(rec, 16));
              f.local.set(V.dt, () => f.v128.load(rec, 0));
              f.local.set(V.ddt, () => f.v128.load(rec, 64));
              f.local.set(V.dxv, () => f.v128.load(rec, 80));
              for (let j = 0; j < nb; j++) {
                if (withDhs) {
                  lanes.load(V.q, () => f.i32.add(pdhs, 4 * j), N4);
                  f.local.set(dh[j], () => f32.add(dh[j], V.q));
                }
                f.local.set(V.dhn, () => f32.add(dh[j], () => f32.mul(V.gv, () => f.v128.load32_splat(pC, 4 * j))));
                // dC += g h_t (h_t: the state before step t + 1)
                f.v128.store(
                  pl,
                  () =>
                    f32.add(
                      () => f.v128.load(pl, 32 * j + 16),
                      () => f32.mul(V.gv, () => f.v128.load(rec, REC + hAt(j))),
                    ),
                  32 * j + 16,
                );
                f.local.set(V.abar, () => f.v128.load(rec, abarAt(j)));
                f.local.set(V.w, () => f32.mul(V.abar, () => f.v128.load(rec, hAt(j))));
                f.local.set(V.bn, () => f.v128.load32_splat(pB, 4 * j));
                f.local.set(V.ddt, () =>
                  f32.add(V.ddt, () =>
                    f32.mul(V.dhn, () =>
                      f32.add(
                        () => f32.mul(an[j], V.w),
                        () => f32.mul(V.bn, V.xv),
                      ),
                    ),
                  ),
                );
                f.local.set(V.dhdt, () => f32.mul(V.dhn, V.dt));
                f.local.set(dAv[j], () => f32.add(dAv[j], () => f32.mul(V.dhdt, V.w)));
                f.v128.store(
                  pl,
                  () =>
                    f32.add(
                      () => f.v128.load(pl, 32 * j),
                      () => f32.mul(V.dhdt, V.xv),
                    ),
                  32 * j,
                );
                f.local.set(V.dxv, () => f32.add(V.dxv, () => f32.mul(V.dhdt, V.bn)));
                f.local.set(dh[j], () => f32.mul(V.dhn, V.abar));
              }
              f.v128.store(rec, V.ddt, 64);
              f.v128.store(rec, V.dxv, 80);
              if (withDhs) bump(f, pdhs, () => f.i32.sub(0, EN4));
              bump(f, rec, -REC);
              bump(f, pl, () => f.i32.sub(0, NL));
              bump(f, pB, () => f.i32.sub(0, N4));
              bump(f, pC, () => f.i32.sub(0, N4));
            });
          };
          f.if(
            dhs,
            () => reverse(true),
            () => reverse(false),
          );
          for (let j = 0; j < nb; j++) {
            lanes.store(
              laneAddr(dAo, () =>
                f.i32.add(
                  () => f.i32.mul(b, pstride),
                  () => f.i32.add(aOff, 4 * j),
                ),
              ),
              dAv[j],
              N4,
            );
            f.if(dh0, () =>
              lanes.store(
                laneAddr(dh0, () => f.i32.add(sOff, 4 * j)),
                dh[j],
                N4,
              ),
            );
          }
          bump(f, n, nb);
        };
        stateBlocks(f, n, N, o.bnb, block);
        // pass C
        ioAt0();
        f.local.set(rec, scr);
        f.local.set(V.dDv, zero(f));
        f.local.set(V.dbv, zero(f));
        times(f, c, T, () => {
          f.if(z, () => {
            lanes.load(V.zv, laneAddr(z, io), 4);
            f.local.set(V.s, () => f.v128.load(rec, 48));
            f.if(D, () => f.local.set(V.s, () => f32.add(V.s, () => f32.mul(V.Dv, () => f.v128.load(rec, 16)))));
            lanes.load(V.q, laneAddr(dy, io), 4);
            f.local.set(V.q, () =>
              f32.mul(
                () => f32.mul(V.q, V.s),
                () => emitSiluGrad(f, k, V.zv, t, o.degree),
              ),
            );
            lanes.store(laneAddr(dz, io), V.q, 4);
          });
          f.local.set(V.q, () => f.v128.load(rec, 64));
          f.if(sp, () => {
            lanes.load(V.raw, laneAddr(delta, io), 4);
            f.if(bias, () => f.local.set(V.raw, () => f32.add(V.raw, V.biasv)));
            f.local.set(V.q, () => f32.mul(V.q, () => emitSigmoid(f, k, V.raw, t, o.degree)));
          });
          lanes.store(laneAddr(ddelta, io), V.q, 4);
          f.local.set(V.dbv, () => f32.add(V.dbv, V.q));
          f.local.set(V.dDv, () =>
            f32.add(V.dDv, () =>
              f32.mul(
                () => f.v128.load(rec, 32),
                () => f.v128.load(rec, 16),
              ),
            ),
          );
          f.local.set(V.q, () => f.v128.load(rec, 80));
          lanes.store(laneAddr(dx, io), V.q, 4);
          bump(f, rec, REC);
          bump(f, io, E4);
        });
        f.if(D, () =>
          lanes.store(
            laneAddr(dDo, () =>
              f.i32.add(
                () => f.i32.mul(b, pstride),
                () => f.i32.shl(e0, 2),
              ),
            ),
            V.dDv,
            4,
          ),
        );
        f.if(bias, () =>
          lanes.store(
            laneAddr(dbo, () =>
              f.i32.add(
                () => f.i32.mul(b, pstride),
                () => f.i32.shl(e0, 2),
              ),
            ),
            V.dbv,
            4,
          ),
        );
      };

      f.for(u, u0, u1, 1, () => {
        f.local.set(b, () => f.i32.div_u(u, nch));
        f.local.set(ch, () => f.i32.sub(u, () => f.i32.mul(b, nch)));
        // the lane accumulators of dB, dC: zero
        f.local.set(pl, acc);
        times(
          f,
          c,
          () => f.i32.mul(N, T),
          () => {
            f.v128.store(pl, zero(f), 0);
            f.v128.store(pl, zero(f), 16);
            bump(f, pl, BWD_LANE_ACC);
          },
        );
        f.local.set(g, () => f.i32.mul(ch, chg));
        f.local.set(g1, () => f.i32.add(g, chg));
        f.if(
          () => f.i32.gt_s(g1, G),
          () => f.local.set(g1, G),
        );
        f.for(g, g, g1, 1, () => {
          f.local.set(e0, () => f.i32.shl(g, 2));
          f.local.set(nv, () => f.i32.sub(E, e0));
          f.if(
            () => f.i32.ge_s(nv, 4),
            () => group(true),
            () => group(false),
          );
        });
        // the lanes' sums into the unit's dB, dC [T, N] (the accumulators' order): ((l0 + l1) + l2) + l3
        f.local.set(pl, acc);
        f.local.set(dst, () =>
          f.i32.add(
            () => f.i32.mul(b, rowStride),
            () => f.i32.mul(ch, chunkStride),
          ),
        );
        times(
          f,
          c,
          () => f.i32.mul(N, T),
          () => {
            for (const [base, off] of [
              [dBo, 0],
              [dCo, 16],
            ] as const) {
              f.local.set(V.q, () => f.v128.load(pl, off));
              f.f32.store(
                () => f.i32.add(base, dst),
                () =>
                  f.f32.add(
                    () =>
                      f.f32.add(
                        () =>
                          f.f32.add(
                            () => f32.extract_lane(0, V.q),
                            () => f32.extract_lane(1, V.q),
                          ),
                        () => f32.extract_lane(2, V.q),
                      ),
                    () => f32.extract_lane(3, V.q),
                  ),
              );
            }
            bump(f, pl, BWD_LANE_ACC);
            bump(f, dst, 4);
          },
        );
      });
    },
    { export: true },
  );
}

/**
 * sum_rows(src, rows, stride, len, dst): dst[j] = ((src_0[j] + src_1[j]) + ...) + src_{rows-1}[j]
 * for j < len, src_r at src + r * stride bytes (rows >= 1). The split's finish.
 */
function sumRows(m: ModuleBuilder): void {
  m.function(
    'sum_rows',
    Array(5).fill('i32'),
    [],
    (f, src, rows, stride, len, dst) => {
      const { j, r, p, end } = i32s(f, 'j', 'r', 'p', 'end');
      const s = f.local.declare('v128'),
        s1 = f.local.declare('f32');
      f.local.set(end, () => f.i32.shl(() => f.i32.and(len, ~3), 2));
      f.for(j, 0, end, 16, () => {
        f.local.set(p, () => f.i32.add(src, j));
        f.local.set(s, () => f.v128.load(p));
        f.for(r, 1, rows, 1, () => {
          bump(f, p, stride);
          f.local.set(s, () => f.f32x4.add(s, () => f.v128.load(p)));
        });
        f.v128.store(() => f.i32.add(dst, j), s);
      });
      f.for(
        j,
        end,
        () => f.i32.shl(len, 2),
        4,
        () => {
          f.local.set(p, () => f.i32.add(src, j));
          f.local.set(s1, () => f.f32.load(p));
          f.for(r, 1, rows, 1, () => {
            bump(f, p, stride);
            f.local.set(s1, () => f.f32.add(s1, () => f.f32.load(p)));
          });
          f.f32.store(() => f.i32.add(dst, j), s1);
        },
      );
    },
    { export: true },
  );
}

/** The scan module: fwd, bwd, sum_rows. */
export function buildScanModule(shared: boolean, o: ScanCodegenOptions = DEFAULT_OPTIONS): ModuleBuilder {
  const m = new ModuleBuilder();
  m.importMemory({ initial: 0, maximum: 65536, shared });
  fwd(m, o);
  bwd(m, o);
  sumRows(m);
  return m;
}
