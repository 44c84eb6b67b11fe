// Hugging Face checkpoint folders <-> MambaLM: config.json + model.safetensors (or shards), the
// layout save_pretrained writes. A tied head is not stored (no lm_head.weight), as transformers does.
// loadPretrained also takes a hub repository id, found in the local hub cache (mamba/hub.ts), or
// an http(s) URL of a checkpoint folder (mamba/fetch-checkpoint.ts).
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { expectedParameterShapes, readConfig, validateCheckpoint, writeConfig, type MambaConfig } from './config.ts';
import {
  checkLoadBudget,
  fetchPretrained,
  firstNonFinite,
  modelFromTensors,
  nonFiniteError,
  type LoadOptions,
} from './fetch-checkpoint.ts';
import { isUrl, resolveCheckpoint, type ResolveOptions } from './hub.ts';
import type { MambaLM } from './model.ts';
import { Tokenizer } from './tokenizer.ts';
import { openCheckpoint, SINGLE_FILE, writeSafetensors, type TensorToWrite } from './safetensors.ts';

export type { LoadOptions } from './fetch-checkpoint.ts';

export type PretrainedOptions = LoadOptions &
  Pick<ResolveOptions, 'revision'> & {
    /** a tokenizer.json to attach (default: the checkpoint's own, when it has one) */
    tokenizer?: string;
  };

/**
 * Loads a checkpoint: a folder, a hub repository id ("state-spaces/mamba-130m-hf", from the local
 * hub cache; `revision` a branch, tag or commit, default main) or an http(s) URL of a folder; every
 * parameter converted to `dtype` on `backend`.
 */
export async function loadPretrained(nameOrDir: string, opts: PretrainedOptions = {}): Promise<MambaLM> {
  // The parameters may take half of this machine's memory: loading copies each tensor once more
  // on its way in, and the process needs room for activations besides.
  const budget = opts.memoryBudgetBytes ?? Math.floor(totalmem() / 2);
  const what = opts.memoryBudgetBytes === undefined ? "half of this machine's memory" : 'memoryBudgetBytes';
  opts = { ...opts, memoryBudgetBytes: budget };
  if (isUrl(nameOrDir)) return fetchPretrained(nameOrDir, opts);
  const { dir } = resolveCheckpoint(nameOrDir, { revision: opts.revision });
  const config = await readConfig(dir);
  checkLoadBudget(config, opts, dir, what); // before a byte of the weights is read
  const tokenizerPath = opts.tokenizer ?? join(dir, 'tokenizer.json');
  const tokenizer =
    opts.tokenizer || existsSync(tokenizerPath) ? await Tokenizer.fromFile(tokenizerPath, configBeside(tokenizerPath)) : null;
  const src = await openCheckpoint(dir);
  try {
    return await modelFromTensors(config, src, opts, dir, tokenizer);
  } finally {
    await src.close();
  }
}

/**
 * Every check loadPretrained makes on a checkpoint folder (or hub id), without building a model:
 * config.json's fields and bounds, the parameter budget, the safetensors structure, names, shapes
 * and dtypes, and (unless allowNonFinite) finite weights, read one tensor at a time. For a CLI to
 * refuse a bad --model before it writes anything; throws the error loadPretrained would.
 */
export async function validatePretrained(
  nameOrDir: string,
  opts: Pick<PretrainedOptions, 'revision' | 'allowNonFinite' | 'memoryBudgetBytes'> = {},
): Promise<void> {
  const { dir } = resolveCheckpoint(nameOrDir, { revision: opts.revision });
  const config = await readConfig(dir);
  const budgetWhat = opts.memoryBudgetBytes === undefined ? "half of this machine's memory" : 'memoryBudgetBytes';
  checkLoadBudget(config, { ...opts, memoryBudgetBytes: opts.memoryBudgetBytes ?? Math.floor(totalmem() / 2) }, dir, budgetWhat);
  const src = await openCheckpoint(dir);
  try {
    validateCheckpoint(config, src);
    if (opts.allowNonFinite) return;
    for (const name of expectedParameterShapes(config).keys()) {
      const rec = await src.read(name);
      const bad = firstNonFinite(rec.data);
      if (bad) throw nonFiniteError(dir, name, rec.shape, bad);
    }
  } finally {
    await src.close();
  }
}

/** tokenizer_config.json beside a tokenizer.json, when there is one (special tokens, padding side). */
function configBeside(tokenizerPath: string): string | undefined {
  const p = join(dirname(tokenizerPath), 'tokenizer_config.json');
  return existsSync(p) ? p : undefined;
}

/**
 * Writes config.json and model.safetensors into `dir` (created if needed), each via a temporary
 * file and a rename. Parameters are stored in their dtype (F32, or F64 for a float64 model).
 */
export async function savePretrained(model: MambaLM, dir: string, config: MambaConfig = model.config): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tensors: TensorToWrite[] = [];
  for (const [name, t] of model.params) {
    if (name === 'lm_head.weight' && config.tie_word_embeddings) continue;
    tensors.push({ name, dtype: t.dtype === 'float64' ? 'F64' : 'F32', shape: t.shape, data: await t.data() });
  }
  await writeSafetensors(join(dir, SINGLE_FILE), tensors, { format: 'pt' });
  await writeConfig(dir, config);
}
