// Saving and loading an SAE as a safetensors file (Node): tensors W_enc [d, latents], b_enc,
// W_dec [latents, d], b_dec in SAELens names and layout, unit-norm decoder rows, and the config
// (architecture, d_in, d_sae, k, scaling_factor) as string metadata so the file alone rebuilds it.
import type * as mi from '../../engine/index.ts';
import { openSafetensors, writeSafetensors } from '../../mamba/safetensors.ts';
import { Sae, SAE_PARAM_NAMES, type SaeExport } from './sae.ts';

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
    const m = f.metadata;
    if (!m?.architecture || !m.d_in || !m.d_sae || !m.scaling_factor)
      throw new Error(`loadSae ${path}: metadata lacks architecture, d_in, d_sae or scaling_factor`);
    const tensors = {} as SaeExport['tensors'];
    for (const name of SAE_PARAM_NAMES) {
      const rec = await f.read(name);
      if (!(rec.data instanceof Float32Array)) throw new Error(`loadSae ${path}: ${name} is ${rec.dtype}, expected F32`);
      tensors[name] = { dtype: 'float32', shape: rec.shape, data: rec.data };
    }
    return Sae.fromExport(
      {
        config: {
          architecture: m.architecture,
          d_in: Number(m.d_in),
          d_sae: Number(m.d_sae),
          ...(m.k ? { k: Number(m.k) } : {}),
          normalize_activations: m.normalize_activations === 'none' ? 'none' : 'expected_average_only_in',
          scaling_factor: Number(m.scaling_factor),
        },
        tensors,
      },
      opts.backend,
    );
  } finally {
    await f.close();
  }
}
