// Step 4: sparse probes. For every collection, every probed hook (config.probes.hooks) and every
// task variable (interp/task-variables.ts), a sparse probe (interp/probe-eval.ts: L1 logistic for
// binary variables, Lasso for numbers) from the activations, and (for the lowest seed of each task) from the latents of each SAE step
// 3 trained on that hook (ElasticNet with config.probes.alpha for numbers, since an SAE often splits
// one feature over several correlated latents and the lasso would keep an arbitrary one).
// Every probe is split and cross-validated by sequence (no sequence on both sides) and scored next to
// a Hewitt-Liang control task (a random label per (token, position) type; selectivity = score minus
// the control task's). The claimed probes (the last probed hook's activations, for variables that are
// not a function of position or of the current token alone) are also fitted, on the same rows and
// split, to two baselines: the embeddings (hook_embed = blocks.0.hook_resid_pre) and the same hook of
// a random-init model of the same shape.
// Claims are per task x variable over the task's gate-passing seeds (interp/seeds.ts): each seed's
// value is its probe's held-out score minus the random-init model's, its p that model's sign-flip
// test; the interval is Student's t over seeds and the p Fisher's combination. The random-init
// baseline is the claim because it asks what a reader of a trained toy model asks -- did training
// put the variable there? -- while the control task's memorisation route is already closed for the
// claimed variables (they are not functions of token or position), so selectivity stays beside it.
// Every model's probes stay rows of probes.json and the table.
import { encodeAll } from '../interp/sae/index.ts';
import { evaluateProbe, type ProbeComparison, type ProbeEval } from '../interp/probe-eval.ts';
import { initMamba, type MambaLM } from '../mamba/model.ts';
import * as mi from '../engine/index.ts';
import { taskVariables } from '../interp/task-variables.ts';
import { pending } from '../interp/claims.ts';
import { acrossSeeds, seedInterval } from '../interp/seeds.ts';
import { barChart, fmt, intervalChart, type Claim } from '../interp/report/index.ts';
import {
  loadActivations,
  loadCollections,
  loadSaeRecord,
  loadSaeRecords,
  loadTokens,
  SAE_DIR,
  type ProbeRecord,
  type SaeRecord,
} from './artefacts.ts';
import { resolveHooks, shortHook } from './hook-patterns.ts';
import { byTask, studyModels } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import { claimFieldsOverSeeds, fewPassed, seedChart, seedPoints, tooFewSeeds, type SeedPoint } from './seed-report.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Step, StepContext } from './step.ts';
import { stepInfo } from './table.ts';

/** Sign flips for probes that are not claims (table rows only, never corrected run-wide). */
const TABLE_PERMUTATIONS = 9999;

/** The baseline a claim's value is taken against (one of BASELINES). */
export const CLAIM_BASELINE = 'random-init';
const BASELINES = ['embeddings', 'random-init'] as const;

/**
 * A row of probes.json: the probe record (control = the control task's score), its selectivity, its
 * baselines (claimed rows only), and its headline comparison: `difference`, `p` and `pFloor` are the
 * probe against `against` (the random-init baseline on claimed rows, the control task elsewhere).
 */
export interface ProbeRow extends ProbeRecord {
  pFloor: number;
  against: string;
  /** heldOut minus the `against` score, paired bootstrap interval over the test sequences: a claim's per-seed value */
  difference: number;
  differenceInterval: [number, number];
  /** heldOut - control task (Hewitt & Liang), paired interval, one-sided sign-flip p */
  selectivity: number;
  selectivityInterval: [number, number];
  selectivityP: number;
  /** the same probe on the embeddings and on a random-init model (claimed rows only) */
  baselines: ProbeComparison[];
  /** 'position' / 'token' when the variable is a function of that alone on its rows (never claimed) */
  determinedBy: 'position' | 'token' | null;
  /** the last probed hook's activation probe of a variable not determined by position or token (the claims' rows) */
  claimed: boolean;
  /** feature dimension (activations) or latents (SAE) */
  dims: number;
  /** distinct sequences in train / test (disjoint) */
  trainSequences: number;
  testSequences: number;
}

/** The baselines' features for one collection's rows: the trained model's embeddings, and `hook` of a random-init model of its shape. */
async function baselineFeatures(
  model: MambaLM,
  hook: string,
  inputs: Int32Array,
  seqLen: number,
  rng: mi.Rng,
): Promise<Record<(typeof BASELINES)[number], { data: Float32Array; rows: number; cols: number }>> {
  const rows = inputs.length,
    d = model.config.hidden_size;
  const W = await model.params.get('backbone.embeddings.weight')!.data();
  const emb = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) emb[r * d + j] = W[inputs[r] * d + j];
  const random = initMamba(model.config, rng, { backend: model.backend });
  try {
    const B = rows / seqLen,
      chunk = 32;
    let out: Float32Array | null = null,
      cols = 0;
    for (let b0 = 0; b0 < B; b0 += chunk) {
      const ids = Array.from({ length: Math.min(chunk, B - b0) }, (_, b) =>
        Array.from(inputs.subarray((b0 + b) * seqLen, (b0 + b + 1) * seqLen)),
      );
      const data = await mi.tidyAsync(async () => {
        const { cache } = mi.noGrad(() => random.runWithCache(ids, [hook]));
        return Float32Array.from(await cache.get(hook)!.data());
      });
      cols ||= data.length / (ids.length * seqLen);
      out ??= new Float32Array(rows * cols);
      out.set(data, b0 * seqLen * cols); // rows are (sequence, position) in order, as collected
    }
    return { embeddings: { data: emb, rows, cols: d }, 'random-init': { data: out!, rows, cols } };
  } finally {
    random.dispose();
  }
}

export const probesStep: Step = {
  ...stepInfo('probes'),
  version: 7,
  needs: [2, 3],
  configKeys: ['probes', 'permutations'],
  appliesToModel: true,
  async run(ctx) {
    const cfg = ctx.config.probes;
    const collections = loadCollections(ctx.runDir);
    const saes: SaeRecord[] = existsSync(join(ctx.runDir, SAE_DIR, 'saes.json')) ? loadSaeRecords(ctx.runDir) : [];
    const records: ProbeRow[] = [];
    const opts = {
      folds: cfg.folds,
      maxSamples: cfg.maxSamples,
      nLambda: cfg.nLambda,
      nBoot: cfg.bootstrap,
      nPerm: ctx.config.permutations,
    };
    const plan = collections.map((c) => ({
      c,
      hooks: resolveHooks(
        cfg.hooks,
        c.hooks.map((h) => h.name),
        'probes.hooks',
      ),
    }));
    const total = plan.reduce((s, p) => s + p.hooks.length, 0);
    const models = studyModels(ctx);
    let done = 0;
    for (const { c, hooks } of plan) {
      const label = `${c.task}-s${c.seed}`;
      const tokens = await loadTokens(ctx.runDir, c);
      const variables = taskVariables(tokens.labels, { seqLen: c.seqLen, inputs: tokens.inputs });
      const lastHook = hooks[hooks.length - 1];
      const m = models.find((x) => x.task === c.task && x.seed === c.seed);
      if (!m) throw new Error(`probes: no studied model for collection ${label}`);
      const model = await m.load();
      let baselineX: Awaited<ReturnType<typeof baselineFeatures>>;
      try {
        baselineX = await baselineFeatures(model, lastHook, tokens.inputs, c.seqLen, ctx.rng(`random-init/${label}`));
      } finally {
        model.dispose();
      }
      for (const hook of hooks) {
        ctx.progress('probes', done, total);
        const acts = await loadActivations(ctx.runDir, c, hook);
        const featureSets: {
          features: ProbeRecord['features'];
          saeKind?: SaeRecord['kind'];
          X: { data: Float32Array; rows: number; cols: number };
        }[] = [{ features: 'activations', X: { data: acts.data, rows: acts.rows, cols: acts.dim } }];
        // SAE-latent probes are table rows, not claims: the lowest seed with SAEs only (they cost about
        // 40 s a model on the default config, as much as the activation probes that the claims rest on)
        const saeSeed = Math.min(...saes.filter((s) => s.task === c.task).map((s) => s.seed));
        for (const rec of saes.filter((s) => s.task === c.task && s.seed === c.seed && s.seed === saeSeed && s.hook === hook)) {
          const sae = await loadSaeRecord(ctx.runDir, rec, { backend: ctx.backend });
          try {
            featureSets.push({
              features: 'sae',
              saeKind: rec.kind,
              X: { data: await encodeAll(sae, acts.data), rows: acts.rows, cols: sae.latents },
            });
          } finally {
            sae.dispose();
          }
        }
        for (const fs of featureSets) {
          for (const v of variables) {
            const name = `${label}/${hook}/${fs.features}${fs.saeKind ? `-${fs.saeKind}` : ''}/${v.name}`;
            const alpha = v.kind === 'continuous' && fs.features === 'sae' ? cfg.alpha : 1;
            let e: ProbeEval;
            // only the last hook's activation probes of variables that are not a function of position
            // or token enter claims (corrected run-wide, so their test against the claim baseline needs
            // the fine floor); every other test is a table row's, where 1/10000 resolves enough and
            // costs a tenth (a sign-flip test of 200 rows takes ~3 s at 99,999 flips). The baselines
            // are fitted for the claimed rows only (two more probes each).
            const claimed = hook === lastHook && fs.features === 'activations' && !v.determinedBy;
            const tablePerm = Math.min(opts.nPerm, TABLE_PERMUTATIONS);
            try {
              e = evaluateProbe(
                fs.X,
                v,
                ctx.rng(name),
                { ...opts, alpha, nPerm: tablePerm, nPermFor: { [CLAIM_BASELINE]: opts.nPerm } },
                claimed ? BASELINES.map((b) => ({ name: b, X: baselineX[b] })) : [],
              );
            } catch (err) {
              ctx.log(`${name}: skipped: ${(err as Error).message}`);
              continue;
            }
            records.push({
              task: c.task,
              seed: c.seed,
              hook,
              features: fs.features,
              label: v.label,
              variable: v.name,
              kind: e.kind,
              metric: e.metric,
              heldOut: e.heldOut,
              chance: e.chance,
              selected: e.selected,
              coefficients: e.coefficients,
              interval: e.interval,
              control: e.control.score,
              controlInterval: e.control.interval,
              nTrain: e.nTrain,
              nTest: e.nTest,
              ...(fs.saeKind ? { saeKind: fs.saeKind } : {}),
              ...headline(claimed ? e.baselines.find((b) => b.against === CLAIM_BASELINE)! : e.control),
              selectivity: e.control.difference,
              selectivityInterval: e.control.differenceInterval,
              selectivityP: e.control.p,
              baselines: e.baselines,
              determinedBy: v.determinedBy ?? null,
              claimed,
              dims: fs.X.cols,
              trainSequences: e.trainSequences,
              testSequences: e.testSequences,
            });
          }
        }
        done++;
      }
    }
    ctx.progress('probes', total, total);
    ctx.writeJson('probes.json', records);
    const { claims, points } = probeClaims(ctx, records);

    const report = ctx.report();
    const featuresName = (r: ProbeRecord) => (r.features === 'sae' ? `SAE ${r.saeKind}` : 'acts');
    for (const task of [...new Set(records.map((r) => r.task))]) {
      const mine = records.filter((r) => r.task === task);
      const groups = new Map<string, ProbeRow[]>();
      for (const r of mine) {
        const key = `${r.variable} · ${featuresName(r)} · ${shortHook(r.hook)}`; // short parts first: axis labels are cut at ~180 px
        groups.set(key, [...(groups.get(key) ?? []), r]);
      }
      // the mean over seeds with the range as a bar, and one point per seed beside it
      const rows = [...groups].flatMap(([key, rs]) => {
        const range = (xs: number[]) => ({ value: xs.reduce((a, b) => a + b, 0) / xs.length, lo: Math.min(...xs), hi: Math.max(...xs) });
        return [
          { probe: key, kind: 'probe', ...range(rs.map((r) => r.heldOut)) },
          { probe: key, kind: 'control task', ...range(rs.map((r) => r.control!)) },
          ...BASELINES.flatMap((b) => {
            const xs = rs.flatMap((r) => r.baselines.filter((x) => x.against === b).map((x) => x.score));
            return xs.length ? [{ probe: key, kind: `${b} baseline`, ...range(xs) }] : [];
          }),
          ...rs.map((r) => ({ probe: key, kind: 'probe, one seed', value: r.heldOut, lo: r.heldOut, hi: r.heldOut })),
        ];
      });
      const seeds = new Set(mine.map((r) => r.seed)).size;
      report.figures.push(
        await saveFigure(
          ctx,
          `scores-${task}`,
          intervalChart(rows, {
            title: `Held-out probe scores: ${task}`,
            category: 'probe',
            value: 'value',
            lo: 'lo',
            hi: 'hi',
            color: 'kind',
            valueTitle: 'held-out accuracy or R2',
            width: 360,
          }),
          `Probe scores, ${task}`,
          `Held-out accuracy (binary variables, class-balanced, chance 0.5) or R2 (numbers, chance 0) of each sparse probe, per variable, hook and feature set, next to the same probe on a control task (a random label per (token, position) type, with the variable's label distribution) and, for the claimed variables at the last hook, on the embeddings and on a random-init model of the same shape; train and test rows come from disjoint sequences. The points are means over ${seeds} model seed(s), bars the range over seeds, and each seed's probe score is a point of its own.`,
        ),
      );
      const first = mine.filter(
        (r) => r.seed === Math.min(...mine.map((x) => x.seed)) && r.features === 'activations' && r.hook === mine[mine.length - 1].hook,
      );
      const coefRows = first.flatMap((r) =>
        r.selected
          .map((dim, i) => ({ dim: String(dim), magnitude: Math.abs(r.coefficients[i]), variable: r.variable ?? r.label }))
          .sort((a, b) => b.magnitude - a.magnitude)
          .slice(0, 10),
      );
      if (coefRows.length) {
        report.figures.push(
          await saveFigure(
            ctx,
            `coefficients-${task}`,
            barChart(coefRows, {
              title: `Selected dimensions: ${task}-s${first[0].seed}, ${shortHook(first[0].hook)}`,
              x: 'dim',
              y: 'magnitude',
              color: 'variable',
              xTitle: 'activation dimension',
              yTitle: '|coefficient| (original units)',
              width: 420,
            }),
            `Selected dimensions, ${task}`,
            'The largest |coefficients| (up to 10 per variable) of the activation probes of the first seed at the last probed hook: the few dimensions each variable is read from.',
          ),
        );
      }
    }
    report.figures.push(
      await saveFigure(
        ctx,
        'claims-seeds',
        seedChart(points, {
          title: 'Probe minus the random-init model, per seed',
          valueTitle: 'held-out score minus random-init (accuracy or R2)',
        }),
        'Claims over seeds',
        `The claims' values: per task and variable (activation probes at the last probed hook, variables not determined by position or token), each seed's held-out accuracy or R2 minus that of the same probe on the same hook of a random-init model of the same shape (same rows, same sequence split), and the mean over seeds with its 95% Student's t interval (the seed is the unit; shown with two seeds or more).`,
      ),
    );
    report.tables.push({
      title: 'Probes',
      columns: [
        'model',
        'hook',
        'features',
        'variable',
        'probe',
        'metric',
        'held-out',
        'CI',
        'majority / chance',
        'control task',
        'selectivity',
        'embeddings',
        'random-init',
        'minus random-init',
        'p (vs)',
        'determined by',
        'selected dims',
        'train/test rows (sequences)',
      ],
      rows: records.map((r) => [
        `${r.task}-s${r.seed}`,
        r.hook,
        featuresName(r),
        r.variable ?? r.label,
        r.kind,
        r.metric,
        r.heldOut,
        `[${fmt(r.interval![0])}, ${fmt(r.interval![1])}]`,
        r.chance,
        r.selectivity,
        r.baselines.find((b) => b.against === 'embeddings')?.score ?? '',
        r.baselines.find((b) => b.against === 'random-init')?.score ?? '',
        r.baselines.find((b) => b.against === 'random-init')?.difference ?? '',
        `${fmt(r.p!)} (${r.against})`,
        r.determinedBy ?? '',
        r.selected.length,
        `${r.nTrain}/${r.nTest} (${r.trainSequences}/${r.testSequences} seqs)`,
      ]),
    });
    report.notes.push(
      `Probes: interp/probes.ts (glmnet-style coordinate descent, ${cfg.nLambda} lambdas, lambda by ${cfg.folds}-fold CV with the 1-SE rule on the training rows), at most ${cfg.maxSamples} rows per probe, about 30% held out; the split and the CV folds are by sequence (every row of a sequence on one side: rows of one sequence share its copied token, keys and values); intervals are bootstrap percentile over test sequences, and sign-flip tests flip whole test sequences (the rows of a sequence are not independent).`,
    );
    report.notes.push(
      'Majority / chance: the accuracy of always answering the more frequent class on the test rows (for a part-of-speech indicator such as isNOUN, the majority-tag baseline), 0 for R2.',
    );
    report.notes.push(
      "Selectivity (Hewitt & Liang 2019) is the probe's score minus that of the same probe on a control task: every (current token, position) type gets one random label drawn from the variable's own labels, so a probe can score on it only by memorising types. Baselines (claimed rows): the same probe, rows and split on the embeddings (hook_embed, = blocks.0.hook_resid_pre) and on the same hook of a random-init model of the same shape (mamba/model.ts initMamba, one per seed).",
    );
    const determined = [...new Set(records.filter((r) => r.determinedBy).map((r) => `${r.task} ${r.variable} (${r.determinedBy})`))];
    report.notes.push(
      `Variables that are a function of the position alone or of the current token alone on their rows are probed for the table but make no claim (reading them says the position or token is readable, nothing more): ${determined.join(', ') || 'none'}.`,
    );
    report.notes.push(
      `Claims are per task and variable (the last probed hook's activation probes), over the task's gate-passing seeds (interp/seeds.ts): a seed's value is its probe's held-out score minus the random-init model's (same rows and split; the question is whether training put the variable there, and the control task's memorisation route is closed for these variables, whose selectivity is in the table), the interval Student's t over seeds, the p-value Fisher's combination of the seeds' one-sided sign-flip tests on their held-out sequences; a task with fewer than claimSeeds = ${ctx.config.claimSeeds} seeds is shown but not tested. The Probes table keeps each model's own probes.`,
    );
    report.notes.push(
      'Token-valued labels (the token to copy / the queried value) are probed as one bit: is the token in the upper half of the ids seen. One-vs-rest over tokens needs several rows of every token in every CV split, which a few hundred scored rows do not give.',
    );
    report.claims.push(...claims);
    const acc = records.filter((r) => r.metric === 'accuracy'),
      r2 = records.filter((r) => r.metric === 'r2');
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(xs.length, 1);
    report.summary = `${records.length} probes on ${collections.length} models: mean held-out accuracy ${fmt(mean(acc.map((r) => r.heldOut)))} (control task ${fmt(mean(acc.map((r) => r.control!)))}), mean R2 ${fmt(mean(r2.map((r) => r.heldOut)))} (control task ${fmt(mean(r2.map((r) => r.control!)))}), split by sequence; ${claims.filter((c) => c.effect).length}/${claims.length} claims over seeds (task x variable) meet their effect condition, ${claims.filter((c) => c.p !== undefined).length} have enough seeds to test (support is decided across the run, step 13).`;
    saveReport(ctx, report);
    return report.summary;
  },
};

const headline = (c: ProbeComparison) => ({
  against: c.against,
  p: c.p,
  pFloor: c.pFloor,
  difference: c.difference,
  differenceInterval: c.differenceInterval,
});

/** One claim per task x variable over the seeds' claimed probes (last hook, activations), and the per-seed figure's rows. */
export function probeClaims(ctx: StepContext, records: ProbeRow[]): { claims: Claim[]; points: SeedPoint[] } {
  const claims: Claim[] = [],
    points: SeedPoint[] = [];
  // keyed on the label: a token label's bit ("copyToken>=9") could cut at another id on another seed
  const groups = new Map<string, ProbeRow[]>();
  for (const r of records.filter((x) => x.claimed)) {
    const key = `${r.task}\u0000${r.label}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const avg = (rs: ProbeRow[], f: (r: ProbeRow) => number) => rs.reduce((a, r) => a + f(r), 0) / rs.length;
  for (const rs of groups.values()) {
    const seeds = [...byTask(rs).values()][0];
    const { task, kind, metric } = seeds[0];
    const variable = [...new Set(seeds.map((r) => r.variable ?? r.label))].join(' / ');
    const hooks = [...new Set(seeds.map((r) => r.hook))].join(' / ');
    const s = acrossSeeds(
      seeds.map((r) => ({ seed: r.seed, model: `${task}-s${r.seed}`, value: r.difference, p: r.p!, pFloor: r.pFloor })),
      { minSeeds: ctx.config.claimSeeds },
    );
    const baseline = (r: ProbeRow) => r.baselines.find((b) => b.against === CLAIM_BASELINE)!.score;
    const controls = seeds.map(baseline);
    const controlInterval = seedInterval(controls);
    const perSeedTest = `per seed, a one-sided paired permutation test on its ${seeds.map((r) => r.nTest).join('/')} held-out rows of ${seeds.map((r) => r.testSequences).join('/')} unseen sequences, flipping whole sequences (${ctx.config.permutations} random sign flips, or all 2^n when fewer): per-sequence sums of the per-row ${metric === 'accuracy' ? 'correctness' : 'squared error'} against the random-init model's probe`;
    const { effectHolds, effectCondition, ...fields } = claimFieldsOverSeeds(s, seeds[0].differenceInterval);
    claims.push({
      statement: `On ${task} (${s.seeds} seed${s.seeds === 1 ? '' : 's'}), a sparse ${kind} probe reads ${variable} from ${hooks} (held-out ${metric} ${fmt(avg(seeds, (r) => r.heldOut))} on unseen sequences against ${fmt(avg(seeds, baseline))} from a random-init model of the same shape; selectivity over a control task ${fmt(avg(seeds, (r) => r.selectivity))}, embeddings ${fmt(avg(seeds, (r) => r.baselines.find((b) => b.against === 'embeddings')!.score))}; ${fmt(avg(seeds, (r) => r.selected.length))} of ${seeds[0].dims} dims on average): ${fmt(s.mean)} above the random-init model`,
      ...fields,
      test: s.enough
        ? `${perSeedTest}; ${s.combination}; interval: Student's t over seeds`
        : `${tooFewSeeds(s, fewPassed(s.seeds, task), ctx.config.claimSeeds)}; ${perSeedTest}`,
      control:
        'the same probe, rows and sequence split on the same hook of a random-init model of the same shape; the estimate is the probe minus it',
      controlEstimate: avg(seeds, baseline),
      ...(Number.isFinite(controlInterval[0]) ? { controlInterval } : {}),
      ...pending(effectHolds, `${effectCondition} (probe beyond the random-init model)`),
    });
    points.push(...seedPoints(`${task} ${variable}`, s));
  }
  return { claims, points };
}
