// Every basic WGSL kernel against the CPU kernel on seeded random inputs of awkward sizes. Outputs
// are poisoned first (NaN for float, a sentinel for int32), so an element a kernel fails to write
// shows up as a mismatch. Float32 agreement: |gpu - cpu| <= 1e-5 * (|cpu| + scale), where scale is
// the op's natural size of rounding error (stated at each test where it is more than 1).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import type { Backend } from '../../../engine/backend.ts';
import type { TypedArray } from '../../../engine/dtype.ts';
import { UNARY, BINARY, type BinaryOp, type UnaryOp } from '../../../engine/elementwise.ts';
import type { KernelName, KernelParams } from '../../../engine/kernels.ts';
import { broadcastStrides } from '../../../engine/shape.ts';
import { WGSL_KERNELS } from '../../../engine/wgsl/kernels/index.ts';
import { runKernel, unaryCase, worstRelativeError, type OutSpec } from '../../helpers/kernel-run.ts';
import { getWebGpu } from '../../helpers/webgpu.ts';

const gpu = await getWebGpu();
const cpu = mi.cpuBackend();
const Kernels = suite('webgpu kernels vs cpu');

/** float32 agreement within 1e-5 relative, NaN where the CPU has NaN. */
function compare(what: string, got: TypedArray, want: TypedArray, scale: number | ((i: number) => number) = 1): void {
  assert.is(got.length, want.length, `${what}: length`);
  const { worst, at } = worstRelativeError(got, want, scale);
  assert.ok(worst <= 1e-5, `${what}: relative error ${worst} at ${at} (gpu ${got[at]}, cpu ${want[at]})`);
}

async function parity<K extends KernelName>(
  what: string,
  kernel: K,
  inputs: TypedArray[],
  outs: OutSpec[],
  params: KernelParams[K],
  scale?: number | ((i: number) => number),
): Promise<TypedArray[]> {
  const want = await runKernel(cpu, kernel, inputs, outs, params);
  const got = await runKernel(gpu!, kernel, inputs, outs, params);
  got.forEach((g, k) => compare(`${what} output ${k}`, g, want[k], scale));
  return got;
}

const rng = new mi.Rng('webgpu-kernels');
function randn(n: number, f: (x: number) => number = (x) => x): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = f(rng.normal());
  return a;
}
function randi(n: number, lo: number, hi: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.int(lo, hi);
  return a;
}
const SIZES = [1, 7, 33, 1025];
const skip = !gpu;

Kernels('fill: float32 and int32, every size', async () => {
  if (skip) return;
  for (const n of SIZES) {
    await parity(`fill f32 ${n}`, 'fill', [], [{ dtype: 'float32', size: n }], { size: n, value: -2.5 });
    await parity(`fill i32 ${n}`, 'fill', [], [{ dtype: 'int32', size: n }], { size: n, value: 42 });
  }
});

Kernels('unary: every op of the shared table, every size', async () => {
  if (skip) return;
  for (const op of Object.keys(UNARY) as UnaryOp[]) {
    const c = unaryCase(op);
    for (const n of SIZES) {
      await parity(
        `unary ${op} ${n}`,
        'unary',
        [randn(n, c.x)],
        [{ dtype: 'float32', size: n }],
        { op, size: n, alpha: c.alpha, beta: c.beta },
        c.scale,
      );
    }
  }
  for (const op of ['neg', 'abs', 'sign', 'square'] as UnaryOp[]) {
    await parity(`unary ${op} int32`, 'unary', [randi(33, -50, 50)], [{ dtype: 'int32', size: 33 }], { op, size: 33, alpha: 0, beta: 0 });
  }
});

Kernels('unary and binary over more than 65535 workgroups (the grid folds into 2-D)', async () => {
  if (skip) return;
  // 16.8M elements: inputs from a formula and cheap ops, so the test is about coverage, not maths
  const n = 65535 * 256 + 7;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = ((i * 7919) % 2003) - 1001;
  await parity('unary affine big', 'unary', [x], [{ dtype: 'float32', size: n }], { op: 'affine', size: n, alpha: 0.5, beta: 3 });
  await parity('binary add big (b broadcast)', 'binary', [x, new Float32Array([0.25])], [{ dtype: 'float32', size: n }], {
    op: 'add',
    shape: [n],
    aStrides: [1],
    bStrides: [0],
  });
});

Kernels('binary: every op, with broadcasting, float32 and int32', async () => {
  if (skip) return;
  const cases: [number[], number[]][] = [
    [[1], [1]],
    [[7], [7]],
    [
      [33, 7],
      [1, 7],
    ],
    [
      [7, 1, 33],
      [1, 5, 1],
    ],
    [[1025], [1]],
  ];
  for (const op of Object.keys(BINARY) as BinaryOp[]) {
    for (const [aShape, bShape] of cases) {
      const outShape = aShape.map((d, i) => Math.max(d, bShape[i]));
      const na = aShape.reduce((p, d) => p * d, 1),
        nb = bShape.reduce((p, d) => p * d, 1);
      const n = outShape.reduce((p, d) => p * d, 1);
      // pow needs a positive base; comparisons need ties, so draw from a few integers
      const tieable = ['gt', 'ge', 'lt', 'le', 'eq', 'ne', 'maximum', 'minimum'].includes(op);
      const fa = op === 'pow' ? randn(na, (v) => Math.abs(v) + 0.1) : tieable ? randn(na, (v) => Math.round(v * 2)) : randn(na);
      const fb =
        op === 'div'
          ? randn(nb, (v) => Math.sign(v || 1) * (Math.abs(v) + 0.1))
          : tieable
            ? randn(nb, (v) => Math.round(v * 2))
            : randn(nb);
      const p = { op, shape: outShape, aStrides: broadcastStrides(aShape, outShape), bStrides: broadcastStrides(bShape, outShape) };
      await parity(`binary ${op} ${aShape}x${bShape}`, 'binary', [fa, fb], [{ dtype: 'float32', size: n }], p, op === 'pow' ? 10 : 1);
      if (['add', 'sub', 'mul', 'maximum', 'minimum', 'gt', 'ge', 'lt', 'le', 'eq', 'ne'].includes(op)) {
        await parity(
          `binary ${op} int32 ${aShape}x${bShape}`,
          'binary',
          [randi(na, -5, 5), randi(nb, -5, 5)],
          [{ dtype: 'int32', size: n }],
          p,
        );
      }
    }
  }
});

Kernels('where: broadcast condition, float and int32 condition', async () => {
  if (skip) return;
  const shape = [7, 33];
  const cond = randn(33, (v) => (v > 0 ? 1 : 0));
  const p = {
    shape,
    cStrides: broadcastStrides([33], shape),
    aStrides: broadcastStrides(shape, shape),
    bStrides: broadcastStrides([7, 1], shape),
  };
  await parity('where f32 cond', 'where', [cond, randn(231), randn(7)], [{ dtype: 'float32', size: 231 }], p);
  await parity('where i32 cond', 'where', [Int32Array.from(cond), randn(231), randn(7)], [{ dtype: 'float32', size: 231 }], p);
});

Kernels('cast: float32 -> int32 truncates toward zero, int32 -> float32', async () => {
  if (skip) return;
  for (const n of SIZES) {
    await parity(`cast f2i ${n}`, 'cast', [randn(n, (v) => v * 100)], [{ dtype: 'int32', size: n }], { size: n });
    await parity(`cast i2f ${n}`, 'cast', [randi(n, -1000, 1000)], [{ dtype: 'float32', size: n }], { size: n });
  }
});

Kernels('copy: permute, slice with offsets, expand, and a write into a region (concat)', async () => {
  if (skip) return;
  // permute [7, 33, 5] -> [5, 7, 33]
  const x = randn(7 * 33 * 5);
  await parity('copy permute', 'copy', [x], [{ dtype: 'float32', size: x.length }], {
    shape: [5, 7, 33],
    inStrides: [1, 165, 5],
    inOffset: 0,
    outStrides: [231, 33, 1],
    outOffset: 0,
  });
  // slice rows 2..6 of [7, 33]
  const s = randn(231);
  await parity('copy slice', 'copy', [s], [{ dtype: 'float32', size: 4 * 33 }], {
    shape: [4, 33],
    inStrides: [33, 1],
    inOffset: 66,
    outStrides: [33, 1],
    outOffset: 0,
  });
  // expand [1, 33] -> [1025, 33]
  await parity('copy expand', 'copy', [randn(33)], [{ dtype: 'float32', size: 1025 * 33 }], {
    shape: [1025, 33],
    inStrides: [0, 1],
    inOffset: 0,
    outStrides: [33, 1],
    outOffset: 0,
  });
  // int32
  await parity('copy int32 permute', 'copy', [randi(231, -9, 9)], [{ dtype: 'int32', size: 231 }], {
    shape: [33, 7],
    inStrides: [1, 33],
    inOffset: 0,
    outStrides: [7, 1],
    outOffset: 0,
  });
  // concat: [7, 5] into columns 3..8 of a [7, 12] output whose other elements must stay as they are
  const init = randn(84);
  const got = await parity('copy into region', 'copy', [randn(35)], [{ dtype: 'float32', size: 84, init }], {
    shape: [7, 5],
    inStrides: [5, 1],
    inOffset: 0,
    outStrides: [12, 1],
    outOffset: 3,
  });
  assert.is(got[0][0], init[0], 'elements outside the region are untouched');
});

Kernels('reduce: sum/max/min over [outer, len, inner] of awkward sizes', async () => {
  if (skip) return;
  for (const [outer, len, inner] of [
    [1, 1, 1],
    [1, 1025, 1],
    [7, 33, 1],
    [3, 1025, 7],
    [2, 7, 33],
    [1, 33, 1025],
    [5, 1, 7],
  ]) {
    const x = randn(outer * len * inner);
    for (const op of ['sum', 'max', 'min'] as const) {
      // a float32 sum's rounding grows with the sum of |x|: scale by it (sqrt(len) is its typical size)
      await parity(
        `reduce ${op} [${outer},${len},${inner}]`,
        'reduce',
        [x],
        [{ dtype: 'float32', size: outer * inner }],
        { op, outer, len, inner },
        op === 'sum' ? Math.sqrt(len) : 1,
      );
    }
  }
  await parity('reduce sum int32', 'reduce', [randi(3 * 33 * 7, -100, 100)], [{ dtype: 'int32', size: 21 }], {
    op: 'sum',
    outer: 3,
    len: 33,
    inner: 7,
  });
  await parity('reduce max int32', 'reduce', [randi(3 * 33 * 7, -100, 100)], [{ dtype: 'int32', size: 21 }], {
    op: 'max',
    outer: 3,
    len: 33,
    inner: 7,
  });
});

Kernels('argmax: first index of the largest value, with ties', async () => {
  if (skip) return;
  for (const [outer, len, inner] of [
    [1, 1, 1],
    [1, 1025, 1],
    [7, 33, 1],
    [3, 1025, 7],
    [2, 7, 33],
  ]) {
    // few distinct values: many ties, which must resolve to the lowest index
    const x = randn(outer * len * inner, (v) => Math.round(v * 2));
    await parity(`argmax [${outer},${len},${inner}]`, 'argmax', [x], [{ dtype: 'int32', size: outer * inner }], { outer, len, inner });
  }
  const withInf = new Float32Array([-Infinity, -Infinity, NaN, -Infinity]);
  await parity('argmax of -Infinity and NaN only', 'argmax', [withInf], [{ dtype: 'int32', size: 1 }], { outer: 1, len: 4, inner: 1 });
});

Kernels('matmul: transposes, batch broadcast, sizes 1 to 1025', async () => {
  if (skip) return;
  const shapes: [number, number, number, number][] = [
    [1, 1, 1, 1],
    [1, 7, 33, 1],
    [2, 33, 7, 5],
    [1, 65, 130, 17],
    [1, 7, 5, 1025],
    [3, 64, 64, 64],
  ];
  for (const [batch, M, N, K] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        for (const bBroadcast of batch > 1 ? [false, true] : [false]) {
          const a = randn(batch * M * K);
          const b = randn((bBroadcast ? 1 : batch) * K * N);
          const p = { batch, M, N, K, transA, transB, aBatchStride: M * K, bBatchStride: bBroadcast ? 0 : K * N };
          // rounding error of a dot product of length K is bounded by K * eps * sum |a_k b_k|;
          // sum |a_k b_k| is about K * E|a||b| = 2K/pi for normal inputs
          const scale = Math.max(1, (2 * K) / Math.PI);
          await parity(
            `matmul b${batch} ${M}x${N}x${K} ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}${bBroadcast ? ' bcast' : ''}`,
            'matmul',
            [a, b],
            [{ dtype: 'float32', size: batch * M * N }],
            p,
            scale,
          );
        }
      }
    }
  }
});

Kernels('gather, scatter_add (repeated indices), onehot (out-of-range gives a zero row)', async () => {
  if (skip) return;
  for (const [n, rows, cols] of [
    [1, 1, 1],
    [7, 5, 33],
    [1025, 33, 7],
    [33, 1025, 1],
  ]) {
    const idx = randi(n, 0, rows);
    await parity(`gather ${n}x${rows}x${cols}`, 'gather', [randn(rows * cols), idx], [{ dtype: 'float32', size: n * cols }], {
      n,
      rows,
      cols,
    });
    await parity(
      `scatter_add ${n}x${rows}x${cols}`,
      'scatter_add',
      [randn(n * cols), idx],
      [{ dtype: 'float32', size: rows * cols }],
      { n, rows, cols },
      Math.sqrt(n / rows),
    );
    const oh = randi(n, -1, rows + 1);
    await parity(`onehot ${n}x${rows}`, 'onehot', [oh], [{ dtype: 'float32', size: n * rows }], { n, depth: rows });
  }
});

Kernels('an out-of-range index poisons gather and scatter_add with NaN on WebGPU (the CPU throws)', async () => {
  if (skip) return;
  const [g] = await runKernel(gpu!, 'gather', [randn(6), new Int32Array([0, 3])], [{ dtype: 'float32', size: 4 }], {
    n: 2,
    rows: 3,
    cols: 2,
  });
  assert.ok(!Number.isNaN(g[0]) && Number.isNaN(g[2]) && Number.isNaN(g[3]), `gather row of index 3: ${[...g]}`);
  const [s] = await runKernel(gpu!, 'scatter_add', [randn(4), new Int32Array([0, -1])], [{ dtype: 'float32', size: 6 }], {
    n: 2,
    rows: 3,
    cols: 2,
  });
  assert.ok(
    s.every((v) => Number.isNaN(v)),
    `scatter_add with index -1: ${[...s]}`,
  );
});

Kernels('a missing kernel and a bad WGSL module are errors naming them', async () => {
  if (skip) return;
  const saved = WGSL_KERNELS.onehot;
  delete WGSL_KERNELS.onehot;
  try {
    assert.throws(() => gpu!.run('onehot', [], [], { n: 0, depth: 0 }), /onehot/);
  } finally {
    WGSL_KERNELS.onehot = saved;
  }
  try {
    await gpu!.checkWgsl('@compute @workgroup_size(1) fn main() { let x: f32 = undefined_name; }', 'broken test kernel');
    assert.unreachable('compiled');
  } catch (e) {
    const msg = (e as Error).message;
    assert.match(msg, 'broken test kernel');
    assert.match(msg, /line 1:/);
  }
});

Kernels('a tensor beyond maxStorageBufferBindingSize is an error naming the size and the limit', () => {
  if (skip) return;
  const limit = gpu!.device.limits.maxStorageBufferBindingSize;
  assert.throws(
    () => gpu!.alloc('float32', limit / 4 + 1),
    (e: Error) => e.message.includes(String(limit)) && e.message.includes('maxStorageBufferBindingSize'),
  );
  assert.not.ok(gpu!.supports('float64'));
});

Kernels('gradients on WebGPU match the CPU (elementwise, reduce, matmul, shape ops)', async () => {
  if (skip) return;
  const f = (x: mi.Tensor, w: mi.Tensor, b: mi.Tensor) => {
    const h = mi.tanh(mi.add(mi.matmul(x, w), b)); // [7, 5]
    const t = mi.transpose(mi.mul(h, mi.sigmoid(h))); // [5, 7]
    const s = mi.slice(mi.concat([t, mi.exp(mi.neg(mi.square(t)))], 0), 0, 3, 8); // [5, 7]
    const m = mi.max(s, 1); // [5]
    return mi.add(mi.mean(mi.sum(mi.square(s), 0)), mi.sum(mi.div(m, mi.add(mi.abs(m), 1))));
  };
  const xs = [randn(7 * 33), randn(33 * 5, (v) => v * 0.2), randn(5)];
  const shapes = [[7, 33], [33, 5], [5]];
  const run = async (backend: Backend) => {
    const args = xs.map((a, i) => mi.tensor(a, shapes[i], { backend }));
    const gs = mi.grad(f)(...args);
    return Promise.all(gs.map((g) => g.data()));
  };
  const want = await run(cpu);
  const got = await run(gpu!);
  got.forEach((g, i) => compare(`gradient ${i}`, g, want[i], 1));
});

Kernels.run();
