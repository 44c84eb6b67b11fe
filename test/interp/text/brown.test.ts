import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { coarseTag, loadBrown, parseBrownFile, splitDocuments, type BrownDocument } from '../../../interp/text/brown.ts';

// two sentences in the corpus format (tab-indented, blank lines between), tags chosen to hit every rule
const SNIPPET = `

\tThe/at Fulton/np-tl County/nn-tl said/vbd \`\`/\`\` he's/pps+bez n't/* 1/2/cd ./.


\tCan't/md* Mr./np-hl Jones'/np$ la/fw-at go/vb ?/.

`;

test('parseBrownFile: sentences by blank lines, word/tag split at the last slash, coarse tags', () => {
  const doc = parseBrownFile(SNIPPET, 'ca01', 'news');
  assert.is(doc.id, 'ca01');
  assert.is(doc.category, 'news');
  assert.is(doc.sentences.length, 2);
  assert.equal(
    doc.sentences[0].map((w) => [w.word, w.tag, w.coarse]),
    [
      ['The', 'at', 'DET'],
      ['Fulton', 'np-tl', 'NOUN'],
      ['County', 'nn-tl', 'NOUN'],
      ['said', 'vbd', 'VERB'],
      ['``', '``', 'PUNCT'],
      ["he's", 'pps+bez', 'PRON'],
      ["n't", '*', 'ADV'],
      ['1/2', 'cd', 'NUM'],
      ['.', '.', 'PUNCT'],
    ],
  );
  assert.equal(
    doc.sentences[1].map((w) => w.coarse),
    ['VERB', 'NOUN', 'NOUN', 'X', 'VERB', 'PUNCT'],
  );
});

test('coarseTag: the rules in order (fw- first, compound by its first part, stacked suffixes, $ and *)', () => {
  assert.is(coarseTag('fw-nn'), 'X');
  assert.is(coarseTag('fw-in+at'), 'X');
  assert.is(coarseTag('vb+ppo'), 'VERB');
  assert.is(coarseTag('ppss+md'), 'PRON');
  assert.is(coarseTag('nn-tl-hl'), 'NOUN');
  assert.is(coarseTag('ppss+ber-n'), 'PRON');
  assert.is(coarseTag('pp$$'), 'PRON');
  assert.is(coarseTag('nns$-tl'), 'NOUN');
  assert.is(coarseTag('bedz*'), 'VERB');
  assert.is(coarseTag('ex'), 'DET');
  assert.is(coarseTag('to'), 'PRT');
  assert.is(coarseTag('od'), 'ADJ');
  assert.is(coarseTag('ql'), 'ADV');
  assert.is(coarseTag('NN-TL'), 'NOUN');
  assert.throws(() => coarseTag('zz'), /brown: unknown tag 'zz'/);
});

test('parseBrownFile: a token without a tag, or an unknown tag, is one error naming the file and line', () => {
  assert.throws(() => parseBrownFile('\tThe/at jury\n', 'cb02', 'x'), /brown cb02: line 1: token 'jury' is not word\/tag/);
  assert.throws(() => parseBrownFile('\n\tThe/qq\n', 'cb02', 'x'), /brown cb02: line 2: brown: unknown tag 'qq'/);
});

test('loadBrown on a folder in the package layout; splitDocuments holds out every 10th of each category', () => {
  const dir = mkdtempSync(join(tmpdir(), 'brown-'));
  const ids = Array.from({ length: 23 }, (_, i) => `c${i < 20 ? 'a' : 'b'}${String(i + 1).padStart(2, '0')}`);
  writeFileSync(join(dir, 'cats.txt'), ids.map((id) => `${id} ${id[1] === 'a' ? 'news' : 'fiction'}`).join('\n'));
  for (const id of ids) writeFileSync(join(dir, id), `\n\n\t${id}/nn ./.\n`);
  const docs = loadBrown(dir);
  assert.is(docs.length, 23);
  assert.is(docs[4].sentences[0][0].word, 'ca05');
  const { train, heldOut } = splitDocuments([...docs].reverse());
  // news: ca10 and ca20 (the 10th and 20th by id); fiction has 3, none held out
  assert.equal(heldOut.map((d) => d.id).sort(), ['ca10', 'ca20']);
  assert.is(train.length, 21);
  assert.not.ok(train.some((d) => heldOut.includes(d)));
});

test('the installed corpus: 500 documents, 1,161,192 tokens, every tag mapped, 41 held out', () => {
  const docs: BrownDocument[] = loadBrown();
  assert.is(docs.length, 500);
  let tokens = 0;
  for (const d of docs) for (const s of d.sentences) tokens += s.length;
  assert.is(tokens, 1161192);
  const { train, heldOut } = splitDocuments(docs);
  assert.is(heldOut.length, 41);
  assert.is(train.length + heldOut.length, 500);
  assert.equal(
    docs[0].sentences[0].slice(0, 3).map((w) => `${w.word}/${w.coarse}`),
    ['The/DET', 'Fulton/NOUN', 'County/NOUN'],
  );
});

test.run();
