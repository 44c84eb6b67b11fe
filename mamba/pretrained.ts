// Hugging Face checkpoint folders <-> MambaLM: config.json + model.safetensors (or shards), the
// layout save_pretrained writes. A tied head is not stored (no lm_head.weight), as transformers does.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import type { Backend, DType, Tensor } from '../engine/index.ts';
import { readConfig, validateCheckpoint, writeConfig, expectedParameterShapes, type MambaConfig } from './config.ts';
import { MambaLM } from './model.ts';
import { openCheckpoint, SINGLE_FILE, writeSafetensors, type TensorToWrite } from './safetensors.ts';

export interface LoadOptions {
  /** default: the current backend */ backend?: Backend;
  /** default float32; float64 only on the CPU */ dtype?: DType;
}

/** Loads a checkpoint folder; every parameter converted to `dtype` on `backend`. */
export async function loadPretrained(dir: string, opts: LoadOptions = {}): Promise<MambaLM> {
  const config = await readConfig(dir);
  const dtype = opts.dtype ?? 'float32';
  if (dtype === 'int32') throw new Error(`loadPretrained ${dir}: dtype must be float32 or float64`);
  const backend = opts.backend ?? mi.getBackend();
  const src = await openCheckpoint(dir);
  const params = new Map<string, Tensor>();
  try {
    validateCheckpoint(config, src);
    for (const [name, shape] of expectedParameterShapes(config)) {
      const rec = await src.read(name);
      if (rec.data instanceof Int32Array) throw new Error(`loadPretrained ${dir}: parameter ${name} is stored as ${rec.dtype}, not a float`);
      params.set(name, mi.keep(mi.tensor(rec.data, shape, { dtype, backend })));
    }
  } catch (e) {
    for (const t of params.values()) t.dispose();
    throw e;
  } finally {
    await src.close();
  }
  return new MambaLM(config, params);
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
