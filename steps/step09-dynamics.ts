// Step 9: dynamics. For every studied model (every gate-passing seed), on `dynamics.examples` task
// sequences: the spectrum of the discretised transitions Abar = exp(delta A) and the time constants
// tau = -1/(delta A) per layer; how delta depends on the input token (per model, a permutation test
// that the induction trigger's delta differs from other tokens', next to a random content token as
// control); SSM-state trajectories on their first two principal components; and, for the first seed
// of each task, the eigenvalues of the full Jacobian of one recurrent step of the last layer in the
// complex plane. The trigger-delta claims are per task x layer over seeds (interp/seeds.ts): each
// seed's trigger-minus-other difference, their t interval (the seed is the unit), Fisher's
// combination of the seeds' permutation p.
import {
  abarValues,
  deltaByToken,
  discretisation,
  layerStepJacobian,
  meanDeltaPerPosition,
  splitByToken,
  spreadChannels,
  stateTrajectories,
  timeConstants,
} from '../interp/dynamics.ts';
import { spectralRadius } from '../interp/linalg.ts';
import { pending } from '../interp/claims.ts';
import { acrossSeeds, perSeedText, seedInterval, type SeedValue } from '../interp/seeds.ts';
import { bootstrapTwoSampleCI, mean, permutationTest, quantiles } from '../interp/stats.ts';
import { getTask } from '../interp/tasks/index.ts';
import { TRIGGER } from '../interp/tasks/induction.ts';
import { barChart, fmt, histogram, intervalChart, type Claim, type Spec } from '../interp/report/index.ts';
import { studyModels } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

/** Channels in the layer-step Jacobian (its size is channels * (conv kernel + state size)). */
const JACOBIAN_CHANNELS = 12;
/** Values kept for each histogram (an evenly strided subsample). */
const HIST_VALUES = 20000;
const TRAJECTORIES = 4;

/** One model's trigger-delta test at one layer (trigger.json). */
export interface TriggerTest {
  model: string;
  task: string;
  seed: number;
  layer: number;
  /** mean delta at the trigger minus at other tokens, with its percentile bootstrap interval over positions */
  difference: number;
  interval: [number, number];
  nTrigger: number;
  nOther: number;
  /** two-sided two-sample permutation test, trigger vs other positions */
  p: number;
  pFloor: number;
  nPerm: number;
  /** the same difference for a random content token */
  controlToken: number;
  control: number;
  controlInterval: [number, number];
}

/** A seed's value for the claim: trigger minus other-token mean delta, with its permutation p (combined by Fisher's method). */
export function seedValueOf(t: TriggerTest): SeedValue {
  return { seed: t.seed, model: t.model, value: t.difference, p: t.p, pFloor: t.pFloor };
}

function stride(values: ArrayLike<number>, max: number): number[] {
  const step = Math.max(1, Math.ceil(values.length / max));
  const out: number[] = [];
  for (let i = 0; i < values.length; i += step) out.push(values[i]);
  return out;
}

function trajectorySpec(rows: { pc1: number; pc2: number; t: number; sequence: string }[], title: string): Spec {
  return {
    title,
    width: 360,
    height: 300,
    data: { values: rows },
    layer: [
      {
        mark: { type: 'line', opacity: 0.7 },
        encoding: {
          x: { field: 'pc1', type: 'quantitative', title: 'PC 1' },
          y: { field: 'pc2', type: 'quantitative', title: 'PC 2' },
          color: { field: 'sequence', type: 'nominal' },
          order: { field: 't', type: 'quantitative' },
        },
      },
      {
        mark: { type: 'point', filled: true },
        encoding: {
          x: { field: 'pc1', type: 'quantitative' },
          y: { field: 'pc2', type: 'quantitative' },
          color: { field: 'sequence', type: 'nominal' },
          size: { field: 't', type: 'quantitative', title: 'position' },
        },
      },
    ],
  } as Spec;
}

function eigenSpec(rows: { re: number; im: number; kind: string }[], title: string): Spec {
  const circle = Array.from({ length: 121 }, (_, i) => ({
    re: Math.cos((2 * Math.PI * i) / 120),
    im: Math.sin((2 * Math.PI * i) / 120),
    i,
  }));
  return {
    title,
    width: 300,
    height: 300,
    layer: [
      {
        data: { values: circle },
        mark: { type: 'line', color: '#999', strokeDash: [4, 3] },
        encoding: {
          x: { field: 're', type: 'quantitative', title: 'Re', scale: { domain: [-1.1, 1.1] } },
          y: { field: 'im', type: 'quantitative', title: 'Im', scale: { domain: [-1.1, 1.1] } },
          order: { field: 'i', type: 'quantitative' },
        },
      },
      {
        data: { values: rows },
        mark: { type: 'point', filled: true, opacity: 0.7 },
        encoding: {
          x: { field: 're', type: 'quantitative' },
          y: { field: 'im', type: 'quantitative' },
          color: { field: 'kind', type: 'nominal' },
          shape: { field: 'kind', type: 'nominal' },
        },
      },
    ],
  } as Spec;
}

export const dynamicsStep: Step = {
  ...stepInfo('dynamics'),
  version: 3,
  needs: [1],
  configKeys: ['dynamics', 'model', 'permutations', 'claimSeeds'],
  appliesToModel: true,
  async run(ctx) {
    const models = studyModels(ctx);
    const report = ctx.report();
    const out: unknown[] = [];
    const triggers: TriggerTest[] = [];
    const jacTable: (string | number)[][] = [];
    let minTau = Infinity,
      allFinite = true;
    for (const [mi_, m] of models.entries()) {
      ctx.progress('dynamics', mi_, models.length);
      const model = await m.load();
      try {
        const c = model.config,
          L = c.num_hidden_layers,
          tag = m.label;
        const batch = getTask(m.task).generate(m.taskOptions as never, ctx.rng(`data/${tag}`), ctx.config.dynamics.examples);
        const T = batch.shape[1];
        const ids = Array.from({ length: batch.shape[0] }, (_, b) => Array.from(batch.inputs.subarray(b * T, (b + 1) * T)));
        const layers = [];
        for (let layer = 0; layer < L; layer++) {
          const d = await discretisation(model, ids, layer);
          const abar = abarValues(d),
            tau = timeConstants(d),
            perPos = meanDeltaPerPosition(d);
          for (const v of tau) {
            minTau = Math.min(minTau, v);
            if (!Number.isFinite(v)) allFinite = false;
          }
          const byToken = deltaByToken(d, ids);
          layers.push({
            layer,
            abarQuantiles: quantiles(abar, [0, 0.05, 0.5, 0.95, 1]),
            tauQuantiles: quantiles(tau, [0, 0.05, 0.5, 0.95, 1]),
            tau: Array.from(tau),
            deltaByToken: byToken,
          });
          report.figures.push(
            await saveFigure(
              ctx,
              `abar-${tag}-${layer}`,
              histogram(stride(abar, HIST_VALUES), {
                title: `${tag} layer ${layer}: eigenvalues Abar = exp(delta A)`,
                xTitle: 'Abar',
                bins: 40,
              }),
              `Abar spectrum, ${tag}, layer ${layer}`,
              `Distribution of the diagonal transition Abar over channels, states, positions and ${ids.length} ${m.task} sequences (the SSM's eigenvalues at each step; 1 keeps, 0 forgets).`,
            ),
          );
          report.figures.push(
            await saveFigure(
              ctx,
              `tau-${tag}-${layer}`,
              histogram(Array.from(tau), {
                title: `${tag} layer ${layer}: time constants tau = -1/(delta A)`,
                xTitle: 'tau (tokens)',
                logX: true,
                bins: 40,
              }),
              `Time constants, ${tag}, layer ${layer}`,
              'tau per channel and state with delta averaged over positions, in tokens, log scale.',
            ),
          );
          const vocab = getTask(m.task).vocabulary(m.taskOptions as never);
          const named = (tok: number) => vocab.find((v) => v.first === tok && v.last === tok)?.name ?? `${tok}`;
          report.figures.push(
            await saveFigure(
              ctx,
              `delta-token-${tag}-${layer}`,
              barChart(
                byToken.slice(0, 64).map((x) => ({ token: named(x.token), 'mean delta': x.meanDelta })),
                {
                  title: `${tag} layer ${layer}: mean delta per input token`,
                  x: 'token',
                  y: 'mean delta',
                  width: Math.min(640, 12 * Math.min(64, byToken.length) + 80),
                },
              ),
              `Delta by token, ${tag}, layer ${layer}`,
              'Channel-mean step size delta when the token is read: large delta forgets the state and writes the token, small delta keeps the state (first 64 token ids shown).',
            ),
          );
          if (m.task === 'induction') {
            const [at, other] = splitByToken(perPos, ids, TRIGGER);
            const contentRng = ctx.rng(`control/${tag}/${layer}`);
            const present = byToken.filter((x) => x.token > TRIGGER && x.count >= 2).map((x) => x.token);
            if (at.length >= 2 && other.length >= 2 && present.length) {
              const ctrlTok = present[contentRng.int(0, present.length)];
              const [ctAt, ctOther] = splitByToken(perPos, ids, ctrlTok);
              const ci = bootstrapTwoSampleCI(at, other, ctx.rng(`boot/${tag}/${layer}`), undefined, { nBoot: 2000, method: 'percentile' });
              const ctrl = bootstrapTwoSampleCI(ctAt, ctOther, ctx.rng(`bootc/${tag}/${layer}`), undefined, {
                nBoot: 2000,
                method: 'percentile',
              });
              const perm = permutationTest(at, other, ctx.rng(`perm/${tag}/${layer}`), { nPerm: ctx.config.permutations });
              triggers.push({
                model: tag,
                task: m.task,
                seed: m.seed,
                layer,
                difference: ci.estimate,
                interval: [ci.lo, ci.hi],
                nTrigger: at.length,
                nOther: other.length,
                p: perm.pValue,
                pFloor: perm.floor,
                nPerm: perm.nPerm,
                controlToken: ctrlTok,
                control: ctrl.estimate,
                controlInterval: [ctrl.lo, ctrl.hi],
              });
            }
          }
        }
        // state trajectories of the last layer on their first two principal components
        const last = L - 1;
        const tr = await stateTrajectories(model, ids, last, 2, ctx.rng(`pca/${tag}`));
        const rows = tr.coords
          .slice(0, TRAJECTORIES)
          .flatMap((seq, b) => seq.map(([pc1, pc2], t) => ({ pc1, pc2, t, sequence: `sequence ${b}` })));
        report.figures.push(
          await saveFigure(
            ctx,
            `trajectories-${tag}`,
            trajectorySpec(
              rows,
              `${tag} layer ${last}: SSM state on PC 1 / PC 2 (${fmt(100 * tr.pca.explained[0])}% / ${fmt(100 * (tr.pca.explained[1] ?? 0))}%)`,
            ),
            `State trajectories, ${tag}`,
            `The SSM state h_t (all ${c.intermediate_size * c.state_size} entries) of layer ${last}, projected on its first two principal components over all sequences and positions; points grow with the position.`,
          ),
        );
        // the layer-step Jacobian, for the first seed of each task
        let jac = null;
        if (models.findIndex((x) => x.task === m.task) === mi_) {
          const channels = spreadChannels(c.intermediate_size, JACOBIAN_CHANNELS);
          const pos = Math.floor(T / 2);
          const j = await layerStepJacobian(model, ids[0], last, pos, channels);
          for (const e of j.eigenvalues) if (!Number.isFinite(e.re) || !Number.isFinite(e.im)) allFinite = false;
          const eigRows = [
            ...j.eigenvalues.map((e) => ({ re: e.re, im: e.im, kind: 'step Jacobian' })),
            ...Array.from(j.abar, (a) => ({ re: a, im: 0, kind: 'Abar' })),
          ];
          report.figures.push(
            await saveFigure(
              ctx,
              `step-jacobian-${tag}`,
              eigenSpec(eigRows, `${tag} layer ${last}: eigenvalues of d state_{t+1} / d state_t`),
              `Layer-step Jacobian spectrum, ${tag}`,
              `Eigenvalues (Hessenberg + shifted QR) of the ${j.size} x ${j.size} Jacobian of one recurrent step of layer ${last} (conv state and SSM state of ${channels.length} channels, at position ${pos} of a ${m.task} sequence), with the unit circle, next to the Abar of those channels.`,
            ),
          );
          const nonzero = j.eigenvalues
            .filter((e) => Math.hypot(e.re, e.im) > 1e-3)
            .map((e) => e.re)
            .sort((a, b) => a - b);
          const abarSorted = Array.from(j.abar)
            .filter((a) => a > 1e-3)
            .sort((a, b) => a - b);
          const match = nonzero.length === abarSorted.length ? Math.max(0, ...nonzero.map((v, i) => Math.abs(v - abarSorted[i]))) : NaN;
          jac = {
            size: j.size,
            position: pos,
            channels,
            eigenvalues: j.eigenvalues,
            abar: Array.from(j.abar),
            spectralRadius: spectralRadius(j.eigenvalues),
            maxImag: Math.max(...j.eigenvalues.map((e) => Math.abs(e.im))),
            abarMismatch: match,
          };
          jacTable.push([tag, last, j.size, jac.spectralRadius, jac.maxImag, Number.isNaN(match) ? 'count differs' : match]);
        }
        out.push({
          label: tag,
          task: m.task,
          seqLen: T,
          layers,
          trajectories: { explained: tr.pca.explained, coords: tr.coords.slice(0, TRAJECTORIES) },
          stepJacobian: jac,
        });
      } finally {
        model.dispose();
      }
    }
    ctx.progress('dynamics', models.length, models.length);
    ctx.writeJson('dynamics.json', out);
    ctx.writeJson('trigger.json', triggers);

    // one trigger-delta claim per task x layer, over the seeds that have it
    const claims: Claim[] = [];
    const seedRows: { claim: string; kind: string; value: number; lo: number; hi: number }[] = [];
    const keys = [...new Set(triggers.map((t) => `${t.task}\u0000${t.layer}`))];
    for (const key of keys) {
      const [task, layerText] = key.split('\u0000');
      const layer = Number(layerText);
      const perModel = triggers.filter((t) => t.task === task && t.layer === layer);
      const s = acrossSeeds(perModel.map(seedValueOf), { minSeeds: ctx.config.claimSeeds });
      const ctlValues = perModel.map((t) => t.control);
      const ctlInterval = seedInterval(ctlValues, s.level);
      const perSeed = `per seed (trigger minus other tokens): ${perSeedText(s, fmt)}`;
      const test = s.enough
        ? `${s.combination} (each seed: two-sided two-sample permutation test of trigger vs other positions, ${perModel[0].nPerm} permutations), combined floor ${fmt(s.pFloor!)}; the p's are two-sided, so the combination does not ask that the seeds agree in sign: the effect condition (t interval over seeds) does; ${perSeed}`
        : `only ${s.seeds} seed(s) passed the learning gate; a claim needs ${ctx.config.claimSeeds} (not tested); ${perSeed}`;
      // two-sided, as before: the trigger's delta differs from the control token's, whichever way
      const holds = s.seeds >= 2 && (s.interval[0] > ctlInterval[1] || s.interval[1] < ctlInterval[0]);
      claims.push({
        statement: `${task} (${s.seeds} seed${s.seeds === 1 ? '' : 's'}) layer ${layer}: mean delta at the trigger token minus at other tokens`,
        estimate: s.mean,
        interval: s.interval,
        level: s.level,
        test,
        ...(s.p !== undefined ? { p: s.p, pFloor: s.pFloor } : {}),
        control: `the same difference for a random content token per seed (${perModel.map((t) => `${t.model}: token ${t.controlToken}`).join(', ')}); mean and t interval over seeds`,
        controlEstimate: mean(ctlValues),
        ...(Number.isFinite(ctlInterval[0]) ? { controlInterval: ctlInterval } : {}),
        perSeed: s.perSeed.map(({ seed, model, value, p }) => ({ seed, model, value, p })),
        ...pending(holds, `the ${Math.round(s.level * 100)}% t interval over seeds is disjoint from the control token's (two-sided)`),
      });
      const label = `${task} layer ${layer}`;
      for (const t of perModel)
        seedRows.push({ claim: label, kind: `seed ${t.seed}`, value: t.difference, lo: t.difference, hi: t.difference });
      if (Number.isFinite(s.interval[0]))
        seedRows.push({ claim: label, kind: 'mean over seeds (t interval)', value: s.mean, lo: s.interval[0], hi: s.interval[1] });
    }
    report.claims.push(...claims);
    if (seedRows.length)
      report.figures.push(
        await saveFigure(
          ctx,
          'trigger-delta-seeds',
          intervalChart(seedRows, {
            title: 'Mean delta at the trigger minus at other tokens, per seed',
            category: 'claim',
            value: 'value',
            lo: 'lo',
            hi: 'hi',
            color: 'kind',
            valueTitle: 'delta (trigger) - delta (other)',
          }),
          'Trigger delta per seed',
          "Each seed's difference of the channel-mean step size delta at the induction trigger and at other tokens (points), beside the task's mean over seeds with its 95% t interval (the seed is the unit), per layer.",
        ),
      );
    report.tables.push({
      title: 'Trigger delta per model and layer (the claims combine these over seeds)',
      columns: [
        'model',
        'layer',
        'trigger - other',
        'CI low',
        'CI high',
        'trigger positions',
        'other positions',
        'p (permutation)',
        'control token',
        'control difference',
      ],
      rows: triggers.map((t) => [
        t.model,
        t.layer,
        t.difference,
        t.interval[0],
        t.interval[1],
        t.nTrigger,
        t.nOther,
        t.p,
        t.controlToken,
        t.control,
      ]),
    });
    if (claims.length)
      report.notes.push(
        `The trigger-delta claims are per task and layer over seeds (every gate-passing seed; a claim needs ${ctx.config.claimSeeds}): the estimate is the mean over seeds of trigger minus other-token delta, its interval Student's t over seeds, and p Fisher's combination of the seeds' permutation p-values (interp/seeds.ts); each model's own test is in the per-model table and trigger.json.`,
      );
    report.tables.push({
      title: 'Eigenvalues of the layer-step Jacobian (d (conv state, SSM state)_{t+1} / d (...)_t)',
      columns: ['model', 'layer', 'size', 'spectral radius', 'max |Im|', 'max |eigenvalue - Abar| (nonzero eigenvalues)'],
      rows: jacTable,
    });
    report.notes.push(
      'The conv state only shifts (a nilpotent block) and the new SSM state depends on the old one only through diag(Abar), while u, delta, B and C depend on the conv state alone: the step Jacobian is block-triangular, so its spectrum is Abar plus zeros even with the input dependence. The table checks this numerically; the zero eigenvalues are defective (Jordan blocks of the conv shift) and come out of QR only to about eps^(1/K).',
    );
    report.summary = `${models.length} model(s); smallest time constant ${fmt(minTau)} tokens (all positive: ${minTau > 0}); eigenvalues finite: ${allFinite}; ${claims.length} trigger-delta claim(s) over seeds (${triggers.length} per-model tests), ${claims.filter((x) => x.effect).length} meeting their effect condition (support is decided across the run, step 13).`;
    saveReport(ctx, report);
    return report.summary;
  },
};
