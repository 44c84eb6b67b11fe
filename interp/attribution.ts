// Gradient-times-activation attribution (a first-order estimate of each coordinate's effect on the
// loss when it is zeroed): per hook and coordinate, the mean over the covered cells of
//     a * d loss / d a
// where the loss is the cross-entropy at the task's scored positions. The gradient with respect
// to an intermediate activation is taken by adding a zero leaf that requires a gradient at the hook
// (x + 0): its gradient is d loss / d x through every later path, and the forward is unchanged.
// hook_h is attributed at the covered positions only (the scan is split there, mamba/hooks.ts).
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { Hook, HookContext } from '../mamba/hooks.ts';
import type { MambaLM } from '../mamba/model.ts';
import { hookDim, isStateHook } from './sites.ts';
import { IGNORE_INDEX, type TaskBatch } from './tasks/index.ts';

export interface AttributionTarget {
  hook: string;
  /** [batch*T] cells to average over (see positionMask) */
  mask: Uint8Array;
}

/** Per target: the mean of activation * gradient over its cells, per coordinate ([dim]). */
export async function gradTimesActivation(
  model: MambaLM,
  batch: TaskBatch,
  targets: readonly AttributionTarget[],
): Promise<Float64Array[]> {
  const [B, T] = batch.shape;
  const opts = { dtype: model.dtype, backend: model.backend };
  return mi.tidyAsync(async () => {
    // per target: the (activation, zero leaf, position) triples its hooks saw
    const seen: { act: Tensor; leaf: Tensor; position: number | null }[][] = targets.map(() => []);
    const hooks: Hook[] = targets
      .map((tg, k) => {
        hookDim(model, tg.hook); // an error naming an unknown hook
        if (tg.mask.length !== B * T)
          throw new Error(`gradTimesActivation: mask for ${tg.hook} has ${tg.mask.length} cells, expected ${B * T}`);
        const wrap = (x: Tensor, position: number | null) => {
          const leaf = mi.zeros(x.shape, opts);
          leaf.requiresGrad = true;
          seen[k].push({ act: x, leaf, position });
          return mi.add(x, leaf);
        };
        if (!isStateHook(tg.hook)) return { name: tg.hook, fn: (x: Tensor) => wrap(x, null) };
        const positions: number[] = [];
        for (let t = 0; t < T; t++)
          for (let b = 0; b < B; b++)
            if (tg.mask[b * T + t]) {
              positions.push(t);
              break;
            }
        return { name: tg.hook, positions, fn: (h: Tensor, ctx: HookContext) => wrap(h, ctx.position!) };
      })
      .filter((h) => !h.positions || h.positions.length);
    const ids = mi.tensor(batch.inputs, [B, T], { dtype: 'int32', backend: model.backend });
    const tgt = mi.tensor(batch.targets, [B, T], { dtype: 'int32', backend: model.backend });
    const loss = mi.crossEntropy(model.runWithHooks(ids, hooks), tgt, { ignoreIndex: IGNORE_INDEX });
    if (!loss.requiresGrad) throw new Error('gradTimesActivation: no hook was reached');
    const grads = mi.backwardFrom(loss);
    const out: Float64Array[] = [];
    for (const [k, tg] of targets.entries()) {
      const dim = hookDim(model, tg.hook);
      const sum = new Float64Array(dim);
      let cells = 0;
      for (const { act, leaf, position } of seen[k]) {
        const a = await act.data(),
          g = await (grads.get(leaf) ?? mi.zerosLike(leaf)).data();
        // a normal hook holds every cell [B,T,dim]; a state hook one position [B,E,N]
        const per = position === null ? T : 1;
        for (let b = 0; b < B; b++) {
          for (let j = 0; j < per; j++) {
            const t = position ?? j;
            if (!tg.mask[b * T + t]) continue;
            cells++;
            const o = (b * per + j) * dim;
            for (let c = 0; c < dim; c++) sum[c] += a[o + c] * g[o + c];
          }
        }
      }
      out.push(sum.map((s) => (cells ? s / cells : 0)));
    }
    return out;
  });
}

/** The k indices of largest |value| (ties by index), sorted ascending. */
export function topByMagnitude(values: ArrayLike<number>, k: number): number[] {
  return Array.from({ length: values.length }, (_, i) => i)
    .sort((a, b) => Math.abs(values[b]) - Math.abs(values[a]) || a - b)
    .slice(0, Math.min(k, values.length))
    .sort((a, b) => a - b);
}

/** Jaccard overlap |A ∩ B| / |A ∪ B| of two index sets (1 for two empty sets). */
export function jaccard(a: readonly number[], b: readonly number[]): number {
  const A = new Set(a),
    B = new Set(b);
  let inter = 0;
  for (const x of A) if (B.has(x)) inter++;
  const union = A.size + B.size - inter;
  return union ? inter / union : 1;
}
