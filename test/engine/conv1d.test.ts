// engine/ops/conv1d.ts: conv1dCausal against a plain loop for several kernel widths (float64 and
// float32), its errors, and the gradient checks (test/engine/grad-cases.ts, float64 finite differences).
import { test } from 'uvu';
import * as mi from '../../engine/index.ts';
import { gradcheckPoisoned } from '../helpers/gradcheck.ts';
import { assertClose, f32, FLOATS, randnOf, throwsNaming, type Mismatch } from '../helpers/ops.ts';
import { GRAD_CASES } from './grad-cases.ts';

const rnd = randnOf(new mi.Rng('ops-test/conv1d'));

// ---- forward values -------------------------------------------------------------------------------
test('conv1dCausal against plain loops', () =>
  mi.tidy(() => {
    for (const dtype of FLOATS) {
      const tol = dtype === 'float64' ? 1e-13 : 2e-6;
      for (const K of [1, 3, 6]) {
        const [B, T, C] = [2, 4, 3];
        const cx = rnd([B, T, C], dtype),
          cw = rnd([C, K], dtype),
          cb = rnd([C], dtype);
        const [xv, wv, bv] = [cx.dataSync(), cw.dataSync(), cb.dataSync()];
        const y: number[] = [];
        for (let b = 0; b < B; b++)
          for (let t = 0; t < T; t++)
            for (let c = 0; c < C; c++) {
              let s = bv[c];
              // y[t] = bias + sum_j w[K-1-j] x[t-j]
              for (let j = 0; j < K && t - j >= 0; j++) s += wv[c * K + K - 1 - j] * xv[(b * T + t - j) * C + c];
              y.push(s);
            }
        assertClose(`conv1dCausal ${dtype} K=${K}`, mi.conv1dCausal(cx, cw, cb).dataSync(), y, tol, 1e-6);
      }
    }
  }));

// ---- errors ---------------------------------------------------------------------------------------
const mismatches: Mismatch[] = [
  ['conv1dCausal weight', () => mi.conv1dCausal(f32([1, 5, 3]), f32([2, 4])), 'conv1dCausal', '[2,4]', '3 channels'],
  ['conv1dCausal input rank', () => mi.conv1dCausal(f32([5, 3]), f32([3, 4])), 'conv1dCausal', '[5,3]'],
];
for (const [name, fn, ...fragments] of mismatches) test(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

// ---- gradients ------------------------------------------------------------------------------------
for (const [name, f, inputs] of GRAD_CASES.conv1d)
  test(`gradcheck: ${name}`, () => {
    gradcheckPoisoned(name, f, inputs);
  });

test.run();
