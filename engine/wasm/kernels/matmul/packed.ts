// Code generation of the few-rows float32 matmul on a pre-packed B (decoding one token against
// weights packed once, engine/cpu/backend.ts's derived-block cache; matmul.ts's `prepare`).
//
// The packed layout is the blocked kernel's B panel (pack_b of matmul/blocked.ts) over the whole
// of K: strips of 8 output columns, each k-major,
//     P[(j / 8) * 8 * K + k * 8 + j % 8] = B(k, j)      (for B [N, K]: row j of the weight)
// the last strip padded by repeating the last column. So the weight matrix is one contiguous
// stream, each strip 32 K bytes. Each k step of a strip is 2 v128 of 4 columns: 2 loads, M
// splats of A, 2 M multiplies and adds, no shuffles; one strip after the other, so the weights are
// read front to back as one stream. Measured (one thread, 300 MB of weights cycled so that none is
// in cache, M = 1): one strip at a time 25-38 GB/s; 2 or 4 strips side by side (more add chains,
// but 2-4 streams 32 K bytes apart) 16-29; 16-column panels (one stream, 4 add chains) 23-38: no
// better. M = 2, 3, 4: 21-26, 19-23, 18-21 GB/s; M = 5..8 (rows 0-3, then the others over the
// strip again, in cache by then): 6-11 GB/s, where the product's arithmetic is the limit.
//
// Accumulation order: each output is the float32 sum over k in increasing order from +0,
// acc = acc + a * b (separate multiply and add), exactly as the blocked and the unpacked few-rows
// kernels compute it: the packed path gives the same bits, whatever the columns asked for.
import type { FuncRef, ModuleBuilder, Operand } from '../../assembler.ts';
import { i32s, NR } from './blocked.ts';

/** The most rows the packed few-rows kernel takes (the few-rows limit, SMALL_M). */
export const PACKED_M = 8;

/** Rows summed together over a strip: more than 4 are done 4 and M - 4 (the strip, 32 K bytes, still in cache for the second). */
const GROUP = 4;

/** Bytes of the packed layout of a K x N operand (strips of 8 columns over the whole of K). */
export function packedBytes(K: number, N: number): number {
  return 4 * Math.ceil(N / NR) * NR * K;
}

/**
 * packed_{M}(pa, pb, c, K, N, n0, n1, buf): columns [n0, n1) of C [M, N] at c (rows 4 N bytes
 * apart), from A packed k-major at pa (pack_rows: pa[k * M + i]) and the packed strips at pb
 * (column 0's strip). n0 % 8 = 0, K >= 1; buf: 32 M bytes, for the last strip when it is partial.
 */
export function packedFewRows(m: ModuleBuilder, M: number): FuncRef {
  return m.function(`packed_${M}`, Array(8).fill('i32'), [], (f, pa, pb, c, K, N, n0, n1, buf) => {
    const { j, ap, bp, n, ldc, cp, r, w } = i32s(f, 'j', 'ap', 'bp', 'n', 'ldc', 'cp', 'r', 'w');
    const acc = Array.from({ length: Math.min(M, GROUP) }, () => [f.local.declare('v128'), f.local.declare('v128')]);
    const av = f.local.declare('v128');
    const bv = M > 1 ? [f.local.declare('v128'), f.local.declare('v128')] : [];
    f.local.set(ldc, () => f.i32.shl(N, 2));

    /** The sums of rows [i0, i1) over the strip of column j (a multiple of 8), into acc[0..i1 - i0). */
    const sums = (i0: number, i1: number) => {
      for (let i = 0; i < i1 - i0; i++) for (const a of acc[i]) f.local.set(a, () => f.i32x4.splat(0));
      f.local.set(ap, pa);
      // strip j / 8 starts at pb + (j / 8) * 32 K = pb + 4 j K
      f.local.set(bp, () => f.i32.add(pb, () => f.i32.mul(() => f.i32.shl(j, 2), K)));
      const step = (u: number) => {
        // B's 2 vectors once (M = 1: straight into the multiply), then each row's splat of A times them
        const b = (h: number) => (M > 1 ? bv[h] : () => f.v128.load(bp, 32 * u + 16 * h));
        if (M > 1) for (let h = 0; h < 2; h++) f.local.set(bv[h], () => f.v128.load(bp, 32 * u + 16 * h));
        for (let i = i0; i < i1; i++) {
          const row = acc[i - i0];
          f.local.set(av, () => f.v128.load32_splat(ap, 4 * (u * M + i)));
          for (let h = 0; h < 2; h++) f.local.set(row[h], () => f.f32x4.add(row[h], () => f.f32x4.mul(av, b(h))));
        }
      };
      // two k steps per iteration with an exit between them (any K, no remainder loop), as the tile
      f.local.set(n, K);
      f.block((done) =>
        f.loop((top) => {
          step(0);
          f.br_if(done, () => f.i32.eqz(() => f.local.tee(n, () => f.i32.sub(n, 1))));
          step(1);
          f.local.set(bp, () => f.i32.add(bp, 64));
          f.local.set(ap, () => f.i32.add(ap, 8 * M));
          f.br_if(top, () => f.local.tee(n, () => f.i32.sub(n, 1)));
        }),
      );
    };

    /** Stores rows [i0, i1)'s accumulators at `at` (row 0's place), rows `rowBytes` apart. */
    const store = (i0: number, i1: number, at: Operand, rowBytes: Operand) => {
      f.local.set(cp, i0 ? () => f.i32.add(at, () => f.i32.mul(rowBytes, i0)) : at);
      for (let i = i0; i < i1; i++) {
        f.v128.store(cp, acc[i - i0][0]);
        f.v128.store(cp, acc[i - i0][1], 16);
        if (i < i1 - 1) f.local.set(cp, () => f.i32.add(cp, rowBytes));
      }
    };
    const cAt = () => f.i32.add(c, () => f.i32.shl(j, 2));
    const groups: [number, number][] =
      M > GROUP
        ? [
            [0, GROUP],
            [GROUP, M],
          ]
        : [[0, M]];

    // whole strips
    f.local.set(j, n0);
    f.block((done) =>
      f.loop((top) => {
        f.br_if(done, () => f.i32.gt_s(() => f.i32.add(j, NR), n1));
        for (const [i0, i1] of groups) {
          sums(i0, i1);
          store(i0, i1, cAt, ldc);
        }
        f.local.set(j, () => f.i32.add(j, NR));
        f.br(top);
      }),
    );
    // a last partial strip: through buf (rows 32 bytes apart), then its n1 - j columns one by one
    f.if(
      () => f.i32.lt_s(j, n1),
      () => {
        for (const [i0, i1] of groups) {
          sums(i0, i1);
          store(i0, i1, buf, 4 * NR);
        }
        f.local.set(w, () => f.i32.shl(() => f.i32.sub(n1, j), 2));
        for (let i = 0; i < M; i++) {
          const dst = () => f.i32.add(cAt, () => f.i32.mul(ldc, i));
          f.for(r, 0, w, 4, () => {
            f.f32.store(
              () => f.i32.add(dst, r),
              () => f.f32.load(() => f.i32.add(buf, r), 4 * NR * i),
            );
          });
        }
      },
    );
  });
}
