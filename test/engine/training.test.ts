// End to end: a tiny MLP built from engine ops learns a seeded toy regression with AdamW, and a
// rerun with the same seed reproduces every loss bit for bit (float32, CPU).
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';

const test = suite('training');

const N_SAMPLES = 64,
  IN = 2,
  HIDDEN = 16,
  STEPS = 300;

/** Targets y = sin(2 x0) * cos(x1) + 0.3 x0 on x uniform in [-1, 1]^2. */
function toyData(rng: mi.Rng): { x: mi.Tensor; y: mi.Tensor } {
  const x = mi.rand([N_SAMPLES, IN], rng.fork('x'), { lo: -1, hi: 1 });
  const xs = x.dataSync();
  const ys = new Float32Array(N_SAMPLES);
  for (let i = 0; i < N_SAMPLES; i++) ys[i] = Math.sin(2 * xs[2 * i]) * Math.cos(xs[2 * i + 1]) + 0.3 * xs[2 * i];
  return { x, y: mi.tensor(ys, [N_SAMPLES, 1]) };
}

function initParams(rng: mi.Rng): mi.Tensor[] {
  const g = { requiresGrad: true };
  return [
    mi.randn([HIDDEN, IN], rng.fork('w1'), { ...g, std: 1 / Math.sqrt(IN) }),
    mi.zeros([HIDDEN], g),
    mi.randn([HIDDEN, HIDDEN], rng.fork('w2'), { ...g, std: 1 / Math.sqrt(HIDDEN) }),
    mi.zeros([HIDDEN], g),
    mi.randn([1, HIDDEN], rng.fork('w3'), { ...g, std: 1 / Math.sqrt(HIDDEN) }),
    mi.zeros([1], g),
  ];
}

function mlp([w1, b1, w2, b2, w3, b3]: mi.Tensor[], x: mi.Tensor): mi.Tensor {
  const h1 = mi.tanh(mi.linear(x, w1, b1));
  const h2 = mi.silu(mi.linear(h1, w2, b2));
  return mi.linear(h2, w3, b3);
}

/** Trains from scratch; returns every step's loss (as float32 values read from the engine). */
function train(seed: number): number[] {
  const rng = new mi.Rng(seed);
  const { x, y } = toyData(rng.fork('data'));
  const params = initParams(rng.fork('init'));
  const opt = new mi.AdamW(params, { lr: 0.02, weightDecay: 1e-4 });
  const sched = mi.warmupCosine({ baseLr: 0.02, warmupSteps: 20, totalSteps: STEPS, minLr: 1e-3 });
  const losses: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    opt.lr = sched(step);
    mi.tidy(() => {
      const loss = mi.mean(mi.square(mi.sub(mlp(params, x), y)));
      mi.backward(loss);
      losses.push(loss.dataSync()[0]);
    });
    opt.step();
    opt.zeroGrad();
  }
  opt.dispose();
  for (const t of [x, y, ...params]) t.dispose();
  return losses;
}

test('a tiny MLP learns the toy regression with AdamW and a warm-up + cosine schedule', () => {
  const losses = train(7);
  const first = losses[0],
    last = losses[losses.length - 1];
  assert.ok(losses.every(Number.isFinite), 'all losses finite');
  assert.ok(last < 0.05 * first, `final loss ${last} is not below 5% of the initial ${first}`);
  assert.ok(last < 1e-2, `final loss ${last} >= 1e-2`);
});

test('two runs with the same seed give bit-identical loss sequences; another seed differs', () => {
  const a = train(11),
    b = train(11);
  assert.is(a.length, STEPS);
  // Object.is distinguishes every float (and -0); comparing the bits via Float32Array would too
  a.forEach((v, i) => assert.ok(Object.is(v, b[i]), `step ${i}: ${v} vs ${b[i]}`));
  const c = train(12);
  assert.ok(
    c.some((v, i) => v !== a[i]),
    'a different seed should give a different run',
  );
});

test.run();
