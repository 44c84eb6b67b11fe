// The Brown corpus as token streams, one per split: the split's documents in corpus order, each
// begun by <|endoftext|> (the BOS and document separator), each word one token of the word-level
// vocabulary trained on the training documents, with the word's coarse tag and its index in its
// sentence alongside. The n-gram baselines are fitted here too, on training documents only.
import { NO_LABEL } from '../tasks/types.ts';
import { COARSE_TAGS, loadBrown, splitDocuments, type BrownDocument } from './brown.ts';
import { fitNgrams, type FittedNgrams } from './ngram.ts';
import { buildWordVocab, EOT_ID, wordId, type WordVocab } from './word-tokenizer.ts';

export interface TokenStream {
  ids: Int32Array;
  /** coarse tag index (COARSE_TAGS) of each token, NO_LABEL at <|endoftext|> */
  tag: Int32Array;
  /** the word's index in its sentence, NO_LABEL at <|endoftext|> */
  positionInSentence: Int32Array;
  documents: number;
}

/** The documents as one stream: <|endoftext|> before each document, then its words. */
export function streamOf(docs: readonly BrownDocument[], vocab: WordVocab): TokenStream {
  const n = docs.reduce((s, d) => s + 1 + d.sentences.reduce((a, x) => a + x.length, 0), 0);
  const ids = new Int32Array(n),
    tag = new Int32Array(n).fill(NO_LABEL),
    positionInSentence = new Int32Array(n).fill(NO_LABEL);
  let i = 0;
  for (const d of docs) {
    ids[i++] = EOT_ID;
    for (const s of d.sentences)
      for (const [k, w] of s.entries()) {
        ids[i] = wordId(vocab, w.word);
        tag[i] = COARSE_TAGS.indexOf(w.coarse);
        positionInSentence[i] = k;
        i++;
      }
  }
  return { ids, tag, positionInSentence, documents: docs.length };
}

export interface BrownData {
  vocab: WordVocab;
  train: TokenStream;
  heldOut: TokenStream;
  /** unigram and bigram fitted on the training documents (every 10th of them choosing k and lambda) */
  ngrams: FittedNgrams;
  trainDocuments: string[];
  heldOutDocuments: string[];
}

const cache = new Map<number, BrownData>();

/** The corpus's streams for a vocabulary of `vocabSize` tokens (cached per size). */
export function brownData(vocabSize: number): BrownData {
  const hit = cache.get(vocabSize);
  if (hit) return hit;
  const { train, heldOut } = splitDocuments(loadBrown());
  const vocab = buildWordVocab(train, vocabSize);
  const dev = train.filter((_, i) => i % 10 === 9);
  const fit = train.filter((_, i) => i % 10 !== 9);
  const ngrams = fitNgrams([streamOf(fit, vocab).ids], [streamOf(dev, vocab).ids], vocab.tokens.length);
  const data: BrownData = {
    vocab,
    train: streamOf(train, vocab),
    heldOut: streamOf(heldOut, vocab),
    ngrams,
    trainDocuments: train.map((d) => d.id),
    heldOutDocuments: heldOut.map((d) => d.id),
  };
  cache.set(vocabSize, data);
  return data;
}
