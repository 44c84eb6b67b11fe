// `--text FILE` with `--model`: the checkpoint studied on the user's text. Before any step runs,
// the files are streamed through the checkpoint's tokenizer into windows of train.seqLen tokens and
// a seeded reservoir keeps config.text.windows of them (interp/text/stream.ts, bounded memory
// whatever the files' size); those become the run's `text` task (interp/tasks/text-windows.ts),
// which studyModels gives the checkpoint instead of the induction task. Every step that generates
// sequences draws them from that pool; step 2 records where each collected window came from.
// Each window's tokens are tagged with their words' parts of speech by the Brown lexicon tagger
// (interp/text/pos-lexicon.ts, fitted on Brown's training documents), so step 4 probes POS on the
// user's text as on Brown.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Rng } from '../engine/random.ts';
import { registerTask, textWindowsTask, type AnyTaskOptions, type Task } from '../interp/tasks/index.ts';
import { loadBrown, splitDocuments } from '../interp/text/brown.ts';
import { fitPosLexicon, lexiconAccuracy, tokenTags } from '../interp/text/pos-lexicon.ts';
import { expandTextPaths, readTextPieces, sampleWindows, tokenWindows } from '../interp/text/stream.ts';
import { readConfig } from '../mamba/config.ts';
import { Tokenizer } from '../mamba/tokenizer.ts';
import type { RunConfig } from './config.ts';

const TOKENIZER = 'tokenizer.json';
const BOS = '<|endoftext|>';

/** The cheap checks of a --text run, before anything is read or written (one line each). */
export function checkTextRun(config: RunConfig): void {
  if (!config.model) throw new Error('--text needs --model: a checkpoint with its tokenizer.json to read the text with');
  if (!existsSync(join(config.model, TOKENIZER)))
    throw new Error(`--text: the checkpoint ${config.model} has no ${TOKENIZER} to read the text with`);
  if (!(Number.isInteger(config.text.windows) && config.text.windows >= 1))
    throw new Error(`text.windows must be a positive integer, got ${config.text.windows}`);
}

/** Reads the text into the run's `text` task (see the header); returns a line saying what was read. */
export async function prepareTextTask(config: RunConfig): Promise<string> {
  checkTextRun(config);
  const files = expandTextPaths(config.text.files);
  const tok = await Tokenizer.fromFile(join(config.model, TOKENIZER));
  const { vocab_size } = await readConfig(config.model);
  if (tok.vocabSize > vocab_size)
    throw new Error(`--text: the tokenizer has ${tok.vocabSize} tokens, the checkpoint's vocab_size is ${vocab_size}`);
  const bos = tok.tokenToId(BOS);
  const T = config.train.seqLen;
  const sample = await sampleWindows(
    tokenWindows(readTextPieces(files), tok, { contextSize: T, bos }),
    config.text.windows,
    new Rng(`${config.seed}/text-sample`),
  );
  if (!sample.windows.length)
    throw new Error(`--text: no document of ${files.join(', ')} holds ${T} tokens (train.seqLen), so there is no window to study`);
  const brown = splitDocuments(loadBrown());
  const lexicon = fitPosLexicon(brown.train);
  const pieces = new Map<number, string>();
  const piece = (id: number) => {
    let p = pieces.get(id);
    if (p === undefined) {
      p = id === bos ? '' : tok.decode([id]);
      pieces.set(id, p);
    }
    return p;
  };
  const tags = sample.windows.map((w) => tokenTags(lexicon, Array.from(w.ids, piece)));
  registerTask(textWindowsTask(sample.windows, tags) as unknown as Task<AnyTaskOptions>);
  return (
    `text: ${files.length} file(s), ${sample.seenDocuments} document(s) with ${sample.seenWindows} windows of ${T} tokens` +
    ` (BOS ${bos === undefined ? 'none: the tokenizer has no <|endoftext|>' : `${BOS} first in each document`}); ${sample.windows.length} sampled;` +
    ` parts of speech from the Brown lexicon tagger (${(100 * lexiconAccuracy(lexicon, brown.heldOut)).toFixed(1)}% on held-out Brown words)`
  );
}
