// Misuse fails loudly and says where: shape and dtype mismatches name the op and both shapes,
// out-of-range indices name the position, disposed tensors say so. Also the scope and tape rules:
// tidy keeps what it returns, backward accumulates, noGrad records nothing, detach cuts the graph.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';

const f32 = (shape: number[], v = 1) => mi.full(shape, v);
const f64 = (shape: number[], v = 1) => mi.full(shape, v, { dtype: 'float64' });
const i32 = (values: number[]) => mi.tensor(values, [values.length], { dtype: 'int32' });

/** fn throws, and the message contains every fragment (literal text). */
function throwsNaming(fn: () => unknown, ...fragments: string[]): void {
  let msg: string | null = null;
  try {
    fn();
  } catch (e) {
    msg = (e as Error).message;
  }
  assert.ok(msg !== null, `expected an error naming ${fragments.join(', ')}`);
  for (const f of fragments) assert.ok(msg!.includes(f), `error "${msg}" does not mention "${f}"`);
}

// ---- shape and dtype mismatches ---------------------------------------------------------------
const mismatches: [string, () => unknown, ...string[]][] = [
  ['add shapes', () => mi.add(f32([2, 3]), f32([4])), 'add', '[2,3]', '[4]'],
  ['mul shapes', () => mi.mul(f32([2, 3]), f32([2, 2])), 'mul', '[2,3]', '[2,2]'],
  ['add dtypes', () => mi.add(f32([2]), f64([2])), 'add', 'float32[2]', 'float64[2]'],
  ['where shapes', () => mi.where(f32([2, 3]), f32([3]), f32([4])), 'where', '[4]'],
  ['matmul inner dimensions', () => mi.matmul(f32([2, 3]), f32([4, 5])), 'matmul', '[2,3]', '[4,5]'],
  ['matmul inner dimensions, transposed', () => mi.matmul(f32([2, 3]), f32([4, 5]), { transB: true }), 'matmul', '[2,3]', '[4,5]^T'],
  ['matmul batch shapes', () => mi.matmul(f32([2, 3, 4]), f32([3, 4, 5])), 'matmul', '[2,3,4]', '[3,4,5]'],
  ['matmul dtypes', () => mi.matmul(f32([2, 2]), f64([2, 2])), 'matmul', 'float32[2,2]', 'float64[2,2]'],
  ['matmul scalar', () => mi.matmul(f32([]), f32([2, 2])), 'matmul', '[]', '[2,2]'],
  ['linear', () => mi.linear(f32([2, 3]), f32([4, 5])), 'linear', '[2,3]', '[4,5]'],
  ['concat shapes', () => mi.concat([f32([2, 3]), f32([2, 4])], 0), 'concat', '[2,3]', '[2,4]', 'axis 0'],
  ['concat dtypes', () => mi.concat([f32([2, 3]), f64([2, 3])], 0), 'concat', 'float32[2,3]', 'float64[2,3]'],
  ['concat ranks', () => mi.concat([f32([2, 3]), f32([2, 3, 1])], 1), 'concat', '[2,3]', '[2,3,1]'],
  ['crossEntropy target shape', () => mi.crossEntropy(f32([2, 5]), i32([1, 2, 3])), 'crossEntropy', '[3]', '[2,5]'],
  ['crossEntropy float targets', () => mi.crossEntropy(f32([2, 5]), f32([2])), 'crossEntropy', 'float32[2]', '[2,5]'],
  [
    'selectiveScan B',
    () => mi.selectiveScan({ x: f32([1, 4, 3]), delta: f32([1, 4, 3]), A: f32([3, 2]), B: f32([1, 4, 5]), C: f32([1, 4, 2]) }),
    'selectiveScan',
    'B',
    '[1,4,5]',
    '[1,4,2]',
  ],
  [
    'selectiveScan delta',
    () => mi.selectiveScan({ x: f32([1, 4, 3]), delta: f32([1, 3, 3]), A: f32([3, 2]), B: f32([1, 4, 2]), C: f32([1, 4, 2]) }),
    'selectiveScan',
    'delta',
    '[1,3,3]',
    '[1,4,3]',
  ],
  [
    'selectiveScan h0',
    () =>
      mi.selectiveScan({
        x: f32([1, 4, 3]),
        delta: f32([1, 4, 3]),
        A: f32([3, 2]),
        B: f32([1, 4, 2]),
        C: f32([1, 4, 2]),
        h0: f32([1, 2, 3]),
      }),
    'selectiveScan',
    'h0',
    '[1,2,3]',
    '[1,3,2]',
  ],
  [
    'selectiveScan dtypes',
    () => mi.selectiveScan({ x: f32([1, 4, 3]), delta: f64([1, 4, 3]), A: f32([3, 2]), B: f32([1, 4, 2]), C: f32([1, 4, 2]) }),
    'selectiveScan',
    'float32',
    'float64',
  ],
  ['reshape', () => mi.reshape(f32([2, 3]), [4]), 'reshape', '[2,3]', '[4]'],
  ['reshape with -1', () => mi.reshape(f32([2, 3]), [4, -1]), 'reshape', '[2,3]', '[4,-1]'],
  ['rmsNorm weight', () => mi.rmsNorm(f32([2, 4]), f32([3])), 'rmsNorm', '[3]', '[2,4]'],
  ['conv1dCausal weight', () => mi.conv1dCausal(f32([1, 5, 3]), f32([2, 4])), 'conv1dCausal', '[2,4]', '3 channels'],
  ['conv1dCausal input rank', () => mi.conv1dCausal(f32([5, 3]), f32([3, 4])), 'conv1dCausal', '[5,3]'],
  ['expand', () => mi.expand(f32([2, 3]), [4, 3]), 'expand', '[2,3]', '[4,3]'],
  ['slice range', () => mi.slice(f32([2, 3]), 1, 1, 5), 'slice', '[2,3]'],
  ['split sizes', () => mi.split(f32([2, 3]), [1, 1], 1), 'split', '[2,3]'],
  ['permute', () => mi.permute(f32([2, 3]), [0, 0]), 'permute', '[2,3]'],
  ['squeeze non-1 axis', () => mi.squeeze(f32([2, 3]), 0), 'squeeze', '[2,3]'],
  ['axis out of range', () => mi.sum(f32([2, 3]), 2), 'sum', 'axis 2', 'rank 2'],
  ['topk k', () => mi.topk(f32([2, 3]), 4), 'topk', 'k=4', '[2,3]'],
  ['float op on int32', () => mi.exp(i32([1, 2])), 'exp', 'int32[2]'],
  ['embedding float indices', () => mi.embedding(f32([4, 2]), f32([3])), 'embedding', 'int32', 'float32[3]'],
  [
    'backward of a non-scalar without a cotangent',
    () => mi.backward(mi.mul(f64([2, 2]), mi.tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true }))),
    'backward',
    '[2,2]',
  ],
  [
    'backward with a cotangent of the wrong shape',
    () => mi.backwardFrom(mi.mul(mi.tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true }), 2), f64([3])),
    'backward',
    '[3]',
    '[2]',
  ],
  ['backward of something with no gradient', () => mi.backward(mi.sum(f64([2]))), 'backward'],
];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

// ---- out-of-range indices name the position --------------------------------------------------
test('out-of-range indices name the value and its position', () =>
  mi.tidy(() => {
    throwsNaming(() => mi.embedding(f32([5, 2]), i32([0, 1, 7, 2])), 'index 7', 'position 2', '[0, 5)');
    throwsNaming(() => mi.embedding(f32([5, 2]), i32([-1])), 'index -1', 'position 0');
    throwsNaming(() => mi.indexSelect(f32([2, 3]), 1, i32([0, 3])), 'index 3', 'position 1', '[0, 3)');
    throwsNaming(() => mi.scatterAdd(f32([2, 2]), i32([0, 4]), [3, 2]), 'index 4', 'position 1');
    throwsNaming(() => mi.crossEntropy(f32([3, 4]), i32([0, 4, 1])), 'target 4', 'row 1', '[0, 4)');
  }));

test('a failed kernel leaves no tensors behind', () =>
  mi.tidy(() => {
    const table = f32([5, 2]),
      idx = i32([9]);
    const before = mi.liveTensorCount();
    assert.throws(() => mi.embedding(table, idx));
    assert.is(mi.liveTensorCount(), before);
  }));

// ---- disposal ----------------------------------------------------------------------------------
test('disposed tensors say so, with their shape, wherever they are used', () => {
  const t = f32([2, 3]);
  t.name = 'weights';
  t.dispose();
  assert.ok(t.disposed);
  throwsNaming(() => t.dataSync(), 'disposed', '[2,3]', 'weights');
  throwsNaming(() => mi.add(t, 1), 'disposed', '[2,3]');
  throwsNaming(() => mi.reshape(t, [6]), 'disposed');
  t.dispose(); // a second dispose is harmless
});

test('a view keeps the buffer alive after its source is disposed', () => {
  const t = mi.tensor([1, 2, 3, 4], [2, 2]);
  const v = mi.reshape(t, [4]);
  t.dispose();
  assert.equal([...v.dataSync()], [1, 2, 3, 4]);
  v.dispose();
});

// ---- tidy ----------------------------------------------------------------------------------------
test('tidy disposes intermediates and keeps returned tensors (direct, in arrays and objects)', () => {
  const before = mi.liveTensorCount();
  const x = f32([3], 2);
  let inner: mi.Tensor | null = null;
  const out = mi.tidy(() => {
    inner = mi.mul(x, 3);
    const y = mi.add(inner, 1);
    return { y, list: [mi.exp(y)], n: 5 };
  });
  assert.ok(inner!.disposed, 'intermediate disposed');
  assert.not.ok(x.disposed, 'input made outside kept');
  assert.equal([...out.y.dataSync()], [7, 7, 7]);
  assert.not.ok(out.list[0].disposed);
  assert.is(mi.liveTensorCount(), before + 3);
  x.dispose();
  out.y.dispose();
  out.list[0].dispose();
  assert.is(mi.liveTensorCount(), before);
});

test('nested tidy hands its result to the enclosing scope; keep() escapes every scope', () => {
  const before = mi.liveTensorCount();
  let fromInner: mi.Tensor | null = null;
  let kept: mi.Tensor | null = null;
  mi.tidy(() => {
    fromInner = mi.tidy(() => mi.add(f32([2]), 1));
    assert.not.ok(fromInner.disposed, 'alive in the outer scope');
    kept = mi.keep(f32([2], 4));
  });
  assert.ok(fromInner!.disposed, 'disposed when the outer scope ends');
  assert.not.ok(kept!.disposed);
  kept!.dispose();
  assert.is(mi.liveTensorCount(), before);
});

test('tidy disposes what it made when fn throws', () => {
  const before = mi.liveTensorCount();
  assert.throws(
    () =>
      mi.tidy(() => {
        f32([4]);
        throw new Error('boom');
      }),
    /boom/,
  );
  assert.is(mi.liveTensorCount(), before);
});

test('backward inside tidy frees every intermediate cotangent', () => {
  const x = mi.tensor([1, 2, 3], [3], { dtype: 'float64', requiresGrad: true });
  const before = mi.liveTensorCount();
  mi.tidy(() => mi.backward(mi.sum(mi.mul(mi.exp(mi.add(x, x)), x))));
  assert.is(mi.liveTensorCount(), before + 1, 'only x.grad survives');
  assert.ok(x.grad && !x.grad.disposed);
  x.dispose();
});

// ---- the tape ------------------------------------------------------------------------------------
test('backward accumulates when a tensor is used twice, and across backward calls', () => {
  const x = mi.tensor([1, -2, 3], [3], { dtype: 'float64', requiresGrad: true });
  // y = sum(x * x + 3x): dy/dx = 2x + 3
  mi.backward(mi.sum(mi.add(mi.mul(x, x), mi.mul(x, 3))));
  assert.equal([...x.grad!.dataSync()], [5, -1, 9]);
  mi.backward(mi.sum(x)); // .grad accumulates like PyTorch's
  assert.equal([...x.grad!.dataSync()], [6, 0, 10]);
});

test('a cotangent passed through unchanged to two inputs is not freed under either', () => {
  const a = mi.tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true });
  const b = mi.mul(a, 2);
  const c = mi.mul(a, 3);
  // d/da sum((b + c) + b) = 2 + 3 + 2
  mi.backward(mi.sum(mi.add(mi.add(b, c), b)));
  assert.equal([...a.grad!.dataSync()], [7, 7]);
});

test('backward does not free a caller-owned cotangent', () => {
  const x = mi.tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true });
  const seed = mi.tensor([0.5, 2], [2], { dtype: 'float64' });
  mi.backward(mi.add(x, 1), seed);
  assert.not.ok(seed.disposed);
  mi.backward(mi.add(x, 1), seed);
  assert.equal([...x.grad!.dataSync()], [1, 4]);
  assert.equal([...seed.dataSync()], [0.5, 2]);
});

test('noGrad records nothing', () => {
  const x = mi.tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true });
  const y = mi.noGrad(() => mi.exp(mi.mul(x, 2)));
  assert.is(y.node, null);
  assert.not.ok(y.requiresGrad);
  assert.ok(mi.isGradEnabled(), 'recording is back on afterwards');
  assert.throws(() => mi.backward(mi.sum(y)), /does not depend on any tensor that requires a gradient/);
  assert.throws(
    () =>
      mi.noGrad(() => {
        throw new Error('inside');
      }),
    /inside/,
  );
  assert.ok(mi.isGradEnabled(), 'recording is back on after a throw');
});

test('detach stops gradients', () => {
  const x = mi.tensor([1, 2], [2], { dtype: 'float64', requiresGrad: true });
  const d = mi.detach(mi.mul(x, 5));
  assert.not.ok(d.requiresGrad);
  assert.is(d.node, null);
  // y = sum(x * detach(5x)): dy/dx = 5x, not 10x
  mi.backward(mi.sum(mi.mul(x, d)));
  assert.equal([...x.grad!.dataSync()], [5, 10]);
});

test('int32 outputs never require gradients', () => {
  const x = mi.tensor([3, 1, 2], [3], { dtype: 'float64', requiresGrad: true });
  const { values, indices } = mi.topk(x, 2);
  assert.ok(values.requiresGrad);
  assert.not.ok(indices.requiresGrad);
  assert.is(mi.argmax(x).dtype, 'int32');
});

test.run();
