// Step 6: necessity and sufficiency of the step-5 circuits (interp/patching.ts), each next to random
// sites of the same size on the same hook and positions.
//   necessity    zero, mean and resample ablation of the circuit on held-out sequences: accuracy
//                drop and loss increase at the scored positions
//   sufficiency  the clean run's circuit values patched into a corrupted run (the copied token
//                replaced, so the answer changes): fraction of the clean-vs-corrupted logit
//                difference restored; for state circuits the SSM state is replaced at the chosen
//                positions and the scan continues from it
// Intervals: paired bootstrap over sequences; p: paired sign-flip permutation test circuit minus
// control (one-sided, circuit larger); Holm across every test of the step.
// With --model (no step 5), the circuits come from a grad x activation attribution on the
// checkpoint here, on sequences other than the ones patched.
import type { CircuitSpec } from '../interp/circuits.ts';
import {
  ANSWER_SOURCE,
  ablate,
  ablationEdit,
  cacheActivations,
  compareWithControls,
  corruptAnswers,
  evalSet,
  idsOf,
  outcome,
  patchClean,
  positionMask,
  rolledBatch,
  type AblationKind,
  type Comparison,
} from '../interp/patching.ts';
import { fmt, intervalChart, type Claim } from '../interp/report/index.ts';
import { pending } from '../interp/claims.ts';
import { holm, mean, pairedPermutationFloor } from '../interp/stats.ts';
import { getTask } from '../interp/tasks/index.ts';
import { circuitsFor } from './circuits.ts';
import { patchedModels } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

interface EffectRow {
  model: string;
  circuit: string;
  hook: string;
  source: string;
  size: number;
  effect: string;
  metric: string;
  controls: number;
  comparison: Comparison;
  accuracyDrop?: [number, number];
  pHolm?: number;
}

const circuitName = (c: CircuitSpec) => `${c.source}-${c.hook.endsWith('hook_h') ? 'state' : 'resid'}`;

export const patchingStep: Step = {
  ...stepInfo('patching'),
  version: 1,
  needs: [5],
  configKeys: ['circuit', 'patching'],
  appliesToModel: true,
  async run(ctx) {
    const pc = ctx.config.patching;
    const rows: EffectRow[] = [];
    const models = patchedModels(ctx, pc.seeds);
    const report = ctx.report();
    for (const [mIdx, m] of models.entries()) {
      const model = await m.load();
      try {
        const task = getTask(m.task);
        const source = ANSWER_SOURCE[m.task];
        if (!source) throw new Error(`step 6: no answer corruption defined for task ${m.task} (interp/patching.ts ANSWER_SOURCE)`);
        const circuits = await circuitsFor(ctx, m, model);
        const batch = task.generate(m.taskOptions as never, ctx.rng(`eval/${m.label}`), pc.examples);
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
            circuit: `${m.label}/${circuitName(c)}`,
            hook: c.hook,
            source: c.source,
            size: c.directions?.length ?? c.channels.length,
            controls: nCtl,
          };
          try {
            // zero and resample only for the attribution circuits (time); mean ablation for all
            const kinds: AblationKind[] = c.source === 'attribution' ? ['zero', 'mean', 'resample'] : ['mean'];
            for (const kind of kinds) {
              const edit = await ablationEdit(kind, act, mask, rolled);
              const eff = await ablate(model, ids, set, clean, c, mask, edit);
              const ctl = await Promise.all(controls.map((k) => ablate(model, ids, set, clean, k, mask, edit)));
              const ctlLoss = eff.lossIncrease.map((_, i) => mean(ctl.map((e) => e.lossIncrease[i])));
              const ctlAcc = eff.accuracyDrop.map((_, i) => mean(ctl.map((e) => e.accuracyDrop[i])));
              rows.push({
                ...base,
                effect: `${kind} ablation`,
                metric: 'loss increase',
                comparison: compareWithControls(eff.lossIncrease, ctlLoss, ctx.rng(`stats/${base.circuit}/${kind}`), pc),
                accuracyDrop: [mean(eff.accuracyDrop), mean(ctlAcc)],
              });
            }
            const suff = await patchClean(model, corruptIds, set, clean.logitDiff!, corrupted.logitDiff!, c, mask, act);
            const ctl = await Promise.all(
              controls.map((k) => patchClean(model, corruptIds, set, clean.logitDiff!, corrupted.logitDiff!, k, mask, act)),
            );
            const ctlGained = suff.gained.map((_, i) => mean(ctl.map((e) => e.gained[i])));
            rows.push({
              ...base,
              effect: 'clean patch',
              metric: 'fraction of logit difference restored',
              comparison: compareWithControls(suff.gained, ctlGained, ctx.rng(`stats/${base.circuit}/patch`), { ...pc, ratioTo: suff.gap }),
            });
          } finally {
            act.dispose();
            rolled.dispose();
          }
        }
        ctx.progress(`patching ${m.label} (${mIdx + 1}/${models.length})`, total, total);
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
    const pHolm = holm(rows.map((r) => r.comparison.p));
    rows.forEach((r, i) => {
      r.pHolm = pHolm[i];
    });
    ctx.writeJson('effects.json', rows);

    const ctlWord = (r: EffectRow) =>
      `${r.controls} random ${r.source === 'sae' ? 'subspaces' : 'channel sets'} of equal size (${r.size}) on ${r.hook}, same positions`;
    const claimOf = (r: EffectRow): Claim => ({
      statement: `${r.circuit}: ${r.effect} ${r.metric} exceeds its random control`,
      estimate: r.comparison.estimate,
      interval: r.comparison.interval,
      level: 0.95,
      test: `paired sign-flip permutation test (circuit - control, one-sided, ${pc.permutations} flips); interval: paired bootstrap over sequences (${pc.bootstrap}); difference ${fmt(r.comparison.difference)} [${fmt(r.comparison.differenceInterval[0])}, ${fmt(r.comparison.differenceInterval[1])}]`,
      p: r.comparison.p,
      pFloor: pairedPermutationFloor(pc.examples, pc.permutations, 'greater'),
      control: ctlWord(r),
      controlEstimate: r.comparison.control,
      controlInterval: r.comparison.controlInterval,
      ...pending(r.comparison.differenceInterval[0] > 0, 'difference interval above 0'),
    });
    // the claims: sufficiency and mean ablation of every circuit (zero and resample are in the table)
    const claimed = rows.filter((r) => r.effect === 'clean patch' || r.effect === 'mean ablation');
    // the key claim first: the induction circuit whose patch beats its control by the most (lower bound)
    const key = claimed
      .filter((r) => r.effect === 'clean patch' && (r.circuit.startsWith('induction') || r.model === 'pretrained'))
      .sort((a, b) => b.comparison.differenceInterval[0] - a.comparison.differenceInterval[0])[0];
    report.claims = [...(key ? [key] : []), ...claimed.filter((r) => r !== key)].map(claimOf);

    report.tables.push({
      title: 'Every effect next to its control (Holm across the step)',
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
        'p',
        'p Holm',
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
        r.comparison.p,
        r.pHolm!,
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
          kind: 'random control',
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
          name === 'necessity' ? 'Necessity: ablating the circuit vs random sites' : 'Sufficiency: patching the circuit vs random sites',
          `${metric} for each circuit (95% paired-bootstrap interval over ${pc.examples} held-out sequences) next to the mean over its random controls of equal size on the same hook and positions.`,
        ),
      );
    }
    report.notes.push(
      "Corruption: the token the answer is copied from (induction: the trigger's follower) is replaced in the whole sequence by another token of the same vocabulary range, so the answer changes and the prefix before the source is unchanged. The logit difference is logit(clean answer) - logit(corrupted answer); fraction restored is a ratio of means over sequences.",
    );
    report.notes.push(
      'Mean ablation uses the per-coordinate mean over the covered cells of the evaluation batch; resample ablation takes each coordinate from the next sequence of the batch at the same position. State circuits (hook_h) are edited at their positions only, and the scan continues from the edited state.',
    );
    if (ctx.config.model)
      report.notes.push(
        'With --model, step 5 does not run: circuits come from grad x activation attribution on separate sequences of the checkpoint (interp/circuits.ts attributionCircuits).',
      );
    const k = key?.comparison;
    report.summary = key
      ? `Key claim: ${key.circuit} (${key.size} coordinates of ${key.hook}) restores ${fmt(k!.estimate)} [${fmt(k!.interval[0])}, ${fmt(k!.interval[1])}] of the logit difference vs ${fmt(k!.control)} for random controls; difference ${fmt(k!.difference)} [${fmt(k!.differenceInterval[0])}, ${fmt(k!.differenceInterval[1])}], raw p ${fmt(key.comparison.p)}; ${claimed.filter((r) => claimOf(r).effect).length}/${claimed.length} claims meet their effect condition (support is decided across the run, step 13).`
      : `${rows.length} effects measured; no induction circuit to state the key claim on.`;
    saveReport(ctx, report);
    return report.summary;
  },
};
