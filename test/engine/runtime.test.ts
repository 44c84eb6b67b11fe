// Memory discipline over long training loops: after warm-up, 1000 steps must not grow the number
// of live tensors, the CPU backend's live buffers, or (beyond a small bound) the JS heap.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as mi from '../../engine/index.ts';

const test = suite('memory');

const STEPS = 1000,
  CHECK_AT = 10,
  WARMUP_STEPS = 300,
  BATCH = 16,
  IN = 4,
  HIDDEN = 8;
// After a full gc and a warm-up run, the measured window still grows by 0.05-0.46 MB from run to
// run (JIT code and feedback settling; over 16k steps it levels off instead of growing with the
// step count). The exact leak checks are the tensor and buffer counts; this bound catches JS-side
// leaks of more than about 1 KB a step (retaining each step's autograd graph costs ~0.8 KB here).
const HEAP_BOUND = 1024 * 1024;

/** A full garbage collection: global.gc under --expose-gc, else the flag set at run time. */
function getGc(): (() => void) | null {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) return g;
  try {
    v8.setFlagsFromString('--expose-gc');
    return vm.runInNewContext('gc') as () => void;
  } catch {
    return null;
  }
}
const gc = getGc();

interface Snapshot {
  tensors: number;
  buffers: number;
  heap: number;
}
function snapshot(): Snapshot {
  if (gc) {
    gc();
    gc();
  }
  return { tensors: mi.liveTensorCount(), buffers: mi.cpuBackend().liveBuffers(), heap: process.memoryUsage().heapUsed };
}

function setup(seed: string) {
  const rng = new mi.Rng(seed);
  const x = mi.randn([BATCH, IN], rng.fork('x'));
  const y = mi.randn([BATCH, 1], rng.fork('y'));
  const params = [
    mi.randn([HIDDEN, IN], rng.fork('w1'), { std: 0.5, requiresGrad: true }),
    mi.zeros([HIDDEN], { requiresGrad: true }),
    mi.randn([1, HIDDEN], rng.fork('w2'), { std: 0.5, requiresGrad: true }),
    mi.zeros([1], { requiresGrad: true }),
  ];
  const lossOf = (w1: mi.Tensor, b1: mi.Tensor, w2: mi.Tensor, b2: mi.Tensor) =>
    mi.mean(mi.square(mi.sub(mi.linear(mi.tanh(mi.linear(x, w1, b1)), w2, b2), y)));
  const opt = new mi.AdamW(params, { lr: 1e-3 });
  const dispose = () => {
    opt.dispose();
    for (const t of [x, y, ...params]) t.dispose();
  };
  return { params, lossOf, opt, dispose };
}

function assertNoGrowth(at10: Snapshot, atEnd: Snapshot, what: string): void {
  assert.is(atEnd.tensors, at10.tensors, `${what}: live tensors ${at10.tensors} after step ${CHECK_AT}, ${atEnd.tensors} after ${STEPS}`);
  assert.is(
    atEnd.buffers,
    at10.buffers,
    `${what}: live CPU buffers ${at10.buffers} after step ${CHECK_AT}, ${atEnd.buffers} after ${STEPS}`,
  );
  // without a forced gc the heap moves by megabytes between collections: allow for that
  const bound = gc ? HEAP_BOUND : 32 * 1024 * 1024;
  const grew = atEnd.heap - at10.heap;
  assert.ok(
    grew < bound,
    `${what}: JS heap grew by ${grew} bytes over ${STEPS - CHECK_AT} steps (bound ${bound}, gc ${gc ? 'forced' : 'unavailable'})`,
  );
}

/** One training run with mi.backward; calls `at(step)` after each step. */
function backwardRun(seed: string, steps: number, at: (step: number, loss: number) => void): void {
  const { params, lossOf, opt, dispose } = setup(seed);
  for (let step = 1; step <= steps; step++) {
    let loss = NaN;
    mi.tidy(() => {
      const l = lossOf(params[0], params[1], params[2], params[3]);
      mi.backward(l);
      loss = l.dataSync()[0];
    });
    opt.step();
    opt.zeroGrad();
    at(step, loss);
  }
  dispose();
}

test('1000 AdamW steps with mi.backward (.grad, zeroGrad) leak nothing', () => {
  // a throwaway run first, so that JIT tier-up (code and feedback, a few hundred KiB that land
  // at unpredictable steps) happens before the measured window rather than inside it
  backwardRun('warm-up', WARMUP_STEPS, () => {});
  const before = snapshot();
  let at10: Snapshot | null = null,
    atEnd: Snapshot | null = null;
  let firstLoss = NaN,
    lastLoss = NaN;
  backwardRun('backward', STEPS, (step, loss) => {
    if (step === 1) firstLoss = loss;
    lastLoss = loss;
    if (step === CHECK_AT) at10 = snapshot();
    if (step === STEPS) atEnd = snapshot();
  });
  assertNoGrowth(at10!, atEnd!, 'backward loop');
  assert.ok(lastLoss < firstLoss, `the loop trained (loss ${firstLoss} -> ${lastLoss})`);
  const after = snapshot();
  assert.is(after.tensors, before.tensors, 'every tensor of the run freed at the end');
  assert.is(after.buffers, before.buffers, 'every buffer of the run freed at the end');
});

/** One training run with mi.valueAndGrad, clipping and tidyAsync; calls `at(step)` after each step. */
async function valueAndGradRun(seed: string, steps: number, at: (step: number) => void): Promise<void> {
  const { params, lossOf, opt, dispose } = setup(seed);
  const vg = mi.valueAndGrad((w1, b1, w2, b2) => lossOf(w1, b1, w2, b2));
  for (let step = 1; step <= steps; step++) {
    await mi.tidyAsync(async () => {
      const { value, grads } = vg(...params);
      await mi.clipGradNorm(grads, 1);
      opt.step(grads);
      await value.data();
    });
    at(step);
  }
  dispose();
}

test('1000 AdamW steps with mi.valueAndGrad, clipGradNorm and tidyAsync leak nothing', async () => {
  await valueAndGradRun('warm-up', WARMUP_STEPS, () => {});
  const before = snapshot();
  let at10: Snapshot | null = null,
    atEnd: Snapshot | null = null;
  await valueAndGradRun('valueAndGrad', STEPS, (step) => {
    if (step === CHECK_AT) at10 = snapshot();
    if (step === STEPS) atEnd = snapshot();
  });
  assertNoGrowth(at10!, atEnd!, 'valueAndGrad loop');
  const after = snapshot();
  assert.is(after.tensors, before.tensors, 'every tensor of the run freed at the end');
  assert.is(after.buffers, before.buffers, 'every buffer of the run freed at the end');
});

test('optimiser state does not grow with steps: SGD momentum buffers are reused', () => {
  const p = mi.ones([32], { requiresGrad: true });
  const opt = new mi.SGD([p], { lr: 0.01, momentum: 0.9, weightDecay: 1e-3 });
  const count = () => [mi.liveTensorCount(), mi.cpuBackend().liveBuffers()];
  const step = () => {
    mi.tidy(() => mi.backward(mi.sum(mi.square(p))));
    opt.step();
    opt.zeroGrad();
  };
  step();
  const after1 = count();
  for (let i = 0; i < 200; i++) step();
  assert.equal(count(), after1);
  opt.dispose();
  p.dispose();
});

test.run();

// ---- tidy, keep and noGrad -------------------------------------------------------------------------
const scopes = suite('tidy, keep and noGrad');
const f32 = (shape: number[], v = 1) => mi.full(shape, v);

scopes('tidy disposes intermediates and keeps returned tensors (direct, in arrays and objects)', () => {
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

scopes('nested tidy hands its result to the enclosing scope; keep() escapes every scope', () => {
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

scopes('tidy disposes what it made when fn throws', () => {
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

scopes('backward inside tidy frees every intermediate cotangent', () => {
  const x = mi.tensor([1, 2, 3], [3], { dtype: 'float64', requiresGrad: true });
  const before = mi.liveTensorCount();
  mi.tidy(() => mi.backward(mi.sum(mi.mul(mi.exp(mi.add(x, x)), x))));
  assert.is(mi.liveTensorCount(), before + 1, 'only x.grad survives');
  assert.ok(x.grad && !x.grad.disposed);
  x.dispose();
});

scopes('noGrad records nothing', () => {
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

scopes.run();
