// Tokens as strings on a model loaded with its tokenizer.json (mamba/text.ts, MambaLM.toTokens /
// toStrTokens / toString): the fixture tokenizer's encodings and decodings from Hugging Face
// `tokenizers` (cases.json), right padding that leaves the real positions' logits as they are,
// BOS on request, and the errors for a model without a tokenizer or with one too large for it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as mi from '../../engine/index.ts';
import { makeConfig } from '../../mamba/config.ts';
import { fetchPretrained } from '../../mamba/fetch-checkpoint.ts';
import { initMamba } from '../../mamba/model.ts';
import { loadPretrained, savePretrained } from '../../mamba/pretrained.ts';
import { withTempDir } from '../helpers/temp-dir.ts';

const TOK = resolve(import.meta.dirname, '../../../shared/fixtures/hf-mamba/tokenizer');
const TINY = resolve(import.meta.dirname, '../../../shared/fixtures/hf-mamba/tiny/model');
const cases = JSON.parse(readFileSync(join(TOK, 'cases.json'), 'utf-8')) as { text: string; ids: number[]; decoded: string }[];
const vocab = JSON.parse(readFileSync(join(TOK, 'tokenizer.json'), 'utf-8')).model.vocab as Record<string, number>;
const cpu = { backend: mi.cpuBackend() };

/** A checkpoint folder with the fixture tokenizer beside it, for a random model whose vocabulary holds it (320 tokens, padded to 336). */
async function checkpointWithTokenizer(dir: string): Promise<string> {
  const config = makeConfig({ vocab_size: 336, hidden_size: 16, num_hidden_layers: 2, state_size: 4 });
  const model = initMamba(config, new mi.Rng(5), cpu);
  try {
    await savePretrained(model, dir);
  } finally {
    model.dispose();
  }
  copyFileSync(join(TOK, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  return dir;
}

test(
  'loadPretrained attaches tokenizer.json; toTokens, toStrTokens and toString agree with Hugging Face tokenizers',
  withTempDir('mi-text-', async (tmp) => {
    const model = await loadPretrained(await checkpointWithTokenizer(tmp), cpu);
    try {
      assert.ok(model.tokenizer, 'tokenizer attached');
      assert.ok(cases.length >= 5);
      const idToToken = new Map(Object.entries(vocab).map(([t, id]) => [id, t]));
      for (const c of cases) {
        assert.equal(model.toTokens(c.text), [c.ids], `toTokens ${JSON.stringify(c.text)}`);
        assert.is(model.toString(c.ids), c.decoded, `toString ${JSON.stringify(c.text)}`);
        const str = model.toStrTokens(c.text);
        assert.is(str.length, c.ids.length);
        // a character of several bytes split over tokens decodes to U+FFFD piece by piece (as in
        // TransformerLens); printable ASCII spells the text, each token its vocabulary entry with
        // byte-level BPE's space marker read back as a space
        if (/^[\x20-\x7e]*$/.test(c.text)) {
          assert.is(str.join(''), c.decoded, 'the string tokens spell the text');
          str.forEach((s, i) => assert.is(s, idToToken.get(c.ids[i])!.replaceAll('Ġ', ' '), `token ${i} of ${JSON.stringify(c.text)}`));
        }
        assert.equal(model.toStrTokens(c.ids), str, 'from ids as from text');
      }
      assert.equal(model.toTokens(cases[0].text, { prependBos: true }), [[vocab['<|endoftext|>'], ...cases[0].ids]]);
    } finally {
      model.dispose();
    }
  }),
);

test(
  'several texts are right-padded with <|padding|>, and the real positions give the same logits as each text alone',
  withTempDir('mi-text-', async (tmp) => {
    const model = await loadPretrained(await checkpointWithTokenizer(tmp), cpu);
    try {
      const bySize = cases.filter((c) => c.ids.length).sort((x, y) => x.ids.length - y.ids.length);
      const [a, b] = [bySize[0], bySize[bySize.length - 1]];
      const rows = model.toTokens([a.text, b.text]);
      const T = b.ids.length;
      assert.ok(a.ids.length < T, 'the fixture texts differ in length');
      assert.equal(rows[0], [...a.ids, ...Array(T - a.ids.length).fill(vocab['<|padding|>'])]);
      assert.equal(rows[1], b.ids);
      const V = model.config.vocab_size;
      const batched = await mi.tidy(() => model.forward(rows)).data();
      const alone = await mi.tidy(() => model.forward([a.ids])).data();
      for (let i = 0; i < a.ids.length * V; i++) assert.ok(Math.abs(batched[i] - alone[i]) < 1e-5, `logit ${i}`);
    } finally {
      model.dispose();
    }
  }),
);

test(
  'fetchPretrained attaches the folder tokenizer.json on request (tokenizer: true), and none by default',
  withTempDir('mi-text-', async (tmp) => {
    await checkpointWithTokenizer(tmp);
    const base = 'http://127.0.0.1:1/m/';
    const serve = (async (u: string | URL | Request) => {
      try {
        return new Response(readFileSync(join(tmp, String(u).slice(base.length))));
      } catch {
        return new Response('', { status: 404, statusText: 'Not Found' });
      }
    }) as typeof fetch;
    const plain = await fetchPretrained(base, { fetch: serve, ...cpu });
    const withText = await fetchPretrained(base, { fetch: serve, tokenizer: true, ...cpu });
    try {
      assert.is(plain.tokenizer, null);
      assert.equal(withText.toTokens(cases[0].text), [cases[0].ids]);
    } finally {
      plain.dispose();
      withText.dispose();
    }
  }),
);

test('a model without a tokenizer, or with one larger than its vocabulary: one error naming it', async () => {
  const model = await loadPretrained(TINY, cpu);
  try {
    assert.is(model.tokenizer, null);
    assert.throws(() => model.toTokens('the cat'), /MambaLM\.toTokens: the model has no tokenizer \(no tokenizer\.json/);
  } finally {
    model.dispose();
  }
  // the tiny fixture has 64 ids; the fixture tokenizer 320
  try {
    (await loadPretrained(TINY, { ...cpu, tokenizer: join(TOK, 'tokenizer.json') })).dispose();
    assert.unreachable('attached a tokenizer larger than the vocabulary');
  } catch (e) {
    assert.match((e as Error).message, /tokenizer .*tokenizer\.json: 320 tokens, but the model's vocab_size is 64/);
  }
});

test.run();
