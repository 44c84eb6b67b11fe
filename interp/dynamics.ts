// Dynamics of a Mamba layer's state. The discretised update is diagonal per channel e and state n:
//   h_t[e,n] = Abar_t[e,n] h_{t-1}[e,n] + delta_t[e] B_t[n] u_t[e],   Abar_t = exp(delta_t[e] A[e,n])
// so Abar are the eigenvalues of the SSM's own state transition (in (0, 1) since A < 0 < delta) and
// tau = -1 / (delta A) is each mode's time constant in tokens. delta depends on the input token:
// a large delta forgets (Abar -> 0) and writes the new input, a small one keeps the state.
// This module reads those quantities from the model's hooks, projects state trajectories on their
// principal components, and computes the full Jacobian of one recurrent layer step with respect to
// the layer's (conv state, SSM state), including the dependence of u, delta, B and C on the conv
// state, with mi.jacobian, and its eigenvalues (interp/linalg.ts).
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { MambaLM } from '../mamba/model.ts';
import { ssmStep } from '../mamba/ssm.ts';
import { eigenvalues, pca, project, type Complex, type Pca } from './linalg.ts';

/** Row-major [batch, T] token ids as rows. */
export type IdRows = readonly (readonly number[])[];

export interface LayerDiscretisation {
  layer: number;
  batch: number;
  T: number;
  E: number;
  N: number;
  /** delta [batch, T, E] */
  delta: Float64Array;
  /** A = -exp(A_log) [E, N] */
  A: Float64Array;
}

/** delta and A of one layer on a batch of sequences. */
export async function discretisation(model: MambaLM, ids: IdRows, layer: number): Promise<LayerDiscretisation> {
  const c = model.config;
  if (!(layer >= 0 && layer < c.num_hidden_layers))
    throw new Error(`discretisation: layer ${layer} is outside [0, ${c.num_hidden_layers})`);
  const name = `blocks.${layer}.mixer.hook_delta`;
  return mi.tidyAsync(async () => {
    const { cache } = mi.noGrad(() => model.runWithCache(ids, [name]));
    const A = mi.noGrad(() => model.layer(layer).A());
    return {
      layer,
      batch: ids.length,
      T: ids[0].length,
      E: c.intermediate_size,
      N: c.state_size,
      delta: Float64Array.from(await cache.get(name)!.data()),
      A: Float64Array.from(await A.data()),
    };
  });
}

/** Abar = exp(delta A) for every (sequence, position, channel, state): [batch, T, E, N]. */
export function abarValues(d: LayerDiscretisation): Float64Array {
  const { batch, T, E, N } = d;
  const out = new Float64Array(batch * T * E * N);
  for (let bt = 0; bt < batch * T; bt++)
    for (let e = 0; e < E; e++) {
      const de = d.delta[bt * E + e];
      for (let n = 0; n < N; n++) out[(bt * E + e) * N + n] = Math.exp(de * d.A[e * N + n]);
    }
  return out;
}

/**
 * Time constants tau[e,n] = -1 / (mean_t delta[e] A[e,n]) in tokens, with delta averaged over
 * every sequence and position: [E, N]. Positive for a stable layer (A < 0 < delta).
 */
export function timeConstants(d: LayerDiscretisation): Float64Array {
  const { batch, T, E, N } = d;
  const meanDelta = new Float64Array(E);
  for (let bt = 0; bt < batch * T; bt++) for (let e = 0; e < E; e++) meanDelta[e] += d.delta[bt * E + e] / (batch * T);
  const tau = new Float64Array(E * N);
  for (let e = 0; e < E; e++) for (let n = 0; n < N; n++) tau[e * N + n] = -1 / (meanDelta[e] * d.A[e * N + n]);
  return tau;
}

/** Channel-mean delta at each (sequence, position): [batch * T]. */
export function meanDeltaPerPosition(d: LayerDiscretisation): Float64Array {
  const { batch, T, E } = d;
  const out = new Float64Array(batch * T);
  for (let bt = 0; bt < batch * T; bt++) {
    let acc = 0;
    for (let e = 0; e < E; e++) acc += d.delta[bt * E + e];
    out[bt] = acc / E;
  }
  return out;
}

export interface TokenDelta {
  token: number;
  count: number;
  meanDelta: number;
}

/** Channel-mean delta averaged over the occurrences of each token id (tokens that occur only). */
export function deltaByToken(d: LayerDiscretisation, ids: IdRows): TokenDelta[] {
  const per = meanDeltaPerPosition(d);
  const sums = new Map<number, { n: number; s: number }>();
  ids.forEach((row, b) =>
    row.forEach((tok, t) => {
      const e = sums.get(tok) ?? { n: 0, s: 0 };
      e.n++;
      e.s += per[b * d.T + t];
      sums.set(tok, e);
    }),
  );
  return [...sums.entries()].sort((a, b) => a[0] - b[0]).map(([token, { n, s }]) => ({ token, count: n, meanDelta: s / n }));
}

/** Values of `perPosition` split by whether the token there is `token`: [at token, elsewhere]. */
export function splitByToken(perPosition: ArrayLike<number>, ids: IdRows, token: number, skipFirst = true): [number[], number[]] {
  const at: number[] = [],
    other: number[] = [];
  const T = ids[0].length;
  ids.forEach((row, b) =>
    row.forEach((tok, t) => {
      if (skipFirst && t === 0) return; // position 0 (BOS) sees no history
      (tok === token ? at : other).push(perPosition[b * T + t]);
    }),
  );
  return [at, other];
}

export interface StateTrajectories {
  pca: Pca;
  /** coords[b][t] = the first k principal coordinates of h_t of sequence b */
  coords: number[][][];
}

/**
 * The SSM states h_t [E*N] of one layer over a batch of sequences, projected on their top k
 * principal components (computed over every sequence and position).
 */
export async function stateTrajectories(model: MambaLM, ids: IdRows, layer: number, k: number, rng: mi.Rng): Promise<StateTrajectories> {
  const name = `blocks.${layer}.mixer.hook_h`;
  const data = await mi.tidyAsync(async () => {
    const { cache } = mi.noGrad(() => model.runWithCache(ids, [name]));
    return Float64Array.from(await cache.get(name)!.data());
  });
  const batch = ids.length,
    T = ids[0].length,
    dim = model.config.intermediate_size * model.config.state_size;
  const p = pca(data, batch * T, dim, k, rng);
  const flat = project(p, data, batch * T);
  return { pca: p, coords: Array.from({ length: batch }, (_, b) => flat.slice(b * T, (b + 1) * T)) };
}

// ---- the layer-step Jacobian ----------------------------------------------------------------

export interface LayerStepJacobian {
  layer: number;
  /** the step from the state after position t to the state after t + 1 */
  position: number;
  /** the channels whose (conv state, SSM state) form the state vector */
  channels: number[];
  /** state size S = channels * (K + N); layout per channel: K conv inputs, then N SSM states */
  size: number;
  /** the Jacobian [S, S], row-major, d state_{t+1} / d state_t */
  jacobian: Float64Array;
  eigenvalues: Complex[];
  /** Abar = exp(delta_{t+1} A) of those channels at that step [channels * N], for comparison */
  abar: Float64Array;
}

/**
 * The Jacobian of one recurrent step of layer `layer` (mamba/recurrent.ts: conv shift, SiLU(conv),
 * x_proj -> delta, B, C, then h' = exp(delta A) h + delta B u) with respect to the layer's state
 * (conv state and SSM state of the chosen channels; the other channels' states held at their
 * values), at the state after position `position` of `ids` and with the layer's actual input at
 * position + 1. Its eigenvalues follow from the structure: the conv state only shifts (nilpotent)
 * and h' depends on h only through diag(Abar), while u, delta, B, C depend on the conv state alone,
 * so the Jacobian is block-triangular with spectrum {Abar} plus zeros; computing it numerically
 * checks this (and the solver) on the real model.
 */
export async function layerStepJacobian(
  model: MambaLM,
  ids: readonly number[],
  layer: number,
  position: number,
  channels: number[],
): Promise<LayerStepJacobian> {
  const c = model.config,
    E = c.intermediate_size,
    N = c.state_size,
    K = c.conv_kernel;
  if (!(position >= 0 && position + 1 < ids.length))
    throw new Error(`layerStepJacobian: position ${position} needs a next token (sequence of ${ids.length})`);
  if (!channels.length || channels.some((e) => !Number.isInteger(e) || e < 0 || e >= E))
    throw new Error(`layerStepJacobian: channels must be in [0, ${E})`);
  const m = channels.length,
    S = m * (K + N);
  const L = model.layer(layer);
  const o = { dtype: model.dtype, backend: model.backend };
  const normName = `blocks.${layer}.hook_norm`,
    deltaName = `blocks.${layer}.mixer.hook_delta`;
  const J = mi.tidy(() => {
    const { states } = mi.noGrad(() => model.run([ids.slice(0, position + 1)], { collectStates: true }));
    const { cache } = mi.noGrad(() => model.runWithCache([ids.slice(0, position + 2)], [normName]));
    const input = mi.noGrad(() => mi.reshape(mi.slice(cache.get(normName)!, 1, position + 1, position + 2), [1, c.hidden_size]));
    const conv0 = mi.reshape(states![layer].conv, [1, E * K]),
      h0 = mi.reshape(states![layer].ssm, [1, E * N]);
    // selection matrices: the chosen channels' entries <-> the full flattened states
    const sel = (width: number) => {
      const s = new Float64Array(m * width * E * width);
      channels.forEach((e, i) => {
        for (let j = 0; j < width; j++) s[(i * width + j) * E * width + e * width + j] = 1;
      });
      return mi.tensor(s, [m * width, E * width], o);
    };
    const selConv = sel(K),
      selH = sel(N);
    const xState = mi.noGrad(() =>
      mi.concat(
        [mi.reshape(mi.matmul(conv0, selConv, { transB: true }), [1, m, K]), mi.reshape(mi.matmul(h0, selH, { transB: true }), [1, m, N])],
        2,
      ),
    ); // [1, m, K + N]
    const x0 = mi.reshape(xState, [1, S]);
    const f = (st: Tensor) => {
      const k = st.shape[0];
      const parts = mi.split(mi.reshape(st, [k, m, K + N]), [K, N], 2);
      const conv0Sub = mi.matmul(conv0, selConv, { transB: true }),
        h0Sub = mi.matmul(h0, selH, { transB: true });
      // full states: the held values plus the change in the chosen channels
      const conv = mi.reshape(mi.add(conv0, mi.matmul(mi.sub(mi.reshape(parts[0], [k, m * K]), conv0Sub), selConv)), [k, E, K]);
      const h = mi.reshape(mi.add(h0, mi.matmul(mi.sub(mi.reshape(parts[1], [k, m * N]), h0Sub), selH)), [k, E, N]);
      const inp = mi.expand(input, [k, c.hidden_size]);
      const [x, z] = L.splitInProj(mi.linear(inp, L.in_proj.weight, L.in_proj.bias));
      const convNew = mi.concat([mi.slice(conv, 2, 1, K), mi.unsqueeze(x, 2)], 2);
      let preAct = mi.sum(mi.mul(convNew, mi.reshape(L.conv1d.weight, [E, K])), 2);
      if (L.conv1d.bias) preAct = mi.add(preAct, L.conv1d.bias);
      const u = mi.silu(preAct);
      const [dtRaw, B, C] = L.splitXProj(mi.linear(u, L.x_proj.weight));
      const delta = mi.softplus(mi.linear(dtRaw, L.dt_proj.weight, L.dt_proj.bias));
      const s = ssmStep(u, delta, L.A(), B, C, L.D, z, h);
      const convOut = mi.reshape(mi.matmul(mi.reshape(convNew, [k, E * K]), selConv, { transB: true }), [k, m, K]);
      const hOut = mi.reshape(mi.matmul(mi.reshape(s.h, [k, E * N]), selH, { transB: true }), [k, m, N]);
      return mi.reshape(mi.concat([convOut, hOut], 2), [k, S]);
    };
    return mi.jacobian(f, x0, { batched: true });
  });
  const jac = Float64Array.from(await J.data());
  J.dispose();
  // Abar at position + 1 for comparison (delta from the parallel forward)
  const abar = await mi.tidyAsync(async () => {
    const { cache } = mi.noGrad(() => model.runWithCache([ids.slice(0, position + 2)], [deltaName]));
    const delta = await cache.get(deltaName)!.data();
    const A = await mi.noGrad(() => L.A()).data();
    const out = new Float64Array(m * N);
    channels.forEach((e, i) => {
      for (let n = 0; n < N; n++) out[i * N + n] = Math.exp(delta[(position + 1) * E + e] * A[e * N + n]);
    });
    return out;
  });
  return { layer, position, channels, size: S, jacobian: jac, eigenvalues: eigenvalues(jac), abar };
}

/** Up to `max` channels spread evenly over [0, E). */
export function spreadChannels(E: number, max: number): number[] {
  const m = Math.min(E, max);
  return Array.from({ length: m }, (_, i) => Math.floor((i * E) / m));
}
