// Optimisers (SGD with momentum, AdamW), global gradient-norm clipping and a warm-up + cosine
// learning-rate schedule. The update rules follow PyTorch's torch.optim.SGD / AdamW exactly (same
// formulas, same order of operations), built from engine ops so they run on any backend.
// Parameters are updated in place with Tensor.assign; each step runs under noGrad() inside tidy()
// so the temporaries it makes are freed, and the optimiser's own state tensors are keep()-ed.
import { add, affine, div, mul, sqrt, square, sum } from './ops/index.ts';
import { runKernel } from './ops/run.ts';
import { keep, noGrad, tidy } from './runtime.ts';
import { shapeStr } from './shape.ts';
import { full, type Tensor } from './tensor.ts';

/** An exact copy of t in a new buffer, owned by the caller. */
function copyOf(t: Tensor): Tensor {
  return runKernel('copy', [t], [{ shape: t.shape, dtype: t.dtype }], {
    shape: [t.size],
    inStrides: [1],
    inOffset: 0,
    outStrides: [1],
    outOffset: 0,
  })[0];
}

function zerosLike(t: Tensor): Tensor {
  return full(t.shape, 0, { dtype: t.dtype, backend: t.backend });
}

function checkParams(who: string, params: readonly Tensor[]): void {
  if (!params.length) throw new Error(`${who}: no parameters to optimise`);
  params.forEach((p, i) => {
    if (p.dtype === 'int32') throw new Error(`${who}: parameter ${i} ${p} is int32; only float tensors can be optimised`);
  });
}

function checkNumber(who: string, name: string, v: number, min = 0): void {
  if (!Number.isFinite(v) || v < min) throw new Error(`${who}: ${name} must be a finite number >= ${min}, got ${v}`);
}

/**
 * The gradient of each parameter for this step: `grads[i]` when given, else `params[i].grad` (set by
 * mi.backward). A parameter without a gradient is skipped this step (null), as in PyTorch.
 */
function gradsFor(who: string, params: readonly Tensor[], grads?: readonly (Tensor | null | undefined)[]): (Tensor | null)[] {
  if (grads && grads.length !== params.length) {
    throw new Error(`${who}.step: ${grads.length} gradients for ${params.length} parameters`);
  }
  return params.map((p, i) => {
    const g = grads ? (grads[i] ?? null) : p.grad;
    if (g && (g.size !== p.size || g.dtype !== p.dtype)) {
      throw new Error(`${who}.step: gradient ${i} ${g.dtype}${shapeStr(g.shape)} does not match parameter ${p.dtype}${shapeStr(p.shape)}`);
    }
    return g;
  });
}

/** Loads `src` (same shapes) into the kept state tensors `dst`, copying. */
function loadInto(who: string, field: string, dst: Tensor[], src: readonly Tensor[]): void {
  if (src.length !== dst.length) throw new Error(`${who}.loadState: ${field} has ${src.length} tensors, expected ${dst.length}`);
  noGrad(() =>
    tidy(() => {
      dst.forEach((d, i) => {
        const s = src[i];
        if (s.size !== d.size || s.dtype !== d.dtype) {
          throw new Error(`${who}.loadState: ${field}[${i}] is ${s.dtype}${shapeStr(s.shape)}, expected ${d.dtype}${shapeStr(d.shape)}`);
        }
        if (s.backend !== d.backend)
          throw new Error(
            `${who}.loadState: ${field}[${i}] is on the ${s.backend.name} backend, the optimiser's state on ${d.backend.name}`,
          );
        d.assign(copyOf(s));
      });
    }),
  );
}

function disposeGrads(params: readonly Tensor[]): void {
  for (const p of params)
    if (p.grad) {
      p.grad.dispose();
      p.grad = null;
    }
}

// ---- SGD ---------------------------------------------------------------------------------------
export interface SGDOptions {
  lr: number;
  momentum?: number;
  weightDecay?: number;
}

/**
 * Stochastic gradient descent with optional momentum and (L2, coupled) weight decay, as
 * torch.optim.SGD with dampening 0 and nesterov off:
 *   g = grad + wd * p;  buf = g (first step) else momentum * buf + g;  p -= lr * buf.
 */
export class SGD {
  /** Mutable: a schedule may set it before each step. */
  lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
  stepCount = 0;
  private readonly params: readonly Tensor[];
  /** Momentum buffers, created on the parameter's first step (null until then). */
  private readonly bufs: (Tensor | null)[];

  constructor(params: Tensor[], { lr, momentum = 0, weightDecay = 0 }: SGDOptions) {
    checkParams('SGD', params);
    checkNumber('SGD', 'lr', lr);
    checkNumber('SGD', 'momentum', momentum);
    checkNumber('SGD', 'weightDecay', weightDecay);
    this.params = [...params];
    this.lr = lr;
    this.momentum = momentum;
    this.weightDecay = weightDecay;
    this.bufs = params.map(() => null);
  }

  step(grads?: (Tensor | null | undefined)[]): void {
    const gs = gradsFor('SGD', this.params, grads);
    const { lr, momentum, weightDecay } = this;
    noGrad(() =>
      tidy(() => {
        this.params.forEach((p, i) => {
          let g = gs[i];
          if (!g) return;
          if (weightDecay !== 0) g = add(g, affine(p, weightDecay, 0));
          if (momentum !== 0) {
            const buf = this.bufs[i];
            if (!buf) this.bufs[i] = keep(copyOf(g));
            else buf.assign(add(affine(buf, momentum, 0), g));
            g = this.bufs[i]!;
          }
          p.assign(add(p, affine(g, -lr, 0)));
        });
      }),
    );
    this.stepCount++;
  }

  /** Drops every parameter's .grad (PyTorch's set_to_none). */
  zeroGrad(): void {
    disposeGrads(this.params);
  }

  /** Copies of the momentum buffers (null where none yet), owned by the caller. */
  state(): { step: number; momentum: (Tensor | null)[] } {
    return { step: this.stepCount, momentum: noGrad(() => this.bufs.map((b) => b && copyOf(b))) };
  }

  loadState(s: { step: number; momentum: readonly (Tensor | null)[] }): void {
    if (s.momentum.length !== this.params.length) {
      throw new Error(`SGD.loadState: momentum has ${s.momentum.length} tensors, expected ${this.params.length}`);
    }
    s.momentum.forEach((m, i) => {
      this.bufs[i]?.dispose();
      this.bufs[i] = null;
      if (!m) return;
      const p = this.params[i];
      if (m.size !== p.size || m.dtype !== p.dtype) {
        throw new Error(`SGD.loadState: momentum[${i}] is ${m.dtype}${shapeStr(m.shape)}, expected ${p.dtype}${shapeStr(p.shape)}`);
      }
      this.bufs[i] = keep(noGrad(() => copyOf(m)));
    });
    this.stepCount = s.step;
  }

  /** Frees the optimiser's state tensors (not the parameters). */
  dispose(): void {
    for (const b of this.bufs) b?.dispose();
    this.bufs.fill(null);
  }
}

// ---- AdamW -------------------------------------------------------------------------------------
export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
}

/** AdamW's exportable state: the step count and both moment estimates, one per parameter. */
export interface AdamWState {
  step: number;
  m: Tensor[];
  v: Tensor[];
}

/**
 * Adam with decoupled weight decay, as torch.optim.AdamW (amsgrad off). Per step t (from 1):
 *   p *= 1 - lr * wd
 *   m = b1 * m + (1 - b1) * g;   v = b2 * v + (1 - b2) * g^2
 *   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * One step counter is shared by all parameters (PyTorch keeps one per parameter; they agree
 * whenever every parameter gets a gradient every step, the usual case).
 */
export class AdamW {
  /** Mutable: a schedule may set it before each step. */
  lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  /** Steps taken so far (the t of the bias corrections is stepCount after the increment). */
  stepCount = 0;
  private readonly params: readonly Tensor[];
  private readonly m: Tensor[];
  private readonly v: Tensor[];

  constructor(params: Tensor[], { lr, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01 }: AdamWOptions) {
    checkParams('AdamW', params);
    checkNumber('AdamW', 'lr', lr);
    checkNumber('AdamW', 'eps', eps);
    checkNumber('AdamW', 'weightDecay', weightDecay);
    betas.forEach((b, i) => {
      if (!(b >= 0 && b < 1)) throw new Error(`AdamW: betas[${i}] must be in [0, 1), got ${b}`);
    });
    this.params = [...params];
    this.lr = lr;
    this.betas = [betas[0], betas[1]];
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.m = params.map((p) => keep(zerosLike(p)));
    this.v = params.map((p) => keep(zerosLike(p)));
  }

  step(grads?: (Tensor | null | undefined)[]): void {
    const gs = gradsFor('AdamW', this.params, grads);
    const t = ++this.stepCount;
    const { lr, eps, weightDecay } = this;
    const [b1, b2] = this.betas;
    const stepSize = lr / (1 - b1 ** t);
    const bc2Sqrt = Math.sqrt(1 - b2 ** t);
    noGrad(() =>
      tidy(() => {
        this.params.forEach((p, i) => {
          const g = gs[i];
          if (!g) return;
          let pNew = weightDecay !== 0 ? affine(p, 1 - lr * weightDecay, 0) : p;
          const m = add(affine(this.m[i], b1, 0), affine(g, 1 - b1, 0));
          const v = add(affine(this.v[i], b2, 0), affine(square(g), 1 - b2, 0));
          const denom = affine(sqrt(v), 1 / bc2Sqrt, eps);
          pNew = add(pNew, affine(div(m, denom), -stepSize, 0));
          this.m[i].assign(m);
          this.v[i].assign(v);
          p.assign(pNew);
        });
      }),
    );
  }

  /** Drops every parameter's .grad (PyTorch's set_to_none). */
  zeroGrad(): void {
    disposeGrads(this.params);
  }

  /** Copies of the state, owned by the caller (dispose them, or read them and dispose). */
  state(): AdamWState {
    return noGrad(() => ({ step: this.stepCount, m: this.m.map(copyOf), v: this.v.map(copyOf) }));
  }

  /** Restores a state from state() (copied in; the argument stays the caller's). */
  loadState(s: { step: number; m: readonly Tensor[]; v: readonly Tensor[] }): void {
    if (!Number.isInteger(s.step) || s.step < 0) throw new Error(`AdamW.loadState: step must be a non-negative integer, got ${s.step}`);
    loadInto('AdamW', 'm', this.m, s.m);
    loadInto('AdamW', 'v', this.v, s.v);
    this.stepCount = s.step;
  }

  /** Frees the optimiser's state tensors (not the parameters). */
  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

// ---- clipping ----------------------------------------------------------------------------------
/**
 * Scales `grads` in place (Tensor.assign) so that their global L2 norm is at most maxNorm, as
 * torch.nn.utils.clip_grad_norm_: coef = maxNorm / (norm + 1e-6), applied when below 1.
 * Async because it must read the norm back, which on WebGPU waits for the device. Resolves to
 * the norm before clipping. Null entries are skipped.
 */
export async function clipGradNorm(grads: readonly (Tensor | null | undefined)[], maxNorm: number): Promise<number> {
  checkNumber('clipGradNorm', 'maxNorm', maxNorm);
  const gs = grads.filter((g): g is Tensor => !!g);
  if (!gs.length) return 0;
  for (const g of gs) {
    if (g.dtype !== gs[0].dtype || g.backend !== gs[0].backend) {
      throw new Error(`clipGradNorm: gradients of mixed dtypes or backends (${gs[0]} on ${gs[0].backend.name}, ${g} on ${g.backend.name})`);
    }
  }
  // the sum of squares stays on the device; only the final scalar is read back
  const normT = noGrad(() =>
    keep(
      tidy(() => {
        let total = sum(square(gs[0]));
        for (const g of gs.slice(1)) total = add(total, sum(square(g)));
        return sqrt(total);
      }),
    ),
  );
  let norm: number;
  try {
    norm = await normT.item();
  } finally {
    normT.dispose();
  }
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1)
    noGrad(() =>
      tidy(() => {
        for (const g of gs) g.assign(mul(g, coef));
      }),
    );
  return norm;
}

// ---- schedules ---------------------------------------------------------------------------------
export interface WarmupCosineOptions {
  baseLr: number;
  warmupSteps: number;
  totalSteps: number;
  minLr?: number;
}

/**
 * The learning rate for step s (0-based, the step about to be taken): a linear ramp
 * baseLr * (s + 1) / warmupSteps over the first warmupSteps steps (so step 0 already moves and
 * step warmupSteps - 1 reaches baseLr), then a half cosine from baseLr at s = warmupSteps down to
 * minLr at s = totalSteps, and minLr after that.
 */
export function warmupCosine({ baseLr, warmupSteps, totalSteps, minLr = 0 }: WarmupCosineOptions): (step: number) => number {
  checkNumber('warmupCosine', 'baseLr', baseLr);
  checkNumber('warmupCosine', 'minLr', minLr);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0)
    throw new Error(`warmupCosine: warmupSteps must be a non-negative integer, got ${warmupSteps}`);
  if (!Number.isInteger(totalSteps) || totalSteps < warmupSteps) {
    throw new Error(`warmupCosine: totalSteps (${totalSteps}) must be an integer >= warmupSteps (${warmupSteps})`);
  }
  if (minLr > baseLr) throw new Error(`warmupCosine: minLr ${minLr} exceeds baseLr ${baseLr}`);
  const decaySteps = totalSteps - warmupSteps;
  return (step: number) => {
    if (step < warmupSteps) return (baseLr * (step + 1)) / warmupSteps;
    if (step >= totalSteps || decaySteps === 0) return minLr;
    const progress = (step - warmupSteps) / decaySteps;
    return minLr + (baseLr - minLr) * 0.5 * (1 + Math.cos(Math.PI * progress));
  };
}
