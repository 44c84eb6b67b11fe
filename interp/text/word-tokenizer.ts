// A word-level tokenizer trained on the corpus's training documents: one token per corpus word
// (lowercased; punctuation marks are words of their own in the Brown tokenisation), so each token
// carries the word's part-of-speech tag. The vocabulary is three special tokens and the most frequent
// training words; every other word is <unk>. It is written as a Hugging Face tokenizer.json (a
// WordLevel model, a Lowercase normaliser, a WhitespaceSplit pre-tokeniser: text is the corpus's
// words joined by spaces), which mamba/tokenizer.ts loads, so a model trained on it gets toTokens /
// toStrTokens / toString like any checkpoint. Nothing is random: ties in frequency are broken by the
// word's code points, so the ids depend only on the training documents and the size.
import type { BrownDocument } from './brown.ts';

/** Document separator and BOS: the token every window has at a document start. */
export const EOT = '<|endoftext|>';
export const PAD = '<|padding|>';
export const UNK = '<unk>';
export const SPECIAL_TOKENS = [EOT, PAD, UNK] as const;
export const EOT_ID = 0;
export const PAD_ID = 1;
export const UNK_ID = 2;

export interface WordVocab {
  /** token strings by id: SPECIAL_TOKENS, then words by descending training count */
  tokens: string[];
  ids: Map<string, number>;
}

/** The corpus word as a token string (lowercased, as the tokenizer's normaliser does). */
export const normaliseWord = (word: string): string => word.toLowerCase();

/** The vocabulary of `size` tokens (the three special ones included) from `docs`' words. */
export function buildWordVocab(docs: readonly BrownDocument[], size: number): WordVocab {
  if (!(Number.isInteger(size) && size > SPECIAL_TOKENS.length))
    throw new Error(`word vocabulary: size must be an integer above ${SPECIAL_TOKENS.length}, got ${size}`);
  const counts = new Map<string, number>();
  for (const d of docs)
    for (const s of d.sentences)
      for (const w of s) {
        const k = normaliseWord(w.word);
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
  const special = new Set<string>(SPECIAL_TOKENS);
  const words = [...counts]
    .filter(([w]) => !special.has(w))
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
    .slice(0, size - SPECIAL_TOKENS.length)
    .map(([w]) => w);
  const tokens = [...SPECIAL_TOKENS, ...words];
  return { tokens, ids: new Map(tokens.map((t, i) => [t, i])) };
}

/** The id of a corpus word (UNK_ID when it is not in the vocabulary). */
export function wordId(vocab: WordVocab, word: string): number {
  return vocab.ids.get(normaliseWord(word)) ?? UNK_ID;
}

/** tokenizer.json (the Hugging Face format) for the vocabulary. */
export function wordTokenizerJson(vocab: WordVocab): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content, id) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: { type: 'Lowercase' },
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    // no decoder: tokens are joined by single spaces, the corpus's own tokenisation
    decoder: null,
    model: { type: 'WordLevel', vocab: Object.fromEntries(vocab.tokens.map((t, i) => [t, i])), unk_token: UNK },
  };
}

/** tokenizer_config.json beside it: the special tokens' roles. */
export function wordTokenizerConfig(): object {
  return {
    unk_token: UNK,
    bos_token: EOT,
    eos_token: EOT,
    pad_token: PAD,
    model_max_length: 1e30,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
}
