// SAEs in SAELens's folder layout (Node), so that an SAE trained here loads in SAELens
// (`SAE.load_from_disk(dir)`) and one trained there loads here:
//   cfg.json                 architecture ("standard" = ReLU, "topk", "jumprelu"), d_in, d_sae, dtype,
//                            device, apply_b_dec_to_input, normalize_activations, k (TopK), and
//                            metadata {model_name, hook_name, hook_head_index, context_size,
//                            prepend_bos, sae_lens_version}
//   sae_weights.safetensors  W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in],
//                            threshold [d_sae] (JumpReLU)
//   sparsity.safetensors     optional: `sparsity` [d_sae], log10 of each latent's firing frequency
//   activation_scaler.json   read, never written: {"scaling_factor": s} from a SAELens training run
// SAELens's inference SAE applies no activation scaling of its own (its ActivationScaler lives in
// training), so on export this project's inputScale is folded into the weights as SAELens's
// fold_activation_norm_scaling_factor does (W_enc * s, W_dec / s, b_dec / s) and the cfg says
// normalize_activations "none": SAELens then computes the same latents from raw activations.
// Folding rounds in float32, so a trained SAE's export matches it to rounding, not bit for bit; an
// SAE loaded from a folder (inputScale 1) writes back and reloads bit for bit.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as mi from '../../engine/index.ts';
import { openSafetensors, writeSafetensors, type TensorToWrite } from '../../mamba/safetensors.ts';
import { ARCHITECTURE, Sae, SAE_PARAM_NAMES, type SaeKind, type SaeParams } from './sae.ts';

export const SAELENS_CFG = 'cfg.json';
export const SAELENS_WEIGHTS = 'sae_weights.safetensors';
export const SAELENS_SPARSITY = 'sparsity.safetensors';
export const SAELENS_SCALER = 'activation_scaler.json';
/** the SAELens release whose folder layout saveSaeLens follows (cfg.json's metadata.sae_lens_version) */
export const SAELENS_LAYOUT_VERSION = '6.0.0';

/** What cfg.json's metadata says about where the SAE's inputs come from. */
export interface SaeLensMeta {
  /** the model the activations come from (a checkpoint name or this project's model label) */
  modelName: string;
  /** the hook point, in this project's names (mamba/hooks.ts) */
  hookName: string;
  hookHeadIndex?: number | null;
  /** tokens per training sequence */
  contextSize: number;
  prependBos?: boolean;
  /** per latent, log10(firing frequency + 1e-10): written as sparsity.safetensors */
  log10Density?: ArrayLike<number>;
}

/** cfg.json as SAELens writes it (the fields read here; others are kept in `raw`). */
export interface SaeLensConfig {
  architecture: 'standard' | 'topk' | 'jumprelu';
  d_in: number;
  d_sae: number;
  k?: number;
  dtype: string;
  device: string;
  apply_b_dec_to_input: boolean;
  normalize_activations: 'none' | 'expected_average_only_in';
  metadata: {
    model_name?: string;
    hook_name?: string;
    hook_head_index?: number | null;
    context_size?: number;
    prepend_bos?: boolean;
    sae_lens_version?: string;
    [key: string]: unknown;
  };
  raw: Record<string, unknown>;
}

/** Writes `sae` as a SAELens folder at `dir` (built under a temporary name, then renamed into place). */
export async function saveSaeLens(sae: Sae, dir: string, meta: SaeLensMeta): Promise<void> {
  const e = await sae.exportParams({ foldScale: true });
  const cfg = {
    architecture: ARCHITECTURE[sae.config.kind],
    d_in: sae.d,
    d_sae: sae.latents,
    ...(sae.config.kind === 'topk' ? { k: sae.config.k } : {}),
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: true,
    normalize_activations: 'none',
    reshape_activations: 'none',
    metadata: {
      model_name: meta.modelName,
      hook_name: meta.hookName,
      hook_head_index: meta.hookHeadIndex ?? null,
      context_size: meta.contextSize,
      prepend_bos: meta.prependBos ?? false,
      sae_lens_version: SAELENS_LAYOUT_VERSION,
    },
  };
  const weights: TensorToWrite[] = SAE_PARAM_NAMES.map((name) => ({
    name,
    dtype: 'F32',
    shape: e.tensors[name].shape,
    data: e.tensors[name].data,
  }));
  if (e.tensors.threshold)
    weights.push({ name: 'threshold', dtype: 'F32', shape: e.tensors.threshold.shape, data: e.tensors.threshold.data });
  if (meta.log10Density && meta.log10Density.length !== sae.latents) {
    throw new Error(`saveSaeLens ${dir}: log10Density has ${meta.log10Density.length} values for ${sae.latents} latents`);
  }
  const tmp = `${dir}.tmp-${process.pid}`;
  await rm(tmp, { recursive: true, force: true });
  try {
    await mkdir(tmp, { recursive: true });
    await writeFile(join(tmp, SAELENS_CFG), `${JSON.stringify(cfg, null, 2)}\n`, 'utf-8');
    await writeSafetensors(join(tmp, SAELENS_WEIGHTS), weights);
    if (meta.log10Density) {
      await writeSafetensors(join(tmp, SAELENS_SPARSITY), [
        { name: 'sparsity', dtype: 'F32', shape: [sae.latents], data: Float32Array.from(meta.log10Density) },
      ]);
    }
    // a folder cannot be renamed onto a non-empty one: move the old one aside first
    const old = `${dir}.old-${process.pid}`;
    const had = existsSync(dir);
    if (had) await rename(dir, old);
    await rename(tmp, dir);
    if (had) await rm(old, { recursive: true, force: true });
  } catch (err) {
    await rm(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Reads and checks `dir`/cfg.json; every error is one line naming the file and the field. */
export async function readSaeLensConfig(dir: string): Promise<SaeLensConfig> {
  const file = join(dir, SAELENS_CFG);
  if (!existsSync(file)) throw new Error(`loadSaeLens: ${file} not found (a SAELens folder holds ${SAELENS_CFG} and ${SAELENS_WEIGHTS})`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(await readFile(file, 'utf-8'));
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`${file}: not a JSON object`);
  const bad = (field: string, why: string): never => {
    throw new Error(`${file}: ${field} ${why}`);
  };
  const positiveInt = (field: string, v: unknown): number =>
    Number.isInteger(v) && (v as number) >= 1 ? (v as number) : bad(field, `must be a positive integer, got ${JSON.stringify(v)}`);
  let architecture = raw.architecture;
  if (typeof architecture !== 'string') bad('architecture', `must be a string, got ${JSON.stringify(architecture)}`);
  // SAELens 4 wrote TopK as architecture "standard" with activation_fn_str "topk" and its k in activation_fn_kwargs
  const legacyK = (raw.activation_fn_kwargs as { k?: unknown } | undefined)?.k;
  if (architecture === 'standard' && raw.activation_fn_str === 'topk') architecture = 'topk';
  if (architecture !== 'standard' && architecture !== 'topk' && architecture !== 'jumprelu') {
    bad('architecture', `'${architecture}' is not supported (standard, topk, jumprelu)`);
  }
  const d_in = positiveInt('d_in', raw.d_in);
  const d_sae = positiveInt('d_sae', raw.d_sae);
  let k: number | undefined;
  if (architecture === 'topk') {
    k = positiveInt('k', raw.k ?? legacyK);
    if (k > d_sae) bad('k', `${k} exceeds d_sae ${d_sae}`);
  }
  for (const field of ['dtype', 'device'] as const) {
    if (raw[field] !== undefined && typeof raw[field] !== 'string') bad(field, `must be a string, got ${JSON.stringify(raw[field])}`);
  }
  const applyBDec = raw.apply_b_dec_to_input ?? true;
  if (typeof applyBDec !== 'boolean') bad('apply_b_dec_to_input', `must be true or false, got ${JSON.stringify(applyBDec)}`);
  const norm = raw.normalize_activations ?? 'none';
  if (norm !== 'none' && norm !== 'expected_average_only_in') {
    // per-token normalisations change the map itself; this project's Sae has no place for them
    bad('normalize_activations', `'${norm}' is not supported (none, expected_average_only_in)`);
  }
  for (const field of ['rescale_acts_by_decoder_norm', 'finetuning_scaling_factor'] as const) {
    if (raw[field] === true) bad(field, 'true is not supported');
  }
  const reshape = raw.reshape_activations ?? 'none';
  if (reshape !== 'none') bad('reshape_activations', `'${reshape}' is not supported (none)`);
  const metadata = raw.metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null || Array.isArray(metadata)) bad('metadata', 'must be an object');
  return {
    architecture: architecture as SaeLensConfig['architecture'],
    d_in,
    d_sae,
    ...(k === undefined ? {} : { k }),
    dtype: (raw.dtype as string | undefined) ?? 'float32',
    device: (raw.device as string | undefined) ?? 'cpu',
    apply_b_dec_to_input: applyBDec as boolean,
    normalize_activations: norm as SaeLensConfig['normalize_activations'],
    metadata: metadata as SaeLensConfig['metadata'],
    raw,
  };
}

/**
 * A Sae from a SAELens folder (ReLU, TopK, JumpReLU), computing SAELens's latents from raw
 * activations. normalize_activations "expected_average_only_in" with an activation_scaler.json
 * becomes the Sae's inputScale; without one the activations are used as they are, as SAELens's
 * inference SAE does. apply_b_dec_to_input false is folded into the encoder bias
 * (b_enc + b_dec W_enc, in float64), since this project's Sae always subtracts b_dec first.
 */
export async function loadSaeLens(dir: string, opts: { backend?: mi.Backend } = {}): Promise<Sae> {
  const cfg = await readSaeLensConfig(dir);
  const kind: SaeKind = cfg.architecture === 'standard' ? 'relu' : cfg.architecture;
  const file = join(dir, SAELENS_WEIGHTS);
  if (!existsSync(file)) throw new Error(`loadSaeLens: ${file} not found`);
  const want: Record<string, number[]> = {
    W_enc: [cfg.d_in, cfg.d_sae],
    b_enc: [cfg.d_sae],
    W_dec: [cfg.d_sae, cfg.d_in],
    b_dec: [cfg.d_in],
    threshold: [cfg.d_sae],
  };
  const arrays: Record<string, Float32Array> = {};
  const f = await openSafetensors(file);
  try {
    const names = kind === 'jumprelu' ? [...SAE_PARAM_NAMES, 'threshold'] : [...SAE_PARAM_NAMES];
    for (const name of names) {
      // SAELens's JumpReLU training SAE keeps log_threshold; its saved form is threshold
      const stored = name === 'threshold' && !f.has(name) && f.has('log_threshold') ? 'log_threshold' : name;
      if (!f.has(stored)) throw new Error(`${file}: tensor ${name} is missing (has ${f.names.join(', ')})`);
      const rec = await f.read(stored);
      if (rec.shape.join() !== want[name].join()) {
        throw new Error(
          `${file}: ${stored} has shape [${rec.shape}], expected [${want[name]}] from ${SAELENS_CFG} (d_in ${cfg.d_in}, d_sae ${cfg.d_sae})`,
        );
      }
      if (!(rec.data instanceof Float32Array || rec.data instanceof Float64Array)) {
        throw new Error(`${file}: ${stored} is ${rec.dtype}, expected a float dtype`);
      }
      arrays[name] = stored === 'log_threshold' ? Float32Array.from(rec.data, Math.exp) : Float32Array.from(rec.data);
    }
  } finally {
    await f.close();
  }
  if (!cfg.apply_b_dec_to_input) arrays.b_enc = foldDecoderBias(arrays.b_enc, arrays.b_dec, arrays.W_enc, cfg.d_in, cfg.d_sae);
  const inputScale = cfg.normalize_activations === 'expected_average_only_in' ? await readScaler(dir) : 1;
  const params = {} as SaeParams;
  for (const [name, data] of Object.entries(arrays)) {
    params[name as keyof SaeParams] = mi.keep(mi.tensor(data, want[name], { backend: opts.backend }));
  }
  return new Sae({ kind, d: cfg.d_in, latents: cfg.d_sae, k: cfg.k, inputScale }, params);
}

/** sparsity.safetensors' log10 feature density, or undefined when the folder has none. */
export async function readSaeLensSparsity(dir: string): Promise<Float32Array | undefined> {
  const file = join(dir, SAELENS_SPARSITY);
  if (!existsSync(file)) return undefined;
  const f = await openSafetensors(file);
  try {
    if (!f.has('sparsity')) throw new Error(`${file}: tensor sparsity is missing`);
    return Float32Array.from((await f.read('sparsity')).data as Float32Array);
  } finally {
    await f.close();
  }
}

/**
 * Step 3's held-out metrics under SAELens's names and grouping (its run_evals output), so a reader
 * of saes.json can compare with SAELens's numbers. ce_loss_score and kl_div_score are SAELens's
 * (zero-ablation reference); the mean-ablation scores stay under this project's names.
 */
export function saelensEvalMetrics(m: {
  l0: number;
  explainedVariance: number;
  ceLossScoreZero: number;
  klDivScore: number;
  deadFraction: number;
  latents: number;
}): {
  sparsity: { l0: number; dead_features: number; dead_fraction: number };
  reconstruction_quality: { explained_variance: number };
  model_performance_preservation: { ce_loss_score: number };
  model_behavior_preservation: { kl_div_score: number };
} {
  return {
    sparsity: { l0: m.l0, dead_features: Math.round(m.deadFraction * m.latents), dead_fraction: m.deadFraction },
    reconstruction_quality: { explained_variance: m.explainedVariance },
    model_performance_preservation: { ce_loss_score: m.ceLossScoreZero },
    model_behavior_preservation: { kl_div_score: m.klDivScore },
  };
}

/** b_enc + b_dec W_enc: the encoder bias under which subtracting b_dec first gives the same pre-activations. */
function foldDecoderBias(bEnc: Float32Array, bDec: Float32Array, wEnc: Float32Array, d: number, latents: number): Float32Array {
  const out = new Float32Array(latents);
  for (let j = 0; j < latents; j++) {
    let s = bEnc[j];
    for (let i = 0; i < d; i++) s += bDec[i] * wEnc[i * latents + j];
    out[j] = s;
  }
  return out;
}

async function readScaler(dir: string): Promise<number> {
  const file = join(dir, SAELENS_SCALER);
  if (!existsSync(file)) return 1;
  let s: unknown;
  try {
    s = (JSON.parse(await readFile(file, 'utf-8')) as { scaling_factor?: unknown }).scaling_factor;
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (s === null || s === undefined) return 1;
  if (typeof s !== 'number' || !(s > 0)) throw new Error(`${file}: scaling_factor must be a positive number, got ${JSON.stringify(s)}`);
  return s;
}
