// The four pieces of model work that ../shared/peers/torch_mamba.py times (its keys a-d), done by
// this project, so that bench/model.ts and bench/peers.ts measure the same thing the peer does:
//   a  toy training step: vocab 64, hidden 64, 2 layers, N 16, expand 2, batch 32 x 256,
//      next-token cross-entropy, backward, AdamW (no gradient clipping: the peer does none)
//   b  toy forward, same shapes, no grad, full logits
//   c  mamba-130m shapes (hidden 768, 24 layers, vocab 50280) forward, batch 1 x 128 (and, on
//      WebGPU, the shapes ../shared/peers/hf_gpu_bench.py times: 1 x 2048 and 8 x 2048)
//   d  mamba-130m shapes, one recurrent decode step (conv + SSM state), logits and argmax
// Random weights; medians of wall time (bench/lib/median.ts) over `runs` after a warm-up. On
// WebGPU a forward is timed until its GPU work is done (flush), without reading the logits back;
// `small` shrinks every shape (for software adapters and tests); `profile` receives the per-kernel
// GPU time of one more call (WebGpuBackend.profile) where the adapter can time passes.
import * as mi from '../../engine/index.ts';
import type { Backend } from '../../engine/index.ts';
import { makeConfig } from '../../mamba/config.ts';
import { initMamba } from '../../mamba/model.ts';
import { disposeCache } from '../../mamba/recurrent.ts';
import { nextTokenLoss } from '../../mamba/train.ts';
import type { WebGpuBackend } from '../../engine/wgsl/backend.ts';
import type { KernelProfile } from '../../engine/wgsl/profile.ts';
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
/** --small: the 130m work at 2 layers, hidden 256, vocab 2048 (a software adapter runs it in seconds). */
export const M130_SMALL = makeConfig({ vocab_size: 2048, hidden_size: 256, num_hidden_layers: 2, state_size: 16, expand: 2 });
/** Work a and b: batch x length, full and --small. */
const TOY_SHAPE = [32, 256] as const;
const TOY_SMALL = [4, 64] as const;
const PROMPT = 128;
/** Forward shapes [batch, length] of work c: on the CPU, and on WebGPU (hf_gpu_bench.py's). */
export const M130_SHAPES_CPU: readonly [number, number][] = [[1, PROMPT]];
export const M130_SHAPES_GPU: readonly [number, number][] = [
  [1, PROMPT],
  [1, 2048],
  [8, 2048],
];
export const M130_SHAPES_SMALL: readonly [number, number][] = [
  [1, 16],
  [2, 64],
];

export interface WorkOptions {
  /** small shapes (M130_SMALL, TOY_SMALL) */
  small?: boolean;
  /** receives one profiled call of each piece of work (WebGPU adapters with timestamp queries) */
  profile?: (what: string, p: KernelProfile) => void;
  /** receives each result as soon as it is measured (a run stopped by a time limit keeps them) */
  onResult?: (w: WorkResult) => void;
}

function profiler(backend: Backend): WebGpuBackend | null {
  const b = backend as Partial<WebGpuBackend>;
  return b.name === 'webgpu' && b.canProfile ? (backend as WebGpuBackend) : null;
}

function keepResult(out: WorkResult[], opts: WorkOptions, w: WorkResult): void {
  out.push(w);
  opts.onResult?.(w);
}

/** Waits until the backend's queued work is done (a GPU forward is timed to its end, not its readback). */
async function done(backend: Backend, t: mi.Tensor): Promise<void> {
  if (backend.name === 'webgpu') await backend.flush();
  else t.dataSync();
}

/** Work a and/or b on `backend`. */
export async function toyWork(backend: Backend, keys: readonly WorkKey[], runs: number, opts: WorkOptions = {}): Promise<WorkResult[]> {
  const out: WorkResult[] = [];
  const [BATCH, LEN] = opts.small ? TOY_SMALL : TOY_SHAPE;
  const shape = `batch ${BATCH} x ${LEN}`;
  const rng = new mi.Rng('bench/model/toy');
  const model = initMamba(TOY, rng.fork('init'), { backend });
  const params = [...model.params.values()];
  const opt = new mi.AdamW(params, { lr: 1e-3 });
  const rows = Array.from({ length: BATCH }, () => Array.from({ length: LEN }, () => rng.int(0, TOY.vocab_size)));
  const ids = mi.keep(model.ids(rows));
  try {
    if (keys.includes('a')) {
      for (const p of params) p.requiresGrad = true;
      const trainStep = () =>
        mi.tidyAsync(async () => {
          const loss = nextTokenLoss(model, ids);
          const grads = mi.backwardFrom(loss);
          opt.step(params.map((p) => grads.get(p) ?? null));
          await loss.item();
        });
      const medianMs = await median('toy training step', trainStep, runs, { warmup: 2 });
      const what = `toy training step (forward, backward, AdamW)${opts.small ? `, ${shape}` : ''}`;
      keepResult(out, opts, { key: 'a', what, tokens: BATCH * LEN, medianMs });
      const gpu = opts.profile && profiler(backend);
      if (gpu) opts.profile!(what, (await gpu.profile(trainStep)).profile);
      for (const p of params) p.requiresGrad = false;
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
      keepResult(out, opts, { key: 'b', what: `toy forward${opts.small ? `, ${shape}` : ''}`, tokens: BATCH * LEN, medianMs });
    }
  } finally {
    opt.dispose();
    ids.dispose();
    model.dispose();
  }
  return out;
}

/**
 * Work c and/or d, on the CPU backend unless `backend` is given. c runs at each of `shapes`
 * ([batch, length]; by default 1 x 128 on the CPU, hf_gpu_bench.py's three on WebGPU, small ones
 * with `small`). Logits bigger than 1 GiB (8 x 2048 x 50280 floats is 3.3 GB, past WebGPU's
 * binding limits) are computed one sequence at a time from the final hidden states.
 */
export async function m130Work(
  keys: readonly WorkKey[],
  runs: number,
  opts: WorkOptions & { backend?: Backend; shapes?: readonly [number, number][] } = {},
): Promise<WorkResult[]> {
  const out: WorkResult[] = [];
  const backend = opts.backend ?? mi.cpuBackend();
  const cfg = opts.small ? M130_SMALL : M130;
  const name = opts.small ? 'mamba-130m-like (2 layers, hidden 256, vocab 2048)' : 'mamba-130m shapes';
  const shapes = opts.shapes ?? (opts.small ? M130_SHAPES_SMALL : backend.name === 'webgpu' ? M130_SHAPES_GPU : M130_SHAPES_CPU);
  const model = initMamba(cfg, new mi.Rng('bench/model/130m'), { backend });
  const rng = new mi.Rng('bench/model/130m-data');
  try {
    if (keys.includes('c')) {
      for (const [batch, len] of shapes) {
        const ids = mi.keep(model.ids(Array.from({ length: batch }, () => Array.from({ length: len }, () => rng.int(0, cfg.vocab_size)))));
        const split = batch * len * cfg.vocab_size * 4 > 2 ** 30;
        const forward = () =>
          mi.tidyAsync(async () => {
            if (!split)
              return done(
                backend,
                mi.noGrad(() => model.forward(ids)),
              );
            const hidden = mi.noGrad(() => model.hiddenFromEmbeds(mi.embedding(model.p('backbone.embeddings.weight'), ids)));
            let last: mi.Tensor = hidden;
            for (let b = 0; b < batch; b++) {
              last = mi.tidy(() => mi.noGrad(() => mi.linear(mi.slice(hidden, 0, b, b + 1), model.lmHead())));
              if (b < batch - 1) last.dispose(); // each sequence's logits are freed before the next
            }
            return done(backend, last);
          });
        try {
          const medianMs = await median(`130m forward ${batch}x${len}`, forward, runs);
          const what = `${name} forward, batch ${batch} x ${len}${split ? ' (logits per sequence)' : ''}`;
          keepResult(out, opts, { key: 'c', what, tokens: batch * len, medianMs });
          const gpu = opts.profile && profiler(backend);
          if (gpu) opts.profile!(what, (await gpu.profile(forward)).profile);
        } finally {
          ids.dispose();
        }
      }
    }
    if (keys.includes('d')) {
      const prompt = Array.from({ length: 8 }, () => rng.int(0, cfg.vocab_size));
      const { logits, cache } = model.prefill([prompt]);
      let tok = (await mi.argmax(logits, -1).data())[7];
      logits.dispose();
      const medianMs = await median(
        '130m decode step',
        () =>
          mi.tidyAsync(async () => {
            const l = model.step(cache, [tok]);
            tok = (await mi.argmax(l, -1).data())[0];
          }),
        runs * 4,
        { warmup: 3 },
      );
      disposeCache(cache);
      keepResult(out, opts, { key: 'd', what: `${name} recurrent decode step (logits and argmax)`, tokens: 1, medianMs });
    }
  } finally {
    model.dispose();
  }
  return out;
}
