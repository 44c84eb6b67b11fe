// The --text task (interp/tasks/text-windows.ts): sequences are whole sampled windows, the target
// is the next token of the window, repeatsEarlier marks where that token already occurred, and each
// sequence names its window's place; options that do not fit the windows are one-line errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../../engine/random.ts';
import { IGNORE_INDEX, NO_LABEL, registerTask, textWindowsTask } from '../../../interp/tasks/index.ts';

const windows = [
  { source: 'a.txt', doc: 0, start: 0, ids: [0, 5, 6, 5, 7, 6] },
  { source: 'b.jsonl', doc: 3, start: 6, ids: [8, 8, 9, 1, 2, 9] },
];
const opts = { vocabSize: 10, seqLen: 6 };

test('whole windows, next-token targets, repeatsEarlier at hand-checked positions, sources', () => {
  const task = textWindowsTask(windows);
  const b = task.generate(opts, new Rng(1), 8);
  assert.is(b.sources!.length, 8);
  for (let s = 0; s < 8; s++) {
    const src = b.sources![s];
    const w = windows.find((x) => x.source === src.source && x.start === src.start)!;
    assert.equal(Array.from(b.inputs.subarray(s * 6, s * 6 + 6)), w.ids);
    assert.equal(Array.from(b.targets.subarray(s * 6, s * 6 + 6)), [...w.ids.slice(1), IGNORE_INDEX]);
    // a: the next token 5 at t=2 (seen at t=1), 6 at t=4 (seen at t=2); b: 8 at t=0, 9 at t=4
    const want = w.source === 'a.txt' ? [NO_LABEL, NO_LABEL, 1, NO_LABEL, 1, NO_LABEL] : [1, NO_LABEL, NO_LABEL, NO_LABEL, 1, NO_LABEL];
    assert.equal(Array.from(b.labels.repeatsEarlier.subarray(s * 6, s * 6 + 6)), want, `${w.source}`);
  }
  assert.ok(new Set(b.sources!.map((x) => x.source)).size === 2, 'both windows drawn');
  assert.equal(task.generate(opts, new Rng(1), 8), b, 'seeded');
});

test("with tags: pos and the indicators follow each window's tags; the same draws as without", () => {
  // COARSE_TAGS: NOUN 0, VERB 1, ADJ 2, ADV 3, ..., DET 5, ADP 6; -1 no tag
  const tags = [Int32Array.from([5, 0, 1, -1, 6, 3]), Int32Array.from([0, 0, 2, 1, -1, 5])];
  const task = textWindowsTask(windows, tags);
  const b = task.generate(opts, new Rng(1), 8);
  const plain = textWindowsTask(windows).generate(opts, new Rng(1), 8);
  assert.equal(b.inputs, plain.inputs, 'tags do not change which windows are drawn');
  const names = { NOUN: 0, VERB: 1, ADJ: 2, DET: 5, ADP: 6 };
  for (let s = 0; s < 8; s++) {
    const w = b.sources![s].source === 'a.txt' ? 0 : 1;
    for (let t = 0; t < 6; t++) {
      const tag = tags[w][t];
      assert.is(b.labels.pos[s * 6 + t], tag < 0 ? NO_LABEL : tag);
      for (const [name, k] of Object.entries(names))
        assert.is(b.labels[`is${name}`][s * 6 + t], tag === k ? 1 : NO_LABEL, `is${name} ${s} ${t}`);
    }
  }
  assert.throws(() => textWindowsTask(windows, [tags[0]]), /1 tag rows for 2 windows of 6 tokens/);
});

test('errors: seqLen other than the windows, ids outside the vocabulary, a built-in name', () => {
  const task = textWindowsTask(windows);
  assert.throws(() => task.generate({ vocabSize: 10, seqLen: 5 }, new Rng(1), 1), /text: seqLen 5, but the windows have 6 tokens/);
  assert.throws(() => task.generate({ vocabSize: 9, seqLen: 6 }, new Rng(1), 1), /token id 9 .* outside the model's vocabulary \(9\)/);
  assert.throws(() => textWindowsTask([]), /no windows/);
  assert.throws(() => registerTask({ ...task, name: 'induction' } as never), /'induction' is a built-in task/);
});

test.run();
