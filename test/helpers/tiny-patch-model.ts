// The small float64 Mamba the patching tests share (test/interp/patch-sweep.test.ts,
// test/interp/path-patching.test.ts): vocabulary V, sequences of T tokens, batches of B, conv
// kernel K; S and P are the sender and read-out positions the tests patch and score.
import * as mi from '../../engine/index.ts';
import { makeConfig } from '../../mamba/config.ts';
import { initMamba, type MambaLM } from '../../mamba/model.ts';

export const V = 12,
  T = 10,
  B = 3,
  K = 3,
  S = 2,
  P = 8;

export function tinyModel(layers: number, seed: string): MambaLM {
  const cfg = makeConfig({
    vocab_size: V,
    hidden_size: 8,
    num_hidden_layers: layers,
    state_size: 4,
    expand: 2,
    conv_kernel: K,
    initializer_range: 0.5,
    pad_token_id: null,
    bos_token_id: null,
    eos_token_id: null,
  });
  return initMamba(cfg, new mi.Rng(seed), { dtype: 'float64', backend: mi.cpuBackend() });
}
