// Step 3: sparse autoencoders on the collected activations. For the first config.sae.seeds models
// of each task and each configured hook, one SAE per kind (ReLU+L1, TopK): reconstruction (L0,
// FVU, dead latents on the collected rows), the task loss with the SAE spliced into the model on
// fresh held-out sequences (loss recovered against zero-ablation, mean-ablation as the baseline to
// beat), latent/task-variable correlations and top-activating token contexts.
// Claims are per task x SAE kind x hook, over seeds (interp/seeds.ts): each seed's value is its
// SAE's loss recovered minus mean-ablation's, its p that model's permutation test on held-out
// sequences; the claim's interval is Student's t over the seeds and its p Fisher's combination.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { encodeAll, lossRecovered, saeMetrics, spliceHook, type SaeKind } from '../interp/sae/index.ts';
import { saveSae } from '../interp/sae/io.ts';
import {
  columnMeans,
  lossRecoveredCI,
  meanAblation,
  scoredPerSequence,
  topExamples,
  variableCorrelations,
  zeroAblation,
  type LatentExample,
} from '../interp/sae/task.ts';
import { pending } from '../interp/claims.ts';
import { acrossSeeds, seedInterval, type SeedSummary } from '../interp/seeds.ts';
import { bootstrapCI, pairedPermutationTest } from '../interp/stats.ts';
import { taskVariables } from '../interp/task-variables.ts';
import { getTask, type AnyTaskOptions } from '../interp/tasks/index.ts';
import { fmt, intervalChart, scatter, type Claim, type Spec } from '../interp/report/index.ts';
import { loadActivations, loadCollections, loadTokens, type SaeRecord } from './artefacts.ts';
import { resolveHooks, shortHook } from './hook-patterns.ts';
import { byTask, firstSeeds, studyModels } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import { trainConfiguredSae } from './sae-training.ts';
import { claimFieldsOverSeeds, fewPassed, seedChart, seedPoints, tooFewSeeds, type SeedPoint } from './seed-report.ts';
import type { Step, StepContext } from './step.ts';
import { stepInfo } from './table.ts';

/** The README's floor on explained variance (1 - FVU) that every SAE of the quick run clears. */
export const EXPLAINED_VARIANCE_FLOOR = 0.5;
const TOP_LATENTS = 8;

/** A row of saes.json: step 3's SAE record with that model's test against mean-ablation. */
export interface SaeRow extends SaeRecord {
  /** loss recovered minus mean-ablation's, on the held-out sequences, and its 95% bootstrap interval over them: the seed's value in the claims */
  aboveMeanAblation: number;
  aboveMeanAblationInterval: [number, number];
  /** one-sided paired permutation test on the held-out sequences: spliced loss below mean-ablated loss */
  p: number;
  pFloor: number;
}

interface CorrelationRow {
  sae: string;
  variable: string;
  rank: number;
  latent: number;
  r: number;
}

export const saeStep: Step = {
  ...stepInfo('sae'),
  version: 3,
  needs: [1, 2],
  configKeys: ['sae', 'permutations'],
  appliesToModel: true,
  async run(ctx) {
    const cfg = ctx.config.sae;
    const study = studyModels(ctx);
    const collections = loadCollections(ctx.runDir);
    const firstOfTask = new Set(firstSeeds(collections, cfg.seeds));
    const chosen = collections.filter((c) => firstOfTask.has(c));
    const records: SaeRow[] = [];
    const corrRows: CorrelationRow[] = [];
    const examples: { sae: string; latent: number; why: string; examples: LatentExample[] }[] = [];
    const lossRows: Record<string, string | number>[] = [];
    const jobs = chosen.flatMap((c) =>
      resolveHooks(
        cfg.hooks,
        c.hooks.map((h) => h.name),
        'sae.hooks',
      ).map((hook) => ({ c, hook })),
    );
    let done = 0;
    const nSaes = jobs.length * cfg.kinds.length;
    for (const c of chosen) {
      const label = `${c.task}-s${c.seed}`;
      const sm = study.find((m) => m.task === c.task && m.seed === c.seed);
      if (!sm) throw new Error(`step 3: collection ${label} has no model among ${study.map((m) => m.label).join(', ')}`);
      const model = await sm.load();
      try {
        const tokens = await loadTokens(ctx.runDir, c);
        const variables = taskVariables(tokens.labels);
        const heldOut = getTask(c.task).generate(
          sm.taskOptions as unknown as AnyTaskOptions,
          ctx.rng(`heldout/${label}`),
          cfg.evalSequences,
        );
        const clean = await scoredPerSequence(model, heldOut);
        for (const { hook } of jobs.filter((j) => j.c === c)) {
          const acts = await loadActivations(ctx.runDir, c, hook);
          const zero = await scoredPerSequence(model, heldOut, [{ name: hook, fn: zeroAblation }]);
          const meanAbl = await scoredPerSequence(model, heldOut, [{ name: hook, fn: meanAblation(columnMeans(acts.data, acts.dim)) }]);
          for (const kind of cfg.kinds as SaeKind[]) {
            const name = `${label} ${hook} ${kind}`;
            // one progress series over all the SAEs of the step
            const sae = await trainConfiguredSae(ctx, acts, kind, ctx.rng(`train/${name}`).int(0, 2 ** 31), (p) =>
              ctx.progress(`SAE ${done + 1}/${nSaes} ${name}`, done * p.steps + p.step + 1, nSaes * p.steps),
            );
            try {
              const file = `saes/${label}/${hook}-${kind}.safetensors`;
              mkdirSync(dirname(ctx.path(file)), { recursive: true });
              await saveSae(sae, ctx.path(file));
              const m = await saeMetrics(sae, acts.data);
              const spliced = await scoredPerSequence(model, heldOut, [{ name: hook, fn: spliceHook(sae) }]);
              const ci = lossRecoveredCI(clean.loss, spliced.loss, zero.loss, ctx.rng(`boot/${name}`), { nBoot: 1000 });
              const meanCi = lossRecoveredCI(clean.loss, meanAbl.loss, zero.loss, ctx.rng(`boot-mean/${name}`), { nBoot: 1000 });
              const aboveCi = aboveMeanAblationCI(clean.loss, spliced.loss, meanAbl.loss, zero.loss, ctx.rng(`boot-above/${name}`));
              const mean = (x: Float64Array) => x.reduce((a, b) => a + b, 0) / x.length;
              const test = pairedPermutationTest(meanAbl.loss, spliced.loss, ctx.rng(`perm/${name}`), {
                nPerm: ctx.config.permutations,
                alternative: 'greater',
              });
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
                  examples: topExamples(z, sae.latents, top[0].latent, tokens.inputs, c.seqLen, { count: 5 }),
                });
              }
              const lossClean = mean(clean.loss),
                lossSpliced = mean(spliced.loss),
                lossZero = mean(zero.loss),
                lossMean = mean(meanAbl.loss);
              const rec: SaeRow = {
                task: c.task,
                seed: c.seed,
                hook,
                kind,
                file,
                latents: sae.latents,
                l0: m.l0,
                fvu: m.fvu,
                deadFraction: m.deadFraction,
                lossClean,
                lossSpliced,
                lossZeroAblated: lossZero,
                lossRecovered: ci.estimate,
                topLatents,
                ...(kind === 'topk' ? { k: cfg.k } : {}),
                lossRecoveredInterval: [ci.lo, ci.hi],
                lossMeanAblated: lossMean,
                meanAblationRecovered:
                  lossZero === lossClean ? 0 : lossRecovered({ clean: lossClean, spliced: lossMean, ablated: lossZero }),
                accuracyClean: mean(clean.accuracy),
                accuracySpliced: mean(spliced.accuracy),
                aboveMeanAblation: aboveCi.estimate,
                aboveMeanAblationInterval: [aboveCi.lo, aboveCi.hi],
                p: test.pValue,
                pFloor: test.floor,
              };
              records.push(rec);
              lossRows.push({ sae: `${label} ${shortHook(hook)} ${kind}`, kind: 'SAE spliced', value: ci.estimate, lo: ci.lo, hi: ci.hi });
              lossRows.push({
                sae: `${label} ${shortHook(hook)} ${kind}`,
                kind: 'mean-ablation',
                value: meanCi.estimate,
                lo: meanCi.lo,
                hi: meanCi.hi,
              });
              ctx.log(
                `${name}: L0 ${fmt(m.l0)} FVU ${fmt(m.fvu)} dead ${fmt(m.deadFraction)} loss recovered ${fmt(ci.estimate)} [${fmt(ci.lo)}, ${fmt(ci.hi)}]`,
              );
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
    const gatePassing = new Map([...byTask(collections)].map(([task, cs]) => [task, cs.length]));
    const { claims, points } = saeClaims(ctx, records, gatePassing);
    ctx.writeJson('correlations.json', corrRows);
    ctx.writeJson('examples.json', examples);

    const report = ctx.report();
    report.figures.push(
      await saveFigure(
        ctx,
        'l0-fvu',
        scatter(
          records.map((r) => ({ L0: r.l0, FVU: r.fvu, kind: r.kind })),
          {
            title: 'Sparsity against reconstruction',
            x: 'L0',
            y: 'FVU',
            color: 'kind',
            xTitle: 'L0 (latents active per token)',
            yTitle: 'fraction of variance unexplained',
          },
        ),
        'L0 against FVU',
        `One point per SAE (${records.length}): mean active latents per token against the fraction of the activation variance the reconstruction misses, on the collected activations. Lower-left is better.`,
      ),
    );
    report.figures.push(
      await saveFigure(
        ctx,
        'loss-recovered',
        intervalChart(lossRows, {
          title: 'Loss recovered with the SAE spliced in',
          category: 'sae',
          value: 'value',
          lo: 'lo',
          hi: 'hi',
          color: 'kind',
          valueTitle: 'loss recovered (0 = zero-ablation, 1 = clean)',
        }),
        'Loss recovered',
        `Fraction of the task loss gap between zero-ablating the hook and the clean model that is closed when the SAE's reconstruction replaces the activation, on ${cfg.evalSequences} fresh held-out sequences per model, with 95% bootstrap intervals over sequences; mean-ablation of the hook is the baseline.`,
      ),
    );
    report.figures.push(
      await saveFigure(
        ctx,
        'loss-recovered-seeds',
        seedChart(points, { title: 'Loss recovered beyond mean-ablation, per seed', valueTitle: 'loss recovered minus mean-ablation' }),
        'Loss recovered beyond mean-ablation, per seed',
        `The claims' values: per task, SAE kind and hook, each seed's loss recovered with its SAE spliced in minus the loss recovered by mean-ablating the hook, and the mean over seeds with its 95% Student's t interval (the seed is the unit; shown with two seeds or more).`,
      ),
    );
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
    report.tables.push({
      title: 'SAEs',
      columns: [
        'model',
        'hook',
        'kind',
        'latents',
        'L0',
        'FVU',
        'dead',
        'loss clean',
        'loss spliced',
        'loss zero-abl.',
        'loss recovered',
        'CI',
        'mean-abl. recovered',
        'SAE minus mean-abl.',
        'its CI',
        'p (vs mean-abl.)',
        'acc. clean',
        'acc. spliced',
      ],
      rows: records.map((r) => [
        `${r.task}-s${r.seed}`,
        r.hook,
        r.kind,
        r.latents,
        r.l0,
        r.fvu,
        r.deadFraction,
        r.lossClean,
        r.lossSpliced,
        r.lossZeroAblated,
        r.lossRecovered,
        `[${fmt(r.lossRecoveredInterval![0])}, ${fmt(r.lossRecoveredInterval![1])}]`,
        r.meanAblationRecovered!,
        r.aboveMeanAblation,
        `[${fmt(r.aboveMeanAblationInterval[0])}, ${fmt(r.aboveMeanAblationInterval[1])}]`,
        r.p,
        r.accuracyClean!,
        r.accuracySpliced!,
      ]),
    });
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
          .map((x) => `[${x.context.join(' ')}] (${fmt(x.activation)})`)
          .join('; '),
      ]),
    });
    report.notes.push(
      `SAEs: interp/sae.ts (ReLU+L1 with resampling, TopK with AuxK), ${cfg.steps} steps, batch ${cfg.batchSize}, ${cfg.latentsMultiplier}x latents, k = ${cfg.k}, l1 = ${cfg.l1} (normalised units). Saved as saes/<model>/<hook>-<kind>.safetensors (SAELens names, config in metadata; steps/artefacts.ts loadSaeRecord).`,
    );
    report.notes.push(
      `Claims are per task, SAE kind and hook, over the first sae.seeds = ${cfg.seeds} gate-passing seeds of each task (interp/seeds.ts): a seed's value is its SAE's loss recovered minus mean-ablation's, the interval Student's t over seeds, the p-value Fisher's combination of the seeds' one-sided permutation tests (spliced loss below mean-ablated loss on held-out sequences); a task with fewer than claimSeeds = ${ctx.config.claimSeeds} seeds is shown but not tested. The SAEs table keeps each model's own numbers.`,
    );
    report.notes.push(
      `Explained variance floor: every SAE of the --quick run has 1 - FVU >= ${EXPLAINED_VARIANCE_FLOOR} (checked by test/steps/step03-sae.test.ts).`,
    );
    report.notes.push(
      'Task variables (interp/task-variables.ts): indicator labels as 0/1 over all positions, token-valued labels as the upper-half bit of the token id where they apply, other labels as numbers where they apply.',
    );
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
    report.claims.push(...claims);
    report.summary = `${records.length} SAEs on ${chosen.length} models: mean L0 ${fmt(mean(records.map((r) => r.l0)))}, mean FVU ${fmt(mean(records.map((r) => r.fvu)))}, mean loss recovered ${fmt(mean(records.map((r) => r.lossRecovered)))} (mean-ablation ${fmt(mean(records.map((r) => r.meanAblationRecovered!)))}); ${claims.length} claims over seeds (task x kind x hook), ${claims.filter((c) => c.p !== undefined).length} with enough seeds to test, ${claims.filter((c) => c.effect).length} meeting their effect condition.`;
    saveReport(ctx, report);
    return report.summary;
  },
};

/**
 * Loss recovered with the SAE minus with mean-ablation, (meanAblated - spliced) / (zeroAblated -
 * clean), with a bootstrap interval that resamples whole held-out sequences.
 */
function aboveMeanAblationCI(
  clean: Float64Array,
  spliced: Float64Array,
  meanAbl: Float64Array,
  zero: Float64Array,
  rng: ReturnType<StepContext['rng']>,
) {
  const meanAt = (x: Float64Array, idx: Float64Array) => {
    let s = 0;
    for (const i of idx) s += x[i];
    return s / idx.length;
  };
  const statistic = (idx: Float64Array) => {
    const gap = meanAt(zero, idx) - meanAt(clean, idx);
    return gap === 0 ? 0 : (meanAt(meanAbl, idx) - meanAt(spliced, idx)) / gap;
  };
  return bootstrapCI(
    Float64Array.from({ length: clean.length }, (_, i) => i),
    rng,
    statistic,
    { nBoot: 1000 },
  );
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
      seeds.map((r) => ({ seed: r.seed, model: `${task}-s${r.seed}`, value: r.aboveMeanAblation, p: r.p, pFloor: r.pFloor })),
      { minSeeds: ctx.config.claimSeeds },
    );
    const controls = seeds.map((r) => r.meanAblationRecovered!);
    const controlInterval = seedInterval(controls);
    // fewer SAE seeds than claimSeeds: too few models passed the gate, or sae.seeds is below claimSeeds
    const passed = gatePassing.get(task) ?? s.seeds;
    const why =
      passed > s.seeds
        ? `step 3 trains SAEs for the first sae.seeds = ${ctx.config.sae.seeds} of ${task}'s ${passed} gate-passing seeds`
        : fewPassed(s.seeds, task);
    const perSeedTest = `per seed, a one-sided paired permutation test on ${ctx.config.sae.evalSequences} held-out sequences (${ctx.config.permutations} sign flips): spliced loss below mean-ablated loss`;
    const { effectHolds, effectCondition, ...fields } = claimFieldsOverSeeds(s, seeds[0].aboveMeanAblationInterval);
    claims.push({
      statement: `On ${task} (${s.seeds} seed${s.seeds === 1 ? '' : 's'}), the ${kind} SAE on ${hook} (mean L0 ${fmt(avg(seeds, (r) => r.l0))}, FVU ${fmt(avg(seeds, (r) => r.fvu))}) recovers ${fmt(100 * avg(seeds, (r) => r.lossRecovered))}% of the task loss that zero-ablating the hook loses, ${fmt(100 * s.mean)} percentage points more than mean-ablating it`,
      ...fields,
      test: s.enough
        ? `${perSeedTest}; ${s.combination}; interval: Student's t over seeds`
        : `${tooFewSeeds(s, why, ctx.config.claimSeeds)}; ${perSeedTest}`,
      control:
        'mean-ablation of the hook (loss recovered; zero-ablation is 0 by definition, the clean model 1); the estimate is the SAE minus it',
      controlEstimate: avg(seeds, (r) => r.meanAblationRecovered!),
      ...(Number.isFinite(controlInterval[0]) ? { controlInterval } : {}),
      ...pending(effectHolds, `${effectCondition} (SAE beyond mean-ablation)`),
    });
    points.push(...seedPoints(`${task} ${kind} ${shortHook(hook)}`, s));
  }
  return { claims, points };
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
