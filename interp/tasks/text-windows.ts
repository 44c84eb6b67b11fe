// Text: next-token prediction on windows of the user's own text files (`--text FILE`, with a
// checkpoint and its tokenizer: steps/text-source.ts), for studying a pretrained model on real text.
// The windows are a seeded sample of every window of the files (interp/text/stream.ts: documents cut
// into consecutive windows of seqLen tokens, BOS first in each document when the tokenizer has one,
// never across documents); generate() draws whole windows from that sample, uniformly and
// independently, and says where each came from (batch.sources). The target at every position but
// the last is the next token of the window.
//
// Labels (NO_LABEL = -1 elsewhere):
//   repeatsEarlier  1 where the next token already occurred in the window at or before this
//                   position: where copying from context can predict it (natural induction)
// and, when the windows come with part-of-speech tags (steps/text-source.ts tags them with the Brown
// lexicon tagger, interp/text/pos-lexicon.ts), of the current input token as in the Brown task:
//   pos             its coarse tag (index into COARSE_TAGS; a category, carried by the indicators)
//   isNOUN ... isADP  1 where its coarse tag is that tag (a binary variable: 0 at every other
//                   position, spaces-only tokens included)
import type { Rng } from '../../engine/random.ts';
import { COARSE_TAGS } from '../text/brown.ts';
import type { TokenWindow } from '../text/stream.ts';
import { INDICATOR_TAGS } from './brown.ts';
import { emptyBatch, requireInt, type Task, type TaskBatch, type TaskOptions } from './types.ts';

export const TEXT_TASK = 'text';
export const TEXT_LABELS = ['repeatsEarlier'];
export const TEXT_POS_LABELS = ['pos', ...INDICATOR_TAGS.map((t) => `is${t}`)];

/**
 * The task over `windows` (all of seqLen tokens, ids below vocabSize); `tags`, when given, holds each
 * window's coarse tag per token (COARSE_TAGS index, -1 for none), in the windows' order.
 */
export function textWindowsTask(windows: readonly TokenWindow[], tags?: readonly Int32Array[]): Task<TaskOptions> {
  if (!windows.length) throw new Error('text: no windows (the files are shorter than one context window)');
  const T = windows[0].ids.length;
  for (const w of windows)
    if (w.ids.length !== T) throw new Error(`text: window ${w.source} doc ${w.doc} at ${w.start} has ${w.ids.length} tokens, not ${T}`);
  if (tags && (tags.length !== windows.length || tags.some((t) => t.length !== T)))
    throw new Error(`text: ${tags.length} tag rows for ${windows.length} windows of ${T} tokens`);
  const labelNames = tags ? [...TEXT_LABELS, ...TEXT_POS_LABELS] : TEXT_LABELS;
  const indicator = INDICATOR_TAGS.map((t) => COARSE_TAGS.indexOf(t));
  let top = 0;
  for (const w of windows) for (const id of w.ids) top = Math.max(top, id);
  const check = (o: TaskOptions) => {
    requireInt('text', 'vocabSize', o.vocabSize, 2);
    if (o.seqLen !== T) throw new Error(`text: seqLen ${o.seqLen}, but the windows have ${T} tokens`);
    if (top >= o.vocabSize) throw new Error(`text: token id ${top} in the windows is outside the model's vocabulary (${o.vocabSize})`);
  };
  return {
    name: TEXT_TASK,
    description: `Predict the next token of your text (${windows.length} sampled windows of ${T} tokens).`,
    vocabulary(o) {
      return [{ name: 'tokens', first: 0, last: o.vocabSize - 1, description: "the tokenizer's vocabulary" }];
    },
    chance(o) {
      return 1 / o.vocabSize;
    },
    // no simple context rule is the control of a language model on text (steps compare with a
    // random-init model and matched controls instead)
    baselines() {
      return [];
    },
    generate(o: TaskOptions, rng: Rng, batch: number): TaskBatch {
      check(o);
      const out: TaskBatch = { ...emptyBatch(batch, T, labelNames), sources: [] };
      const repeats = out.labels.repeatsEarlier;
      for (let b = 0; b < batch; b++) {
        const k = rng.int(0, windows.length);
        const w = windows[k];
        if (tags) {
          for (let t = 0; t < T; t++) {
            const tag = tags[k][t];
            if (tag < 0) continue;
            out.labels.pos[b * T + t] = tag;
            const j = indicator.indexOf(tag);
            if (j >= 0) out.labels[`is${INDICATOR_TAGS[j]}`][b * T + t] = 1;
          }
        }
        out.sources!.push({ source: w.source, doc: w.doc, start: w.start });
        const seen = new Set<number>();
        for (let t = 0; t < T; t++) {
          const i = b * T + t;
          out.inputs[i] = w.ids[t];
          seen.add(w.ids[t]);
          if (t + 1 < T) {
            out.targets[i] = w.ids[t + 1];
            if (seen.has(w.ids[t + 1])) repeats[i] = 1;
          }
        }
      }
      return out;
    },
  };
}
