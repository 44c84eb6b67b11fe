// exp64, the scan's inlineable exp: within about 1 ulp of Math.exp over the range the scan uses and
// beyond, and Math.exp's answers at the edges (NaN, infinities, overflow, underflow).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { exp64 } from '../../../engine/cpu/exp64.ts';
import * as mi from '../../../engine/index.ts';

test('relative error against Math.exp at most 2^-51 on [-700, 700]', () => {
  const rng = new mi.Rng('exp64');
  let worst = 0,
    at = 0;
  for (let i = 0; i < 200000; i++) {
    // dense near 0 (the scan's delta * A), spread out to the ends of the fast range
    const x = i % 2 ? (rng.uniform() - 0.5) * 60 : (rng.uniform() - 0.5) * 1399;
    const want = Math.exp(x);
    const err = Math.abs(exp64(x) - want) / want;
    if (err > worst) {
      worst = err;
      at = x;
    }
  }
  assert.ok(worst <= 2 ** -51, `worst relative error ${worst} at x = ${at}`);
});

test('exact and edge values', () => {
  assert.is(exp64(0), 1);
  assert.is(exp64(-0), 1);
  for (const x of [NaN, Infinity, -Infinity, 710, -746, -1e308, 1e308]) assert.ok(Object.is(exp64(x), Math.exp(x)), `exp64(${x})`);
  assert.ok(exp64(-745) > 0 && exp64(-745) === Math.exp(-745));
});

test.run();
