// The Brown lexicon tagger (interp/text/pos-lexicon.ts) on a hand-made corpus whose most frequent
// tags, suffix fallbacks and token-to-word spans are worked out by hand; and on the real corpus,
// its held-out accuracy counted here word by word beside the majority-tag baseline.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COARSE_TAGS, loadBrown, splitDocuments, type BrownDocument, type CoarseTag } from '../../../interp/text/brown.ts';
import { fitPosLexicon, lexiconAccuracy, splitWords, tagWord, tokenTags } from '../../../interp/text/pos-lexicon.ts';

const doc = (words: [string, CoarseTag][]): BrownDocument => ({
  id: 'x',
  category: 'test',
  sentences: [words.map(([word, coarse]) => ({ word, tag: '?', coarse }))],
});
// "run": VERB twice, NOUN once -> VERB; "The"/"the" fold to one lowercased entry (DET);
// suffix "ing": VERB twice (walking, talking), NOUN once (ceiling) -> VERB; NOUN is the most frequent tag
const corpus = [
  doc([
    ['The', 'DET'],
    ['run', 'VERB'],
    ['walking', 'VERB'],
    ['ceiling', 'NOUN'],
    ['dog', 'NOUN'],
    ['cat', 'NOUN'],
  ]),
  doc([
    ['the', 'DET'],
    ['run', 'NOUN'],
    ['run', 'VERB'],
    ['talking', 'VERB'],
    ['mat', 'NOUN'],
    ['.', 'PUNCT'],
  ]),
];

test('most frequent tag per lowercased word, then suffixes, then the overall majority', () => {
  const lex = fitPosLexicon(corpus);
  assert.is(tagWord(lex, 'run'), 'VERB');
  assert.is(tagWord(lex, 'THE'), 'DET');
  assert.is(tagWord(lex, 'singing'), 'VERB', 'unknown word: its last three letters');
  assert.is(tagWord(lex, 'bat'), 'NOUN', "suffix 'at' (cat, mat)");
  assert.is(tagWord(lex, 'xyzzq'), 'NOUN', 'no known suffix: the overall majority');
  assert.is(tagWord(lex, '!?'), 'PUNCT');
  assert.is(tagWord(lex, '1984'), 'NUM');
  // 12 words; wrong: the NOUN "run" (tagged VERB) -> 11/12
  assert.is(lexiconAccuracy(lex, corpus), 11 / 12);
});

test('tokens carry the tag of the word holding their first non-space character', () => {
  const lex = fitPosLexicon(corpus);
  assert.equal(splitWords("the dog's run, well-known."), [
    { word: 'the', start: 0, end: 3 },
    { word: "dog's", start: 4, end: 9 },
    { word: 'run', start: 10, end: 13 },
    { word: ',', start: 13, end: 14 },
    { word: 'well-known', start: 15, end: 25 },
    { word: '.', start: 25, end: 26 },
  ]);
  const idx = (t: CoarseTag) => COARSE_TAGS.indexOf(t);
  // "The dog" then "walk|ing" split in two pieces, a space-only token, "." glued to "mat"
  const tags = tokenTags(lex, ['The', ' dog', ' walk', 'ing', ' ', ' mat', '.']);
  assert.equal(Array.from(tags), [idx('DET'), idx('NOUN'), idx('VERB'), idx('VERB'), -1, idx('NOUN'), idx('PUNCT')]);
});

test('on Brown: held-out accuracy counted word by word, well above the majority tag', () => {
  const { train, heldOut } = splitDocuments(loadBrown());
  const lex = fitPosLexicon(train);
  let right = 0,
    nouns = 0,
    n = 0;
  for (const d of heldOut)
    for (const s of d.sentences)
      for (const w of s) {
        n++;
        if (w.coarse === 'NOUN') nouns++;
        const known = lex.words.get(w.word.toLowerCase());
        if ((known ?? tagWord(lex, w.word)) === w.coarse) right++;
      }
  const acc = lexiconAccuracy(lex, heldOut);
  assert.is(acc, right / n);
  assert.ok(acc > nouns / n + 0.5, `accuracy ${acc} against the majority tag's ${nouns / n}`);
});

test.run();
