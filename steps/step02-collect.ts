// Step 2: collect activations. For every studied model (step 1's, or the --model checkpoint on the
// induction task), run over held-out task data (config.collect.batches x batchSize sequences, from
// this step's own streams) and stream the configured hook points into sharded safetensors files,
// with the tokens, targets and task labels, per-channel baseline statistics and a figure. The
// layout is the one steps/artefacts.ts documents; hook_h states (config.collect.states, last layer
// only) are collected for the first config.collect.stateBatches batches, as their rows are E*N wide.
import { join } from 'node:path';
import { collectActivations, expandHookPatterns, type ChannelStats } from '../interp/collect.ts';
import type { Spec } from '../interp/report/index.ts';
import { getTask, type AnyTaskOptions, type TaskBatch } from '../interp/tasks/index.ts';
import { writeSafetensors } from '../mamba/safetensors.ts';
import { SOURCES_FILE, type Collection } from './artefacts.ts';
import { checkFiniteJson, checkFiniteTensors } from './finite.ts';
import { studyModels } from './models.ts';
import { saveFigure, saveReport } from './report-io.ts';
import type { Step } from './step.ts';
import { stepInfo } from './table.ts';

export interface CollectionStats {
  task: string;
  seed: number;
  dir: string;
  hooks: Record<string, ChannelStats>;
}

/** Concatenates batches of the same length into one [sum of batch sizes, T] batch. */
function concatBatches(batches: TaskBatch[]): TaskBatch {
  const T = batches[0].shape[1];
  const B = batches.reduce((s, b) => s + b.shape[0], 0);
  const cat = (pick: (b: TaskBatch) => Int32Array) => {
    const out = new Int32Array(B * T);
    let off = 0;
    for (const b of batches) {
      out.set(pick(b), off);
      off += pick(b).length;
    }
    return out;
  };
  const labels = Object.fromEntries(Object.keys(batches[0].labels).map((k) => [k, cat((b) => b.labels[k])]));
  const sources = batches.every((b) => b.sources) ? batches.flatMap((b) => b.sources!) : undefined;
  return { inputs: cat((b) => b.inputs), targets: cat((b) => b.targets), labels, shape: [B, T], ...(sources ? { sources } : {}) };
}

function varianceSpec(rows: Record<string, number | string>[]): Spec {
  return {
    title: 'Per-channel variance of the collected activations',
    width: 420,
    height: 260,
    data: { values: rows },
    mark: { type: 'boxplot', extent: 'min-max' },
    encoding: {
      x: { field: 'hook', type: 'nominal', title: null, axis: { labelAngle: -30, labelLimit: 260 } },
      y: { field: 'log10var', type: 'quantitative', title: 'log10 channel variance' },
      color: { field: 'task', type: 'nominal' },
      xOffset: { field: 'task' },
    },
  } as Spec;
}

export const collectStep: Step = {
  ...stepInfo('collect'),
  version: 1,
  needs: [1],
  configKeys: ['seed', 'collect', 'text'],
  appliesToModel: true,
  async run(ctx) {
    const c = ctx.config.collect;
    const collections: Collection[] = [];
    const allStats: CollectionStats[] = [];
    const figRows: Record<string, number | string>[] = [];
    const models = studyModels(ctx);
    let totalRows = 0;
    for (const [mi_, m] of models.entries()) {
      const task = getTask(m.task);
      const opts = m.taskOptions as unknown as AnyTaskOptions;
      const rng = ctx.rng(`data-${m.label}`);
      const batches = Array.from({ length: c.batches }, (_, i) => task.generate(opts, rng.fork(`batch${i}`), c.batchSize));
      const model = await m.load();
      const dir = join('acts', m.label);
      try {
        const layers = model.config.num_hidden_layers;
        const stateHook = `blocks.${layers - 1}.mixer.hook_h`;
        const hooks = expandHookPatterns(c.hooks, layers);
        if (c.states && !hooks.includes(stateHook)) hooks.push(stateHook);
        const collected = await collectActivations(model, batches, {
          hooks,
          dir: ctx.path(dir),
          shardRows: c.shardTokens,
          limited: [stateHook],
          limitedBatches: c.stateBatches,
          onBatch: (done, total) => ctx.progress(`collect ${m.label}`, mi_ * total + done, models.length * total),
        });
        // name the shard tensor at fault before the statistics (and stats.json's check) meet the NaN
        await checkFiniteTensors(ctx.path(dir), ctx.dir);
        const all = concatBatches(batches);
        await writeSafetensors(ctx.path(join(dir, 'tokens.safetensors')), [
          { name: 'inputs', dtype: 'I32', shape: all.shape, data: all.inputs },
          { name: 'targets', dtype: 'I32', shape: all.shape, data: all.targets },
          ...Object.entries(all.labels).map(([k, v]) => ({ name: `label.${k}`, dtype: 'I32' as const, shape: all.shape, data: v })),
        ]);
        // real text: where each collected sequence came from (file, document, first token), for the examples
        if (all.sources) ctx.writeJson(join(dir, SOURCES_FILE), all.sources);
        collections.push({
          task: m.task,
          seed: m.seed,
          dir,
          batch: all.shape[0],
          seqLen: all.shape[1],
          hooks: collected.map(({ name, dim, rows, shards }) => ({ name, dim, rows, shards })),
          labels: Object.keys(all.labels),
        });
        allStats.push({ task: m.task, seed: m.seed, dir, hooks: Object.fromEntries(collected.map((h) => [h.name, h.stats])) });
        for (const h of collected) {
          totalRows += h.rows;
          for (const v of h.stats.variance) figRows.push({ hook: h.name, task: m.task, log10var: Math.log10(Math.max(v, 1e-12)) });
        }
      } finally {
        model.dispose();
      }
    }
    ctx.writeJson('collections.json', collections);
    // compact: thousands of per-channel numbers, one per line pretty-printed
    const stats = {
      description:
        'per collection and hook, per channel: mean, variance (population), norm (root mean square) and sparsity (fraction of rows with |x| < 1e-6)',
      collections: allStats,
    };
    checkFiniteJson(stats, 'stats.json'); // written as text (compact), so not through writeJson's check
    ctx.writeText('stats.json', `${JSON.stringify(stats)}\n`);
    const report = ctx.report();
    report.figures.push(
      await saveFigure(
        ctx,
        'channel-variance',
        varianceSpec(figRows),
        'Channel variance by hook',
        "Distribution over channels of each channel's variance across the collected rows (min-max whiskers), per hook and task, seeds pooled.",
      ),
    );
    report.tables.push({
      title: 'Collections',
      columns: ['model', 'sequences', 'length', 'hooks', 'rows per hook'],
      rows: collections.map((x) => [`${x.task}-s${x.seed}`, x.batch, x.seqLen, x.hooks.length, x.hooks.map((h) => h.rows).join(' / ')]),
    });
    report.notes.push(
      `Rows are (sequence, position) pairs in row-major order; shards hold at most ${c.shardTokens} rows. ` +
        (c.states
          ? `The last layer's SSM states (hook_h, E*N channels) cover the first ${c.stateBatches} batch(es) only.`
          : 'SSM states were not collected.'),
    );
    report.summary = `${collections.length} collection(s), ${c.batches * c.batchSize} held-out sequences each, ${collections[0]?.hooks.length ?? 0} hooks, ${totalRows} rows in all.`;
    saveReport(ctx, report);
    return report.summary;
  },
};
