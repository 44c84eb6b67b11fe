// Step 11, across models: step 1's first-seed models share no basis, so nothing of one is applied
// to the other's raw coordinates. The same input sequences (half from each task) go through both,
// an orthogonal Procrustes rotation with one scale (interp/align.ts) maps B's last residual onto
// A's, fitted on half of them and measured on the rest against the identity, random rotations and
// fits on re-paired rows; then A's answer-bit probe and A's step-3 SAE are applied to B's held-out
// activations mapped into A's basis, beside the unmapped ones, B's own and the controls.
import * as mi from '../engine/index.ts';
import { applyAlignment, fitAlignment, randomRotation, type Alignment, type Rows } from '../interp/align.ts';
import { pending } from '../interp/claims.ts';
import { balancedRows } from '../interp/probe-eval.ts';
import { barChart, fmt, type Claim, type StepReport } from '../interp/report/index.ts';
import type { Sae, SaeKind } from '../interp/sae/index.ts';
import { mean, pairedPermutationFloor, pairedPermutationTest, quantile } from '../interp/stats.ts';
import { getTask, type AnyTaskOptions } from '../interp/tasks/index.ts';
import {
  answerUpperHalf,
  fitTransferProbe,
  fvuOf,
  lastResidual,
  perGroup,
  saeRowErrors,
  scoreTransferProbe,
  type ProbeSource,
} from '../interp/transfer.ts';
import { loadSaeRecord, loadSaeRecords } from './artefacts.ts';
import type { StudyModel } from './models.ts';
import { saveFigure } from './report-io.ts';
import type { StepContext } from './step.ts';

type Row = Record<string, number | string | null>;
const arrow = (a: string, b: string) => `${a} → ${b}`;
/** a number for a summary line: never "NaN" */
const num = (v: number) => (Number.isFinite(v) ? fmt(v) : 'n/a');

/** The aligned cross-model part of step 11: figures, tables and claims into `report`; returns its summary sentence. */
export async function acrossModels(ctx: StepContext, models: StudyModel[], report: StepReport, claims: Claim[]): Promise<string> {
  const tc = ctx.config.transfer;
  const pairs: [StudyModel, StudyModel][] = [];
  for (let i = 0; i < models.length; i++)
    for (let j = i + 1; j < models.length; j++) {
      const [a, b] = [models[i], models[j]];
      if (a.taskOptions.vocabSize === b.taskOptions.vocabSize && a.taskOptions.seqLen === b.taskOptions.seqLen) pairs.push([a, b]);
      else
        report.notes.push(
          `${a.label} and ${b.label} take different inputs (vocabulary ${a.taskOptions.vocabSize} vs ${b.taskOptions.vocabSize}, length ${a.taskOptions.seqLen} vs ${b.taskOptions.seqLen}): no shared inputs to align them on.`,
        );
    }
  if (!pairs.length) return 'Cross-model transfer: no pair of models with shared inputs.';
  const half = Math.max(2, Math.floor(tc.alignSequences / 4)); // sequences of each task in each half
  const fitRows: Row[] = [],
    probeRows: Row[] = [],
    saeRows: Row[] = [];
  const po = ctx.config.probes;
  const probeOpts = { maxRows: tc.maxRows, folds: po.folds, nLambda: po.nLambda, nBoot: tc.bootstrap };
  for (const [ma, mb] of pairs) {
    const T = ma.taskOptions.seqLen;
    const gen = (m: StudyModel, part: string) =>
      getTask(m.task).generate(
        m.taskOptions as unknown as AnyTaskOptions,
        ctx.rng(`align-data/${ma.label}/${mb.label}/${m.task}/${part}`),
        half,
      );
    const batches = { fitA: gen(ma, 'fit'), fitB: gen(mb, 'fit'), heldA: gen(ma, 'held'), heldB: gen(mb, 'held') };
    const acts = new Map<StudyModel, Record<keyof typeof batches, Float32Array>>();
    for (const m of [ma, mb]) {
      const model = await m.load();
      try {
        const out = {} as Record<keyof typeof batches, Float32Array>;
        for (const k of Object.keys(batches) as (keyof typeof batches)[]) out[k] = await lastResidual(model, batches[k]);
        acts.set(m, out);
      } finally {
        model.dispose();
      }
    }
    const d = acts.get(ma)!.fitA.length / (half * T);
    const rows = (m: StudyModel, ks: (keyof typeof batches)[]): Rows => {
      const parts = ks.map((k) => acts.get(m)![k]);
      return { data: Float32Array.from(parts.flatMap((p) => [...p])), rows: ks.length * half * T, d };
    };
    for (const [A, B] of [
      [ma, mb],
      [mb, ma],
    ] as const) {
      const pair = arrow(A.label, B.label);
      // B's activations into A's basis, fitted on the fit halves of both tasks' sequences
      const fit = fitAlignment(
        { X: rows(B, ['fitA', 'fitB']), Y: rows(A, ['fitA', 'fitB']) },
        { X: rows(B, ['heldA', 'heldB']), Y: rows(A, ['heldA', 'heldB']) },
        ctx.rng(`align/${pair}`),
        tc.alignDraws,
      );
      fitRows.push({
        pair,
        aligned: fit.aligned,
        train: fit.train,
        identity: fit.identity,
        random: mean(fit.random),
        shuffled: mean(fit.shuffled),
        shuffledMax: Math.max(...fit.shuffled),
      });
      const kA = A === ma ? 'A' : 'B',
        kB = B === ma ? 'A' : 'B';
      const fitKey = `fit${kA}` as keyof typeof batches,
        heldKey = `held${kB}` as keyof typeof batches;
      const ownFitKey = `fit${kB}` as keyof typeof batches;
      // B's activations on B's held-out sequences, raw, aligned into A's basis, and randomly rotated there
      const heldB = { data: acts.get(B)![heldKey], rows: half * T, d };
      const aligned = applyAlignment(fit.alignment, heldB);
      const rotated = applyAlignment({ ...fit.alignment, R: randomRotation(d, ctx.rng(`rotation/${pair}`)) } as Alignment, heldB);
      // --- probe: A's on A's model (A's fit-half sequences), scored on B's held-out rows
      const srcA: ProbeSource = {
        acts: acts.get(A)![fitKey],
        d,
        seqLen: T,
        variable: answerUpperHalf(getTask(A.task), A.taskOptions, batches[fitKey].labels),
      };
      const srcBFit: ProbeSource = {
        acts: acts.get(B)![ownFitKey],
        d,
        seqLen: T,
        variable: answerUpperHalf(getTask(B.task), B.taskOptions, batches[ownFitKey].labels),
      };
      const variableB = answerUpperHalf(getTask(B.task), B.taskOptions, batches[heldKey].labels);
      const idx = balancedRows(variableB, tc.maxRows, ctx.rng(`probe-rows/${pair}`));
      const fitA = fitTransferProbe(srcA, ctx.rng(`probe-a/${pair}`), probeOpts);
      const fitOwn = fitTransferProbe(srcBFit, ctx.rng(`probe-b/${pair}`), probeOpts);
      const on = (a: Float32Array) => ({ acts: a, d, seqLen: T, variable: variableB });
      const sAligned = scoreTransferProbe(fitA, on(aligned), idx, ctx.rng(`probe-aligned/${pair}`), tc.bootstrap);
      const sRaw = scoreTransferProbe(fitA, on(heldB.data), idx, ctx.rng(`probe-raw/${pair}`), tc.bootstrap);
      const sOwn = scoreTransferProbe(fitOwn, on(heldB.data), idx, ctx.rng(`probe-own/${pair}`), tc.bootstrap);
      const test = pairedPermutationTest(sAligned.perSequence, sAligned.controlPerSequence, ctx.rng(`probe-test/${pair}`), {
        nPerm: ctx.config.permutations,
        alternative: 'greater',
      });
      const pr = {
        pair,
        aligned: sAligned.accuracy.estimate,
        lo: sAligned.accuracy.interval[0],
        hi: sAligned.accuracy.interval[1],
        raw: sRaw.accuracy.estimate,
        own: sOwn.accuracy.estimate,
        control: sAligned.control.estimate,
        controlLo: sAligned.control.interval[0],
        controlHi: sAligned.control.interval[1],
        p: test.pValue,
        pFloor: pairedPermutationFloor(sAligned.sequences, ctx.config.permutations, 'greater'),
        sequences: sAligned.sequences,
      };
      probeRows.push(pr);
      claims.push({
        statement: `Aligned probe transfer ${pair}: ${A.label}'s answer-bit probe on ${B.label}'s activations rotated into its basis reads ${B.task}'s answer bit with accuracy ${fmt(pr.aligned)} (unaligned ${fmt(pr.raw)}, ${B.label}'s own probe ${fmt(pr.own)})`,
        estimate: pr.aligned,
        interval: [pr.lo, pr.hi],
        level: 0.95,
        test: `one-sided paired sign-flip test over ${pr.sequences} held-out sequences (per-sequence accuracy, probe vs control), ${ctx.config.permutations} flips; interval: bootstrap over sequences`,
        p: pr.p,
        pFloor: pr.pFloor,
        control: 'the same probe fitted on shuffled labels, on the same aligned rows (chance 0.5)',
        controlEstimate: pr.control,
        controlInterval: [pr.controlLo, pr.controlHi],
        ...pending(pr.lo > pr.controlHi, "interval above the shuffled-label control's"),
      });
      // --- SAE: A's step-3 SAE on B's held-out activations, aligned vs a random rotation
      const sae = await firstSeedSae(ctx, A);
      if (sae) {
        try {
          const ownA = { data: acts.get(A)![heldKey], rows: half * T, d };
          const errs = {
            aligned: await saeRowErrors(sae, aligned),
            rotated: await saeRowErrors(sae, rotated),
            raw: await saeRowErrors(sae, heldB.data),
            own: await saeRowErrors(sae, Float32Array.from(ownA.data)),
          };
          const seq = Int32Array.from({ length: half * T }, (_, r) => Math.floor(r / T));
          const perSeq = (e: typeof errs.aligned) => perGroup(e.err, e.total, seq);
          const gain = perSeq(errs.rotated).map((v, i) => v - perSeq(errs.aligned)[i]);
          const t = pairedPermutationTest(gain, null, ctx.rng(`sae-test/${pair}`), {
            nPerm: ctx.config.permutations,
            alternative: 'greater',
          });
          const boot = (e: typeof errs.aligned) => bootFvu(e, seq, ctx.rng(`sae-boot/${pair}`), tc.bootstrap);
          const row = {
            pair,
            aligned: fvuOf(errs.aligned),
            rotated: fvuOf(errs.rotated),
            raw: fvuOf(errs.raw),
            own: fvuOf(errs.own),
            ...boot(errs.aligned),
            ...Object.fromEntries(Object.entries(boot(errs.rotated)).map(([k, v]) => [`r${k}`, v])),
            p: t.pValue,
            pFloor: pairedPermutationFloor(half, ctx.config.permutations, 'greater'),
          } as Row;
          saeRows.push(row);
          claims.push({
            statement: `Aligned SAE transfer ${pair}: ${A.label}'s SAE leaves FVU ${fmt(row.aligned as number)} on ${B.label}'s activations rotated into its basis, below a random rotation's ${fmt(row.rotated as number)} (unaligned ${fmt(row.raw as number)}; on ${A.label}'s own activations of the same inputs ${fmt(row.own as number)})`,
            estimate: row.aligned as number,
            interval: [row.lo as number, row.hi as number],
            level: 0.95,
            test: `one-sided paired sign-flip test over ${half} held-out sequences of per-sequence FVU, random rotation minus aligned, ${ctx.config.permutations} flips; interval: bootstrap over sequences`,
            p: row.p as number,
            pFloor: row.pFloor as number,
            control: "the same SAE on B's activations under a random rotation (centred as the alignment)",
            controlEstimate: row.rotated as number,
            controlInterval: [row.rlo as number, row.rhi as number],
            // below the rotation alone is not enough: an FVU of 1 or more explains nothing of the mapped activations
            ...pending(
              (row.hi as number) < (row.rlo as number) && (row.hi as number) < 1,
              "interval below the random rotation's and below 1 (the SAE explains some of the mapped activations' variance)",
            ),
          });
        } finally {
          sae.dispose();
        }
      }
    }
  }
  report.figures.push(
    await saveFigure(
      ctx,
      'alignment-fit',
      barChart(
        fitRows.flatMap((r) =>
          (
            [
              ['Procrustes (held out)', r.aligned],
              ['identity (raw coordinates)', r.identity],
              ['random rotation', r.random],
              ['fitted on re-paired rows', r.shuffled],
            ] as const
          ).map(([map, v]) => ({ pair: r.pair, map, r2: Math.max(v as number, -1) })),
        ),
        {
          title: "Aligning one model's last residual to another's: held-out R²",
          x: 'pair',
          y: 'r2',
          color: 'map',
          yTitle: 'R² (clipped at -1)',
        },
      ),
      'How well one model maps onto another',
      `Orthogonal Procrustes from B's last residual to A's (interp/align.ts), fitted on ${2 * half} shared input sequences (${half} of each task) and measured on ${2 * half} others: R² of the rotated B against A. Beside it: the raw coordinates (identity), random rotations and rotations fitted on the training rows paired at random (${tc.alignDraws} draws each, means shown).`,
    ),
  );
  report.tables.push({
    title: 'Cross-model alignment (R² of B rotated onto A, last residual)',
    columns: ['B → A basis', 'held-out', 'training rows', 'identity', 'random rotation', 're-paired fit (mean)', 're-paired fit (max)'],
    rows: fitRows.map((r) => [
      r.pair as string,
      r.aligned as number,
      r.train as number,
      r.identity as number,
      r.random as number,
      r.shuffled as number,
      r.shuffledMax as number,
    ]),
  });
  report.tables.push({
    title: 'Cross-model probe transfer (answer bit), after alignment',
    columns: ['A → B', 'aligned', 'CI', 'unaligned', "B's own probe", 'shuffled-label control', 'p', 'sequences'],
    rows: probeRows.map((r) => [
      r.pair as string,
      r.aligned as number,
      `${fmt(r.lo as number)} to ${fmt(r.hi as number)}`,
      r.raw as number,
      r.own as number,
      r.control as number,
      r.p as number,
      r.sequences as number,
    ]),
  });
  if (saeRows.length)
    report.tables.push({
      title: "Cross-model SAE transfer (FVU of A's SAE), after alignment",
      columns: ['A → B', 'aligned', 'CI', 'random rotation', 'unaligned', "A's own activations", 'p'],
      rows: saeRows.map((r) => [
        r.pair as string,
        r.aligned as number,
        `${fmt(r.lo as number)} to ${fmt(r.hi as number)}`,
        r.rotated as number,
        r.raw as number,
        r.own as number,
        r.p as number,
      ]),
    });
  else report.notes.push("No step-3 SAEs of the first seeds' last residual: cross-model SAE transfer not measured.");
  report.notes.push(
    `Step 1's models are trained separately and share no basis: channel j of one has nothing to do with channel j of the other, so the unaligned numbers are shown only as what raw coordinates give. Each model's activations are mapped into the other's basis by a rotation fitted on shared inputs (the same token sequences fed to both, half of each task); the rotation cannot create structure the two do not share, and its held-out R² against the re-paired null says how much they do.`,
  );
  const unaligned = fitRows.filter((r) => !((r.aligned as number) > (r.shuffledMax as number)));
  if (unaligned.length)
    report.notes.push(
      `The fitted map does no better on held-out rows than the best of ${tc.alignDraws} maps fitted on re-paired rows for ${unaligned.map((r) => r.pair).join(', ')} (held-out R² ${unaligned.map((r) => num(r.aligned as number)).join(', ')}): on these inputs the two last residuals share almost no linear geometry, so what is applied through the map has almost nothing to carry. The fitted scale is then near 0 and the mapped activations sit near A's mean: an FVU there is relative to their own small variance, and a transferred probe is expected at chance.`,
    );
  ctx.writeJson('cross-model.json', { alignment: fitRows, probes: probeRows, sae: saeRows });
  return `Cross-model, after alignment: held-out R² ${fitRows.map((r) => `${r.pair} ${num(r.aligned as number)} (re-paired ${num(r.shuffled as number)})`).join(', ')}; aligned probe accuracy ${probeRows.map((r) => `${r.pair} ${num(r.aligned as number)} (unaligned ${num(r.raw as number)})`).join(', ')}.`;
}

/** A percentile bootstrap over sequences of an FVU (a ratio of sums over the resampled sequences' rows). */
function bootFvu(e: { err: Float64Array; total: Float64Array }, seq: Int32Array, rng: mi.Rng, nBoot: number): { lo: number; hi: number } {
  const nSeq = seq[seq.length - 1] + 1;
  const err = new Float64Array(nSeq),
    tot = new Float64Array(nSeq);
  seq.forEach((g, r) => {
    err[g] += e.err[r];
    tot[g] += e.total[r];
  });
  const reps = new Float64Array(nBoot);
  for (let b = 0; b < nBoot; b++) {
    let s = 0,
      t = 0;
    for (let k = 0; k < nSeq; k++) {
      const j = rng.int(0, nSeq);
      s += err[j];
      t += tot[j];
    }
    reps[b] = s / t;
  }
  reps.sort();
  return { lo: quantile(reps, 0.025, true), hi: quantile(reps, 0.975, true) };
}

/** The first SAE step 3 trained on a model's last residual (TopK preferred), on the CPU. */
async function firstSeedSae(ctx: StepContext, m: StudyModel): Promise<Sae | null> {
  const hook = `blocks.${ctx.config.train.layers - 1}.hook_resid_post`;
  let recs: ReturnType<typeof loadSaeRecords>;
  try {
    recs = loadSaeRecords(ctx.runDir).filter((r) => r.task === m.task && r.seed === m.seed && r.hook === hook);
  } catch {
    return null;
  }
  const rec = recs.find((r) => r.kind === ('topk' as SaeKind)) ?? recs[0];
  return rec ? loadSaeRecord(ctx.runDir, rec, { backend: mi.cpuBackend() }) : null;
}
