// Hugging Face `MambaConfig` (config.json of the `*-hf` Mamba-1 checkpoints): fields, defaults,
// validation, and the parameter names and shapes a checkpoint of that config must hold.
// No static node: import: the browser bundle (scripts/build-browser.ts) includes this module, and
// readConfig/writeConfig load node:fs only when called.
import { writeTextAtomic } from './node-files.ts';
import type { TensorSource } from './safetensors-format.ts';

export interface MambaConfig {
  vocab_size: number;
  hidden_size: number;
  state_size: number;
  num_hidden_layers: number;
  layer_norm_epsilon: number;
  pad_token_id: number | null;
  bos_token_id: number | null;
  eos_token_id: number | null;
  expand: number;
  conv_kernel: number;
  use_bias: boolean;
  use_conv_bias: boolean;
  hidden_act: string;
  initializer_range: number;
  residual_in_fp32: boolean;
  /** Resolved: config.json's "auto" becomes ceil(hidden_size / 16), as transformers does. */
  time_step_rank: number;
  time_step_scale: number;
  time_step_min: number;
  time_step_max: number;
  time_step_init_scheme: string;
  time_step_floor: number;
  rescale_prenorm_residual: boolean;
  use_cache: boolean;
  use_mambapy: boolean;
  use_associative_scan: boolean;
  tie_word_embeddings: boolean;
  /** E, the inner width: expand * hidden_size unless config.json says otherwise. */
  intermediate_size: number;
  /** Every other config.json field (architectures, model_type, unknown ones...), kept to be written back. */
  extra: Record<string, unknown>;
}

type FieldKind = 'posint' | 'number' | 'bool' | 'string' | 'tokenid';

/** Fields we model, with their kinds. Defaults are transformers' MambaConfig defaults. */
const FIELDS: Record<Exclude<keyof MambaConfig, 'extra' | 'time_step_rank' | 'intermediate_size'>, FieldKind> = {
  vocab_size: 'posint',
  hidden_size: 'posint',
  state_size: 'posint',
  num_hidden_layers: 'posint',
  layer_norm_epsilon: 'number',
  pad_token_id: 'tokenid',
  bos_token_id: 'tokenid',
  eos_token_id: 'tokenid',
  expand: 'number',
  conv_kernel: 'posint',
  use_bias: 'bool',
  use_conv_bias: 'bool',
  hidden_act: 'string',
  initializer_range: 'number',
  residual_in_fp32: 'bool',
  time_step_scale: 'number',
  time_step_min: 'number',
  time_step_max: 'number',
  time_step_init_scheme: 'string',
  time_step_floor: 'number',
  rescale_prenorm_residual: 'bool',
  use_cache: 'bool',
  use_mambapy: 'bool',
  use_associative_scan: 'bool',
  tie_word_embeddings: 'bool',
};

const DEFAULTS = {
  vocab_size: 50280,
  hidden_size: 768,
  state_size: 16,
  num_hidden_layers: 32,
  layer_norm_epsilon: 1e-5,
  pad_token_id: 0,
  bos_token_id: 0,
  eos_token_id: 0,
  expand: 2,
  conv_kernel: 4,
  use_bias: false,
  use_conv_bias: true,
  hidden_act: 'silu',
  initializer_range: 0.1,
  residual_in_fp32: true,
  time_step_scale: 1.0,
  time_step_min: 0.001,
  time_step_max: 0.1,
  time_step_init_scheme: 'random',
  time_step_floor: 1e-4,
  rescale_prenorm_residual: false,
  use_cache: true,
  use_mambapy: false,
  use_associative_scan: true,
  tie_word_embeddings: true,
} satisfies Record<keyof typeof FIELDS, unknown>;

/**
 * Fields config.json must state. They fix every tensor shape; silently falling back to the
 * mamba-130m defaults would build a model of the wrong size and fail later, far from the cause.
 */
export const REQUIRED_FIELDS = ['vocab_size', 'hidden_size', 'num_hidden_layers', 'state_size'] as const;

/** Generic transformers PretrainedConfig fields: kept in `extra` without a warning. */
const GENERIC_FIELDS = new Set([
  'architectures',
  'model_type',
  'transformers_version',
  'dtype',
  'torch_dtype',
  '_name_or_path',
  'name_or_path',
  'is_encoder_decoder',
  'output_hidden_states',
  'output_attentions',
  'return_dict',
  'chunk_size_feed_forward',
  'id2label',
  'label2id',
  'problem_type',
  'tokenizer_class',
  'task_specific_params',
  'finetuning_task',
  'prefix',
  'sep_token_id',
  'decoder_start_token_id',
  'max_length',
  'num_labels',
  '_attn_implementation_autoset',
  'auto_map',
]);

export interface ParseOptions {
  /** Receives one message listing every unknown field (default: console.warn). */
  warn?: (message: string) => void;
}

/** A full config from overrides of the defaults (required fields included), e.g. for tests and training. */
export function makeConfig(fields: Partial<Omit<MambaConfig, 'extra'>> & Pick<MambaConfig, (typeof REQUIRED_FIELDS)[number]>): MambaConfig {
  return parseConfig({ ...fields }, '<makeConfig>', { warn: () => undefined });
}

export function parseConfig(json: unknown, source: string, options: ParseOptions = {}): MambaConfig {
  const where = `config ${source}`;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${where}: not a JSON object`);
  const raw = json as Record<string, unknown>;
  if (raw.hidden_size === undefined && raw.d_model !== undefined) {
    throw new Error(
      `${where}: this is a state-spaces mamba_ssm config (d_model, n_layer); use the Hugging Face "-hf" checkpoint's config.json`,
    );
  }
  for (const field of REQUIRED_FIELDS) {
    if (raw[field] === undefined) throw new Error(`${where}: missing required field "${field}"`);
  }

  const config: Record<string, unknown> = {};
  for (const [field, kind] of Object.entries(FIELDS) as [keyof typeof FIELDS, FieldKind][]) {
    const value = raw[field] === undefined ? DEFAULTS[field] : raw[field];
    checkKind(value, kind, `${where}: field "${field}"`);
    config[field] = value;
  }
  const hidden = config.hidden_size as number;
  config.time_step_rank = resolveRank(raw.time_step_rank, hidden, where);
  // transformers sets intermediate_size = int(expand * hidden_size); a stated value wins, as kwargs do there.
  const intermediate = raw.intermediate_size ?? Math.floor((config.expand as number) * hidden);
  checkKind(intermediate, 'posint', `${where}: field "intermediate_size"`);
  config.intermediate_size = intermediate;

  checkRanges(config as unknown as MambaConfig, where);

  const extra: Record<string, unknown> = {};
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    if (key in FIELDS || key === 'time_step_rank' || key === 'intermediate_size') continue;
    extra[key] = value;
    if (!GENERIC_FIELDS.has(key)) unknown.push(key);
  }
  if (unknown.length) {
    (options.warn ?? console.warn)(`${where}: unknown field(s) kept as they are: ${unknown.sort().join(', ')}`);
  }
  config.extra = extra;
  return config as unknown as MambaConfig;
}

/**
 * Upper bounds on the size fields: far above any released Mamba (mamba-2.8b: 64 layers, hidden
 * 2560, vocab 50280) yet low enough that a typo (1e9 layers) is caught here, in microseconds,
 * rather than by an allocation that runs for a minute and takes the machine's memory.
 */
export const SIZE_BOUNDS = {
  num_hidden_layers: 4096,
  hidden_size: 65536,
  intermediate_size: 262144,
  state_size: 4096,
  vocab_size: 1 << 24,
  conv_kernel: 256,
  time_step_rank: 65536,
} as const;

/** The activations this model computes: transformers' "silu" and its alias "swish". */
const SUPPORTED_ACTIVATIONS = new Set(['silu', 'swish']);

// Bounds and the hyper-parameters the computation (or the initialisation) depends on; the kinds
// were checked already. A wrong value here would not fail later, it would compute something else.
function checkRanges(c: MambaConfig, where: string): void {
  for (const [field, bound] of Object.entries(SIZE_BOUNDS) as [keyof typeof SIZE_BOUNDS, number][]) {
    if (c[field] > bound) {
      throw new Error(
        `${where}: field "${field}" is ${c[field]}, above the bound ${bound} (the parameters alone would need ${formatBytes(parameterCount(c) * 4)} as float32)`,
      );
    }
  }
  if (!SUPPORTED_ACTIVATIONS.has(c.hidden_act)) {
    throw new Error(`${where}: field "hidden_act" is ${JSON.stringify(c.hidden_act)}; this model computes SiLU ("silu" or "swish") only`);
  }
  const positive = ['layer_norm_epsilon', 'expand', 'time_step_min', 'time_step_max'] as const;
  for (const field of positive) {
    if (!(c[field] > 0)) throw new Error(`${where}: field "${field}" must be > 0, found ${c[field]}`);
  }
  for (const field of ['initializer_range', 'time_step_floor', 'time_step_scale'] as const) {
    if (!(c[field] >= 0)) throw new Error(`${where}: field "${field}" must be >= 0, found ${c[field]}`);
  }
  if (c.time_step_min > c.time_step_max) {
    throw new Error(`${where}: field "time_step_min" (${c.time_step_min}) is above "time_step_max" (${c.time_step_max})`);
  }
  if (c.time_step_init_scheme !== 'random' && c.time_step_init_scheme !== 'constant') {
    throw new Error(
      `${where}: field "time_step_init_scheme" must be "random" or "constant", found ${JSON.stringify(c.time_step_init_scheme)}`,
    );
  }
}

/** How many numbers the parameters of a model of `config` hold: computed from the sizes, allocating nothing. */
export function parameterCount(
  c: Pick<
    MambaConfig,
    | 'vocab_size'
    | 'hidden_size'
    | 'intermediate_size'
    | 'state_size'
    | 'time_step_rank'
    | 'conv_kernel'
    | 'num_hidden_layers'
    | 'use_bias'
    | 'use_conv_bias'
    | 'tie_word_embeddings'
  >,
): number {
  const { vocab_size: V, hidden_size: d, intermediate_size: E, state_size: N, time_step_rank: R, conv_kernel: K } = c;
  const perLayer =
    d + // norm
    2 * E * d + // in_proj
    (c.use_bias ? 2 * E : 0) +
    E * K + // conv1d
    (c.use_conv_bias ? E : 0) +
    (R + 2 * N) * E + // x_proj
    E * R + // dt_proj weight
    E + // dt_proj bias
    E * N + // A_log
    E + // D
    d * E + // out_proj
    (c.use_bias ? d : 0);
  return V * d + c.num_hidden_layers * perLayer + d + (c.tie_word_embeddings ? 0 : V * d);
}

/**
 * Throws, before anything is read or allocated, when the parameters of `config` at
 * `bytesPerNumber` (4 for float32, 8 for float64) would need more than `budgetBytes`. The message
 * names the fields that make up the size and the bytes; `budgetWhat` says where the budget comes from.
 */
export function checkParameterBudget(
  config: MambaConfig,
  bytesPerNumber: number,
  budgetBytes: number,
  where: string,
  budgetWhat: string,
): void {
  const bytes = parameterCount(config) * bytesPerNumber;
  if (bytes <= budgetBytes) return;
  const layer =
    (parameterCount({ ...config, num_hidden_layers: 1 }) - parameterCount({ ...config, num_hidden_layers: 0 })) * bytesPerNumber;
  throw new Error(
    `${where}: the parameters would need ${formatBytes(bytes)} (num_hidden_layers ${config.num_hidden_layers} x ${formatBytes(layer)} per layer with hidden_size ${config.hidden_size}, intermediate_size ${config.intermediate_size}, state_size ${config.state_size}; vocab_size ${config.vocab_size} x hidden_size embeddings), over the budget of ${formatBytes(budgetBytes)} (${budgetWhat})`,
  );
}

/** Bytes for a reader and exactly: "1.23 GB (1234567890 bytes)". */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let v = bytes,
    u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return u === 0 ? `${bytes} bytes` : `${v.toFixed(2)} ${units[u]} (${bytes} bytes)`;
}

function resolveRank(value: unknown, hidden: number, where: string): number {
  if (value === undefined || value === 'auto') return Math.ceil(hidden / 16);
  checkKind(value, 'posint', `${where}: field "time_step_rank" (a positive integer or "auto")`);
  return value as number;
}

function checkKind(value: unknown, kind: FieldKind, what: string): void {
  const ok =
    kind === 'posint'
      ? Number.isSafeInteger(value) && (value as number) > 0
      : kind === 'number'
        ? typeof value === 'number' && Number.isFinite(value)
        : kind === 'bool'
          ? typeof value === 'boolean'
          : kind === 'string'
            ? typeof value === 'string'
            : value === null || (Number.isSafeInteger(value) && (value as number) >= 0);
  if (!ok) {
    const expected = {
      posint: 'a positive integer',
      number: 'a finite number',
      bool: 'a boolean',
      string: 'a string',
      tokenid: 'a token id or null',
    }[kind];
    // String(): JSON.stringify would print Infinity and NaN as null
    throw new Error(`${what} must be ${expected}, found ${typeof value === 'number' ? String(value) : JSON.stringify(value)}`);
  }
}

/** Reads `config.json` from a checkpoint folder, or the named JSON file. */
export async function readConfig(path: string, options: ParseOptions = {}): Promise<MambaConfig> {
  const { readFile, stat } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const file = (await stat(path)).isDirectory() ? join(path, 'config.json') : path;
  const text = await readFile(file, 'utf-8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`config ${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(json, file, options);
}

/** The config as config.json holds it: known fields, then the kept extras, keys sorted like transformers writes them. */
export function configToJSON(config: MambaConfig): Record<string, unknown> {
  const { extra, ...known } = config;
  const merged: Record<string, unknown> = { ...extra, ...known };
  return Object.fromEntries(
    Object.keys(merged)
      .sort()
      .map((k) => [k, merged[k]]),
  );
}

/** Writes `dir/config.json` via a temporary file and a rename. */
export async function writeConfig(dir: string, config: MambaConfig): Promise<void> {
  const { join } = await import('node:path');
  await writeTextAtomic(join(dir, 'config.json'), `${JSON.stringify(configToJSON(config), null, 2)}\n`);
}

// ---------------------------------------------------------------------------------------------
// Parameters

/** A layer's parameters (transformers' MambaBlock: its RMSNorm, then MambaMixer's modules), named relative to layerPrefix(i). */
export type LayerParameter =
  | 'norm.weight'
  | 'mixer.in_proj.weight'
  | 'mixer.in_proj.bias'
  | 'mixer.conv1d.weight'
  | 'mixer.conv1d.bias'
  | 'mixer.x_proj.weight'
  | 'mixer.dt_proj.weight'
  | 'mixer.dt_proj.bias'
  | 'mixer.A_log'
  | 'mixer.D'
  | 'mixer.out_proj.weight'
  | 'mixer.out_proj.bias';

/** Where layer i's parameters are: `backbone.layers.{i}.` + a LayerParameter. */
export function layerPrefix(i: number): string {
  return `backbone.layers.${i}.`;
}

/** The parameters every layer holds, and their shapes; the in_proj/out_proj and conv1d biases only when the config has them. */
export function layerParameterShapes(config: MambaConfig): Map<LayerParameter, number[]> {
  const { hidden_size: d, intermediate_size: E, state_size: N, time_step_rank: R, conv_kernel: K } = config;
  const shapes = new Map<LayerParameter, number[]>();
  shapes.set('norm.weight', [d]);
  shapes.set('mixer.in_proj.weight', [2 * E, d]);
  if (config.use_bias) shapes.set('mixer.in_proj.bias', [2 * E]);
  shapes.set('mixer.conv1d.weight', [E, 1, K]);
  if (config.use_conv_bias) shapes.set('mixer.conv1d.bias', [E]);
  shapes.set('mixer.x_proj.weight', [R + 2 * N, E]);
  shapes.set('mixer.dt_proj.weight', [E, R]);
  shapes.set('mixer.dt_proj.bias', [E]); // dt_proj always has a bias: it sets the initial step size
  shapes.set('mixer.A_log', [E, N]);
  shapes.set('mixer.D', [E]);
  shapes.set('mixer.out_proj.weight', [d, E]);
  if (config.use_bias) shapes.set('mixer.out_proj.bias', [d]);
  return shapes;
}

/** Hugging Face parameter name → shape, for every tensor a checkpoint of `config` holds. */
export function expectedParameterShapes(config: MambaConfig): Map<string, number[]> {
  const { vocab_size: V, hidden_size: d } = config;
  const shapes = new Map<string, number[]>();
  shapes.set('backbone.embeddings.weight', [V, d]);
  const layer = layerParameterShapes(config);
  for (let i = 0; i < config.num_hidden_layers; i++) {
    for (const [name, shape] of layer) shapes.set(layerPrefix(i) + name, [...shape]);
  }
  shapes.set('backbone.norm_f.weight', [d]);
  if (!config.tie_word_embeddings) shapes.set('lm_head.weight', [V, d]);
  return shapes;
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/**
 * Checks a checkpoint against `config`: throws one error listing every missing, unexpected,
 * mis-shaped or non-float tensor by name. With tied embeddings a stored `lm_head.weight` of the
 * right shape is accepted (some exports write the tied copy); it is not used.
 */
export function validateCheckpoint(config: MambaConfig, source: TensorSource): void {
  const { path, dir } = source as { path?: string; dir?: string };
  const label = `checkpoint ${path ?? dir ?? ''}`.trim();
  const expected = expectedParameterShapes(config);
  const problems: string[] = [];
  for (const [name, shape] of expected) {
    if (!source.has(name)) {
      problems.push(`missing "${name}" (expected shape [${shape}])`);
      continue;
    }
    const found = source.entry(name);
    if (found.shape.length !== shape.length || found.shape.some((s, i) => s !== shape[i])) {
      problems.push(`"${name}" has shape [${found.shape}], expected [${shape}]`);
    }
    if (!FLOAT_DTYPES.has(found.dtype)) problems.push(`"${name}" has dtype ${found.dtype}, expected a float (F32, F16, BF16 or F64)`);
  }
  for (const name of source.names) {
    if (expected.has(name)) continue;
    const found = source.entry(name);
    if (name === 'lm_head.weight' && config.tie_word_embeddings) {
      const [V, d] = [config.vocab_size, config.hidden_size];
      if (found.shape.length === 2 && found.shape[0] === V && found.shape[1] === d) continue;
    }
    problems.push(`unexpected "${name}" (shape [${found.shape}])`);
  }
  if (problems.length) {
    // One line (CLIs print errors as one line); the first problems are the ones a reader acts on.
    const shown = problems.slice(0, 8).join('; ');
    const more = problems.length > 8 ? `; ... and ${problems.length - 8} more` : '';
    throw new Error(`${label} does not match the config (${problems.length} problem(s)): ${shown}${more}`);
  }
}
