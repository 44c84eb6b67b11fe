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
//  - circuits by function, patched (a claim): the key claim's circuit kind of seed A located in
//    seed B's model one-to-one by activation correlation and clean-patched there on other
//    sequences (interp/located-patching.ts), ranked among repro.controls matched control sets of A
//    located and patched the same way, beside B's own circuit (the ceiling) and B's own controls;
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
import { activationProfile, matchedChannels } from '../interp/controls.ts';
import {
  distinctSets,
  lastResidualPatch,
  locatedPatchTest,
  patchGained,
  patchLocated,
  type LocatedTest,
} from '../interp/located-patching.ts';
import {
  ANSWER_SOURCE,
  cacheActivations,
  corruptAnswers,
  evalSet,
  hookDim,
  idsOf,
  isLastResidual,
  outcome,
  patchCleanMany,
  positionMask,
} from '../interp/patching.ts';
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
import { getTask, type AnyTaskOptions, type TaskBatch } from '../interp/tasks/index.ts';
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
 * Ordered pairs (A's circuit in B's model and B's in A's) are pairs too: the jackknife drops both
 * directions with a seed, and 2 seeds in both directions give the mean of the two, the union of
 * their intervals, and the effect condition in each direction.
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
  const hull = (iv: [number, number][]): [number, number] => [Math.min(...iv.map((i) => i[0])), Math.max(...iv.map((i) => i[1]))];
  const both = pairs.length > 1 ? ' (both directions: their mean, the union of their intervals)' : '';
  return {
    ...base,
    estimate: mean(pairs.map((x) => x.value)),
    interval: hull(pairs.map((x) => x.interval)),
    controlEstimate: mean(pairs.map((x) => x.control)),
    controlInterval: hull(pairs.map((x) => x.controlInterval)),
    effect: pairs.every((x) => x.interval[0] > x.controlInterval[1]),
    condition: `the pair's own interval lies above its control's${pairs.length > 1 ? ' in each direction' : ''}`,
    how: `one seed pair${both} (2 seeds: no interval over seeds, the pair's own interval)${untested}`,
  };
}

/** One ordered seed pair: seed A's circuit located in seed B's model and patched there. */
interface LocatedRow {
  task: string;
  seedA: number;
  seedB: number;
  circuit: string;
  hook: string;
  size: number;
  /** A's circuit and its partners in B (locateOneToOne), and B's own circuit */
  channelsA: number[];
  located: number[];
  channelsB: number[];
  /** Jaccard of the located channels with B's own circuit */
  locatedJaccard: number;
  /** the located circuit among A's matched controls located and patched the same way */
  test: LocatedTest;
  /** B's own circuit among B's own matched controls (step 5's), on the same sequences: the ceiling */
  own: LocatedTest;
  /** the largest |closed form - patchCleanMany| of per-sequence gained in B (its circuit and 2 controls) */
  engineDiff: number;
}

/** A seed's circuit of the key claim's kind, its patch data on the shared patch batch, and its matched control sets. */
interface LocatedSeed {
  circuit: Circuit;
  patch: Awaited<ReturnType<typeof lastResidualPatch>>;
  /** fresh matched control sets of its circuit (variance strata on the location batch) */
  controls: number[][];
  /** the largest |closed form - patchCleanMany| of per-sequence gained over its circuit and 2 controls */
  engineDiff: number;
}

/**
 * The key claim's circuit kind (patching.keyClaim: source, hook kind, effect) of every seed of a
 * task, located in every other seed's model (ordered pairs) by the activation correlation of the
 * last residual on the location batch, then clean-patched there on `pc.examples` other sequences,
 * against config.repro.controls matched control sets of the first seed located and patched the
 * same way, beside the second seed's own circuit and its own matched controls. Skipped (with the
 * reason) where the kind is not a channel circuit at the last residual with a clean patch.
 */
async function locatedPatching(
  ctx: StepContext,
  task: string,
  ms: StudyModel[],
  resid: (seed: number) => Float32Array,
  locationBatch: TaskBatch,
  circuits: Circuit[],
): Promise<{ rows: LocatedRow[] } | { skipped: string }> {
  const { patching: pc, repro: rc, circuit: cc } = ctx.config;
  const kc = pc.keyClaim;
  if (kc.hook !== 'resid' || kc.effect !== 'clean patch')
    return { skipped: `the key claim's kind (${kc.source}, ${kc.hook}, ${kc.effect}) is not a clean patch of the residual stream` };
  const source = ANSWER_SOURCE[task];
  if (!source) return { skipped: `no answer corruption for ${task}` };
  const ofSeed = (seed: number) =>
    circuits.find((c) => c.task === task && c.seed === seed && c.source === kc.source && !c.hook.endsWith('hook_h') && c.channels.length);
  const opts = ms[0].taskOptions as unknown as AnyTaskOptions;
  // sequences the location (correlations on locationBatch) did not use, the same for every seed
  const batch = getTask(task).generate(opts, ctx.rng(`located-patch/${task}`), pc.examples);
  const corrupt = corruptAnswers(getTask(task), opts, batch, source, ctx.rng(`located-corrupt/${task}`));
  const set = evalSet(batch, corrupt);
  const seeds = new Map<number, LocatedSeed>();
  for (const m of ms) {
    const c = ofSeed(m.seed);
    if (!c) continue;
    const model = await m.load();
    try {
      if (!isLastResidual(model, c.hook)) return { skipped: `${m.label}'s ${kc.source} circuit sits at ${c.hook}, not the last residual` };
      const ids = idsOf(model, batch),
        corruptIds = idsOf(model, corrupt);
      const mask = positionMask(c.positions, batch);
      const patch = await lastResidualPatch(model, ids, corruptIds, set, mask);
      // the closed form against step 6's own measure on this model
      const cleanLd = (await outcome(model, ids, set, [])).logitDiff!;
      const corruptLd = (await outcome(model, corruptIds, set, [])).logitDiff!;
      const act = cacheActivations(model, ids, [c.hook]).get(c.hook)!;
      const sites = [c.channels, ...c.controls.slice(0, 2).map((k) => k.channels)];
      const engine = await patchCleanMany(
        model,
        corruptIds,
        set,
        cleanLd,
        corruptLd,
        sites.map((channels) => ({ hook: c.hook, channels })),
        mask,
        act,
      );
      act.dispose();
      ids.dispose();
      corruptIds.dispose();
      let engineDiff = 0;
      sites.forEach((ch, k) =>
        patchGained(patch, ch).forEach((v, e) => (engineDiff = Math.max(engineDiff, Math.abs(v - engine[k].gained[e])))),
      );
      if (!(engineDiff < 1e-3))
        throw new Error(`step 10: the closed-form patch of ${m.label} differs from patchCleanMany by ${engineDiff}`);
      // A's matched controls as step 5 draws them (interp/controls.ts), on the location batch's cells
      const d = model.config.hidden_size;
      const act0 = mi.tensor(resid(m.seed), [...locationBatch.shape, d], { backend: mi.cpuBackend() });
      const variance = (await activationProfile(act0, positionMask(c.positions, locationBatch))).variance;
      act0.dispose();
      const rng = ctx.rng(`located-controls/${m.label}`);
      const controls = Array.from({ length: rc.controls }, (_, k) =>
        matchedChannels(c.channels, variance, cc.strata, rng.fork(`control${k}`)),
      );
      seeds.set(m.seed, { circuit: c, patch, controls, engineDiff });
    } finally {
      model.dispose();
    }
  }
  const rows: LocatedRow[] = [];
  const bootstrap = { bootstrap: pc.bootstrap };
  for (const a of ms)
    for (const b of ms) {
      const A = seeds.get(a.seed),
        B = seeds.get(b.seed);
      if (a === b || !A || !B) continue;
      if (JSON.stringify(A.circuit.positions) !== JSON.stringify(B.circuit.positions)) continue;
      const d = B.patch.d;
      const corr = activationCorrelations(resid(a.seed), resid(b.seed), d, d);
      const name = `${task}/s${a.seed}-s${b.seed}`;
      const r = patchLocated(corr, A.circuit.channels, A.controls, B.patch, ctx.rng(`located-boot/${name}`), bootstrap);
      const ownSets = B.circuit.controls.slice(0, pc.controls).map((k) => k.channels);
      const own = locatedPatchTest(
        patchGained(B.patch, B.circuit.channels),
        ownSets.map((k) => patchGained(B.patch, k)),
        B.patch.gap,
        ctx.rng(`located-own/${name}`),
        { ...bootstrap, distinctControls: distinctSets(ownSets) },
      );
      rows.push({
        task,
        seedA: a.seed,
        seedB: b.seed,
        circuit: `${kc.source}-resid`,
        hook: B.circuit.hook,
        size: A.circuit.channels.length,
        channelsA: A.circuit.channels,
        located: r.located,
        channelsB: B.circuit.channels,
        locatedJaccard: jaccard(r.located, B.circuit.channels),
        test: r.test,
        own,
        engineDiff: B.engineDiff,
      });
    }
  return { rows };
}

/** Per ordered pair: the located circuit (point), its located controls' distribution (percentile ticks), B's own circuit and B's own controls. */
function locatedChart(rows: LocatedRow[], task: string): Spec {
  const row = (r: LocatedRow) => `s${r.seedA} in s${r.seedB}`;
  const values = rows.flatMap((r) => [
    ...r.test.percentiles.map((value) => ({ row: row(r), which: "A's located controls (percentiles)", value })),
    ...r.own.percentiles.map((value) => ({ row: row(r), which: "B's own controls (percentiles)", value })),
    { row: row(r), which: "A's circuit located in B", value: r.test.estimate },
    { row: row(r), which: "B's own circuit", value: r.own.estimate },
  ]);
  const ticks = (w: string, offset: number) => ({
    transform: [{ filter: `datum.which === "${w}"` }],
    mark: { type: 'tick', opacity: 0.3, yOffset: offset, size: 10 },
  });
  return {
    title: `${task}: a seed's circuit located in another seed's model and patched there`,
    width: 380,
    data: { values },
    encoding: {
      y: { field: 'row', type: 'nominal', title: null, sort: null },
      x: { field: 'value', type: 'quantitative', title: 'fraction of logit difference restored' },
      color: { field: 'which', type: 'nominal', title: null, legend: { labelLimit: 260 } },
    },
    layer: [
      ticks("A's located controls (percentiles)", -6),
      ticks("B's own controls (percentiles)", 6),
      {
        transform: [{ filter: `datum.which === "A's circuit located in B"` }],
        mark: { type: 'point', filled: true, size: 90, yOffset: -6 },
      },
      {
        transform: [{ filter: `datum.which === "B's own circuit"` }],
        mark: { type: 'point', shape: 'diamond', filled: true, size: 90, yOffset: 6 },
      },
    ],
  } as Spec;
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
  version: 8,
  needs: [1, 2, 3, 5],
  configKeys: ['repro', 'sae', 'train', 'permutations', 'claimSeeds', 'patching', 'circuit'],
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
    const locatedRows: LocatedRow[] = [];
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
                // null: no controls to locate ("no value", written so; a NaN would fail the step's JSON)
                locatedControl: ctrlLoc.length ? mean(ctrlLoc.map((l) => jaccard(l, cb.channels))) : null,
                locatedHits: hits(loc),
                locatedControlHits: ctrlLoc.length ? mean(ctrlLoc.map(hits)) : null,
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

      // --- the key claim's circuit kind, located in the other seeds' models and patched there
      const lp = await locatedPatching(ctx, task, ms, (seed) => data.get(seed)!.resid[layers - 1], batch, circuits);
      if ('skipped' in lp) report.notes.push(`${task}: circuits not located and patched across seeds: ${lp.skipped}.`);
      else if (lp.rows.length) {
        locatedRows.push(...lp.rows);
        const kc = ctx.config.patching.keyClaim;
        const n = lp.rows[0].test.controls;
        // the largest pair p is at least every pair's floor (1/(m+1) for its m distinct control sets)
        const pFloor = Math.max(...lp.rows.map((r) => r.test.pFloor));
        const distinct = lp.rows.map((r) => r.test.distinctControls);
        const { how, effect, condition, ...f } = overPairs(
          lp.rows.map((r) => ({
            seedA: r.seedA,
            seedB: r.seedB,
            value: r.test.estimate,
            control: r.test.control,
            p: r.test.p,
            interval: r.test.interval,
            controlInterval: r.test.controlInterval,
          })),
          task,
          ctx.config.claimSeeds,
        );
        const ceiling = mean(lp.rows.map((r) => r.own.estimate)),
          ownControl = mean(lp.rows.map((r) => r.own.control));
        claims.push({
          statement: `${task}: a seed's ${kc.source} circuit (${lp.rows[0].size} channels of the last residual), located in another seed's model by activation correlation and patched there (clean into corrupted), restores more of the logit difference than matched controls located and patched the same way`,
          ...f,
          ...(f.p !== undefined ? { pFloor } : {}),
          test: `per ordered seed pair (A's circuit in B's model), the empirical rank p-value of the located circuit's fraction restored among ${n} draws of A's matched control sets located and patched the same way, (1 + #controls >= circuit) / (1 + ${n}), held at or above 1/(m + 1) for the m distinct sets drawn (${Math.min(...distinct)}-${Math.max(...distinct)} per pair; floor ${fmt(pFloor)}); ${how}; B's own circuit restores ${fmt(ceiling)} (the ceiling) and B's own matched controls ${fmt(ownControl)} (means over pairs)`,
          control: `${n} channel sets of seed A matched to its circuit by activation-variance stratum (interp/controls.ts, as step 5), each located in B one-to-one by activation correlation and patched in B on the same ${ctx.config.patching.examples} sequences`,
          ...pending(effect, condition),
        });
        report.figures.push(
          await saveFigure(
            ctx,
            `located-${task}`,
            locatedChart(lp.rows, task),
            `Circuits across seeds, patched (${task})`,
            `Per ordered seed pair, seed A's ${kc.source} circuit located one-to-one in seed B's model (best summed |activation correlation| of the last residual on ${B} held-out sequences) and patched clean into corrupted on ${ctx.config.patching.examples} other sequences (dot), among the percentiles of ${n} of A's matched control sets located and patched the same way (upper ticks); B's own circuit (diamond) and the percentiles of its own ${lp.rows[0].own.controls} matched controls (lower ticks) on the same sequences. The closed-form patch agrees with patchCleanMany to ${fmt(Math.max(...lp.rows.map((r) => r.engineDiff)))}.`,
          ),
        );
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
    if (locatedRows.length)
      report.tables.push({
        title:
          "Circuits across seeds by function, patched: seed A's circuit located one-to-one in seed B's model by activation correlation, then patched there (clean into corrupted, fraction of the logit difference restored), among A's matched controls located and patched the same way, beside B's own circuit and B's own matched controls on the same sequences",
        columns: [
          'task',
          'A in B',
          'circuit',
          'size',
          'located',
          'CI',
          'located controls',
          'controls 2.5-97.5%',
          'difference CI',
          'rank p',
          'controls (distinct)',
          "B's own circuit",
          "B's own controls",
          "B's own rank p",
          "located vs B's channels (Jaccard)",
        ],
        rows: locatedRows.map((r) => [
          r.task,
          `s${r.seedA} in s${r.seedB}`,
          r.circuit,
          r.size,
          r.test.estimate,
          r.test.interval.map(fmt).join(' to '),
          r.test.control,
          r.test.controlInterval.map(fmt).join(' to '),
          r.test.differenceInterval.map(fmt).join(' to '),
          r.test.p,
          `${r.test.controls} (${r.test.distinctControls})`,
          r.own.estimate,
          r.own.control,
          r.own.p,
          r.locatedJaccard,
        ]),
      });
    report.notes.push(
      `Independently trained models share no basis, so the claims compare what the models do on the same inputs: SAE latents by the correlation of their activations (Hungarian one-to-one matching beside the max correlation), representations by CKA and SVCCA (Raghu et al. 2017: each side's top directions explaining 99% of its variance, then CCA; the mean canonical correlation). Decoder cosines and channel-index Jaccard are kept as basis-dependent tables only: near chance between seeds by construction. Circuits across seeds by function: each residual-stream circuit of one seed is located in the other seed's model (each channel's best-correlated channel there, over the held-out tokens) and compared with that seed's own circuit of the same kind, against the first seed's matched controls located the same way (a table, not a claim); state-hook circuits are not located (their E*N channels). The key claim's circuit kind (patching.keyClaim) is also patched: for every ordered seed pair, A's circuit is located in B's model one-to-one (distinct partners with the largest summed |correlation| of the last residual over the held-out tokens, so the located set keeps the circuit's size) and patched clean into corrupted there, on ${ctx.config.patching.examples} sequences the location did not use, against ${rc.controls} control sets of A matched by activation-variance stratum (as step 5 draws them, on the held-out tokens) and located and patched the same way (a claim per task), next to B's own circuit and its own ${ctx.config.patching.controls} matched controls (step 5's) on the same sequences. The patch at the last residual is computed in closed form (only the final norm and the head follow it), checked on every model against step 6's patchCleanMany.`,
      `Seed pairs share seeds, so a claim's interval is a jackknife over seeds of the mean over pairs (leave one seed out, drop its pairs; Student's t on seeds - 1 degrees of freedom), and its p the largest of the pairs' p-values, a test that every pair agrees and that is valid however the pairs depend on one another. With two seeds there is one pair, and its own interval (bootstrap over latents, or over sequences for CKA) stands in.`,
      `CKA is linear CKA (Kornblith et al. 2019) on centred activations; its intervals resample whole sequences. The "self" column of reproducibility.json (a model with itself) is 1 by construction and checks the computation. SAEs missing from step 3 (it trains sae.seeds = ${ctx.config.sae.seeds} seed(s) per task) are trained here with step 3's settings, ${kind} kind only. For reference, "Towards Universality" (Wang et al. 2024) finds about 30% of SAE latents shared (by activation correlation) between Mamba-130M and a transformer.`,
    );
    report.claims.push(...claims);
    ctx.writeJson('reproducibility.json', {
      threshold: rc.threshold,
      sae: saeRows,
      circuits: circuitRows,
      located: locatedRows,
      representations: reprRows,
    });
    const last = reprRows.filter((r) => r.layer === layers - 1);
    const locatedText = [...new Set(locatedRows.map((r) => r.task))].map((t) => {
      const rs = locatedRows.filter((r) => r.task === t);
      return `${t} ${fmt(mean(rs.map((r) => r.test.estimate)))} vs located controls ${fmt(mean(rs.map((r) => r.test.control)))} (own circuit ${fmt(mean(rs.map((r) => r.own.estimate)))})`;
    });
    report.summary = `${tasks.length} tasks: SAE latents' mean max activation correlation across seeds ${saeRows.map((s) => `${s.task} ${fmt(s.meanMaxCorrelation)} (shifted null ${fmt(s.nullMean)}, shared ${fmt(s.shared)})`).join(', ')}; last-layer CKA ${last.map((r) => fmt(r.cka as number)).join(', ')} vs random-init ${last.map((r) => fmt(r.control as number)).join(', ')}; SVCCA ${last.map((r) => fmt(r.svcca as number)).join(', ')} vs random-init ${last.map((r) => fmt(r.svccaControl as number)).join(', ')}; circuits located in another seed's model and patched there restore ${locatedText.join(', ') || 'n/a'}.`;
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
