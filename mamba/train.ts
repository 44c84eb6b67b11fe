// Training loop for MambaLM: next-token cross-entropy, AdamW with warm-up + cosine learning rate,
// global gradient-norm clipping, periodic evaluation, a progress line, the loss curve as JSON and
// checkpoints in Hugging Face format (plus the optimiser state), resumable.
//
// outDir/
//   checkpoint/            config.json + model.safetensors (HF), optimizer.safetensors, trainer_state.json
//   loss.json              {train: [{step, loss, lr, gradNorm}], eval: [{step, loss}]}
// Steps are counted from 1 (step k is the k-th update). A NaN or infinite loss stops training
// with an error naming the step, after saving the parameters from before it as the checkpoint.
//
// Reading back. Where the backend reads synchronously (the CPU) a read costs nothing: each step's
// loss is read as soon as it is computed (a NaN stops before its update) and the gradient norm is
// clipped on the host (engine/optim.ts clipGradNorm). Elsewhere (WebGPU) a read waits for the
// device, so the steps are recorded back to back with nothing read: the norm is clipped on the
// device, and each step's loss and norm stay there until every `readEvery` steps (default
// logEvery; also at each log, evaluation and checkpoint, and the last step) one read brings back
// all of them; the curve holds the same points. A NaN is then found at the read after it: the
// parameters and optimiser state from the previous read (kept on the device) are restored, the
// good steps after it replayed, and the parameters from just before the bad step are saved, so the
// checkpoint and the error are those of reading every step (the error also names the steps the
// read covered).
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
  /**
   * read losses back every n steps (besides log, evaluation and checkpoint steps). Default: 1 on a
   * backend that reads synchronously (the CPU: loss checked before its update, host-side clipping),
   * logEvery elsewhere. Any other value on the CPU runs the device-side path (tests use it).
   */
  readEvery?: number;
  /** continue from outDir/checkpoint when it exists (default true) */ resume?: boolean;
  log?: (line: string) => void;
  /** the objective (default: mean next-token cross-entropy); tests use it to inject failures */
  loss?: (model: MambaLM, ids: Tensor, step: number) => Tensor;
  /**
   * early stopping: called after every `stopEvery` steps' update (default 0 = never); returning
   * true ends training at that step, which is then checkpointed and logged as the last one
   */
  stop?: (model: MambaLM, step: number) => boolean | Promise<boolean>;
  stopEvery?: number;
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
  const readEvery = o.readEvery ?? (model.backend.readSync ? 1 : logEvery);
  const stopEvery = o.stop ? (o.stopEvery ?? 0) : 0;
  if (!(Number.isInteger(stopEvery) && stopEvery >= 0))
    throw new Error(`train: stopEvery must be a non-negative integer, got ${stopEvery}`);
  const stopStep = (step: number) => stopEvery > 0 && step % stopEvery === 0 && step < o.steps;
  if (!(Number.isInteger(readEvery) && readEvery >= 1)) throw new Error(`train: readEvery must be a positive integer, got ${readEvery}`);
  const deferred = !(model.backend.readSync && readEvery === 1);
  const queued = deferred ? new DeferredSteps(model, opt, params, lossFn, o.clipNorm ?? 1, done) : null;
  for (const p of params) p.requiresGrad = true;
  try {
    let t0 = performance.now(),
      tokens = 0;
    for (let step = done + 1; step <= o.steps; step++) {
      const rows = o.batch(step);
      const lr = schedule(step - 1);
      tokens += rows.length * rows[0].length;
      if (queued) {
        queued.step(step, rows, lr);
        const evalStep = !!o.evalBatches?.length && step % evalEvery === 0;
        if (!(step % readEvery === 0 || step % logEvery === 0 || step % ckptEvery === 0 || evalStep || stopStep(step) || step === o.steps))
          continue;
        const read = await queued.read();
        curve.train.push(...read.good);
        if (read.bad) {
          const { bad, from, to } = read;
          await queued.rewindTo(bad.step - 1, o.batch, schedule);
          await save(bad.step - 1);
          await writeCurve(o.outDir, curve);
          throw new Error(
            `train: loss is ${bad.loss} at step ${bad.step} (found by the read after step ${to}, of steps ${from}-${to}); the parameters from before it (after step ${bad.step - 1}) are saved in ${ckptDir}`,
          );
        }
      } else {
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
      }
      const point = curve.train[curve.train.length - 1];
      // the stopping rule sees the model after this step's update; a stop makes it the last step
      const last = step === o.steps || (stopStep(step) && (await o.stop!(model, step)));
      if (step % logEvery === 0 || last) {
        const s = (performance.now() - t0) / 1000;
        log(
          `step ${step}/${o.steps}  loss ${point.loss.toFixed(4)}  lr ${point.lr.toExponential(2)}  |g| ${point.gradNorm.toFixed(3)}  ${(tokens / s).toFixed(0)} tok/s`,
        );
        t0 = performance.now();
        tokens = 0;
      }
      if (o.evalBatches?.length && (step % evalEvery === 0 || last)) {
        const loss = await evaluate(model, o.evalBatches);
        curve.eval.push({ step, loss });
        log(`eval  step ${step}  loss ${loss.toFixed(4)}`);
      }
      if (step % ckptEvery === 0 || last) {
        await save(step);
        await writeCurve(o.outDir, curve);
      }
      if (last) break;
    }
  } finally {
    queued?.dispose();
    for (const p of params) p.requiresGrad = false;
    opt.dispose();
  }
  return curve;
}

/**
 * The device-side path of train(): steps recorded without reads, their losses and gradient norms
 * kept as device scalars until read() brings them all back in one read; the parameters and
 * optimiser state after the last good read kept (the parameters by reference: AdamW assigns new
 * buffers, so the old ones stay as they were; m and v as copies), for rewinding past a NaN.
 */
class DeferredSteps {
  private pending: { step: number; lr: number; loss: Tensor; norm: Tensor | null }[] = [];
  private saved: { step: number; params: Tensor[]; state: mi.AdamWState } | null = null;

  constructor(
    private readonly model: MambaLM,
    private readonly opt: mi.AdamW,
    private readonly params: Tensor[],
    private readonly lossFn: (model: MambaLM, ids: Tensor, step: number) => Tensor,
    private readonly clipNorm: number,
    done: number,
  ) {
    this.keepState(done);
  }

  /** Records step `step` (forward, backward, clipping, AdamW); reads nothing. */
  step(step: number, rows: number[][], lr: number): void {
    const out = mi.tidy(() => {
      const loss = this.lossFn(this.model, this.model.ids(rows), step);
      const grads = mi.backwardFrom(loss);
      const gs = this.params.map((p) => grads.get(p) ?? null);
      const norm = this.clipNorm === 0 ? null : clipOnDevice(gs, this.clipNorm);
      this.opt.lr = lr;
      this.opt.step(gs);
      return { loss: mi.detach(loss), norm };
    });
    this.pending.push({ step, lr, loss: mi.keep(out.loss), norm: out.norm && mi.keep(out.norm) });
  }

  /**
   * Reads every pending loss and norm in one go. The points up to the first non-finite loss are
   * `good`; that one is `bad`. After an all-good read the state is kept for a later rewind.
   */
  async read(): Promise<{ good: TrainPoint[]; bad?: TrainPoint; from: number; to: number }> {
    const pending = this.pending;
    this.pending = [];
    if (!pending.length) return { good: [], from: 0, to: 0 };
    let values: ArrayLike<number>;
    try {
      const all = [...pending.map((p) => p.loss), ...pending.flatMap((p) => (p.norm ? [p.norm] : []))];
      values = await mi.tidyAsync(() => mi.stack(all.map((t) => mi.reshape(t, []))).data());
    } finally {
      for (const p of pending) {
        p.loss.dispose();
        p.norm?.dispose();
      }
    }
    let k = pending.length;
    const points = pending.map((p, i) => ({
      step: p.step,
      loss: values[i],
      lr: p.lr,
      gradNorm: p.norm ? values[k++] : NaN,
    }));
    const at = points.findIndex((p) => !Number.isFinite(p.loss));
    const span = { from: pending[0].step, to: pending[pending.length - 1].step };
    if (at >= 0) return { good: points.slice(0, at), bad: points[at], ...span };
    this.keepState(span.to);
    return { good: points, ...span };
  }

  /** Back to the state after step `step` (at or after the last good read): restore, then replay. */
  async rewindTo(step: number, batch: (step: number) => number[][], schedule: (s: number) => number): Promise<void> {
    const saved = this.saved!;
    for (const p of this.pending) {
      p.loss.dispose();
      p.norm?.dispose();
    }
    this.pending = [];
    this.params.forEach((p, i) => p.assign(saved.params[i]));
    this.opt.loadState(saved.state);
    for (let s = saved.step + 1; s <= step; s++) this.step(s, batch(s), schedule(s - 1));
    for (const p of this.pending) {
      p.loss.dispose();
      p.norm?.dispose();
    }
    this.pending = [];
  }

  private keepState(step: number): void {
    this.dropState();
    this.saved = { step, params: this.params.map((p) => mi.keep(p.view(p.shape))), state: this.opt.state() };
    for (const t of [...this.saved.state.m, ...this.saved.state.v]) mi.keep(t);
  }

  private dropState(): void {
    if (!this.saved) return;
    for (const t of [...this.saved.params, ...this.saved.state.m, ...this.saved.state.v]) t.dispose();
    this.saved = null;
  }

  dispose(): void {
    for (const p of this.pending) {
      p.loss.dispose();
      p.norm?.dispose();
    }
    this.pending = [];
    this.dropState();
  }
}

/**
 * clipGradNorm on the device: the same global norm (summed in the same order) and coefficient
 * maxNorm / (norm + 1e-6) when below 1, applied as a device scalar (min(coef, 1), so unclipped
 * gradients are multiplied by exactly 1) instead of a number read back. Returns the norm.
 */
function clipOnDevice(gs: readonly (Tensor | null)[], maxNorm: number): Tensor | null {
  const present = gs.filter((g): g is Tensor => !!g);
  if (!present.length) return null;
  return mi.noGrad(() => {
    let total = mi.sum(mi.square(present[0]));
    for (const g of present.slice(1)) total = mi.add(total, mi.sum(mi.square(g)));
    const norm = mi.sqrt(total);
    const coef = mi.minimum(mi.div(maxNorm, mi.add(norm, 1e-6)), 1);
    for (const g of present) g.assign(mi.mul(g, coef));
    return norm;
  });
}

/** Mean next-token loss over batches, without gradients. */
export async function evaluate(model: MambaLM, batches: number[][][]): Promise<number> {
  // one read for every batch's loss, added up on the host in order (as reading each one would)
  const losses: Tensor[] = [];
  let values: ArrayLike<number>;
  try {
    for (const rows of batches) losses.push(mi.keep(mi.tidy(() => mi.noGrad(() => nextTokenLoss(model, model.ids(rows))))));
    values = await mi.tidyAsync(() => mi.stack(losses).data());
  } finally {
    for (const l of losses) l.dispose();
  }
  let total = 0;
  for (let i = 0; i < batches.length; i++) total += values[i];
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
