// Code generation of the blocked float32 matmul (WebAssembly SIMD), the layout of the BLIS /
// GotoBLAS kernels:
//   for each block of NC output columns
//     for each block of KC along K
//       pack B's KC x NC block into strips of 8 columns, k-major        (2 v128 per k)
//       for each block of MC rows: pack A's MC x KC block into strips of 4 rows, k-major
//         for each 8-column strip, for each 4-row strip: the 4x8 register tile
// The tile keeps C's 4x8 block in 8 v128 accumulators (4 rows x 2 vectors of 4 columns); each k
// step loads 2 vectors of B and splats 4 values of A for 8 multiplies and 8 adds. 8 accumulators
// is what the 16 vector registers hold without spilling (measured, the tile alone in L1: 4x8 and
// 2x16 ~51 GFLOP/s, 5x8 37, 3x16 / 4x12 / 6x8 ~25); 8 independent add chains also cover the add
// latency. KC = 256 keeps the B strip (8 KB) in L1 while the row strips pass over it, MC = 128
// keeps A's packed block (128 KB) in L2, NC = 2048 bounds the packed B block (2 MB); measured,
// KC from 128 to 512 and MC from 64 to 256 were all within 3% of each other (512 to 2048 squared).
// Packing reads rows or columns that are contiguous along k 4 floats at a time and transposes
// them in registers, so every layout packs at about the same speed.
//
// Accumulation order: each output is one float32 sum over k in increasing order, acc = acc + a*b
// (separately rounded multiply and add: WebAssembly has no fused multiply-add in SIMD128), started
// from +0. Between K blocks the running sums are stored to C and loaded back, which is exact, so
// the blocking never changes the order: every output element is the same float32 number whatever
// the block sizes, the tile it lands in (full or edge), or the range of rows and columns asked for.
//
// All addresses are byte offsets in the imported memory. Strides are in elements: A(i, k) =
// a[i * aRs + k * aCs] and B(k, j) = b[k * bRs + j * bCs] cover the four transpose cases.
import type { FuncRef, FunctionBuilder, Local, ModuleBuilder, Operand } from '../../assembler.ts';

export const MR = 4;
export const NR = 8;
export const KC = 256;
export const MC = 128;
export const NC = 2048;

/** min of two signed i32 operands. */
export const imin = (f: FunctionBuilder, x: Operand, y: Operand) => f.select(x, y, () => f.i32.lt_s(x, y));

/** i32 locals, one per name. */
export function i32s<const N extends string>(f: FunctionBuilder, ...names: N[]): Record<N, Local> {
  return Object.fromEntries(names.map((n) => [n, f.local.declare('i32')])) as Record<N, Local>;
}

/** base + 4 * index: the byte address of float element `index`. */
const at = (f: FunctionBuilder, base: Operand, index: Operand) => f.i32.add(base, () => f.i32.shl(index, 2));

/**
 * Transposes the 4x4 block in the locals rows (row i = rows[i]) in place, through tmp: afterwards
 * rows[j] holds the old column j. Eight shuffles, in the pairs-then-halves pattern that V8 lowers
 * to unpck / movlhps-style instructions.
 */
export function transpose4x4(f: FunctionBuilder, rows: Local[], tmp: Local[]): void {
  const [r0, r1, r2, r3] = rows,
    [t0, t1, t2, t3] = tmp;
  f.local.set(t0, () => f.v128.shuffle32([0, 4, 1, 5], r0, r1));
  f.local.set(t1, () => f.v128.shuffle32([2, 6, 3, 7], r0, r1));
  f.local.set(t2, () => f.v128.shuffle32([0, 4, 1, 5], r2, r3));
  f.local.set(t3, () => f.v128.shuffle32([2, 6, 3, 7], r2, r3));
  f.local.set(r0, () => f.v128.shuffle32([0, 1, 4, 5], t0, t2));
  f.local.set(r1, () => f.v128.shuffle32([2, 3, 6, 7], t0, t2));
  f.local.set(r2, () => f.v128.shuffle32([0, 1, 4, 5], t1, t3));
  f.local.set(r3, () => f.v128.shuffle32([2, 3, 6, 7], t1, t3));
}

/**
 * Packs `lanes` (4 or 8) lines of a matrix, line l starting at pointer p[l] and advancing `step`
 * bytes per k, into dst k-major: q[k * lanes + l]. Three ways, by layout:
 *   - contiguous (`adjacent`): the lanes' values at each k are adjacent in memory: v128 copies;
 *   - `alongK`: each line is contiguous along k (step 4): 4 k at a time as v128 loads of each
 *     line, transposed in registers 4 lines at a time, then the k % 4 left one by one;
 *   - otherwise one float at a time.
 * (The pointer updates leave p and q past the packed part.)
 */
function packLines(
  f: FunctionBuilder,
  lanes: number,
  p: Local[],
  q: Local,
  step: Local,
  kc: Local,
  n: Local,
  v: Local[],
): { scalar: (count: Operand) => void; alongK: () => void } {
  const scalar = (count: Operand) => {
    f.for(n, 0, count, 1, () => {
      p.forEach((pl, l) => {
        f.f32.store(q, () => f.f32.load(pl), 4 * l);
        f.local.set(pl, () => f.i32.add(pl, step));
      });
      f.local.set(q, () => f.i32.add(q, 4 * lanes));
    });
  };
  const alongK = () => {
    const rows = v.slice(0, 4),
      tmp = v.slice(4, 8);
    f.for(
      n,
      0,
      () => f.i32.shr_u(kc, 2),
      1,
      () => {
        for (let h = 0; h < lanes / 4; h++) {
          rows.forEach((r, i) => {
            f.local.set(r, () => f.v128.load(p[4 * h + i]));
          });
          transpose4x4(f, rows, tmp);
          // rows[kk]: the 4 lines' values at k + kk
          rows.forEach((r, kk) => {
            f.v128.store(q, r, 4 * (kk * lanes + 4 * h));
          });
        }
        for (const pl of p) f.local.set(pl, () => f.i32.add(pl, 16));
        f.local.set(q, () => f.i32.add(q, 16 * lanes));
      },
    );
    scalar(() => f.i32.and(kc, 3));
  };
  return { scalar, alongK };
}

/**
 * packA(src, rs, cs, rows, kc, dst): A(r, k) = src[r * rs + k * cs] for r < rows, k < kc, into
 * strips of 4 rows: dst[(r / 4) * 4 * kc + k * 4 + r % 4]. The last strip's missing rows repeat
 * the last row: they only feed tile rows that are never stored, so any value works, and
 * repeating keeps the loops free of branches.
 */
function packA(m: ModuleBuilder): FuncRef {
  return m.function('pack_a', Array(6).fill('i32'), [], (f, src, rs, cs, rows, kc, dst) => {
    const { r0, n, q, step } = i32s(f, 'r0', 'n', 'q', 'step');
    const p = Array.from({ length: MR }, () => f.local.declare('i32'));
    const v = Array.from({ length: 8 }, () => f.local.declare('v128'));
    const { scalar, alongK } = packLines(f, MR, p, q, step, kc, n, v);
    f.local.set(step, () => f.i32.shl(cs, 2));
    f.local.set(q, dst);
    f.for(r0, 0, rows, MR, () => {
      p.forEach((pr, r) => {
        f.local.set(pr, () =>
          at(f, src, () =>
            f.i32.mul(
              () =>
                imin(
                  f,
                  () => f.i32.add(r0, r),
                  () => f.i32.sub(rows, 1),
                ),
              rs,
            ),
          ),
        );
      });
      f.if(
        () =>
          f.i32.and(
            () => f.i32.eq(rs, 1),
            () => f.i32.le_s(() => f.i32.add(r0, MR), rows),
          ),
        // transposed A, a whole strip: its 4 values at each k are adjacent
        () =>
          f.for(n, 0, kc, 1, () => {
            f.v128.store(q, () => f.v128.load(p[0]));
            f.local.set(p[0], () => f.i32.add(p[0], step));
            f.local.set(q, () => f.i32.add(q, 16));
          }),
        // A stored [M, K]: rows contiguous along k
        () =>
          f.if(
            () => f.i32.eq(cs, 1),
            alongK,
            () => scalar(kc),
          ),
      );
    });
  });
}

/**
 * packB(src, rs, cs, cols, kc, dst): B(k, j) = src[k * rs + j * cs] for k < kc, j < cols, into
 * strips of 8 columns: dst[(j / 8) * 8 * kc + k * 8 + j % 8]; missing columns repeat the last one.
 */
function packB(m: ModuleBuilder): FuncRef {
  return m.function('pack_b', Array(6).fill('i32'), [], (f, src, rs, cs, cols, kc, dst) => {
    const { j0, n, q, step, row } = i32s(f, 'j0', 'n', 'q', 'step', 'row');
    const p = Array.from({ length: NR }, () => f.local.declare('i32'));
    const v = Array.from({ length: 8 }, () => f.local.declare('v128'));
    const { scalar, alongK } = packLines(f, NR, p, q, step, kc, n, v);
    f.local.set(step, () => f.i32.shl(rs, 2));
    f.local.set(q, dst);
    f.for(j0, 0, cols, NR, () => {
      f.if(
        () =>
          f.i32.and(
            () => f.i32.eq(cs, 1),
            () => f.i32.le_s(() => f.i32.add(j0, NR), cols),
          ),
        // B stored [K, N], a whole strip: its 8 values at each k are adjacent
        () => {
          f.local.set(row, () => at(f, src, j0));
          f.for(n, 0, kc, 1, () => {
            f.v128.store(q, () => f.v128.load(row));
            f.v128.store(q, () => f.v128.load(row, 16), 16);
            f.local.set(row, () => f.i32.add(row, step));
            f.local.set(q, () => f.i32.add(q, 32));
          });
        },
        // column pointers, clamped to the last column; transposed B: columns contiguous along k
        () => {
          p.forEach((pc, c) => {
            f.local.set(pc, () =>
              at(f, src, () =>
                f.i32.mul(
                  () =>
                    imin(
                      f,
                      () => f.i32.add(j0, c),
                      () => f.i32.sub(cols, 1),
                    ),
                  cs,
                ),
              ),
            );
          });
          f.if(
            () => f.i32.eq(rs, 1),
            alongK,
            () => scalar(kc),
          );
        },
      );
    });
  });
}

/**
 * tile(pa, pb, kc, c, ldc, first): C[4 x 8] at c (rows ldc bytes apart) = (first ? 0 : C) + the
 * packed strips' product over kc >= 1 steps.
 */
function tile(m: ModuleBuilder): FuncRef {
  return m.function('tile_4x8', ['i32', 'i32', 'i32', 'i32', 'i32', 'i32'], [], (f, pa, pb, kc, c, ldc, first) => {
    const { n, cr } = i32s(f, 'n', 'cr');
    const acc = Array.from({ length: MR * 2 }, () => f.local.declare('v128'));
    const b0 = f.local.declare('v128'),
      b1 = f.local.declare('v128'),
      av = f.local.declare('v128');
    // locals start at zero: the accumulators are 0 unless this block continues C's sums
    f.if(
      () => f.i32.eqz(first),
      () => {
        f.local.set(cr, c);
        for (let r = 0; r < MR; r++) {
          f.local.set(acc[2 * r], () => f.v128.load(cr));
          f.local.set(acc[2 * r + 1], () => f.v128.load(cr, 16));
          if (r < MR - 1) f.local.set(cr, () => f.i32.add(cr, ldc));
        }
      },
    );
    const step = (u: number) => {
      f.local.set(b0, () => f.v128.load(pb, 32 * u));
      f.local.set(b1, () => f.v128.load(pb, 32 * u + 16));
      for (let r = 0; r < MR; r++) {
        f.local.set(av, () => f.v128.load32_splat(pa, 16 * u + 4 * r));
        f.local.set(acc[2 * r], () => f.f32x4.add(acc[2 * r], () => f.f32x4.mul(av, b0)));
        f.local.set(acc[2 * r + 1], () => f.f32x4.add(acc[2 * r + 1], () => f.f32x4.mul(av, b1)));
      }
    };
    // Two k steps per iteration with an exit between them (so any kc works without a remainder
    // loop): the loop's bookkeeping (V8's stack check, counter, pointer increments) is then paid
    // once per two steps. Measured on the tile alone, in L1: 43 GFLOP/s one step per iteration,
    // 51 like this; unrolling by 4 with a separate remainder loop fell to 25-30 (more vectors live
    // than registers). The splat goes through a local for the same reason (inline: ~29).
    f.local.set(n, kc);
    f.block((done) =>
      f.loop((top) => {
        step(0);
        f.br_if(done, () => f.i32.eqz(() => f.local.tee(n, () => f.i32.sub(n, 1))));
        step(1);
        f.local.set(pa, () => f.i32.add(pa, 32));
        f.local.set(pb, () => f.i32.add(pb, 64));
        f.br_if(top, () => f.local.tee(n, () => f.i32.sub(n, 1)));
      }),
    );
    f.local.set(cr, c);
    for (let r = 0; r < MR; r++) {
      f.v128.store(cr, acc[2 * r]);
      f.v128.store(cr, acc[2 * r + 1], 16);
      if (r < MR - 1) f.local.set(cr, () => f.i32.add(cr, ldc));
    }
  });
}

/**
 * edge(pa, pb, kc, c, ldc, first, h, w, buf): the tile for an h x w corner (h <= 4, w <= 8) of C:
 * through a 4x8 buffer, so that the tile itself never reads or writes outside C.
 */
function edge(m: ModuleBuilder, tileFn: FuncRef): FuncRef {
  return m.function('edge_4x8', Array(9).fill('i32'), [], (f, pa, pb, kc, c, ldc, first, h, w, buf) => {
    const { r, j, src, dst } = i32s(f, 'r', 'j', 'src', 'dst');
    const copy = (toBuf: boolean) =>
      f.for(r, 0, h, 1, () => {
        f.local.set(src, () => f.i32.add(c, () => f.i32.mul(r, ldc)));
        f.local.set(dst, () => f.i32.add(buf, () => f.i32.shl(r, 5)));
        f.for(j, 0, w, 1, () => {
          const cAt = () => f.i32.add(src, () => f.i32.shl(j, 2));
          const bAt = () => f.i32.add(dst, () => f.i32.shl(j, 2));
          if (toBuf) f.f32.store(bAt, () => f.f32.load(cAt));
          else f.f32.store(cAt, () => f.f32.load(bAt));
        });
      });
    f.if(
      () => f.i32.eqz(first),
      () => copy(true),
    );
    f.call(tileFn, pa, pb, kc, buf, 4 * NR, first);
    copy(false);
  });
}

/**
 * gemm(a, b, c, M, N, K, aRs, aCs, bRs, bCs, batch, aBS, bBS, m0, m1, n0, n1, packA, packB, buf):
 * rows [m0, m1) x columns [n0, n1) of every batch's C [M, N] (batch b at b * M * N), with A and B
 * of batch b at a + b * aBS and b + b * bBS (element strides, 0 = broadcast). K >= 1.
 * Scratch: packA holds min(MC, m1 - m0) rounded up to 4 rows x min(KC, K), packB min(NC, n1 - n0)
 * rounded up to 8 columns x min(KC, K) floats, buf 32 floats.
 */
export function gemm(m: ModuleBuilder): FuncRef {
  const packAFn = packA(m),
    packBFn = packB(m),
    tileFn = tile(m),
    edgeFn = edge(m, tileFn);
  // exported too: pack_b over the whole of B is the few-rows kernel's packed layout (matmul/packed.ts)
  m.export('pack_b', packBFn);
  return m.function(
    'gemm',
    Array(20).fill('i32'),
    [],
    (f, a, b, c, M, N, K, aRs, aCs, bRs, bCs, batch, aBS, bBS, m0, m1, n0, n1, pA, pB, buf) => {
      const { jc, nc, pc, kc, bi, ic, mc, jr, ir, cp, ldc, h, w } = i32s(
        f,
        'jc',
        'nc',
        'pc',
        'kc',
        'bi',
        'ic',
        'mc',
        'jr',
        'ir',
        'cp',
        'ldc',
        'h',
        'w',
      );
      const first = () => f.i32.eqz(pc);
      const bytes = (x: Operand) => f.i32.shl(x, 2);
      f.local.set(ldc, () => bytes(N));
      f.for(jc, n0, n1, NC, () => {
        f.local.set(nc, () => imin(f, NC, () => f.i32.sub(n1, jc)));
        f.for(pc, 0, K, KC, () => {
          f.local.set(kc, () => imin(f, KC, () => f.i32.sub(K, pc)));
          f.for(bi, 0, batch, 1, () => {
            // a broadcast B (bBS = 0) is packed once for all the batches
            f.if(
              () => f.i32.or(() => f.i32.eqz(bi), bBS),
              () =>
                f.call(
                  packBFn,
                  () =>
                    f.i32.add(b, () =>
                      bytes(() =>
                        f.i32.add(
                          () => f.i32.mul(bi, bBS),
                          () =>
                            f.i32.add(
                              () => f.i32.mul(pc, bRs),
                              () => f.i32.mul(jc, bCs),
                            ),
                        ),
                      ),
                    ),
                  bRs,
                  bCs,
                  nc,
                  kc,
                  pB,
                ),
            );
            f.for(ic, m0, m1, MC, () => {
              f.local.set(mc, () => imin(f, MC, () => f.i32.sub(m1, ic)));
              f.call(
                packAFn,
                () =>
                  f.i32.add(a, () =>
                    bytes(() =>
                      f.i32.add(
                        () => f.i32.mul(bi, aBS),
                        () =>
                          f.i32.add(
                            () => f.i32.mul(ic, aRs),
                            () => f.i32.mul(pc, aCs),
                          ),
                      ),
                    ),
                  ),
                aRs,
                aCs,
                mc,
                kc,
                pA,
              );
              f.for(jr, 0, nc, NR, () => {
                f.for(ir, 0, mc, MR, () => {
                  // C(b, ic + ir, jc + jr)
                  f.local.set(cp, () =>
                    f.i32.add(c, () =>
                      bytes(() =>
                        f.i32.add(
                          () =>
                            f.i32.mul(
                              () =>
                                f.i32.add(
                                  () => f.i32.mul(bi, M),
                                  () => f.i32.add(ic, ir),
                                ),
                              N,
                            ),
                          () => f.i32.add(jc, jr),
                        ),
                      ),
                    ),
                  );
                  const stripA = () => f.i32.add(pA, () => bytes(() => f.i32.mul(ir, kc)));
                  const stripB = () => f.i32.add(pB, () => bytes(() => f.i32.mul(jr, kc)));
                  f.local.set(h, () => imin(f, MR, () => f.i32.sub(mc, ir)));
                  f.local.set(w, () => imin(f, NR, () => f.i32.sub(nc, jr)));
                  f.if(
                    () =>
                      f.i32.and(
                        () => f.i32.eq(h, MR),
                        () => f.i32.eq(w, NR),
                      ),
                    () => f.call(tileFn, stripA, stripB, kc, cp, ldc, first),
                    () => f.call(edgeFn, stripA, stripB, kc, cp, ldc, first, h, w, buf),
                  );
                });
              });
            });
          });
        });
      });
    },
    { export: true },
  );
}
