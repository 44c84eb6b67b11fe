// Hidden-attention edge knockout in the forward pass: remove what input position s contributes to
// output position t inside one layer's selective scan, and let everything downstream see the
// result, as the Mamba knockout studies do (Ali et al., "The Hidden Attention of Mamba Models";
// Endy et al.'s attention knockout for Mamba). A layer's ungated scan output is
//   ssm_out[t, e] = sum_{s <= t} alpha[e, t, s] u[s, e] + D[e] u[t, e],
//   alpha[e, t, s] = sum_n C[t, n] exp(A[e, n] (delta[s+1, e] + ... + delta[t, e])) delta[s, e] B[s, n],
// so knocking the edge (s -> t) out subtracts alpha[e, t, s] u[s, e] from ssm_out[t, e] (before the
// gate); the skip term D u[t] is not an edge and stays. Only the knocked terms are computed, O(E N)
// per edge, from the layer's own u, delta, B and C read by hooks earlier in the same pass: the
// state sequence and the T x T matrix are never materialised.
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { Hook } from '../mamba/hooks.ts';
import type { MambaLM } from '../mamba/model.ts';

export interface Edge {
  layer: number;
  /** the input position s (0 <= from <= to) */
  from: number;
  /** the output position t */
  to: number;
}

/** Hooks that knock `edges` out of their layers' scans (every sequence of the batch alike). */
export function edgeKnockoutHooks(model: MambaLM, edges: readonly Edge[]): Hook[] {
  const L = model.config.num_hidden_layers;
  const byLayer = new Map<number, Edge[]>();
  for (const e of edges) {
    if (!Number.isInteger(e.layer) || e.layer < 0 || e.layer >= L) throw new Error(`edgeKnockout: layer ${e.layer} is not in [0, ${L})`);
    if (!Number.isInteger(e.from) || !Number.isInteger(e.to) || e.from < 0 || e.from > e.to)
      throw new Error(`edgeKnockout: edge ${e.from} -> ${e.to} must have 0 <= from <= to`);
    const list = byLayer.get(e.layer) ?? [];
    // an edge named twice is knocked out once
    if (!list.some((x) => x.from === e.from && x.to === e.to)) list.push(e);
    byLayer.set(e.layer, list);
  }
  return [...byLayer].flatMap(([layer, list]) => layerHooks(model, layer, list));
}

function layerHooks(model: MambaLM, layer: number, edges: readonly Edge[]): Hook[] {
  const p = `blocks.${layer}.mixer.`;
  // the factors of this pass, read in the order the forward computes them
  const seen: { u?: Tensor; delta?: Tensor; B?: Tensor; C?: Tensor } = {};
  const read = (key: keyof typeof seen) => (t: Tensor) => {
    seen[key] = t;
  };
  return [
    { name: `${p}hook_conv_act`, fn: read('u') },
    { name: `${p}hook_delta`, fn: read('delta') },
    { name: `${p}hook_B`, fn: read('B') },
    { name: `${p}hook_C`, fn: read('C') },
    {
      name: `${p}hook_ssm_out`,
      fn: (out) => {
        const { u, delta, B, C } = seen;
        if (!u || !delta || !B || !C) throw new Error(`edgeKnockout: layer ${layer}'s scan factors were not seen before its ssm_out`);
        const [batch, T] = out.shape;
        const A = model.layer(layer).A(); // [E, N]
        const at = (t: Tensor, i: number) => mi.reshape(mi.slice(t, 1, i, i + 1), [batch, t.shape[2]]);
        let removed: Tensor | null = null;
        for (const { from: s, to: t } of edges) {
          if (t >= T) throw new Error(`edgeKnockout: edge ${s} -> ${t} is past the sequence (T = ${T})`);
          // sum of delta over (s, t], [batch, E]
          const span = t > s ? mi.sum(mi.slice(delta, 1, s + 1, t + 1), 1) : mi.zerosLike(at(delta, s));
          const decay = mi.exp(mi.mul(mi.unsqueeze(span, 2), A)); // [batch, E, N]
          const write = mi.mul(mi.unsqueeze(mi.mul(at(delta, s), at(u, s)), 2), mi.unsqueeze(at(B, s), 1)); // delta_s u_s B_s
          const term = mi.sum(mi.mul(mi.mul(decay, write), mi.unsqueeze(at(C, t), 1)), 2); // [batch, E]
          const onehot = new Float32Array(T);
          onehot[t] = 1;
          const place = mi.tensor(onehot, [1, T, 1], { dtype: 'float32', backend: out.backend });
          const edge = mi.mul(mi.unsqueeze(term, 1), out.dtype === 'float32' ? place : mi.cast(place, out.dtype));
          removed = removed ? mi.add(removed, edge) : edge;
        }
        return removed ? mi.sub(out, removed) : out;
      },
    },
  ];
}
