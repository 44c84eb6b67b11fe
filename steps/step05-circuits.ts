// Step 5: candidate circuits per model (interp/circuits.ts): grad x activation attribution at every
// layer's residual output and SSM state, the residual and state attribution circuits, and, when
// steps 3 and 4 have run, an SAE subspace and a probe channel set at their hook; each with random
// controls of the same size. Writes circuits.json (Circuit[]) and attribution.json.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import { jaccard, topByMagnitude } from '../interp/attribution.ts';
import { attributionCircuits, attributionMaps, dominantChannels, probeCircuit, saeCircuit, type CircuitSpec } from '../interp/circuits.ts';
import { fmt, barChart, heatmap } from '../interp/report/index.ts';
import { getTask } from '../interp/tasks/index.ts';
import { PROBES_DIR, SAE_DIR, loadProbeRecords, loadSaeRecord, loadSaeRecords, type Circuit } from './artefacts.ts';
import { studyModels } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

/** The task variable a circuit should carry: the answer. */
const ANSWER_LABELS = ['copyToken', 'value'];

export const circuitsStep: Step = {
  ...stepInfo('circuits'),
  version: 1,
  needs: [1, 3, 4],
  configKeys: ['circuit', 'patching'],
  appliesToModel: false,
  async run(ctx) {
    const { circuit: cc, patching: pc } = ctx.config;
    const models = studyModels(ctx);
    const circuits: Circuit[] = [];
    const attribution: { model: string; hook: string; layer: number; kind: string; values: number[] }[] = [];
    const overlapRows: { model: string; pair: string; jaccard: number }[] = [];
    const report = ctx.report();
    const haveSae = existsSync(join(ctx.runDir, SAE_DIR, 'saes.json'));
    const haveProbes = existsSync(join(ctx.runDir, PROBES_DIR, 'probes.json'));
    const heatTasks = new Set<string>();
    for (const [mIdx, m] of models.entries()) {
      ctx.progress('attribution', mIdx, models.length);
      const model = await m.load();
      try {
        const task = getTask(m.task);
        // attribution on its own batch; steps 6 and 7 test the circuits on other examples
        const batch = task.generate(m.taskOptions as never, ctx.rng(`attribution/${m.label}`), pc.examples);
        const maps = await attributionMaps(model, m.task, batch);
        for (const a of maps) attribution.push({ model: m.label, hook: a.hook, layer: a.layer, kind: a.kind, values: [...a.values] });
        const rng = ctx.rng(`controls/${m.label}`);
        const specs: CircuitSpec[] = attributionCircuits(model, maps, cc.size, cc.controls, rng);
        const residHook = specs[0].hook;
        const sets: Record<string, number[]> = { attribution: specs[0].channels };
        if (haveSae) {
          const rec = loadSaeRecords(ctx.runDir).find((r) => r.task === m.task && r.seed === m.seed && r.hook === residHook);
          const label = rec && (ANSWER_LABELS.find((l) => rec.topLatents[l]?.length) ?? Object.keys(rec.topLatents)[0]);
          if (rec && label) {
            const top = rec.topLatents[label].slice(0, cc.size);
            const sae = await loadSaeRecord(ctx.runDir, rec, { backend: mi.cpuBackend() });
            const W = await sae.params.W_dec.data();
            const d = sae.params.W_dec.shape[1];
            const rows = top.map((t) => Array.from(W.subarray(t.latent * d, (t.latent + 1) * d)));
            sae.dispose();
            const c = saeCircuit(
              model,
              residHook,
              'scored',
              rows,
              top.map((t) => t.r),
              cc.controls,
              rng,
            );
            if (c) {
              specs.push(c);
              sets.sae = dominantChannels(c.directions!, cc.size);
            }
          }
        }
        if (haveProbes) {
          const probes = loadProbeRecords(ctx.runDir).filter(
            (r) => r.task === m.task && r.seed === m.seed && r.hook === residHook && r.features === 'activations' && r.selected.length,
          );
          const best = probes.sort(
            (a, b) => (ANSWER_LABELS.includes(b.label) ? 1 : 0) - (ANSWER_LABELS.includes(a.label) ? 1 : 0) || b.heldOut - a.heldOut,
          )[0];
          const c = best && probeCircuit(model, residHook, 'scored', best.selected, best.coefficients, cc.size, cc.controls, rng);
          if (c) {
            specs.push(c);
            sets.probe = c.channels;
          }
        }
        const names = Object.keys(sets);
        for (let i = 0; i < names.length; i++)
          for (let j = i + 1; j < names.length; j++) {
            overlapRows.push({ model: m.label, pair: `${names[i]} / ${names[j]}`, jaccard: jaccard(sets[names[i]], sets[names[j]]) });
          }
        for (const s of specs) {
          const kind = s.hook.endsWith('hook_h') ? 'state' : 'resid';
          circuits.push({
            task: m.task,
            seed: m.seed,
            id: `${m.label}/${s.source}-${kind}`,
            hook: s.hook,
            positions: s.positions,
            channels: s.channels,
            ...(s.directions ? { directions: s.directions } : {}),
            source: s.source,
            controls: s.controls.map((c) => ({ channels: c.channels, ...(c.directions ? { directions: c.directions } : {}) })),
            ...(s.scores ? { scores: s.scores } : {}),
          });
        }
        if (!heatTasks.has(m.task)) {
          heatTasks.add(m.task);
          const rows = maps.filter((a) => a.kind === 'resid').map((a) => [...a.values]);
          report.figures.push(
            await saveFigure(
              ctx,
              `attribution-${m.label}`,
              heatmap(rows, {
                title: `${m.label}: grad x activation, residual output`,
                rowTitle: 'layer',
                colTitle: 'channel',
                valueTitle: 'attribution',
                scheme: 'redblue',
                width: 420,
                height: 30 * rows.length + 40,
              }),
              `Attribution per channel per layer (${m.label})`,
              `Mean over scored positions of activation times d loss / d activation at blocks.i.hook_resid_post, ${pc.examples} sequences; negative values lower the loss when the channel is present (zeroing it would raise the loss).`,
            ),
          );
        }
      } finally {
        model.dispose();
      }
    }
    ctx.progress('attribution', models.length, models.length);
    // overlap of the sources against the overlap of random sets of the same size
    const k = cc.size;
    if (overlapRows.length) {
      const hidden = attribution.find((a) => a.kind === 'resid')!.values.length;
      const rng = ctx.rng('overlap-null');
      let nullJ = 0;
      for (let r = 0; r < 200; r++)
        nullJ +=
          jaccard(
            topByMagnitude(
              Array.from({ length: hidden }, () => rng.uniform()),
              k,
            ),
            topByMagnitude(
              Array.from({ length: hidden }, () => rng.uniform()),
              k,
            ),
          ) / 200;
      report.figures.push(
        await saveFigure(
          ctx,
          'overlap',
          barChart(
            [
              ...overlapRows,
              ...[...new Set(overlapRows.map((o) => o.model))].map((model) => ({ model, pair: 'random sets', jaccard: nullJ })),
            ],
            {
              title: 'Overlap of the circuit sources (Jaccard of channel sets)',
              x: 'model',
              y: 'jaccard',
              color: 'pair',
              yTitle: 'Jaccard',
            },
          ),
          'Overlap of attribution, SAE and probe channels',
          `Jaccard overlap of the ${k} channels each source picks at the residual hook (SAE: the channels its orthonormalised latent directions load on most); "random sets" is the mean overlap of two random ${k}-channel sets (${fmt(nullJ)}).`,
        ),
      );
      report.tables.push({
        title: 'Source overlap',
        columns: ['model', 'pair', 'Jaccard'],
        rows: overlapRows.map((o) => [o.model, o.pair, o.jaccard]),
      });
    } else {
      report.notes.push(
        'No SAE or probe results in this run (steps 3 and 4), so only attribution circuits were made and no overlap is shown.',
      );
    }
    report.tables.push({
      title: 'Candidate circuits',
      columns: ['id', 'hook', 'positions', 'size', 'source', 'controls'],
      rows: circuits.map((c) => [
        c.id,
        c.hook,
        typeof c.positions === 'object' && !Array.isArray(c.positions) ? `label ${c.positions.label}` : String(c.positions),
        c.directions?.length ?? c.channels.length,
        c.source,
        c.controls.length,
      ]),
    });
    report.notes.push(
      `Each circuit has ${cc.controls} random controls of the same size on the same hook and positions: random channels (avoiding the circuit's) for channel sets, random orthonormal subspaces for SAE subspaces. The state circuit sits at hook_h at the positions the answer is copied from (induction: the trigger's follower), in the layer whose top-${k} attribution mass is largest.`,
    );
    ctx.writeJson('circuits.json', circuits);
    ctx.writeJson('attribution.json', attribution);
    report.summary = `${circuits.length} candidate circuits for ${models.length} models (${[...new Set(circuits.map((c) => c.source))].join(', ')}), ${cc.size} coordinates each, ${cc.controls} controls each.`;
    saveReport(ctx, report);
    return report.summary;
  },
};
