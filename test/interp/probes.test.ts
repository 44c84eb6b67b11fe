import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../engine/random.ts';
import * as pr from '../../interp/probes.ts';

const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);
const soft = (u: number, t: number) => Math.sign(u) * Math.max(Math.abs(u) - t, 0);

/** n x p Gaussian design; columns j and j+1 share a common factor `rho` to make it correlated. */
function gaussianDesign(rng: Rng, n: number, p: number, rho = 0): pr.Matrix {
  const data = new Float64Array(n * p);
  for (let i = 0; i < n; i++) {
    const common = rng.normal();
    for (let j = 0; j < p; j++) data[i * p + j] = Math.sqrt(1 - rho) * rng.normal() + Math.sqrt(rho) * common;
  }
  return { data, rows: n, cols: p };
}

function linearResponse(X: pr.Matrix, beta: Map<number, number>, intercept: number, noise: number, rng: Rng): Float64Array {
  return Float64Array.from({ length: X.rows }, (_, i) => {
    let s = intercept + noise * rng.normal();
    for (const [j, b] of beta) s += b * X.data[i * X.cols + j];
    return s;
  });
}

/** Columns 1..p of a 16 x 16 Sylvester Hadamard matrix: centred, unit population sd, orthogonal. */
function hadamardDesign(p: number, scales: number[], offsets: number[]): pr.Matrix {
  const n = 16,
    data = new Float64Array(n * p);
  const bit = (x: number) => {
    let c = 0;
    while (x) {
      c += x & 1;
      x >>= 1;
    }
    return c & 1;
  };
  for (let i = 0; i < n; i++) for (let j = 0; j < p; j++) data[i * p + j] = offsets[j] + scales[j] * (bit(i & (j + 1)) ? -1 : 1);
  return { data, rows: n, cols: p };
}

const setEq = (a: number[], b: number[]) => a.length === b.length && a.every((v, i) => v === b[i]);

test('orthogonal design: lasso and elastic net equal the soft-thresholding closed form, in original units', () => {
  const p = 6,
    scales = [1, 2, 0.5, 3, 1, 4],
    offsets = [0, 5, -1, 2, 0, 10];
  const X = hadamardDesign(p, scales, offsets);
  const rng = new Rng('ortho');
  const y = Float64Array.from({ length: 16 }, () => rng.normal());
  // Standardised column z_j = (x_j - offset_j)/scale_j is +-1, so (1/n) z_j . y is the OLS coefficient.
  const u = Array.from({ length: p }, (_, j) => {
    let s = 0;
    for (let i = 0; i < 16; i++) s += ((X.data[i * p + j] - offsets[j]) / scales[j]) * y[i];
    return s / 16;
  });
  const ybar = y.reduce((a, b) => a + b, 0) / 16;
  for (const alpha of [1, 0.5]) {
    const path = pr.linearPath(X, y, { alpha, nLambda: 12 });
    close(path.lambdas[0], Math.max(...u.map(Math.abs)) / alpha, 1e-12, 'lambda_max');
    assert.is(pr.nonzero(path.coefs[0]).length, 0, 'all zero at lambda_max');
    path.lambdas.forEach((lambda, l) => {
      let intercept = ybar;
      for (let j = 0; j < p; j++) {
        const expect = soft(u[j], lambda * alpha) / (1 + lambda * (1 - alpha)) / scales[j];
        close(path.coefs[l][j], expect, 1e-7, `alpha ${alpha} lambda ${lambda} coef ${j}`);
        intercept -= expect * offsets[j];
      }
      close(path.intercepts[l], intercept, 1e-6, `alpha ${alpha} intercept`);
    });
    const one = pr.elasticNet(X, y, path.lambdas[5], alpha);
    for (let j = 0; j < p; j++) close(one.coef[j], path.coefs[5][j], 1e-7, `single-lambda fit coef ${j}`);
  }
});

test('lasso satisfies the KKT conditions on a correlated design', () => {
  const rng = new Rng('kkt');
  const n = 80,
    p = 30;
  const X = gaussianDesign(rng, n, p, 0.5);
  const y = linearResponse(
    X,
    new Map([
      [0, 2],
      [4, -1],
      [9, 1],
    ]),
    1,
    1,
    rng,
  );
  // A tight tolerance so the check measures the solver's fixed point, not its stopping rule.
  const path = pr.linearPath(X, y, { nLambda: 30, tol: 1e-16 });
  assert.ok(path.converged.every(Boolean));
  for (const l of [5, 15, 29]) {
    const lambda = path.lambdas[l],
      coef = path.coefs[l];
    const pred = pr.predictLinear({ coef, intercept: path.intercepts[l] }, X);
    for (let j = 0; j < p; j++) {
      let m = 0,
        ss = 0,
        g = 0;
      for (let i = 0; i < n; i++) m += X.data[i * p + j];
      m /= n;
      for (let i = 0; i < n; i++) ss += (X.data[i * p + j] - m) ** 2;
      const sd = Math.sqrt(ss / n);
      for (let i = 0; i < n; i++) g += ((X.data[i * p + j] - m) / sd) * (y[i] - pred[i]);
      g /= n;
      if (coef[j] === 0) assert.ok(Math.abs(g) <= lambda * (1 + 1e-4), `zero coef ${j}: |g| ${Math.abs(g)} > lambda ${lambda}`);
      else close(g, lambda * Math.sign(coef[j]), 1e-4 * lambda, `active coef ${j} gradient`);
    }
  }
});

test('lasso and elastic net recover a planted sparse support; CV keeps it with few false positives', () => {
  const rng = new Rng('support');
  const n = 200,
    p = 40,
    truth = [2, 11, 25, 33];
  const X = gaussianDesign(rng, n, p, 0.3);
  const y = linearResponse(
    X,
    new Map([
      [2, 3],
      [11, -2],
      [25, 2.5],
      [33, -1.5],
    ]),
    0.7,
    0.5,
    rng,
  );
  for (const alpha of [1, 0.7]) {
    const path = pr.linearPath(X, y, { alpha, nLambda: 60 });
    assert.ok(
      path.coefs.some((c) => setEq(pr.nonzero(c), truth)),
      `alpha ${alpha}: some lambda gives exactly the true support`,
    );
    const probe = pr.linearProbeCV(X, y, new Rng('folds'), { alpha, nLambda: 60 });
    assert.ok(
      truth.every((j) => probe.selected.includes(j)),
      `alpha ${alpha}: selected ${probe.selected}`,
    );
    // The lasso at a prediction-tuned lambda keeps a few tiny noise coefficients; they must be few
    // (of 36 null dimensions) and an order of magnitude below the smallest true effect (1.5). The
    // elastic net's ridge part admits more small ones by design, so its bound is looser.
    const falsePos = probe.selected.filter((j) => !truth.includes(j));
    assert.ok(falsePos.length <= (alpha === 1 ? 5 : 10), `alpha ${alpha}: false positives ${falsePos}`);
    assert.ok(
      falsePos.every((j) => Math.abs(probe.coef[j]) < 0.15),
      `alpha ${alpha}: large false positive`,
    );
    assert.ok(probe.heldOutR2 > 0.9, `alpha ${alpha}: held-out R2 ${probe.heldOutR2}`);
    assert.ok(probe.lambda === probe.cv.lambda1se && probe.cv.lambda1se >= probe.cv.lambdaMin);
    if (alpha === 1) close(probe.coef[2], 3, 0.3, 'coef 2 in original units (shrunk a little)');
  }
  // Same seed, same folds and choice.
  const a = pr.linearProbeCV(X, y, new Rng(3), { nLambda: 30 }),
    b = pr.linearProbeCV(X, y, new Rng(3), { nLambda: 30 });
  assert.equal(Array.from(a.cv.folds), Array.from(b.cv.folds));
  assert.is(a.lambda, b.lambda);
  assert.throws(() => pr.linearPath(X, y.slice(1)), /X has 200 rows but y has 199/);
});

test('constant columns stay at 0, lambda above lambda_max gives the empty model, float32 input works', () => {
  const rng = new Rng('edge');
  const n = 50,
    p = 5;
  const data = new Float32Array(n * p);
  for (let i = 0; i < n; i++) {
    data[i * p] = rng.normal();
    data[i * p + 1] = 3; // constant
    for (let j = 2; j < p; j++) data[i * p + j] = rng.normal();
  }
  const X = { data, rows: n, cols: p };
  const y = Float64Array.from({ length: n }, (_, i) => 2 * data[i * p] + 0.1 * rng.normal() + 4);
  const fit = pr.lasso(X, y, 0.01);
  assert.is(fit.coef[1], 0);
  assert.ok(fit.coef.every(Number.isFinite));
  assert.ok(fit.selected.includes(0));
  close(fit.coef[0], 2, 0.1, 'coef 0');
  const empty = pr.lasso(X, y, 1e6);
  assert.equal(empty.selected, []);
  close(empty.intercept, y.reduce((a, b) => a + b, 0) / n, 1e-9, 'empty model predicts mean(y)');
});

function logisticData(rng: Rng, n: number, p: number, beta: Map<number, number>): { X: pr.Matrix; y: Int32Array } {
  const X = gaussianDesign(rng, n, p);
  const y = Int32Array.from({ length: n }, (_, i) => {
    let z = -0.3;
    for (const [j, b] of beta) z += b * X.data[i * p + j];
    return rng.uniform() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  });
  return { X, y };
}

test('L1 logistic: KKT at a path point, planted features recovered, high held-out accuracy', () => {
  const rng = new Rng('logistic');
  const p = 30,
    truth = [1, 7, 19];
  const beta = new Map([
    [1, 2.5],
    [7, -2.5],
    [19, 2],
  ]);
  const { X, y } = logisticData(rng, 400, p, beta);
  const probe = pr.logisticProbeCV(X, y, new Rng('lfolds'), { nLambda: 30 });
  assert.ok(probe.path.converged.every(Boolean), 'IRLS converged at every lambda');
  assert.ok(
    truth.every((j) => probe.selected.includes(j)),
    `selected ${probe.selected}`,
  );
  assert.ok(probe.selected.length - truth.length <= 5, `${probe.selected.length - truth.length} false positives`);
  assert.ok(probe.heldOutAccuracy > 0.8, `held-out accuracy ${probe.heldOutAccuracy}`);
  assert.ok(probe.heldOutAccuracy > probe.majorityAccuracy + 0.2);
  const fresh = logisticData(rng.fork('test'), 400, p, beta);
  const acc = pr.accuracy(fresh.y, pr.predictLogistic(probe, fresh.X));
  assert.ok(acc > 0.8, `fresh test accuracy ${acc}`);
  assert.ok(probe.coef[0][1] > 0 && probe.coef[0][7] < 0, 'signs of planted coefficients');
  // KKT for (1/n) logistic loss on standardised columns at a mid-path lambda.
  const l = 12,
    lambda = probe.path.lambdas[l];
  const coef = probe.path.coefs[0][l],
    b0 = probe.path.intercepts[0][l];
  const prob = pr.predictProba({ coef: [coef], intercept: [b0], classes: [0, 1] }, X);
  let sumResid = 0;
  for (let i = 0; i < X.rows; i++) sumResid += y[i] - prob[i];
  close(sumResid / X.rows, 0, 1e-3, 'intercept score');
  for (let j = 0; j < p; j++) {
    let m = 0,
      ss = 0,
      g = 0;
    for (let i = 0; i < X.rows; i++) m += X.data[i * p + j];
    m /= X.rows;
    for (let i = 0; i < X.rows; i++) ss += (X.data[i * p + j] - m) ** 2;
    const sd = Math.sqrt(ss / X.rows);
    for (let i = 0; i < X.rows; i++) g += ((X.data[i * p + j] - m) / sd) * (y[i] - prob[i]);
    g /= X.rows;
    if (coef[j] === 0) assert.ok(Math.abs(g) <= lambda * 1.01, `zero coef ${j}: |g| ${Math.abs(g)} > lambda ${lambda}`);
    else close(g, lambda * Math.sign(coef[j]), 0.01 * lambda, `active coef ${j} score`);
  }
});

test('one-vs-rest L1 logistic separates three classes using the planted dimensions', () => {
  const rng = new Rng('ovr');
  const n = 300,
    p = 20;
  const centres = [
    [0, 0],
    [2.5, 0],
    [0, 2.5],
  ]; // classes differ only in dims 0 and 5
  const data = new Float64Array(n * p),
    y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % 3;
    y[i] = c + 10; // arbitrary label values
    for (let j = 0; j < p; j++) data[i * p + j] = rng.normal();
    data[i * p] += centres[c][0];
    data[i * p + 5] += centres[c][1];
  }
  const X = { data, rows: n, cols: p };
  const probe = pr.logisticProbeCV(X, y, new Rng('ovr-folds'), { nLambda: 25 });
  assert.equal(probe.classes, [10, 11, 12]);
  assert.ok(probe.path.converged.every(Boolean), 'IRLS converged at every lambda');
  assert.is(probe.coef.length, 3);
  assert.ok(probe.selected.includes(0) && probe.selected.includes(5), `selected ${probe.selected}`);
  assert.ok(probe.selected.length <= 7, `selected ${probe.selected}`);
  assert.ok(probe.heldOutAccuracy > 0.75, `held-out accuracy ${probe.heldOutAccuracy} (chance 1/3)`);
  assert.throws(() => pr.logisticPath(X, new Int32Array(n)), /need at least 2 classes/);
});

test('groupKFolds: every group in exactly one fold, fold sizes balanced, deterministic; linearProbeCV with groups uses it', () => {
  // 30 groups of uneven sizes (1..5 rows), interleaved in row order as the rows of a batch are not
  const groups: number[] = [];
  for (let g = 0; g < 30; g++) for (let r = 0; r <= g % 5; r++) groups.push(g);
  const order = new Rng('shuffle-rows').permutation(groups.length);
  const gs = Int32Array.from(order, (i) => groups[i]);
  const folds = pr.groupKFolds(gs, 4, new Rng('g'));
  const foldOf = new Map<number, number>();
  gs.forEach((g, i) => {
    if (foldOf.has(g)) assert.is(folds[i], foldOf.get(g), `group ${g} split across folds`);
    else foldOf.set(g, folds[i]);
  });
  const sizes = [0, 1, 2, 3].map((f) => folds.filter((x) => x === f).length);
  assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 5, `fold sizes ${sizes} differ by more than the largest group`);
  assert.equal(Array.from(pr.groupKFolds(gs, 4, new Rng('g'))), Array.from(folds));
  assert.throws(() => pr.groupKFolds([1, 1, 2, 2], 3, new Rng(0)), /2 <= k <= groups/);
  // through the probe: the CV summary's folds keep each group whole
  const X = gaussianDesign(new Rng('gx'), gs.length, 5);
  const y = linearResponse(X, new Map([[1, 2]]), 0, 0.3, new Rng('gy'));
  const probe = pr.linearProbeCV(X, y, new Rng('gcv'), { nFolds: 4, nLambda: 10, groups: gs });
  assert.equal(Array.from(probe.cv.folds), Array.from(pr.groupKFolds(gs, 4, new Rng('gcv'))));
  assert.throws(() => pr.linearProbeCV(X, y, new Rng(1), { groups: gs.subarray(1) }), /groups has/);
});

test('summariseCV: the one-standard-error rule uses the standard error of the mean over folds, not the fold sd', () => {
  // Hand-computed: 4 folds, 3 lambdas (decreasing). Means 1.3, 1.15, 1.0; the minimum is lambda 2,
  // whose fold losses 0.6, 1.0, 1.4, 1.0 have sd sqrt(0.32 / 3) = 0.3266 and standard error
  // 0.3266 / sqrt(4) = 0.1633. Within one SE of 1.0 (<= 1.1633): lambda 1 (1.15), not lambda 0 (1.3).
  // With the sd instead (<= 1.3266) the rule would pick lambda 0: the two choices differ here.
  const lambdas = Float64Array.of(0.5, 0.2, 0.05);
  const foldLoss = [
    [1.0, 1.0, 0.6],
    [1.2, 1.1, 1.0],
    [1.4, 1.2, 1.4],
    [1.6, 1.3, 1.0],
  ].map((r) => Float64Array.from(r));
  const { summary, chosen } = pr.summariseCV(lambdas, foldLoss, new Int32Array(8), '1se');
  // the choice first, so that the mutation SE -> SD fails on the lambda it selects
  assert.is(summary.lambda1se, 0.2, 'the largest lambda within one standard error (not one sd) of the minimum');
  assert.is(summary.lambdaMin, 0.05);
  close(summary.meanLoss[2], 1.0, 1e-12, 'mean loss at the minimum');
  close(summary.seLoss[2], Math.sqrt(0.32 / 3) / 2, 1e-12, 'standard error at the minimum');
  assert.is(chosen, 1);
  assert.is(pr.summariseCV(lambdas, foldLoss, new Int32Array(8), 'min').chosen, 2);
});

test.run();
