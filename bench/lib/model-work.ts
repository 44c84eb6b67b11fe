// The four pieces of model work that ../shared/peers/torch_mamba.py times (its keys a-d), done by
// this project, so that bench/model.ts and bench/peers.ts measure the same thing the peer does:
//   a  toy training step: vocab 64, hidden 64, 2 layers, N 16, expand 2, batch 32 x 256,
//      next-token cross-entropy, backward, AdamW (no gradient clipping: the peer does none)
//   b  toy forward, same shapes, no grad, full logits
//   c  mamba-130m shapes (hidden 768, 24 layers, vocab 50280) forward, batch 1 x 128
//   d  mamba-130m shapes, one recurrent decode step (conv + SSM state), logits and argmax
// Random weights; medians of wall time (bench/lib/median.ts) over `runs` after a warm-up.
import * as mi from '../../engine/index.ts';
import type { Backend } from '../../engine/index.ts';
import { makeConfig } from '../../mamba/config.ts';
import { initMamba } from '../../mamba/model.ts';
import { disposeCache } from '../../mamba/recurrent.ts';
import { nextTokenLoss } from '../../mamba/train.ts';
import { median } from './median.ts';

export type WorkKey = 'a' | 'b' | 'c' | 'd';

export interface WorkResult {
  key: WorkKey;
  what: string;
  medianMs: number;
  /** tokens processed per run */
  tokens: number;
}

export const TOY = makeConfig({ vocab_size: 64, hidden_size: 64, num_hidden_layers: 2, state_size: 16, expand: 2 });
export const M130 = makeConfig({ vocab_size: 50280, hidden_size: 768, num_hidden_layers: 24, state_size: 16, expand: 2 });
const [BATCH, LEN, PROMPT] = [32, 256, 128];

/** Work a and/or b on `backend`. */
export async function toyWork(backend: Backend, keys: readonly WorkKey[], runs: number): Promise<WorkResult[]> {
  const out: WorkResult[] = [];
  const rng = new mi.Rng('bench/model/toy');
  const model = initMamba(TOY, rng.fork('init'), { backend });
  const params = [...model.params.values()];
  const opt = new mi.AdamW(params, { lr: 1e-3 });
  const rows = Array.from({ length: BATCH }, () => Array.from({ length: LEN }, () => rng.int(0, TOY.vocab_size)));
  const ids = mi.keep(model.ids(rows));
  try {
    if (keys.includes('a')) {
      for (const p of params) p.requiresGrad = true;
      const medianMs = await median(
        'toy training step',
        () =>
          mi.tidyAsync(async () => {
            const loss = nextTokenLoss(model, ids);
            const grads = mi.backwardFrom(loss);
            opt.step(params.map((p) => grads.get(p) ?? null));
            await loss.item();
          }),
        runs,
        { warmup: 2 },
      );
      for (const p of params) p.requiresGrad = false;
      out.push({ key: 'a', what: 'toy training step (forward, backward, AdamW)', tokens: BATCH * LEN, medianMs });
    }
    if (keys.includes('b')) {
      const medianMs = await median(
        'toy forward',
        () => mi.tidyAsync(async () => void (await mi.noGrad(() => model.forward(ids)).data())),
        runs,
        {
          warmup: 2,
        },
      );
      out.push({ key: 'b', what: 'toy forward', tokens: BATCH * LEN, medianMs });
    }
  } finally {
    opt.dispose();
    ids.dispose();
    model.dispose();
  }
  return out;
}

/** Work c and/or d on the CPU backend. */
export async function m130Work(keys: readonly WorkKey[], runs: number): Promise<WorkResult[]> {
  const out: WorkResult[] = [];
  const model = initMamba(M130, new mi.Rng('bench/model/130m'), { backend: mi.cpuBackend() });
  const rng = new mi.Rng('bench/model/130m-data');
  const prompt = [Array.from({ length: PROMPT }, () => rng.int(0, M130.vocab_size))];
  try {
    if (keys.includes('c')) {
      const medianMs = await median('130m forward', () => mi.tidy(() => void mi.noGrad(() => model.forward(prompt)).dataSync()), runs);
      out.push({ key: 'c', what: `mamba-130m shapes forward, batch 1 x ${PROMPT}`, tokens: PROMPT, medianMs });
    }
    if (keys.includes('d')) {
      const { logits, cache } = model.prefill([prompt[0].slice(0, 8)]);
      let tok = (await mi.argmax(logits, -1).data())[7];
      logits.dispose();
      const medianMs = await median(
        '130m decode step',
        () => {
          const l = model.step(cache, [tok]);
          tok = mi.tidy(() => mi.argmax(l, -1).dataSync()[0]);
          l.dispose();
        },
        runs * 4,
        { warmup: 3 },
      );
      disposeCache(cache);
      out.push({ key: 'd', what: 'mamba-130m shapes recurrent decode step (logits and argmax)', tokens: 1, medianMs });
    }
  } finally {
    model.dispose();
  }
  return out;
}
