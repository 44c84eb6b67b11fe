import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Tokenizer } from '../../mamba/tokenizer.ts';

const dir = resolve(import.meta.dirname, '../../../shared/fixtures/hf-mamba/tokenizer');
const cases = JSON.parse(readFileSync(resolve(dir, 'cases.json'), 'utf-8')) as { text: string; ids: number[]; decoded: string }[];

test('tokenizer reproduces the Hugging Face tokenizers encodings and decodings', async () => {
  const tok = await Tokenizer.fromFile(resolve(dir, 'tokenizer.json'));
  assert.ok(cases.length >= 5);
  for (const c of cases) {
    assert.equal(tok.encode(c.text), c.ids, `encode ${JSON.stringify(c.text)}`);
    assert.is(tok.decode(c.ids), c.decoded, `decode ${JSON.stringify(c.text)}`);
  }
});

test('tokenizer exposes the vocabulary and special tokens', async () => {
  const tok = await Tokenizer.fromFile(resolve(dir, 'tokenizer.json'));
  const vocab = JSON.parse(readFileSync(resolve(dir, 'tokenizer.json'), 'utf-8')).model.vocab as Record<string, number>;
  assert.is(tok.vocabSize, Object.keys(vocab).length);
  assert.is(tok.tokenToId('<|endoftext|>'), 0);
  assert.is(tok.idToToken(0), '<|endoftext|>');
  assert.is(tok.decode([0, ...cases[0].ids]), `<|endoftext|>${cases[0].decoded}`);
  assert.is(tok.decode([0, ...cases[0].ids], { skipSpecialTokens: true }), cases[0].decoded);
});

test('tokenizer errors name the file and the bad id', async () => {
  const tok = await Tokenizer.fromFile(resolve(dir, 'tokenizer.json'));
  assert.throws(() => tok.decode([1_000_000]), /tokenizer .*tokenizer\.json.*id 1000000/);
  try {
    await Tokenizer.fromFile(resolve(dir, 'cases.json'));
    assert.unreachable('cases.json is not a tokenizer');
  } catch (e) {
    assert.match((e as Error).message, /cases\.json.*no "model" field/);
  }
});

test.run();
