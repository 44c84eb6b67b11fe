// Step 10: cross-seed reproducibility. For the models of one task trained at different seeds:
//  - SAE dictionaries matched one-to-one on decoder cosine (Hungarian); the fraction of latents
//    whose partner reaches config.repro.threshold, against the same matching to random unit
//    directions (interp/similarity.ts);
//  - circuits of the same source and kind (step 5): Jaccard overlap of their channels and positions,
//    against random sets of the same sizes;
//  - linear CKA of every layer's residual stream between the seeds on the same held-out sequences,
//    against a randomly initialised model of the same shape; a model with itself gives 1.
// Step 3 trains SAEs for the first sae.seeds models only; the other seeds' SAEs (first SAE kind)
// are trained here with step 3's settings on step 2's activations, so every seed has one.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import { initMamba } from '../mamba/model.ts';
import type { MambaLM } from '../mamba/model.ts';
import { expandHookPatterns } from '../interp/collect.ts';
import { hookDim, positionMask } from '../interp/patching.ts';
import { fmt, heatmap, intervalChart, type Claim, type Spec } from '../interp/report/index.ts';
import { decoderDirections, type Sae, type SaeKind } from '../interp/sae/index.ts';
import {
  ckaFromStats,
  ckaStats,
  jaccard,
  matchDictionaries,
  exactJaccardNull,
  randomUnitRows,
  resampleWeights,
  sharedFraction,
  unionIndicators,
  type CkaStats,
} from '../interp/similarity.ts';
import { pending } from '../interp/claims.ts';
import { bootstrapCI, normalCdf, permutationTest, quantile, std } from '../interp/stats.ts';
import { getTask, type AnyTaskOptions } from '../interp/tasks/index.ts';
import { CIRCUITS_DIR, loadActivations, loadCollections, loadSaeRecord, loadSaeRecords, type Circuit } from './artefacts.ts';
import { byTask, studyModels, type StudyModel } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import { trainConfiguredSae } from './sae-training.ts';
import type { Step, StepContext } from './step.ts';
import { stepInfo } from './table.ts';

const meanOf = (x: Float64Array) => x.reduce((s, v) => s + v, 0) / x.length;

interface SaeMatchResult {
  task: string;
  seedA: number;
  seedB: number;
  hook: string;
  kind: string;
  latents: number;
  threshold: number;
  shared: number;
  sharedInterval: [number, number];
  control: number;
  controlInterval: [number, number];
  meanCosine: number;
  controlMeanCosine: number;
  p: number;
  /** where each SAE came from: step 3 or trained here */ sources: [string, string];
  cosines: number[];
  controlCosines: number[];
}

/** Decoder directions [latents, d] of each seed's SAE at `hook` (step 3's, or trained here). */
async function seedDictionaries(
  ctx: StepContext,
  task: string,
  seeds: number[],
  hook: string,
  kind: SaeKind,
): Promise<Map<number, { dirs: Float32Array; d: number; latents: number; source: string }>> {
  const records = loadSaeRecords(ctx.runDir).filter((r) => r.task === task && r.hook === hook && r.kind === kind);
  const collections = loadCollections(ctx.runDir);
  const out = new Map<number, { dirs: Float32Array; d: number; latents: number; source: string }>();
  for (const seed of seeds) {
    const rec = records.find((r) => r.seed === seed);
    let sae: Sae;
    let source = 'step 3';
    if (rec) sae = await loadSaeRecord(ctx.runDir, rec, { backend: mi.cpuBackend() });
    else {
      const c = collections.find((x) => x.task === task && x.seed === seed);
      if (!c) throw new Error(`step 10: no step-2 collection for ${task}-s${seed} to train its SAE on`);
      const acts = await loadActivations(ctx.runDir, c, hook);
      const name = `${task}-s${seed} ${hook} ${kind}`;
      sae = await trainConfiguredSae(ctx, acts, kind, ctx.rng(`sae/${name}`).int(0, 2 ** 31), (p) =>
        ctx.progress(`SAE ${name}`, p.step + 1, p.steps),
      );
      source = 'trained here';
    }
    try {
      out.set(seed, { dirs: await decoderDirections(sae), d: sae.d, latents: sae.latents, source });
    } finally {
      sae.dispose();
    }
  }
  return out;
}

/** Every layer's residual stream on `ids`, as [rows, d] arrays. */
async function residuals(model: MambaLM, ids: mi.Tensor): Promise<Float32Array[]> {
  const hooks = Array.from({ length: model.config.num_hidden_layers }, (_, l) => `blocks.${l}.hook_resid_post`);
  return mi.tidyAsync(async () => {
    const { cache } = mi.noGrad(() => model.runWithCache(ids, hooks));
    const out: Float32Array[] = [];
    for (const h of hooks) out.push(Float32Array.from(await cache.get(h)!.data()));
    return out;
  });
}

interface CkaEstimate {
  estimate: number;
  interval: [number, number];
}

/** CKA with a bootstrap over sequences (all groups resampled with the same weights for paired use). */
function ckaWithInterval(s: CkaStats, weights: Float64Array[]): CkaEstimate & { reps: Float64Array } {
  const reps = Float64Array.from(weights, (w) => ckaFromStats(s, w));
  const sorted = reps.filter(Number.isFinite).sort();
  return { estimate: ckaFromStats(s), interval: [quantile(sorted, 0.025, true), quantile(sorted, 0.975, true)], reps };
}

function cosineHistogram(rows: { series: string; cosine: number }[], title: string): Spec {
  return {
    title,
    width: 380,
    height: 220,
    data: { values: rows },
    mark: { type: 'bar', opacity: 0.6 },
    encoding: {
      x: { field: 'cosine', type: 'quantitative', bin: { maxbins: 30, extent: [-0.2, 1] }, title: 'matched decoder cosine' },
      y: { aggregate: 'count', type: 'quantitative', title: 'latents', stack: null },
      color: { field: 'series', type: 'nominal', title: null },
    },
  } as Spec;
}

/** The smallest p the asymptotic CKA test reports (z of about 8). */
const ASYMPTOTIC_FLOOR = 1e-15;

export const reproducibilityStep: Step = {
  ...stepInfo('reproducibility'),
  version: 3,
  needs: [1, 2, 3, 5],
  configKeys: ['repro', 'sae', 'train', 'permutations'],
  appliesToModel: false,
  async run(ctx) {
    const rc = ctx.config.repro;
    const report = ctx.report();
    const modelsByTask = byTask(studyModels(ctx));
    const tasks = [...modelsByTask.keys()];
    const kind = ctx.config.sae.kinds[0] as SaeKind;
    const saeMatches: SaeMatchResult[] = [];
    const circuitRows: Record<string, unknown>[] = [];
    const ckaRows: Record<string, unknown>[] = [];
    const claims: Claim[] = [];
    const circuits: Circuit[] = existsSync(join(ctx.runDir, CIRCUITS_DIR, 'circuits.json'))
      ? ctx.readJson<Circuit[]>(5, 'circuits.json')
      : [];

    for (const [task, ms] of modelsByTask) {
      if (ms.length < 2) {
        report.notes.push(`${task}: one seed only, nothing to compare.`);
        continue;
      }
      const seeds = ms.map((m) => m.seed);
      const pairs: [StudyModel, StudyModel][] = [];
      for (let i = 0; i < ms.length; i++) for (let j = i + 1; j < ms.length; j++) pairs.push([ms[i], ms[j]]);

      // --- SAE dictionaries
      const hook = expandHookPatterns(ctx.config.sae.hooks, ctx.config.train.layers)[0];
      const dicts = await seedDictionaries(ctx, task, seeds, hook, kind);
      for (const [a, b] of pairs) {
        const A = dicts.get(a.seed)!,
          B = dicts.get(b.seed)!;
        const name = `${task} s${a.seed}-s${b.seed}`;
        const match = matchDictionaries(A.dirs, B.dirs, A.d);
        const ctrl = matchDictionaries(A.dirs, randomUnitRows(B.latents, B.d, ctx.rng(`random-dirs/${name}`)), A.d);
        const ind = (c: Float64Array) => Float64Array.from(c, (v) => (v >= rc.threshold ? 1 : 0));
        const ci = bootstrapCI(ind(match.cosine), ctx.rng(`boot/${name}`), meanOf, { nBoot: rc.bootstrap, method: 'percentile' });
        const cci = bootstrapCI(ind(ctrl.cosine), ctx.rng(`boot-ctrl/${name}`), meanOf, { nBoot: rc.bootstrap, method: 'percentile' });
        const test = permutationTest(match.cosine, ctrl.cosine, ctx.rng(`perm/${name}`), {
          nPerm: ctx.config.permutations,
          alternative: 'greater',
        });
        saeMatches.push({
          task,
          seedA: a.seed,
          seedB: b.seed,
          hook,
          kind,
          latents: A.latents,
          threshold: rc.threshold,
          shared: sharedFraction(match.cosine, rc.threshold),
          sharedInterval: [ci.lo, ci.hi],
          control: sharedFraction(ctrl.cosine, rc.threshold),
          controlInterval: [cci.lo, cci.hi],
          meanCosine: meanOf(match.cosine),
          controlMeanCosine: meanOf(ctrl.cosine),
          p: test.pValue,
          sources: [A.source, B.source],
          cosines: [...match.cosine],
          controlCosines: [...ctrl.cosine],
        });
      }
      const first = saeMatches.filter((s) => s.task === task)[0];
      claims.push({
        statement: `${task}: SAE latents (${kind}, ${hook}) shared between seeds ${first.seedA} and ${first.seedB} (matched decoder cosine >= ${rc.threshold})`,
        estimate: first.shared,
        interval: first.sharedInterval,
        level: 0.95,
        test: `one-sided permutation test on matched cosines, seed pair vs random directions (${ctx.config.permutations} permutations)`,
        p: first.p,
        pFloor: 1 / (ctx.config.permutations + 1),
        control: `the same Hungarian matching against ${first.latents} random unit directions`,
        controlEstimate: first.control,
        controlInterval: first.controlInterval,
        ...pending(first.sharedInterval[0] > first.controlInterval[1], "interval above the random-direction control's"),
      });
      report.figures.push(
        await saveFigure(
          ctx,
          `cosines-${task}`,
          cosineHistogram(
            [
              ...first.cosines.map((cosine) => ({ series: `seed ${first.seedA} vs seed ${first.seedB}`, cosine })),
              ...first.controlCosines.map((cosine) => ({ series: 'vs random directions', cosine })),
            ],
            `${task}: matched SAE decoder cosines`,
          ),
          `Matched SAE latents across seeds (${task})`,
          `Hungarian matching of the ${first.latents} ${kind} SAE latents at ${hook}, seed ${first.seedA} to seed ${first.seedB}, on decoder cosine; the control matches the same dictionary to random unit directions. Latents at or above ${rc.threshold} count as shared.`,
        ),
      );

      // --- CKA per layer, on the same held-out sequences
      const batch = getTask(task).generate(ms[0].taskOptions as unknown as AnyTaskOptions, ctx.rng(`cka-batch/${task}`), rc.sequences);
      const [B, T] = batch.shape;
      const group = Int32Array.from({ length: B * T }, (_, r) => Math.floor(r / T));
      const reps = new Map<number, Float32Array[]>();
      let randomReps: Float32Array[] = [];
      for (const m of ms) {
        const model = await m.load();
        try {
          const ids = mi.tensor(batch.inputs, batch.shape, { dtype: 'int32', backend: model.backend });
          reps.set(m.seed, await residuals(model, ids));
          if (m === ms[0]) {
            const random = initMamba(model.config, ctx.rng(`random-init/${task}`), { backend: model.backend });
            try {
              randomReps = await residuals(random, ids);
            } finally {
              random.dispose();
            }
          }
          ids.dispose();
        } finally {
          model.dispose();
        }
      }
      const d = ctx.config.train.hiddenSize,
        layers = ctx.config.train.layers;
      const weights = Array.from({ length: rc.bootstrap }, (_, k) => resampleWeights(B, ctx.rng(`cka-boot/${task}/${k}`)));
      for (const [a, b] of pairs) {
        const RA = reps.get(a.seed)!,
          RB = reps.get(b.seed)!;
        const matrix = RA.map((xa) => RB.map((xb) => ckaFromStats(ckaStats(xa, xb, d, d))));
        const diag = RA.map((xa, l) => ckaWithInterval(ckaStats(xa, RB[l], d, d, group), weights));
        const ctrl = RA.map((xa, l) => ckaWithInterval(ckaStats(xa, randomReps[l], d, d, group), weights));
        const self = RA.map((xa) => ckaFromStats(ckaStats(xa, xa, d, d)));
        for (let l = 0; l < layers; l++) {
          // paired bootstrap: the same resampled sequences for the seed pair and the control. The
          // p-value is asymptotic (z = difference / its bootstrap SE): counting resamples below 0
          // could go no lower than 1/(B + 1), a floor no claim survives run-wide Holm with, and
          // B large enough for that costs a CKA per resample.
          const diffs = diag[l].reps.map((v, k) => v - ctrl[l].reps[k]).filter(Number.isFinite);
          const se = diffs.length >= 2 ? std(diffs) : 0;
          const z = se > 0 ? (diag[l].estimate - ctrl[l].estimate) / se : -Infinity;
          ckaRows.push({
            task,
            seedA: a.seed,
            seedB: b.seed,
            layer: l,
            cka: diag[l].estimate,
            interval: diag[l].interval,
            control: ctrl[l].estimate,
            controlInterval: ctrl[l].interval,
            self: self[l],
            // the normal approximation of a bootstrap SE means nothing past z ~ 8: p stops at ASYMPTOTIC_FLOOR
            p: Math.max(normalCdf(-z), ASYMPTOTIC_FLOOR),
          });
        }
        ckaRows.push({ task, seedA: a.seed, seedB: b.seed, matrix });
        if (a === pairs[0][0] && b === pairs[0][1]) {
          report.figures.push(
            await saveFigure(
              ctx,
              `cka-${task}`,
              heatmap(matrix, {
                title: `${task}: linear CKA, seed ${a.seed} (rows) vs seed ${b.seed} (columns)`,
                rowTitle: `layer, seed ${a.seed}`,
                colTitle: `layer, seed ${b.seed}`,
                valueTitle: 'CKA',
                width: 60 * layers + 80,
                height: 60 * layers + 40,
              }),
              `CKA between seeds (${task})`,
              `Linear CKA of the residual stream (blocks.l.hook_resid_post) of every layer pair, on the same ${B} held-out sequences (${B * T} positions). Against a randomly initialised model the last layer gives ${fmt(ctrl[layers - 1].estimate)}.`,
            ),
          );
          const l = layers - 1;
          const row = ckaRows.find((r) => r.task === task && r.layer === l) as { p: number };
          claims.push({
            statement: `${task}: last-layer residual representations agree across seeds (linear CKA, seed ${a.seed} vs ${b.seed})`,
            estimate: diag[l].estimate,
            interval: diag[l].interval,
            level: 0.95,
            test: `one-sided normal test of CKA(seed pair) - CKA(random-init model) over its paired-bootstrap SE (${rc.bootstrap} resamples of sequences; asymptotic: p below ${ASYMPTOTIC_FLOOR} is reported as ${ASYMPTOTIC_FLOOR}, where the normal tail stops meaning anything)`,
            p: row.p,
            pFloor: ASYMPTOTIC_FLOOR,
            control: 'CKA with a randomly initialised model of the same shape on the same sequences',
            controlEstimate: ctrl[l].estimate,
            controlInterval: ctrl[l].interval,
            ...pending(diag[l].interval[0] > ctrl[l].interval[1], "interval above the random-init control's"),
          });
        }
      }

      // --- circuits of the same source and kind
      const probeModel = await ms[0].load();
      try {
        const cBatch = getTask(task).generate(ms[0].taskOptions as unknown as AnyTaskOptions, ctx.rng(`circuit-batch/${task}`), 16);
        for (const [a, b] of pairs) {
          const ofSeed = (s: number) => circuits.filter((c) => c.task === task && c.seed === s && c.channels.length);
          for (const ca of ofSeed(a.seed)) {
            const kindId = ca.id.slice(ca.id.indexOf('/') + 1);
            const cb = ofSeed(b.seed).find((c) => c.id.slice(c.id.indexOf('/') + 1) === kindId);
            if (!cb) continue;
            const name = `${task} s${a.seed}-s${b.seed} ${kindId}`;
            const sameHook = ca.hook === cb.hook;
            const channelJ = sameHook ? jaccard(ca.channels, cb.channels) : 0;
            const ind = unionIndicators(ca.channels, cb.channels);
            const ci =
              sameHook && ind.length >= 2
                ? bootstrapCI(ind, ctx.rng(`circuit-boot/${name}`), meanOf, { nBoot: rc.bootstrap, method: 'percentile' })
                : { lo: channelJ, hi: channelJ };
            const nul = exactJaccardNull(ca.channels.length, cb.channels.length, hookDim(probeModel, ca.hook), channelJ);
            const cell = (m: Uint8Array) => [...m.keys()].filter((i) => m[i]);
            const positionJ = jaccard(cell(positionMask(ca.positions, cBatch)), cell(positionMask(cb.positions, cBatch)));
            circuitRows.push({
              task,
              seedA: a.seed,
              seedB: b.seed,
              circuit: kindId,
              hookA: ca.hook,
              hookB: cb.hook,
              sameHook,
              size: [ca.channels.length, cb.channels.length],
              channelJaccard: channelJ,
              interval: [ci.lo, ci.hi],
              control: nul.mean,
              controlInterval: nul.interval,
              p: nul.p,
              positionJaccard: positionJ,
            });
          }
        }
      } finally {
        probeModel.dispose();
      }
      const main = circuitRows.find((r) => r.task === task) as
        | {
            circuit: string;
            seedA: number;
            seedB: number;
            channelJaccard: number;
            interval: [number, number];
            control: number;
            controlInterval: [number, number];
            p: number;
          }
        | undefined;
      if (main) {
        claims.push({
          statement: `${task}: the ${main.circuit} circuit's channels overlap across seeds ${main.seedA} and ${main.seedB} (Jaccard)`,
          estimate: main.channelJaccard,
          interval: main.interval,
          level: 0.95,
          test: 'exact one-sided test against random channel sets of the same sizes (hypergeometric intersection; no Monte-Carlo floor)',
          p: main.p,
          control: 'Jaccard of random channel sets of the same sizes on the same hook',
          controlEstimate: main.control,
          controlInterval: main.controlInterval,
          ...pending(main.interval[0] > main.controlInterval[1], "interval above the random-set control's"),
        });
      }
      ctx.progress('tasks', tasks.indexOf(task) + 1, tasks.length);
    }

    if (circuitRows.length) {
      const rows = circuitRows.flatMap((r) => {
        const label = `${r.task} s${r.seedA}/s${r.seedB} ${r.circuit}`;
        const [lo, hi] = r.interval as [number, number],
          [clo, chi] = r.controlInterval as [number, number];
        return [
          { circuit: label, series: 'seed pair', value: r.channelJaccard as number, lo, hi },
          { circuit: label, series: 'random sets', value: r.control as number, lo: clo, hi: chi },
        ];
      });
      report.figures.push(
        await saveFigure(
          ctx,
          'circuit-overlap',
          intervalChart(rows, {
            title: 'Circuit channels shared across seeds',
            category: 'circuit',
            value: 'value',
            lo: 'lo',
            hi: 'hi',
            color: 'series',
            valueTitle: 'Jaccard of channel sets',
          }),
          'Circuit overlap across seeds',
          "Jaccard index of the channel sets of the same circuit (same source and kind, step 5) in two seeds' models, with a bootstrap interval over the channels of their union, next to random channel sets of the same sizes (mean and 95% range).",
        ),
      );
      report.tables.push({
        title: 'Circuit overlap across seeds',
        columns: ['task', 'seeds', 'circuit', 'same hook', 'channel Jaccard', 'CI', 'random', 'p', 'position Jaccard'],
        rows: circuitRows.map((r) => [
          r.task as string,
          `${r.seedA}/${r.seedB}`,
          r.circuit as string,
          r.sameHook ? 'yes' : 'no',
          r.channelJaccard as number,
          (r.interval as number[]).map(fmt).join(' to '),
          r.control as number,
          r.p as number,
          r.positionJaccard as number,
        ]),
      });
    } else report.notes.push('No step-5 circuits with channel sets for two seeds of a task: circuit overlap not measured.');
    report.tables.push({
      title: 'SAE latents shared across seeds',
      columns: ['task', 'seeds', 'hook', 'SAE', 'shared', 'CI', 'random directions', 'mean cosine', 'p', 'SAEs from'],
      rows: saeMatches.map((s) => [
        s.task,
        `${s.seedA}/${s.seedB}`,
        s.hook,
        s.kind,
        s.shared,
        s.sharedInterval.map(fmt).join(' to '),
        s.control,
        s.meanCosine,
        s.p,
        s.sources.join(', '),
      ]),
    });
    report.notes.push(
      `CKA is linear CKA (Kornblith et al. 2019) on centred activations, feature-space form; intervals resample whole sequences. The "self" column of reproducibility.json (a model with itself) is 1 by construction and checks the computation. SAEs missing from step 3 (it trains sae.seeds = ${ctx.config.sae.seeds} seed(s) per task) are trained here with step 3's settings, ${kind} kind only.`,
    );
    report.claims.push(...claims);
    ctx.writeJson('reproducibility.json', { threshold: rc.threshold, sae: saeMatches, circuits: circuitRows, cka: ckaRows });
    const lastCka = ckaRows.filter((r) => r.layer === ctx.config.train.layers - 1);
    report.summary = `${tasks.length} tasks: shared SAE latents ${saeMatches.map((s) => `${s.task} ${fmt(s.shared)}`).join(', ')} (random ${fmt(Math.max(0, ...saeMatches.map((s) => s.control)))}); last-layer CKA ${lastCka.map((r) => fmt(r.cka as number)).join(', ')} vs random-init ${lastCka.map((r) => fmt(r.control as number)).join(', ')}; ${circuitRows.length} circuit pairs compared.`;
    // NaN is not JSON: undefined values (e.g. a ratio to a zero effect) show as n/a
    for (const t of report.tables) t.rows = t.rows.map((r) => r.map((v) => (typeof v === 'number' && !Number.isFinite(v) ? 'n/a' : v)));
    saveReport(ctx, report);
    return report.summary;
  },
};
