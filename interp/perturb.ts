// Noise perturbations: Gaussian noise of growing scale added along a site's directions (channels
// or an orthonormal subspace) at its cells, in units of the activation's standard deviation along
// each direction, and the effect on the output at the scored positions:
//   accuracy drop   clean accuracy - perturbed accuracy
//   KL              KL(clean output distribution || perturbed), per example
// The same is done for random sites of the same size (or other positions) to tell a sensitive
// circuit from a model that is sensitive everywhere.
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { MambaLM } from '../mamba/model.ts';
import { idsOf, klPerExample, outcome, type EvalSet, type Outcome } from './patching.ts';
import { hookDim, siteHooks, type Site } from './sites.ts';

/** The site's directions as rows [k][dim] (channels become unit vectors). */
export function siteDirections(site: Site, dim: number): number[][] {
  if (site.directions?.length) return site.directions;
  return site.channels.map((c) => {
    const e = new Array<number>(dim).fill(0);
    e[c] = 1;
    return e;
  });
}

/**
 * The indices where a direction is nonzero. A channel's unit vector has one, so noise along a
 * channel circuit of the SSM state (E*N wide) touches k coordinates per cell instead of k*E*N.
 */
function nonzeros(u: readonly number[]): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < u.length; i++) if (u[i] !== 0) out.push(i);
  return Int32Array.from(out);
}

/** Per direction, the standard deviation of the activation's projection on it over the mask's cells. */
export async function directionStd(act: Tensor, mask: Uint8Array, directions: number[][]): Promise<Float64Array> {
  const data = await act.data();
  const dim = act.size / mask.length;
  const k = directions.length;
  const s1 = new Float64Array(k),
    s2 = new Float64Array(k);
  let n = 0;
  const nz = directions.map(nonzeros);
  for (let c = 0; c < mask.length; c++) {
    if (!mask[c]) continue;
    n++;
    for (let j = 0; j < k; j++) {
      const u = directions[j];
      let p = 0;
      for (const i of nz[j]) p += u[i] * data[c * dim + i];
      s1[j] += p;
      s2[j] += p * p;
    }
  }
  if (n < 2) throw new Error('directionStd: the mask covers fewer than 2 cells');
  return s1.map((s, j) => Math.sqrt(Math.max(s2[j] / n - (s / n) ** 2, 0)));
}

/** Noise sum_j scale * std_j * eps_j * u_j at every cell ([B, T, ...shape of one position]); the mask is applied by the site's hook. */
export function noiseTensor(
  model: MambaLM,
  hook: string,
  shape: readonly [number, number],
  directions: number[][],
  std: Float64Array,
  scale: number,
  rng: mi.Rng,
): Tensor {
  const [B, T] = shape;
  const dim = hookDim(model, hook),
    k = directions.length;
  const data = new Float32Array(B * T * dim);
  const nz = directions.map(nonzeros);
  for (let c = 0; c < B * T; c++) {
    for (let j = 0; j < k; j++) {
      const a = scale * std[j] * rng.normal();
      if (a === 0) continue;
      const u = directions[j];
      for (const i of nz[j]) data[c * dim + i] += a * u[i];
    }
  }
  return mi.tensor(data, [B, T, dim], { dtype: model.dtype, backend: model.backend });
}

export interface NoisePoint {
  scale: number;
  accuracyDrop: Float64Array;
  kl: Float64Array;
}

/**
 * The effect of noise along a site at each scale, per example, averaged over `draws` noise draws.
 * Scale 0 adds nothing (effect exactly 0). The std per direction comes from `act` (the clean
 * activations at the hook) over the cells of `stdMask` (default: the mask), so noise at other
 * positions can be given the same size as at the circuit's own.
 */
export async function noiseCurve(
  model: MambaLM,
  set: EvalSet,
  clean: Outcome,
  site: Site,
  mask: Uint8Array,
  act: Tensor,
  scales: readonly number[],
  draws: number,
  rng: mi.Rng,
  stdMask: Uint8Array = mask,
): Promise<NoisePoint[]> {
  if (!clean.logProbs) throw new Error('noiseCurve: the clean outcome needs logProbs (outcome(..., { logProbs: true }))');
  const dim = hookDim(model, site.hook);
  const dirs = siteDirections(site, dim);
  const std = await directionStd(act, stdMask, dirs);
  const ids = idsOf(model, set.batch);
  const V = model.config.vocab_size,
    nEx = set.batch.shape[0];
  const out: NoisePoint[] = [];
  try {
    for (const scale of scales) {
      const acc = new Float64Array(nEx),
        kl = new Float64Array(nEx);
      if (scale !== 0) {
        for (let d = 0; d < draws; d++) {
          const o = await mi.tidyAsync(async () => {
            const noise = noiseTensor(model, site.hook, set.batch.shape, dirs, std, scale, rng.fork(`scale${scale}/draw${d}`));
            return outcome(model, ids, set, siteHooks(model, site, mask, set.batch.shape, { kind: 'offset', value: noise }), {
              logProbs: true,
            });
          });
          const k = klPerExample(set, clean.logProbs, o.logProbs!, V);
          for (let e = 0; e < nEx; e++) {
            acc[e] += (clean.accuracy[e] - o.accuracy[e]) / draws;
            kl[e] += k[e] / draws;
          }
        }
      }
      out.push({ scale, accuracyDrop: acc, kl });
    }
  } finally {
    ids.dispose();
  }
  return out;
}
