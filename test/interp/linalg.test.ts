import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../engine/random.ts';
import { eigenvalues, pca, project, spectralRadius, symmetricEigen, type Complex } from '../../interp/linalg.ts';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b}`);

function sameSpectrum(got: Complex[], want: Complex[], tol: number): void {
  assert.is(got.length, want.length);
  const left = [...want];
  for (const g of got) {
    let best = 0;
    left.forEach((w, i) => {
      if (Math.hypot(w.re - g.re, w.im - g.im) < Math.hypot(left[best].re - g.re, left[best].im - g.im)) best = i;
    });
    const w = left.splice(best, 1)[0];
    assert.ok(Math.hypot(w.re - g.re, w.im - g.im) <= tol, `eigenvalue ${g.re}+${g.im}i has no match (nearest ${w.re}+${w.im}i)`);
  }
}

test('eigenvalues: diagonal, triangular and a rotation', () => {
  sameSpectrum(
    eigenvalues([
      [3, 0, 0],
      [0, -1, 0],
      [0, 0, 0.5],
    ]),
    [
      { re: 3, im: 0 },
      { re: -1, im: 0 },
      { re: 0.5, im: 0 },
    ],
    1e-12,
  );
  sameSpectrum(
    eigenvalues([
      [2, 5, 7],
      [0, 3, 1],
      [0, 0, -4],
    ]),
    [
      { re: 2, im: 0 },
      { re: 3, im: 0 },
      { re: -4, im: 0 },
    ],
    1e-10,
  );
  const th = 0.3,
    r = 0.9;
  sameSpectrum(
    eigenvalues([
      [r * Math.cos(th), -r * Math.sin(th)],
      [r * Math.sin(th), r * Math.cos(th)],
    ]),
    [
      { re: r * Math.cos(th), im: r * Math.sin(th) },
      { re: r * Math.cos(th), im: -r * Math.sin(th) },
    ],
    1e-12,
  );
});

test('eigenvalues: companion matrix of a polynomial with known complex and real roots', () => {
  // roots 1 +- 2i, -3, 0.5, 2: p(x) = (x^2 - 2x + 5)(x + 3)(x - 0.5)(x - 2)
  const roots: Complex[] = [
    { re: 1, im: 2 },
    { re: 1, im: -2 },
    { re: -3, im: 0 },
    { re: 0.5, im: 0 },
    { re: 2, im: 0 },
  ];
  let poly: Complex[] = [{ re: 1, im: 0 }]; // coefficients, highest degree first
  for (const z of roots) {
    const next: Complex[] = [...poly.map((c) => ({ ...c })), { re: 0, im: 0 }];
    for (let i = 1; i < next.length; i++) {
      const c = poly[i - 1];
      next[i] = { re: next[i].re - (c.re * z.re - c.im * z.im), im: next[i].im - (c.re * z.im + c.im * z.re) };
    }
    poly = next;
  }
  const n = roots.length;
  const comp = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === 0 ? -poly[j + 1].re : j === i - 1 ? 1 : 0)));
  sameSpectrum(eigenvalues(comp), roots, 1e-9);
});

test('eigenvalues: similarity transform of a block-diagonal matrix; trace and radius agree', () => {
  const rng = new Rng('linalg-sim');
  const n = 12;
  // D: 2x2 rotation-scaling blocks and reals
  const D = Array.from({ length: n }, () => new Array(n).fill(0));
  const want: Complex[] = [];
  for (let i = 0; i < n; i += 2) {
    const r = 0.2 + 0.07 * i,
      th = 0.1 * (i + 1);
    if (i % 4 === 0) {
      D[i][i] = D[i + 1][i + 1] = r * Math.cos(th);
      D[i][i + 1] = -r * Math.sin(th);
      D[i + 1][i] = r * Math.sin(th);
      want.push({ re: r * Math.cos(th), im: r * Math.sin(th) }, { re: r * Math.cos(th), im: -r * Math.sin(th) });
    } else {
      D[i][i] = r;
      D[i + 1][i + 1] = -r / 2;
      want.push({ re: r, im: 0 }, { re: -r / 2, im: 0 });
    }
  }
  // S random (well conditioned: identity + small noise), A = S D S^-1 computed via solving
  const S = Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (i === j ? 1 : 0) + 0.2 * rng.normal()));
  const SD = S.map((row) => Array.from({ length: n }, (_, j) => row.reduce((s, v, k) => s + v * D[k][j], 0)));
  // A S = S D  =>  A = SD S^-1: solve A from S^T A^T = (SD)^T by Gauss-Jordan on S^T
  const inv = invert(S);
  const A = SD.map((row) => Array.from({ length: n }, (_, j) => row.reduce((s, v, k) => s + v * inv[k][j], 0)));
  const eig = eigenvalues(A);
  sameSpectrum(eig, want, 1e-8);
  close(
    eig.reduce((s, e) => s + e.re, 0),
    A.reduce((s, r, i) => s + r[i], 0),
    1e-9,
    'trace',
  );
  close(spectralRadius(eig), Math.max(...want.map((w) => Math.hypot(w.re, w.im))), 1e-8, 'spectral radius');
});

test('eigenvalues: a non-finite entry is an error', () => {
  assert.throws(
    () =>
      eigenvalues([
        [1, NaN],
        [0, 1],
      ]),
    /entry 1 is NaN/,
  );
  assert.throws(() => eigenvalues([1, 2, 3]), /not a square matrix/);
});

test('symmetricEigen: known 3x3 and reconstruction', () => {
  // eigenvalues of [[2,1,0],[1,2,1],[0,1,2]] are 2 - sqrt2, 2, 2 + sqrt2
  const M = [
    [2, 1, 0],
    [1, 2, 1],
    [0, 1, 2],
  ];
  const { values, vectors } = symmetricEigen(M);
  close(values[0], 2 + Math.SQRT2, 1e-12, 'l0');
  close(values[1], 2, 1e-12, 'l1');
  close(values[2], 2 - Math.SQRT2, 1e-12, 'l2');
  for (let k = 0; k < 3; k++) {
    const Mv = M.map((row) => row.reduce((s, v, j) => s + v * vectors[k][j], 0));
    Mv.forEach((x, i) => close(x, values[k] * vectors[k][i], 1e-11, `M v${k}[${i}]`));
  }
  assert.throws(
    () =>
      symmetricEigen([
        [1, 2],
        [3, 1],
      ]),
    /not symmetric/,
  );
});

test('pca: recovers planted directions and their variances', () => {
  const rng = new Rng('linalg-pca');
  const dim = 20,
    rows = 4000;
  const u = new Float64Array(dim),
    w = new Float64Array(dim);
  u[3] = 1;
  w[7] = Math.SQRT1_2;
  w[8] = -Math.SQRT1_2;
  const data = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const a = 3 * rng.normal(),
      b = 1.5 * rng.normal();
    for (let j = 0; j < dim; j++) data[r * dim + j] = 5 + a * u[j] + b * w[j] + 0.05 * rng.normal();
  }
  const p = pca(data, rows, dim, 2, new Rng('pca-init'));
  assert.ok(Math.abs(p.components[0][3]) > 0.999, `first component ${p.components[0]}`);
  assert.ok(Math.abs(p.components[1][7] * Math.SQRT1_2 - p.components[1][8] * Math.SQRT1_2) > 0.999);
  close(p.variances[0], 9, 0.6, 'variance 0');
  close(p.variances[1], 2.25, 0.15, 'variance 1');
  assert.ok(p.explained[0] > p.explained[1] && p.explained[0] + p.explained[1] < 1);
  const coords = project(p, data, 3);
  assert.is(coords.length, 3);
  assert.is(coords[0].length, 2);
  assert.equal(pca(data, rows, dim, 2, new Rng('pca-init')).components[0], p.components[0], 'deterministic');
});

function invert(M: number[][]): number[][] {
  const n = M.length;
  const a = M.map((r, i) => [...r, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r][c]) > Math.abs(a[p][c])) p = r;
    [a[c], a[p]] = [a[p], a[c]];
    const d = a[c][c];
    for (let j = 0; j < 2 * n; j++) a[c][j] /= d;
    for (let r = 0; r < n; r++)
      if (r !== c) {
        const f = a[r][c];
        for (let j = 0; j < 2 * n; j++) a[r][j] -= f * a[c][j];
      }
  }
  return a.map((r) => r.slice(n));
}

test.run();
