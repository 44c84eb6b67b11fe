// Paths of the Hugging Face golden fixtures (../shared/fixtures/hf-mamba, see its README) and a
// reader of their input ids.
import { join, resolve } from 'node:path';
import { openSafetensors } from '../../mamba/safetensors.ts';

export const FIXTURES = resolve(import.meta.dirname, '../../../shared/fixtures/hf-mamba');
export const modelDir = (name: 'tiny' | 'small') => join(FIXTURES, name, 'model');
export const goldenPath = (name: 'tiny' | 'small') => join(FIXTURES, name, 'golden.safetensors');

/** The golden file's input_ids as rows of numbers. */
export async function goldenIds(name: 'tiny' | 'small'): Promise<number[][]> {
  const f = await openSafetensors(goldenPath(name));
  try {
    const ids = await f.read('input_ids');
    const [batch, T] = ids.shape;
    return Array.from({ length: batch }, (_, b) => Array.from(ids.data.subarray(b * T, (b + 1) * T)));
  } finally {
    await f.close();
  }
}
