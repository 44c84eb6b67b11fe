// Step 6: necessity and sufficiency of the step-5 circuits (interp/patching.ts), each ranked among
// its matched controls (interp/controls.ts: same size, same hook and positions, coordinates of the
// same activation-variance strata or directions from the activation covariance).
//   necessity    zero, mean and resample ablation of the circuit: loss increase (and accuracy drop)
//                at the scored positions
//   sufficiency  the clean run's circuit values patched into a corrupted run (the copied token
//                replaced, so the answer changes): fraction of the clean-vs-corrupted logit
//                difference restored; for state circuits the SSM state is replaced at the chosen
//                positions and the scan continues from it
// Everything runs on the test half of the study sequences (step 5 selected on the other half).
// Per model (effects.json, the tables): the empirical rank p-value of the circuit's effect among its
// controls' effects, (1 + #{controls >= circuit}) / (1 + n), floor 1/(n+1); interval of circuit
// minus mean control by a hierarchical bootstrap (sequences, then control sets).
// Claims (claims.json) are over seeds: one per task x circuit (source and hook kind) x effect, from
// one value per patched seed, circuit minus mean control; the interval is Student's t over the
// seeds (the seed is the unit) and p the exact sum-of-ranks test of the seeds' ranks among their
// controls (interp/seeds.ts). A task with fewer than claimSeeds seeds states its claims untested.
// The key claim is the one the config names before the run (patching.keyClaim), whatever the results.
// With --model (no step 5), the circuits come from a grad x activation attribution on the
// checkpoint here, on the selection half.
// On each gate-passing induction model, a layer x position sweep (interp/patch-sweep.ts: every
// layer's hook_resid_pre, hook_mixer_out, hook_resid_post and SSM state hook_h, each position) by
// real activation patching and by attribution patching on the same test sequences and the same
// corruption, scored by the logit difference at each sequence's last scored position: a figure of
// one against the other and their Pearson r (sweeps.json keeps both grids).
import { controlTest, type ControlTest } from '../interp/controls.ts';
import {
  ANSWER_SOURCE,
  ablateMany,
  ablationEdit,
  cacheActivations,
  corruptAnswers,
  evalSet,
  idsOf,
  outcome,
  patchCleanMany,
  positionMask,
  rolledBatch,
  type AblationKind,
} from '../interp/patching.ts';
import { fmt, intervalChart, type Claim, type Spec } from '../interp/report/index.ts';
import { pearson } from '../interp/attribution.ts';
import { atpScatter, attributionSweep, layerHooks, patchSweep, type SweepResult } from '../interp/patch-sweep.ts';
import { IGNORE_INDEX, type TaskBatch } from '../interp/tasks/index.ts';
import type { MambaLM } from '../mamba/model.ts';
import type { StepContext } from './step.ts';
import { pending } from '../interp/claims.ts';
import { acrossSeeds, perSeedText, seedInterval, type SeedSummary, type SeedValue } from '../interp/seeds.ts';
import { claimFieldsOverSeeds } from './seed-report.ts';
import { mean } from '../interp/stats.ts';
import { getTask } from '../interp/tasks/index.ts';
import { circuitsFor, studyHalves } from './circuits.ts';
import { noAnswerSourceNote, patchedModels, withAnswerSource } from './models.ts';
import { notApplicableStep } from './not-applicable.ts';
import { orNull } from './finite.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

interface EffectRow {
  model: string;
  seed: number;
  task: string;
  circuit: string;
  hook: string;
  /** 'resid' or 'state' */
  kind: string;
  source: string;
  size: number;
  effect: string;
  metric: string;
  controls: number;
  comparison: ControlTest;
  /** mean accuracy drop of the circuit and of the controls (ablations) */
  accuracyDrop?: [number, number];
}

const hookKind = (hook: string) => (hook.endsWith('hook_h') ? 'state' : 'resid');
const circuitName = (c: { source: string; hook: string }) => `${c.source}-${hookKind(c.hook)}`;
/** A claim over seeds (claims.json): one task's circuit kind and effect, a value per seed. */
interface SeedClaim {
  task: string;
  /** source-kind, e.g. attribution-resid */
  circuit: string;
  kind: string;
  source: string;
  effect: string;
  metric: string;
  /** the hooks the seeds' circuits sit at (a state circuit's layer may differ between seeds) */
  hooks: string[];
  size: number;
  controls: number;
  /** means over seeds of the circuit's effect and of its controls' mean effect */
  circuitMean: number;
  controlMean: number;
  /** over seeds of circuit minus mean control; perSeed in the order of effects.json, with each seed's rank */
  summary: SeedSummary;
}

/** Sequences in the AtP-against-patching sweep (each cell is one forward of this many). */
export const SWEEP_SEQUENCES = 16;
/**
 * The sweep's rows: the residual entering each layer and leaving the last (layer i's hook_resid_post
 * is layer i+1's hook_resid_pre, the same tensor, so it is not swept twice), each mixer's output and
 * each SSM state. Measured on this shared 2-core CPU: the quick run's two induction models add
 * about 4 s of CPU time to step 6; at the default size (hidden 64, 64 tokens, 16 sequences) a
 * random model's two sweeps took 9.5 CPU seconds, so three seeds add about 30 s.
 */
function sweepHooks(model: MambaLM): string[] {
  const L = model.config.num_hidden_layers;
  return [
    ...layerHooks(model, 'resid_pre'),
    `blocks.${L - 1}.hook_resid_post`,
    ...layerHooks(model, 'mixer_out'),
    ...layerHooks(model, 'h'),
  ];
}
/** The row groups of the per-kind correlations (by hook name suffix). */
const SWEEP_KINDS = {
  residual: ['.hook_resid_pre', '.hook_resid_post'],
  'mixer output': ['.hook_mixer_out'],
  'SSM state': ['.mixer.hook_h'],
};

/** One model's two sweeps of the same cells (sweeps.json). */
export interface SweepPair {
  model: string;
  /** the token ids of the sequences, clean and corrupted */
  clean: number[][];
  corrupted: number[][];
  /** the logit difference: per sequence, logit(clean answer) - logit(corrupted answer) at its last scored position */
  diff: { position: number[]; a: number[]; b: number[] };
  patching: SweepResult;
  atp: SweepResult;
  /** Pearson r over every cell of the grids */
  r: number;
}

/** The cells of a sweep in row-major order (the order of atpScatter's points). */
export const sweepCells = (s: SweepResult): number[] => s.values.flat();

/** Real and attribution patching of the same layer x position grid on the first sequences that have a scored position. */
async function sweepPair(model: MambaLM, label: string, batch: TaskBatch, corrupt: TaskBatch): Promise<SweepPair> {
  const [B, T] = batch.shape;
  const clean: number[][] = [],
    bad: number[][] = [];
  const diff = { position: [] as number[], a: [] as number[], b: [] as number[] };
  for (let e = 0; e < B && clean.length < SWEEP_SEQUENCES; e++) {
    let last = -1;
    for (let t = 0; t < T; t++) if (batch.targets[e * T + t] !== IGNORE_INDEX) last = t;
    if (last < 0) continue;
    clean.push(Array.from(batch.inputs.subarray(e * T, (e + 1) * T)));
    bad.push(Array.from(corrupt.inputs.subarray(e * T, (e + 1) * T)));
    diff.position.push(last);
    diff.a.push(batch.targets[e * T + last]);
    diff.b.push(corrupt.targets[e * T + last]);
  }
  const hooks = sweepHooks(model);
  const patching = await patchSweep(model, clean, bad, diff, hooks);
  const atp = await attributionSweep(model, clean, bad, diff, hooks);
  return { model: label, clean, corrupted: bad, diff, patching, atp, r: pearson(sweepCells(patching), sweepCells(atp)) };
}

async function sweepFigure(ctx: StepContext, p: SweepPair) {
  const n = p.diff.position.length,
    T = p.patching.positions;
  return saveFigure(
    ctx,
    `atp-vs-patching-${p.model}`,
    atpScatter(p.patching, p.atp, `${p.model}: attribution patching vs activation patching (Pearson r ${fmt(p.r)})`),
    `${p.model}: AtP against real patching (r ${fmt(p.r)})`,
    `Each point is one (hook, position) cell of a layer x position sweep over ${p.patching.hooks.length} hooks (each layer's hook_resid_pre, hook_mixer_out and SSM state hook_h, and the last hook_resid_post) and ${T} positions, on ${n} test sequences with the step's corruption: x the normalised logit difference (patched - corrupted) / (clean - corrupted) when the clean activation is patched in there, y its first-order estimate by attribution patching. Pearson r ${fmt(p.r)} over all ${p.patching.hooks.length * T} cells (cells no patch can reach are 0 in both).`,
  );
}

/** The effects that are claims (the key claim names one of them). */
const CLAIMED_EFFECTS = ['mean ablation', 'clean patch'];

/** One error line naming the field when the key claim cannot name a claim of this step. */
function checkKeyClaim(kc: { task: string; hook: string; source: string; effect: string }, tasks: string[], model: string): void {
  if (!['resid', 'state'].includes(kc.hook)) throw new Error(`config: patching.keyClaim.hook must be 'resid' or 'state', got '${kc.hook}'`);
  if (!CLAIMED_EFFECTS.includes(kc.effect))
    throw new Error(`config: patching.keyClaim.effect must be one of ${CLAIMED_EFFECTS.join(', ')}, got '${kc.effect}'`);
  if (!model && !tasks.includes(kc.task))
    throw new Error(`config: patching.keyClaim.task '${kc.task}' is not among the run's tasks (${tasks.join(', ')})`);
}

/** The control distribution of each row (ticks) with the circuit's effect (a point). */
function distributionChart(rows: EffectRow[], label: (r: EffectRow) => string, title: string, valueTitle: string): Spec {
  const values = rows.flatMap((r) => [
    ...r.comparison.controls.map((v) => ({ row: label(r), which: 'matched control', value: v })),
    { row: label(r), which: 'circuit', value: r.comparison.estimate },
  ]);
  return {
    title,
    width: 380,
    data: { values },
    encoding: {
      y: { field: 'row', type: 'nominal', title: null, axis: { labelLimit: 220 } },
      x: { field: 'value', type: 'quantitative', title: valueTitle },
      color: { field: 'which', type: 'nominal', title: null },
    },
    layer: [
      { transform: [{ filter: "datum.which === 'matched control'" }], mark: { type: 'tick', opacity: 0.35 } },
      { transform: [{ filter: "datum.which === 'circuit'" }], mark: { type: 'point', filled: true, size: 80 } },
    ],
  } as Spec;
}

/** Per claim row: the seeds' values (hollow points) and the mean over seeds with its t interval, against 0. */
function seedChart(claims: SeedClaim[], title: string, metric: string): Spec {
  const row = (c: SeedClaim) => `${c.task.replace('selective-copying', 'sel-copy')} ${c.circuit.replace('attribution', 'attr')}`;
  const values = claims.flatMap((c) => [
    ...c.summary.perSeed.map((v) => ({ row: row(c), which: 'seed', model: v.model, value: v.value })),
    {
      row: row(c),
      which: 'mean over seeds',
      model: '',
      value: c.summary.mean,
      lo: Number.isFinite(c.summary.interval[0]) ? c.summary.interval[0] : null,
      hi: Number.isFinite(c.summary.interval[1]) ? c.summary.interval[1] : null,
    },
  ]);
  return {
    title,
    width: 380,
    data: { values },
    encoding: { y: { field: 'row', type: 'nominal', title: null, sort: null, axis: { labelLimit: 260 } } },
    layer: [
      { mark: { type: 'rule', strokeDash: [3, 3], color: 'gray' }, encoding: { x: { datum: 0 } } },
      {
        transform: [{ filter: "datum.which === 'mean over seeds' && datum.lo !== null" }],
        mark: 'rule',
        encoding: { x: { field: 'lo', type: 'quantitative', title: `circuit minus mean control (${metric})` }, x2: { field: 'hi' } },
      },
      {
        transform: [{ filter: "datum.which === 'mean over seeds'" }],
        mark: { type: 'point', filled: true, size: 90 },
        encoding: { x: { field: 'value', type: 'quantitative' }, color: { field: 'which', type: 'nominal', title: null } },
      },
      {
        transform: [{ filter: "datum.which === 'seed'" }],
        mark: { type: 'point', filled: false, size: 40 },
        encoding: {
          x: { field: 'value', type: 'quantitative' },
          color: { field: 'which', type: 'nominal', title: null },
          tooltip: [{ field: 'model' }, { field: 'value', type: 'quantitative' }],
        },
      },
    ],
  } as Spec;
}

export const patchingStep: Step = {
  ...stepInfo('patching'),
  version: 4,
  needs: [5],
  configKeys: ['circuit', 'patching'],
  appliesToModel: true,
  async run(ctx) {
    const pc = ctx.config.patching;
    const { applicable: models, notApplicable } = withAnswerSource(patchedModels(ctx, pc.seeds));
    const skipNote = noAnswerSourceNote(notApplicable, 'patching');
    if (!models.length) return notApplicableStep(ctx, skipNote!, ['effects.json', 'claims.json']);
    // the tasks models are studied on: the run's, and repeated-tokens for its language models (steps/copying.ts)
    checkKeyClaim(pc.keyClaim, [...ctx.config.tasks, ...models.map((m) => m.task)], ctx.config.model);
    const rows: EffectRow[] = [];
    const sweeps: SweepPair[] = [];
    const report = ctx.report();
    if (skipNote) report.notes.push(skipNote);
    for (const [mIdx, m] of models.entries()) {
      const model = await m.load();
      try {
        const task = getTask(m.task);
        const source = ANSWER_SOURCE[m.task];
        if (!source) throw new Error(`step 6: no answer corruption defined for task ${m.task} (interp/patching.ts ANSWER_SOURCE)`);
        const circuits = await circuitsFor(ctx, m, model);
        const batch = studyHalves(ctx, m).test;
        const corrupt = corruptAnswers(task, m.taskOptions, batch, source, ctx.rng(`corrupt/${m.label}`));
        const set = evalSet(batch, corrupt);
        const ids = idsOf(model, batch),
          corruptIds = idsOf(model, corrupt);
        const clean = await outcome(model, ids, set, []);
        const corrupted = await outcome(model, corruptIds, set, []);
        const nCtl = Math.min(pc.controls, ...circuits.map((c) => c.controls.length));
        const total = circuits.length;
        for (const [cIdx, c] of circuits.entries()) {
          ctx.progress(`patching ${m.label} (${mIdx + 1}/${models.length})`, cIdx, total);
          const mask = positionMask(c.positions, batch);
          const act = cacheActivations(model, ids, [c.hook]).get(c.hook)!;
          const rolled = rolledBatch(act);
          const controls = c.controls.slice(0, nCtl);
          const base = {
            model: m.label,
            seed: m.seed,
            task: m.task,
            circuit: `${m.label}/${circuitName(c)}`,
            hook: c.hook,
            kind: hookKind(c.hook),
            source: c.source,
            size: c.directions?.length ?? c.channels.length,
            controls: nCtl,
          };
          try {
            // zero and resample only for the grad x activation circuits (time); mean ablation for all
            const kinds: AblationKind[] = c.source === 'attribution' ? ['zero', 'mean', 'resample'] : ['mean'];
            for (const kind of kinds) {
              const edit = await ablationEdit(kind, act, mask, rolled);
              // zero and resample ablation are table rows, not claims: fewer controls (time)
              const these = kind === 'mean' ? controls : controls.slice(0, Math.min(pc.tableControls, controls.length));
              const [eff, ...ctl] = await ablateMany(model, ids, set, clean, [c, ...these], mask, edit);
              rows.push({
                ...base,
                effect: `${kind} ablation`,
                metric: 'loss increase',
                controls: these.length,
                comparison: controlTest(
                  eff.lossIncrease,
                  ctl.map((e) => e.lossIncrease),
                  ctx.rng(`stats/${base.circuit}/${kind}`),
                  pc,
                ),
                accuracyDrop: [mean(eff.accuracyDrop), mean(ctl.map((e) => mean(e.accuracyDrop)))],
              });
            }
            const [suff, ...ctl] = await patchCleanMany(
              model,
              corruptIds,
              set,
              clean.logitDiff!,
              corrupted.logitDiff!,
              [c, ...controls],
              mask,
              act,
            );
            rows.push({
              ...base,
              effect: 'clean patch',
              metric: 'fraction of logit difference restored',
              comparison: controlTest(
                suff.gained,
                ctl.map((e) => e.gained),
                ctx.rng(`stats/${base.circuit}/patch`),
                { ...pc, ratioTo: suff.gap },
              ),
            });
          } finally {
            act.dispose();
            rolled.dispose();
          }
        }
        ctx.progress(`patching ${m.label} (${mIdx + 1}/${models.length})`, total, total);
        if (m.task === 'induction') sweeps.push(await sweepPair(model, m.label, batch, corrupt));
        report.tables.push({
          title: `${m.label}: baseline on ${pc.examples} held-out sequences`,
          columns: ['accuracy clean', 'accuracy corrupted (clean answer)', 'logit diff clean', 'logit diff corrupted'],
          rows: [[mean(clean.accuracy), mean(corrupted.accuracy), mean(clean.logitDiff!), mean(corrupted.logitDiff!)]],
        });
        ids.dispose();
        corruptIds.dispose();
      } finally {
        model.dispose();
      }
    }
    // the claims: sufficiency and mean ablation of every circuit (zero and resample are in the table)
    const claimed = rows.filter((r) => CLAIMED_EFFECTS.includes(r.effect));
    ctx.writeJson('effects.json', rows);
    ctx.writeJson('sweeps.json', sweeps);

    const ctlWord = (r: EffectRow) =>
      `${r.controls} matched ${r.source === 'sae' ? 'subspaces (directions from the activation covariance)' : 'channel sets (same activation-variance strata)'} of equal size (${r.size}) on ${r.hook}, same positions`;

    // the claims over seeds: per task x circuit kind x effect, one value per seed (circuit minus
    // mean control) with that seed's rank among its controls
    const groups = new Map<string, EffectRow[]>();
    for (const r of claimed) {
      const k = `${r.task}/${circuitName(r)}/${r.effect}`;
      groups.set(k, [...(groups.get(k) ?? []), r]);
    }
    const seedClaims: SeedClaim[] = [...groups.values()].map((rs) => {
      const r0 = rs[0];
      const perSeed: SeedValue[] = rs.map((r) => ({
        seed: r.seed,
        model: r.model,
        value: r.comparison.difference,
        p: r.comparison.p,
        pFloor: r.comparison.pFloor,
        rank: { ge: r.comparison.controls.filter((v) => v >= r.comparison.estimate).length, n: r.comparison.controls.length },
      }));
      return {
        task: r0.task,
        circuit: circuitName(r0),
        kind: r0.kind,
        source: r0.source,
        effect: r0.effect,
        metric: r0.metric,
        hooks: [...new Set(rs.map((r) => r.hook))],
        size: r0.size,
        controls: r0.controls,
        circuitMean: mean(rs.map((r) => r.comparison.estimate)),
        controlMean: mean(rs.map((r) => r.comparison.control)),
        summary: acrossSeeds(perSeed, { minSeeds: ctx.config.claimSeeds }),
      };
    });
    ctx.writeJson('claims.json', seedClaims);
    const rowsOf = (c: SeedClaim) => claimed.filter((r) => r.task === c.task && circuitName(r) === c.circuit && r.effect === c.effect);
    const claimOf = (c: SeedClaim): Claim => {
      const s = c.summary;
      // one seed gives no t interval: the claim (untested) shows that seed's hierarchical-bootstrap interval
      const f = claimFieldsOverSeeds(s, rowsOf(c)[0].comparison.differenceInterval);
      const level = Math.round(s.level * 100);
      const k = s.seeds;
      const how = ctx.config.model
        ? `one checkpoint (--model): a claim needs ${ctx.config.claimSeeds} seeds, so it is not tested`
        : !s.enough
          ? `only ${k} seed(s) passed the learning gate; a claim needs ${ctx.config.claimSeeds} (claimSeeds): not tested`
          : `per seed, the empirical rank p-value of the circuit among its ${c.controls} matched controls, (1 + #controls >= circuit) / (1 + ${c.controls}); combined by the ${s.combination}${s.p !== undefined && s.p <= s.pFloor! ? ` (floor ${fmt(s.pFloor!)} binds)` : ''}`;
      return {
        statement: `${c.task}, ${c.circuit} circuit (${c.hooks.join(', ')}), over ${k} seed${k === 1 ? '' : 's'}: ${c.effect} ${c.metric} exceeds its matched controls'`,
        estimate: f.estimate,
        interval: f.interval,
        level: f.level,
        test: `${how}; estimate: mean over seeds of circuit minus mean control, ${level}% Student's t interval over seeds (the seed is the unit); circuit ${fmt(c.circuitMean)} vs controls ${fmt(c.controlMean)} (means over seeds); per seed: ${perSeedText(s, fmt)} (each seed's interval over sequences by the hierarchical bootstrap in the table)`,
        ...(f.p !== undefined ? { p: f.p, pFloor: f.pFloor } : {}),
        perSeed: f.perSeed,
        control: ctlWord(rowsOf(c)[0]),
        controlEstimate: c.controlMean,
        ...(k >= 2
          ? {
              controlInterval: seedInterval(
                rowsOf(c).map((r) => r.comparison.control),
                s.level,
              ),
            }
          : {}),
        ...pending(f.effectHolds, `the ${level}% t interval over seeds of circuit minus mean control lies above 0`),
      };
    };
    // the key claim: the one the config names (before the run), not the best-looking result
    const kc = pc.keyClaim;
    const key = seedClaims.find(
      (c) => (ctx.config.model || c.task === kc.task) && c.effect === kc.effect && c.kind === kc.hook && c.source === kc.source,
    );
    report.claims = [...(key ? [key] : []), ...seedClaims.filter((c) => c !== key)].map(claimOf);

    report.tables.push({
      title:
        'Claims over seeds: circuit minus mean matched control, one value per seed (t interval over seeds; p the exact sum-of-ranks test)',
      columns: [
        'task',
        'circuit',
        'effect',
        'seeds',
        'circuit (mean)',
        'control (mean)',
        'difference',
        't CI low',
        't CI high',
        'p',
        'p floor',
        'per seed',
      ],
      rows: seedClaims.map((c) => [
        c.task,
        c.circuit,
        c.effect,
        c.summary.seeds,
        c.circuitMean,
        c.controlMean,
        c.summary.mean,
        // no interval with fewer than 2 seeds (a --model run's one model)
        orNull(c.summary.interval[0]),
        orNull(c.summary.interval[1]),
        c.summary.p ?? '',
        c.summary.pFloor ?? '',
        perSeedText(c.summary, fmt),
      ]),
    });
    report.tables.push({
      title:
        'Every effect next to its matched controls (raw rank p; the claims, clean patch and mean ablation, are corrected across the run in step 13)',
      columns: [
        'circuit',
        'hook',
        'size',
        'effect',
        'metric',
        'circuit',
        'CI low',
        'CI high',
        'control',
        'difference',
        'diff CI low',
        'diff CI high',
        'accuracy drop (circuit)',
        'accuracy drop (control)',
        'control 5%',
        'control 50%',
        'control 95%',
        'rank p',
        'p floor',
      ],
      rows: rows.map((r) => [
        r.circuit,
        r.hook,
        r.size,
        r.effect,
        r.metric,
        r.comparison.estimate,
        r.comparison.interval[0],
        r.comparison.interval[1],
        r.comparison.control,
        r.comparison.difference,
        r.comparison.differenceInterval[0],
        r.comparison.differenceInterval[1],
        r.accuracyDrop?.[0] ?? '',
        r.accuracyDrop?.[1] ?? '',
        r.comparison.controlQuantiles[0],
        r.comparison.controlQuantiles[2],
        r.comparison.controlQuantiles[4],
        r.comparison.p,
        r.comparison.pFloor,
      ]),
    });
    for (const metric of ['loss increase', 'fraction of logit difference restored']) {
      const sel = rows.filter((r) => r.metric === metric);
      if (!sel.length) continue;
      // short row labels: the axis truncates long ones
      const short = (r: EffectRow) =>
        `${r.circuit.replace('attribution', 'attr').replace('selective-copying', 'sel-copy')} ${r.effect.replace(' ablation', '').replace('clean ', '')}`;
      const pts = sel.flatMap((r) => [
        { row: short(r), kind: 'circuit', value: r.comparison.estimate, lo: r.comparison.interval[0], hi: r.comparison.interval[1] },
        {
          row: short(r),
          kind: 'matched controls (mean, 2.5-97.5%)',
          value: r.comparison.control,
          lo: r.comparison.controlInterval[0],
          hi: r.comparison.controlInterval[1],
        },
      ]);
      const name = metric === 'loss increase' ? 'necessity' : 'sufficiency';
      report.figures.push(
        await saveFigure(
          ctx,
          name,
          intervalChart(pts, {
            title:
              name === 'necessity'
                ? 'Ablation: loss increase at the scored positions'
                : 'Clean-into-corrupted patching: logit difference restored',
            category: 'row',
            value: 'value',
            lo: 'lo',
            hi: 'hi',
            color: 'kind',
            valueTitle: metric,
            width: 380,
          }),
          name === 'necessity'
            ? 'Necessity: ablating the circuit vs matched controls'
            : 'Sufficiency: patching the circuit vs matched controls',
          `${metric} for each circuit (95% bootstrap interval over ${pc.examples} held-out sequences) next to the mean of its matched controls of equal size on the same hook and positions, with the 2.5-97.5% quantiles of the control distribution.`,
        ),
      );
      report.figures.push(
        await saveFigure(
          ctx,
          `${name}-controls`,
          distributionChart(
            sel,
            short,
            `${name === 'necessity' ? 'Ablation' : 'Patching'}: each circuit among its matched controls`,
            metric,
          ),
          `${name === 'necessity' ? 'Necessity' : 'Sufficiency'}: the control distribution`,
          `Each tick is one matched control set's ${metric} on the ${pc.examples} test sequences, the dot the circuit's; the rank p-value is the share of ticks at or right of the dot (plus one, over the controls plus one).`,
        ),
      );
    }
    for (const p of sweeps) report.figures.push(await sweepFigure(ctx, p));
    if (sweeps.length)
      report.tables.push({
        title: 'Attribution patching against activation patching, layer x position sweeps (Pearson r over the cells)',
        columns: ['model', 'sequences', 'cells', 'r (all hooks)', ...Object.keys(SWEEP_KINDS).map((k) => `r ${k}`)],
        rows: sweeps.map((p) => {
          const per = Object.values(SWEEP_KINDS).map((leaves) => {
            const rows = p.patching.hooks.flatMap((h, i) => (leaves.some((l) => h.endsWith(l)) ? [i] : []));
            return pearson(
              rows.flatMap((i) => p.patching.values[i]),
              rows.flatMap((i) => p.atp.values[i]),
            );
          });
          return [p.model, p.diff.position.length, sweepCells(p.patching).length, p.r, ...per];
        }),
      });
    // the claims over seeds: each seed's value beside the task's mean and t interval
    for (const metric of ['loss increase', 'fraction of logit difference restored']) {
      const sel = seedClaims.filter((c) => c.metric === metric);
      if (!sel.length) continue;
      const name = metric === 'loss increase' ? 'necessity' : 'sufficiency';
      report.figures.push(
        await saveFigure(
          ctx,
          `${name}-seeds`,
          seedChart(
            sel,
            `${name === 'necessity' ? 'Mean ablation' : 'Clean patch'} over seeds: circuit minus mean matched control`,
            metric,
          ),
          `${name === 'necessity' ? 'Necessity' : 'Sufficiency'} over seeds (the claims)`,
          `Per task and circuit kind, each seed's circuit minus the mean of its matched controls (${metric}; hollow points, one per seed) beside the mean over seeds with its 95% Student's t interval (the seed is the unit; none with one seed). The claims' p combines the seeds' ranks among their controls.`,
        ),
      );
    }
    report.notes.push(
      "Corruption: the token the answer is copied from (induction: the trigger's follower) is replaced in the whole sequence by another token of the same vocabulary range, so the answer changes and the prefix before the source is unchanged. The logit difference is logit(clean answer) - logit(corrupted answer); fraction restored is a ratio of means over sequences.",
    );
    report.notes.push(
      'Mean ablation uses the per-coordinate mean over the covered cells of the evaluation batch; resample ablation takes each coordinate from the next sequence of the batch at the same position. State circuits (hook_h) are edited at their positions only, and the scan continues from the edited state.',
    );
    report.notes.push(
      `Circuits were selected, and their controls matched, on ${pc.examples} selection sequences (step 5); every effect here is measured on ${pc.examples} other sequences. Claims are over seeds: the first ${pc.seeds} gate-passing seeds of each task (at least claimSeeds ${ctx.config.claimSeeds} for a tested claim), one value per seed (circuit minus mean control), Student's t over seeds, and the exact sum-of-ranks test of the seeds' ranks among their controls; the per-model rows (effects.json, the table) keep each seed's own rank p and bootstrap interval over sequences. The key claim was named in the config before the run (patching.keyClaim: ${kc.task}, ${kc.hook}, ${kc.source}, ${kc.effect})${key ? '' : '; no circuit of this run matches it'}.`,
    );
    if (ctx.config.model)
      report.notes.push(
        'With --model, step 5 does not run: circuits come from grad x activation attribution on separate sequences of the checkpoint (interp/circuits.ts attributionCircuits).',
      );
    const effectCount = report.claims.filter((c) => c.effect).length;
    const tail = `${effectCount}/${report.claims.length} claims (over seeds, per task x circuit x effect) meet their effect condition (support is decided across the run, step 13).`;
    const ks = key?.summary;
    report.summary = key
      ? `Key claim (named in the config): ${key.task} ${key.circuit} (${key.size} coordinates of ${key.hooks.join(', ')}), ${key.effect}, over ${ks!.seeds} seed(s): circuit minus mean matched control ${fmt(ks!.mean)} [${fmt(ks!.interval[0])}, ${fmt(ks!.interval[1])}] (t over seeds; circuit ${fmt(key.circuitMean)} vs controls ${fmt(key.controlMean)}${key.effect === 'clean patch' ? ' of the logit difference restored' : ' loss increase'}), ${ks!.p !== undefined ? `sum-of-ranks p ${fmt(ks!.p)} (floor ${fmt(ks!.pFloor!)})` : 'not tested (too few seeds)'}; per seed: ${perSeedText(ks!, fmt)}; ${tail}`
      : `${rows.length} effects measured; the key claim named in the config (${kc.task}, ${kc.hook}, ${kc.source}, ${kc.effect}) has no circuit in this run; ${tail}`;
    saveReport(ctx, report);
    return report.summary;
  },
};
