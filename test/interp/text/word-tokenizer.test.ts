import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tokenizer } from '../../../mamba/tokenizer.ts';
import { loadBrown, parseBrownFile, splitDocuments } from '../../../interp/text/brown.ts';
import {
  buildWordVocab,
  EOT_ID,
  UNK,
  UNK_ID,
  wordId,
  wordTokenizerConfig,
  wordTokenizerJson,
} from '../../../interp/text/word-tokenizer.ts';

const doc = (id: string, text: string) => parseBrownFile(text, id, 'news');
// counts: the 4 (The, the x3), ./. 3, cat 2, dog 2, sat 1, ran 1
const DOCS = [
  doc('a', '\tThe/at cat/nn sat/vbd ./.\n\n\tthe/at dog/nn ran/vbd ./.\n'),
  doc('b', '\tthe/at cat/nn ,/, the/at dog/nn ./.\n'),
];

test('buildWordVocab: specials first, then words by count, ties by code point, lowercased', () => {
  const v = buildWordVocab(DOCS, 7);
  assert.equal(v.tokens, ['<|endoftext|>', '<|padding|>', '<unk>', 'the', '.', 'cat', 'dog']);
  assert.is(wordId(v, 'The'), 3);
  assert.is(wordId(v, 'sat'), UNK_ID);
  // the same documents in another order give the same ids
  assert.equal(buildWordVocab([...DOCS].reverse(), 7).tokens, v.tokens);
  assert.throws(() => buildWordVocab(DOCS, 3), /size must be an integer above 3/);
});

test('the tokenizer.json loads through Tokenizer.fromFile and encodes corpus sentences as the vocabulary does', async () => {
  const { train, heldOut } = splitDocuments(loadBrown());
  const vocab = buildWordVocab(train, 2000);
  const dir = mkdtempSync(join(tmpdir(), 'wordtok-'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(wordTokenizerJson(vocab)));
  // without tokenizer_config.json too: the WordLevel model's own unk_token is used
  const tok = await Tokenizer.fromFile(join(dir, 'tokenizer.json'));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(wordTokenizerConfig()));
  const withConfig = await Tokenizer.fromFile(join(dir, 'tokenizer.json'), join(dir, 'tokenizer_config.json'));
  assert.is(tok.vocabSize, 2000);
  let unks = 0,
    words = 0;
  for (const s of heldOut[0].sentences.slice(0, 40)) {
    const text = s.map((w) => w.word).join(' ');
    const ids = tok.encode(text);
    assert.equal(
      ids,
      s.map((w) => wordId(vocab, w.word)),
      text,
    );
    assert.equal(withConfig.encode(text), ids);
    // round trip modulo lowercasing and <unk>
    const back = tok.decode(ids).split(' ');
    assert.equal(
      back,
      s.map((w) => (wordId(vocab, w.word) === UNK_ID ? UNK : w.word.toLowerCase())),
    );
    unks += ids.filter((i) => i === UNK_ID).length;
    words += ids.length;
  }
  assert.ok(unks > 0 && unks < words / 2, `some but not most words are <unk> (${unks} of ${words})`);
  assert.equal(tok.encode('<|endoftext|> the'), [EOT_ID, wordId(vocab, 'the')]);
});

test.run();
