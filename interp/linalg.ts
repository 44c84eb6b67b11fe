// Small dense linear algebra in plain JS (float64) for the analysis of dynamics: eigenvalues of a
// general real matrix (Hessenberg reduction + Francis double-shift QR), the symmetric eigenproblem
// (cyclic Jacobi), and the top principal components of a data matrix (orthogonal iteration).
// Matrices are row-major Float64Array (or number[][]) of size n x n; sizes here are at most a few
// thousand, so O(n^3) is fine.
import type { Rng } from '../engine/random.ts';

export interface Complex {
  re: number;
  im: number;
}

type MatrixLike = ArrayLike<number> | readonly (readonly number[])[];

function toRowMajor(a: MatrixLike, what: string): { m: Float64Array; n: number } {
  if (Array.isArray(a) && Array.isArray(a[0])) {
    const rows = a as readonly (readonly number[])[];
    const n = rows.length;
    const m = new Float64Array(n * n);
    rows.forEach((r, i) => {
      if (r.length !== n) throw new Error(`${what}: row ${i} has ${r.length} entries, the matrix is ${n} x ${n}`);
      for (let j = 0; j < n; j++) m[i * n + j] = r[j];
    });
    return { m, n };
  }
  const flat = a as ArrayLike<number>;
  const n = Math.round(Math.sqrt(flat.length));
  if (n * n !== flat.length) throw new Error(`${what}: ${flat.length} values is not a square matrix`);
  return { m: Float64Array.from(flat), n };
}

function checkFinite(m: Float64Array, what: string): void {
  for (let i = 0; i < m.length; i++) if (!Number.isFinite(m[i])) throw new Error(`${what}: entry ${i} is ${m[i]}`);
}

/**
 * Reduces a (0-based, row-major, n x n) to upper Hessenberg form in place by stabilised elementary
 * similarity transforms (Gaussian elimination with pivoting; Numerical Recipes' elmhes). Entries
 * below the subdiagonal are set to zero. Eigenvalues are unchanged.
 */
export function hessenberg(a: Float64Array, n: number): void {
  const A = (i: number, j: number) => i * n + j;
  for (let m = 1; m < n - 1; m++) {
    let x = 0,
      piv = m;
    for (let j = m; j < n; j++)
      if (Math.abs(a[A(j, m - 1)]) > Math.abs(x)) {
        x = a[A(j, m - 1)];
        piv = j;
      }
    if (piv !== m) {
      for (let j = m - 1; j < n; j++) {
        const t = a[A(piv, j)];
        a[A(piv, j)] = a[A(m, j)];
        a[A(m, j)] = t;
      }
      for (let j = 0; j < n; j++) {
        const t = a[A(j, piv)];
        a[A(j, piv)] = a[A(j, m)];
        a[A(j, m)] = t;
      }
    }
    if (x === 0) continue;
    for (let i = m + 1; i < n; i++) {
      let y = a[A(i, m - 1)];
      if (y === 0) continue;
      y /= x;
      a[A(i, m - 1)] = 0;
      for (let j = m; j < n; j++) a[A(i, j)] -= y * a[A(m, j)];
      for (let j = 0; j < n; j++) a[A(j, m)] += y * a[A(j, i)];
    }
  }
}

/**
 * Eigenvalues of a general real square matrix: Hessenberg reduction, then the Francis double-shift
 * QR iteration with exceptional shifts (Numerical Recipes' hqr, after EISPACK), deflating 1x1 and
 * 2x2 blocks. Complex eigenvalues come in conjugate pairs. Sorted by modulus, largest first.
 */
export function eigenvalues(matrix: MatrixLike, maxIterations = 60): Complex[] {
  const { m, n } = toRowMajor(matrix, 'eigenvalues');
  checkFinite(m, 'eigenvalues');
  hessenberg(m, n);
  // 1-based view, as the algorithm is usually written: a(i, j) for i, j in 1..n
  const idx = (i: number, j: number) => (i - 1) * n + (j - 1);
  const g = (i: number, j: number) => m[idx(i, j)];
  const s_ = (i: number, j: number, v: number) => {
    m[idx(i, j)] = v;
  };
  const wr = new Float64Array(n + 1),
    wi = new Float64Array(n + 1);
  let anorm = 0;
  for (let i = 1; i <= n; i++) for (let j = Math.max(i - 1, 1); j <= n; j++) anorm += Math.abs(g(i, j));
  let nn = n,
    t = 0;
  while (nn >= 1) {
    let its = 0,
      l: number;
    do {
      for (l = nn; l >= 2; l--) {
        let s = Math.abs(g(l - 1, l - 1)) + Math.abs(g(l, l));
        if (s === 0) s = anorm;
        if (Math.abs(g(l, l - 1)) + s === s) {
          s_(l, l - 1, 0);
          break;
        }
      }
      let x = g(nn, nn);
      if (l === nn) {
        // one root found
        wr[nn] = x + t;
        wi[nn--] = 0;
      } else {
        let y = g(nn - 1, nn - 1);
        let w = g(nn, nn - 1) * g(nn - 1, nn);
        if (l === nn - 1) {
          // two roots found
          const p = 0.5 * (y - x),
            q = p * p + w;
          let z = Math.sqrt(Math.abs(q));
          x += t;
          if (q >= 0) {
            z = p + (p >= 0 ? Math.abs(z) : -Math.abs(z));
            wr[nn - 1] = wr[nn] = x + z;
            if (z) wr[nn] = x - w / z;
            wi[nn - 1] = wi[nn] = 0;
          } else {
            wr[nn - 1] = wr[nn] = x + p;
            wi[nn] = z;
            wi[nn - 1] = -z;
          }
          nn -= 2;
        } else {
          if (its === maxIterations)
            throw new Error(`eigenvalues: no convergence after ${maxIterations} QR iterations (matrix ${n} x ${n})`);
          if (its === 10 || its === 20) {
            // exceptional shift
            t += x;
            for (let i = 1; i <= nn; i++) s_(i, i, g(i, i) - x);
            const s = Math.abs(g(nn, nn - 1)) + Math.abs(g(nn - 1, nn - 2));
            y = x = 0.75 * s;
            w = -0.4375 * s * s;
          }
          ++its;
          let mm: number,
            p = 0,
            q = 0,
            r = 0,
            z = 0;
          for (mm = nn - 2; mm >= l; mm--) {
            // look for two consecutive small subdiagonal elements
            z = g(mm, mm);
            r = x - z;
            const s0 = y - z;
            p = (r * s0 - w) / g(mm + 1, mm) + g(mm, mm + 1);
            q = g(mm + 1, mm + 1) - z - r - s0;
            r = g(mm + 2, mm + 1);
            const s = Math.abs(p) + Math.abs(q) + Math.abs(r);
            p /= s;
            q /= s;
            r /= s;
            if (mm === l) break;
            const u = Math.abs(g(mm, mm - 1)) * (Math.abs(q) + Math.abs(r));
            const v = Math.abs(p) * (Math.abs(g(mm - 1, mm - 1)) + Math.abs(z) + Math.abs(g(mm + 1, mm + 1)));
            if (u + v === v) break;
          }
          for (let i = mm + 2; i <= nn; i++) {
            s_(i, i - 2, 0);
            if (i !== mm + 2) s_(i, i - 3, 0);
          }
          for (let k = mm; k <= nn - 1; k++) {
            // double QR step on rows l..nn, columns mm..nn
            if (k !== mm) {
              p = g(k, k - 1);
              q = g(k + 1, k - 1);
              r = 0;
              if (k !== nn - 1) r = g(k + 2, k - 1);
              x = Math.abs(p) + Math.abs(q) + Math.abs(r);
              if (x !== 0) {
                p /= x;
                q /= x;
                r /= x;
              }
            }
            const norm = Math.sqrt(p * p + q * q + r * r);
            const s = p >= 0 ? norm : -norm;
            if (s === 0) continue;
            if (k === mm) {
              if (l !== mm) s_(k, k - 1, -g(k, k - 1));
            } else s_(k, k - 1, -s * x);
            p += s;
            x = p / s;
            y = q / s;
            z = r / s;
            q /= p;
            r /= p;
            for (let j = k; j <= nn; j++) {
              p = g(k, j) + q * g(k + 1, j);
              if (k !== nn - 1) {
                p += r * g(k + 2, j);
                s_(k + 2, j, g(k + 2, j) - p * z);
              }
              s_(k + 1, j, g(k + 1, j) - p * y);
              s_(k, j, g(k, j) - p * x);
            }
            const mmin = nn < k + 3 ? nn : k + 3;
            for (let i = l; i <= mmin; i++) {
              p = x * g(i, k) + y * g(i, k + 1);
              if (k !== nn - 1) {
                p += z * g(i, k + 2);
                s_(i, k + 2, g(i, k + 2) - p * r);
              }
              s_(i, k + 1, g(i, k + 1) - p * q);
              s_(i, k, g(i, k) - p);
            }
          }
        }
      }
    } while (l < nn - 1);
  }
  const out: Complex[] = [];
  for (let i = 1; i <= n; i++) out.push({ re: wr[i], im: wi[i] });
  return out.sort((a, b) => Math.hypot(b.re, b.im) - Math.hypot(a.re, a.im) || b.re - a.re || b.im - a.im);
}

/** The largest |eigenvalue| (spectral radius). */
export function spectralRadius(eigs: readonly Complex[]): number {
  return eigs.reduce((r, e) => Math.max(r, Math.hypot(e.re, e.im)), 0);
}

/**
 * Eigenvalues (descending) and eigenvectors (vectors[k] is the unit eigenvector of values[k]) of
 * a real symmetric matrix by cyclic Jacobi rotations. The matrix's symmetry is checked.
 */
export function symmetricEigen(matrix: MatrixLike, tol = 1e-12, maxSweeps = 100): { values: number[]; vectors: number[][] } {
  const { m: a, n } = toRowMajor(matrix, 'symmetricEigen');
  checkFinite(a, 'symmetricEigen');
  let scale = 0;
  for (const v of a) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < n; i++)
    for (let j = 0; j < i; j++) {
      if (Math.abs(a[i * n + j] - a[j * n + i]) > 1e-9 * Math.max(scale, 1e-300))
        throw new Error(`symmetricEigen: the matrix is not symmetric at (${i}, ${j})`);
    }
  const v = new Float64Array(n * n);
  for (let i = 0; i < n; i++) v[i * n + i] = 1;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) off += a[i * n + j] ** 2;
    if (Math.sqrt(off) <= tol * Math.max(scale, 1e-300)) break;
    for (let p = 0; p < n; p++)
      for (let q = p + 1; q < n; q++) {
        const apq = a[p * n + q];
        if (apq === 0) continue;
        const theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1),
          s = t * c;
        for (let k = 0; k < n; k++) {
          // A <- A J (columns p, q)
          const akp = a[k * n + p],
            akq = a[k * n + q];
          a[k * n + p] = c * akp - s * akq;
          a[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          // A <- J^T A (rows p, q)
          const apk = a[p * n + k],
            aqk = a[q * n + k];
          a[p * n + k] = c * apk - s * aqk;
          a[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          // V <- V J
          const vkp = v[k * n + p],
            vkq = v[k * n + q];
          v[k * n + p] = c * vkp - s * vkq;
          v[k * n + q] = s * vkp + c * vkq;
        }
      }
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => a[j * n + j] - a[i * n + i]);
  return {
    values: order.map((i) => a[i * n + i]),
    vectors: order.map((i) => Array.from({ length: n }, (_, k) => v[k * n + i])),
  };
}

export interface Pca {
  /** the column means subtracted before projecting [dim] */
  mean: Float64Array;
  /** unit principal directions, k of them, each [dim] */
  components: Float64Array[];
  /** variance along each component */
  variances: number[];
  /** each component's share of the total variance */
  explained: number[];
}

/**
 * The top k principal components of `rows` x `dim` data (row-major) by orthogonal (block power)
 * iteration on the covariance, applied as X^T (X v) so the dim x dim covariance is never formed.
 * Deterministic given the rng. Component signs are fixed so each has a positive largest entry.
 */
export function pca(data: ArrayLike<number>, rows: number, dim: number, k: number, rng: Rng, iterations = 300): Pca {
  if (data.length !== rows * dim) throw new Error(`pca: ${data.length} values is not ${rows} rows x ${dim}`);
  if (rows < 2) throw new Error(`pca: needs at least 2 rows, got ${rows}`);
  k = Math.min(k, dim, rows - 1);
  const mean = new Float64Array(dim);
  for (let r = 0; r < rows; r++) for (let j = 0; j < dim; j++) mean[j] += data[r * dim + j] / rows;
  const X = new Float64Array(rows * dim);
  let total = 0;
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < dim; j++) {
      const v = data[r * dim + j] - mean[j];
      X[r * dim + j] = v;
      total += v * v;
    }
  total /= rows - 1;
  let V = Array.from({ length: k }, () => Float64Array.from({ length: dim }, () => rng.normal()));
  orthonormalise(V);
  const apply = (v: Float64Array) => {
    // covariance times v
    const xv = new Float64Array(rows);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let j = 0; j < dim; j++) s += X[r * dim + j] * v[j];
      xv[r] = s;
    }
    const out = new Float64Array(dim);
    for (let r = 0; r < rows; r++) {
      const s = xv[r] / (rows - 1);
      for (let j = 0; j < dim; j++) out[j] += X[r * dim + j] * s;
    }
    return out;
  };
  for (let it = 0; it < iterations; it++) {
    const next = V.map(apply);
    orthonormalise(next);
    const change = Math.max(...next.map((v, i) => 1 - Math.abs(dot(v, V[i]))));
    V = next;
    if (change < 1e-13) break;
  }
  // Rayleigh-Ritz on the converged subspace, so components come out in order of variance
  const small = V.map((a) => {
    const ca = apply(a);
    return V.map((b) => dot(b, ca));
  });
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) small[i][j] = small[j][i] = (small[i][j] + small[j][i]) / 2;
  const eig = symmetricEigen(small);
  const components = eig.vectors.map((w) => {
    const c = new Float64Array(dim);
    w.forEach((wi, i) => {
      for (let j = 0; j < dim; j++) c[j] += wi * V[i][j];
    });
    let big = 0;
    for (let j = 0; j < dim; j++) if (Math.abs(c[j]) > Math.abs(c[big])) big = j;
    if (c[big] < 0) for (let j = 0; j < dim; j++) c[j] = -c[j];
    return c;
  });
  return { mean, components, variances: eig.values, explained: eig.values.map((v) => (total > 0 ? v / total : 0)) };
}

/** Coordinates of each row on the components: [rows][k]. */
export function project(p: Pca, data: ArrayLike<number>, rows: number): number[][] {
  const dim = p.mean.length;
  return Array.from({ length: rows }, (_, r) =>
    p.components.map((c) => {
      let s = 0;
      for (let j = 0; j < dim; j++) s += (data[r * dim + j] - p.mean[j]) * c[j];
      return s;
    }),
  );
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Modified Gram-Schmidt in place (twice, for stability). */
function orthonormalise(vs: Float64Array[]): void {
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < vs.length; i++) {
      for (let j = 0; j < i; j++) {
        const d = dot(vs[i], vs[j]);
        for (let k = 0; k < vs[i].length; k++) vs[i][k] -= d * vs[j][k];
      }
      const nrm = Math.sqrt(dot(vs[i], vs[i]));
      if (nrm === 0) throw new Error('pca: the data have fewer independent directions than components asked for');
      for (let k = 0; k < vs[i].length; k++) vs[i][k] /= nrm;
    }
  }
}
