// engine/ops/run.ts, the bridge from ops to kernels: a kernel that throws leaves no tensors behind.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../engine/index.ts';
import { f32, i32 } from '../helpers/ops.ts';

test('a failed kernel leaves no tensors behind', () =>
  mi.tidy(() => {
    const table = f32([5, 2]),
      idx = i32([9]);
    const before = mi.liveTensorCount();
    assert.throws(() => mi.embedding(table, idx));
    assert.is(mi.liveTensorCount(), before);
  }));

test.run();
