// Code generation of the few-rows float32 matmul (M <= 8: decoding one token, or a handful of
// sequences; used where it measured faster than the blocked kernel, fewRowsFaster), one function per M so that the M rows' accumulators are WebAssembly locals. A (at
// most 8 x K) is packed k-major, dst[k * M + i], so each k's M values are one pointer plus constant
// offsets. B is read where it lies, with no packing: packing the weights would cost as much memory
// traffic as the product itself when M is 1.
//   transB (B stored [N, K], the weights of linear()): 4 rows of B (4 output columns) are read
//     side by side, 4 floats each, and transposed in registers (8 shuffles) into 4 vectors of one
//     k each: the weight matrix is streamed front to back, 4 rows at a time.
//   B stored [K, N]: each k reads 4G consecutive columns of B's row k.
// Either way a v128 accumulator holds 4 output columns, and each output is the float32 sum over k
// in increasing order from +0 (acc = acc + a * b), exactly as in the blocked kernel: the result
// does not depend on which path computes it, nor on how the columns are split (the columns that do
// not fill a vector are summed one at a time in the same order).
import type { FuncRef, FunctionBuilder, Local, ModuleBuilder } from '../../assembler.ts';
import { i32s, transpose4x4 } from './blocked.ts';

/** The most rows this kernel takes (and below which the threads split columns, not rows). */
export const SMALL_M = 8;

/** packRows(src, rs, cs, M, K, dst): dst[k * M + i] = src[i * rs + k * cs] (A(i, k), k-major). */
export function packRows(m: ModuleBuilder): FuncRef {
  return m.function('pack_rows', Array(6).fill('i32'), [], (f, src, rs, cs, M, K, dst) => {
    const { k, i, p, q } = i32s(f, 'k', 'i', 'p', 'q');
    f.local.set(q, dst);
    f.for(k, 0, K, 1, () => {
      f.local.set(p, () => f.i32.add(src, () => f.i32.shl(() => f.i32.mul(k, cs), 2)));
      f.for(i, 0, M, 1, () => {
        f.f32.store(q, () => f.f32.load(p));
        f.local.set(p, () => f.i32.add(p, () => f.i32.shl(rs, 2)));
        f.local.set(q, () => f.i32.add(q, 4));
      });
    });
  });
}

/**
 * Column groups per pass (G vectors of 4 columns), M x G accumulators <= 8. transB: one group;
 * measured, two groups (more accumulators, but 8 more vectors live for the transposes) were
 * slower for every M (M = 2: 17 against 25 GFLOP/s).
 */
export function groupsFor(M: number, transB: boolean): number {
  if (transB) return 1;
  return M === 1 ? 8 : M === 2 ? 4 : M <= 4 ? 2 : 1;
}

/**
 * The largest M for which this kernel beats the blocked one (which packs B first), measured
 * here with 768 x 1536 and 768 x 50280 weights: transB up to 3 rows (M = 4: 20 against 29
 * GFLOP/s), B [K, N] up to 6 (M = 8: 19 against 31). The kernels give the same bits, so the choice
 * is only about speed.
 */
export function fewRowsFaster(M: number, transB: boolean): boolean {
  return M <= (transB ? 3 : 6);
}

/** A counted loop running `count` (i32, >= 0) times, on local n. */
function times(f: FunctionBuilder, n: Local, count: () => void, body: () => void): void {
  f.local.set(n, count);
  f.if(n, () =>
    f.loop((top) => {
      body();
      f.br_if(top, () => f.local.tee(n, () => f.i32.sub(n, 1)));
    }),
  );
}

/**
 * small_{t|n}{M}(pa, b, c, K, N, n0, n1): columns [n0, n1) of C [M, N] at c, from the packed A
 * at pa and B at b ([N, K] when transB, else [K, N]). K >= 1.
 */
export function small(m: ModuleBuilder, M: number, transB: boolean): FuncRef {
  const G = groupsFor(M, transB);
  return m.function(`small_${transB ? 't' : 'n'}${M}`, Array(7).fill('i32'), [], (f, pa, b, c, K, N, n0, n1) => {
    const { j, bp, ap, n, rs, ldc, cp } = i32s(f, 'j', 'bp', 'ap', 'n', 'rs', 'ldc', 'cp');
    const acc = Array.from({ length: M }, () => Array.from({ length: G }, () => f.local.declare('v128')));
    const av = f.local.declare('v128');
    const v = Array.from({ length: transB ? 8 : M > 1 ? G : 0 }, () => f.local.declare('v128'));
    // byte offsets of B's rows 1..4G-1 from the group's first row (transB)
    const ro = Array.from({ length: transB ? 4 * G : 0 }, () => f.local.declare('i32'));
    const s = Array.from({ length: M }, () => f.local.declare('f32'));
    const w = f.local.declare('f32');
    f.local.set(rs, () => f.i32.shl(K, 2));
    f.local.set(ldc, () => f.i32.shl(N, 2));
    ro.forEach((r, i) => {
      f.local.set(r, () => f.i32.mul(rs, i));
    });
    const rowAt = (r: number) => (r === 0 ? bp : () => f.i32.add(bp, ro[r]));
    const madd = (x: Local, y: Local | (() => void), into: Local) => f.local.set(into, () => f.f32x4.add(into, () => f.f32x4.mul(x, y)));

    /** One k step of 4 consecutive k for group g (transB): 4 rows, transposed, times 4 splats of A each. */
    const transposedStep = (g: number) => {
      const [r0, r1, r2, r3, t0, t1, t2, t3] = v;
      [r0, r1, r2, r3].forEach((r, c) => {
        f.local.set(r, () => f.v128.load(rowAt(4 * g + c)));
      });
      // column vectors of k, k+1, k+2, k+3 (lanes: the group's 4 output columns)
      transpose4x4(f, [r0, r1, r2, r3], [t0, t1, t2, t3]);
      [r0, r1, r2, r3].forEach((col, kk) => {
        for (let i = 0; i < M; i++) {
          f.local.set(av, () => f.v128.load32_splat(ap, 4 * (kk * M + i)));
          madd(av, col, acc[i][g]);
        }
      });
    };

    /** Gc vectors of 4 columns starting at column j. */
    const group = (Gc: number) => {
      for (let i = 0; i < M; i++) for (let g = 0; g < Gc; g++) f.local.set(acc[i][g], () => f.i32x4.splat(0));
      f.local.set(ap, pa);
      if (transB) {
        f.local.set(bp, () => f.i32.add(b, () => f.i32.mul(j, rs)));
        times(
          f,
          n,
          () => f.i32.shr_u(K, 2),
          () => {
            for (let g = 0; g < Gc; g++) transposedStep(g);
            f.local.set(bp, () => f.i32.add(bp, 16));
            f.local.set(ap, () => f.i32.add(ap, 16 * M));
          },
        );
        // the last K % 4 values of k, one at a time: a column vector gathered lane by lane
        times(
          f,
          n,
          () => f.i32.and(K, 3),
          () => {
            for (let g = 0; g < Gc; g++) {
              const col = v[0];
              f.local.set(col, () => f.v128.load32_splat(rowAt(4 * g)));
              for (let c = 1; c < 4; c++) f.local.set(col, () => f.v128.load32_lane(c, rowAt(4 * g + c), col));
              for (let i = 0; i < M; i++) {
                f.local.set(av, () => f.v128.load32_splat(ap, 4 * i));
                madd(av, col, acc[i][g]);
              }
            }
            f.local.set(bp, () => f.i32.add(bp, 4));
            f.local.set(ap, () => f.i32.add(ap, 4 * M));
          },
        );
      } else {
        f.local.set(bp, () => f.i32.add(b, () => f.i32.shl(j, 2)));
        times(
          f,
          n,
          () => f.local.get(K),
          () => {
            if (M > 1) for (let g = 0; g < Gc; g++) f.local.set(v[g], () => f.v128.load(bp, 16 * g));
            for (let i = 0; i < M; i++) {
              f.local.set(av, () => f.v128.load32_splat(ap, 4 * i));
              for (let g = 0; g < Gc; g++) madd(av, M > 1 ? v[g] : () => f.v128.load(bp, 16 * g), acc[i][g]);
            }
            f.local.set(bp, () => f.i32.add(bp, ldc));
            f.local.set(ap, () => f.i32.add(ap, 4 * M));
          },
        );
      }
      f.local.set(cp, () => f.i32.add(c, () => f.i32.shl(j, 2)));
      for (let i = 0; i < M; i++) {
        for (let g = 0; g < Gc; g++) f.v128.store(cp, acc[i][g], 16 * g);
        if (i < M - 1) f.local.set(cp, () => f.i32.add(cp, ldc));
      }
      f.local.set(j, () => f.i32.add(j, 4 * Gc));
    };

    /** One column j, summed in scalar float32 in the same order. */
    const column = () => {
      for (let i = 0; i < M; i++) f.local.set(s[i], 0);
      f.local.set(ap, pa);
      f.local.set(bp, () => f.i32.add(b, () => (transB ? f.i32.mul(j, rs) : f.i32.shl(j, 2))));
      times(
        f,
        n,
        () => f.local.get(K),
        () => {
          f.local.set(w, () => f.f32.load(bp));
          for (let i = 0; i < M; i++) f.local.set(s[i], () => f.f32.add(s[i], () => f.f32.mul(() => f.f32.load(ap, 4 * i), w)));
          f.local.set(bp, () => f.i32.add(bp, transB ? 4 : ldc));
          f.local.set(ap, () => f.i32.add(ap, 4 * M));
        },
      );
      f.local.set(cp, () => f.i32.add(c, () => f.i32.shl(j, 2)));
      for (let i = 0; i < M; i++) {
        f.f32.store(cp, s[i]);
        if (i < M - 1) f.local.set(cp, () => f.i32.add(cp, ldc));
      }
      f.local.set(j, () => f.i32.add(j, 1));
    };

    /** while (j + width <= n1) body() */
    const whileFits = (width: number, body: () => void) =>
      f.block((done) =>
        f.loop((top) => {
          f.br_if(done, () => f.i32.gt_s(() => f.i32.add(j, width), n1));
          body();
          f.br(top);
        }),
      );

    f.local.set(j, n0);
    whileFits(4 * G, () => group(G));
    if (G > 1) whileFits(4, () => group(1));
    whileFits(1, column);
  });
}
