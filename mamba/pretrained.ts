// Hugging Face checkpoint folders <-> MambaLM: config.json + model.safetensors (or shards), the
// layout save_pretrained writes. A tied head is not stored (no lm_head.weight), as transformers does.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readConfig, writeConfig, type MambaConfig } from './config.ts';
import { modelFromTensors, type LoadOptions } from './fetch-checkpoint.ts';
import type { MambaLM } from './model.ts';
import { openCheckpoint, SINGLE_FILE, writeSafetensors, type TensorToWrite } from './safetensors.ts';

export type { LoadOptions } from './fetch-checkpoint.ts';

/** Loads a checkpoint folder; every parameter converted to `dtype` on `backend`. */
export async function loadPretrained(dir: string, opts: LoadOptions = {}): Promise<MambaLM> {
  const config = await readConfig(dir);
  const src = await openCheckpoint(dir);
  try {
    return await modelFromTensors(config, src, opts, dir);
  } finally {
    await src.close();
  }
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
