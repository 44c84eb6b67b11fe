// Recurrent decoding: the model as an RNN over one token at a time. Each layer carries the last
// conv_kernel inputs of its conv (conv state [batch,E,K], oldest first, as transformers' cache)
// and its SSM state [batch,E,N]. step() reproduces the parallel forward's logits position by
// position; prefill() runs a prompt in parallel and leaves the cache positioned after it.
// Decoding is inference: step and prefill run without recording gradients.
//
// A step is the parallel forward at T = 1, with its fused kernels where they exist: the SSM update
// is the scan kernel over one position (dt_proj's bias and the softplus inside it, as in the
// forward; ssmStep in ssm.ts is the same recurrence written with elementwise ops, for patching), and
// A = -exp(A_log) is computed once per cache, not once per token: kept in the cache, and computed
// again when the model's A_log tensors hold other buffers (an optimiser's assign, another model).
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { MambaLayer } from './layer.ts';
import type { IdsLike, MambaLM } from './model.ts';

export interface LayerState {
  /** the last K conv inputs x, oldest first [batch,E,K] */ conv: Tensor;
  /** the SSM state [batch,E,N] */ ssm: Tensor;
}

export interface RecurrentCache {
  readonly batch: number;
  layers: LayerState[];
  /** tokens consumed so far */
  position: number;
  /** A = -exp(A_log) per layer as step() last used it, with the A_log buffers it was computed from */
  A?: { from: Tensor['buffer'][]; A: Tensor[] };
}

/** The conv state after reading x [batch,T,E]: its last K steps as [batch,E,K], zero-padded in front. */
export function convStateFrom(x: Tensor, K: number): Tensor {
  const [batch, T, E] = x.shape;
  let last = T >= K ? mi.slice(x, 1, T - K, T) : x;
  if (T < K) last = mi.concat([mi.zeros([batch, K - T, E], { dtype: x.dtype, backend: x.backend }), x], 1);
  return mi.permute(last, [0, 2, 1]);
}

export function newCache(model: MambaLM, batch: number): RecurrentCache {
  const c = model.config;
  const o = { dtype: model.dtype, backend: model.backend };
  const layers = Array.from({ length: c.num_hidden_layers }, () => ({
    conv: mi.keep(mi.zeros([batch, c.intermediate_size, c.conv_kernel], o)),
    ssm: mi.keep(mi.zeros([batch, c.intermediate_size, c.state_size], o)),
  }));
  return { batch, layers, position: 0 };
}

export function disposeCache(cache: RecurrentCache): void {
  disposeStates(cache.layers);
  for (const a of cache.A?.A ?? []) a.dispose();
  cache.A = undefined;
}

function disposeStates(layers: LayerState[]): void {
  for (const l of layers) {
    l.conv.dispose();
    l.ssm.dispose();
  }
}

/** Every layer's A, from the cache while the layers' A_log buffers are those it was computed from. */
function layerA(layers: MambaLayer[], cache: RecurrentCache): Tensor[] {
  const have = cache.A;
  if (have && have.from.length === layers.length && layers.every((l, i) => l.A_log.buffer === have.from[i])) return have.A;
  for (const a of have?.A ?? []) a.dispose();
  const A = mi.noGrad(() => mi.tidy(() => layers.map((l) => l.A())));
  cache.A = { from: layers.map((l) => l.A_log.buffer), A: A.map((a) => mi.keep(a)) };
  return cache.A.A;
}

/** One token per sequence through every layer; replaces the cache's states. Logits [batch, V]. */
export function step(model: MambaLM, cache: RecurrentCache, ids: Tensor | readonly number[]): Tensor {
  const c = model.config;
  const idt = ids instanceof mi.Tensor ? ids : model.ids([...ids]);
  if (idt.size !== cache.batch) throw new Error(`step: ${idt.size} token ids for a cache of batch ${cache.batch}`);
  const batch = cache.batch;
  const views = Array.from({ length: c.num_hidden_layers }, (_, i) => model.layer(i));
  const As = layerA(views, cache);
  // [batch, n] as a sequence of one position, [batch, 1, n] (a view)
  const seq = (t: Tensor) => mi.reshape(t, [batch, 1, t.shape[1]]);
  const { logits, layers } = mi.noGrad(() =>
    mi.tidy(() => {
      let resid = mi.embedding(model.p('backbone.embeddings.weight'), mi.reshape(idt, [batch]));
      const layers: LayerState[] = [];
      for (let i = 0; i < c.num_hidden_layers; i++) {
        const layer = views[i];
        const { E, K } = layer;
        const st = cache.layers[i];
        const normed = mi.rmsNorm(resid, layer.norm, c.layer_norm_epsilon);
        const [x, z] = layer.splitInProj(mi.linear(normed, layer.in_proj.weight, layer.in_proj.bias));
        const conv = mi.concat([mi.slice(st.conv, 2, 1, K), mi.unsqueeze(x, 2)], 2);
        let pre_act = mi.sum(mi.mul(conv, mi.reshape(layer.conv1d.weight, [E, K])), 2);
        if (layer.conv1d.bias) pre_act = mi.add(pre_act, layer.conv1d.bias);
        const u = mi.silu(pre_act);
        const [dtRaw, B, C] = layer.splitXProj(mi.linear(u, layer.x_proj.weight));
        const s = mi.selectiveScan({
          x: seq(u),
          delta: seq(mi.linear(dtRaw, layer.dt_proj.weight)),
          deltaBias: layer.dt_proj.bias,
          deltaSoftplus: true,
          A: As[i],
          B: seq(B),
          C: seq(C),
          D: layer.D,
          z: seq(z),
          h0: st.ssm,
        });
        resid = mi.add(resid, mi.linear(mi.reshape(s.y, [batch, E]), layer.out_proj.weight, layer.out_proj.bias));
        layers.push({ conv, ssm: s.hT });
      }
      const normed = mi.rmsNorm(resid, model.p('backbone.norm_f.weight'), c.layer_norm_epsilon);
      return { logits: mi.linear(normed, model.lmHead()), layers };
    }),
  );
  disposeStates(cache.layers);
  cache.layers = layers.map((l) => ({ conv: mi.keep(l.conv), ssm: mi.keep(l.ssm) }));
  cache.position++;
  return logits;
}

/** The prompt in parallel: logits [batch,T,V] and the cache after its last token. */
export function prefill(model: MambaLM, ids: IdsLike): { logits: Tensor; cache: RecurrentCache } {
  const { logits, states } = mi.noGrad(() =>
    mi.tidy(() => {
      const r = model.run(ids, { collectStates: true });
      return { logits: r.logits, states: r.states! };
    }),
  );
  const layers = states.map((s) => ({ conv: mi.keep(s.conv), ssm: mi.keep(s.ssm) }));
  return { logits, cache: { batch: logits.shape[0], layers, position: logits.shape[1] } };
}

export interface GenerateOptions {
  /** tokens to add (default 20) */ maxNewTokens?: number;
  /** 0 (default) decodes greedily; otherwise logits are divided by it and sampled */ temperature?: number;
  /** sample only among the k most likely tokens */ topK?: number;
  /** sample only from the smallest set of tokens whose probability reaches p */ topP?: number;
  /** seed of the sampling stream (default 0) */ seed?: number | string;
  /** a sequence stops growing after this token (others continue; finished rows are padded with it) */ eosTokenId?: number;
}

/** Prompt rows (equal lengths) followed by the generated tokens. */
export async function generate(
  model: MambaLM,
  prompt: readonly number[] | readonly (readonly number[])[],
  opts: GenerateOptions = {},
): Promise<number[][]> {
  const rows = (typeof prompt[0] === 'number' ? [prompt as readonly number[]] : prompt) as readonly (readonly number[])[];
  const out = rows.map((r) => [...r]);
  const maxNew = opts.maxNewTokens ?? 20;
  const temperature = opts.temperature ?? 0;
  if (temperature < 0) throw new Error(`generate: temperature ${temperature} is negative`);
  const rng = new mi.Rng(opts.seed ?? 0);
  const V = model.config.vocab_size;
  const first = prefill(model, rows);
  const cache = first.cache;
  const T = first.logits.shape[1];
  let logits = mi.noGrad(() => mi.tidy(() => mi.reshape(mi.slice(first.logits, 1, T - 1, T), [rows.length, V])));
  first.logits.dispose();
  const done = rows.map(() => false);
  try {
    for (let n = 0; n < maxNew; n++) {
      const data = await logits.data();
      logits.dispose();
      const next = rows.map((_, b) => {
        if (done[b]) return opts.eosTokenId!;
        const row = Array.from(data.subarray(b * V, (b + 1) * V));
        return temperature === 0 ? argmax(row) : sample(row, temperature, opts.topK, opts.topP, rng);
      });
      next.forEach((t, b) => {
        out[b].push(t);
        if (t === opts.eosTokenId) done[b] = true;
      });
      if (n === maxNew - 1 || done.every(Boolean)) break;
      logits = step(model, cache, next);
    }
  } finally {
    disposeCache(cache);
  }
  return out;
}

function argmax(row: number[]): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Temperature, top-k and nucleus (top-p) sampling from one row of logits. */
export function sample(row: number[], temperature: number, topK: number | undefined, topP: number | undefined, rng: mi.Rng): number {
  let order = row.map((_, i) => i).sort((a, b) => row[b] - row[a] || a - b);
  if (topK !== undefined) {
    if (!Number.isInteger(topK) || topK < 1) throw new Error(`generate: topK ${topK} must be a positive integer`);
    order = order.slice(0, topK);
  }
  const m = row[order[0]];
  let probs = order.map((i) => Math.exp((row[i] - m) / temperature));
  const total = probs.reduce((a, b) => a + b, 0);
  probs = probs.map((p) => p / total);
  if (topP !== undefined) {
    if (!(topP > 0 && topP <= 1)) throw new Error(`generate: topP ${topP} must be in (0, 1]`);
    let cum = 0,
      keep = 0;
    while (keep < probs.length && cum < topP) cum += probs[keep++];
    order = order.slice(0, keep);
    probs = probs.slice(0, keep).map((p) => p / cum);
  }
  let r = rng.uniform();
  for (let j = 0; j < order.length; j++) {
    r -= probs[j];
    if (r < 0) return order[j];
  }
  return order[order.length - 1];
}
