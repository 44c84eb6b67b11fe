// The four pieces of model work that ../shared/peers/torch_mamba.py times (its keys a-d), done by
// this project, so that bench/model.ts and bench/peers.ts measure the same thing the peer does:
//   a  toy training step: vocab 64, hidden 64, 2 layers, N 16, expand 2, batch 32 x 256,
//      next-token cross-entropy, backward, AdamW (no gradient clipping: the peer does none)
//   b  toy forward, same shapes, no grad, full logits
//   c  mamba-130m shapes (hidden 768, 24 layers, vocab 50280) forward, batch 1 x 128
//   d  mamba-130m shapes, one recurrent decode step (conv + SSM state), logits and argmax
// Random weights; medians of wall time over `runs` after a warm-up.
import * as mi from '../../engine/index.ts';
import type { Backend } from '../../engine/index.ts';
import { makeConfig } from '../../mamba/config.ts';
import { initMamba } from '../../mamba/model.ts';
import { disposeCache } from '../../mamba/recurrent.ts';
import { nextTokenLoss } from '../../mamba/train.ts';

export type WorkKey = 'a' | 'b' | 'c' | 'd';

export interface WorkResult {
  key: WorkKey;
  what: string;
  medianMs: number;
  runsMs: number[];
  /** tokens processed per run */
  tokens: number;
}

export const TOY = makeConfig({ vocab_size: 64, hidden_size: 64, num_hidden_layers: 2, state_size: 16, expand: 2 });
export const M130 = makeConfig({ vocab_size: 50280, hidden_size: 768, num_hidden_layers: 24, state_size: 16, expand: 2 });
const [BATCH, LEN, PROMPT] = [32, 256, 128];

async function timed(fn: () => Promise<void> | void, warmup: number, runs: number): Promise<{ medianMs: number; runsMs: number[] }> {
  for (let i = 0; i < warmup; i++) await fn();
  const runsMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    runsMs.push(performance.now() - t0);
  }
  const sorted = [...runsMs].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  const medianMs = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { medianMs, runsMs };
}

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
      const t = await timed(
        () =>
          mi.tidyAsync(async () => {
            const loss = nextTokenLoss(model, ids);
            const grads = mi.backwardFrom(loss);
            opt.step(params.map((p) => grads.get(p) ?? null));
            await loss.item();
          }),
        2,
        runs,
      );
      for (const p of params) p.requiresGrad = false;
      out.push({ key: 'a', what: 'toy training step (forward, backward, AdamW)', tokens: BATCH * LEN, ...t });
    }
    if (keys.includes('b')) {
      const t = await timed(() => mi.tidyAsync(async () => void (await mi.noGrad(() => model.forward(ids)).data())), 2, runs);
      out.push({ key: 'b', what: 'toy forward', tokens: BATCH * LEN, ...t });
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
      const t = await timed(() => mi.tidy(() => void mi.noGrad(() => model.forward(prompt)).dataSync()), 1, runs);
      out.push({ key: 'c', what: `mamba-130m shapes forward, batch 1 x ${PROMPT}`, tokens: PROMPT, ...t });
    }
    if (keys.includes('d')) {
      const { logits, cache } = model.prefill([prompt[0].slice(0, 8)]);
      let tok = (await mi.argmax(logits, -1).data())[7];
      logits.dispose();
      const t = await timed(
        () => {
          const l = model.step(cache, [tok]);
          tok = mi.tidy(() => mi.argmax(l, -1).dataSync()[0]);
          l.dispose();
        },
        3,
        runs * 4,
      );
      disposeCache(cache);
      out.push({ key: 'd', what: 'mamba-130m shapes recurrent decode step (logits and argmax)', tokens: 1, ...t });
    }
  } finally {
    model.dispose();
  }
  return out;
}
