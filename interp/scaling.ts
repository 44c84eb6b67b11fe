// Scale-up planning: measure time and memory per token of the Mamba model as hidden size, layer
// count and sequence length grow on the backend in use, fit power laws to the measurements, and
// project the cost of the method's steps for the state-spaces checkpoints (130M to 2.8B).
import * as mi from '../engine/index.ts';
import { expectedParameterShapes, makeConfig, type MambaConfig } from '../mamba/config.ts';
import { initMamba } from '../mamba/model.ts';

export interface ShapePoint {
  hidden: number;
  layers: number;
  seqLen: number;
  batch: number;
  stateSize: number;
  vocab: number;
  expand: number;
}

export interface Measurement extends ShapePoint {
  params: number;
  /** analytic forward multiply-adds x 2 per token */
  flopsPerToken: number;
  forwardMsPerToken: number;
  trainMsPerToken: number;
  /** peak bytes of live buffers during a training step, per token (CPU backend only; else NaN) */
  peakBytesPerToken: number;
}

/** The state-spaces Mamba-1 checkpoints (d_model, n_layer; vocab 50280, N 16, expand 2). */
export const STATE_SPACES = [
  { name: 'mamba-130m', hidden: 768, layers: 24 },
  { name: 'mamba-370m', hidden: 1024, layers: 48 },
  { name: 'mamba-790m', hidden: 1536, layers: 48 },
  { name: 'mamba-1.4b', hidden: 2048, layers: 48 },
  { name: 'mamba-2.8b', hidden: 2560, layers: 64 },
] as const;

export function configFor(p: Pick<ShapePoint, 'hidden' | 'layers' | 'stateSize' | 'vocab' | 'expand'>): MambaConfig {
  return makeConfig({ vocab_size: p.vocab, hidden_size: p.hidden, num_hidden_layers: p.layers, state_size: p.stateSize, expand: p.expand });
}

export function parameterCount(c: MambaConfig): number {
  let n = 0;
  for (const shape of expectedParameterShapes(c).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * Forward FLOPs per token: 2 x (multiply-adds of the projections and head) plus the scan and conv
 * (about 9 flops per state element: exp, 2 mul-adds for the update, a mul-add for C.h).
 */
export function flopsPerToken(c: MambaConfig): number {
  const d = c.hidden_size,
    E = c.intermediate_size,
    N = c.state_size,
    R = c.time_step_rank,
    K = c.conv_kernel;
  const proj = 2 * (2 * E * d + (R + 2 * N) * E + E * R + d * E);
  const scan = 9 * E * N + 2 * E * K + 10 * E;
  return c.num_hidden_layers * (proj + scan) + 2 * c.vocab_size * d;
}

async function timeMs(fn: () => Promise<void>, reps: number): Promise<number> {
  await fn(); // warm-up (JIT, pipelines)
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Median time per token of a forward pass and of a training step (forward + backward) at one shape. */
export async function measure(p: ShapePoint, rng: mi.Rng, opts: { reps?: number; backend?: mi.Backend } = {}): Promise<Measurement> {
  const backend = opts.backend ?? mi.getBackend();
  const config = configFor(p);
  const model = initMamba(config, rng.fork('init'), { backend });
  const ids = mi.keep(mi.randint([p.batch, p.seqLen], 0, p.vocab, rng.fork('ids'), { backend }));
  const tokens = p.batch * p.seqLen;
  const params = [...model.params.values()];
  try {
    const forward = await timeMs(
      () =>
        mi.tidyAsync(async () => {
          await mi.noGrad(() => model.forward(ids)).data();
        }),
      opts.reps ?? 3,
    );
    backend.resetPeak?.();
    const before = backend.memory?.().liveBytes ?? NaN;
    const train = await timeMs(
      () =>
        mi.tidyAsync(async () => {
          for (const q of params) q.requiresGrad = true;
          const logits = model.forward(ids);
          const loss = mi.mean(mi.square(logits));
          const grads = mi.backwardFrom(loss);
          await Promise.all([...grads.values()].slice(0, 1).map((g) => g.data()));
          for (const q of params) q.requiresGrad = false;
        }),
      opts.reps ?? 3,
    );
    const peak = backend.memory?.().peakBytes ?? NaN;
    return {
      ...p,
      params: parameterCount(config),
      flopsPerToken: flopsPerToken(config),
      forwardMsPerToken: forward / tokens,
      trainMsPerToken: train / tokens,
      peakBytesPerToken: (peak - before) / tokens,
    };
  } finally {
    ids.dispose();
    model.dispose();
  }
}

/** y = intercept + slope x, by least squares (slope and intercept clamped at 0: costs do not shrink). */
export interface LinearFit {
  intercept: number;
  slope: number;
  r2: number;
}

export function fitLinear(xs: readonly number[], ys: readonly number[]): LinearFit {
  const n = xs.length;
  if (n < 2) throw new Error(`fitLinear: need 2 points, got ${n}`);
  const mx = xs.reduce((a, b) => a + b, 0) / n,
    my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0,
    sxy = 0,
    syy = 0;
  for (let i = 0; i < n; i++) {
    sxx += (xs[i] - mx) ** 2;
    sxy += (xs[i] - mx) * (ys[i] - my);
    syy += (ys[i] - my) ** 2;
  }
  let slope = sxx === 0 ? 0 : Math.max(0, sxy / sxx);
  let intercept = my - slope * mx;
  if (intercept < 0) {
    intercept = 0;
    slope = xs.reduce((a, x, i) => a + x * ys[i], 0) / xs.reduce((a, x) => a + x * x, 0);
  }
  let ssr = 0;
  for (let i = 0; i < n; i++) ssr += (ys[i] - intercept - slope * xs[i]) ** 2;
  return { intercept, slope, r2: syy === 0 ? 1 : 1 - ssr / syy };
}

export const evalLinear = (f: LinearFit, x: number) => f.intercept + f.slope * x;

/**
 * ms per token = overhead + slope x FLOPs per token. When the measured shapes are too small for the
 * slope to show (time flat or falling with size: overhead dominates), the slope is taken from the
 * largest shape's own throughput instead, which over- rather than under-estimates large models.
 */
export function fitCost(flops: readonly number[], ms: readonly number[]): LinearFit & { identified: boolean } {
  const fit = fitLinear(flops, ms);
  if (fit.slope > 0 && fit.r2 > 0.5) return { ...fit, identified: true };
  const big = flops.indexOf(Math.max(...flops));
  return { intercept: 0, slope: ms[big] / flops[big], r2: fit.r2, identified: false };
}

/** The quantity activation memory grows with: layers x hidden (per token). */
export const memoryFeature = (hidden: number, layers: number) => hidden * layers;

/** The work a step does, in tokens through the model (forward only, or forward + backward). */
export interface StepWorkload {
  step: number;
  title: string;
  forwardTokens: number;
  trainTokens: number;
  note: string;
}

export interface Projection {
  checkpoint: string;
  params: number;
  flopsPerToken: number;
  paramBytes: number;
  perStep: { step: number; seconds: number }[];
  totalSeconds: number;
  activationBytesPerToken: number;
}

/**
 * Projects each step's time for each checkpoint from the fitted costs (ms per token = fixed
 * overhead + FLOPs per token / achieved throughput) and the steps' workloads at that checkpoint's
 * scale (`workloads(hidden)`, since some grow with the width).
 */
export function project(
  fwd: LinearFit,
  train: LinearFit,
  mem: LinearFit | null,
  workloads: (hidden: number) => StepWorkload[],
): Projection[] {
  return STATE_SPACES.map((ck) => {
    const c = configFor({ hidden: ck.hidden, layers: ck.layers, stateSize: 16, vocab: 50280, expand: 2 });
    const f = flopsPerToken(c);
    const msF = evalLinear(fwd, f),
      msT = evalLinear(train, f);
    const perStep = workloads(ck.hidden).map((w) => ({ step: w.step, seconds: (w.forwardTokens * msF + w.trainTokens * msT) / 1000 }));
    const params = parameterCount(c);
    return {
      checkpoint: ck.name,
      params,
      flopsPerToken: f,
      paramBytes: params * 4,
      perStep,
      totalSeconds: perStep.reduce((s, p) => s + p.seconds, 0),
      activationBytesPerToken: mem ? evalLinear(mem, memoryFeature(ck.hidden, ck.layers)) : NaN,
    };
  });
}
