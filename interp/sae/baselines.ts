// Baselines an SAE must beat at the same sparsity (matched L0): PCA keeping the top-k principal
// components of the training rows (the best rank-k linear reconstruction, k = the SAE's L0
// rounded), and an untrained SAE of the same shape (train.ts untrainedSae). Both are fitted on the
// SAE's training rows only and evaluated, like the SAE, on rows it did not see.
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/index.ts';
import { symmetricEigen } from '../linalg.ts';

export interface PcaBaseline {
  d: number;
  k: number;
  /** training-row mean [d] */
  mean: Float32Array;
  /** the top-k principal directions, unit rows [k, d] */
  components: Float32Array;
  /** all d covariance eigenvalues of the training rows, descending */
  eigenvalues: number[];
  /** reconstruction mean + (x - mean) U_k U_kᵀ of rows [n, d] (Float32Array) */
  reconstruct(rows: Float32Array): Float32Array;
  /** the same as a hook on a model's activation [..., d], for splicing */
  hook(t: Tensor): Tensor;
}

/** PCA with k components on training rows [n, d] (row-major); k is clipped to [1, d]. */
export function pcaBaseline(data: Float32Array, d: number, kWanted: number): PcaBaseline {
  const n = data.length / d;
  if (!Number.isInteger(n) || n < 2) throw new Error(`pcaBaseline: ${data.length} values are not >= 2 rows of width ${d}`);
  const k = Math.max(1, Math.min(d, Math.round(kWanted)));
  const mean64 = new Float64Array(d);
  for (let i = 0; i < data.length; i++) mean64[i % d] += data[i] / n;
  const cov = new Float64Array(d * d);
  const c = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < d; j++) c[j] = data[r * d + j] - mean64[j];
    for (let i = 0; i < d; i++) {
      const ci = c[i];
      for (let j = i; j < d; j++) cov[i * d + j] += ci * c[j];
    }
  }
  for (let i = 0; i < d; i++)
    for (let j = i; j < d; j++) {
      cov[i * d + j] /= n;
      cov[j * d + i] = cov[i * d + j];
    }
  const { values, vectors } = symmetricEigen(cov);
  const components = new Float32Array(k * d);
  for (let c2 = 0; c2 < k; c2++) for (let j = 0; j < d; j++) components[c2 * d + j] = vectors[c2][j];
  const mean = Float32Array.from(mean64);
  const reconstruct = (rows: Float32Array): Float32Array => {
    const out = new Float32Array(rows.length);
    const x = new Float64Array(d);
    for (let r = 0; r < rows.length / d; r++) {
      for (let j = 0; j < d; j++) x[j] = rows[r * d + j] - mean64[j];
      for (let j = 0; j < d; j++) out[r * d + j] = mean64[j];
      for (let c2 = 0; c2 < k; c2++) {
        let dot = 0;
        for (let j = 0; j < d; j++) dot += x[j] * components[c2 * d + j];
        for (let j = 0; j < d; j++) out[r * d + j] += dot * components[c2 * d + j];
      }
    }
    return out;
  };
  const hook = (t: Tensor): Tensor => {
    if (t.shape[t.rank - 1] !== d) throw new Error(`pcaBaseline: activation [${t.shape}] does not end in width ${d}`);
    const opts = { backend: t.backend, dtype: t.dtype };
    const mu = mi.tensor(mean, [d], opts);
    const U = mi.tensor(components, [k, d], opts);
    const centred = mi.sub(mi.reshape(t, [-1, d]), mu);
    // (x - mean) Uᵀ U + mean, on the model's own backend
    return mi.reshape(mi.add(mi.matmul(mi.matmul(centred, U, { transB: true }), U), mu), t.shape);
  };
  return { d, k, mean, components, eigenvalues: values, reconstruct, hook };
}
