// interp/align.ts on planted data: Y = c X Q + noise with a random orthogonal Q and a scale c is
// recovered (R close to Q, the scale close to c, held-out R^2 close to 1 - the noise share, above identity, random rotations and re-paired
// fits), unrelated X and Y give an R^2 no better than the re-paired null, and the polar factor
// matches U V^T of a closed-form 2 x 2 case.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../engine/random.ts';
import { applyAlignment, fitAlignment, polarFactor, procrustes, randomRotation, rSquared, type Rows } from '../../interp/align.ts';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

/** X with anisotropic Gaussian columns (scales 3 .. 0.3), Y = c X Q + offset + noise of std `noise`. */
function planted(rows: number, d: number, Q: Float64Array, noise: number, rng: Rng, c = 2.5): { X: Rows; Y: Rows } {
  const X = new Float64Array(rows * d),
    Y = new Float64Array(rows * d);
  for (let r = 0; r < rows; r++) for (let j = 0; j < d; j++) X[r * d + j] = (3 - (2.7 * j) / (d - 1)) * rng.normal() + 0.5;
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < d; j++) {
      let s = 2 + noise * rng.normal();
      for (let i = 0; i < d; i++) s += c * X[r * d + i] * Q[i * d + j];
      Y[r * d + j] = s;
    }
  return { X: { data: X, rows, d }, Y: { data: Y, rows, d } };
}

test('polarFactor: the orthogonal factor of a 2 x 2 matrix (rotation times symmetric positive)', () => {
  const t = 0.7;
  const rot = [Math.cos(t), -Math.sin(t), Math.sin(t), Math.cos(t)];
  // M = rot * diag(3, 0.5): its polar factor is rot
  const M = Float64Array.from([rot[0] * 3, rot[1] * 0.5, rot[2] * 3, rot[3] * 0.5]);
  const R = polarFactor(M, 2);
  rot.forEach((v, i) => close(R[i], v, 1e-12, `R[${i}]`));
});

test('procrustes: a planted rotation is recovered and its held-out R^2 is 1 - the noise share', () => {
  const d = 12,
    rng = new Rng('planted');
  const Q = randomRotation(d, rng.fork('Q'));
  const noise = 0.5;
  const train = planted(2000, d, Q, noise, rng.fork('train'));
  const held = planted(1000, d, Q, noise, rng.fork('test'));
  const a = procrustes(train.X, train.Y);
  let err = 0;
  for (let i = 0; i < d * d; i++) err += (a.R[i] - Q[i]) ** 2;
  assert.ok(Math.sqrt(err) < 0.05, `||R - Q||_F = ${Math.sqrt(err)}`);
  close(a.scale, 2.5, 0.01, 'scale');
  // R is orthogonal
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += a.R[k * d + i] * a.R[k * d + j];
      close(s, i === j ? 1 : 0, 1e-10, `R^T R [${i},${j}]`);
    }
  // the variance of c X Q is c^2 times that of X (Q keeps lengths): c^2 x the sum of the column variances
  let signal = 0;
  for (let j = 0; j < d; j++) signal += 2.5 ** 2 * (3 - (2.7 * j) / (d - 1)) ** 2;
  const want = 1 - (d * noise ** 2) / (signal + d * noise ** 2);
  const fit = fitAlignment(train, held, rng.fork('fit'), 5);
  close(fit.aligned, want, 0.02, 'held-out R^2');
  assert.ok(Math.max(...fit.random) < 0.2 && fit.identity < 0.2, `identity ${fit.identity}, random ${fit.random}`);
  assert.ok(Math.max(...fit.shuffled) < 0.2, `re-paired fits ${fit.shuffled}`);
  // applyAlignment is (x - meanX) R + meanY: row 0 by hand
  const y0 = applyAlignment(a, held.X).subarray(0, d);
  for (let j = 0; j < d; j++) {
    let s = a.meanY[j];
    for (let i = 0; i < d; i++) s += a.scale * ((held.X.data[i] as number) - a.meanX[i]) * a.R[i * d + j];
    close(y0[j], s, 1e-4, `aligned row 0 channel ${j}`);
  }
});

test('fitAlignment: unrelated X and Y align no better than the re-paired null', () => {
  const d = 10,
    rng = new Rng('unrelated');
  const gauss = (rows: number, r: Rng): Rows => ({ data: Float64Array.from({ length: rows * d }, () => r.normal()), rows, d });
  const fit = fitAlignment(
    { X: gauss(500, rng.fork('a')), Y: gauss(500, rng.fork('b')) },
    { X: gauss(500, rng.fork('c')), Y: gauss(500, rng.fork('d')) },
    rng.fork('fit'),
    10,
  );
  // between independent clouds the fitted scale is near 0, so the map predicts the mean: R^2 near 0, not above
  assert.ok(fit.alignment.scale < 0.2, `scale ${fit.alignment.scale}`);
  close(fit.aligned, 0, 0.05, 'aligned R^2');
  const nullMean = fit.shuffled.reduce((s, v) => s + v, 0) / fit.shuffled.length;
  close(fit.aligned, nullMean, 0.03, 'aligned vs re-paired null');
  assert.ok(fit.train > fit.aligned, 'the fit is better on its own rows');
});

test('rSquared and procrustes: errors name the thing', () => {
  const X: Rows = { data: new Float64Array(6), rows: 3, d: 2 };
  assert.throws(() => procrustes(X, { data: new Float64Array(4), rows: 2, d: 2 }), /procrustes: 3 rows vs 2/);
  assert.throws(() => rSquared(new Float64Array(2), X, [0, 0]), /rSquared: 2 predictions/);
});

test.run();
