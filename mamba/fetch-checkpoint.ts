// Hugging Face checkpoints without a file system: a MambaLM from any TensorSource, and from a
// checkpoint folder served over HTTP (config.json + model.safetensors fetched with `fetch()`), so
// that a page can load the same checkpoints as mamba/pretrained.ts does in Node.
import * as mi from '../engine/index.ts';
import type { Backend, DType, Tensor } from '../engine/index.ts';
import {
  checkParameterBudget,
  expectedParameterShapes,
  parseConfig,
  validateCheckpoint,
  type MambaConfig,
  type ParseOptions,
} from './config.ts';
import { MambaLM } from './model.ts';
import { checkTokenizerFits, type TextTokenizer } from './text.ts';
import { Tokenizer } from './tokenizer.ts';
import { Checkpoint, INDEX_FILE, parseIndex, SafetensorsBuffer, SINGLE_FILE, type TensorSource } from './safetensors-format.ts';

export interface LoadOptions {
  /** default: the current backend */ backend?: Backend;
  /** default float32; float64 only on the CPU */ dtype?: DType;
  /**
   * Load weights that hold NaN or Inf (default false: such a weight is an error naming the tensor
   * and the first bad index), e.g. to inspect a diverged checkpoint.
   */
  allowNonFinite?: boolean;
  /**
   * The most bytes the parameters may take, checked from config.json before anything is read
   * (default: half of os.totalmem() in Node's loadPretrained, DEFAULT_BUDGET_BYTES elsewhere).
   */
  memoryBudgetBytes?: number;
}

/** The parameter budget where the machine's memory is unknown (a browser page): 4 GB. */
export const DEFAULT_BUDGET_BYTES = 4e9;

/** Throws unless `config`'s parameters fit `opts.memoryBudgetBytes` at `opts.dtype`; reads nothing. */
export function checkLoadBudget(config: MambaConfig, opts: LoadOptions, label: string, budgetWhat?: string): void {
  const budget = opts.memoryBudgetBytes ?? DEFAULT_BUDGET_BYTES;
  const what = budgetWhat ?? (opts.memoryBudgetBytes === undefined ? 'the default where memory is unknown' : 'memoryBudgetBytes');
  checkParameterBudget(config, opts.dtype === 'float64' ? 8 : 4, budget, `loadPretrained ${label}`, what);
}

/** The error for a weight holding NaN or Inf: names the checkpoint, the tensor and the first bad index. */
export function nonFiniteError(label: string, name: string, shape: readonly number[], bad: { index: number; value: number }): Error {
  return new Error(
    `loadPretrained ${label}: tensor "${name}" holds ${bad.value} at flat index ${bad.index} (of shape [${shape}]); non-finite weights are refused (allowNonFinite loads them for inspection)`,
  );
}

/**
 * The flat index and value of the first NaN or +-Inf in `data`, or null: one pass, no allocation
 * (x - x is 0 for every finite x and NaN for NaN and both infinities).
 */
export function firstNonFinite(data: ArrayLike<number>): { index: number; value: number } | null {
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    if (x - x !== 0) return { index: i, value: x };
  }
  return null;
}

/**
 * Validates `src` against `config` (and `tokenizer` against its vocabulary) and builds the model,
 * every parameter converted to `dtype` on `backend`, with `tokenizer` attached. `label` names the
 * checkpoint in errors. Does not close `src`.
 */
export async function modelFromTensors(
  config: MambaConfig,
  src: TensorSource,
  opts: LoadOptions,
  label: string,
  tokenizer: TextTokenizer | null = null,
): Promise<MambaLM> {
  if (tokenizer) checkTokenizerFits(tokenizer, config.vocab_size);
  const dtype = opts.dtype ?? 'float32';
  if (dtype === 'int32') throw new Error(`loadPretrained ${label}: dtype must be float32 or float64`);
  const backend = opts.backend ?? mi.getBackend();
  checkLoadBudget(config, opts, label);
  const params = new Map<string, Tensor>();
  try {
    validateCheckpoint(config, src);
    for (const [name, shape] of expectedParameterShapes(config)) {
      const rec = await src.read(name);
      if (rec.data instanceof Int32Array)
        throw new Error(`loadPretrained ${label}: parameter ${name} is stored as ${rec.dtype}, not a float`);
      const bad = opts.allowNonFinite ? null : firstNonFinite(rec.data);
      if (bad) throw nonFiniteError(label, name, shape, bad);
      params.set(name, mi.keep(mi.tensor(rec.data, shape, { dtype, backend })));
    }
  } catch (e) {
    for (const t of params.values()) t.dispose();
    throw e;
  }
  const model = new MambaLM(config, params);
  model.tokenizer = tokenizer;
  return model;
}

export interface FetchOptions extends LoadOptions, ParseOptions {
  /** default: globalThis.fetch */ fetch?: typeof fetch;
  /**
   * a tokenizer to attach as model.tokenizer: true for the folder's tokenizer.json, or a URL of one.
   * Default none (a probe for an absent file would log a 404 in the page's console).
   */
  tokenizer?: boolean | string;
}

/**
 * Loads the checkpoint folder at `url` (e.g. "/models/tiny/" or "https://host/tiny"): fetches
 * `config.json` and `model.safetensors` next to each other, or, where there is no single file
 * (404), `model.safetensors.index.json` and the shards its weight_map names; and a tokenizer.json
 * when asked (opts.tokenizer), attached as model.tokenizer.
 */
export async function fetchPretrained(url: string | URL, opts: FetchOptions = {}): Promise<MambaLM> {
  const get = opts.fetch ?? globalThis.fetch;
  const base = new URL(String(url).endsWith('/') ? String(url) : `${url}/`, (globalThis as { location?: { href: string } }).location?.href);
  const at = (file: string) => new URL(file, base).href;
  const configUrl = at('config.json');
  const weightsUrl = at(SINGLE_FILE);
  const [configRes, weightsRes] = await Promise.all([get(configUrl), get(weightsUrl)]);
  if (!configRes.ok) throw new Error(`fetchPretrained: ${configUrl} answered ${configRes.status} ${configRes.statusText}`);
  let json: unknown;
  try {
    json = JSON.parse(await configRes.text());
  } catch (e) {
    throw new Error(`config ${configUrl}: not valid JSON (${(e as Error).message})`);
  }
  const config = parseConfig(json, configUrl, opts);
  checkLoadBudget(config, opts, base.href); // before the weights' bytes are read
  // so that the model takes text (toTokens, ...)
  const tokenizer = opts.tokenizer
    ? await Tokenizer.fromUrl(typeof opts.tokenizer === 'string' ? new URL(opts.tokenizer, base).href : at('tokenizer.json'), {
        fetch: get,
      })
    : null;
  let src: TensorSource;
  if (weightsRes.ok) src = new SafetensorsBuffer(await weightsRes.arrayBuffer(), weightsUrl);
  else if (weightsRes.status === 404) src = await fetchShards(get, at, weightsUrl);
  else throw new Error(`fetchPretrained: ${weightsUrl} answered ${weightsRes.status} ${weightsRes.statusText}`);
  return modelFromTensors(config, src, opts, base.href, tokenizer);
}

/** The shards named by the folder's model.safetensors.index.json, fetched one after another. */
async function fetchShards(get: typeof fetch, at: (file: string) => string, weightsUrl: string): Promise<TensorSource> {
  const indexUrl = at(INDEX_FILE);
  const indexRes = await get(indexUrl);
  if (!indexRes.ok)
    throw new Error(
      `fetchPretrained: ${weightsUrl} answered 404 and ${indexUrl} ${indexRes.status} ${indexRes.statusText}: no weights found`,
    );
  const weightMap = parseIndex(await indexRes.text(), indexUrl);
  const shards = new Map<string, SafetensorsBuffer>();
  for (const shard of new Set(weightMap.values())) {
    const shardUrl = at(shard);
    const res = await get(shardUrl);
    if (!res.ok)
      throw new Error(`fetchPretrained: ${indexUrl} names shard ${shard}, but ${shardUrl} answered ${res.status} ${res.statusText}`);
    shards.set(shard, new SafetensorsBuffer(await res.arrayBuffer(), shardUrl));
  }
  const shardOf = new Map<string, SafetensorsBuffer>();
  for (const [name, shard] of weightMap) {
    const f = shards.get(shard)!;
    if (!f.has(name)) throw new Error(`checkpoint ${indexUrl}: weight_map puts "${name}" in shard "${shard}", which has no such tensor`);
    shardOf.set(name, f);
  }
  return new Checkpoint(indexUrl, shards, shardOf);
}
