import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../../engine/random.ts';
import { taskVariables } from '../../../interp/task-variables.ts';
import { brown, getTask, NO_LABEL } from '../../../interp/tasks/index.ts';
import { brownData } from '../../../interp/text/brown-stream.ts';
import { COARSE_TAGS, loadBrown, splitDocuments } from '../../../interp/text/brown.ts';
import { EOT_ID, UNK_ID, wordId } from '../../../interp/text/word-tokenizer.ts';

const V = 500;

test('brown: windows of the held-out stream, targets the next token, labels at hand-checked positions', () => {
  assert.is(getTask('brown'), brown);
  const T = 40;
  const batch = brown.generate({ vocabSize: V, seqLen: T }, new Rng('brown-test'), 4);
  const { heldOut, vocab } = brownData(V);
  // the held-out documents' words, rebuilt here from the corpus (independently of the stream)
  const words: { id: number; tag: number; k: number }[] = [];
  for (const d of splitDocuments(loadBrown()).heldOut) {
    words.push({ id: EOT_ID, tag: NO_LABEL, k: NO_LABEL });
    for (const s of d.sentences) s.forEach((w, k) => words.push({ id: wordId(vocab, w.word), tag: COARSE_TAGS.indexOf(w.coarse), k }));
  }
  assert.is(words.length, heldOut.ids.length);
  for (let b = 0; b < 4; b++) {
    const row = Array.from(batch.inputs.subarray(b * T, (b + 1) * T));
    // find the window in the rebuilt stream (a window of 40 tokens is unique)
    const ids = words.map((w) => w.id);
    const at = ids.findIndex((_, i) => row.every((x, t) => ids[i + t] === x));
    assert.ok(at >= 0, `window ${b} comes from the held-out stream`);
    for (let t = 0; t < T; t++) {
      const r = b * T + t,
        w = words[at + t];
      assert.is(batch.targets[r], words[at + t + 1].id, 'target = next token');
      assert.is(batch.labels.pos[r], w.tag);
      assert.is(batch.labels.positionInSentence[r], w.k);
      assert.is(batch.labels.isNOUN[r], w.tag === COARSE_TAGS.indexOf('NOUN') ? 1 : NO_LABEL);
      assert.is(batch.labels.isVERB[r], w.tag === COARSE_TAGS.indexOf('VERB') ? 1 : NO_LABEL);
      const next = batch.targets[r];
      const repeats = next !== UNK_ID && row.slice(0, t + 1).includes(next);
      assert.is(batch.labels.repeatsEarlier[r], repeats ? 1 : NO_LABEL, `repeatsEarlier at ${t}`);
    }
  }
});

test('brown: training windows come from the training documents only; a hand-made window', () => {
  const { train, heldOut } = brownData(V);
  const opts = brown.trainingOptions!({ vocabSize: V, seqLen: 8 });
  assert.is(opts.heldOut, 0);
  const b = brown.generate(opts, new Rng('train'), 2);
  const inTrain = (row: number[]) => train.ids.some((_, i) => row.every((x, t) => train.ids[i + t] === x));
  assert.ok(inTrain(Array.from(b.inputs.subarray(0, 8))));
  // the first document of the held-out stream: <|endoftext|>, then its first sentence
  const first = splitDocuments(loadBrown()).heldOut[0].sentences[0];
  assert.is(heldOut.ids[0], EOT_ID);
  assert.is(heldOut.positionInSentence[1], 0);
  assert.is(heldOut.positionInSentence[3], 2);
  assert.is(heldOut.tag[2], COARSE_TAGS.indexOf(first[1].coarse));
});

test('brown: task variables are per-tag indicators, position in sentence and repeats (no variable of the tag id)', () => {
  const T = 32;
  const batch = brown.generate({ vocabSize: V, seqLen: T }, new Rng('vars'), 8);
  const vars = taskVariables(batch.labels, { seqLen: T, inputs: batch.inputs });
  const names = vars.map((v) => `${v.name}:${v.kind}`);
  assert.equal(names, [
    'isNOUN:binary',
    'isVERB:binary',
    'isADJ:binary',
    'isDET:binary',
    'isADP:binary',
    'positionInSentence:continuous',
    'repeatsEarlier:binary',
  ]);
  assert.throws(() => brown.generate({ vocabSize: V, seqLen: 1 }, new Rng('x'), 1), /brown: seqLen must be an integer in \[2/);
  assert.throws(
    () => brown.generate({ vocabSize: V, seqLen: 8, heldOut: 2 }, new Rng('x'), 1),
    /brown: heldOut must be an integer in \[0, 1\]/,
  );
});

test('brown: n-gram perplexity baselines, the bigram below the unigram on held-out windows', () => {
  const opts = { vocabSize: V, seqLen: 64 };
  const batches = [brown.generate(opts, new Rng('ppl'), 16)];
  const [uni, bi] = brown.perplexityBaselines!(opts).map((b) => Math.exp(b.crossEntropy(batches).mean));
  assert.ok(bi < uni, `bigram ${bi} < unigram ${uni}`);
  const files = brown.checkpointFiles!(opts);
  assert.equal(Object.keys(files), ['tokenizer.json', 'tokenizer_config.json']);
});

test.run();
