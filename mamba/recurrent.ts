// Recurrent decoding: the model as an RNN over one token at a time. Each layer carries the last
// conv_kernel inputs of its conv (conv state [batch,E,K], oldest first, as transformers' cache)
// and its SSM state [batch,E,N]. step() reproduces the parallel forward's logits position by
// position; prefill() runs a prompt in parallel and leaves the cache positioned after it.
// Decoding is inference: step and prefill run without recording gradients. Hooks act during
// generation as in a forward pass (stepWithHooks, GenerateOptions.hooks), and generateWithCache
// returns the activations over every token read.
//
// A step is the parallel forward at T = 1, with its fused kernels where they exist: the SSM update
// is the scan kernel over one position (dt_proj's bias and the softplus inside it, as in the
// forward; ssmStep in ssm.ts is the same recurrence written with elementwise ops, for patching), and
// A = -exp(A_log) is computed once per cache, not once per token: kept in the cache, and computed
// again when the model's A_log tensors hold other buffers (an optimiser's assign, another model).
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { MambaLayer } from './layer.ts';
import { HookSet, type Hook } from './hooks.ts';
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
  return stepWithHooks(model, cache, ids).logits;
}

export interface StepOptions {
  /**
   * hooks on this token's activations, as in a forward pass (mamba/hooks.ts): each sees its
   * activation at this one position as [batch, 1, ...], with ctx.offset the token's position
   * (cache.position), and may replace it; hook_h hooks with `positions` see the state after this
   * token [batch, E, N] when its position is listed, and a replaced state is what the token's output
   * is read from and what later tokens continue from, as in the parallel forward. Hook points
   * inside the fused scan-and-gate step (hook_dt, hook_delta, hook_ssm_out, hook_gated, hook_conv,
   * hook_x_proj) are refused.
   */
  hooks?: readonly Hook[];
  /** hook points whose value at this token to return, [batch, 1, ...] */
  cache?: readonly string[];
}

const NOT_IN_STEP = ['hook_dt', 'hook_delta', 'hook_ssm_out', 'hook_gated', 'hook_conv', 'hook_x_proj'];

/** step() with hooks and a cache of this token's activations (see StepOptions). */
export function stepWithHooks(
  model: MambaLM,
  cache: RecurrentCache,
  ids: Tensor | readonly number[],
  opts: StepOptions = {},
): { logits: Tensor; cache: Map<string, Tensor> } {
  const c = model.config;
  const idt = ids instanceof mi.Tensor ? ids : model.ids([...ids]);
  if (idt.size !== cache.batch) throw new Error(`step: ${idt.size} token ids for a cache of batch ${cache.batch}`);
  const batch = cache.batch;
  const hs =
    opts.hooks?.length || opts.cache?.length ? new HookSet(opts.hooks ?? [], new Set(opts.cache ?? []), new Set(model.hookNames())) : null;
  for (const name of hs?.names() ?? []) {
    const leaf = name.split('.').pop()!;
    if (NOT_IN_STEP.includes(leaf))
      throw new Error(`step: hook point ${name} is inside the fused decoding step; hook it in a forward pass (model.run) instead`);
  }
  const position = cache.position;
  // an activation [batch, n...] shown to the hooks as a sequence of one position [batch, 1, n...]
  const H = (name: string, t: Tensor, layer?: number): Tensor => {
    if (!hs?.wants(name)) return t;
    const shown = hs.apply(name, mi.reshape(t, [batch, 1, ...t.shape.slice(1)]), layer, position);
    return mi.reshape(shown, t.shape);
  };
  const views = Array.from({ length: c.num_hidden_layers }, (_, i) => model.layer(i));
  const As = layerA(views, cache);
  // [batch, n] as a sequence of one position, [batch, 1, n] (a view)
  const seq = (t: Tensor) => mi.reshape(t, [batch, 1, t.shape[1]]);
  const { logits, layers, cached } = mi.noGrad(() =>
    mi.tidy(() => {
      let resid = H('hook_embed', mi.embedding(model.p('backbone.embeddings.weight'), mi.reshape(idt, [batch])));
      const layers: LayerState[] = [];
      for (let i = 0; i < c.num_hidden_layers; i++) {
        const layer = views[i];
        const { E, K } = layer;
        const st = cache.layers[i];
        const M = (n: string, t: Tensor) => H(`blocks.${i}.mixer.${n}`, t, i);
        resid = H(`blocks.${i}.hook_resid_pre`, resid, i);
        const normed = H(`blocks.${i}.hook_norm`, mi.rmsNorm(resid, layer.norm, c.layer_norm_epsilon), i);
        const [xRaw, zRaw] = layer.splitInProj(M('hook_in_proj', mi.linear(normed, layer.in_proj.weight, layer.in_proj.bias)));
        const x = M('hook_x', xRaw);
        const z = M('hook_z', zRaw);
        const conv = mi.concat([mi.slice(st.conv, 2, 1, K), mi.unsqueeze(x, 2)], 2);
        let pre_act = mi.sum(mi.mul(conv, mi.reshape(layer.conv1d.weight, [E, K])), 2);
        if (layer.conv1d.bias) pre_act = mi.add(pre_act, layer.conv1d.bias);
        const u = M('hook_conv_act', mi.silu(pre_act));
        const [dtRaw, Braw, Craw] = layer.splitXProj(mi.linear(u, layer.x_proj.weight));
        const B = M('hook_B', Braw);
        const C = M('hook_C', Craw);
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
        let y = mi.reshape(s.y, [batch, E]);
        let hT = s.hT;
        const hName = `blocks.${i}.mixer.hook_h`;
        if (hs?.wants(hName)) {
          const patched = hs.applyState(hName, hT, position, i);
          if (patched !== hT) {
            // the token's output read from the replaced state: y = (C . h + D u) * SiLU(z)
            hT = patched;
            const read = mi.sum(mi.mul(hT, mi.unsqueeze(C, 1)), 2);
            y = mi.mul(mi.add(read, mi.mul(u, layer.D)), mi.silu(z));
          }
          hs.apply(hName, mi.reshape(hT, [batch, 1, E, c.state_size]), i, position);
        }
        const out = H(`blocks.${i}.hook_mixer_out`, mi.linear(y, layer.out_proj.weight, layer.out_proj.bias), i);
        resid = H(`blocks.${i}.hook_resid_post`, mi.add(resid, out), i);
        layers.push({ conv, ssm: hT });
      }
      const normed = H('hook_norm_f', mi.rmsNorm(resid, model.p('backbone.norm_f.weight'), c.layer_norm_epsilon));
      const logits = H('hook_logits', mi.linear(normed, model.lmHead()));
      return { logits, layers, cached: [...(hs?.cache ?? new Map<string, Tensor>()).entries()] };
    }),
  );
  disposeStates(cache.layers);
  cache.layers = layers.map((l) => ({ conv: mi.keep(l.conv), ssm: mi.keep(l.ssm) }));
  cache.position++;
  return { logits, cache: new Map(cached) };
}

/**
 * The prompt in parallel: logits [batch,T,V] and the cache after its last token; with hooks (a
 * forward pass's, mamba/hooks.ts) acting on the prompt, and the activations asked for.
 */
export function prefill(
  model: MambaLM,
  ids: IdsLike,
  opts: StepOptions = {},
): { logits: Tensor; cache: RecurrentCache; activations: Map<string, Tensor> } {
  const { logits, states, activations } = mi.noGrad(() =>
    mi.tidy(() => {
      const r = model.run(ids, { collectStates: true, hooks: opts.hooks, cache: opts.cache });
      return { logits: r.logits, states: r.states!, activations: r.cache };
    }),
  );
  const layers = states.map((s) => ({ conv: mi.keep(s.conv), ssm: mi.keep(s.ssm) }));
  return { logits, cache: { batch: logits.shape[0], layers, position: logits.shape[1] }, activations };
}

export interface GenerateOptions {
  /** tokens to add (default 20) */ maxNewTokens?: number;
  /** 0 (default) decodes greedily; otherwise logits are divided by it and sampled */ temperature?: number;
  /** sample only among the k most likely tokens */ topK?: number;
  /** sample only from the smallest set of tokens whose probability reaches p */ topP?: number;
  /** seed of the sampling stream (default 0) */ seed?: number | string;
  /** a sequence stops growing after this token (others continue; finished rows are padded with it) */ eosTokenId?: number;
  /**
   * hooks that act on the prompt (in its parallel pass) and on every generated token (in its step),
   * with ctx.offset the absolute position, so a patch or a steering vector over a range of positions
   * acts the same wherever the range falls (mamba/hooks.ts; StepOptions for the step's hook points)
   */
  hooks?: readonly Hook[];
}

/** Prompt rows (equal lengths) followed by the generated tokens. */
export async function generate(
  model: MambaLM,
  prompt: readonly number[] | readonly (readonly number[])[],
  opts: GenerateOptions = {},
): Promise<number[][]> {
  const { tokens, activations } = await generateWithCache(model, prompt, [], opts);
  for (const t of activations.values()) t.dispose();
  return tokens;
}

/**
 * generate() that also returns the activations at `names` over every token the model read (the
 * prompt, then each generated token but the last, which is never fed back): [batch, T, ...] per name.
 */
export async function generateWithCache(
  model: MambaLM,
  prompt: readonly number[] | readonly (readonly number[])[],
  names: readonly string[],
  opts: GenerateOptions = {},
): Promise<{ tokens: number[][]; activations: Map<string, Tensor> }> {
  const rows = (typeof prompt[0] === 'number' ? [prompt as readonly number[]] : prompt) as readonly (readonly number[])[];
  const out = rows.map((r) => [...r]);
  const maxNew = opts.maxNewTokens ?? 20;
  const temperature = opts.temperature ?? 0;
  if (temperature < 0) throw new Error(`generate: temperature ${temperature} is negative`);
  const rng = new mi.Rng(opts.seed ?? 0);
  const V = model.config.vocab_size;
  const hooked = { hooks: opts.hooks, cache: names };
  // a state patch at a position past the prompt acts in its step, not in the prompt's pass
  const promptHooks = opts.hooks?.map((h) => (h.positions ? { ...h, positions: h.positions.filter((p) => p < rows[0].length) } : h));
  const first = prefill(model, rows, { hooks: promptHooks, cache: names });
  const cache = first.cache;
  // views of the prompt's activations (hook_logits is the logits tensor itself, disposed below)
  const parts = new Map(
    names.map((n) => {
      const t = first.activations.get(n)!;
      return [n, [mi.keep(t.view(t.shape))]];
    }),
  );
  for (const t of new Set(first.activations.values())) if (t !== first.logits) t.dispose();
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
      const r = stepWithHooks(model, cache, next, hooked);
      logits = r.logits;
      for (const [name, t] of r.cache) parts.get(name)!.push(mi.keep(t));
    }
  } finally {
    disposeCache(cache);
  }
  const activations = new Map<string, Tensor>();
  for (const [name, ts] of parts) {
    activations.set(name, mi.keep(mi.noGrad(() => mi.tidy(() => mi.concat(ts, 1)))));
    for (const t of ts) t.dispose();
  }
  return { tokens: out, activations };
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
