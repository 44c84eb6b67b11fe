// Part-of-speech tags for the user's own text (`--text`), from a lexicon tagger fitted on the Brown
// corpus's training documents: each lowercased word gets the coarse tag it carries most often in
// Brown; a word Brown never saw gets the most frequent tag of words with its last three letters
// (then two, then one), and a word with no such suffix the most frequent tag overall. This is the
// classic most-frequent-tag baseline (about 90% on held-out Brown words: `lexiconAccuracy`), not a
// state-of-the-art tagger; the probes of these tags say how well a model's states encode a word's
// usual part of speech, and the README states it so.
//
// Tokens are subwords; a token's tag is that of the word its first non-space character belongs to
// (`tokenTags`), so every piece of "un|believ|able" carries the word's tag, and a token of spaces
// alone carries none. Words are cut from the window's decoded text as Brown cuts them: runs of
// letters and digits (with inner apostrophes, hyphens and periods: "don't", "well-known", "U.S."),
// and each other non-space character alone.
import { COARSE_TAGS, type BrownDocument, type CoarseTag } from './brown.ts';

export interface PosLexicon {
  /** lowercased word -> its most frequent coarse tag */
  words: Map<string, CoarseTag>;
  /** lowercased suffix of 1-3 letters -> the most frequent coarse tag of words ending so */
  suffixes: Map<string, CoarseTag>;
  /** the most frequent tag over all words */
  fallback: CoarseTag;
}

const SUFFIX_LENGTHS = [3, 2, 1];

/** The argmax of each key's tag counts (ties: the tag first in COARSE_TAGS). */
function argmaxTags(counts: Map<string, Int32Array>): Map<string, CoarseTag> {
  const out = new Map<string, CoarseTag>();
  for (const [key, c] of counts) {
    let best = 0;
    for (let k = 1; k < c.length; k++) if (c[k] > c[best]) best = k;
    out.set(key, COARSE_TAGS[best]);
  }
  return out;
}

function count(counts: Map<string, Int32Array>, key: string, tag: number): void {
  let c = counts.get(key);
  if (!c) {
    c = new Int32Array(COARSE_TAGS.length);
    counts.set(key, c);
  }
  c[tag]++;
}

/** Fits the lexicon on tagged documents (see the header). */
export function fitPosLexicon(docs: readonly BrownDocument[]): PosLexicon {
  const words = new Map<string, Int32Array>(),
    suffixes = new Map<string, Int32Array>();
  const all = new Int32Array(COARSE_TAGS.length);
  for (const d of docs)
    for (const s of d.sentences)
      for (const w of s) {
        const tag = COARSE_TAGS.indexOf(w.coarse);
        const lower = w.word.toLowerCase();
        count(words, lower, tag);
        for (const n of SUFFIX_LENGTHS) if (lower.length > n) count(suffixes, lower.slice(-n), tag);
        all[tag]++;
      }
  if (!words.size) throw new Error('fitPosLexicon: no tagged words to fit on');
  let best = 0;
  for (let k = 1; k < all.length; k++) if (all[k] > all[best]) best = k;
  return { words: argmaxTags(words), suffixes: argmaxTags(suffixes), fallback: COARSE_TAGS[best] };
}

/** The tag of one word (see the header for unknown words). */
export function tagWord(lex: PosLexicon, word: string): CoarseTag {
  const lower = word.toLowerCase();
  const known = lex.words.get(lower);
  if (known) return known;
  if (!/[\p{L}\p{N}]/u.test(lower)) return 'PUNCT';
  if (/^[\d.,]+$/.test(lower)) return 'NUM';
  for (const n of SUFFIX_LENGTHS) {
    const t = lower.length > n ? lex.suffixes.get(lower.slice(-n)) : undefined;
    if (t) return t;
  }
  return lex.fallback;
}

/** Fraction of the documents' words whose lexicon tag is their Brown tag. */
export function lexiconAccuracy(lex: PosLexicon, docs: readonly BrownDocument[]): number {
  let right = 0,
    n = 0;
  for (const d of docs)
    for (const s of d.sentences)
      for (const w of s) {
        n++;
        if (tagWord(lex, w.word) === w.coarse) right++;
      }
  return n ? right / n : Number.NaN;
}

// letters/digits with inner ' - . joining more of them; else one non-space character
const WORD = /[\p{L}\p{N}]+(?:['’.-][\p{L}\p{N}]+)*|[^\s\p{L}\p{N}]/gu;

/** The words of a text with their character spans [start, end). */
export function splitWords(text: string): { word: string; start: number; end: number }[] {
  return [...text.matchAll(WORD)].map((m) => ({ word: m[0], start: m.index, end: m.index + m[0].length }));
}

/**
 * The coarse tag index (COARSE_TAGS) of each token, given the tokens' decoded strings in order: the
 * tag of the word holding the token's first non-space character; -1 for a token of spaces alone.
 */
export function tokenTags(lex: PosLexicon, pieces: readonly string[]): Int32Array {
  const text = pieces.join('');
  const words = splitWords(text);
  const tags = words.map((w) => COARSE_TAGS.indexOf(tagWord(lex, w.word)));
  const out = new Int32Array(pieces.length).fill(-1);
  let offset = 0,
    k = 0;
  for (const [i, p] of pieces.entries()) {
    const lead = p.search(/\S/);
    if (lead >= 0) {
      const at = offset + lead;
      while (k < words.length && words[k].end <= at) k++;
      if (k < words.length && words[k].start <= at) out[i] = tags[k];
    }
    offset += p.length;
  }
  return out;
}
