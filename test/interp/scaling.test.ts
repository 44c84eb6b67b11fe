import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join, resolve } from 'node:path';
import * as mi from '../../engine/index.ts';
import { expectedParameterShapes, readConfig } from '../../mamba/config.ts';
import { configFor, fitCost, fitLinear, flopsPerToken, measure, parameterCount, STATE_SPACES } from '../../interp/scaling.ts';

const fixtures = resolve(import.meta.dirname, '../../../shared/fixtures/hf-mamba');

test('parameterCount equals the sum of the checkpoint shapes (tiny, small fixtures)', async () => {
  for (const name of ['tiny', 'small']) {
    const c = await readConfig(join(fixtures, name, 'model'));
    let n = 0;
    for (const shape of expectedParameterShapes(c).values()) n += shape.reduce((a, b) => a * b, 1);
    assert.is(parameterCount(c), n, name);
  }
});

test('the state-spaces checkpoints have their advertised sizes', () => {
  const sizes = STATE_SPACES.map(
    (s) => parameterCount(configFor({ hidden: s.hidden, layers: s.layers, stateSize: 16, vocab: 50280, expand: 2 })) / 1e6,
  );
  // 130M, 370M, 790M, 1.4B, 2.8B (names round; vocab 50280 without padding)
  const expected = [130, 370, 790, 1400, 2800];
  sizes.forEach((s, i) => assert.ok(Math.abs(s - expected[i]) / expected[i] < 0.06, `${STATE_SPACES[i].name}: ${s.toFixed(0)}M`));
});

test('flopsPerToken is about 2 x parameters for a large model (projections dominate)', () => {
  const c = configFor({ hidden: 768, layers: 24, stateSize: 16, vocab: 50280, expand: 2 });
  const ratio = flopsPerToken(c) / (2 * parameterCount(c));
  assert.ok(ratio > 0.9 && ratio < 1.3, `ratio ${ratio}`);
});

test('fitLinear recovers a known line; fitCost falls back when the slope is not identifiable', () => {
  const f = fitLinear([1, 2, 3, 4], [3, 5, 7, 9]);
  assert.ok(Math.abs(f.slope - 2) < 1e-12 && Math.abs(f.intercept - 1) < 1e-12 && Math.abs(f.r2 - 1) < 1e-12);
  const flat = fitCost([1, 2, 4], [5, 5, 5]);
  assert.is(flat.identified, false);
  assert.is(flat.slope, 5 / 4);
});

test('measure times a small model and reports memory per token on the CPU', async () => {
  const m = await measure({ hidden: 16, layers: 1, seqLen: 8, batch: 2, stateSize: 4, vocab: 16, expand: 2 }, new mi.Rng(1), {
    reps: 1,
    backend: mi.cpuBackend(),
  });
  assert.ok(m.forwardMsPerToken > 0 && m.trainMsPerToken > 0);
  assert.ok(m.peakBytesPerToken > 0, `peak ${m.peakBytesPerToken}`);
  assert.is(m.params, parameterCount(configFor(m)));
});

test.run();
