// interp/task-variables.ts: task variables from per-position labels.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../engine/random.ts';
import { determinedBy, isFunctionOf, taskVariables } from '../../interp/task-variables.ts';
import { induction, mqar, NO_LABEL, selectiveCopying } from '../../interp/tasks/index.ts';

const _ = NO_LABEL;

test('taskVariables: indicator -> binary over all rows, token -> upper-half bit where defined, others numeric', () => {
  const vars = taskVariables(
    {
      isTrigger: [_, 1, _, _, 1, _, _, _, 1, _],
      copyToken: [_, 2, 9, 5, 7, _, 3, 8, _, 4],
      distance: [_, 3, 1, 4, 1, 5, 9, 2, 6, _],
      everywhere: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
    },
    { minRows: 3 },
  );
  assert.equal(
    vars.map((v) => [v.name, v.kind]),
    [
      ['isTrigger', 'binary'],
      ['copyToken>=6', 'binary'],
      ['distance', 'continuous'],
    ],
  );
  assert.equal(Array.from(vars[0].rows), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(Array.from(vars[0].values), [0, 1, 0, 0, 1, 0, 0, 0, 1, 0]);
  assert.equal(Array.from(vars[1].rows), [1, 2, 3, 4, 6, 7, 9]);
  assert.equal(Array.from(vars[1].values), [0, 1, 0, 1, 0, 1, 0]); // ids 2..9: upper half is 6..9
  assert.equal(Array.from(vars[2].values), [3, 1, 4, 1, 5, 9, 2, 6]);
  assert.equal(taskVariables({ rare: [_, 1, _, _] }).length, 0, 'fewer than minRows (8) defined rows');
});

test('taskVariables with seqLen and inputs: per-row sequence, position and token; isFunctionOf needs repeated keys', () => {
  const labels = { distance: [_, 3, _, 1, 4, _] };
  const [v] = taskVariables(labels, { minRows: 2, seqLen: 3, inputs: [7, 8, 9, 7, 8, 9] });
  assert.equal(Array.from(v.rows), [1, 3, 4]);
  assert.equal(Array.from(v.sequence!), [0, 1, 1]);
  assert.equal(Array.from(v.position!), [1, 0, 1]);
  assert.equal(Array.from(v.token!), [8, 7, 8]);
  assert.is(v.determinedBy, null, 'position 1 has values 3 and 4');
  assert.ok(isFunctionOf([0, 0, 1, 1], [5, 5, 6, 6]));
  assert.not.ok(isFunctionOf([0, 0, 1, 1], [5, 6, 6, 6]), 'key 0 has two values');
  assert.not.ok(isFunctionOf([0, 1, 2, 3], [5, 6, 7, 8]), 'unique keys: trivially a function, says nothing');
  assert.is(determinedBy({ values: [1, 0, 1, 0], position: [0, 1, 0, 1], token: [3, 3, 3, 3] }), 'position');
  assert.is(determinedBy({ values: [1, 0, 1, 0], position: [0, 0, 1, 1], token: [3, 4, 3, 4] }), 'token');
  assert.throws(() => taskVariables(labels, { minRows: 2, seqLen: 3, inputs: [1, 2] }), /inputs has 2 tokens/);
});

test("the tasks' variables: which are a function of position or of the current token alone", () => {
  // Planted by the generators' definitions: isTrigger = (token is TRIGGER); MQAR's kvPair =
  // floor(position / 2); selective copying's outputIndex = position - L - 1. Every other variable
  // depends on where things sit in the sequence or on earlier tokens, so it must come out null.
  const expected: Record<string, Record<string, 'position' | 'token' | null>> = {
    induction: { isTrigger: 'token', copyToken: null, sourcePos: null, distance: null },
    mqar: { kvPair: 'position', pairIndex: null, keyPos: null, value: null, distance: null },
    'selective-copying': { dataIndex: null, outputIndex: 'position', sourcePos: null, copyToken: null },
  };
  const gens = {
    induction: () => induction.generate({ vocabSize: 16, seqLen: 64, occurrences: 4 }, new Rng('ind'), 64),
    mqar: () => mqar.generate({ vocabSize: 64, seqLen: 64, numPairs: 8 }, new Rng('mq'), 64),
    'selective-copying': () => selectiveCopying.generate({ vocabSize: 16, seqLen: 64, numTokens: 3 }, new Rng('sc'), 64),
  };
  for (const [task, gen] of Object.entries(gens)) {
    const b = gen();
    const vars = taskVariables(b.labels, { seqLen: 64, inputs: b.inputs });
    assert.equal(Object.fromEntries(vars.map((v) => [v.label, v.determinedBy])), expected[task], task);
  }
});

test.run();
