// Hugging Face checkpoints without a file system: a MambaLM from any TensorSource, and from a
// checkpoint folder served over HTTP (config.json + model.safetensors fetched with `fetch()`), so
// that a page can load the same checkpoints as mamba/pretrained.ts does in Node.
import * as mi from '../engine/index.ts';
import type { Backend, DType, Tensor } from '../engine/index.ts';
import { expectedParameterShapes, parseConfig, validateCheckpoint, type MambaConfig, type ParseOptions } from './config.ts';
import { MambaLM } from './model.ts';
import { SafetensorsBuffer, type TensorSource } from './safetensors-format.ts';

export interface LoadOptions {
  /** default: the current backend */ backend?: Backend;
  /** default float32; float64 only on the CPU */ dtype?: DType;
}

/**
 * Validates `src` against `config` and builds the model, every parameter converted to `dtype` on
 * `backend`. `label` names the checkpoint in errors. Does not close `src`.
 */
export async function modelFromTensors(config: MambaConfig, src: TensorSource, opts: LoadOptions, label: string): Promise<MambaLM> {
  const dtype = opts.dtype ?? 'float32';
  if (dtype === 'int32') throw new Error(`loadPretrained ${label}: dtype must be float32 or float64`);
  const backend = opts.backend ?? mi.getBackend();
  const params = new Map<string, Tensor>();
  try {
    validateCheckpoint(config, src);
    for (const [name, shape] of expectedParameterShapes(config)) {
      const rec = await src.read(name);
      if (rec.data instanceof Int32Array)
        throw new Error(`loadPretrained ${label}: parameter ${name} is stored as ${rec.dtype}, not a float`);
      params.set(name, mi.keep(mi.tensor(rec.data, shape, { dtype, backend })));
    }
  } catch (e) {
    for (const t of params.values()) t.dispose();
    throw e;
  }
  return new MambaLM(config, params);
}

export interface FetchOptions extends LoadOptions, ParseOptions {
  /** default: globalThis.fetch */ fetch?: typeof fetch;
}

/**
 * Loads the checkpoint folder at `url` (e.g. "/models/tiny/" or "https://host/tiny"): fetches
 * `config.json` and `model.safetensors` next to each other. Sharded checkpoints
 * (model.safetensors.index.json) are not supported here; mamba/pretrained.ts reads them in Node.
 */
export async function fetchPretrained(url: string | URL, opts: FetchOptions = {}): Promise<MambaLM> {
  const get = opts.fetch ?? globalThis.fetch;
  const base = new URL(String(url).endsWith('/') ? String(url) : `${url}/`, (globalThis as { location?: { href: string } }).location?.href);
  const configUrl = new URL('config.json', base).href;
  const weightsUrl = new URL('model.safetensors', base).href;
  const [configRes, weightsRes] = await Promise.all([get(configUrl), get(weightsUrl)]);
  if (!configRes.ok) throw new Error(`fetchPretrained: ${configUrl} answered ${configRes.status} ${configRes.statusText}`);
  if (!weightsRes.ok) {
    throw new Error(
      `fetchPretrained: ${weightsUrl} answered ${weightsRes.status} ${weightsRes.statusText}` +
        (weightsRes.status === 404 ? ' (a sharded checkpoint cannot be fetched; only a single model.safetensors)' : ''),
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(await configRes.text());
  } catch (e) {
    throw new Error(`config ${configUrl}: not valid JSON (${(e as Error).message})`);
  }
  const config = parseConfig(json, configUrl, opts);
  const src = new SafetensorsBuffer(await weightsRes.arrayBuffer(), weightsUrl);
  return modelFromTensors(config, src, opts, base.href);
}
