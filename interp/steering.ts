// Steering: hooks that push the model along a direction at a hook point over a range of positions,
// in a forward pass and during generation alike (positions are absolute: ctx.offset, mamba/hooks.ts):
//  - addVectorHook: add scale * v at every position in [from, to) (activation addition);
//  - clampLatentHook: set an SAE latent to a value there, x + (value - z_j(x)) W_dec[j] / inputScale,
//    which changes the latent's contribution to the reconstruction and leaves the SAE's error term
//    (x minus its reconstruction) as it was: SAELens-style feature clamping.
// latentDirection gives a latent's decoder direction in the activation's own units, for addVectorHook;
// steeringEffect measures what a set of hooks does: KL at each position and a greedy continuation.
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { Hook, HookContext } from '../mamba/hooks.ts';
import type { MambaLM } from '../mamba/model.ts';
import { generate } from '../mamba/recurrent.ts';
import type { Sae } from './sae/index.ts';

export interface PositionRange {
  /** first absolute position steered (default 0) */
  from?: number;
  /** one past the last (default: every later position) */
  to?: number;
}

/** 1 where position ctx.offset + i (i < T) lies in the range, else 0: [1, T, 1] in t's dtype. */
function rangeMask(t: Tensor, ctx: HookContext, r: PositionRange): Tensor {
  const T = t.shape[1];
  const from = r.from ?? 0,
    to = r.to ?? Infinity;
  const m = new Float64Array(T);
  for (let i = 0; i < T; i++) m[i] = ctx.offset + i >= from && ctx.offset + i < to ? 1 : 0;
  return mi.tensor(t.dtype === 'float64' ? m : Float32Array.from(m), [1, T, 1], { dtype: t.dtype, backend: t.backend });
}

function checkRank3(name: string, t: Tensor, d: number): void {
  if (t.rank !== 3 || t.shape[2] !== d) throw new Error(`steering at ${name}: the activation is [${t.shape}], expected [batch, T, ${d}]`);
}

/** A hook adding scale * vector (length d) to the activation at `name` over the position range. */
export function addVectorHook(name: string, vector: ArrayLike<number>, opts: PositionRange & { scale?: number } = {}): Hook {
  const d = vector.length;
  const scale = opts.scale ?? 1;
  return {
    name,
    fn: (t, ctx) => {
      checkRank3(name, t, d);
      const data = t.dtype === 'float64' ? Float64Array.from(vector, (x) => x * scale) : Float32Array.from(vector, (x) => x * scale);
      const v = mi.tensor(data, [1, 1, d], { dtype: t.dtype, backend: t.backend });
      return mi.add(t, mi.mul(rangeMask(t, ctx, opts), v));
    },
  };
}

/** SAE latent j's decoder direction in the raw units of the activation (W_dec[j] / inputScale). */
export async function latentDirection(sae: Sae, latent: number): Promise<Float64Array> {
  if (!Number.isInteger(latent) || latent < 0 || latent >= sae.latents)
    throw new Error(`latentDirection: latent ${latent} is outside [0, ${sae.latents})`);
  const W = await sae.params.W_dec.data();
  return Float64Array.from(W.subarray(latent * sae.d, (latent + 1) * sae.d), (x) => x / sae.config.inputScale);
}

/** A hook holding SAE latent j at `value` over the position range (see the header). */
export function clampLatentHook(name: string, sae: Sae, latent: number, value: number, opts: PositionRange = {}): Hook {
  if (!Number.isInteger(latent) || latent < 0 || latent >= sae.latents)
    throw new Error(`clampLatentHook: latent ${latent} is outside [0, ${sae.latents})`);
  return {
    name,
    fn: (t, ctx) => {
      checkRank3(name, t, sae.d);
      const z = sae.encode(t);
      const zj = mi.slice(z, 2, latent, latent + 1);
      const dir = mi.div(mi.reshape(mi.slice(sae.params.W_dec, 0, latent, latent + 1), [1, 1, sae.d]), sae.config.inputScale);
      const coef = mi.mul(mi.sub(mi.full(zj.shape, value, { dtype: zj.dtype, backend: zj.backend }), zj), rangeMask(t, ctx, opts));
      return mi.add(t, mi.mul(coef, mi.cast(dir, t.dtype)));
    },
  };
}

export interface SteeringEffect {
  /** KL(plain || steered) of the next-token distributions at each prompt position */
  klPerPosition: number[];
  meanKl: number;
  /** the steered minus the plain logit of each position's plain argmax token */
  topLogitChange: number[];
  /** greedy continuations of the prompt, plain and steered (the hooks act on every generated token too) */
  plainTokens: number[];
  steeredTokens: number[];
  /** the same as text, when the model has a tokenizer */
  plainText?: string;
  steeredText?: string;
}

/** What `hooks` do to the model on `prompt`: the logits at each position, and a greedy continuation. */
export async function steeringEffect(
  model: MambaLM,
  prompt: readonly number[],
  hooks: readonly Hook[],
  opts: { maxNewTokens?: number } = {},
): Promise<SteeringEffect> {
  const V = model.config.vocab_size,
    T = prompt.length;
  const logProbs = async (hs: readonly Hook[]) => {
    const t = mi.noGrad(() => mi.tidy(() => mi.logSoftmax(model.run([prompt], { hooks: hs }).logits, -1)));
    const d = Float64Array.from(await t.data());
    t.dispose();
    return d;
  };
  const plain = await logProbs([]),
    steered = await logProbs(hooks);
  const klPerPosition: number[] = [],
    topLogitChange: number[] = [];
  for (let t = 0; t < T; t++) {
    let kl = 0,
      top = 0;
    for (let v = 0; v < V; v++) {
      const p = plain[t * V + v];
      kl += Math.exp(p) * (p - steered[t * V + v]);
      if (p > plain[t * V + top]) top = v;
    }
    klPerPosition.push(kl);
    // log-softmax differences: the logit change relative to the normaliser, which is what moves the probability
    topLogitChange.push(steered[t * V + top] - plain[t * V + top]);
  }
  const n = opts.maxNewTokens ?? 20;
  const plainTokens = (await generate(model, prompt, { maxNewTokens: n }))[0];
  const steeredTokens = (await generate(model, prompt, { maxNewTokens: n, hooks }))[0];
  const text = model.tokenizer ? { plainText: model.toString(plainTokens), steeredText: model.toString(steeredTokens) } : {};
  return { klPerPosition, meanKl: klPerPosition.reduce((a, b) => a + b, 0) / T, topLogitChange, plainTokens, steeredTokens, ...text };
}
