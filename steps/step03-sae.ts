// Step 3: sparse autoencoders on the collected activations, evaluated as SAELens evaluates them
// and against baselines at the same sparsity. For the first config.sae.seeds models of each task
// and each configured hook, one SAE per kind (ReLU+L1, TopK), trained on the first 80% of the
// collected sequences (steps/sae-training.ts saeSplit). Then, on the held-out 20%: l0,
// explained_variance / FVU, dead fraction and feature density; on fresh sequences: the task's
// ce_loss_score with the SAE spliced into the hook against zero- and mean-ablation of that hook,
// and the kl_div_score. Baselines at matched L0 (k = the SAE's held-out L0 rounded): PCA with the
// top-k components of the training rows, and an untrained SAE of the same shape with TopK k.
// SAEs on every layer's residual stream and SSM output (config.sae.sweepHooks) are trained for the
// first seed of each task only, one kind (sweepKind): a table and figure, not claims.
// Claims are per task x SAE kind x hook, over seeds (interp/seeds.ts): each seed's value is its
// SAE's ce_loss_score against mean-ablation, (meanAblated - spliced) / (meanAblated - clean), its
// p that model's permutation test on the fresh sequences (spliced loss below mean-ablated loss);
// the claim's interval is Student's t over the seeds and its p Fisher's combination. PCA at
// matched L0 is the control shown beside it.
import { mkdirSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import {
  ceLossScore,
  encodeAll,
  featureDensity,
  klDivScore,
  pcaBaseline,
  reconstructionMetrics,
  saeMetrics,
  spliceHook,
  untrainedSae,
  type Sae,
  type SaeMetrics,
} from '../interp/sae/index.ts';
import { neuronpediaBatch, saeDashboard, type DashboardVariable } from '../interp/sae/dashboard.ts';
import { saveSae } from '../interp/sae/io.ts';
import type { TaskVariable } from '../interp/task-variables.ts';
import { writeAtomic } from './files.ts';
import { checkFiniteJson } from './finite.ts';
import { saelensEvalMetrics, saveSaeLens } from '../interp/sae/saelens.ts';
import {
  columnMeans,
  lossRecoveredCI,
  meanAblation,
  scoredPerSequence,
  topExamples,
  variableCorrelations,
  zeroAblation,
  type LatentExample,
  type SequenceScores,
} from '../interp/sae/task.ts';
import type { HookFn } from '../mamba/hooks.ts';
import type { MambaLM } from '../mamba/model.ts';
import { pending } from '../interp/claims.ts';
import { acrossSeeds, type SeedSummary } from '../interp/seeds.ts';
import { bootstrapCI, pairedPermutationTest } from '../interp/stats.ts';
import { taskVariables } from '../interp/task-variables.ts';
import { getTask, type AnyTaskOptions, type TaskBatch } from '../interp/tasks/index.ts';
import { fmt, intervalChart, scatter, type Claim, type Spec } from '../interp/report/index.ts';
import { loadActivations, loadCollections, loadSources, loadTokens, type SaeRecord, type SequenceSource } from './artefacts.ts';
import { resolveHooks, shortHook } from './hook-patterns.ts';
import { byTask, firstSeeds, studyModels } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import { heldOutMetrics, saeSplit, trainConfiguredSae, SAE_HELD_OUT_FRACTION, type ActivationSplit } from './sae-training.ts';
import { claimFieldsOverSeeds, fewPassed, seedChart, seedPoints, tooFewSeeds, type SeedPoint } from './seed-report.ts';
import type { Step, StepContext } from './step.ts';
import { stepInfo } from './table.ts';

/** The README's floor on explained variance (1 - FVU, held out) that every SAE of the quick run clears. */
export const EXPLAINED_VARIANCE_FLOOR = 0.5;
const TOP_LATENTS = 8;
/** the kinds step 3 trains (JumpReLU SAEs are loaded, not trained: interp/sae/saelens.ts) */
type SaeKind = SaeRecord['kind'];
const N_BOOT = 1000;

/** A method's scores on the fresh sequences: SAELens' ce_loss_score against each ablation and kl_div_score. */
export interface SpliceScores {
  /** ce_loss_score against mean-ablation of the hook: (meanAblated - spliced) / (meanAblated - clean) */
  ceLossScore: number;
  /** its 95% bootstrap interval over the fresh sequences */
  ceLossScoreInterval: [number, number];
  /** ce_loss_score against zero-ablation: (zeroAblated - spliced) / (zeroAblated - clean) */
  ceLossScoreZero: number;
  /** kl_div_score against zero-ablation (SAELens' reference): (KL_zero - KL_spliced) / KL_zero */
  klDivScore: number;
  /** kl_div_score against mean-ablation */
  klDivScoreMean: number;
  lossSpliced: number;
  /** mean KL(clean || spliced) per scored position */
  klSpliced: number;
}

/** A baseline at the SAE's L0 (k = its held-out L0 rounded), on the same held-out rows and fresh sequences. */
export interface BaselineRow extends SpliceScores {
  k: number;
  l0: number;
  fvu: number;
  explainedVariance: number;
}

/** A row of saes.json: step 3's SAE record, held-out metrics, the SAELens scores, baselines and that model's test. */
export interface SaeRow extends SaeRecord, SpliceScores {
  /** collected rows the SAE trained on and rows held out (whole sequences; the metrics are the held-out ones) */
  trainRows: number;
  heldOutRows: number;
  /** 1 - FVU on the held-out rows */
  explainedVariance: number;
  /** KL(clean || ablated) per scored position, zero- and mean-ablation */
  klZeroAblated: number;
  klMeanAblated: number;
  /** PCA with the top-k components and an untrained TopK SAE of the same shape, k = round(held-out L0) */
  baselines: { pca: BaselineRow; random: BaselineRow & { deadFraction: number } };
  /** per latent, log10(held-out firing frequency + 1e-10) (SAELens' feature density) */
  log10Density: number[];
  /** the same SAE as a SAELens folder (interp/sae/saelens.ts), relative to step-03-sae/ */
  saelensDir: string;
  /** its feature dashboards on the held-out rows, a Neuronpedia batch (interp/sae/dashboard.ts), relative to step-03-sae/ */
  dashboard: string;
  /** ce_loss_score minus PCA's at matched L0 (the claim's quantity) and its 95% bootstrap interval over the fresh sequences */
  gainOverPca: number;
  gainOverPcaInterval: [number, number];
  /** the metrics under SAELens's run_evals names and groups (its ce_loss_score: zero-ablation) */
  saelens: ReturnType<typeof saelensEvalMetrics>;
  /** one-sided paired permutation test on the fresh sequences: SAE-spliced loss below PCA-spliced loss (claim hooks) */
  p: number;
  pFloor: number;
}

/** A row of sweep.json: an SAE on one more hook (first seed of each task), without the claim's test and correlations. */
export type SweepRow = Omit<
  SaeRow,
  'p' | 'pFloor' | 'gainOverPca' | 'gainOverPcaInterval' | 'topLatents' | 'log10Density' | 'saelensDir' | 'dashboard'
>;

interface CorrelationRow {
  sae: string;
  variable: string;
  rank: number;
  latent: number;
  r: number;
}

/** A model and its fresh sequences, scored clean and with a hook ablated: the references every method is scored against. */
interface Reference {
  model: MambaLM;
  batch: TaskBatch;
  clean: SequenceScores;
  zero: SequenceScores;
  meanAbl: SequenceScores;
}

const meanOf = (x: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s / x.length;
};

/** ce_loss_score and kl_div_score of `fn` spliced into `hook`, with the per-sequence scores. */
async function spliceScores(
  ref: Reference,
  hook: string,
  fn: HookFn,
  rng: ReturnType<StepContext['rng']>,
): Promise<{ scores: SpliceScores; spliced: SequenceScores }> {
  const spliced = await scoredPerSequence(ref.model, ref.batch, [{ name: hook, fn }], ref.clean);
  const clean = meanOf(ref.clean.loss),
    zero = meanOf(ref.zero.loss),
    meanAbl = meanOf(ref.meanAbl.loss),
    lossSpliced = meanOf(spliced.loss);
  const ci = lossRecoveredCI(ref.clean.loss, spliced.loss, ref.meanAbl.loss, rng, { nBoot: N_BOOT });
  const klSpliced = meanOf(spliced.kl!),
    klZero = meanOf(ref.zero.kl!),
    klMean = meanOf(ref.meanAbl.kl!);
  return {
    spliced,
    scores: {
      ceLossScore: meanAbl === clean ? 0 : ceLossScore({ clean, spliced: lossSpliced, ablated: meanAbl }),
      ceLossScoreInterval: [ci.lo, ci.hi],
      ceLossScoreZero: zero === clean ? 0 : ceLossScore({ clean, spliced: lossSpliced, ablated: zero }),
      klDivScore: klZero > 0 ? klDivScore({ spliced: klSpliced, ablated: klZero }) : 0,
      klDivScoreMean: klMean > 0 ? klDivScore({ spliced: klSpliced, ablated: klMean }) : 0,
      lossSpliced,
      klSpliced,
    },
  };
}

/**
 * ce_loss_score(SAE) - ce_loss_score(baseline) = (baseline loss - SAE loss) / (mean-ablated - clean),
 * with its 95% bootstrap interval over the fresh sequences (whole sequences resampled).
 */
function gainOverBaseline(
  ref: Reference,
  spliced: ArrayLike<number>,
  baseline: ArrayLike<number>,
  rng: ReturnType<StepContext['rng']>,
): { estimate: number; interval: [number, number] } {
  const at = (x: ArrayLike<number>, idx: ArrayLike<number>) => {
    let s = 0;
    for (let i = 0; i < idx.length; i++) s += x[idx[i]];
    return s / idx.length;
  };
  const statistic = (idx: ArrayLike<number>) => {
    const gap = at(ref.meanAbl.loss, idx) - at(ref.clean.loss, idx);
    return gap === 0 ? 0 : (at(baseline, idx) - at(spliced, idx)) / gap;
  };
  const all = Float64Array.from({ length: spliced.length }, (_, i) => i);
  const ci = bootstrapCI(all, rng, statistic, { nBoot: N_BOOT });
  return { estimate: statistic(all), interval: [ci.lo, ci.hi] };
}

/** Trains one SAE on the training split and evaluates it and its two baselines at matched L0. */
async function trainAndEvaluate(
  ctx: StepContext,
  job: { label: string; hook: string; kind: SaeKind; acts: { data: Float32Array; dim: number }; split: ActivationSplit; ref: Reference },
  onProgress: Parameters<typeof trainConfiguredSae>[4],
): Promise<{ sae: Sae; row: SweepRow; metrics: SaeMetrics; spliced: SequenceScores; pcaSpliced: SequenceScores; randomDensity: number[] }> {
  const { label, hook, kind, acts, split, ref } = job;
  const name = `${label} ${hook} ${kind}`;
  const { task, seed } = parseLabel(label);
  const sae = await trainConfiguredSae(
    ctx,
    { data: split.train.data, dim: acts.dim },
    kind,
    ctx.rng(`train/${name}`).int(0, 2 ** 31),
    onProgress,
  );
  try {
    const file = `saes/${label}/${hook}-${kind}.safetensors`;
    mkdirSync(dirname(ctx.path(file)), { recursive: true });
    await saveSae(sae, ctx.path(file));
    const m = await heldOutMetrics(sae, split);
    const { scores, spliced } = await spliceScores(ref, hook, spliceHook(sae), ctx.rng(`boot/${name}`));
    const k = Math.max(1, Math.round(m.l0));
    // PCA: the best rank-k linear map; fitted on the training rows, scored on the held-out rows
    const pca = pcaBaseline(split.train.data, acts.dim, k);
    const pcaRecon = reconstructionMetrics(split.heldOut.data, pca.reconstruct(split.heldOut.data), acts.dim);
    const { scores: pcaScores, spliced: pcaSpliced } = await spliceScores(ref, hook, pca.hook, ctx.rng(`boot-pca/${name}`));
    // the untrained SAE: trainSae's initialisation of the same shape, TopK with the same k
    const random = await untrainedSae(split.train.data, {
      d: acts.dim,
      latents: sae.latents,
      k,
      seed: ctx.rng(`random/${name}`).int(0, 2 ** 31),
      backend: ctx.backend,
    });
    let randomRow: BaselineRow & { deadFraction: number };
    let randomDensity: number[];
    try {
      const rm = await saeMetrics(random, split.heldOut.data);
      const rs = (await spliceScores(ref, hook, spliceHook(random), ctx.rng(`boot-random/${name}`))).scores;
      randomRow = { k, l0: rm.l0, fvu: rm.fvu, explainedVariance: rm.explainedVariance, deadFraction: rm.deadFraction, ...rs };
      randomDensity = Array.from(featureDensity(rm.firingRate).log10);
    } finally {
      random.dispose();
    }
    const lossClean = meanOf(ref.clean.loss),
      lossZero = meanOf(ref.zero.loss),
      lossMean = meanOf(ref.meanAbl.loss);
    const row: SweepRow = {
      task,
      seed,
      hook,
      kind,
      file,
      latents: sae.latents,
      ...(kind === 'topk' ? { k: ctx.config.sae.k } : {}),
      trainRows: split.train.rows,
      heldOutRows: split.heldOut.rows,
      l0: m.l0,
      fvu: m.fvu,
      explainedVariance: m.explainedVariance,
      deadFraction: m.deadFraction,
      lossClean,
      lossZeroAblated: lossZero,
      lossMeanAblated: lossMean,
      // the old name of ceLossScoreZero, kept for readers of saes.json
      lossRecovered: scores.ceLossScoreZero,
      meanAblationRecovered: lossZero === lossClean ? 0 : ceLossScore({ clean: lossClean, spliced: lossMean, ablated: lossZero }),
      klZeroAblated: meanOf(ref.zero.kl!),
      klMeanAblated: meanOf(ref.meanAbl.kl!),
      ...scores,
      accuracyClean: meanOf(ref.clean.accuracy),
      accuracySpliced: meanOf(spliced.accuracy),
      saelens: saelensEvalMetrics({ ...m, ...scores, latents: sae.latents }),
      baselines: {
        pca: { k: pca.k, l0: pca.k, fvu: pcaRecon.fvu, explainedVariance: pcaRecon.explainedVariance, ...pcaScores },
        random: randomRow,
      },
    };
    ctx.log(
      `${name}: held-out L0 ${fmt(m.l0)} FVU ${fmt(m.fvu)} dead ${fmt(m.deadFraction)}; ce_loss_score (mean-abl.) ${fmt(scores.ceLossScore)}, PCA-${pca.k} ${fmt(pcaScores.ceLossScore)}, random SAE ${fmt(randomRow.ceLossScore)}; kl_div_score ${fmt(scores.klDivScore)}`,
    );
    return { sae, row, metrics: m, spliced, pcaSpliced, randomDensity };
  } catch (e) {
    sae.dispose();
    throw e;
  }
}

function parseLabel(label: string): { task: string; seed: number } {
  const m = /^(.*)-s(\d+)$/.exec(label);
  if (!m) throw new Error(`step 3: bad model label ${label}`);
  return { task: m[1], seed: Number(m[2]) };
}

export const saeStep: Step = {
  ...stepInfo('sae'),
  version: 6,
  needs: [1, 2],
  configKeys: ['sae', 'permutations'],
  appliesToModel: true,
  async run(ctx) {
    const cfg = ctx.config.sae;
    const study = studyModels(ctx);
    const collections = loadCollections(ctx.runDir);
    const firstOfTask = new Set(firstSeeds(collections, cfg.seeds));
    const sweepOf = new Set(firstSeeds(collections, 1));
    const chosen = collections.filter((c) => firstOfTask.has(c) || sweepOf.has(c));
    const records: SaeRow[] = [];
    const sweep: SweepRow[] = [];
    const corrRows: CorrelationRow[] = [];
    const examples: { sae: string; latent: number; why: string; examples: TextExample[] }[] = [];
    const densityRows: { method: string; log10Density: number }[] = [];
    const sweepKind = cfg.sweepKind as SaeKind;
    const jobs = chosen.flatMap((c) => {
      const available = c.hooks.map((h) => h.name);
      const claimHooks = firstOfTask.has(c) ? resolveHooks(cfg.hooks, available, 'sae.hooks') : [];
      const extra = sweepOf.has(c) ? resolveHooks(cfg.sweepHooks, available, 'sae.sweepHooks').filter((h) => !claimHooks.includes(h)) : [];
      return [
        ...claimHooks.flatMap((hook) => (cfg.kinds as SaeKind[]).map((kind) => ({ c, hook, kind, claim: true }))),
        ...extra.map((hook) => ({ c, hook, kind: sweepKind, claim: false })),
      ];
    });
    let done = 0;
    for (const c of chosen) {
      const label = `${c.task}-s${c.seed}`;
      const sm = study.find((m) => m.task === c.task && m.seed === c.seed);
      if (!sm) throw new Error(`step 3: collection ${label} has no model among ${study.map((m) => m.label).join(', ')}`);
      const model = await sm.load();
      try {
        const tokens = await loadTokens(ctx.runDir, c);
        const sources = loadSources(ctx.runDir, c);
        const variables = taskVariables(tokens.labels);
        const batch = getTask(c.task).generate(sm.taskOptions as unknown as AnyTaskOptions, ctx.rng(`heldout/${label}`), cfg.evalSequences);
        const clean = await scoredPerSequence(model, batch);
        const mine = jobs.filter((j) => j.c === c);
        for (const hook of [...new Set(mine.map((j) => j.hook))]) {
          const acts = await loadActivations(ctx.runDir, c, hook);
          const split = saeSplit(acts, c.seqLen);
          const zero = await scoredPerSequence(model, batch, [{ name: hook, fn: zeroAblation }], clean);
          // the mean of the rows the SAE trains on, so the held-out rows play no part in any method
          const meanAbl = await scoredPerSequence(
            model,
            batch,
            [{ name: hook, fn: meanAblation(columnMeans(split.train.data, acts.dim)) }],
            clean,
          );
          const ref: Reference = { model, batch, clean, zero, meanAbl };
          for (const { kind, claim } of mine.filter((j) => j.hook === hook)) {
            const name = `${label} ${hook} ${kind}`;
            const { sae, row, metrics, spliced, pcaSpliced, randomDensity } = await trainAndEvaluate(
              ctx,
              { label, hook, kind, acts, split, ref },
              // one progress series over all the SAEs of the step
              (p) => ctx.progress(`SAE ${done + 1}/${jobs.length} ${name}`, done * p.steps + p.step + 1, jobs.length * p.steps),
            );
            try {
              if (!claim) {
                sweep.push(row);
                continue;
              }
              // the claim: the SAE splices in better than the best linear map of the same rank (PCA at
              // matched L0), not merely better than mean-ablating the hook, which any reconstruction beats
              const test = pairedPermutationTest(pcaSpliced.loss, spliced.loss, ctx.rng(`perm/${name}`), {
                nPerm: ctx.config.permutations,
                alternative: 'greater',
              });
              const gain = gainOverBaseline(ref, spliced.loss, pcaSpliced.loss, ctx.rng(`boot-gain/${name}`));
              // correlations and contexts over every collected row (they are descriptions, not fitted)
              const z = await encodeAll(sae, acts.data);
              const topLatents: SaeRecord['topLatents'] = {};
              for (const v of variables) {
                const r = variableCorrelations(z, sae.latents, v);
                const top = Array.from(r, (x, latent) => ({ latent, r: x }))
                  .sort((a, b) => Math.abs(b.r) - Math.abs(a.r) || a.latent - b.latent)
                  .slice(0, TOP_LATENTS);
                topLatents[v.name] = top;
                top.forEach((t, rank) =>
                  corrRows.push({ sae: `${label} ${kind}`, variable: v.name, rank: rank + 1, latent: t.latent, r: t.r }),
                );
                examples.push({
                  sae: name,
                  latent: top[0].latent,
                  why: `most correlated with ${v.name} (r = ${fmt(top[0].r)})`,
                  examples: withText(topExamples(z, sae.latents, top[0].latent, tokens.inputs, c.seqLen, { count: 5 }), model, sources),
                });
              }
              const log10Density = Array.from(featureDensity(metrics.firingRate).log10);
              // the claim hooks' SAEs also as SAELens folders, beside the safetensors file
              const saelensDir = `saes/${label}/${hook}-${kind}`;
              await saveSaeLens(sae, ctx.path(saelensDir), {
                modelName: ctx.config.model || label,
                hookName: hook,
                contextSize: c.seqLen,
                log10Density,
              });
              const dashboard = await writeDashboard(ctx, {
                label,
                hook,
                kind,
                sae,
                model,
                split,
                inputs: tokens.inputs,
                seqLen: c.seqLen,
                variables,
              });
              for (const v of log10Density) densityRows.push({ method: `${kind} SAE`, log10Density: v });
              for (const v of randomDensity) densityRows.push({ method: `random SAE (for ${kind})`, log10Density: v });
              records.push({
                ...row,
                gainOverPca: gain.estimate,
                gainOverPcaInterval: gain.interval,
                topLatents,
                log10Density,
                saelensDir,
                dashboard,
                p: test.pValue,
                pFloor: test.floor,
              });
              // the claim hook's SAE of the sweep kind is the sweep's row for that hook
              if (sweepOf.has(c) && kind === sweepKind) sweep.push(row);
            } finally {
              sae.dispose();
            }
            done++;
          }
        }
      } finally {
        model.dispose();
      }
    }
    ctx.writeJson('saes.json', records);
    ctx.writeJson('sweep.json', sweep);
    const gatePassing = new Map([...byTask(collections)].map(([task, cs]) => [task, cs.length]));
    const { claims, points } = saeClaims(ctx, records, gatePassing);
    ctx.writeJson('correlations.json', corrRows);
    ctx.writeJson('examples.json', examples);

    const report = ctx.report();
    const methods = (r: SweepRow) => [
      { method: `${r.kind} SAE`, v: r as SpliceScores & { l0: number; fvu: number } },
      { method: 'PCA (matched L0)', v: r.baselines.pca },
      { method: 'random SAE (matched L0)', v: r.baselines.random },
    ];
    report.figures.push(
      await saveFigure(
        ctx,
        'l0-fvu',
        scatter(
          records.flatMap((r) => methods(r).map((m) => ({ L0: m.v.l0, FVU: m.v.fvu, method: m.method }))),
          {
            title: 'Sparsity against reconstruction (held-out rows)',
            x: 'L0',
            y: 'FVU',
            color: 'method',
            xTitle: 'L0 (latents active per token)',
            yTitle: 'fraction of variance unexplained',
          },
        ),
        'L0 against FVU, with the baselines at matched L0',
        `One point per SAE (${records.length}) and per baseline: mean active latents per token against the fraction of the activation variance the reconstruction misses, on the ${Math.round(100 * SAE_HELD_OUT_FRACTION)}% of collected sequences no SAE or baseline was fitted on. PCA keeps the top k = round(L0) components of the training rows; the random SAE is the same shape untrained, TopK with that k. Lower-left is better.`,
      ),
    );
    const scoreRows = records.flatMap((r) =>
      methods(r).map((m) => ({
        sae: `${r.task}-s${r.seed} ${shortHook(r.hook)} ${r.kind}`,
        method: m.method.endsWith(' SAE') ? 'SAE' : m.method,
        value: m.v.ceLossScore,
        lo: m.v.ceLossScoreInterval[0],
        hi: m.v.ceLossScoreInterval[1],
      })),
    );
    report.figures.push(
      await saveFigure(
        ctx,
        'ce-loss-score',
        intervalChart(scoreRows, {
          title: 'ce_loss_score against mean-ablation: SAE and baselines at matched L0',
          category: 'sae',
          value: 'value',
          lo: 'lo',
          hi: 'hi',
          color: 'method',
          valueTitle: 'ce_loss_score (0 = mean-ablation, 1 = clean)',
        }),
        'CE-loss score with the SAE and its baselines spliced in',
        `SAELens' ce_loss_score with mean-ablation of the hook as the reference: the fraction of the task-loss gap between mean-ablating the hook and the clean model that is closed when a reconstruction replaces the activation, on ${cfg.evalSequences} fresh sequences per model, with 95% bootstrap intervals over sequences. Beside each SAE: PCA at matched L0 and an untrained SAE at matched L0. The zero-ablation score and the kl_div_score are in the SAEs table.`,
      ),
    );
    report.figures.push(
      await saveFigure(
        ctx,
        'ce-loss-score-seeds',
        seedChart(points, { title: 'ce_loss_score (mean-ablation), per seed', valueTitle: 'ce_loss_score against mean-ablation' }),
        'CE-loss score per seed',
        `The claims' values: per task, SAE kind and hook, each seed's ce_loss_score against mean-ablation, and the mean over seeds with its 95% Student's t interval (the seed is the unit; shown with two seeds or more).`,
      ),
    );
    report.figures.push(
      await saveFigure(
        ctx,
        'feature-density',
        densityHistogram(densityRows),
        'Feature density',
        `Per latent, log10 of the fraction of held-out rows it fires on (+1e-10, so a dead latent sits at -10), pooled over the ${records.length} SAEs on the claim hooks, and the same for their untrained baselines. A mass at -10 is dead latents; one near 0 is latents firing on nearly every token.`,
      ),
    );
    if (sweep.length) {
      report.figures.push(
        await saveFigure(
          ctx,
          'sweep',
          intervalChart(
            sweep.flatMap((r) =>
              methods(r).map((m) => ({
                hook: `${r.task}-s${r.seed} ${shortHook(r.hook)}`,
                method: m.method.endsWith(' SAE') ? 'SAE' : m.method,
                value: m.v.ceLossScore,
                lo: m.v.ceLossScoreInterval[0],
                hi: m.v.ceLossScoreInterval[1],
              })),
            ),
            {
              title: `${sweepKind} SAEs at every hook (first seed of each task)`,
              category: 'hook',
              value: 'value',
              lo: 'lo',
              hi: 'hi',
              color: 'method',
              valueTitle: 'ce_loss_score (0 = mean-ablation, 1 = clean)',
            },
          ),
          'SAEs at every layer and on the SSM output',
          `One ${sweepKind} SAE per hook of sae.sweepHooks for the first seed of each task only (the claims' hooks have SAEs for every seed), with PCA and the untrained SAE at matched L0 beside it; ce_loss_score against mean-ablation with 95% bootstrap intervals over ${cfg.evalSequences} fresh sequences.`,
        ),
      );
    }
    if (corrRows.length) {
      report.figures.push(
        await saveFigure(
          ctx,
          'latent-correlations',
          correlationHeatmap(corrRows),
          'Latent-variable correlations',
          `For each SAE and task variable, the ${TOP_LATENTS} latents with the largest |Pearson r| with that variable over the collected rows where it is defined (rank 1 = strongest); cells show r, the number is the latent.`,
        ),
      );
    }
    const scoreColumns = (r: SweepRow) => [
      r.l0,
      r.explainedVariance,
      r.deadFraction,
      r.ceLossScore,
      `[${fmt(r.ceLossScoreInterval[0])}, ${fmt(r.ceLossScoreInterval[1])}]`,
      r.baselines.pca.ceLossScore,
      r.baselines.random.ceLossScore,
      r.ceLossScoreZero,
      r.klDivScore,
      r.baselines.pca.explainedVariance,
      r.baselines.random.explainedVariance,
      r.baselines.pca.k,
    ];
    const scoreHeads = [
      'l0',
      'explained_variance',
      'dead',
      'ce_loss_score (mean-abl.)',
      'CI',
      'PCA ce_loss_score',
      'random SAE ce_loss_score',
      'ce_loss_score (zero-abl.)',
      'kl_div_score',
      'PCA explained_variance',
      'random SAE explained_variance',
      'matched k',
    ];
    report.tables.push({
      title: `SAEs on the claim hooks (metrics on the held-out ${Math.round(100 * SAE_HELD_OUT_FRACTION)}% of collected sequences; scores on fresh sequences)`,
      columns: [
        'model',
        'hook',
        'kind',
        'latents',
        'train rows',
        'held-out rows',
        ...scoreHeads,
        'p (vs mean-abl.)',
        'acc. clean',
        'acc. spliced',
      ],
      rows: records.map((r) => [
        `${r.task}-s${r.seed}`,
        r.hook,
        r.kind,
        r.latents,
        r.trainRows,
        r.heldOutRows,
        ...scoreColumns(r),
        r.p,
        r.accuracyClean!,
        r.accuracySpliced!,
      ]),
    });
    report.tables.push({
      title: 'Losses and KL behind the scores (mean per scored position)',
      columns: [
        'model',
        'hook',
        'kind',
        'loss clean',
        'loss spliced',
        'loss mean-abl.',
        'loss zero-abl.',
        'KL spliced',
        'KL mean-abl.',
        'KL zero-abl.',
        'kl_div_score (mean-abl.)',
      ],
      rows: records.map((r) => [
        `${r.task}-s${r.seed}`,
        r.hook,
        r.kind,
        r.lossClean,
        r.lossSpliced,
        r.lossMeanAblated!,
        r.lossZeroAblated,
        r.klSpliced,
        r.klMeanAblated,
        r.klZeroAblated,
        r.klDivScoreMean,
      ]),
    });
    if (sweep.length) {
      report.tables.push({
        title: `${sweepKind} SAEs at every hook of sae.sweepHooks, first seed of each task`,
        columns: ['model', 'hook', 'latents', ...scoreHeads],
        rows: sweep.map((r) => [`${r.task}-s${r.seed}`, r.hook, r.latents, ...scoreColumns(r)]),
      });
    }
    report.tables.push({
      title: 'Top latents per task variable',
      columns: ['SAE', 'variable', 'latents (r)'],
      rows: records.flatMap((r) =>
        Object.entries(r.topLatents).map(([v, top]) => [
          `${r.task}-s${r.seed} ${r.kind}`,
          v,
          top
            .slice(0, 4)
            .map((t) => `${t.latent} (${fmt(t.r)})`)
            .join(', '),
        ]),
      ),
    });
    report.tables.push({
      title: 'Top-activating contexts of the latent most correlated with each variable (tokens up to and including the firing position)',
      columns: ['SAE', 'latent', 'why', 'contexts (activation)'],
      rows: examples.map((e) => [
        e.sae,
        e.latent,
        e.why,
        e.examples
          .slice(0, 3)
          .map((x) => `[${x.text ? x.text.join('|') : x.context.join(' ')}] (${fmt(x.activation)})${x.where ? ` ${x.where}` : ''}`)
          .join('; '),
      ]),
    });
    report.notes.push(
      `SAEs: interp/sae.ts (ReLU+L1 with resampling, TopK with AuxK), ${cfg.steps} steps, batch ${cfg.batchSize}, ${cfg.latentsMultiplier}x latents, k = ${cfg.k}, l1 = ${cfg.l1} (normalised units), trained on the first ${100 - Math.round(100 * SAE_HELD_OUT_FRACTION)}% of each collection's sequences. Saved as saes/<model>/<hook>-<kind>.safetensors (SAELens names, config in metadata; steps/artefacts.ts loadSaeRecord); the claim hooks' SAEs also as SAELens folders saes/<model>/<hook>-<kind>/ (cfg.json, sae_weights.safetensors with the input scale folded in, sparsity.safetensors: SAELens's SAE.load_from_disk reads them; interp/sae/saelens.ts), and each saes.json row carries its metrics under SAELens's run_evals names (saelens: sparsity.l0, reconstruction_quality.explained_variance, model_performance_preservation.ce_loss_score against zero-ablation as SAELens computes it, model_behavior_preservation.kl_div_score, sparsity.dead_features).`,
    );
    report.notes.push(
      "Metrics as SAELens names them: l0 (active latents per token), explained_variance = 1 - FVU (pooled: sum ||x - x̂||² / sum ||x - mean||² over the held-out rows), dead fraction (latents firing on no held-out row), feature density; ce_loss_score = (L_ablated - L_spliced) / (L_ablated - L_clean) with mean-ablation (the headline: zero-ablating a residual stream removes everything, so the zero-ablation score is easy to make high) and with zero-ablation; kl_div_score = (KL_zero - KL_spliced) / KL_zero with KL(clean || condition) per scored position. The mean used for mean-ablation is the training rows'.",
    );
    report.notes.push(
      `Claims are per task, SAE kind and hook, over the first sae.seeds = ${cfg.seeds} gate-passing seeds of each task (interp/seeds.ts): a seed's value is its SAE's ce_loss_score against mean-ablation minus that of PCA at matched L0 (the top round(L0) principal components of the same training rows, spliced in the same way), the interval Student's t over seeds, the p-value Fisher's combination of the seeds' one-sided paired permutation tests (SAE-spliced loss below PCA-spliced loss on the same fresh sequences); a task with fewer than claimSeeds = ${ctx.config.claimSeeds} seeds is shown but not tested. Beating mean-ablation is not the claim: any reconstruction of the hook does. The SAEs table keeps each model's own numbers. The sweep hooks (${cfg.sweepHooks.join(', ')}) have ${sweepKind} SAEs for the first seed of each task only, to keep the step's time (all kinds on every hook and seed would multiply it by about 5).`,
    );
    report.notes.push(
      `Explained variance floor: every SAE of the --quick run has held-out 1 - FVU >= ${EXPLAINED_VARIANCE_FLOOR} (checked by test/steps/step03-sae.test.ts).`,
    );
    report.notes.push(
      'Task variables (interp/task-variables.ts): indicator labels as 0/1 over all positions, token-valued labels as the upper-half bit of the token id where they apply, other labels as numbers where they apply.',
    );
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
    report.claims.push(...claims);
    report.summary = `${records.length} SAEs on the claim hooks of ${firstOfTask.size} models and ${sweep.length} on the sweep hooks: held-out mean L0 ${fmt(mean(records.map((r) => r.l0)))}, explained variance ${fmt(mean(records.map((r) => r.explainedVariance)))}; mean ce_loss_score against mean-ablation ${fmt(mean(records.map((r) => r.ceLossScore)))} (PCA at matched L0 ${fmt(mean(records.map((r) => r.baselines.pca.ceLossScore)))}, random SAE ${fmt(mean(records.map((r) => r.baselines.random.ceLossScore)))}), against zero-ablation ${fmt(mean(records.map((r) => r.ceLossScoreZero)))}; ${claims.length} claims over seeds (task x kind x hook), ${claims.filter((c) => c.p !== undefined).length} with enough seeds to test, ${claims.filter((c) => c.effect).length} meeting their effect condition.`;
    saveReport(ctx, report);
    return report.summary;
  },
};

/** Dashboard contexts, quantile examples and logits kept per latent in the export (the files stay small). */
const DASHBOARD_OPTIONS = {
  topK: 8,
  before: 8,
  after: 3,
  quantiles: 4,
  perQuantile: 2,
  histogramBins: 20,
  logits: 8,
  frequentTokens: 8,
  correlates: 8,
};

/**
 * Writes the SAE's feature dashboards over the held-out sequences as one Neuronpedia batch file,
 * dashboards/<model>-<hook>-<kind>/batch-0.json, and returns its path relative to step-03-sae/.
 * Logits through the unembedding only where the hook's activation is on the residual stream.
 */
async function writeDashboard(
  ctx: StepContext,
  a: {
    label: string;
    hook: string;
    kind: string;
    sae: Sae;
    model: MambaLM;
    split: ActivationSplit;
    inputs: ArrayLike<number>;
    seqLen: number;
    variables: TaskVariable[];
  },
): Promise<string> {
  const cut = a.split.train.rows;
  const n = a.split.heldOut.rows;
  const inputs = Int32Array.from({ length: n }, (_, r) => a.inputs[cut + r]);
  // task variables restricted to the held-out rows, renumbered from 0
  const variables: DashboardVariable[] = a.variables.map((v) => {
    const keep = Array.from(v.rows.keys()).filter((i) => v.rows[i] >= cut);
    return { name: v.name, rows: Int32Array.from(keep, (i) => v.rows[i] - cut), values: Float64Array.from(keep, (i) => v.values[i]) };
  });
  const onResidual = a.sae.d === a.model.config.hidden_size && /hook_resid_|hook_mixer_out$/.test(a.hook);
  const unembed = onResidual
    ? {
        W_U: Float32Array.from(await a.model.lmHead().data()),
        vocab: a.model.lmHead().shape[0],
        normWeight: Float32Array.from(await a.model.params.get('backbone.norm_f.weight')!.data()),
      }
    : undefined;
  // a checkpoint's vocab_size may pad past its tokenizer's ids (mamba-130m: 50280 rows, 50277 tokens)
  const tok = a.model.tokenizer;
  const tokenString = tok ? (id: number) => (id >= tok.vocabSize ? `<id ${id}>` : a.model.toStrTokens([id])[0]) : undefined;
  const dash = await saeDashboard(
    { sae: a.sae, acts: a.split.heldOut.data, inputs, seqLen: a.seqLen, tokenString, unembed, variables },
    DASHBOARD_OPTIONS,
  );
  const id = `${a.label}-${a.hook}-${a.kind}`;
  const file = `dashboards/${id}/batch-0.json`;
  // six significant digits: float32 activations need no more, and the files shrink by half
  const round = (_: string, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Number(v.toPrecision(6)) : v);
  const batch = neuronpediaBatch(dash, { modelId: a.label, layer: a.hook, saeSet: a.kind });
  checkFiniteJson(batch, file); // compact text with a replacer, so not through writeJson's check
  writeAtomic(ctx.path(file), JSON.stringify(batch, round));
  return file;
}

/** A top example with its tokens as strings (when the model has a tokenizer) and, for real text, where it sits in which file. */
export type TextExample = LatentExample & { text?: string[]; where?: string };

function withText(examples: LatentExample[], model: MambaLM, sources: SequenceSource[] | null): TextExample[] {
  return examples.map((x) => {
    const src = sources?.[x.sequence];
    return {
      ...x,
      ...(model.tokenizer ? { text: model.toStrTokens(x.context) } : {}),
      // the firing token's offset in its document's token stream
      ...(src ? { where: `${basename(src.source)} doc ${src.doc} token ${src.start + x.position}` } : {}),
    };
  });
}

/** One claim per task x SAE kind x hook over the seeds' SAEs (`gatePassing`: each task's number of gate-passing models), and the per-seed figure's rows. */
export function saeClaims(
  ctx: StepContext,
  records: SaeRow[],
  gatePassing: ReadonlyMap<string, number>,
): { claims: Claim[]; points: SeedPoint[] } {
  const claims: Claim[] = [],
    points: SeedPoint[] = [];
  const groups = new Map<string, SaeRow[]>();
  for (const r of records) {
    const key = `${r.task}\u0000${r.kind}\u0000${r.hook}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const avg = (rs: SaeRow[], f: (r: SaeRow) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
  for (const rs of groups.values()) {
    const seeds = [...byTask(rs).values()][0];
    const { task, kind, hook } = seeds[0];
    const s: SeedSummary = acrossSeeds(
      seeds.map((r) => ({ seed: r.seed, model: `${task}-s${r.seed}`, value: r.gainOverPca, p: r.p, pFloor: r.pFloor })),
      { minSeeds: ctx.config.claimSeeds },
    );
    // fewer SAE seeds than claimSeeds: too few models passed the gate, or sae.seeds is below claimSeeds
    const passed = gatePassing.get(task) ?? s.seeds;
    const why =
      passed > s.seeds
        ? `step 3 trains SAEs for the first sae.seeds = ${ctx.config.sae.seeds} of ${task}'s ${passed} gate-passing seeds`
        : fewPassed(s.seeds, task);
    const perSeedTest = `per seed, a one-sided paired permutation test on ${ctx.config.sae.evalSequences} fresh sequences (${ctx.config.permutations} sign flips): SAE-spliced loss below PCA-spliced loss`;
    const { effectHolds, effectCondition, ...fields } = claimFieldsOverSeeds(s, seeds[0].gainOverPcaInterval);
    const sae = avg(seeds, (r) => r.ceLossScore),
      pcaScore = avg(seeds, (r) => r.baselines.pca.ceLossScore);
    claims.push({
      statement: `On ${task} (${s.seeds} seed${s.seeds === 1 ? '' : 's'}), the ${kind} SAE on ${hook} (held-out L0 ${fmt(avg(seeds, (r) => r.l0))}, explained variance ${fmt(avg(seeds, (r) => r.explainedVariance))}) splices in better than PCA at matched L0: ce_loss_score against mean-ablation ${fmt(sae)} vs PCA's ${fmt(pcaScore)}, a gain of ${fmt(s.mean)} (random SAE ${fmt(avg(seeds, (r) => r.baselines.random.ceLossScore))}; SAE against zero-ablation ${fmt(avg(seeds, (r) => r.ceLossScoreZero))}, kl_div_score ${fmt(avg(seeds, (r) => r.klDivScore))})`,
      ...fields,
      test: s.enough
        ? `${perSeedTest}; ${s.combination}; interval: Student's t over seeds`
        : `${tooFewSeeds(s, why, ctx.config.claimSeeds)}; ${perSeedTest}`,
      control: `PCA at matched L0 (the top round(L0) principal components of the SAE's training rows, ce_loss_score ${fmt(pcaScore)}): the estimate is the SAE's ce_loss_score minus PCA's, so PCA itself sits at 0; mean-ablation scores 0 and the clean model 1`,
      controlEstimate: 0,
      ...pending(effectHolds, `${effectCondition} (SAE better than PCA at matched L0)`),
    });
    points.push(...seedPoints(`${task} ${kind} ${shortHook(hook)}`, s));
  }
  return { claims, points };
}

/** Stacked histogram of log10 feature densities, one colour per method. */
function densityHistogram(rows: { method: string; log10Density: number }[]): Spec {
  return {
    title: 'Feature density (held-out rows)',
    width: 380,
    height: 220,
    data: { values: rows },
    mark: 'bar',
    encoding: {
      x: { field: 'log10Density', type: 'quantitative', bin: { extent: [-10, 0], step: 0.5 }, title: 'log10 firing frequency (+1e-10)' },
      y: { aggregate: 'count', type: 'quantitative', title: 'latents' },
      color: { field: 'method', type: 'nominal', legend: { labelLimit: 240 } },
    },
  } as Spec;
}

/** Heat map of the top latents' correlations: rows SAE x variable, columns rank, text the latent id. */
function correlationHeatmap(rows: CorrelationRow[]): Spec {
  const values = rows.map((r) => ({ row: `${r.sae}: ${r.variable}`, rank: r.rank, r: r.r, latent: r.latent }));
  const nRows = new Set(values.map((v) => v.row)).size;
  return {
    title: 'Latents most correlated with each task variable',
    width: 28 * TOP_LATENTS,
    height: Math.max(60, 16 * nRows),
    data: { values },
    encoding: {
      x: { field: 'rank', type: 'ordinal', title: 'rank by |r|' },
      y: { field: 'row', type: 'nominal', title: null, sort: null, axis: { labelLimit: 360 } },
    },
    layer: [
      {
        mark: 'rect',
        encoding: {
          color: { field: 'r', type: 'quantitative', title: 'Pearson r', scale: { scheme: 'redblue', domain: [-1, 1], reverse: true } },
        },
      },
      { mark: { type: 'text', fontSize: 8 }, encoding: { text: { field: 'latent', type: 'quantitative' } } },
    ],
  } as Spec;
}
