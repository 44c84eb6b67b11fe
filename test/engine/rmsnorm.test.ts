// engine/ops/rmsnorm.ts: rmsNorm against a plain loop (float64 and float32), the error for a weight
// of the wrong size, and the gradient checks (test/engine/grad-cases.ts, float64 finite differences).
import { test } from 'uvu';
import * as mi from '../../engine/index.ts';
import { gradcheckPoisoned } from '../helpers/gradcheck.ts';
import { assertClose, f32, FLOATS, randnOf, throwsNaming, type Mismatch } from '../helpers/ops.ts';
import { GRAD_CASES } from './grad-cases.ts';

const rnd = randnOf(new mi.Rng('ops-test/rmsnorm'));

// ---- forward values -------------------------------------------------------------------------------
test('rmsNorm against plain loops', () =>
  mi.tidy(() => {
    for (const dtype of FLOATS) {
      const tol = dtype === 'float64' ? 1e-13 : 2e-6;
      const x = rnd([2, 3, 4], dtype),
        w = rnd([4], dtype);
      const xd = x.dataSync(),
        wd = w.dataSync();
      const want: number[] = [];
      for (let r = 0; r < 6; r++) {
        const row = Array.from(xd.subarray(r * 4, r * 4 + 4));
        const rs = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / 4 + 1e-5);
        want.push(...row.map((v, j) => v * rs * wd[j]));
      }
      assertClose(`rmsNorm ${dtype}`, mi.rmsNorm(x, w).dataSync(), want, tol, 1e-7);
    }
  }));

// ---- errors ---------------------------------------------------------------------------------------
const mismatches: Mismatch[] = [['rmsNorm weight', () => mi.rmsNorm(f32([2, 4]), f32([3])), 'rmsNorm', '[3]', '[2,4]']];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

// ---- gradients ------------------------------------------------------------------------------------
for (const [name, f, inputs] of GRAD_CASES.rmsnorm)
  test(`gradcheck: ${name}`, () => {
    gradcheckPoisoned(name, f, inputs);
  });

test.run();
