// interp/task-variables.ts: task variables from per-position labels.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { taskVariables } from '../../interp/task-variables.ts';
import { NO_LABEL } from '../../interp/tasks/index.ts';

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

test.run();
