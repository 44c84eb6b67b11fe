// Training loop for MambaLM: next-token cross-entropy, AdamW with warm-up + cosine learning rate,
// global gradient-norm clipping, periodic evaluation, a progress line, the loss curve as JSON and
// checkpoints in Hugging Face format (plus the optimiser state), resumable.
//
// outDir/
//   checkpoint/            config.json + model.safetensors (HF), optimizer.safetensors, trainer_state.json
//   loss.json              {train: [{step, loss, lr, gradNorm}], eval: [{step, loss}]}
// Steps are counted from 1 (step k is the k-th update). A NaN or infinite loss stops training
// with an error naming the step, after saving the parameters from before it as the checkpoint.
import { rename, rm, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import type { Tensor } from '../engine/index.ts';
import type { MambaLM } from './model.ts';
import { loadPretrained, savePretrained } from './pretrained.ts';
import { openSafetensors, writeSafetensors, writeTextAtomic } from './safetensors.ts';

export interface TrainOptions {
  outDir: string;
  /** total optimiser steps */ steps: number;
  /** token rows [batch, L] for step k (1-based); deterministic in k so a resumed run sees the same data */
  batch: (step: number) => number[][];
  /** fixed evaluation rows (each entry one batch) */ evalBatches?: number[][][];
  lr?: number;
  minLr?: number;
  warmupSteps?: number;
  weightDecay?: number;
  betas?: [number, number];
  /** max global gradient norm (default 1; 0 disables) */ clipNorm?: number;
  /** evaluate every n steps and at the end (default 50) */ evalEvery?: number;
  /** checkpoint every n steps and at the end (default 100) */ checkpointEvery?: number;
  /** log a progress line every n steps (default 10) */ logEvery?: number;
  /** continue from outDir/checkpoint when it exists (default true) */ resume?: boolean;
  log?: (line: string) => void;
  /** the objective (default: mean next-token cross-entropy); tests use it to inject failures */
  loss?: (model: MambaLM, ids: Tensor, step: number) => Tensor;
}

export interface TrainPoint {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
}
export interface LossCurve {
  train: TrainPoint[];
  eval: { step: number; loss: number }[];
}

/** Mean cross-entropy of logits[:, :-1] against ids[:, 1:], as MambaForCausalLM's loss. */
export function nextTokenLoss(model: MambaLM, ids: Tensor): Tensor {
  const T = ids.shape[1];
  if (T < 2) throw new Error(`nextTokenLoss: sequences of length ${T}; need at least 2 tokens`);
  const logits = model.forward(ids);
  return mi.crossEntropy(mi.slice(logits, 1, 0, T - 1), mi.slice(ids, 1, 1, T));
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** Trains `model` in place; resolves to the loss curve. */
export async function train(model: MambaLM, o: TrainOptions): Promise<LossCurve> {
  const log = o.log ?? ((l: string) => console.log(l));
  const lossFn = o.loss ?? ((m: MambaLM, ids: Tensor) => nextTokenLoss(m, ids));
  const names = [...model.params.keys()];
  const params = names.map((n) => model.params.get(n)!);
  const baseLr = o.lr ?? 1e-3;
  const schedule = mi.warmupCosine({
    baseLr,
    warmupSteps: Math.min(o.warmupSteps ?? 0, o.steps),
    totalSteps: o.steps,
    minLr: o.minLr ?? 0,
  });
  const opt = new mi.AdamW(params, { lr: baseLr, betas: o.betas, weightDecay: o.weightDecay ?? 0.01 });
  const ckptDir = join(o.outDir, 'checkpoint');
  let curve: LossCurve = { train: [], eval: [] };
  let done = 0;
  if ((o.resume ?? true) && (await exists(join(ckptDir, 'trainer_state.json')))) {
    ({ done, curve } = await restore(model, opt, names, ckptDir));
    log(`train: resumed from ${ckptDir} after step ${done}`);
  }
  const evalEvery = o.evalEvery ?? 50,
    ckptEvery = o.checkpointEvery ?? 100,
    logEvery = o.logEvery ?? 10;
  const save = (step: number) => saveCheckpoint(model, opt, names, ckptDir, { step, curve });
  for (const p of params) p.requiresGrad = true;
  try {
    let t0 = performance.now(),
      tokens = 0;
    for (let step = done + 1; step <= o.steps; step++) {
      const rows = o.batch(step);
      const lr = schedule(step - 1);
      const point = await mi.tidyAsync(async () => {
        const ids = model.ids(rows);
        const loss = lossFn(model, ids, step);
        const value = await loss.item();
        if (!Number.isFinite(value)) return { step, loss: value, lr, gradNorm: NaN };
        const grads = mi.backwardFrom(loss);
        const gs = params.map((p) => grads.get(p) ?? null);
        const gradNorm = o.clipNorm === 0 ? NaN : await mi.clipGradNorm(gs, o.clipNorm ?? 1);
        opt.lr = lr;
        opt.step(gs);
        return { step, loss: value, lr, gradNorm };
      });
      if (!Number.isFinite(point.loss)) {
        await save(step - 1);
        await writeCurve(o.outDir, curve);
        throw new Error(
          `train: loss is ${point.loss} at step ${step}; the parameters from before it (after step ${step - 1}) are saved in ${ckptDir}`,
        );
      }
      curve.train.push(point);
      tokens += rows.length * rows[0].length;
      if (step % logEvery === 0 || step === o.steps) {
        const s = (performance.now() - t0) / 1000;
        log(
          `step ${step}/${o.steps}  loss ${point.loss.toFixed(4)}  lr ${point.lr.toExponential(2)}  |g| ${point.gradNorm.toFixed(3)}  ${(tokens / s).toFixed(0)} tok/s`,
        );
        t0 = performance.now();
        tokens = 0;
      }
      if (o.evalBatches?.length && (step % evalEvery === 0 || step === o.steps)) {
        const loss = await evaluate(model, o.evalBatches);
        curve.eval.push({ step, loss });
        log(`eval  step ${step}  loss ${loss.toFixed(4)}`);
      }
      if (step % ckptEvery === 0 || step === o.steps) {
        await save(step);
        await writeCurve(o.outDir, curve);
      }
    }
  } finally {
    for (const p of params) p.requiresGrad = false;
    opt.dispose();
  }
  return curve;
}

/** Mean next-token loss over batches, without gradients. */
export async function evaluate(model: MambaLM, batches: number[][][]): Promise<number> {
  let total = 0;
  for (const rows of batches) {
    total += await mi.tidyAsync(() => mi.noGrad(() => nextTokenLoss(model, model.ids(rows))).item());
  }
  return total / batches.length;
}

async function writeCurve(outDir: string, curve: LossCurve): Promise<void> {
  await writeTextAtomic(join(outDir, 'loss.json'), `${JSON.stringify(curve)}\n`);
}

interface TrainerState {
  step: number;
  curve: LossCurve;
}

/** Writes the checkpoint into a fresh folder, then swaps it in, so a crash never leaves half a checkpoint. */
async function saveCheckpoint(model: MambaLM, opt: mi.AdamW, names: string[], dir: string, state: TrainerState): Promise<void> {
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await savePretrained(model, tmp);
  const s = opt.state();
  try {
    const tensors = [];
    for (const [i, n] of names.entries()) {
      for (const [kind, list] of [
        ['m', s.m],
        ['v', s.v],
      ] as const) {
        const t = list[i];
        tensors.push({
          name: `${kind}.${n}`,
          dtype: t.dtype === 'float64' ? ('F64' as const) : ('F32' as const),
          shape: t.shape,
          data: await t.data(),
        });
      }
    }
    await writeSafetensors(join(tmp, 'optimizer.safetensors'), tensors, { step: String(s.step) });
  } finally {
    for (const t of [...s.m, ...s.v]) t.dispose();
  }
  await writeTextAtomic(
    join(tmp, 'trainer_state.json'),
    `${JSON.stringify({ step: state.step, optimizer_step: s.step, curve: state.curve })}\n`,
  );
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
}

async function restore(model: MambaLM, opt: mi.AdamW, names: string[], dir: string): Promise<{ done: number; curve: LossCurve }> {
  const st = JSON.parse(await readFile(join(dir, 'trainer_state.json'), 'utf-8')) as {
    step: number;
    optimizer_step: number;
    curve: LossCurve;
  };
  const saved = await loadPretrained(dir, { dtype: model.dtype, backend: model.backend });
  try {
    for (const n of names) {
      const t = saved.params.get(n);
      if (!t) throw new Error(`train: checkpoint ${dir} has no parameter ${n}`);
      model.p(n).assign(t);
    }
  } finally {
    saved.dispose();
  }
  const f = await openSafetensors(join(dir, 'optimizer.safetensors'));
  const m: Tensor[] = [],
    v: Tensor[] = [];
  try {
    for (const n of names) {
      const shape = model.p(n).shape;
      const o = { dtype: model.dtype, backend: model.backend };
      m.push(mi.tensor((await f.read(`m.${n}`)).data, shape, o));
      v.push(mi.tensor((await f.read(`v.${n}`)).data, shape, o));
    }
    opt.loadState({ step: st.optimizer_step, m, v });
  } finally {
    await f.close();
    for (const t of [...m, ...v]) t.dispose();
  }
  return { done: st.step, curve: st.curve };
}
