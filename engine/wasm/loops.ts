// Loop shapes the WebAssembly float32 kernels share: a lanewise map over contiguous arrays with a
// 1-3 element tail through lane loads and stores (mapLoop), fixed-order float32 reductions of a row
// (rowReduce: 16 lanes in blocks, combined in one fixed order) and of columns across rows
// (columnReduce: blocks of rows), and horizontal combines. Written on a FunctionBuilder
// (engine/wasm/assembler.ts); pointers are byte offsets in the imported memory, counts are elements.
//
// The tail of a map goes through the same vector code as the body (its missing lanes are zeros
// whose results are not stored), so an element's result does not depend on where a range starts or
// ends: a kernel split into ranges gives the bits of the whole call.
import type { FunctionBuilder, Local, Operand } from './assembler.ts';

/** i32 locals, one per name. */
export function i32s<const N extends string>(f: FunctionBuilder, ...names: N[]): Record<N, Local> {
  return Object.fromEntries(names.map((n) => [n, f.local.declare('i32')])) as Record<N, Local>;
}

/** v128 locals. */
export function v128s(f: FunctionBuilder, n: number): Local[] {
  return Array.from({ length: n }, () => f.local.declare('v128'));
}

/** base + 4 * index: the byte address of float element `index`. */
export const at = (f: FunctionBuilder, base: Operand, index: Operand) => f.i32.add(base, () => f.i32.shl(index, 2));

/** min of two signed i32 operands (each pushed twice: give locals or constants). */
export const imin = (f: FunctionBuilder, x: Operand, y: Operand) => f.select(x, y, () => f.i32.lt_s(x, y));

/**
 * Loads the first `rem` (1 to 3, a local) floats at addr into lanes 0.. of a vector, zeros in the others.
 */
export function loadPartial(f: FunctionBuilder, addr: Local, rem: Local, into: Local): void {
  f.local.set(into, () => f.v128.load32_zero(addr));
  f.if(
    () => f.i32.ge_u(rem, 2),
    () => {
      f.local.set(into, () => f.v128.load32_lane(1, addr, into, 4));
      f.if(
        () => f.i32.ge_u(rem, 3),
        () => {
          f.local.set(into, () => f.v128.load32_lane(2, addr, into, 8));
        },
      );
    },
  );
}

/** Stores lanes 0 .. rem-1 (rem 1 to 3, a local) of v at addr. */
export function storePartial(f: FunctionBuilder, addr: Local, rem: Local, v: Local): void {
  f.v128.store32_lane(0, addr, v);
  f.if(
    () => f.i32.ge_u(rem, 2),
    () => {
      f.v128.store32_lane(1, addr, v, 4);
      f.if(
        () => f.i32.ge_u(rem, 3),
        () => {
          f.v128.store32_lane(2, addr, v, 8);
        },
      );
    },
  );
}

/**
 * out[i] = body(ins[0][i], ins[1][i], ...) four floats at a time for i < n: `ins` and `out` are
 * byte pointers (locals, left as they are), `n` a count. `body(xs)` gets the loaded input
 * vectors and leaves the result vector on the stack. The main loop does `unroll` vectors an
 * iteration, then single vectors, then the last n % 4 elements as one vector through lane loads
 * (zeros in the missing lanes: body must not trap, which float code never does).
 */
export function mapLoop(f: FunctionBuilder, ins: Local[], out: Local, n: Local, unroll: number, body: (xs: Local[]) => void): void {
  const { end, endU, rem, i, tp } = i32s(f, 'end', 'endU', 'rem', 'i', 'tp');
  const xs = Array.from({ length: unroll }, () => v128s(f, ins.length));
  const r = f.local.declare('v128');
  f.local.set(end, () => f.i32.shl(() => f.i32.and(n, -4), 2));
  f.local.set(endU, () => f.i32.shl(() => f.i32.and(n, -4 * unroll), 2));
  // i: byte offset from each pointer
  if (unroll > 1)
    f.for(i, 0, endU, 16 * unroll, () => {
      for (let u = 0; u < unroll; u++) {
        ins.forEach((p, k) => {
          f.local.set(xs[u][k], () => f.v128.load(() => f.i32.add(p, i), 16 * u));
        });
      }
      for (let u = 0; u < unroll; u++)
        f.v128.store(
          () => f.i32.add(out, i),
          () => body(xs[u]),
          16 * u,
        );
    });
  else f.local.set(i, 0);
  f.block((done) => {
    f.br_if(done, () => f.i32.ge_u(i, end));
    f.loop((top) => {
      ins.forEach((p, k) => {
        f.local.set(xs[0][k], () => f.v128.load(() => f.i32.add(p, i)));
      });
      f.v128.store(
        () => f.i32.add(out, i),
        () => body(xs[0]),
      );
      f.local.set(i, () => f.i32.add(i, 16));
      f.br_if(top, () => f.i32.lt_u(i, end));
    });
  });
  f.local.set(rem, () => f.i32.and(n, 3));
  f.if(rem, () => {
    ins.forEach((p, k) => {
      f.local.set(tp, () => f.i32.add(p, i));
      loadPartial(f, tp, rem, xs[0][k]);
    });
    f.local.set(r, () => body(xs[0]));
    f.local.set(tp, () => f.i32.add(out, i));
    storePartial(f, tp, rem, r);
  });
}

/** A lanewise combine of two vectors (e.g. f32x4.add, f32x4.max), given as operands. */
export type Combine = (a: Operand, b: Operand) => void;

/**
 * The horizontal combine of v's lanes, (v0 op v2) op (v1 op v3), in every lane of the vector left
 * on the stack (op commutative: each lane computes the same operations on the same values).
 */
export function hsplat(f: FunctionBuilder, v: Local, op: Combine): void {
  const t = f.local.declare('v128');
  f.local.set(t, () => op(v, () => f.v128.shuffle32([2, 3, 0, 1], v, v)));
  op(t, () => f.v128.shuffle32([1, 0, 3, 2], t, t));
}

/** The same combine as a scalar (lane 0). */
export function hscalar(f: FunctionBuilder, v: Local, op: Combine): void {
  f.f32x4.extract_lane(0, () => hsplat(f, v, op));
}

export const addV: (f: FunctionBuilder) => Combine = (f) => (a, b) => f.f32x4.add(a, b);

export interface RowReduce {
  /** byte pointers to the rows read together, element by element (locals, left as they are) */
  ps: Local[];
  /** elements in the row */
  n: Local;
  /** vectors per lane group in a block: rowBlock(n) */
  blk: Local;
  /** the vector to reduce for the loaded vectors xs (one per pointer; left on the stack) */
  term: (xs: Local[]) => void;
  /** the lanewise combine */
  op: Combine;
  /** its neutral element (0 for sums, -inf for max) */
  identity: number;
  /** if given, a byte pointer (a local, left as it is) where each term is also stored, at its element's position */
  store?: Local;
}

/**
 * A float32 reduction of term(x) over one row, in a fixed order that depends only on n and blk:
 * element j goes to lane j mod 16 (4 vector accumulators); the lanes accumulate blocks of `blk`
 * vectors each (16 blk elements) from the identity, and each block's lanes are combined into the
 * running lanes, block after block; the last partial block the same way, its last 1-3 whole
 * vectors into the first accumulators and the last n % 4 elements into the fourth through a lane
 * load (identity in the missing lanes). The four running accumulators combine as
 * (a0 op a1) op (a2 op a3); returns that vector (hsplat / hscalar finish it).
 * For a sum, the float32 result is within gamma_D * sum |terms| of the exact sum, where
 * D = rowDepth(n, blk) bounds the additions any term goes through.
 */
export function rowReduce(f: FunctionBuilder, r: RowReduce): Local {
  const { ps, n, blk, term, op, identity, store } = r;
  const { end, blockEnd, end16, rem, i, tp } = i32s(f, 'end', 'blockEnd', 'end16', 'rem', 'i', 'tp');
  const tot = v128s(f, 4),
    acc = v128s(f, 4),
    t = v128s(f, 4);
  const x = Array.from({ length: 4 }, () => v128s(f, ps.length));
  const out = f.local.declare('v128');
  const id = () => f.f32x4.const(identity);
  // i: byte offset into the rows
  const addr = (q: Local) => f.i32.add(q, i);
  const load = (k: number, off: number) => {
    ps.forEach((q, j) => {
      f.local.set(x[k][j], () => f.v128.load(() => addr(q), off));
    });
  };
  // the term of x[k] into acc[k] (and stored at byte offset off)
  const step = (k: number, off: number) => {
    if (!store) {
      f.local.set(acc[k], () => op(acc[k], () => term(x[k])));
      return;
    }
    f.local.set(t[k], () => term(x[k]));
    f.v128.store(() => addr(store), t[k], off);
    f.local.set(acc[k], () => op(acc[k], t[k]));
  };
  for (const v of tot) f.local.set(v, id);
  f.local.set(i, 0);
  f.local.set(end, () => f.i32.shl(n, 2));
  f.local.set(end16, () => f.i32.shl(() => f.i32.and(n, -16), 2));
  const block = (limit: Local) => {
    for (const a of acc) f.local.set(a, id);
    f.block((done) => {
      f.br_if(done, () => f.i32.ge_u(i, limit));
      f.loop((top) => {
        for (let k = 0; k < 4; k++) load(k, 16 * k);
        for (let k = 0; k < 4; k++) step(k, 16 * k);
        f.local.set(i, () => f.i32.add(i, 64));
        f.br_if(top, () => f.i32.lt_u(i, limit));
      });
    });
  };
  // whole blocks of 16 blk elements
  f.block((done) => {
    f.loop((top) => {
      f.local.set(blockEnd, () => f.i32.add(i, () => f.i32.shl(blk, 6)));
      f.br_if(done, () => f.i32.gt_u(blockEnd, end16));
      block(blockEnd);
      for (let k = 0; k < 4; k++) f.local.set(tot[k], () => op(tot[k], acc[k]));
      f.br(top);
    });
  });
  // the last partial block: groups of 16, whole vectors into acc[0..2], the masked tail into acc[3]
  block(end16);
  f.local.set(rem, () => f.i32.shr_u(() => f.i32.sub(end, i), 2));
  for (let k = 0; k < 3; k++) {
    f.if(
      () => f.i32.ge_u(rem, 4 * (k + 1)),
      () => {
        load(k, 16 * k);
        step(k, 16 * k);
      },
    );
  }
  f.local.set(i, () => f.i32.add(i, () => f.i32.shl(() => f.i32.and(rem, -4), 2)));
  f.local.set(rem, () => f.i32.and(rem, 3));
  f.if(rem, () => {
    ps.forEach((q, j) => {
      f.local.set(tp, () => addr(q));
      loadPartial(f, tp, rem, x[3][j]);
    });
    f.local.set(t[3], () => term(x[3]));
    if (store) {
      f.local.set(tp, () => addr(store));
      storePartial(f, tp, rem, t[3]);
    }
    // lanes >= rem take the identity
    f.local.set(acc[3], () =>
      op(acc[3], () =>
        f.v128.bitselect(t[3], id, () =>
          f.i32x4.lt_s(
            () => f.i32x4.const(0, 1, 2, 3),
            () => f.i32x4.splat(rem),
          ),
        ),
      ),
    );
  });
  for (let k = 0; k < 4; k++) f.local.set(tot[k], () => op(tot[k], acc[k]));
  f.local.set(out, () =>
    op(
      () => op(tot[0], tot[1]),
      () => op(tot[2], tot[3]),
    ),
  );
  return out;
}

/** The block length (vectors per lane group) rowReduce uses for rows of n: about sqrt(n / 16), at least 1. */
export function rowBlock(n: number): number {
  return Math.max(1, Math.round(Math.sqrt(n / 16)));
}

/**
 * The most float32 additions a term of a rowReduce sum over n elements goes through, counting the
 * horizontal combine: blk within its block, one per later block, 1 into the running lanes, 2 + 2.
 */
export function rowDepth(n: number, blk = rowBlock(n)): number {
  return blk + Math.ceil(n / (16 * blk)) + 5;
}

export interface ColumnReduce {
  /** byte pointer to row 0 of the rows to sum (a local, left as it is) */
  src: Local;
  /** byte pointer to the n sums (a local, left as it is) */
  out: Local;
  /** columns */
  n: Local;
  /** rows */
  count: Local;
  /** bytes from one row to the next */
  stride: Local;
  /** rows per block */
  blk: Local;
  /** the lanewise combine (default f32x4.add) and its neutral element (default 0) */
  op?: Combine;
  identity?: number;
}

/**
 * out[j] = the reduction over rows k < count of src[k][j] (a sum unless op says otherwise), in
 * float32, every column in the same fixed order: blocks of `blk` rows combined from the identity
 * in row order, the block results combined in block order into a total from the identity. Columns
 * go 16 at a time (4 vectors), then 4, then the last n % 4 through lane loads and stores; each
 * column's operations are the same whichever lane computes it. A sum is within
 * gamma_(blk + ceil(count / blk)) * sum |terms| of the exact sum.
 */
export function columnReduce(f: FunctionBuilder, c: ColumnReduce): void {
  const { src, out, n, count, stride, blk } = c;
  const op: Combine = c.op ?? ((a, b) => f.f32x4.add(a, b));
  const id = () => f.f32x4.const(c.identity ?? 0);
  const { j, k, kb, kEnd, p, q, end4, end16, rem } = i32s(f, 'j', 'k', 'kb', 'kEnd', 'p', 'q', 'end4', 'end16', 'rem');
  const tot = v128s(f, 4),
    acc = v128s(f, 4);
  const x = f.local.declare('v128');
  // the sums of `vectors` vectors of columns from byte offset j: load(v) sets x to vector v of the
  // row at p, store(v) stores tot[v] at q
  const strip = (vectors: number, load: (v: number) => void, store: (v: number) => void) => {
    for (let v = 0; v < vectors; v++) f.local.set(tot[v], id);
    f.local.set(p, () => f.i32.add(src, j));
    f.local.set(kb, 0);
    f.block((done) => {
      f.loop((top) => {
        f.br_if(done, () => f.i32.ge_s(kb, count));
        f.local.set(kEnd, () => f.i32.add(kb, blk));
        f.local.set(kEnd, () => imin(f, kEnd, count));
        for (let v = 0; v < vectors; v++) f.local.set(acc[v], id);
        f.for(k, kb, kEnd, 1, () => {
          for (let v = 0; v < vectors; v++) {
            load(v);
            f.local.set(acc[v], () => op(acc[v], x));
          }
          f.local.set(p, () => f.i32.add(p, stride));
        });
        for (let v = 0; v < vectors; v++) f.local.set(tot[v], () => op(tot[v], acc[v]));
        f.local.set(kb, kEnd);
        f.br(top);
      });
    });
    f.local.set(q, () => f.i32.add(out, j));
    for (let v = 0; v < vectors; v++) store(v);
  };
  f.local.set(end16, () => f.i32.shl(() => f.i32.and(n, -16), 2));
  f.local.set(end4, () => f.i32.shl(() => f.i32.and(n, -4), 2));
  f.local.set(j, 0);
  f.block((done) => {
    f.loop((top) => {
      f.br_if(done, () => f.i32.ge_u(j, end16));
      strip(
        4,
        (v) => f.local.set(x, () => f.v128.load(p, 16 * v)),
        (v) => f.v128.store(q, tot[v], 16 * v),
      );
      f.local.set(j, () => f.i32.add(j, 64));
      f.br(top);
    });
  });
  f.block((done) => {
    f.loop((top) => {
      f.br_if(done, () => f.i32.ge_u(j, end4));
      strip(
        1,
        () => f.local.set(x, () => f.v128.load(p)),
        () => f.v128.store(q, tot[0]),
      );
      f.local.set(j, () => f.i32.add(j, 16));
      f.br(top);
    });
  });
  f.local.set(rem, () => f.i32.and(n, 3));
  f.if(rem, () => {
    strip(
      1,
      () => loadPartial(f, p, rem, x),
      () => storePartial(f, q, rem, tot[0]),
    );
  });
}

/** columnReduce with f32x4.add from 0. */
export const columnSum = (f: FunctionBuilder, c: Omit<ColumnReduce, 'op' | 'identity'>) => columnReduce(f, c);
