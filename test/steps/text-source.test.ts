// `--model DIR --text FILE` (steps/text-source.ts): a checkpoint with its tokenizer.json studied on
// a small text file and a JSONL file, steps 2-4. The collected sequences are the files' token
// windows, recomputed here from the text with the tokenizer (BOS first in each document, never
// across documents), each named by its file, document and offset; step 3's top examples show the
// text and where it comes from; step 4 probes the text's own variable and its words' parts of speech
// (the Brown lexicon tagger's, recomputed here from the tokens). And the one-line errors:
// --text without --model, a checkpoint without a tokenizer, a bad JSONL line (nothing written).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as mi from '../../engine/index.ts';
import { makeConfig } from '../../mamba/config.ts';
import { initMamba } from '../../mamba/model.ts';
import { savePretrained } from '../../mamba/pretrained.ts';
import { Tokenizer } from '../../mamba/tokenizer.ts';
import { loadBrown, splitDocuments } from '../../interp/text/brown.ts';
import { fitPosLexicon, tokenTags } from '../../interp/text/pos-lexicon.ts';
import { COLLECT_DIR, loadCollections, loadSources, loadTokens, SAE_DIR } from '../../steps/artefacts.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const TOK = resolve(ROOT, '../shared/fixtures/hf-mamba/tokenizer/tokenizer.json');
const T = 32; // the quick preset's train.seqLen
const tmp = mkdtempSync(join(tmpdir(), 'mi-text-run-'));
process.once('exit', () => rmSync(tmp, { recursive: true, force: true }));

const run = (args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'steps/run.ts'), ...args, '--quick', '--backend', 'cpu'], {
    cwd: ROOT,
    encoding: 'utf-8',
    timeout: 300_000,
  });

const model = join(tmp, 'model');
const plain = join(tmp, 'story.txt');
const jsonl = join(tmp, 'docs', 'a.jsonl');
const sentences = [
  'The cat sat on the mat and the dog sat on the rug.',
  'Mamba reads tokens one at a time, keeping a state.',
  'A state space model carries what it has read forward.',
];
const docs = [sentences.join(' ').repeat(6), `${sentences[2]} ${sentences[0]}`.repeat(5), 'too short'];

test.before(async () => {
  const m = initMamba(makeConfig({ vocab_size: 336, hidden_size: 16, num_hidden_layers: 2, state_size: 4 }), new mi.Rng(7), {
    backend: mi.cpuBackend(),
  });
  await savePretrained(m, model);
  m.dispose();
  copyFileSync(TOK, join(model, 'tokenizer.json'));
  writeFileSync(plain, Array.from({ length: 12 }, (_, i) => sentences[i % 3]).join('\n'));
  mkdirSync(join(tmp, 'docs'));
  writeFileSync(jsonl, `${docs.map((text, i) => JSON.stringify({ id: i, text })).join('\n')}\n`);
});

test('steps 2-4 on the text: windows recomputed from the files, examples with text and place, probes of the text', async () => {
  const out = join(tmp, 'run');
  const r = run(['--step', '4', '--model', model, '--text', plain, '--text', join(tmp, 'docs', '*.jsonl'), '--out', out]);
  assert.is(r.status, 0, `${r.stdout}\n${r.stderr}`.slice(-3000));
  assert.match(r.stdout, /text: 2 file\(s\), \d+ document\(s\) with \d+ windows of 32 tokens/);

  // every window of every document, from the text itself
  const tok = await Tokenizer.fromFile(TOK);
  const bos = tok.tokenToId('<|endoftext|>')!;
  const streams = new Map<string, number[]>([[`${plain}#0`, [bos, ...tok.encode(`${readFileSync(plain, 'utf8')}\n`)]]]);
  docs.forEach((text, d) => streams.set(`${jsonl}#${d}`, [bos, ...tok.encode(text)]));
  const [c] = loadCollections(out);
  const sources = loadSources(out, c)!;
  const tokens = await loadTokens(out, c);
  assert.is(sources.length, c.batch);
  for (const [i, s] of sources.entries()) {
    const stream = streams.get(`${s.source}#${s.doc}`)!;
    assert.ok(stream, `${s.source} doc ${s.doc} is a document of the files`);
    assert.is(s.start % T, 0, 'windows start at multiples of the context');
    assert.ok(s.start + T <= stream.length, 'a whole window, inside its document');
    assert.equal(Array.from(tokens.inputs.subarray(i * T, (i + 1) * T)), stream.slice(s.start, s.start + T), `sequence ${i}`);
  }
  assert.not.ok(
    sources.some((s) => s.source === jsonl && s.doc === 2),
    'a document shorter than a window gives none',
  );
  assert.ok(existsSync(join(out, COLLECT_DIR, c.dir, 'sources.json')));

  // step 3's top examples: the tokens as strings, and their place in the text
  const examples = JSON.parse(readFileSync(join(out, SAE_DIR, 'examples.json'), 'utf8')) as {
    examples: { context: number[]; text?: string[]; where?: string }[];
  }[];
  const ex = examples.flatMap((e) => e.examples);
  assert.ok(ex.length > 0);
  for (const x of ex) {
    assert.equal(
      x.text,
      x.context.map((id) => tok.decode([id])),
    );
    assert.match(x.where!, /^(story\.txt|a\.jsonl) doc \d+ token \d+$/);
  }
  const probes = JSON.parse(readFileSync(join(out, 'step-04-probes', 'report.json'), 'utf8'));
  assert.match(JSON.stringify(probes), /repeatsEarlier/, 'step 4 probes the text variable');

  // parts of speech: the collected labels are the lexicon tagger's, recomputed here from the tokens'
  // strings, and step 4 reports a held-out accuracy for the tags' probes
  const lexicon = fitPosLexicon(splitDocuments(loadBrown()).train);
  const { labels } = await loadTokens(out, c);
  const nouns = ['cat', 'mat', 'dog', 'rug', 'state', 'model', 'tokens', 'time'];
  let checked = 0;
  for (let i = 0; i < sources.length; i++) {
    const ids = Array.from(tokens.inputs.subarray(i * T, (i + 1) * T));
    const want = tokenTags(
      lexicon,
      ids.map((id) => (id === bos ? '' : tok.decode([id]))),
    );
    assert.equal(
      Array.from(labels.pos.subarray(i * T, (i + 1) * T)),
      Array.from(want, (t) => (t < 0 ? -1 : t)),
      `pos of sequence ${i}`,
    );
    for (let t = 0; t < T; t++) {
      const word = tok.decode([ids[t]]).trim();
      if (nouns.includes(word)) {
        assert.is(labels.isNOUN[i * T + t], 1, `"${word}" is a noun`);
        checked++;
      }
      if (word === 'the') assert.is(labels.isDET[i * T + t], 1, '"the" is a determiner');
    }
  }
  assert.ok(checked > 0, 'some nouns were checked');
  const nounClaim = probes.claims.find((x: { statement: string }) => /reads isNOUN from/.test(x.statement));
  assert.ok(nounClaim, 'step 4 probes isNOUN');
  assert.match(nounClaim.statement, /held-out accuracy \d\.\d+ on unseen sequences/);
});

test('--text errors: one line, non-zero, nothing written', () => {
  const noModel = run(['--step', '2', '--text', plain, '--out', join(tmp, 'e1')]);
  assert.is.not(noModel.status, 0);
  assert.match(noModel.stderr, /--text needs --model/);
  const fixture = resolve(ROOT, '../shared/fixtures/hf-mamba/tiny/model');
  const noTok = run(['--step', '2', '--model', fixture, '--text', plain, '--out', join(tmp, 'e2')]);
  assert.match(noTok.stderr, /--text: the checkpoint .* has no tokenizer\.json/);
  const bad = join(tmp, 'bad.jsonl');
  writeFileSync(bad, `${JSON.stringify({ text: 'fine' })}\n{"txt": "no text field"}\n`);
  const badLine = run(['--step', '2', '--model', model, '--text', bad, '--out', join(tmp, 'e3')]);
  assert.is.not(badLine.status, 0);
  assert.match(badLine.stderr, new RegExp(`${bad}:2: no string field "text"`));
  for (const d of ['e1', 'e2', 'e3']) assert.not.ok(existsSync(join(tmp, d, 'config.json')), `${d}: nothing written`);
  const missing = run(['--step', '2', '--model', model, '--text', join(tmp, 'nope', '*.txt'), '--out', join(tmp, 'e4')]);
  assert.match(missing.stderr, /--text .*nope\/\*\.txt: no such folder/);
});

test.run();
