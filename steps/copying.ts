// The copying test of a language model (the text task's step-1 models, or a --model checkpoint):
// repeated random tokens (interp/tasks/repeated-tokens.ts) over the model's own vocabulary, its
// special tokens left out. Step 1 measures each language model's copying accuracy on the second
// copy against the control (a fresh random second half at the same positions, same first halves)
// and the first copy (random: chance), per sequence; the model's copying gate is a paired sign-flip
// test of repeat minus control over sequences, p < copying.gateAlpha with a positive mean
// difference. A model that passes it is also studied on repeated-tokens by steps 2-10 (steps/models.ts),
// which the model was never trained on: they then patch, perturb and trace its copying.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import { pending } from '../interp/claims.ts';
import { idsOf } from '../interp/patching.ts';
import { intervalChart, type Claim, type Spec } from '../interp/report/index.ts';
import { bootstrapCI, mean, pairedPermutationTest } from '../interp/stats.ts';
import { measureCopying, type RepeatedTokensOptions, type TaskBatch } from '../interp/tasks/index.ts';
import type { MambaLM } from '../mamba/model.ts';
import { readJson } from './files.ts';
import type { RunConfig } from './config.ts';
import type { StepContext } from './step.ts';

/** The task every language model is also studied on, and its study label's prefix. */
export const COPYING_TASK = 'repeated-tokens';

/** One language model's copying measurement (step 1, in models.json). */
export interface CopyingRecord {
  taskOptions: Record<string, number>;
  sequences: number;
  /** mean over sequences: the second copy, the fresh-half control at the same positions, the first copy */
  accuracy: number;
  control: number;
  firstCopy: number;
  chance: number;
  /** paired sign-flip test of repeat minus control over sequences (one-sided) */
  p: number;
  pFloor: number;
  gateAlpha: number;
  /** the copying gate: p < gateAlpha and accuracy above control */
  passed: boolean;
  perSequence: { repeat: number[]; control: number[]; firstCopy: number[] };
}

interface SpecialIds {
  vocab_size: number;
  bos_token_id?: number | null;
  eos_token_id?: number | null;
  pad_token_id?: number | null;
}

/**
 * The repeated-tokens options for a checkpoint: content tokens are the ids between its special
 * tokens (tokenizer.json's added tokens marked special, at either end of the id range; without a
 * tokenizer, the config's bos/eos/pad ids), ids past the tokenizer's last one left out (a padded
 * embedding matrix: rows no text ever reaches); BOS: the config's bos_token_id when it has one, else
 * the tokenizer's first special token (a word-level Brown model's <|endoftext|>, which began every
 * training document), else none.
 */
export function copyingOptions(checkpointDir: string, seqLen: number, varyLength: number): RepeatedTokensOptions {
  const cfg = readJson<SpecialIds>(join(checkpointDir, 'config.json'), `${checkpointDir}: config.json`);
  const V = cfg.vocab_size;
  const special = new Set<number>();
  let known = V; // ids the tokenizer knows
  const tokPath = join(checkpointDir, 'tokenizer.json');
  if (existsSync(tokPath)) {
    const tok = readJson<{ added_tokens?: { id: number; special?: boolean }[]; model?: { vocab?: Record<string, number> } }>(
      tokPath,
      `${checkpointDir}: tokenizer.json`,
    );
    for (const a of tok.added_tokens ?? []) if (a.special) special.add(a.id);
    const ids = [...Object.values(tok.model?.vocab ?? {}), ...(tok.added_tokens ?? []).map((a) => a.id)];
    if (ids.length) known = Math.min(V, Math.max(...ids) + 1);
  } else for (const id of [cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id]) if (typeof id === 'number') special.add(id);
  let firstToken = 0,
    lastToken = known - 1;
  while (special.has(firstToken)) firstToken++;
  while (special.has(lastToken)) lastToken--;
  if (!(lastToken > firstToken)) throw new Error(`${checkpointDir}: no content tokens between the special tokens (vocabulary ${V})`);
  const bos = typeof cfg.bos_token_id === 'number' ? cfg.bos_token_id : special.size ? Math.min(...special) : -1;
  return { vocabSize: V, seqLen, firstToken, lastToken, bos: bos >= firstToken && bos <= lastToken ? -1 : bos, varyLength };
}

/** A model's argmax predictions [batch, T] on a batch's inputs. */
export function modelPredictions(model: MambaLM): (batch: TaskBatch) => Promise<ArrayLike<number>> {
  return (batch) => mi.tidyAsync(() => mi.noGrad(() => mi.argmax(model.forward(idsOf(model, batch)), -1)).data());
}

/**
 * Measures one language model's copying (see the header) from its predictions (modelPredictions, or
 * an oracle in tests); `label` names its random streams.
 */
export async function measureModelCopying(
  ctx: Pick<StepContext, 'rng' | 'config'>,
  predict: (batch: TaskBatch) => Promise<ArrayLike<number>> | ArrayLike<number>,
  taskOptions: RepeatedTokensOptions,
  label: string,
): Promise<CopyingRecord> {
  const c = ctx.config.copying;
  const s = await measureCopying(taskOptions, ctx.rng(`copying/${label}`), c.sequences, predict);
  const perm = pairedPermutationTest(s.repeat, s.fresh, ctx.rng(`perm-copying/${label}`), {
    nPerm: ctx.config.permutations,
    alternative: 'greater',
  });
  const accuracy = mean(s.repeat),
    control = mean(s.fresh);
  return {
    taskOptions: { ...taskOptions } as Record<string, number>,
    sequences: c.sequences,
    accuracy,
    control,
    firstCopy: mean(s.firstCopy),
    chance: 1 / (taskOptions.lastToken! - taskOptions.firstToken! + 1),
    p: perm.pValue,
    pFloor: perm.floor,
    gateAlpha: c.gateAlpha,
    passed: copyingGate(accuracy, control, perm.pValue, c.gateAlpha),
    perSequence: { repeat: s.repeat, control: s.fresh, firstCopy: s.firstCopy },
  };
}

/** The copying gate: accuracy on the repeat above the control's, by a paired test with p below alpha. */
export function copyingGate(accuracy: number, control: number, p: number, alpha: number): boolean {
  if (!(alpha > 0 && alpha < 1)) throw new Error(`copying.gateAlpha must be in (0, 1), got ${alpha}`);
  return accuracy > control && p < alpha;
}

/** How a page names a language model the copying gate left out of the repeated-tokens study. */
export function copyingExcludedLabel(task: string, seed: number, r: CopyingRecord): string {
  return `${COPYING_TASK}-s${seed} (${task}-s${seed}'s copying accuracy ${r.accuracy.toFixed(3)} vs control ${r.control.toFixed(3)}, p ${r.p.toPrecision(2)}: not significantly above, copying.gateAlpha ${r.gateAlpha})`;
}

/** Step 1's claim for one language model: copying accuracy above the fresh-half control, paired over sequences. */
export function copyingClaim(ctx: Pick<StepContext, 'rng' | 'config'>, task: string, seed: number, r: CopyingRecord): Claim {
  const label = `${task}-s${seed}`;
  const { repeat, control } = r.perSequence;
  const ci = bootstrapCI(repeat, ctx.rng(`bootstrap-copying/${label}`), mean, { nBoot: 1000 });
  const ctl = bootstrapCI(control, ctx.rng(`bootstrap-copying-control/${label}`), mean, { nBoot: 1000 });
  const diff = bootstrapCI(
    repeat.map((x, i) => x - control[i]),
    ctx.rng(`bootstrap-copying-diff/${label}`),
    mean,
    { nBoot: 1000 },
  );
  const L = r.taskOptions.varyLength ? 'L varying per sequence' : 'fixed L';
  return {
    statement: `${label} copies in context: its next-token accuracy on the second copy of a repeated random-token sequence (never trained on; length ${r.taskOptions.seqLen}, ${L}) is above the control's, the same positions after the same first half with a fresh random second half (${repeat.length} sequences)`,
    estimate: ci.estimate,
    interval: [ci.lo, ci.hi],
    level: ci.level,
    test: `sign-flip permutation test of per-sequence accuracy, repeat minus control (paired by sequence, one-sided, p ${r.p.toPrecision(3)}); mean difference ${diff.estimate.toFixed(3)}, ${diff.method} interval [${diff.lo.toFixed(3)}, ${diff.hi.toFixed(3)}]; ${ci.method} bootstrap over sequences (${ci.nBoot} resamples); first copy (random tokens) ${r.firstCopy.toFixed(3)}, uniform chance ${r.chance.toPrecision(2)}`,
    p: r.p,
    pFloor: r.pFloor,
    control: `a fresh random second half at the same positions (same first half: nothing to copy); the first copy scores ${r.firstCopy.toFixed(3)}`,
    controlEstimate: ctl.estimate,
    controlInterval: [ctl.lo, ctl.hi],
    ...pending(diff.lo > 0, 'paired interval of the per-sequence accuracy difference (repeat minus control) above 0'),
  };
}

const MEASURES = { repeat: 'second copy (repeat)', control: 'control (fresh half)', firstCopy: 'first copy (random)' } as const;

/** Step 1's figure: per model, the second copy's accuracy beside its control and the first copy, with bootstrap intervals over sequences. */
export function copyingChart(ctx: Pick<StepContext, 'rng'>, models: { task: string; seed: number; r: CopyingRecord }[]): Spec {
  const rows = models.flatMap(({ task, seed, r }) =>
    (Object.keys(MEASURES) as (keyof typeof MEASURES)[]).map((k) => {
      const ci = bootstrapCI(r.perSequence[k], ctx.rng(`bootstrap-copying-figure/${task}-s${seed}/${k}`), mean, { nBoot: 1000 });
      return { row: `${task}-s${seed}: ${MEASURES[k]}`, measure: MEASURES[k], accuracy: ci.estimate, lo: ci.lo, hi: ci.hi };
    }),
  );
  return intervalChart(rows, {
    title: 'Copying on repeated random tokens: accuracy beside its controls',
    category: 'row',
    value: 'accuracy',
    lo: 'lo',
    hi: 'hi',
    color: 'measure',
    valueTitle: 'next-token accuracy (95% bootstrap interval over sequences)',
  });
}

/** Step 1's table of the language models' copying. */
export function copyingTable(rows: { task: string; seed: number; r: CopyingRecord }[]): {
  title: string;
  columns: string[];
  rows: (string | number)[][];
} {
  return {
    title: 'Language models: copying on repeated random tokens',
    columns: [
      'model',
      'length',
      'sequences',
      'second copy (repeat)',
      'control (fresh half)',
      'first copy',
      'chance',
      'p (paired)',
      'copying gate',
    ],
    rows: rows.map(({ task, seed, r }) => [
      `${task}-s${seed}`,
      r.taskOptions.seqLen,
      r.sequences,
      r.accuracy,
      r.control,
      r.firstCopy,
      r.chance,
      r.p,
      r.passed ? `passed: studied as ${COPYING_TASK}-s${seed}` : 'not studied',
    ]),
  };
}

/** The config the copying section needs (validated here: one line naming the field). */
export function checkCopyingConfig(c: RunConfig['copying']): void {
  if (!(Number.isInteger(c.sequences) && c.sequences >= 2))
    throw new Error(`config: copying.sequences must be an integer >= 2, got ${c.sequences}`);
  if (!(c.varyLength === 0 || c.varyLength === 1)) throw new Error(`config: copying.varyLength must be 0 or 1, got ${c.varyLength}`);
  copyingGate(0, 0, 1, c.gateAlpha);
}
