// Step 5: candidate circuits per model (interp/circuits.ts): grad x activation attribution and
// attribution patching ((clean - corrupted) x gradient of the logit difference) at every layer's
// residual output and SSM state, the residual and state circuits of each, and, when steps 3 and 4
// have run, an SAE subspace and a probe channel set at their hook; each with matched controls of
// the same size (interp/controls.ts). Everything is selected on the selection half of the study
// sequences (splitHalves); steps 6 and 7 test on the other half. How well attribution patching
// predicts the real single-coordinate patch is checked per coordinate (scatter, correlation).
// Writes circuits.json (Circuit[]), attribution.json and attribution-patching-check.json.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import { ATTRIBUTION_TOKENS, attributionPatching, jaccard, pearson, topByMagnitude } from '../interp/attribution.ts';
import {
  attributionCircuits,
  attributionMaps,
  dominantChannels,
  probeCircuit,
  saeCircuit,
  topMass,
  type AttributionMap,
  type CircuitSpec,
} from '../interp/circuits.ts';
import {
  ANSWER_SOURCE,
  cacheActivations,
  corruptAnswers,
  evalSet,
  hookDim,
  idsOf,
  outcome,
  patchEachCoordinate,
  positionMask,
} from '../interp/patching.ts';
import { fmt, barChart, heatmap, scatter } from '../interp/report/index.ts';
import { getTask } from '../interp/tasks/index.ts';
import { PROBES_DIR, SAE_DIR, loadProbeRecords, loadSaeRecord, loadSaeRecords, type Circuit } from './artefacts.ts';
import { studyHalves } from './circuits.ts';
import { patchedModels, studyModels } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

/** The task variable a circuit should carry: the answer. */
const ANSWER_LABELS = ['copyToken', 'value'];

export const circuitsStep: Step = {
  ...stepInfo('circuits'),
  version: 2,
  needs: [1, 3, 4],
  configKeys: ['circuit', 'patching'],
  appliesToModel: false,
  async run(ctx) {
    const { circuit: cc, patching: pc } = ctx.config;
    const models = studyModels(ctx);
    const patched = new Set(patchedModels(ctx, pc.seeds).map((p) => p.label));
    const circuits: Circuit[] = [];
    const attribution: { model: string; hook: string; layer: number; kind: string; values: number[] }[] = [];
    const overlapRows: { model: string; pair: string; jaccard: number }[] = [];
    const report = ctx.report();
    const haveSae = existsSync(join(ctx.runDir, SAE_DIR, 'saes.json'));
    const haveProbes = existsSync(join(ctx.runDir, PROBES_DIR, 'probes.json'));
    const heatTasks = new Set<string>();
    const checks: ({ model: string } & CheckRow)[] = [];
    for (const [mIdx, m] of models.entries()) {
      ctx.progress('attribution', mIdx, models.length);
      const model = await m.load();
      try {
        const task = getTask(m.task);
        // selection on the first half of the study sequences; steps 6 and 7 test on the second
        const batch = studyHalves(ctx, m).selection;
        const maps = await attributionMaps(model, m.task, batch);
        for (const a of maps) attribution.push({ model: m.label, hook: a.hook, layer: a.layer, kind: a.kind, values: [...a.values] });
        const ctlOpts = { count: cc.controls, strata: cc.strata, rng: ctx.rng(`controls/${m.label}`) };
        const specs: CircuitSpec[] = await attributionCircuits(model, maps, cc.size, batch, ctlOpts);
        const source = ANSWER_SOURCE[m.task];
        if (source) {
          const ap = await attributionPatchingMaps(
            model,
            task,
            m.taskOptions,
            batch,
            maps,
            cc.size,
            source,
            ctx.rng(`corrupt-selection/${m.label}`),
            // the per-coordinate check (one forward per coordinate) on the models step 6 patches only (time)
            patched.has(m.label),
          );
          specs.push(...(await attributionCircuits(model, ap.maps, cc.size, batch, ctlOpts)));
          checks.push(...ap.check.map((r) => ({ model: m.label, ...r })));
        }
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
            const c = await saeCircuit(
              model,
              residHook,
              'scored',
              rows,
              top.map((t) => t.r),
              batch,
              ctlOpts,
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
          const c = best && (await probeCircuit(model, residHook, 'scored', best.selected, best.coefficients, cc.size, batch, ctlOpts));
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
      `Each circuit has ${cc.controls} matched controls of the same size on the same hook and positions: for channel sets, as many channels from each of ${cc.strata} activation-variance strata as the circuit has there (never the circuit's own; from the nearest stratum where one runs out), the variances measured at the circuit's cells on the selection sequences; for SAE subspaces, orthonormalised directions drawn from the activation covariance there. The state circuit sits at hook_h at the positions the answer is copied from (induction: the trigger's follower), in the layer whose top-${k} attribution mass is largest. Circuits are selected on the first ${pc.examples} of ${2 * pc.examples} study sequences; steps 6 and 7 test them on the other ${pc.examples}. Grad x activation and attribution patching run over those sequences in chunks of at most ${ATTRIBUTION_TOKENS} tokens a backward (the same scores up to float summation order; the memory of a backward grows with its sequences times the state positions it splits the scan at). Every model is attributed; the per-coordinate check runs on the first ${pc.seeds} seeds of each task, the ones step 6 patches.`,
    );
    if (checks.length) {
      const groups = [...new Set(checks.map((r) => `${r.model} ${r.kind}`))];
      const corr = groups.map((g) => {
        const rows = checks.filter((r) => `${r.model} ${r.kind}` === g);
        return {
          group: g,
          hook: rows[0].hook,
          n: rows.length,
          r: pearson(
            rows.map((x) => x.predicted),
            rows.map((x) => x.actual),
          ),
        };
      });
      report.tables.push({
        title: 'Attribution patching vs the real patch, per coordinate',
        columns: ['model and hook kind', 'hook', 'coordinates', 'Pearson r'],
        rows: corr.map((c) => [c.group, c.hook, c.n, c.r]),
      });
      report.figures.push(
        await saveFigure(
          ctx,
          'attribution-patching-check',
          scatter(
            checks.map((r) => ({ group: `${r.model} ${r.kind}`, predicted: r.predicted, actual: r.actual })),
            {
              title: 'Attribution patching: predicted vs real patching effect',
              x: 'predicted',
              y: 'actual',
              color: 'group',
              xTitle: '(clean - corrupted) x gradient',
              yTitle: 'logit difference gained by the real patch',
            },
          ),
          'How well attribution patching predicts the real patch',
          `Per coordinate, the first-order prediction (clean - corrupted activation) x d(logit difference)/d activation at the corrupted run against the logit difference actually gained by patching that one coordinate's clean values in, on the selection sequences (the models step 6 patches; residual: every channel of the last layer; state: the ${CHECK_STATE / 2} coordinates of largest |prediction| and ${CHECK_STATE / 2} others at random). Pearson r per model and hook: ${corr.map((c) => `${c.group} ${fmt(c.r)}`).join('; ')}.`,
        ),
      );
      ctx.writeJson('attribution-patching-check.json', { correlations: corr, points: checks });
    }
    ctx.writeJson('circuits.json', circuits);
    ctx.writeJson('attribution.json', attribution);
    report.summary = `${circuits.length} candidate circuits for ${models.length} models (${[...new Set(circuits.map((c) => c.source))].join(', ')}), ${cc.size} coordinates each, ${cc.controls} controls each.`;
    saveReport(ctx, report);
    return report.summary;
  },
};

/** State coordinates whose real single-coordinate patch is measured (half the largest |prediction|, half at random). */
const CHECK_STATE = 32;

interface CheckRow {
  kind: 'resid' | 'state';
  hook: string;
  coordinate: number;
  predicted: number;
  actual: number;
}

/**
 * Attribution-patching maps (source 'attribution-patching') at the hooks and positions of the
 * grad x activation maps, on `batch` against a corrupted copy, and the per-coordinate check of the
 * prediction against real single-coordinate patches at the last layer's residual and at the state
 * map with the largest mass.
 */
async function attributionPatchingMaps(
  model: Awaited<ReturnType<ReturnType<typeof studyModels>[number]['load']>>,
  task: ReturnType<typeof getTask>,
  taskOptions: unknown,
  batch: Parameters<typeof evalSet>[0],
  maps: AttributionMap[],
  size: number,
  source: { label: string; offset?: number },
  rng: mi.Rng,
  withCheck: boolean,
): Promise<{ maps: AttributionMap[]; check: CheckRow[] }> {
  const corrupt = corruptAnswers(task, taskOptions, batch, source, rng.fork('corrupt'));
  const ids = idsOf(model, batch),
    corruptIds = idsOf(model, corrupt);
  const hooks = [...new Set(maps.map((m) => m.hook))];
  const cache = cacheActivations(model, ids, hooks);
  try {
    const values = await attributionPatching(
      model,
      corrupt,
      batch.targets,
      maps.map((m) => ({ hook: m.hook, mask: positionMask(m.positions, batch) })),
      maps.map((m) => cache.get(m.hook)!),
    );
    const apMaps = maps.map((m, k) => ({ ...m, values: values[k], source: 'attribution-patching' }));
    if (!withCheck) return { maps: apMaps, check: [] };
    const L = model.config.num_hidden_layers;
    const resid = apMaps.find((m) => m.kind === 'resid' && m.layer === L - 1)!;
    const states = apMaps.filter((m) => m.kind === 'state');
    // the state map attributionCircuits picks (largest top-k mass)
    const state = states.reduce((a, b) => (topMass(b.values, size) > topMass(a.values, size) ? b : a));
    const set = evalSet(batch, corrupt);
    const cleanLd = (await outcome(model, ids, set, [])).logitDiff!;
    const corruptLd = (await outcome(model, corruptIds, set, [])).logitDiff!;
    const check: CheckRow[] = [];
    for (const m of [resid, state]) {
      const dim = hookDim(model, m.hook);
      let coords = Array.from({ length: dim }, (_, i) => i);
      if (m.kind === 'state' && dim > CHECK_STATE) {
        const top = topByMagnitude(m.values, CHECK_STATE / 2);
        const rest = coords.filter((c) => !top.includes(c));
        coords = [
          ...top,
          ...rng
            .fork('check')
            .sample(rest.length, CHECK_STATE / 2)
            .map((j) => rest[j]),
        ];
      }
      const actual = await patchEachCoordinate(
        model,
        corruptIds,
        set,
        cleanLd,
        corruptLd,
        m.hook,
        positionMask(m.positions, batch),
        cache.get(m.hook)!,
        coords,
      );
      coords.forEach((c, i) => check.push({ kind: m.kind, hook: m.hook, coordinate: c, predicted: m.values[c], actual: actual[i] }));
    }
    return { maps: apMaps, check };
  } finally {
    for (const t of cache.values()) t.dispose();
    ids.dispose();
    corruptIds.dispose();
  }
}
