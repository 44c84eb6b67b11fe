// Mamba-1 language model, computing what Hugging Face transformers' MambaForCausalLM computes:
//   h = embeddings[ids]
//   per layer i:  h = h + mixer_i(RMSNorm_i(h))
//   logits = RMSNorm_f(h) @ W_head^T            (W_head = embeddings unless lm_head.weight exists)
// Mixer (MambaMixer.slow_forward):
//   x, z = split(in_proj(h))                    [batch,T,E] each
//   u = SiLU(causal depthwise conv1d(x) + conv bias)
//   dt_raw, B, C = split(x_proj(u), [R, N, N])
//   delta = softplus(dt_proj(dt_raw))           (dt_proj's bias and the softplus fused into the scan)
//   A = -exp(A_log);  h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t;  y_t = C_t . h_t + D u_t
//   out = out_proj(y * SiLU(z))
// Parameters are held under their Hugging Face names, so checkpoints load and save as they are; a
// layer's are read through MambaLayer (mamba/layer.ts), as are the splits above and A.
// Only engine ops are used, so the model runs on any backend and in float32 or float64 (CPU).
import * as mi from '../engine/index.ts';
import type { Backend, DType, Tensor } from '../engine/index.ts';
import { HookSet, hookNames, type Hook } from './hooks.ts';
import { scanStage } from './ssm.ts';
import * as rec from './recurrent.ts';
import { expectedParameterShapes, type MambaConfig } from './config.ts';
import { MambaLayer } from './layer.ts';
import * as text from './text.ts';
import type { TextTokenizer, ToTokensOptions } from './text.ts';

/** The model reads the Hugging Face MambaConfig fields (mamba/config.ts; time_step_rank resolved). */
export type ModelConfig = MambaConfig;

export type IdsLike = Tensor | readonly (readonly number[])[] | readonly number[];

export interface RunOptions {
  hooks?: readonly Hook[];
  /** hook names whose (final) values to return */
  cache?: readonly string[];
  /** collect each layer's last conv inputs and final SSM state (for decoding after a prompt) */
  collectStates?: boolean;
}

export interface RunResult {
  logits: Tensor;
  cache: Map<string, Tensor>;
  /** per layer: conv state [batch,E,K] and SSM state [batch,E,N], when collectStates */
  states?: rec.LayerState[];
}

export class MambaLM {
  readonly config: ModelConfig;
  /** parameters by Hugging Face name */
  readonly params: Map<string, Tensor>;
  private readonly validHooks: Set<string>;
  private textTokenizer: TextTokenizer | null = null;

  constructor(config: ModelConfig, params: Map<string, Tensor>) {
    if (typeof config.time_step_rank !== 'number')
      throw new Error(`MambaLM: config.time_step_rank must be resolved to a number, got ${String(config.time_step_rank)}`);
    this.config = config;
    this.params = params;
    const want = expectedParameterShapes(config);
    let first: Tensor | undefined;
    for (const [name, shape] of want) {
      const t = params.get(name);
      if (!t) throw new Error(`MambaLM: missing parameter ${name} [${shape}]`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`MambaLM: parameter ${name} has shape [${t.shape}], the config implies [${shape}]`);
      }
      first ??= t;
      if (t.dtype !== first.dtype || t.backend !== first.backend)
        throw new Error(`MambaLM: parameter ${name} is ${t.dtype} on ${t.backend.name}, others ${first.dtype} on ${first.backend.name}`);
    }
    for (const name of params.keys()) if (!want.has(name)) throw new Error(`MambaLM: unexpected parameter ${name} for this config`);
    this.validHooks = new Set(hookNames(config.num_hidden_layers));
  }

  get dtype(): DType {
    return this.p('backbone.embeddings.weight').dtype;
  }
  get backend(): Backend {
    return this.p('backbone.embeddings.weight').backend;
  }

  /** A parameter by HF name (an error naming it if absent). */
  p(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`MambaLM: no parameter ${name}`);
    return t;
  }

  /** Layer i's parameters and split sizes (mamba/layer.ts), read by the parallel forward and by step(). */
  layer(i: number): MambaLayer {
    if (!Number.isInteger(i) || i < 0 || i >= this.config.num_hidden_layers)
      throw new Error(`MambaLM: no layer ${i} (the model has ${this.config.num_hidden_layers})`);
    return new MambaLayer(this.config, i, this.params);
  }

  /** The output head's weight [V,d]: lm_head.weight, or the embeddings when they are tied. */
  lmHead(): Tensor {
    return this.params.get('lm_head.weight') ?? this.p('backbone.embeddings.weight');
  }

  /** The parameters in a fixed order (the tied head is the embeddings, listed once). */
  parameters(): [string, Tensor][] {
    return [...this.params.entries()];
  }

  hookNames(): string[] {
    return hookNames(this.config.num_hidden_layers);
  }

  /** The tokenizer toTokens / toStrTokens / toString use (loadPretrained attaches tokenizer.json when the checkpoint has one), or null. */
  get tokenizer(): TextTokenizer | null {
    return this.textTokenizer;
  }
  set tokenizer(tok: TextTokenizer | null) {
    if (tok) text.checkTokenizerFits(tok, this.config.vocab_size);
    this.textTokenizer = tok;
  }

  private requireTokenizer(what: string): TextTokenizer {
    if (!this.textTokenizer)
      throw new Error(`MambaLM.${what}: the model has no tokenizer (no tokenizer.json beside its config.json; set model.tokenizer)`);
    return this.textTokenizer;
  }

  /** Token ids [batch][pos] of a text or texts (right-padded), for forward / runWithCache (mamba/text.ts). */
  toTokens(input: string | readonly string[], opts: ToTokensOptions = {}): number[][] {
    return text.toTokens(this.requireTokenizer('toTokens'), input, opts);
  }

  /** Each token of a text or of ids as a string. */
  toStrTokens(input: string | readonly number[], opts: ToTokensOptions = {}): string[] {
    return text.toStrTokens(this.requireTokenizer('toStrTokens'), input, opts);
  }

  /** The text of ids. */
  toString(ids: readonly number[]): string {
    return text.idsToString(this.requireTokenizer('toString'), ids);
  }

  /** int32 [batch, T] ids on the model's backend. */
  ids(ids: IdsLike): Tensor {
    if (ids instanceof mi.Tensor) {
      if (ids.dtype !== 'int32' || ids.rank !== 2) throw new Error(`MambaLM: ids must be int32 [batch, T], got ${ids.dtype}[${ids.shape}]`);
      return ids.backend === this.backend ? ids : mi.tensor(ids.dataSync(), ids.shape, { dtype: 'int32', backend: this.backend });
    }
    const rows = (typeof ids[0] === 'number' ? [ids as readonly number[]] : ids) as readonly (readonly number[])[];
    const T = rows[0]?.length ?? 0;
    if (!rows.length || !T || rows.some((r) => r.length !== T))
      throw new Error('MambaLM: ids must be a non-empty rectangular [batch, T] array');
    for (const r of rows)
      for (const v of r) {
        if (!Number.isInteger(v) || v < 0 || v >= this.config.vocab_size)
          throw new Error(`MambaLM: token id ${v} is outside the vocabulary [0, ${this.config.vocab_size})`);
      }
    return mi.tensor(Int32Array.from(rows.flat()), [rows.length, T], { dtype: 'int32', backend: this.backend });
  }

  /** Logits [batch, T, V]. */
  forward(ids: IdsLike): Tensor {
    return this.run(ids).logits;
  }

  /** Logits and the named activations (all hook points when names is omitted; hook_h only when named). */
  runWithCache(ids: IdsLike, names?: readonly string[]): { logits: Tensor; cache: Map<string, Tensor> } {
    const all = names ?? this.hookNames().filter((n) => !n.endsWith('.hook_h'));
    const { logits, cache } = this.run(ids, { cache: all });
    return { logits, cache };
  }

  /** Logits with hooks that may read or replace activations (see mamba/hooks.ts). */
  runWithHooks(ids: IdsLike, hooks: readonly Hook[]): Tensor {
    return this.run(ids, { hooks }).logits;
  }

  run(ids: IdsLike, opts: RunOptions = {}): RunResult {
    const idt = this.ids(ids);
    const hs = this.hookSet(opts);
    const embeds = mi.embedding(this.p('backbone.embeddings.weight'), idt);
    return this.runEmbeds(embeds, opts, hs);
  }

  private hookSet(opts: RunOptions): HookSet | null {
    if (!opts.hooks?.length && !opts.cache?.length) return null;
    return new HookSet(opts.hooks ?? [], new Set(opts.cache ?? []), this.validHooks);
  }

  /** The forward from input embeddings [batch,T,d] (for gradients with respect to them). */
  runEmbeds(embeds: Tensor, opts: RunOptions = {}, hs: HookSet | null = this.hookSet(opts)): RunResult {
    const normed = this.backboneFrom(embeds, hs, opts.collectStates);
    let logits = mi.linear(normed.out, this.lmHead());
    if (hs) logits = hs.apply('hook_logits', logits);
    return { logits, cache: hs?.cache ?? new Map(), states: normed.states };
  }

  /** The final normed hidden state [batch,T,d] from input embeddings (MambaModel's last_hidden_state). */
  hiddenFromEmbeds(embeds: Tensor): Tensor {
    return this.backboneFrom(embeds, null, false).out;
  }

  private backboneFrom(embeds: Tensor, hs: HookSet | null, collect?: boolean): { out: Tensor; states?: rec.LayerState[] } {
    const c = this.config;
    if (embeds.rank !== 3 || embeds.shape[2] !== c.hidden_size)
      throw new Error(`MambaLM: embeddings must be [batch, T, ${c.hidden_size}], got [${embeds.shape}]`);
    const H = (name: string, t: Tensor, layer?: number) => (hs ? hs.apply(name, t, layer) : t);
    let resid = H('hook_embed', embeds);
    const states: rec.LayerState[] = [];
    for (let i = 0; i < c.num_hidden_layers; i++) {
      resid = H(`blocks.${i}.hook_resid_pre`, resid, i);
      const layer = this.layer(i);
      const normed = H(`blocks.${i}.hook_norm`, mi.rmsNorm(resid, layer.norm, c.layer_norm_epsilon), i);
      const mixed = this.mixer(layer, normed, hs, collect ? states : null);
      const out = H(`blocks.${i}.hook_mixer_out`, mixed, i);
      resid = H(`blocks.${i}.hook_resid_post`, mi.add(resid, out), i);
    }
    const out = H('hook_norm_f', mi.rmsNorm(resid, this.p('backbone.norm_f.weight'), c.layer_norm_epsilon));
    return { out, states: collect ? states : undefined };
  }

  private mixer(layer: MambaLayer, input: Tensor, hs: HookSet | null, states: rec.LayerState[] | null): Tensor {
    const i = layer.index;
    const hn = (n: string) => `blocks.${i}.mixer.${n}`;
    const H = (n: string, t: Tensor) => (hs ? hs.apply(hn(n), t, i) : t);
    const T = input.shape[1];

    const xz = H('hook_in_proj', mi.linear(input, layer.in_proj.weight, layer.in_proj.bias));
    const [xRaw, zRaw] = layer.splitInProj(xz);
    const x = H('hook_x', xRaw);
    const z = H('hook_z', zRaw);
    const conv = H('hook_conv', mi.conv1dCausal(x, layer.conv1d.weight, layer.conv1d.bias));
    const u = H('hook_conv_act', mi.silu(conv));
    const xp = H('hook_x_proj', mi.linear(u, layer.x_proj.weight));
    const [dtRaw, Braw, Craw] = layer.splitXProj(xp);
    const B = H('hook_B', Braw);
    const C = H('hook_C', Craw);
    // Fused: the kernel adds dt_proj.bias and applies the softplus. A hook on dt or delta needs
    // those tensors to exist, so then they are computed here and the scan takes delta as is.
    const unfused = !!hs && (hs.wants(hn('hook_dt')) || hs.wants(hn('hook_delta')));
    const delta = unfused
      ? H('hook_delta', mi.softplus(H('hook_dt', mi.linear(dtRaw, layer.dt_proj.weight, layer.dt_proj.bias))))
      : mi.linear(dtRaw, layer.dt_proj.weight);
    const A = layer.A();
    const separateGate = !!hs && hs.wants(hn('hook_ssm_out'));
    const hName = hn('hook_h');
    const positions = hs ? hs.statePositions(hName, T) : [];
    const scanned = scanStage(
      {
        u,
        delta,
        deltaBias: unfused ? null : layer.dt_proj.bias,
        fused: !unfused,
        A,
        B,
        C,
        D: layer.D,
        z: separateGate ? null : z,
        h0: null,
        returnStates: !!hs && hs.wantsAllStates(hName),
      },
      positions,
      (h, t) => hs!.applyState(hName, h, t, i),
    );
    if (scanned.hs) hs!.apply(hName, scanned.hs, i);
    const gatedRaw = separateGate ? mi.mul(H('hook_ssm_out', scanned.y), mi.silu(z)) : scanned.y;
    const gated = H('hook_gated', gatedRaw);
    if (states) states.push({ conv: rec.convStateFrom(x, layer.K), ssm: scanned.hT });
    return mi.linear(gated, layer.out_proj.weight, layer.out_proj.bias);
  }

  // ---- recurrent decoding (mamba/recurrent.ts) ----------------------------------------------

  /** Zero states for `batch` sequences. */
  newCache(batch: number): rec.RecurrentCache {
    return rec.newCache(this, batch);
  }

  /** Feeds one token per sequence, updating the cache; logits [batch, V]. */
  step(cache: rec.RecurrentCache, ids: Tensor | readonly number[]): Tensor {
    return rec.step(this, cache, ids);
  }

  /** Runs a prompt in parallel; its logits and the cache positioned after it. */
  prefill(ids: IdsLike): { logits: Tensor; cache: rec.RecurrentCache } {
    return rec.prefill(this, ids);
  }

  generate(promptIds: readonly number[] | readonly (readonly number[])[], opts: rec.GenerateOptions = {}): Promise<number[][]> {
    return rec.generate(this, promptIds, opts);
  }

  dispose(): void {
    for (const t of this.params.values()) t.dispose();
  }
}

export interface InitOptions {
  dtype?: DType;
  backend?: Backend;
}

/**
 * Random weights initialised as transformers' MambaPreTrainedModel._init_weights does:
 * embeddings, in_proj and x_proj weights ~ normal(0, initializer_range); biases 0; A_log[e,n] =
 * log(n + 1) (S4D-real); D = 1; dt_proj.weight ~ U(±R^-0.5 time_step_scale) ('random') or that
 * constant ('constant'); dt_proj.bias = softplus^-1(dt), dt log-uniform in [time_step_min,
 * time_step_max] clamped at time_step_floor; conv1d.weight and out_proj.weight kaiming-uniform
 * (a = sqrt 5, i.e. U(±1/sqrt(fan_in))), out_proj divided by sqrt(layers) when
 * rescale_prenorm_residual; norm weights 1. Each parameter draws from its own stream forked by
 * name, so the same seed gives the same weights whatever else changes.
 */
export function initMamba(config: ModelConfig, rng: mi.Rng, opts: InitOptions = {}): MambaLM {
  const dtype = opts.dtype ?? 'float32';
  const backend = opts.backend ?? mi.getBackend();
  const c = config;
  const params = new Map<string, Tensor>();
  for (const [name, shape] of expectedParameterShapes(c)) {
    const r = rng.fork(name);
    const size = shape.reduce((a, b) => a * b, 1);
    const a = dtype === 'float64' ? new Float64Array(size) : new Float32Array(size);
    const leaf = name.includes('.mixer.') ? name.split('.mixer.')[1] : name;
    const uniform = (bound: number) => {
      for (let i = 0; i < size; i++) a[i] = (2 * r.uniform() - 1) * bound;
    };
    const normal = (std: number) => {
      for (let i = 0; i < size; i++) a[i] = std * r.normal();
    };
    if (name.endsWith('norm.weight') || name.endsWith('norm_f.weight') || leaf === 'D') a.fill(1);
    else if (name === 'backbone.embeddings.weight' || name === 'lm_head.weight' || leaf === 'in_proj.weight' || leaf === 'x_proj.weight')
      normal(c.initializer_range);
    else if (leaf === 'A_log') {
      for (let i = 0; i < size; i++) a[i] = Math.log((i % c.state_size) + 1);
    } else if (leaf === 'dt_proj.weight') {
      const std = c.time_step_rank ** -0.5 * c.time_step_scale;
      if (c.time_step_init_scheme === 'constant') a.fill(std);
      else if (c.time_step_init_scheme === 'random') uniform(std);
      else throw new Error(`initMamba: unknown time_step_init_scheme '${c.time_step_init_scheme}'`);
    } else if (leaf === 'dt_proj.bias') {
      const lo = Math.log(c.time_step_min),
        hi = Math.log(c.time_step_max);
      for (let i = 0; i < size; i++) {
        const dt = Math.max(Math.exp(r.uniform() * (hi - lo) + lo), c.time_step_floor);
        a[i] = dt + Math.log(-Math.expm1(-dt)); // inverse softplus
      }
    } else if (leaf === 'conv1d.weight') uniform(1 / Math.sqrt(c.conv_kernel));
    else if (leaf === 'out_proj.weight') {
      uniform(1 / Math.sqrt(c.intermediate_size));
      if (c.rescale_prenorm_residual) for (let i = 0; i < size; i++) a[i] /= Math.sqrt(c.num_hidden_layers);
    } else if (name.endsWith('.bias')) a.fill(0);
    else throw new Error(`initMamba: no initialisation rule for ${name}`);
    params.set(name, mi.tensor(a, shape, { dtype, backend }));
  }
  return new MambaLM(config, params);
}
