// What the explorer page computes, with the library bundle and nothing page-specific: model and
// SAE loading over fetch, predictions, temporal maps, SAE latents and ablations. Each function
// reads its results back to plain arrays and frees every tensor it made (tidy scopes), so the
// page can run them one after another on WebGPU for as long as it stays open.
import * as MI from '../../browser.ts';
import type { Circuit, SaeRecord } from '../../steps/artefacts.ts';

export const IGNORE = MI.tasks.IGNORE_INDEX;

/**
 * The backend the page computes on: WebGPU when the browser offers an adapter, else the CPU, with
 * its WebAssembly kernels compiled first (initBackend('cpu'): a page's main thread compiles them
 * asynchronously); its line then says which kernels run, e.g. "CPU backend: cpu (browser,
 * WebAssembly SIMD, 1 thread)".
 */
export async function pickBackend(force?: string | null): Promise<{ backend: MI.Backend; adapter: string; fallbackReason: string | null }> {
  const cpu = async (fallbackReason: string) => {
    const backend = await MI.initBackend('cpu');
    return { backend, adapter: `CPU backend: ${backend.description}`, fallbackReason };
  };
  if (force === 'cpu') return cpu('the CPU backend was asked for (?backend=cpu)');
  if (!('gpu' in navigator) || !navigator.gpu) return cpu('this browser has no WebGPU (navigator.gpu is missing)');
  try {
    const backend = new MI.WebGpuBackend(await MI.acquireDevice());
    return { backend, adapter: backend.description, fallbackReason: null };
  } catch (e) {
    return cpu(`WebGPU is not usable here: ${(e as Error).message}`);
  }
}

/** GET a JSON file of the run directory; null when the step did not write it (404). */
export async function fetchRunJson<T>(path: string): Promise<T | null> {
  const res = await fetch(`run/${path}`);
  if (res.status === 404) return null;
  if (!res.ok) throw new Error(`run/${path} answered ${res.status} ${res.statusText}`);
  return (await res.json()) as T;
}

/** The checkpoint folder at `url`, with its tokenizer.json attached when it has one (the run index says). */
export function loadModel(url: string, backend: MI.Backend, tokenizer: boolean): Promise<MI.MambaLM> {
  return MI.fetchPretrained(url, { backend, tokenizer });
}

/** An SAE of step 3 from its safetensors file (config in the metadata, as interp/sae/io.ts writes it). */
export async function loadSae(rec: SaeRecord, backend: MI.Backend): Promise<MI.sae.Sae> {
  const url = `run/step-03-sae/${rec.file}`;
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url} answered ${res.status} ${res.statusText}`);
  return MI.sae.saeFromSafetensors(new MI.SafetensorsBuffer(await res.arrayBuffer(), url), url, backend);
}

export interface Predictions {
  /** raw logits [T, V] of the sequence, row-major */
  logits: Float32Array;
  T: number;
  V: number;
  /** argmax token and its softmax probability per position */
  predicted: number[];
  prob: number[];
}

function predictionsFrom(logits: Float32Array, T: number, V: number): Predictions {
  const predicted: number[] = [],
    prob: number[] = [];
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    let best = 0;
    for (let v = 1; v < V; v++) if (row[v] > row[best]) best = v;
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(row[v] - row[best]);
    predicted.push(best);
    prob.push(1 / z);
  }
  return { logits, T, V, predicted, prob };
}

/** The `k` most probable next tokens at position t, most probable first, with their softmax probabilities. */
export function topTokens(p: Predictions, t: number, k: number): { token: number; prob: number }[] {
  const row = p.logits.subarray(t * p.V, (t + 1) * p.V);
  const lse = logProb(p, t, 0) - row[0]; // -log sum exp(row)
  return Array.from(row.keys())
    .sort((a, b) => row[b] - row[a] || a - b)
    .slice(0, k)
    .map((token) => ({ token, prob: Math.exp(row[token] + lse) }));
}

/**
 * A one-row batch of free text for the hooks that read a batch (ablation positions): the target at
 * each position is the text's own next token, none at the last. A language model has no task
 * targets; this only says where a next token exists and which one it is.
 */
export function textBatch(ids: readonly number[]): MI.tasks.TaskBatch {
  const T = ids.length;
  const targets = new Int32Array(T).fill(IGNORE);
  for (let t = 0; t + 1 < T; t++) targets[t] = ids[t + 1];
  return { inputs: Int32Array.from(ids), targets, labels: {}, shape: [1, T] };
}

/** log softmax(logits[t])[token]: how strongly position t predicts `token`. */
export function logProb(p: Predictions, t: number, token: number): number {
  const row = p.logits.subarray(t * p.V, (t + 1) * p.V);
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let z = 0;
  for (const v of row) z += Math.exp(v - max);
  return row[token] - max - Math.log(z);
}

/** Logits of one or more sequences [batch, T], optionally with hooks (e.g. an ablation). */
export async function runLogits(
  model: MI.MambaLM,
  rows: number[][],
  hooks: (m: MI.MambaLM) => MI.Hook[] = () => [],
): Promise<Float32Array> {
  return MI.tidyAsync(async () => {
    const logits = MI.noGrad(() => model.runWithHooks(rows, hooks(model)));
    return Float32Array.from(await logits.data());
  });
}

export async function predict(model: MI.MambaLM, ids: number[], hooks?: (m: MI.MambaLM) => MI.Hook[]): Promise<Predictions> {
  const logits = await runLogits(model, [ids], hooks);
  return predictionsFrom(logits, ids.length, model.config.vocab_size);
}

/** Scored accuracy of argmax predictions over a batch (logits [batch*T*V]). */
export function batchAccuracy(batch: MI.tasks.TaskBatch, logits: Float32Array, V: number): number {
  const n = batch.targets.length;
  const pred = new Int32Array(n);
  for (let i = 0; i < n; i++) pred[i] = predictionsFrom(logits.subarray(i * V, (i + 1) * V), 1, V).predicted[0];
  return MI.tasks.scoredAccuracy(batch, pred);
}

export type TemporalMode = 'hidden-attention' | 'influence';

/**
 * The hidden attention of one layer's mixer: mean |alpha[e,t,s]| over channels (from hook_delta,
 * B, C), every (t, s) in one pass of the engine's influence kernel on the page's backend, without
 * the per-channel alpha (the map is all the panel shows).
 */
export async function hiddenAttentionMap(model: MI.MambaLM, ids: number[], layer: number): Promise<number[][]> {
  return MI.temporal.hiddenAttentionMap(model, ids, layer);
}

/**
 * Per layer, the influence of each input embedding on that layer's residual stream,
 * || d resid_post[t] / d embedding[s] ||_F: one Jacobian for all layers (T * hidden rows, the
 * slow panel), so the page keeps it for the sequence while the user flips layers.
 */
export async function influenceMaps(model: MI.MambaLM, ids: number[]): Promise<number[][][]> {
  return (await MI.temporal.residualInfluence(model, ids)).layers;
}

export interface LatentHit {
  latent: number;
  value: number;
}

/** The `k` most active SAE latents at each position of `ids` (activations read at the SAE's hook). */
export async function topLatents(model: MI.MambaLM, sae: MI.sae.Sae, hook: string, ids: number[], k: number): Promise<LatentHit[][]> {
  const z = await MI.tidyAsync(async () => {
    const { cache } = MI.noGrad(() => model.runWithCache([ids], [hook]));
    const act = cache.get(hook)!;
    return Float32Array.from(await MI.noGrad(() => sae.encode(MI.reshape(act, [ids.length, -1]))).data());
  });
  const L = sae.latents;
  return ids.map((_, t) => {
    const row = Array.from(z.subarray(t * L, (t + 1) * L), (value, latent) => ({ latent, value }));
    return row
      .filter((h) => h.value > 0)
      .sort((a, b) => b.value - a.value)
      .slice(0, k);
  });
}

/** A site to ablate: a circuit of step 5, or channels the user typed. */
export interface AblationSite {
  hook: string;
  channels: number[];
  directions?: number[][];
  positions: Circuit['positions'];
}

/** Hooks that zero `site` at its positions of `batch` (positions may name the batch's labels). */
export function zeroAblation(site: AblationSite, batch: MI.tasks.TaskBatch): (m: MI.MambaLM) => MI.Hook[] {
  const mask = MI.patching.positionMask(site.positions, batch);
  return (m) =>
    MI.patching.siteHooks(m, { hook: site.hook, channels: site.channels, directions: site.directions }, mask, batch.shape, {
      kind: 'zero',
    });
}

/** Parses "3, 5-8, 12" into sorted distinct channel indices below `dim`. */
export function parseChannels(text: string, dim: number): number[] {
  const out = new Set<number>();
  for (const part of text.split(/[\s,]+/).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`channels: '${part}' is not a number or a range like 4-7`);
    const lo = Number(m[1]),
      hi = Number(m[2] ?? m[1]);
    if (hi < lo) throw new Error(`channels: range ${part} runs backwards`);
    if (hi >= dim) throw new Error(`channels: ${hi} is outside [0, ${dim})`);
    for (let c = lo; c <= hi; c++) out.add(c);
  }
  if (!out.size) throw new Error('channels: none given');
  return [...out].sort((a, b) => a - b);
}
