// Step 10: cross-seed reproducibility, compared by what the models do on the same inputs, since
// independently trained models share no basis (a feature both learned sits at unrelated
// coordinates, so decoder cosines or channel indices of one say nothing about the other's):
//  - SAE latents matched by activation correlation on the same held-out tokens: for each latent,
//    its largest Pearson correlation with any latent of the other seed's SAE (mean max correlation,
//    the fraction at or above config.repro.threshold) and a one-to-one Hungarian matching on
//    correlation, against a null that shifts one seed's tokens circularly within each sequence
//    (interp/similarity.ts). "Towards Universality" (Wang et al. 2024) finds about 30% of latents
//    shared between Mamba-130M and a transformer's SAEs, for reference;
//  - linear CKA and SVCCA of every layer's residual stream between the seeds, against a randomly
//    initialised model of the same shape; a model with itself gives CKA 1;
//  - circuits (step 5) by function, a table: one seed's residual-stream circuit located in the
//    other seed's model (each channel's best-correlated channel there) and compared with that
//    seed's own circuit, against the first seed's matched controls located the same way;
//  - basis-dependent, kept as labelled tables and not claims: SAE decoder directions matched on
//    cosine, and the Jaccard overlap of circuits' channel indices.
// The unit is the seed pair, and pairs share seeds (3 seeds, 3 pairs, each two sharing one): a
// claim's interval is a jackknife over seeds of the mean over pairs (seedPairInterval), and its p
// the largest of the pairs' p-values, an intersection-union test that is valid however the pairs
// depend on one another (it claims that every pair agrees). Step 3 trains SAEs for the first
// sae.seeds models only; the other seeds' SAEs (first SAE kind) are trained here with step 3's
// settings on step 2's activations, so every seed has one.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import { initMamba } from '../mamba/model.ts';
import type { MambaLM } from '../mamba/model.ts';
import { expandHookPatterns } from '../interp/collect.ts';
import { hookDim, positionMask } from '../interp/patching.ts';
import { fmt, heatmap, type Claim, type Spec } from '../interp/report/index.ts';
import { decoderDirections, encodeAll, type Sae, type SaeKind } from '../interp/sae/index.ts';
import {
  activationCorrelations,
  ckaFromStats,
  ckaStats,
  circularShiftRows,
  exactJaccardNull,
  jaccard,
  locateChannels,
  matchByCorrelation,
  matchDictionaries,
  randomUnitRows,
  resampleWeights,
  seedPairInterval,
  sharedFraction,
  svccaFromStats,
  sparseCodes,
  type CkaStats,
  type CorrelationMatch,
  type SparseCodes,
} from '../interp/similarity.ts';
import { pending } from '../interp/claims.ts';
import { bootstrapCI, mean, normalCdf, quantile, std, studentTCdf } from '../interp/stats.ts';
import { getTask, type AnyTaskOptions } from '../interp/tasks/index.ts';
import { CIRCUITS_DIR, loadActivations, loadCollections, loadSaeRecord, loadSaeRecords, type Circuit } from './artefacts.ts';
import { byTask, studyModels, type StudyModel } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import { trainConfiguredSae } from './sae-training.ts';
import type { Step, StepContext } from './step.ts';
import { stepInfo } from './table.ts';

/** The smallest p the asymptotic tests report (a normal or t tail means nothing much past z of about 8). */
const ASYMPTOTIC_FLOOR = 1e-15;

/** One seed's SAE at `hook`: step 3's, or trained here on step 2's activations. */
async function seedSae(ctx: StepContext, task: string, seed: number, hook: string, kind: SaeKind): Promise<{ sae: Sae; source: string }> {
  const rec = loadSaeRecords(ctx.runDir).find((r) => r.task === task && r.hook === hook && r.kind === kind && r.seed === seed);
  if (rec) return { sae: await loadSaeRecord(ctx.runDir, rec, { backend: mi.cpuBackend() }), source: 'step 3' };
  const c = loadCollections(ctx.runDir).find((x) => x.task === task && x.seed === seed);
  if (!c) throw new Error(`step 10: no step-2 collection for ${task}-s${seed} to train its SAE on`);
  const acts = await loadActivations(ctx.runDir, c, hook);
  const name = `${task}-s${seed} ${hook} ${kind}`;
  // the same training split as step 3's SAEs (whole sequences, the held-out fifth left out)
  const sae = await trainConfiguredSae(ctx, { ...acts, seqLen: c.seqLen }, kind, ctx.rng(`sae/${name}`).int(0, 2 ** 31), (p) =>
    ctx.progress(`SAE ${name}`, p.step + 1, p.steps),
  );
  return { sae, source: 'trained here' };
}

/** The activations at `hooks` on `ids`, each as [rows, width]. */
async function activations(model: MambaLM, ids: mi.Tensor, hooks: readonly string[]): Promise<Map<string, Float32Array>> {
  return mi.tidyAsync(async () => {
    const { cache } = mi.noGrad(() => model.runWithCache(ids, hooks));
    const out = new Map<string, Float32Array>();
    for (const h of hooks) out.set(h, Float32Array.from(await cache.get(h)!.data()));
    return out;
  });
}

/**
 * One seed pair's value against draws of its null: the prediction t test of a new draw from a
 * normal with the draws' mean and sd, t = (x - m) / (s sqrt(1 + 1/S)) on S - 1 degrees of freedom
 * (one-sided, greater). Few draws suffice for a small p where the pair is far from its null, which
 * counting draws above it could not give (floor 1/(S + 1)).
 */
function againstNull(x: number, draws: readonly number[]): { p: number; mean: number; sd: number; range: [number, number] } {
  const S = draws.length;
  const m = mean(draws),
    s = std(draws);
  const sorted = Float64Array.from(draws).sort();
  const range: [number, number] = [quantile(sorted, 0.025, true), quantile(sorted, 0.975, true)];
  if (!(s > 0)) return { p: x > m ? ASYMPTOTIC_FLOOR : 1, mean: m, sd: s, range };
  const t = (x - m) / (s * Math.sqrt(1 + 1 / S));
  return { p: Math.min(1, Math.max(1 - studentTCdf(t, S - 1), ASYMPTOTIC_FLOOR)), mean: m, sd: s, range };
}

/** A seed pair's value, its control, its own p and, for a lone pair, its own intervals. */
interface PairValue {
  seedA: number;
  seedB: number;
  value: number;
  control: number;
  p: number;
  interval: [number, number];
  controlInterval: [number, number];
}

/**
 * A claim's fields over the seed pairs of a task (see the header): with 3 seeds or more the
 * jackknife-over-seeds t intervals of the value, the control and their difference (the effect
 * condition: the difference's interval above 0); with 2 seeds, one pair, that pair's own
 * intervals (the effect condition: the value's above the control's). p is the largest pair p.
 */
export function overPairs(
  pairs: readonly PairValue[],
  task: string,
  claimSeeds: number,
): Pick<Claim, 'estimate' | 'interval' | 'level' | 'controlEstimate' | 'controlInterval' | 'p' | 'pFloor' | 'perSeed'> & {
  effect: boolean;
  condition: string;
  how: string;
} {
  const seeds = new Set(pairs.flatMap((x) => [x.seedA, x.seedB])).size;
  // one entry per seed pair (seed: the pair's first seed; model names both)
  const perSeed = pairs.map((x) => ({ seed: x.seedA, model: `${task}-s${x.seedA}/s${x.seedB}`, value: x.value, p: x.p }));
  const tested = seeds >= claimSeeds ? { p: Math.max(...pairs.map((x) => x.p)), pFloor: ASYMPTOTIC_FLOOR } : {};
  const base = { level: 0.95, perSeed, ...tested };
  const untested = seeds < claimSeeds ? `; ${seeds} seed(s), fewer than claimSeeds = ${claimSeeds}: not tested` : '';
  if (seeds >= 3) {
    const v = seedPairInterval(pairs);
    const c = seedPairInterval(pairs.map((x) => ({ ...x, value: x.control })));
    const d = seedPairInterval(pairs.map((x) => ({ ...x, value: x.value - x.control })));
    return {
      ...base,
      estimate: v.mean,
      interval: v.interval,
      controlEstimate: c.mean,
      controlInterval: c.interval,
      effect: d.interval[0] > 0,
      condition: 'the jackknife-over-seeds 95% t interval of (seed pair minus its control) lies above 0',
      how: `mean over ${pairs.length} seed pairs of ${seeds} seeds, 95% t interval from a jackknife over seeds (pairs share seeds); p the largest pair p (intersection-union: every pair agrees)${untested}`,
    };
  }
  const [x] = pairs;
  return {
    ...base,
    estimate: x.value,
    interval: x.interval,
    controlEstimate: x.control,
    controlInterval: x.controlInterval,
    effect: x.interval[0] > x.controlInterval[1],
    condition: "the pair's own interval lies above its control's",
    how: `one seed pair (2 seeds: no interval over seeds, the pair's own interval)${untested}`,
  };
}

interface SaeMatchRow {
  task: string;
  seedA: number;
  seedB: number;
  hook: string;
  kind: string;
  latents: number;
  threshold: number;
  /** mean over both directions of each latent's max correlation with the other seed's latents */
  meanMaxCorrelation: number;
  interval: [number, number];
  nullMean: number;
  nullSd: number;
  nullRange: [number, number];
  p: number;
  /** fraction of latents (both directions) whose max correlation reaches the threshold */
  shared: number;
  nullShared: number;
  /** one-to-one Hungarian matching on correlation: mean matched correlation and fraction at the threshold */
  matchedMean: number;
  matchedShared: number;
  nullMatchedMean: number;
  nullMatchedShared: number;
  sources: [string, string];
  maxCorrelations: number[];
  nullMaxCorrelations: number[];
  /** basis-dependent: decoder directions matched one-to-one on cosine, and the same against random directions */
  decoderCosine: { shared: number; meanCosine: number; randomShared: number; randomMeanCosine: number };
}

const sharedBoth = (m: CorrelationMatch, t: number) =>
  (sharedFraction(m.maxCorrA, t) * m.maxCorrA.length + sharedFraction(m.maxCorrB, t) * m.maxCorrB.length) /
  (m.maxCorrA.length + m.maxCorrB.length);
const meanOf = (x: ArrayLike<number>) => mean(Float64Array.from(x));

function correlationHistogram(rows: { series: string; correlation: number }[], title: string): Spec {
  return {
    title,
    width: 380,
    height: 220,
    data: { values: rows },
    mark: { type: 'bar', opacity: 0.6 },
    encoding: {
      x: { field: 'correlation', type: 'quantitative', bin: { maxbins: 30, extent: [-0.2, 1] }, title: 'max activation correlation' },
      y: { aggregate: 'count', type: 'quantitative', title: 'latents', stack: null },
      color: { field: 'series', type: 'nominal', title: null },
    },
  } as Spec;
}

interface SeedData {
  resid: Float32Array[];
  /** the SAE's codes on the held-out tokens, in sparse form (correlated once per shift) */
  z: SparseCodes;
  latents: number;
  dirs: Float32Array;
  d: number;
  source: string;
}

export const reproducibilityStep: Step = {
  ...stepInfo('reproducibility'),
  version: 7,
  needs: [1, 2, 3, 5],
  configKeys: ['repro', 'sae', 'train', 'permutations', 'claimSeeds'],
  appliesToModel: false,
  async run(ctx) {
    const rc = ctx.config.repro;
    const report = ctx.report();
    const modelsByTask = byTask(studyModels(ctx));
    const tasks = [...modelsByTask.keys()];
    const kind = ctx.config.sae.kinds[0] as SaeKind;
    const layers = ctx.config.train.layers;
    const saeRows: SaeMatchRow[] = [];
    const circuitRows: Record<string, unknown>[] = [];
    const reprRows: Record<string, unknown>[] = [];
    const claims: Claim[] = [];
    const circuits: Circuit[] = existsSync(join(ctx.runDir, CIRCUITS_DIR, 'circuits.json'))
      ? ctx.readJson<Circuit[]>(5, 'circuits.json')
      : [];

    for (const [task, ms] of modelsByTask) {
      if (ms.length < 2) {
        report.notes.push(`${task}: one seed only, nothing to compare.`);
        continue;
      }
      const pairs: [StudyModel, StudyModel][] = [];
      for (let i = 0; i < ms.length; i++) for (let j = i + 1; j < ms.length; j++) pairs.push([ms[i], ms[j]]);
      const hook = expandHookPatterns(ctx.config.sae.hooks, layers)[0];
      const residHooks = Array.from({ length: layers }, (_, l) => `blocks.${l}.hook_resid_post`);
      const hooks = [...new Set([...residHooks, hook])];

      // --- every seed on the same held-out sequences: residuals, SAE codes, decoder directions
      const batch = getTask(task).generate(ms[0].taskOptions as unknown as AnyTaskOptions, ctx.rng(`cka-batch/${task}`), rc.sequences);
      const [B, T] = batch.shape;
      const data = new Map<number, SeedData>();
      let randomResid: Float32Array[] = [];
      for (const m of ms) {
        const model = await m.load();
        try {
          const ids = mi.tensor(batch.inputs, batch.shape, { dtype: 'int32', backend: model.backend });
          const acts = await activations(model, ids, hooks);
          if (m === ms[0]) {
            const random = initMamba(model.config, ctx.rng(`random-init/${task}`), { backend: model.backend });
            try {
              const r = await activations(random, ids, residHooks);
              randomResid = residHooks.map((h) => r.get(h)!);
            } finally {
              random.dispose();
            }
          }
          ids.dispose();
          const { sae, source } = await seedSae(ctx, task, m.seed, hook, kind);
          try {
            data.set(m.seed, {
              resid: residHooks.map((h) => acts.get(h)!),
              z: sparseCodes(await encodeAll(sae, acts.get(hook)!), sae.latents),
              latents: sae.latents,
              dirs: await decoderDirections(sae),
              d: sae.d,
              source,
            });
          } finally {
            sae.dispose();
          }
        } finally {
          model.dispose();
        }
      }

      // --- SAE latents matched by activation correlation, against the circular-shift null
      const saePairs: PairValue[] = [];
      for (const [a, b] of pairs) {
        const A = data.get(a.seed)!,
          Bd = data.get(b.seed)!;
        const name = `${task} s${a.seed}-s${b.seed}`;
        const match = matchByCorrelation(activationCorrelations(A.z, Bd.z, A.latents, Bd.latents));
        const nullMeans: number[] = [],
          nullShared: number[] = [];
        let first: CorrelationMatch | null = null;
        for (let k = 0; k < rc.shifts; k++) {
          const rows = circularShiftRows(B, T, ctx.rng(`shift/${name}/${k}`));
          const nm = matchByCorrelation(activationCorrelations(A.z, Bd.z, A.latents, Bd.latents, rows), { oneToOne: k === 0 });
          first ??= nm;
          nullMeans.push(nm.meanMax);
          nullShared.push(sharedBoth(nm, rc.threshold));
        }
        const test = againstNull(match.meanMax, nullMeans);
        const both = Float64Array.from([...match.maxCorrA, ...match.maxCorrB]);
        const ci = bootstrapCI(both, ctx.rng(`boot/${name}`), meanOf, { nBoot: rc.bootstrap, method: 'percentile' });
        const cosine = matchDictionaries(A.dirs, Bd.dirs, A.d);
        const random = matchDictionaries(A.dirs, randomUnitRows(Bd.latents, Bd.d, ctx.rng(`random-dirs/${name}`)), A.d);
        saeRows.push({
          task,
          seedA: a.seed,
          seedB: b.seed,
          hook,
          kind,
          latents: A.latents,
          threshold: rc.threshold,
          meanMaxCorrelation: match.meanMax,
          interval: [ci.lo, ci.hi],
          nullMean: test.mean,
          nullSd: test.sd,
          nullRange: test.range,
          p: test.p,
          shared: sharedBoth(match, rc.threshold),
          nullShared: mean(nullShared),
          matchedMean: meanOf(match.matched),
          matchedShared: sharedFraction(match.matched, rc.threshold),
          nullMatchedMean: meanOf(first!.matched),
          nullMatchedShared: sharedFraction(first!.matched, rc.threshold),
          sources: [A.source, Bd.source],
          maxCorrelations: [...both],
          nullMaxCorrelations: [...first!.maxCorrA, ...first!.maxCorrB],
          decoderCosine: {
            shared: sharedFraction(cosine.cosine, rc.threshold),
            meanCosine: meanOf(cosine.cosine),
            randomShared: sharedFraction(random.cosine, rc.threshold),
            randomMeanCosine: meanOf(random.cosine),
          },
        });
        saePairs.push({
          seedA: a.seed,
          seedB: b.seed,
          value: match.meanMax,
          control: test.mean,
          p: test.p,
          interval: [ci.lo, ci.hi],
          controlInterval: test.range,
        });
      }
      {
        const { how, effect, condition, ...f } = overPairs(saePairs, task, ctx.config.claimSeeds);
        claims.push({
          statement: `${task}: SAE latents (${kind}, ${hook}) of different seeds match by their activations on the same tokens (mean max correlation)`,
          ...f,
          test: `per seed pair, a one-sided prediction t test of the mean max correlation against ${rc.shifts} draws of the null that shifts one seed's tokens circularly within each sequence (p floor ${ASYMPTOTIC_FLOOR}); ${how}`,
          control:
            'the same matching with one seed’s tokens shifted circularly within each sequence (alignment broken, each latent’s rate and autocorrelation kept)',
          ...pending(effect, condition),
        });
      }
      const firstRow = saeRows.find((s) => s.task === task)!;
      report.figures.push(
        await saveFigure(
          ctx,
          `correlations-${task}`,
          correlationHistogram(
            [
              ...firstRow.maxCorrelations.map((correlation) => ({
                series: `seed ${firstRow.seedA} vs seed ${firstRow.seedB}`,
                correlation,
              })),
              ...firstRow.nullMaxCorrelations.map((correlation) => ({ series: 'tokens shifted (null)', correlation })),
            ],
            `${task}: SAE latents' max activation correlation across seeds`,
          ),
          `SAE latents matched across seeds by activation (${task})`,
          `For each of the ${firstRow.latents} ${kind} SAE latents at ${hook} of seed ${firstRow.seedA} (and of seed ${firstRow.seedB}), its largest Pearson correlation with any latent of the other seed's SAE over the same ${B * T} held-out tokens; the null shifts one seed's tokens circularly within each sequence. Latents at or above ${rc.threshold} count as shared.`,
        ),
      );

      // --- CKA and SVCCA per layer, against a randomly initialised model
      const d = ctx.config.train.hiddenSize;
      const group = Int32Array.from({ length: B * T }, (_, r) => Math.floor(r / T));
      const weights = Array.from({ length: rc.bootstrap }, (_, k) => resampleWeights(B, ctx.rng(`cka-boot/${task}/${k}`)));
      const ckaPairs: PairValue[] = [];
      const controls = new Map<number, (ReturnType<typeof ckaWithInterval> & { svcca: number })[]>();
      for (const [a, b] of pairs) {
        const RA = data.get(a.seed)!.resid,
          RB = data.get(b.seed)!.resid;
        const matrix = RA.map((xa) => RB.map((xb) => ckaFromStats(ckaStats(xa, xb, d, d))));
        const stats = RA.map((xa, l) => ckaStats(xa, RB[l], d, d, group));
        const diag = stats.map((s) => ckaWithInterval(s, weights));
        // the control depends on the first seed only: computed once per seed, shared by its pairs
        if (!controls.has(a.seed))
          controls.set(
            a.seed,
            RA.map((xa, l) => {
              const s = ckaStats(xa, randomResid[l], d, d, group);
              return { ...ckaWithInterval(s, weights), svcca: svccaFromStats(s).mean };
            }),
          );
        const ctrl = controls.get(a.seed)!;
        for (let l = 0; l < layers; l++) {
          // paired bootstrap: the same resampled sequences for the seed pair and the control. The
          // p-value is asymptotic (z = difference / its bootstrap SE): counting resamples below 0
          // could go no lower than 1/(B + 1)
          const diffs = diag[l].reps.map((v, k) => v - ctrl[l].reps[k]).filter(Number.isFinite);
          const se = diffs.length >= 2 ? std(diffs) : 0;
          const z = se > 0 ? (diag[l].estimate - ctrl[l].estimate) / se : -Infinity;
          const sv = svccaFromStats(stats[l]);
          const row = {
            task,
            seedA: a.seed,
            seedB: b.seed,
            layer: l,
            cka: diag[l].estimate,
            interval: diag[l].interval,
            control: ctrl[l].estimate,
            controlInterval: ctrl[l].interval,
            self: ckaFromStats(ckaStats(RA[l], RA[l], d, d)),
            p: Math.max(normalCdf(-z), ASYMPTOTIC_FLOOR),
            svcca: sv.mean,
            svccaControl: ctrl[l].svcca,
            svccaKept: [sv.kx, sv.ky],
          };
          reprRows.push(row);
          if (l === layers - 1)
            ckaPairs.push({
              seedA: a.seed,
              seedB: b.seed,
              value: row.cka,
              control: row.control,
              p: row.p,
              interval: row.interval,
              controlInterval: row.controlInterval,
            });
        }
        reprRows.push({ task, seedA: a.seed, seedB: b.seed, matrix });
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
        }
      }
      {
        const { how, effect, condition, ...f } = overPairs(ckaPairs, task, ctx.config.claimSeeds);
        claims.push({
          statement: `${task}: last-layer residual representations agree across seeds (linear CKA)`,
          ...f,
          test: `per seed pair, a one-sided normal test of CKA(seed pair) - CKA(random-init model) over its paired-bootstrap SE (${rc.bootstrap} resamples of sequences; p floor ${ASYMPTOTIC_FLOOR}); ${how}`,
          control: 'CKA of the first seed with a randomly initialised model of the same shape on the same sequences',
          ...pending(effect, condition),
        });
      }

      // --- circuits of the same source and kind: raw channel indices (basis-dependent) and positions
      const probeModel = await ms[0].load();
      try {
        const cBatch = getTask(task).generate(ms[0].taskOptions as unknown as AnyTaskOptions, ctx.rng(`circuit-batch/${task}`), 16);
        for (const [a, b] of pairs) {
          const ofSeed = (s: number) => circuits.filter((c) => c.task === task && c.seed === s && c.channels.length);
          // channel-by-channel activation correlations of the residual stream, per layer, on the held-out tokens
          const residCorr = new Map<string, Float64Array[]>();
          const correlationAt = (h: string) => {
            const l = residHooks.indexOf(h);
            if (l < 0) return null;
            if (!residCorr.has(h)) residCorr.set(h, activationCorrelations(data.get(a.seed)!.resid[l], data.get(b.seed)!.resid[l], d, d));
            return residCorr.get(h)!;
          };
          for (const ca of ofSeed(a.seed)) {
            const kindId = ca.id.slice(ca.id.indexOf('/') + 1);
            const cb = ofSeed(b.seed).find((c) => c.id.slice(c.id.indexOf('/') + 1) === kindId);
            if (!cb) continue;
            const sameHook = ca.hook === cb.hook;
            const channelJ = sameHook ? jaccard(ca.channels, cb.channels) : 0;
            const nul = exactJaccardNull(ca.channels.length, cb.channels.length, hookDim(probeModel, ca.hook), channelJ);
            const cell = (m: Uint8Array) => [...m.keys()].filter((i) => m[i]);
            // by function: A's circuit located in B's model (each channel's best-correlated channel
            // there), against A's matched controls (step 5) located the same way. Residual-stream
            // circuits only: a state hook's E*N channels would cost (E N)^2 correlations a pair
            const corr = sameHook ? correlationAt(ca.hook) : null;
            let located: Record<string, unknown> = {};
            if (corr) {
              // ranked on the number of B's circuit channels hit, not on Jaccard: located sets shrink
              // where channels share a partner, and a Jaccard of 2/27 beating 2/28 is no evidence
              const inB = new Set(cb.channels);
              const hits = (set: number[]) => set.filter((c) => inB.has(c)).length;
              const loc = locateChannels(corr, ca.channels);
              const ctrlLoc = ca.controls.map((c) => locateChannels(corr, c.channels));
              const ge = ctrlLoc.filter((l) => hits(l) >= hits(loc)).length;
              located = {
                locatedJaccard: jaccard(loc, cb.channels),
                locatedControl: ctrlLoc.length ? mean(ctrlLoc.map((l) => jaccard(l, cb.channels))) : NaN,
                locatedHits: hits(loc),
                locatedControlHits: ctrlLoc.length ? mean(ctrlLoc.map(hits)) : NaN,
                locatedP: (1 + ge) / (1 + ctrlLoc.length),
                locatedControls: ctrlLoc.length,
              };
            }
            circuitRows.push({
              ...located,
              task,
              seedA: a.seed,
              seedB: b.seed,
              circuit: kindId,
              hookA: ca.hook,
              hookB: cb.hook,
              sameHook,
              size: [ca.channels.length, cb.channels.length],
              channelJaccard: channelJ,
              control: nul.mean,
              controlInterval: nul.interval,
              p: nul.p,
              positionJaccard: jaccard(cell(positionMask(ca.positions, cBatch)), cell(positionMask(cb.positions, cBatch))),
            });
          }
        }
      } finally {
        probeModel.dispose();
      }
      ctx.progress('tasks', tasks.indexOf(task) + 1, tasks.length);
    }

    report.tables.push({
      title: 'SAE latents matched across seeds by activation correlation (basis-free)',
      columns: [
        'task',
        'seeds',
        'hook',
        'SAE',
        'mean max corr',
        'CI (latents)',
        'null (shifted)',
        'p (pair)',
        `shared (>= ${rc.threshold})`,
        'null shared',
        'one-to-one mean',
        'one-to-one shared',
        'null one-to-one mean',
        'SAEs from',
      ],
      rows: saeRows.map((s) => [
        s.task,
        `${s.seedA}/${s.seedB}`,
        s.hook,
        s.kind,
        s.meanMaxCorrelation,
        s.interval.map(fmt).join(' to '),
        `${fmt(s.nullMean)} ± ${fmt(s.nullSd)}`,
        s.p,
        s.shared,
        s.nullShared,
        s.matchedMean,
        s.matchedShared,
        s.nullMatchedMean,
        s.sources.join(', '),
      ]),
    });
    report.tables.push({
      title: 'Representations across seeds: linear CKA and SVCCA per layer (basis-free)',
      columns: [
        'task',
        'seeds',
        'layer',
        'CKA',
        'CKA CI',
        'CKA random-init',
        'p (pair)',
        'SVCCA',
        'SVCCA random-init',
        'SVCCA directions kept',
      ],
      rows: reprRows
        .filter((r) => 'layer' in r)
        .map((r) => [
          r.task as string,
          `${r.seedA}/${r.seedB}`,
          r.layer as number,
          r.cka as number,
          (r.interval as number[]).map(fmt).join(' to '),
          r.control as number,
          r.p as number,
          r.svcca as number,
          r.svccaControl as number,
          (r.svccaKept as number[]).join('/'),
        ]),
    });
    report.tables.push({
      title: 'Basis-dependent: SAE decoder directions matched on cosine (not comparable across independently trained models)',
      columns: ['task', 'seeds', `shared (cosine >= ${rc.threshold})`, 'random directions', 'mean cosine', 'random mean cosine'],
      rows: saeRows.map((s) => [
        s.task,
        `${s.seedA}/${s.seedB}`,
        s.decoderCosine.shared,
        s.decoderCosine.randomShared,
        s.decoderCosine.meanCosine,
        s.decoderCosine.randomMeanCosine,
      ]),
    });
    if (circuitRows.length)
      report.tables.push({
        title:
          "Circuits across seeds: located by function (seed A's circuit channels mapped to seed B's best-correlated channels, then compared with B's circuit, against A's matched controls mapped the same way; ranked on the number of B's circuit channels hit), beside the basis-dependent channel-index Jaccard and the position Jaccard",
        columns: [
          'task',
          'seeds',
          'circuit',
          'same hook',
          'located Jaccard',
          'located controls',
          "B's channels hit",
          'controls hit',
          'rank p on hits (not a claim)',
          'channel-index Jaccard (basis-dependent)',
          'random sets',
          'position Jaccard',
        ],
        rows: circuitRows.map((r) => [
          r.task as string,
          `${r.seedA}/${r.seedB}`,
          r.circuit as string,
          r.sameHook ? 'yes' : 'no',
          (r.locatedJaccard as number | undefined) ?? 'n/a (state hook)',
          (r.locatedControl as number | undefined) ?? 'n/a',
          (r.locatedHits as number | undefined) ?? 'n/a',
          (r.locatedControlHits as number | undefined) ?? 'n/a',
          (r.locatedP as number | undefined) ?? 'n/a',
          r.channelJaccard as number,
          r.control as number,
          r.positionJaccard as number,
        ]),
      });
    else report.notes.push('No step-5 circuits with channel sets for two seeds of a task: circuit overlap not measured.');
    report.notes.push(
      `Independently trained models share no basis, so the claims compare what the models do on the same inputs: SAE latents by the correlation of their activations (Hungarian one-to-one matching beside the max correlation), representations by CKA and SVCCA (Raghu et al. 2017: each side's top directions explaining 99% of its variance, then CCA; the mean canonical correlation). Decoder cosines and channel-index Jaccard are kept as basis-dependent tables only: near chance between seeds by construction. Circuits across seeds by function: each residual-stream circuit of one seed is located in the other seed's model (each channel's best-correlated channel there, over the held-out tokens) and compared with that seed's own circuit of the same kind, against the first seed's matched controls located the same way (a table, not a claim); state-hook circuits are not located (their E*N channels), and patching the located circuit in the other model against matched controls is not done.`,
      `Seed pairs share seeds, so a claim's interval is a jackknife over seeds of the mean over pairs (leave one seed out, drop its pairs; Student's t on seeds - 1 degrees of freedom), and its p the largest of the pairs' p-values, a test that every pair agrees and that is valid however the pairs depend on one another. With two seeds there is one pair, and its own interval (bootstrap over latents, or over sequences for CKA) stands in.`,
      `CKA is linear CKA (Kornblith et al. 2019) on centred activations; its intervals resample whole sequences. The "self" column of reproducibility.json (a model with itself) is 1 by construction and checks the computation. SAEs missing from step 3 (it trains sae.seeds = ${ctx.config.sae.seeds} seed(s) per task) are trained here with step 3's settings, ${kind} kind only. For reference, "Towards Universality" (Wang et al. 2024) finds about 30% of SAE latents shared (by activation correlation) between Mamba-130M and a transformer.`,
    );
    report.claims.push(...claims);
    ctx.writeJson('reproducibility.json', { threshold: rc.threshold, sae: saeRows, circuits: circuitRows, representations: reprRows });
    const last = reprRows.filter((r) => r.layer === layers - 1);
    report.summary = `${tasks.length} tasks: SAE latents' mean max activation correlation across seeds ${saeRows.map((s) => `${s.task} ${fmt(s.meanMaxCorrelation)} (shifted null ${fmt(s.nullMean)}, shared ${fmt(s.shared)})`).join(', ')}; last-layer CKA ${last.map((r) => fmt(r.cka as number)).join(', ')} vs random-init ${last.map((r) => fmt(r.control as number)).join(', ')}; SVCCA ${last.map((r) => fmt(r.svcca as number)).join(', ')} vs random-init ${last.map((r) => fmt(r.svccaControl as number)).join(', ')}.`;
    // NaN is not JSON: undefined values show as n/a
    for (const t of report.tables) t.rows = t.rows.map((r) => r.map((v) => (typeof v === 'number' && !Number.isFinite(v) ? 'n/a' : v)));
    saveReport(ctx, report);
    return report.summary;
  },
};

/** CKA with a bootstrap over sequences (all groups resampled with the same weights for paired use). */
function ckaWithInterval(s: CkaStats, weights: Float64Array[]): { estimate: number; interval: [number, number]; reps: Float64Array } {
  const reps = Float64Array.from(weights, (w) => ckaFromStats(s, w));
  const sorted = reps.filter(Number.isFinite).sort();
  return { estimate: ckaFromStats(s), interval: [quantile(sorted, 0.025, true), quantile(sorted, 0.975, true)], reps };
}
