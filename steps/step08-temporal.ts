// Step 8: temporal causality. For the first temporal.seeds gate-passing seeds of each task (or the
// --model checkpoint on induction), on `temporal.examples` task sequences and as many uniformly
// random sequences (the control): influence maps of every layer's residual stream on the input
// embeddings, the SSM state's influence maps per layer (example 0), Mamba's hidden attention per
// layer (example 0), the decay of influence with distance, and the share of influence beyond a
// distance, task vs random inputs (sketched maps; the sketch's error measured against the exact map
// on each task's first model). The task's own question: does the influence on each answer peak at
// the position its answer comes from, against matched positions (exact Jacobian rows at the
// answers; interp/temporal.ts sourcePeak)? Per task, each claim is over seeds (interp/seeds.ts):
// one value per seed, their t interval (the seed is the unit), the seeds' p combined by Fisher's
// method.
import type { Rng } from '../engine/random.ts';
import { pending } from '../interp/claims.ts';
import { acrossSeeds, perSeedText, type SeedValue } from '../interp/seeds.ts';
import { bootstrapCI, mean, permutationTest } from '../interp/stats.ts';
import { getTask, type TaskBatch } from '../interp/tasks/index.ts';
import { fmt, heatmap, intervalChart, lineChart, type Claim } from '../interp/report/index.ts';
import {
  acausalMass,
  answerSources,
  channelMap,
  decayCurve,
  hiddenAttention,
  longRangeFraction,
  meanMap,
  outputInfluence,
  RESIDUAL_SKETCH,
  residualInfluence,
  type SketchError,
  sketchError,
  sketchErrorBound,
  sourcePeak,
  STATE_SKETCH,
  stateInfluence,
  type TimeMap,
} from '../interp/temporal.ts';
import { firstSeeds, noAnswerSourceNote, studyModels, withAnswerSource, type StudyModel } from './models.ts';
import { notApplicableStep } from './not-applicable.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step, StepContext } from './step.ts';
import { stepInfo } from './table.ts';

/** Positions of the exact map the sketch is checked against (the exact map costs d / RESIDUAL_SKETCH times the sketch, and grows with the square of the length). */
const CHECK_LEN = 16;

/**
 * The sequences a model is studied on: task data at temporal.seqLen, or at the shortest longer
 * length the task's other options allow (Jacobian cost grows with the square of the length).
 */
function taskSequences(m: StudyModel, T: number, n: number, rng: Rng): { ids: number[][]; batch: TaskBatch } {
  const task = getTask(m.task);
  const longest = Math.max(T, m.taskOptions.seqLen ?? T);
  let batch: TaskBatch | undefined;
  for (let len = T; !batch; len++) {
    try {
      batch = task.generate({ ...m.taskOptions, seqLen: len } as never, rng, n);
    } catch (e) {
      if (len >= longest) throw e;
    }
  }
  const len = batch.shape[1];
  return { ids: Array.from({ length: n }, (_, b) => Array.from(batch.inputs.subarray(b * len, (b + 1) * len))), batch };
}

/** The index of the task's vocabulary entry (BOS, trigger, content, ...) a token belongs to: the source test's token class. */
function tokenClass(m: StudyModel, batch: TaskBatch): (seq: number, pos: number) => number {
  const vocab = getTask(m.task).vocabulary(m.taskOptions as never);
  const T = batch.shape[1];
  return (seq, pos) => {
    const tok = batch.inputs[seq * T + pos];
    return vocab.findIndex((v) => tok >= v.first && tok <= v.last);
  };
}

function randomSequences(vocab: number, T: number, n: number, rng: Rng): number[][] {
  return Array.from({ length: n }, () => Array.from({ length: T }, () => rng.int(0, vocab)));
}

export interface TemporalModelResult {
  label: string;
  task: string;
  seed: number;
  seqLen: number;
  minDistance: number;
  /** per layer (then 'final'): mean influence map over the task examples */
  residual: { name: string; map: TimeMap; decay: number[] }[];
  state: { layer: number; map: TimeMap; sketch: number }[];
  hiddenAttention: { layer: number; meanAbs: TimeMap; decay: number[]; channels: { channel: number; map: TimeMap }[] }[];
  longRange: { task: number[]; random: number[] };
  maxAcausal: number;
  /** the source test (exact rows of the final-hidden map at the answers); null where no pair has a matched control */
  source: SourceTest | null;
  /** the sketch against the exact final-hidden map of the first task sequence (each task's first model only) */
  sketchCheck: SketchCheck | null;
}

/** One model's test that the influence on each answer peaks at its source (source.json). */
export interface SourceTest {
  model: string;
  task: string;
  seed: number;
  /** (answer, source) pairs tested, and those left out (no matched control) */
  pairs: number;
  skipped: number;
  /** mean over pairs of log influence at the source minus mean log influence at matched controls */
  value: number;
  /** mean percentile of the source among its controls (0.5 under the null) */
  percentile: number;
  /** median matched controls per pair */
  controls: number;
  /** source-to-answer distances of the pairs: median and largest */
  distance: [number, number];
  /** the rank test: null draws at or above the observed, of nPerm; one-sided p and its floor */
  ge: number;
  nPerm: number;
  p: number;
  pFloor: number;
}

export interface SketchCheck {
  sketch: number;
  bound: number;
  /** the prefix compared (the first `positions` positions of the first task sequence) */
  positions: number;
  error: SketchError;
  /** the long-range share of that prefix at distance >= minDistance, exact and sketched */
  minDistance: number;
  longRangeExact: number;
  longRangeSketch: number;
}

async function studyOne(ctx: StepContext, m: StudyModel, firstOfTask: boolean): Promise<TemporalModelResult> {
  const { seqLen, examples } = ctx.config.temporal;
  if (examples < 2) throw new Error(`temporal.examples must be >= 2 (a bootstrap interval over examples), got ${examples}`);
  const model = await m.load();
  try {
    const c = model.config;
    const { ids: seqs, batch } = taskSequences(m, seqLen, examples, ctx.rng(`data/${m.label}`));
    const T = seqs[0].length;
    const rand = randomSequences(c.vocab_size, T, examples, ctx.rng(`random/${m.label}`));
    const minDistance = Math.min(8, Math.max(1, Math.floor(T / 3)));
    const taskMaps: { layers: TimeMap[]; final: TimeMap }[] = [];
    const randMaps: { layers: TimeMap[]; final: TimeMap }[] = [];
    let maxAcausal = 0;
    const total = 2 * examples + c.num_hidden_layers * 2;
    let done = 0;
    for (const [list, out] of [
      [seqs, taskMaps],
      [rand, randMaps],
    ] as const) {
      for (const ids of list) {
        ctx.progress(`temporal ${m.label}`, done++, total);
        const r = await residualInfluence(model, ids, {
          sketch: RESIDUAL_SKETCH,
          rng: ctx.rng(`sketch/${m.label}/residual`),
          finalOnly: out === randMaps,
        });
        for (const mp of [...r.layers, r.final]) maxAcausal = Math.max(maxAcausal, acausalMass(mp));
        out.push(r);
      }
    }
    const names = [...Array.from({ length: c.num_hidden_layers }, (_, i) => `layer ${i} resid_post`), 'final normed hidden'];
    const residual = names.map((name, i) => {
      const map = meanMap(taskMaps.map((r) => (i < c.num_hidden_layers ? r.layers[i] : r.final)));
      return { name, map, decay: decayCurve(map) };
    });
    const EN = c.intermediate_size * c.state_size;
    const sketch = EN > STATE_SKETCH ? STATE_SKETCH : 0;
    const state = [];
    const hidden = [];
    for (let layer = 0; layer < c.num_hidden_layers; layer++) {
      ctx.progress(`temporal ${m.label}`, done++, total);
      const map = await stateInfluence(model, seqs[0], layer, { sketch, rng: ctx.rng(`sketch/${m.label}/${layer}`) });
      maxAcausal = Math.max(maxAcausal, acausalMass(map));
      state.push({ layer, map, sketch });
      ctx.progress(`temporal ${m.label}`, done++, total);
      const h = await hiddenAttention(model, seqs[0], layer);
      // the two channels that reach furthest back (largest long-range share of |alpha|)
      const E = h.E;
      const reach = Array.from({ length: E }, (_, e) => ({ e, f: longRangeFraction(channelMap(h.alpha, e, T), minDistance) })).sort(
        (a, b) => b.f - a.f || a.e - b.e,
      );
      hidden.push({
        layer,
        meanAbs: h.meanAbs,
        decay: decayCurve(h.meanAbs),
        channels: reach.slice(0, 2).map(({ e }) => ({ channel: e, map: channelMap(h.alpha, e, T) })),
      });
    }
    // the source test: exact rows at the answer positions
    const pairs = answerSources(batch);
    const exactRows: TimeMap[] = [];
    for (const [b, ids] of seqs.entries()) {
      const answers = [...new Set(pairs.filter((q) => q.seq === b).map((q) => q.answer))];
      exactRows.push(await outputInfluence(model, ids, answers));
    }
    let source: SourceTest | null = null;
    if (pairs.length) {
      try {
        const peak = sourcePeak(exactRows, pairs, ctx.rng(`source/${m.label}`), ctx.config.permutations, tokenClass(m, batch));
        const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
        const dists = sorted(peak.pairs.map((q) => q.distance));
        source = {
          model: m.label,
          task: m.task,
          seed: m.seed,
          pairs: peak.pairs.length,
          skipped: peak.skipped,
          value: peak.value,
          percentile: peak.percentile,
          controls: sorted(peak.pairs.map((q) => q.controls))[Math.floor(peak.pairs.length / 2)],
          distance: [dists[Math.floor(dists.length / 2)], dists[dists.length - 1]],
          ge: peak.ge,
          nPerm: peak.nPerm,
          p: peak.p,
          pFloor: 1 / (1 + peak.nPerm),
        };
      } catch (e) {
        // sequences whose every answer row is a pair at each distance (e.g. fixed trigger gaps) give no matched control
        if (!/no \(answer, source\) pair with a matched control/.test((e as Error).message)) throw e;
      }
    }
    // the sketch's error at the size used, on this model: the exact final-hidden map of the first
    // sequence's first CHECK_LEN positions, against the same block of its sketched map (the model is
    // causal and the sketch is per position, so the prefix's maps are those blocks)
    let sketchCheck: SketchCheck | null = null;
    if (firstOfTask) {
      const n = Math.min(T, CHECK_LEN);
      const exact = (await residualInfluence(model, seqs[0].slice(0, n), { finalOnly: true })).final;
      const block = taskMaps[0].final.slice(0, n).map((row) => row.slice(0, n));
      const dPrefix = Math.min(minDistance, Math.max(1, Math.floor(n / 3)));
      sketchCheck = {
        sketch: RESIDUAL_SKETCH,
        bound: sketchErrorBound(RESIDUAL_SKETCH),
        positions: n,
        error: sketchError(exact, block),
        minDistance: dPrefix,
        longRangeExact: longRangeFraction(exact, dPrefix),
        longRangeSketch: longRangeFraction(block, dPrefix),
      };
    }
    ctx.progress(`temporal ${m.label}`, total, total);
    return {
      source,
      sketchCheck,
      label: m.label,
      task: m.task,
      seed: m.seed,
      seqLen: T,
      minDistance,
      residual,
      state,
      hiddenAttention: hidden,
      maxAcausal,
      longRange: {
        task: taskMaps.map((r) => longRangeFraction(r.final, minDistance)),
        random: randMaps.map((r) => longRangeFraction(r.final, minDistance)),
      },
    };
  } finally {
    model.dispose();
  }
}

/** One model's long-range share, task vs random inputs, with its own intervals over sequences and permutation test (long-range.json). */
export interface LongRangeTest {
  model: string;
  task: string;
  seed: number;
  minDistance: number;
  /** mean share on task inputs and on random inputs, with percentile bootstrap intervals over sequences */
  taskShare: number;
  taskInterval: [number, number];
  randomShare: number;
  randomInterval: [number, number];
  /** the seed's value for the claim: task minus random share */
  difference: number;
  /** two-sided two-sample permutation test of task vs random sequences */
  p: number;
  pFloor: number;
  nPerm: number;
}

function longRangeTest(ctx: StepContext, r: TemporalModelResult): LongRangeTest {
  const lr = r.longRange;
  const ciTask = bootstrapCI(lr.task, ctx.rng(`boot/${r.label}/task`), mean, { nBoot: 2000, method: 'percentile' });
  const ciRand = bootstrapCI(lr.random, ctx.rng(`boot/${r.label}/random`), mean, { nBoot: 2000, method: 'percentile' });
  const perm = permutationTest(lr.task, lr.random, ctx.rng(`perm/${r.label}`), { nPerm: ctx.config.permutations });
  return {
    model: r.label,
    task: r.task,
    seed: r.seed,
    minDistance: r.minDistance,
    taskShare: ciTask.estimate,
    taskInterval: [ciTask.lo, ciTask.hi],
    randomShare: ciRand.estimate,
    randomInterval: [ciRand.lo, ciRand.hi],
    difference: ciTask.estimate - ciRand.estimate,
    p: perm.pValue,
    pFloor: perm.floor,
    nPerm: perm.nPerm,
  };
}

/**
 * A seed's value for the source claim: the mean log ratio, with its Monte Carlo p (combined by
 * Fisher's method; the exact sum-of-ranks distribution is quadratic in the number of null draws,
 * and 99999 of them per seed would take minutes).
 */
export function sourceSeedValue(t: SourceTest): SeedValue {
  return { seed: t.seed, model: t.model, value: t.value, p: t.p, pFloor: t.pFloor };
}

/** A seed's value for the claim: task minus random share, with its permutation p (combined by Fisher's method). */
export function seedValueOf(t: LongRangeTest): SeedValue {
  return { seed: t.seed, model: t.model, value: t.difference, p: t.p, pFloor: t.pFloor };
}

export const temporalStep: Step = {
  ...stepInfo('temporal'),
  version: 5,
  needs: [1],
  configKeys: ['temporal', 'model', 'permutations', 'claimSeeds'],
  appliesToModel: true,
  async run(ctx) {
    const { applicable: models, notApplicable } = withAnswerSource(firstSeeds(studyModels(ctx), ctx.config.temporal.seeds));
    const skipNote = noAnswerSourceNote(notApplicable, "the influence analysis (each answer's influence peak against its source)");
    if (!models.length) return notApplicableStep(ctx, skipNote!, ['temporal.json', 'long-range.json', 'source.json', 'sketch-error.json']);
    const results: TemporalModelResult[] = [];
    for (const [i, m] of models.entries()) results.push(await studyOne(ctx, m, models.findIndex((x) => x.task === m.task) === i));
    ctx.writeJson('temporal.json', results);
    const tests = results.map((r) => longRangeTest(ctx, r));
    ctx.writeJson('long-range.json', tests);
    const sources = results.flatMap((r) => (r.source ? [r.source] : []));
    ctx.writeJson('source.json', sources);
    const checks = results.filter((r) => r.sketchCheck).map((r) => ({ model: r.label, ...r.sketchCheck! }));
    ctx.writeJson('sketch-error.json', checks);

    const report = ctx.report();
    if (skipNote) report.notes.push(skipNote);
    for (const r of results) {
      const tag = r.label;
      const L = r.hiddenAttention.length;
      // the maps of every seed are in temporal.json; the page shows the first seed's, and every seed's decay
      const firstOfTask = results.find((x) => x.task === r.task) === r;
      for (const [i, res] of r.residual.entries()) {
        if (!firstOfTask) break;
        report.figures.push(
          await saveFigure(
            ctx,
            `influence-${tag}-${i}`,
            heatmap(res.map, {
              title: `${tag}: ||d ${res.name}[t] / d embedding[s]||`,
              rowTitle: 't (output position)',
              colTitle: 's (input position)',
              valueTitle: 'Frobenius norm',
              width: 260,
              height: 260,
            }),
            `Residual influence, ${tag}, ${res.name}`,
            `Frobenius norm (sketched, ${RESIDUAL_SKETCH} rows per position) of the Jacobian block of the ${res.name} at t with respect to the input embedding at s, mean over ${r.longRange.task.length} ${r.task} sequences. Zero above the diagonal (causal).`,
          ),
        );
      }
      for (const s of r.state) {
        if (!firstOfTask) break;
        report.figures.push(
          await saveFigure(
            ctx,
            `state-influence-${tag}-${s.layer}`,
            heatmap(s.map, {
              title: `${tag}: ||d h_t / d x_s||, layer ${s.layer} SSM state`,
              rowTitle: 't (state position)',
              colTitle: 's (mixer input position)',
              valueTitle: 'Frobenius norm',
              width: 260,
              height: 260,
            }),
            `SSM-state influence, ${tag}, layer ${s.layer}`,
            `Frobenius norm of d h_t (layer ${s.layer}'s SSM state after t) / d x_s (the layer's mixer input at s), one ${r.task} sequence${s.sketch ? `; estimated with a Gaussian sketch of ${s.sketch} rows per position (unbiased in the square)` : ', exact'}.`,
          ),
        );
      }
      for (const h of r.hiddenAttention) {
        if (!firstOfTask) break;
        report.figures.push(
          await saveFigure(
            ctx,
            `hidden-attention-${tag}-${h.layer}`,
            heatmap(h.meanAbs, {
              title: `${tag}: hidden attention, layer ${h.layer} (mean |alpha| over channels)`,
              rowTitle: 't',
              colTitle: 's',
              valueTitle: 'mean |alpha|',
              width: 260,
              height: 260,
            }),
            `Hidden attention, ${tag}, layer ${h.layer}`,
            'alpha[t,s] = C_t . prod_{k in (s,t]} exp(delta_k A) . delta_s B_s per channel (Ali et al. 2024), mean absolute value over channels; y_t = sum_s alpha[t,s] u_s + D u_t reproduces the scan exactly (test/interp/temporal.test.ts).',
          ),
        );
        for (const ch of h.channels) {
          report.figures.push(
            await saveFigure(
              ctx,
              `hidden-attention-${tag}-${h.layer}-ch${ch.channel}`,
              heatmap(ch.map, {
                title: `${tag}: layer ${h.layer}, channel ${ch.channel} alpha`,
                rowTitle: 't',
                colTitle: 's',
                valueTitle: 'alpha',
                scheme: 'redblue',
                width: 200,
                height: 200,
              }),
              `Hidden attention of one channel, ${tag}, layer ${h.layer}, channel ${ch.channel}`,
              `One of the two channels of layer ${h.layer} with the largest share of |alpha| at distance >= ${r.minDistance}.`,
            ),
          );
        }
      }
      const decayRows = [
        ...r.residual.flatMap((res) =>
          res.decay.map((v, d) => ({
            distance: d,
            influence: v / (res.decay[0] || 1),
            series: `resid ${res.name.replace(' resid_post', '').replace('final normed hidden', 'final')}`,
          })),
        ),
        ...r.hiddenAttention
          .map((h) => h.decay)
          .flatMap((dc, l) => dc.map((v, d) => ({ distance: d, influence: v / (dc[0] || 1), series: `attn layer ${l}` }))),
      ].filter((x) => x.influence > 0);
      report.figures.push(
        await saveFigure(
          ctx,
          `decay-${tag}`,
          lineChart(decayRows, {
            title: `${tag}: influence vs distance t - s (relative to distance 0)`,
            x: 'distance',
            y: 'influence',
            color: 'series',
            logY: true,
            points: true,
          }),
          `Decay of influence with distance, ${tag}`,
          `Mean over t of the map at (t, t - d), divided by its value at d = 0, for each layer's residual influence and hidden attention (${L} layers).`,
        ),
      );
    }

    // one claim per task, over its seeds
    const claims: Claim[] = [];
    const tasks = [...new Set(tests.map((t) => t.task))];
    const seedRows: { task: string; kind: string; value: number; lo: number; hi: number }[] = [];
    for (const task of tasks) {
      const perModel = tests.filter((t) => t.task === task);
      const s = acrossSeeds(perModel.map(seedValueOf), { minSeeds: ctx.config.claimSeeds });
      const D = perModel[0].minDistance;
      const perSeed = `per seed (task minus random share): ${perSeedText(s, fmt)}`;
      const test = s.enough
        ? `${s.combination} (each seed: two-sided two-sample permutation test, ${perModel[0].nPerm} permutations, ${ctx.config.temporal.examples} task vs ${ctx.config.temporal.examples} random sequences), combined floor ${fmt(s.pFloor!)}; the p's are two-sided, so the combination does not ask that the seeds agree in sign: the effect condition (t interval over seeds) does; ${perSeed}`
        : `only ${s.seeds} seed(s) passed the learning gate; a claim needs ${ctx.config.claimSeeds} (not tested); ${perSeed}`;
      // two-sided, as the per-seed tests: tasks may need more or less long-range influence than random text
      const holds = s.seeds >= 2 && (s.interval[0] > 0 || s.interval[1] < 0);
      claims.push({
        statement: `${task} (${s.seeds} seed${s.seeds === 1 ? '' : 's'}): share of the final hidden state's input influence at distance >= ${D}, ${task} inputs minus random-token inputs`,
        estimate: s.mean,
        interval: s.interval,
        level: s.level,
        test,
        ...(s.p !== undefined ? { p: s.p, pFloor: s.pFloor } : {}),
        control:
          'the same models on uniformly random token sequences of the same length (the share on them is the control estimate, mean over seeds)',
        controlEstimate: mean(perModel.map((t) => t.randomShare)),
        perSeed: s.perSeed.map(({ seed, model, value, p }) => ({ seed, model, value, p })),
        ...pending(holds, `the ${Math.round(s.level * 100)}% t interval over seeds excludes 0 (two-sided, as the per-seed tests)`),
      });
      for (const t of perModel) seedRows.push({ task, kind: `seed ${t.seed}`, value: t.difference, lo: t.difference, hi: t.difference });
      if (Number.isFinite(s.interval[0]))
        seedRows.push({ task, kind: 'mean over seeds (t interval)', value: s.mean, lo: s.interval[0], hi: s.interval[1] });
    }
    // one source claim per task, over its seeds: does the influence on the answer peak at its source?
    for (const task of tasks) {
      const perModel = sources.filter((t) => t.task === task);
      if (!perModel.length) continue;
      const s = acrossSeeds(perModel.map(sourceSeedValue), { minSeeds: ctx.config.claimSeeds });
      const perSeed = `per seed (mean log ratio, source percentile among its controls): ${s.perSeed.map((v, i) => `${v.model} ${fmt(v.value)} (percentile ${fmt(perModel[i].percentile)}, p ${fmt(v.p!)})`).join(', ')}`;
      const test = s.enough
        ? `${s.combination}; each seed: one-sided rank of its mean log ratio among ${perModel[0].nPerm} null draws in which each pair's source is replaced by a uniformly drawn member of its pool (source and matched controls), ${perModel.map((t) => t.pairs).join('/')} pairs; combined floor ${fmt(s.pFloor!)}; ${perSeed}`
        : `only ${s.seeds} seed(s) passed the learning gate; a claim needs ${ctx.config.claimSeeds} (not tested); ${perSeed}`;
      const holds = s.seeds >= 2 && s.interval[0] > 0;
      claims.push({
        statement: `${task} (${s.seeds} seed${s.seeds === 1 ? '' : 's'}): the influence of the input embeddings on the final hidden state at each answer peaks at the answer's source (log ratio of the influence at the source to that at matched positions)`,
        estimate: s.mean,
        interval: s.interval,
        level: s.level,
        test,
        ...(s.p !== undefined ? { p: s.p, pFloor: s.pFloor } : {}),
        control:
          "matched positions: in the answer rows of the same model's task sequences, the positions at the source's distance from their answer, of the source's token class (the task's vocabulary), that are not that answer's source; exact Jacobian rows (0 is the null: the source is one more position at its distance)",
        controlEstimate: 0,
        perSeed: s.perSeed.map(({ seed, model, value, p }) => ({ seed, model, value, p })),
        ...pending(holds, `the ${Math.round(s.level * 100)}% t interval over seeds lies above 0 (one-sided, as the per-seed tests)`),
      });
    }
    report.claims.push(...claims);
    report.tables.push({
      title:
        "Influence at the answer's source per model: ||d final hidden[answer] / d embedding[s]|| at the source against matched positions (exact Jacobian rows; the claims combine these over seeds)",
      columns: [
        'model',
        'task',
        'seed',
        'pairs',
        'left out',
        'median controls',
        'median distance',
        'largest distance',
        'mean log ratio',
        'source percentile',
        'p (rank)',
      ],
      rows: sources.map((t) => [
        t.model,
        t.task,
        t.seed,
        t.pairs,
        t.skipped,
        t.controls,
        t.distance[0],
        t.distance[1],
        t.value,
        t.percentile,
        t.p,
      ]),
    });
    report.tables.push({
      title: `The sketch's error at the size used (${RESIDUAL_SKETCH} rows per position): the sketched final-hidden map against the exact one on the first positions of the first task sequence of each task's first model (the long-range share there at its own distance D)`,
      columns: [
        'model',
        'positions',
        'entries',
        'RMS of ŝ²/s² - 1',
        'stated bound sqrt(2/k)',
        'mean ŝ²/s²',
        'median |ŝ/s - 1|',
        'largest |ŝ/s - 1|',
        'D',
        'long-range share exact',
        'sketched',
      ],
      rows: checks.map((c) => [
        c.model,
        c.positions,
        c.error.entries,
        c.error.rmsSquare,
        c.bound,
        c.error.meanRatio,
        c.error.medianRel,
        c.error.maxRel,
        c.minDistance,
        c.longRangeExact,
        c.longRangeSketch,
      ]),
    });
    if (seedRows.length)
      report.figures.push(
        await saveFigure(
          ctx,
          'long-range-seeds',
          intervalChart(seedRows, {
            title: 'Long-range share, task minus random inputs, per seed',
            category: 'task',
            value: 'value',
            lo: 'lo',
            hi: 'hi',
            color: 'kind',
            valueTitle: 'share (task) - share (random)',
          }),
          'Long-range share per seed',
          "Each seed's difference between the share of the final hidden state's input influence beyond the minimum distance on task inputs and on random inputs (points), beside the task's mean over seeds with its 95% t interval (the seed is the unit).",
        ),
      );
    report.tables.push({
      title:
        'Long-range dependence per model: share of influence mass (final normed hidden state on the input embeddings) at distance >= D (the claims combine these over seeds)',
      columns: [
        'model',
        'task',
        'seed',
        'T',
        'D',
        'task inputs',
        'CI low',
        'CI high',
        'random inputs',
        'difference',
        'p (permutation)',
        'max acausal / max',
      ],
      rows: results.map((r, i) => [
        r.label,
        r.task,
        r.seed,
        r.seqLen,
        r.minDistance,
        tests[i].taskShare,
        tests[i].taskInterval[0],
        tests[i].taskInterval[1],
        tests[i].randomShare,
        tests[i].difference,
        tests[i].p,
        r.maxAcausal,
      ]),
    });
    report.notes.push(
      `Claims are per task over seeds (the first ${ctx.config.temporal.seeds} gate-passing seeds; a claim needs ${ctx.config.claimSeeds}): the estimate is the mean over seeds of the task-minus-random long-range share, its interval Student's t over seeds, and p Fisher's combination of the seeds' permutation p-values (interp/seeds.ts). The influence maps and hidden attention are drawn for each task's first seed; every seed's maps are in temporal.json, its test in long-range.json.`,
    );
    report.notes.push(
      'Influence maps: Jacobians by reverse mode (mi.jacobian, batched over copies of the sequence); the exact final-hidden map is the quantity checked against the Hugging Face fixture (f64.jacobian_fro_out_t_in_s) in test/interp/temporal.test.ts.',
    );
    report.notes.push(
      `The maps drawn and the long-range share are sketched to keep the Jacobians affordable: ${RESIDUAL_SKETCH} Gaussian rows per position for the residual stream, ${STATE_SKETCH} for the SSM state. ||S^T J||^2 is unbiased for ||J||^2 with relative standard deviation sqrt(2/(k r)) <= sqrt(2/k) (r the block's effective rank): ${fmt(sketchErrorBound(RESIDUAL_SKETCH))} at k = ${RESIDUAL_SKETCH}, ${fmt(sketchErrorBound(STATE_SKETCH))} at ${STATE_SKETCH}; the table above measures it on each task's first model against the exact map, and the unit tests check the bound and the 1/sqrt(k) shrinkage against exact Jacobians. The source test reads exact rows (the answers' rows, d Jacobian rows each).`,
    );
    report.notes.push(
      "The source test: for each scored position (answer) of a task sequence, the source is where its answer comes from (induction: the token after the previous trigger; selective copying: the data token; MQAR: the value after the key). The source's influence on the answer's final hidden state is compared, as a log ratio, with the influence at matched positions: the other answers' positions at the same distance back, of the same token class, that are not their source; matching on the answer row, the distance and the token class removes what the decay of influence with distance, a row that reads its state more, or an embedding of another class would give. Null: the source is one more member of its pool. On a hand-set induction model the source peaks (log ratio > 2, every null draw below) and on a random-init model it does not (test/interp/temporal.test.ts).",
    );
    report.notes.push(
      "SSM-state influence is taken with respect to the layer's own mixer input, so it shows the layer's temporal mixing alone.",
    );
    const maxAc = Math.max(...results.map((r) => r.maxAcausal));
    const lr = claims.slice(0, tasks.length),
      src = claims.slice(tasks.length);
    report.summary = `${results.length} model(s), ${claims.length} claim(s) over seeds; influence at the answer's source against matched positions (mean log ratio) ${src.map((c) => `${c.statement.split(' (')[0]} ${fmt(c.estimate)}`).join(', ')}; long-range share minus random ${lr.map((c, i) => `${tasks[i]} ${fmt(c.estimate)} (${c.perSeed!.length} seed(s))`).join(', ')}; largest acausal entry ${fmt(maxAc)} of the maximum.`;
    saveReport(ctx, report);
    return report.summary;
  },
};
