// train()'s device-side path (mamba/train.ts): steps recorded without reads, losses and gradient
// norms read back in one go every `readEvery` steps. On the CPU (readEvery set, to run that path
// without a GPU): the curve and parameters equal those of reading every step (exactly without
// clipping; to float32 rounding of the clip coefficient with it); a NaN found at a later read
// still stops at the step it happened, with the parameters from before it saved; a resumed run
// continues exactly. On WebGPU (where the path is the default): one readback per read point, a
// training step in at most two submissions, and the same NaN stop.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as mi from '../../engine/index.ts';
import type { Backend } from '../../engine/index.ts';
import { initMamba, type MambaLM } from '../../mamba/model.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { type LossCurve, train, type TrainOptions } from '../../mamba/train.ts';
import { getWebGpu } from '../helpers/webgpu.ts';
import { counting, TOY_CONFIG, tempDirs, toyTraining } from '../helpers/train-loop.ts';

const test = suite('training with deferred reads');
const onGpu = suite('training with deferred reads on WebGPU');
const config = TOY_CONFIG;
const tmp = tempDirs([test, onGpu], 'mi-train-deferred-');
const base = (outDir: string): TrainOptions => toyTraining(outDir, [1000, 1001]);

const cpu = () => initMamba(config, new mi.Rng('deferred'), { backend: mi.cpuBackend() });

async function paramsOf(m: MambaLM): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [n, t] of m.params) out.set(n, Float32Array.from(await t.data()));
  return out;
}

const nanAt =
  (bad: number, seen: { before: Float32Array | null }) =>
  (m: MambaLM, ids: mi.Tensor, step: number): mi.Tensor => {
    const T = ids.shape[1];
    const l = mi.crossEntropy(mi.slice(m.forward(ids), 1, 0, T - 1), mi.slice(ids, 1, 1, T));
    if (step !== bad) return l;
    const w = m.p('backbone.layers.0.mixer.in_proj.weight');
    // on the CPU read at once; on WebGPU the test reads it after train() (the step records first)
    if (w.backend.readSync) seen.before = Float32Array.from(w.dataSync());
    else {
      const copy = mi.keep(mi.mul(w, 1));
      void copy.data().then((d) => {
        seen.before = Float32Array.from(d);
        copy.dispose();
      });
    }
    return mi.mul(l, NaN);
  };

test('without clipping, reading every 5 steps gives the curve and parameters of reading every step, exactly', async () => {
  const [a, b] = [cpu(), cpu()];
  const eager = await train(a, { ...base(await tmp()), clipNorm: 0 });
  const late = await train(b, { ...base(await tmp()), clipNorm: 0, readEvery: 5 });
  assert.equal(late, eager);
  const [pa, pb] = [await paramsOf(a), await paramsOf(b)];
  for (const [n, v] of pa) assert.equal(pb.get(n), v, n);
  a.dispose();
  b.dispose();
});

test('with clipping, the same points (gradient norms included) to float32 rounding', async () => {
  const [a, b] = [cpu(), cpu()];
  const eager = await train(a, { ...base(await tmp()), clipNorm: 0.5 });
  const late = await train(b, { ...base(await tmp()), clipNorm: 0.5, readEvery: 4 });
  assert.is(late.train.length, eager.train.length);
  late.train.forEach((p, i) => {
    const q = eager.train[i];
    assert.is(p.step, q.step);
    assert.is(p.lr, q.lr);
    assert.ok(Math.abs(p.loss - q.loss) <= 1e-4 * Math.abs(q.loss), `step ${p.step}: loss ${p.loss} vs ${q.loss}`);
    assert.ok(Math.abs(p.gradNorm - q.gradNorm) <= 1e-4 * q.gradNorm, `step ${p.step}: |g| ${p.gradNorm} vs ${q.gradNorm}`);
  });
  assert.ok(
    eager.train.some((p) => p.gradNorm > 0.5),
    'some step is clipped',
  );
  a.dispose();
  b.dispose();
});

async function nanStop(make: () => MambaLM, readEvery?: number): Promise<{ err: Error | null; dir: string; before: Float32Array | null }> {
  const outDir = await tmp();
  const model = make();
  const seen = { before: null as Float32Array | null };
  const err = await train(model, { ...base(outDir), ...(readEvery && { readEvery }), loss: nanAt(4, seen) }).then(
    () => null,
    (e: Error) => e,
  );
  model.dispose();
  return { err, dir: outDir, before: seen.before };
}

async function assertStoppedAt4(r: { err: Error | null; dir: string; before: Float32Array | null }, backend: Backend) {
  assert.ok(r.err && /loss is NaN at step 4 \(found by the read after step 6, of steps 1-6\)/.test(r.err.message), String(r.err));
  const state = JSON.parse(await readFile(join(r.dir, 'checkpoint', 'trainer_state.json'), 'utf-8'));
  assert.is(state.step, 3);
  assert.is(state.optimizer_step, 3);
  assert.equal(
    (state.curve as LossCurve).train.map((p) => p.step),
    [1, 2, 3],
  );
  const saved = await loadPretrained(join(r.dir, 'checkpoint'), { backend });
  assert.ok(r.before, 'the parameters before step 4 were captured');
  assert.equal(Float32Array.from(await saved.p('backbone.layers.0.mixer.in_proj.weight').data()), r.before!);
  saved.dispose();
}

test('a NaN at step 4 found by the read after step 6 stops at step 4 with the parameters after step 3 saved', async () => {
  await assertStoppedAt4(await nanStop(cpu, 6), mi.cpuBackend());
});

test('resuming from the step-6 checkpoint continues as the uninterrupted run', async () => {
  const o = { readEvery: 4 };
  const a = cpu();
  const straight = await train(a, { ...base(await tmp()), ...o });
  const dir = await tmp();
  const b = cpu();
  await train(b, {
    ...base(dir),
    ...o,
    batch: (s) => {
      if (s > 6) throw new Error('interrupted');
      return counting(s);
    },
  }).catch((e: Error) => assert.match(e.message, 'interrupted'));
  const c = initMamba(config, new mi.Rng('other'), { backend: mi.cpuBackend() });
  const resumed = await train(c, { ...base(dir), ...o });
  assert.equal(resumed.train, straight.train);
  const [pa, pc] = [await paramsOf(a), await paramsOf(c)];
  for (const [n, v] of pa) assert.equal(pc.get(n), v, n);
  for (const m of [a, b, c]) m.dispose();
});

test.run();

const gpu = await getWebGpu();

onGpu('12 steps read back at the log, eval and checkpoint steps only; a NaN stops as on the CPU', async () => {
  if (!gpu) return;
  const make = () => initMamba(config, new mi.Rng('deferred'), { backend: gpu });
  const model = make();
  const before = { ...gpu.stats };
  const curve = await train(model, { ...base(await tmp()), checkpointEvery: 100, logEvery: 6, evalEvery: 12 });
  const reads = gpu.stats.readbacks - before.readbacks;
  const submits = gpu.stats.submits - before.submits;
  // losses at steps 6 and 12 (one read each), the eval at 12 (one read for both batches), the
  // checkpoint at 12 (every parameter and both moments of each)
  const ckptReads = 3 * model.params.size;
  assert.is(reads, 2 + 1 + ckptReads, `${reads} readbacks`);
  assert.ok(submits <= 2 * 12 + 2 + ckptReads, `${submits} submissions for 12 steps`);
  assert.is(curve.train.length, 12);
  assert.ok(curve.train.every((p, i) => p.step === i + 1 && Number.isFinite(p.loss) && p.gradNorm > 0));
  assert.ok(curve.train[11].loss < curve.train[0].loss, 'the loss falls');
  // the same run on the CPU: the same curve to float32 rounding of the kernels
  const ref = await train(cpu(), { ...base(await tmp()), checkpointEvery: 100, logEvery: 6, evalEvery: 12 });
  curve.train.forEach((p, i) =>
    assert.ok(Math.abs(p.loss - ref.train[i].loss) < 2e-3, `step ${p.step}: ${p.loss} vs ${ref.train[i].loss}`),
  );
  model.dispose();
  await assertStoppedAt4(await nanStop(make), gpu);
});

onGpu.run();
