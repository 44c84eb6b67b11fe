// Synthetic activations for the SAE tests, built from planted features: 32 random unit directions
// in d = 16 (2x superposition), each token a sparse non-negative combination of them (each feature
// on with probability 3/32, magnitude uniform in [0.5, 1.5]). A working SAE must find the planted
// directions among its decoder rows. The two SAEs trained on them (trainedSae) are trained once per
// process and shared by train.test.ts, sae.test.ts and analysis.test.ts.
import * as mi from '../../../engine/index.ts';
import { type Sae, trainSae } from '../../../interp/sae/index.ts';

export const d = 16,
  F = 32,
  n = 4096;

export interface Planted {
  xs: Float32Array;
  features: Float32Array;
  coeffs: Float32Array;
}

/** n rows of sparse non-negative combinations of F random unit directions in d dimensions. */
export function planted(seed: string, dims = d, count = F, rows = n, p = 3 / 32): Planted {
  const rng = new mi.Rng(seed);
  const features = new Float32Array(count * dims);
  for (let f = 0; f < count; f++) {
    let s = 0;
    for (let j = 0; j < dims; j++) {
      const v = rng.normal();
      features[f * dims + j] = v;
      s += v * v;
    }
    for (let j = 0; j < dims; j++) features[f * dims + j] /= Math.sqrt(s);
  }
  const coeffs = new Float32Array(rows * count);
  const xs = new Float32Array(rows * dims);
  for (let r = 0; r < rows; r++) {
    for (let f = 0; f < count; f++) {
      if (rng.uniform() >= p) continue;
      const a = 0.5 + rng.uniform();
      coeffs[r * count + f] = a;
      for (let j = 0; j < dims; j++) xs[r * dims + j] += a * features[f * dims + j];
    }
  }
  return { xs, features, coeffs };
}

export const data = planted('planted-features');

export const base = { d, latents: 64, steps: 500, batchSize: 64, lr: 0.02, seed: 1 } as const;
const trained = new Map<string, Promise<Sae>>();
export function trainedSae(kind: 'relu' | 'topk'): Promise<Sae> {
  if (!trained.has(kind)) {
    trained.set(kind, trainSae(data.xs, kind === 'topk' ? { ...base, kind, k: 4 } : { ...base, kind, l1: 1 }));
  }
  return trained.get(kind)!;
}

export async function decoderRowNorms(sae: Sae): Promise<number[]> {
  const w = await sae.params.W_dec.data();
  return Array.from({ length: sae.latents }, (_, l) => Math.hypot(...w.subarray(l * d, l * d + d)));
}
