// Step 11: cross-task transfer (interp/transfer.ts). For every ordered pair of tasks (A, B), using
// the first seed's model of each:
//  - A's SAE (step 3, first SAE kind) on B's activations of the same hook: FVU, L0, and variance
//    explained relative to B's own SAE, against B's SAE on channel-shuffled activations;
//  - a probe of the shared answer bit (interp/transfer.ts answerUpperHalf) fitted on A's last-layer
//    residual stream and scored on B's, next to A's in-task score, a shuffled-label probe and chance;
//  - A's attribution circuit's channels (step 5, last-layer residual) mean-ablated on B's model at
//    B's circuit positions, relative to B's own circuit, against B's random controls.
// The diagonal of every matrix is the in-task value.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import { expandHookPatterns } from '../interp/collect.ts';
import { fmt, heatmap, intervalChart, type Claim } from '../interp/report/index.ts';
import type { Sae, SaeKind } from '../interp/sae/index.ts';
import { pending } from '../interp/claims.ts';
import { pairedPermutationFloor, pairedPermutationTest } from '../interp/stats.ts';
import { getTask, type AnyTaskOptions } from '../interp/tasks/index.ts';
import {
  answerUpperHalf,
  bootstrapRows,
  channelAblationDrops,
  fitTransferProbe,
  saeTransfer,
  scoreTransferProbe,
  type Estimate,
  type ProbeSource,
} from '../interp/transfer.ts';
import { CIRCUITS_DIR, loadActivations, loadCollections, loadSaeRecord, loadSaeRecords, loadTokens, type Circuit } from './artefacts.ts';
import { firstSeeds, studyModels } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

const CIRCUIT_KIND = 'attribution-resid';

type Row = Record<string, number | string | null>;

export const transferStep: Step = {
  ...stepInfo('transfer'),
  version: 3,
  needs: [1, 2, 3, 5],
  configKeys: ['transfer', 'sae', 'train', 'probes', 'permutations'],
  appliesToModel: false,
  async run(ctx) {
    const tc = ctx.config.transfer;
    const report = ctx.report();
    // one model per task: its lowest seed
    const models = firstSeeds(studyModels(ctx), 1);
    const tasks = models.map((m) => m.task);
    const collections = loadCollections(ctx.runDir);
    const collectionOf = (task: string, seed: number) => {
      const c = collections.find((x) => x.task === task && x.seed === seed);
      if (!c) throw new Error(`step 11: no step-2 collection for ${task}-s${seed}`);
      return c;
    };
    const claims: Claim[] = [];
    const pairLabel = (a: string, b: string) => `${a} → ${b}`;

    // --- SAEs
    const kind = ctx.config.sae.kinds[0] as SaeKind;
    const saeHook = expandHookPatterns(ctx.config.sae.hooks, ctx.config.train.layers)[0];
    const saes = new Map<string, Sae>();
    const saeRows: Row[] = [];
    try {
      for (const m of models) {
        const rec = loadSaeRecords(ctx.runDir).find((r) => r.task === m.task && r.seed === m.seed && r.hook === saeHook && r.kind === kind);
        if (rec) saes.set(m.task, await loadSaeRecord(ctx.runDir, rec, { backend: mi.cpuBackend() }));
      }
      for (const b of models) {
        const own = saes.get(b.task);
        if (!own) continue;
        const c = collectionOf(b.task, b.seed);
        const acts = await loadActivations(ctx.runDir, c, saeHook);
        const group = Int32Array.from({ length: acts.rows }, (_, r) => Math.floor(r / c.seqLen));
        for (const a of models) {
          const sae = saes.get(a.task);
          if (!sae) continue;
          const t = await saeTransfer(sae, own, acts.data, ctx.rng(`sae/${a.task}/${b.task}`), tc.bootstrap, group);
          saeRows.push({
            from: a.task,
            to: b.task,
            fvu: t.fvuTransfer,
            fvuOwn: t.fvuOwn,
            fvuControl: t.fvuControl,
            l0: t.l0Transfer,
            l0Own: t.l0Own,
            ratio: t.ratio.estimate,
            lo: t.ratio.interval[0],
            hi: t.ratio.interval[1],
            control: t.controlRatio.estimate,
            controlLo: t.controlRatio.interval[0],
            controlHi: t.controlRatio.interval[1],
          });
        }
      }
    } finally {
      for (const s of saes.values()) s.dispose();
    }
    const matrix = (rows: Row[], field: string) =>
      tasks.map((a) =>
        tasks.map((b) => {
          const r = rows.find((x) => x.from === a && x.to === b);
          return r ? (r[field] as number) : NaN;
        }),
      );
    const axes = `rows: from (${tasks.join(', ')}); columns: to, same order`;
    if (saeRows.length) {
      report.figures.push(
        await saveFigure(
          ctx,
          'sae-fvu',
          heatmap(matrix(saeRows, 'fvu'), {
            title: `FVU of task A's SAE on task B's ${saeHook}`,
            rowTitle: 'SAE of task (A)',
            colTitle: 'activations of task (B)',
            valueTitle: 'FVU',
            scheme: 'viridis',
            width: 240,
            height: 240,
          }),
          'SAE transfer: fraction of variance unexplained',
          `${axes}. Diagonal: each task's own ${kind} SAE (step 3) on its own activations.`,
        ),
      );
      const off = saeRows.find((r) => r.from !== r.to);
      if (off) {
        claims.push({
          statement: `SAE transfer ${pairLabel(off.from as string, off.to as string)}: variance explained by A's SAE relative to B's own`,
          estimate: off.ratio as number,
          interval: [off.lo as number, off.hi as number],
          level: 0.95,
          test: `bootstrap over sequences (${tc.bootstrap} resamples); no p-value, so never supported under the run-wide policy`,
          control: "B's own SAE on B's activations with channels shuffled (same values, another basis)",
          controlEstimate: off.control as number,
          controlInterval: [off.controlLo as number, off.controlHi as number],
          ...pending((off.lo as number) > (off.controlHi as number), "interval above the shuffled-basis control's"),
        });
      }
      report.tables.push({
        title: 'SAE transfer',
        columns: ['from', 'to', 'FVU', 'own FVU', 'L0', 'own L0', 'VE ratio', 'CI', 'control ratio'],
        rows: saeRows.map((r) => [
          r.from as string,
          r.to as string,
          r.fvu as number,
          r.fvuOwn as number,
          r.l0 as number,
          r.l0Own as number,
          r.ratio as number,
          `${fmt(r.lo as number)} to ${fmt(r.hi as number)}`,
          r.control as number,
        ]),
      });
    } else report.notes.push(`No step-3 ${kind} SAEs at ${saeHook} for the first seed's models: SAE transfer not measured.`);

    ctx.log(`SAE transfer: ${saeRows.length} pairs`);
    // --- probes of the shared answer bit
    const probeHook = `blocks.${ctx.config.train.layers - 1}.hook_resid_post`;
    const sources = new Map<string, ProbeSource>();
    for (const m of models) {
      const c = collectionOf(m.task, m.seed);
      const acts = await loadActivations(ctx.runDir, c, probeHook);
      const tokens = await loadTokens(ctx.runDir, c);
      sources.set(m.task, { acts: acts.data, d: acts.dim, variable: answerUpperHalf(m.task, m.taskOptions, tokens.labels) });
    }
    const probeRows: Row[] = [];
    const probeOpts = { maxRows: tc.maxRows, folds: ctx.config.probes.folds, nLambda: ctx.config.probes.nLambda, nBoot: tc.bootstrap };
    for (const a of tasks) {
      const fit = fitTransferProbe(sources.get(a)!, ctx.rng(`probe/${a}`), probeOpts);
      for (const b of tasks) {
        const t = scoreTransferProbe(fit, sources.get(b)!, ctx.rng(`probe/${a}/${b}`), probeOpts);
        const test = pairedPermutationTest(t.correct, t.controlCorrect, ctx.rng(`probe-perm/${a}/${b}`), {
          nPerm: ctx.config.permutations,
          alternative: 'greater',
        });
        // the diagonal is the in-task score on A's held-out rows (B = A's rows include the training rows)
        const score: Estimate = a === b ? fit.inTask : t.transfer;
        probeRows.push({
          from: a,
          to: b,
          accuracy: score.estimate,
          lo: score.interval[0],
          hi: score.interval[1],
          inTask: fit.inTask.estimate,
          transfer: t.transfer.estimate,
          control: t.control.estimate,
          controlLo: t.control.interval[0],
          controlHi: t.control.interval[1],
          chance: t.chance,
          p: a === b ? NaN : test.pValue,
          nTrain: fit.nTrain,
          nTest: a === b ? fit.nTestA : t.nTestB,
          variable: sources.get(b)!.variable.name,
        });
      }
    }
    report.figures.push(
      await saveFigure(
        ctx,
        'probe-accuracy',
        heatmap(matrix(probeRows, 'accuracy'), {
          title: 'Answer-bit probe: fitted on A, scored on B',
          rowTitle: 'probe fitted on task (A)',
          colTitle: 'scored on task (B)',
          valueTitle: 'accuracy',
          scheme: 'viridis',
          width: 240,
          height: 240,
        }),
        'Probe transfer',
        `${axes}. The variable is "the answer token is in the upper half of the task's answer range" at scored positions (${probeHook}); diagonal: held-out rows of the same task; chance 0.5 (class-balanced rows).`,
      ),
    );
    const offP = probeRows.find((r) => r.from !== r.to)!;
    if (offP) {
      claims.push({
        statement: `Probe transfer ${pairLabel(offP.from as string, offP.to as string)}: answer-bit probe accuracy on B (in-task on A ${fmt(offP.inTask as number)})`,
        estimate: offP.accuracy as number,
        interval: [offP.lo as number, offP.hi as number],
        level: 0.95,
        test: `one-sided paired sign-flip test per row, probe vs shuffled-label probe (${ctx.config.permutations} flips)`,
        p: offP.p as number,
        pFloor: pairedPermutationFloor(offP.nTest as number, ctx.config.permutations, 'greater'),
        control: 'the same probe fitted on shuffled labels of A, scored on the same rows of B (chance 0.5)',
        controlEstimate: offP.control as number,
        controlInterval: [offP.controlLo as number, offP.controlHi as number],
        ...pending((offP.lo as number) > (offP.controlHi as number), "interval above the shuffled-label control's"),
      });
    }
    report.tables.push({
      title: 'Probe transfer (answer bit)',
      columns: ['from', 'to', 'accuracy', 'CI', 'in-task (A)', 'shuffled control', 'chance', 'p', 'test rows'],
      rows: probeRows.map((r) => [
        r.from as string,
        r.to as string,
        r.accuracy as number,
        `${fmt(r.lo as number)} to ${fmt(r.hi as number)}`,
        r.inTask as number,
        r.control as number,
        r.chance as number,
        r.p as number,
        r.nTest as number,
      ]),
    });

    ctx.log(`probe transfer: ${probeRows.length} pairs`);
    // --- circuits
    const circuits: Circuit[] = existsSync(join(ctx.runDir, CIRCUITS_DIR, 'circuits.json'))
      ? ctx.readJson<Circuit[]>(5, 'circuits.json')
      : [];
    const circuitOf = (task: string, seed: number) =>
      circuits.find((c) => c.task === task && c.seed === seed && c.id.endsWith(`/${CIRCUIT_KIND}`) && c.channels.length);
    const circuitRows: Row[] = [];
    for (const b of models) {
      const own = circuitOf(b.task, b.seed);
      if (!own) continue;
      const donors = models.map((a) => ({ a, c: circuitOf(a.task, a.seed) })).filter((x) => x.c && x.c.hook === own.hook);
      if (!donors.length) continue;
      const model = await b.load();
      try {
        const batch = getTask(b.task).generate(b.taskOptions as unknown as AnyTaskOptions, ctx.rng(`circuit-batch/${b.task}`), tc.examples);
        const controls = own.controls.map((c) => c.channels).filter((c) => c.length);
        const sets = [own.channels, ...donors.map((x) => x.c!.channels), ...controls];
        const drops = await channelAblationDrops(model, batch, own.hook, own.positions, sets);
        const ownDrop = drops[0],
          ctrlDrops = drops.slice(1 + donors.length);
        const n = ownDrop.length;
        const meanAt = (x: Float64Array, idx: ArrayLike<number> | null) => {
          const k = idx ? idx.length : n;
          let s = 0;
          for (let i = 0; i < k; i++) s += x[idx ? idx[i] : i];
          return s / k;
        };
        const ctrlMean = Float64Array.from(
          { length: n },
          (_, i) => ctrlDrops.reduce((s, d) => s + d[i], 0) / Math.max(ctrlDrops.length, 1),
        );
        donors.forEach(({ a }, k) => {
          const drop = drops[1 + k];
          // a ratio to B's own effect only means something where that effect is there
          const relative = (x: Float64Array) => (idx: ArrayLike<number> | null) => {
            const own = meanAt(ownDrop, idx);
            return own > 0 ? meanAt(x, idx) / own : NaN;
          };
          const ratio = bootstrapRows(n, relative(drop), ctx.rng(`circuit-boot/${a.task}/${b.task}`), tc.bootstrap);
          const ctrl = bootstrapRows(n, relative(ctrlMean), ctx.rng(`circuit-boot-ctrl/${a.task}/${b.task}`), tc.bootstrap);
          const test = pairedPermutationTest(drop, ctrlMean, ctx.rng(`circuit-perm/${a.task}/${b.task}`), {
            nPerm: ctx.config.permutations,
            alternative: 'greater',
          });
          circuitRows.push({
            from: a.task,
            to: b.task,
            hook: own.hook,
            drop: meanAt(drop, null),
            ownDrop: meanAt(ownDrop, null),
            controlDrop: meanAt(ctrlMean, null),
            ratio: ratio.estimate,
            lo: ratio.interval[0],
            hi: ratio.interval[1],
            control: ctrl.estimate,
            controlLo: ctrl.interval[0],
            controlHi: ctrl.interval[1],
            p: test.pValue,
            n,
          });
        });
      } finally {
        model.dispose();
      }
      ctx.progress('circuit transfer', models.indexOf(b) + 1, models.length);
    }
    if (circuitRows.length) {
      report.figures.push(
        await saveFigure(
          ctx,
          'circuit-drop',
          heatmap(matrix(circuitRows, 'drop'), {
            title: "Accuracy drop on B when A's circuit channels are ablated",
            rowTitle: 'circuit of task (A)',
            colTitle: 'model and data of task (B)',
            valueTitle: 'accuracy drop',
            scheme: 'viridis',
            width: 240,
            height: 240,
          }),
          'Circuit transfer',
          `${axes}. Mean ablation of A's ${CIRCUIT_KIND} channels (step 5) on B's model at B's circuit positions, ${tc.examples} sequences; diagonal: B's own circuit.`,
        ),
      );
      const ivRows = circuitRows
        .filter((r) => r.from !== r.to)
        .flatMap((r) => [
          { pair: pairLabel(r.from as string, r.to as string), series: "A's circuit / B's own", value: r.ratio, lo: r.lo, hi: r.hi },
          {
            pair: pairLabel(r.from as string, r.to as string),
            series: "random channels / B's own",
            value: r.control,
            lo: r.controlLo,
            hi: r.controlHi,
          },
        ])
        .filter((r) => Number.isFinite(r.value as number));
      if (ivRows.length) {
        report.figures.push(
          await saveFigure(
            ctx,
            'circuit-ratio',
            intervalChart(ivRows as Row[], {
              title: "How much of B's circuit effect A's channels reproduce",
              category: 'pair',
              value: 'value',
              lo: 'lo',
              hi: 'hi',
              color: 'series',
              valueTitle: "accuracy drop relative to B's own circuit",
            }),
            'Circuit transfer ratios',
            "Accuracy drop from ablating A's circuit channels on B, divided by the drop from B's own circuit (bootstrap over sequences), next to random channel sets of the same size.",
          ),
        );
      }
      const offC = circuitRows.find((r) => r.from !== r.to && Number.isFinite(r.ratio as number));
      if (offC) {
        claims.push({
          statement: `Circuit transfer ${pairLabel(offC.from as string, offC.to as string)}: accuracy drop from A's channels relative to B's own circuit`,
          estimate: offC.ratio as number,
          interval: [offC.lo as number, offC.hi as number],
          level: 0.95,
          test: `one-sided paired sign-flip test per sequence, A's channels vs random channel sets (${ctx.config.permutations} flips)`,
          p: offC.p as number,
          pFloor: pairedPermutationFloor(offC.n as number, ctx.config.permutations, 'greater'),
          control: "random channel sets of the same size (step 5's controls), relative to B's own circuit",
          controlEstimate: offC.control as number,
          controlInterval: [offC.controlLo as number, offC.controlHi as number],
          ...pending((offC.lo as number) > (offC.controlHi as number), "interval above the random-channel control's"),
        });
      }
      report.tables.push({
        title: 'Circuit transfer',
        columns: ['from', 'to', 'hook', 'drop', 'own drop', 'random drop', 'ratio', 'CI', 'control ratio', 'p'],
        rows: circuitRows.map((r) => [
          r.from as string,
          r.to as string,
          r.hook as string,
          r.drop as number,
          r.ownDrop as number,
          r.controlDrop as number,
          r.ratio as number,
          `${fmt(r.lo as number)} to ${fmt(r.hi as number)}`,
          r.control as number,
          r.p as number,
        ]),
      });
    } else report.notes.push(`No step-5 ${CIRCUIT_KIND} circuits on a shared hook: circuit transfer not measured.`);

    if (circuitRows.some((r) => !Number.isFinite(r.ratio as number)))
      report.notes.push(
        "Where ablating B's own circuit does not lower B's accuracy on average, a ratio to it is undefined and left empty (null); the drops themselves are in the table.",
      );
    report.notes.push(
      "Each task has its own model (trained from scratch, same shape), so transfer asks whether two independently trained models put the same thing in the same coordinates; nothing forces them to, and the controls say what a wrong basis or random channels give. The shared probe variable is the answer bit (copyToken for induction and selective copying, value for MQAR: the answer token in the upper half of the task's answer range).",
    );
    report.claims.push(...claims);
    ctx.writeJson('transfer.json', { tasks, saeHook, probeHook, sae: saeRows, probes: probeRows, circuits: circuitRows });
    const offDiag = (rows: Row[], f: string) =>
      rows
        .filter((r) => r.from !== r.to)
        .map((r) => fmt(r[f] as number))
        .join(', ');
    report.summary = `SAE variance-explained ratios off the diagonal ${offDiag(saeRows, 'ratio') || 'n/a'}; probe accuracy off the diagonal ${offDiag(probeRows, 'accuracy')} (chance 0.5); circuit ratios ${offDiag(circuitRows, 'ratio') || 'n/a'}.`;
    // NaN is not JSON: undefined values (e.g. a ratio to a zero effect) show as n/a
    for (const t of report.tables) t.rows = t.rows.map((r) => r.map((v) => (typeof v === 'number' && !Number.isFinite(v) ? 'n/a' : v)));
    saveReport(ctx, report);
    return report.summary;
  },
};
