// Projected time of a `--model` run for mamba-130m, from a finished run on a small checkpoint:
// times one forward and one training step (forward + backward) per token for the run's model shape
// and for mamba-130m's shape on the backend in use, interleaved (the machine drifts), and projects
// each step from its measured time, split in two:
//   - model work: step 14's per-step workload (steps/step14-scaleup.ts: forward and backward tokens)
//     priced at the run's shape; that share of the measured time is scaled by the same workload's
//     price at the 130m width and cost per token over its price at the run's shape. Where the
//     workload over-counts (its price exceeds the measured time: step 6 caches and batches more than
//     the workload assumes), the whole step is taken as model work, so the ratio calibrates it.
//   - the rest: fitting SAEs and probes (steps 3-4) grows with tokens x width x latents, so it is
//     scaled by (768 / the run's width)^2; elsewhere (statistics, the report) it is kept as measured.
// Steps that do not apply to a checkpoint (1, 5, 7, 10, 11, 14) are not in a --model run.
//   npx tsx bench/projection.ts --run DIR [--reps N]      (DIR: a finished --model run, e.g. on
//   ../shared/fixtures/hf-mamba/small/model; prints a markdown table and the load average)
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import * as mi from '../engine/index.ts';
import { measure, type Measurement, type ShapePoint } from '../interp/scaling.ts';
import { readConfig } from '../mamba/config.ts';
import type { RunConfig } from '../steps/config.ts';
import { workloads } from '../steps/step14-scaleup.ts';
import { STEPS } from '../steps/index.ts';

const { values } = parseArgs({ options: { run: { type: 'string' }, reps: { type: 'string', default: '2' } } });
if (!values.run || !existsSync(join(values.run, 'config.json'))) {
  console.error('bench/projection.ts: --run DIR must name a finished run (a folder with config.json)');
  process.exit(2);
}
const run = values.run;
const reps = Number(values.reps);
const config = JSON.parse(readFileSync(join(run, 'config.json'), 'utf8')) as RunConfig;
if (!config.model) {
  console.error(`bench/projection.ts: ${run} is not a --model run (its config.json has no "model")`);
  process.exit(2);
}
const ckpt = await readConfig(config.model);
const T = config.train.seqLen;
const own: ShapePoint = {
  hidden: ckpt.hidden_size,
  layers: ckpt.num_hidden_layers,
  seqLen: T,
  batch: 1,
  stateSize: ckpt.state_size,
  vocab: ckpt.vocab_size,
  expand: ckpt.intermediate_size / ckpt.hidden_size,
};
const m130: ShapePoint = { hidden: 768, layers: 24, seqLen: T, batch: 1, stateSize: 16, vocab: 50280, expand: 2 };

const backend = await mi.initBackend(process.env.MI_BACKEND === 'webgpu' ? 'webgpu' : 'cpu');
const load0 = loadavg()[0];
const rng = new mi.Rng('projection');
const runs: { own: Measurement[]; m130: Measurement[] } = { own: [], m130: [] };
for (let i = 0; i < 2; i++) {
  runs.own.push(await measure(own, rng.fork(`own${i}`), { reps, backend }));
  runs.m130.push(await measure(m130, rng.fork(`m130${i}`), { reps, backend }));
}
const best = (ms: Measurement[]) => ({
  fwd: Math.min(...ms.map((m) => m.forwardMsPerToken)),
  train: Math.min(...ms.map((m) => m.trainMsPerToken)),
});
const costOwn = best(runs.own),
  cost130 = best(runs.m130);

const seconds = (id: number): number | null => {
  const dir = STEPS[id] ? join(run, `step-${String(id).padStart(2, '0')}-${STEPS[id].name}`) : '';
  const done = join(dir, 'done.json');
  return existsSync(done) ? (JSON.parse(readFileSync(done, 'utf8')) as { seconds: number }).seconds : null;
};
const work = (hidden: number) => new Map(workloads(config, hidden).map((w) => [w.step, w]));
const modelSeconds = (w: { forwardTokens: number; trainTokens: number } | undefined, c: { fwd: number; train: number }) =>
  w ? (w.forwardTokens * c.fwd + w.trainTokens * c.train) / 1000 : 0;
const widthFactor = (768 / own.hidden) ** 2;
const fmtTime = (s: number) => (s < 120 ? `${s.toFixed(1)} s` : s < 7200 ? `${(s / 60).toFixed(1)} min` : `${(s / 3600).toFixed(1)} h`);

console.log(`run ${run}: model ${config.model} (hidden ${own.hidden}, ${own.layers} layers, vocab ${own.vocab}), seqLen ${T}`);
console.log(`backend ${backend.name}; per token, best of 2 interleaved x ${reps} reps:`);
console.log(`  run's shape: forward ${costOwn.fwd.toFixed(4)} ms, train ${costOwn.train.toFixed(4)} ms`);
console.log(`  mamba-130m:  forward ${cost130.fwd.toFixed(4)} ms, train ${cost130.train.toFixed(4)} ms`);
console.log('');
console.log("| step | measured | its model work, priced at the run's shape | projected for mamba-130m |");
console.log('| --- | ---: | ---: | ---: |');
let total = 0,
  totalOwn = 0;
for (const id of STEPS.map((s) => s.id)) {
  const measured = seconds(id);
  if (measured === null) continue;
  const priceOwn = modelSeconds(work(own.hidden).get(id), costOwn);
  const price130 = modelSeconds(work(768).get(id), cost130);
  const modelShare = measured > 0 ? Math.min(1, priceOwn / measured) : 0;
  const rest = measured * (1 - modelShare);
  const projected = (priceOwn > 0 ? measured * modelShare * (price130 / priceOwn) : 0) + rest * (id === 3 || id === 4 ? widthFactor : 1);
  total += projected;
  totalOwn += measured;
  console.log(`| ${id} ${STEPS[id].title} | ${fmtTime(measured)} | ${fmtTime(priceOwn)} | ${fmtTime(projected)} |`);
}
console.log(`| all | ${fmtTime(totalOwn)} | | ${fmtTime(total)} |`);
console.log('');
console.log(`load average ${load0.toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end`);
