// Saving and loading an SAE as a safetensors file (Node): tensors W_enc [d, latents], b_enc,
// W_dec [latents, d], b_dec in SAELens names and layout, unit-norm decoder rows, and the config
// (architecture, d_in, d_sae, k, scaling_factor) as string metadata so the file alone rebuilds it.
import type * as mi from '../../engine/index.ts';
import { openSafetensors, writeSafetensors } from '../../mamba/safetensors.ts';
import { type Sae, SAE_PARAM_NAMES, saeFromSafetensors } from './sae.ts';

export async function saveSae(sae: Sae, path: string): Promise<void> {
  const e = await sae.exportParams();
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.config)) metadata[k] = String(v);
  await writeSafetensors(
    path,
    SAE_PARAM_NAMES.map((name) => ({ name, dtype: 'F32' as const, shape: e.tensors[name].shape, data: e.tensors[name].data })),
    metadata,
  );
}

export async function loadSae(path: string, opts: { backend?: mi.Backend } = {}): Promise<Sae> {
  const f = await openSafetensors(path);
  try {
    return await saeFromSafetensors(f, `loadSae ${path}`, opts.backend);
  } finally {
    await f.close();
  }
}
