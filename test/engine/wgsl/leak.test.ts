// A tiny training loop run for 1000 steps on WebGPU must not grow the number of live buffers or
// tensors, and (through the pool) must stop creating GPU buffers after its first steps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { getWebGpu } from '../../helpers/webgpu.ts';

const gpu = await getWebGpu();

test('1000 SGD steps (matmuls, tanh, mean-square loss) on WebGPU leak no buffers or tensors', async () => {
  if (!gpu) return;
  const rng = new mi.Rng('webgpu-leak');
  const opts = { backend: gpu };
  const x = mi.randn([16, 8], rng.fork('x'), opts);
  const y = mi.randn([16, 1], rng.fork('y'), opts);
  const w1 = mi.randn([8, 16], rng.fork('w1'), { ...opts, std: 0.3 });
  const w2 = mi.randn([16, 1], rng.fork('w2'), { ...opts, std: 0.3 });
  const lossOf = (a: mi.Tensor, b: mi.Tensor) => mi.mean(mi.square(mi.sub(mi.matmul(mi.tanh(mi.matmul(x, a)), b), y)));
  const step = () =>
    mi.tidy(() => {
      const {
        value,
        grads: [g1, g2],
      } = mi.valueAndGrad(lossOf)(w1, w2);
      w1.assign(mi.sub(w1, mi.mul(g1, 0.1)));
      w2.assign(mi.sub(w2, mi.mul(g2, 0.1)));
      return value;
    });
  const first = step();
  const firstLoss = await first.item();
  first.dispose();
  for (let i = 0; i < 10; i++) step().dispose();
  await gpu.flush();
  const buffers = gpu.liveBuffers();
  const tensors = mi.liveTensorCount();
  const created = gpu.buffersCreated;
  for (let i = 0; i < 1000; i++) {
    step().dispose();
    // a training loop reads its loss now and then; between reads the work stays queued
    if (i % 250 === 249) await gpu.flush();
  }
  const last = step();
  const lastLoss = await last.item();
  last.dispose();
  assert.is(gpu.liveBuffers(), buffers, 'live buffers after 1000 steps');
  assert.is(mi.liveTensorCount(), tensors, 'live tensors after 1000 steps');
  // Submissions end at different points of a step, so the set of buffers held back until a
  // submit varies a little and the pool may grow by a few; a per-step leak would add >= 1000.
  const extra = gpu.buffersCreated - created;
  assert.ok(extra <= 16, `${extra} GPU buffers created after the warm-up (the pool should serve nearly every step)`);
  assert.ok(lastLoss < firstLoss, `the loop trains: loss ${firstLoss} -> ${lastLoss}`);
  for (const t of [x, y, w1, w2]) t.dispose();
});

test.run();
