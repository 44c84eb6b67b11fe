// Optimisers against PyTorch's update formulas written out in plain JS (float64 tensors, so the
// engine and the reference agree to rounding), plus weight decay, clipping and the schedule.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';

const test = suite('optim');
const f64 = { dtype: 'float64' as const };

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.is(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]);
    assert.ok(err <= tol * (1 + Math.abs(expected[i])), `${what}[${i}]: ${actual[i]} vs ${expected[i]} (err ${err})`);
  }
}

// A fixed gradient sequence per step: deterministic, and different each step.
const gradAt = (step: number, n: number) => Array.from({ length: n }, (_, i) => Math.sin(1.3 * step + 0.7 * i) * (i + 1));

/** torch.optim.AdamW.step for one parameter, in plain JS (amsgrad off, maximize off). */
function adamwReference(p0: number[], steps: number, lr: number, b1: number, b2: number, eps: number, wd: number) {
  const p = [...p0],
    m = p.map(() => 0),
    v = p.map(() => 0);
  for (let t = 1; t <= steps; t++) {
    const g = gradAt(t, p.length);
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - lr * wd; // param.mul_(1 - lr * weight_decay)
      m[i] += (g[i] - m[i]) * (1 - b1); // exp_avg.lerp_(grad, 1 - beta1)
      v[i] = v[i] * b2 + (1 - b2) * g[i] * g[i]; // exp_avg_sq.mul_(beta2).addcmul_(grad, grad, 1 - beta2)
      const stepSize = lr / (1 - b1 ** t); // lr / bias_correction1
      const bc2Sqrt = Math.sqrt(1 - b2 ** t);
      const denom = Math.sqrt(v[i]) / bc2Sqrt + eps; // (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
      p[i] -= (stepSize * m[i]) / denom; // param.addcdiv_(exp_avg, denom, value=-step_size)
    }
  }
  return { p, m, v };
}

/** torch.optim.SGD.step (dampening 0, nesterov off) in plain JS. */
function sgdReference(p0: number[], steps: number, lr: number, momentum: number, wd: number) {
  const p = [...p0];
  let buf: number[] | null = null;
  for (let t = 1; t <= steps; t++) {
    let g = gradAt(t, p.length).map((gi, i) => gi + wd * p[i]); // d_p = d_p.add(param, alpha=weight_decay)
    if (momentum) {
      buf = buf ? buf.map((b, i) => momentum * b + g[i]) : [...g]; // buf.mul_(momentum).add_(d_p); first step: clone
      g = buf;
    }
    for (let i = 0; i < p.length; i++) p[i] -= lr * g[i]; // param.add_(d_p, alpha=-lr)
  }
  return p;
}

const p0 = [0.5, -1.25, 2, 0.01, -0.3];

test('AdamW matches the PyTorch AdamW formulas over 5 steps (grads via .grad)', () => {
  const p = mi.tensor(p0, undefined, { ...f64, requiresGrad: true });
  const opt = new mi.AdamW([p], { lr: 0.05, betas: [0.8, 0.95], eps: 1e-6, weightDecay: 0.1 });
  for (let t = 1; t <= 5; t++) {
    // d/dp sum(p * c) = c: the loss's gradient is exactly gradAt(t)
    mi.tidy(() => mi.backward(mi.sum(mi.mul(p, mi.tensor(gradAt(t, p0.length), undefined, f64)))));
    opt.step();
    opt.zeroGrad();
    assert.is(p.grad, null);
    const ref = adamwReference(p0, t, 0.05, 0.8, 0.95, 1e-6, 0.1);
    close(p.dataSync(), ref.p, 1e-12, `p after step ${t}`);
  }
  assert.is(opt.stepCount, 5);
  const s = opt.state();
  const ref = adamwReference(p0, 5, 0.05, 0.8, 0.95, 1e-6, 0.1);
  close(s.m[0].dataSync(), ref.m, 1e-12, 'm');
  close(s.v[0].dataSync(), ref.v, 1e-12, 'v');
  s.m[0].dispose();
  s.v[0].dispose();
  opt.dispose();
  p.dispose();
});

test('AdamW with defaults on float32 tracks the float64 reference to float32 rounding', () => {
  const p = mi.tensor(p0);
  const opt = new mi.AdamW([p], { lr: 1e-2 });
  assert.equal([...opt.betas], [0.9, 0.999]);
  assert.is(opt.eps, 1e-8);
  assert.is(opt.weightDecay, 0.01);
  for (let t = 1; t <= 4; t++) mi.tidy(() => opt.step([mi.tensor(gradAt(t, p0.length))]));
  close(p.dataSync(), adamwReference(p0, 4, 1e-2, 0.9, 0.999, 1e-8, 0.01).p, 1e-6, 'p');
  opt.dispose();
  p.dispose();
});

test('AdamW weight decay is decoupled: a zero gradient only shrinks p by (1 - lr*wd)', () => {
  const p = mi.tensor(p0, undefined, f64);
  const opt = new mi.AdamW([p], { lr: 0.1, weightDecay: 0.5 });
  mi.tidy(() => opt.step([mi.zeros([p0.length], f64)]));
  // coupled (L2) decay would have fed wd*p through Adam's normalisation: a step of about lr per element
  close(
    p.dataSync(),
    p0.map((x) => x * (1 - 0.1 * 0.5)),
    1e-15,
    'p',
  );
  // and the moments saw no decay term
  const s = opt.state();
  assert.equal(
    [...s.m[0].dataSync()],
    p0.map(() => 0),
  );
  s.m[0].dispose();
  s.v[0].dispose();
  opt.dispose();
  p.dispose();
});

test('AdamW state round-trips: a resumed optimiser continues identically', () => {
  const run = (resumeAt: number | null) => {
    const p = mi.tensor(p0, undefined, f64);
    let opt = new mi.AdamW([p], { lr: 0.03 });
    for (let t = 1; t <= 6; t++) {
      if (t === resumeAt) {
        const s = opt.state();
        opt.dispose();
        opt = new mi.AdamW([p], { lr: 0.03 });
        opt.loadState(s);
        s.m.forEach((x) => x.dispose());
        s.v.forEach((x) => x.dispose());
      }
      mi.tidy(() => opt.step([mi.tensor(gradAt(t, p0.length), undefined, f64)]));
    }
    const out = [...p.dataSync()];
    opt.dispose();
    p.dispose();
    return out;
  };
  assert.equal(run(4), run(null));
});

test('AdamW.loadState rejects mismatched shapes and counts, naming the field', () => {
  const p = mi.zeros([3]);
  const opt = new mi.AdamW([p], { lr: 0.1 });
  const wrong = mi.zeros([4]);
  assert.throws(() => opt.loadState({ step: 1, m: [wrong], v: [wrong] }), /m\[0\].*\[4\]/);
  assert.throws(() => opt.loadState({ step: 1, m: [], v: [] }), /m has 0 tensors/);
  assert.throws(() => opt.step([wrong]), /gradient 0/);
  assert.throws(() => new mi.AdamW([p], { lr: 0.1, betas: [1, 0.9] }), /betas\[0\]/);
  wrong.dispose();
  opt.dispose();
  p.dispose();
});

test('SGD with momentum and weight decay matches the PyTorch SGD formulas over 5 steps', () => {
  for (const [momentum, wd] of [
    [0, 0],
    [0.9, 0],
    [0.9, 0.01],
  ]) {
    const p = mi.tensor(p0, undefined, f64);
    const opt = new mi.SGD([p], { lr: 0.1, momentum, weightDecay: wd });
    for (let t = 1; t <= 5; t++) {
      mi.tidy(() => opt.step([mi.tensor(gradAt(t, p0.length), undefined, f64)]));
      close(p.dataSync(), sgdReference(p0, t, 0.1, momentum, wd), 1e-13, `momentum ${momentum} wd ${wd} step ${t}`);
    }
    opt.dispose();
    p.dispose();
  }
});

test('SGD: lr is mutable, parameters without a gradient are skipped, zeroGrad clears .grad', () => {
  const a = mi.tensor([1, 2], undefined, { ...f64, requiresGrad: true });
  const b = mi.tensor([3], undefined, { ...f64, requiresGrad: true });
  const opt = new mi.SGD([a, b], { lr: 1 });
  opt.lr = 0.5;
  mi.tidy(() => mi.backward(mi.sum(mi.square(a)))); // b gets no gradient
  opt.step();
  assert.equal([...a.dataSync()], [0, 0]); // a - 0.5 * 2a
  assert.equal([...b.dataSync()], [3]);
  opt.zeroGrad();
  assert.is(a.grad, null);
  opt.dispose();
  a.dispose();
  b.dispose();
});

test('clipGradNorm: returns the global norm and scales only when it exceeds maxNorm', async () => {
  const g1 = mi.tensor([3, 0], undefined, f64);
  const g2 = mi.tensor([[0, 4]], undefined, f64);
  const norm = await mi.clipGradNorm([g1, null, g2], 1);
  assert.ok(Math.abs(norm - 5) < 1e-12, `norm ${norm}`);
  const coef = 1 / (5 + 1e-6);
  close(g1.dataSync(), [3 * coef, 0], 1e-15, 'g1');
  close(g2.dataSync(), [0, 4 * coef], 1e-15, 'g2');
  const after = await mi.clipGradNorm([g1, g2], 10); // now below the limit: untouched
  assert.ok(Math.abs(after - 5 * coef) < 1e-12);
  close(g1.dataSync(), [3 * coef, 0], 0, 'g1 unchanged');
  assert.is(await mi.clipGradNorm([], 1), 0);
  g1.dispose();
  g2.dispose();
});

test('clipGradNorm leaves no tensors behind', async () => {
  const g = mi.tensor([30, 40]);
  const before = mi.liveTensorCount();
  await mi.clipGradNorm([g], 1);
  assert.is(mi.liveTensorCount(), before);
  g.dispose();
});

test('warmupCosine: linear warm-up to baseLr, half cosine to minLr, then flat', () => {
  const sched = mi.warmupCosine({ baseLr: 1, warmupSteps: 4, totalSteps: 14, minLr: 0.1 });
  assert.equal([0, 1, 2, 3].map(sched), [0.25, 0.5, 0.75, 1]);
  assert.is(sched(4), 1);
  assert.ok(Math.abs(sched(9) - (0.1 + 0.9 * 0.5)) < 1e-12, 'midpoint of the decay is halfway');
  for (let s = 4; s < 14; s++) assert.ok(sched(s + 1) < sched(s), `decreasing at ${s}`);
  assert.is(sched(14), 0.1);
  assert.is(sched(1000), 0.1);
  // the cosine is symmetric about the midpoint: lr(mid - k) + lr(mid + k) = baseLr + minLr
  for (let k = 1; k <= 5; k++) assert.ok(Math.abs(sched(9 - k) + sched(9 + k) - 1.1) < 1e-12);
  const noWarmup = mi.warmupCosine({ baseLr: 2, warmupSteps: 0, totalSteps: 10 });
  assert.is(noWarmup(0), 2);
  assert.is(noWarmup(10), 0);
  assert.throws(() => mi.warmupCosine({ baseLr: 1, warmupSteps: 5, totalSteps: 3 }), /totalSteps/);
});

test.run();

// ---- training end to end ----------------------------------------------------------------------------
const training = suite('training');

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

training('a tiny MLP learns the toy regression with AdamW and a warm-up + cosine schedule', () => {
  const losses = train(7);
  const first = losses[0],
    last = losses[losses.length - 1];
  assert.ok(losses.every(Number.isFinite), 'all losses finite');
  assert.ok(last < 0.05 * first, `final loss ${last} is not below 5% of the initial ${first}`);
  assert.ok(last < 1e-2, `final loss ${last} >= 1e-2`);
});

training('two runs with the same seed give bit-identical loss sequences; another seed differs', () => {
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

training.run();
