// The blocked CPU matmul kernel against the textbook loop (one float64 sum over k in order, rounded
// once): bit-identical for float64 and float32, for every transpose, edge sizes that do not fill a
// 4x4 tile, and broadcast or per-batch operands. Then the ops of engine/ops/matmul.ts (matmul,
// linear): forward values, errors and gradient checks.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { matmul } from '../../engine/cpu/kernels/matmul.ts';
import type { KernelParams } from '../../engine/kernels.ts';
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { gradcheckPoisoned } from '../helpers/gradcheck.ts';
import { assertClose, f32, f64, FLOATS, randnOf, throwsNaming, vals, type Mismatch } from '../helpers/ops.ts';
import { GRAD_CASES } from './grad-cases.ts';

const test = suite('cpu matmul kernel');
const rng = new mi.Rng('cpu-matmul');

function randomArray(n: number, f64: boolean): Float32Array | Float64Array {
  const a = f64 ? new Float64Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal();
  return a;
}

/** out[b,i,j] = sum_k A(b,i,k) B(b,k,j) in float64, k ascending, stored into the output's type. */
function reference(a: ArrayLike<number>, b: ArrayLike<number>, out: Float32Array | Float64Array, p: KernelParams['matmul']): void {
  const { batch, M, N, K, transA, transB, aBatchStride, bBatchStride } = p;
  for (let bi = 0; bi < batch; bi++) {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const av = a[bi * aBatchStride + (transA ? k * M + i : i * K + k)];
          const bv = b[bi * bBatchStride + (transB ? j * K + k : k * N + j)];
          s += av * bv;
        }
        out[(bi * M + i) * N + j] = s;
      }
    }
  }
}

function check(
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  batch: number,
  aShared: boolean,
  bShared: boolean,
  f64: boolean,
): void {
  const p: KernelParams['matmul'] = {
    batch,
    M,
    N,
    K,
    transA,
    transB,
    aBatchStride: aShared ? 0 : M * K,
    bBatchStride: bShared ? 0 : K * N,
  };
  const a = randomArray((aShared ? 1 : batch) * M * K, f64);
  const b = randomArray((bShared ? 1 : batch) * K * N, f64);
  const want = f64 ? new Float64Array(batch * M * N) : new Float32Array(batch * M * N);
  const got = f64 ? new Float64Array(batch * M * N) : new Float32Array(batch * M * N);
  got.fill(NaN); // the kernel must write every output
  reference(a, b, want, p);
  matmul([a, b], [got], p);
  const what = `${f64 ? 'f64' : 'f32'} M${M} N${N} K${K} transA ${transA} transB ${transB} batch ${batch} shared ${aShared}/${bShared}`;
  for (let i = 0; i < want.length; i++) {
    if (!Object.is(got[i], want[i])) assert.unreachable(`${what}: element ${i} is ${got[i]}, expected ${want[i]}`);
  }
}

test('bit-identical to the textbook loop for all transposes and edge sizes (float64 and float32)', () => {
  const sizes = [
    [1, 1, 1],
    [1, 5, 3],
    [3, 1, 7],
    [4, 4, 4],
    [5, 7, 3],
    [8, 9, 16],
    [17, 6, 1],
    [13, 130, 9],
  ];
  let cases = 0;
  for (const f64 of [true, false]) {
    for (const [M, N, K] of sizes) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          check(M, N, K, transA, transB, 1, false, false, f64);
          cases++;
        }
      }
    }
  }
  assert.is(cases, 64);
});

test('batches: per-batch operands and broadcast (stride 0) operands on either side', () => {
  for (const [aShared, bShared] of [
    [false, false],
    [true, false],
    [false, true],
  ]) {
    for (const transB of [false, true]) {
      check(6, 5, 7, false, transB, 3, aShared, bShared, true);
      check(6, 5, 7, true, transB, 3, aShared, bShared, false);
    }
  }
});

test('a big product spans several column blocks (more than 32 strips of 4 columns)', () => {
  check(9, 140, 33, false, false, 1, false, false, true);
  check(9, 140, 33, true, true, 2, false, true, false);
});

test('K = 0 gives zeros', () => {
  const out = new Float64Array(6).fill(NaN);
  matmul([new Float64Array(0), new Float64Array(0)], [out], {
    batch: 1,
    M: 2,
    N: 3,
    K: 0,
    transA: false,
    transB: false,
    aBatchStride: 0,
    bBatchStride: 0,
  });
  assert.equal([...out], [0, 0, 0, 0, 0, 0]);
});

test('through the op: mi.matmul with transposes and batch broadcast matches the kernel reference', () => {
  const a = mi.randn([2, 3, 5, 4], rng, { dtype: 'float64' });
  const b = mi.randn([3, 6, 4], rng, { dtype: 'float64' });
  const y = mi.matmul(a, b, { transB: true }); // [2, 3, 5, 6]
  assert.equal(y.shape, [2, 3, 5, 6]);
  const av = a.dataSync(),
    bv = b.dataSync(),
    yv = y.dataSync();
  for (let n = 0; n < 2; n++)
    for (let c = 0; c < 3; c++)
      for (let i = 0; i < 5; i++)
        for (let j = 0; j < 6; j++) {
          let s = 0;
          for (let k = 0; k < 4; k++) s += av[((n * 3 + c) * 5 + i) * 4 + k] * bv[(c * 6 + j) * 4 + k];
          assert.is(yv[((n * 3 + c) * 5 + i) * 6 + j], s);
        }
  for (const t of [a, b, y]) t.dispose();
});

test('the few-rows path (M <= 8, no packing) over long rows, every transpose, 8-row blocks and tails', () => {
  for (const [M, N, K] of [
    [1, 19, 300],
    [2, 8, 65],
    [8, 17, 40],
  ]) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        check(M, N, K, transA, transB, 1, false, false, false);
        check(M, N, K, transA, transB, 2, false, true, true);
      }
    }
  }
});

test.run();

// ---- the ops (engine/ops/matmul.ts): matmul and linear -------------------------------------------------
// Forward values against a triple loop (float64 and float32), batch broadcasting and 1-D operands,
// the errors, and the gradient checks (test/engine/grad-cases.ts, float64 finite differences).
const ops = suite('matmul and linear ops');
const rnd = randnOf(new mi.Rng('ops-test/matmul'));

function matmulRef(a: number[][], b: number[][]): number[] {
  return a.flatMap((row) => b[0].map((_, j) => row.reduce((s, v, k) => s + v * b[k][j], 0)));
}
const rowsOf = (t: Tensor, trans: boolean): number[][] => {
  const [r, c] = t.shape.slice(-2);
  const d = t.dataSync();
  return trans
    ? Array.from({ length: c }, (_, i) => Array.from({ length: r }, (_, j) => d[j * c + i]))
    : Array.from({ length: r }, (_, i) => Array.from(d.subarray(i * c, i * c + c)));
};
for (const dtype of FLOATS) {
  ops(`matmul ${dtype}: every transA/transB combination against a triple loop`, () =>
    mi.tidy(() => {
      for (const transA of [false, true])
        for (const transB of [false, true]) {
          // 7 x 300 x 5 crosses the CPU kernel's 4-row and 256-column panels
          const a = rnd(transA ? [300, 7] : [7, 300], dtype),
            b = rnd(transB ? [5, 300] : [300, 5], dtype);
          const want = matmulRef(rowsOf(a, transA), rowsOf(b, transB));
          assertClose(
            `matmul ${transA} ${transB}`,
            mi.matmul(a, b, { transA, transB }).dataSync(),
            want,
            dtype === 'float64' ? 1e-12 : 1e-5,
            1e-4,
          );
        }
    }),
  );
}

ops('matmul broadcasts batch axes and handles 1-D operands', () =>
  mi.tidy(() => {
    const a = rnd([2, 1, 3, 4], 'float64'),
      b = rnd([3, 4, 2], 'float64');
    const y = mi.matmul(a, b);
    assert.equal(y.shape, [2, 3, 3, 2]);
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) {
        const want = matmulRef(
          rowsOf(mi.reshape(mi.slice(a, 0, i, i + 1), [3, 4]), false),
          rowsOf(mi.reshape(mi.slice(b, 0, j, j + 1), [4, 2]), false),
        );
        assertClose(`batch ${i},${j}`, mi.reshape(mi.slice(mi.slice(y, 0, i, i + 1), 1, j, j + 1), [6]).dataSync(), want, 1e-12);
      }
    const v = mi.tensor([1, 2, 3], [3], { dtype: 'float64' });
    const m = mi.tensor(
      [
        [1, 0],
        [0, 1],
        [1, 1],
      ],
      [3, 2],
      { dtype: 'float64' },
    );
    assert.equal(vals(mi.matmul(v, m)), [4, 5]);
    assert.equal(vals(mi.matmul(m, mi.tensor([1, 2], [2], { dtype: 'float64' }), {})), [1, 2, 3]);
    const dot = mi.matmul(v, v);
    assert.equal(dot.shape, []);
    assert.equal(vals(dot), [14]);
    const lin = mi.linear(mi.reshape(v, [1, 3]), mi.transpose(m), mi.tensor([10, 20], [2], { dtype: 'float64' }));
    assert.equal(vals(lin), [14, 25]);
  }),
);

const mismatches: Mismatch[] = [
  ['matmul inner dimensions', () => mi.matmul(f32([2, 3]), f32([4, 5])), 'matmul', '[2,3]', '[4,5]'],
  ['matmul inner dimensions, transposed', () => mi.matmul(f32([2, 3]), f32([4, 5]), { transB: true }), 'matmul', '[2,3]', '[4,5]^T'],
  ['matmul batch shapes', () => mi.matmul(f32([2, 3, 4]), f32([3, 4, 5])), 'matmul', '[2,3,4]', '[3,4,5]'],
  ['matmul dtypes', () => mi.matmul(f32([2, 2]), f64([2, 2])), 'matmul', 'float32[2,2]', 'float64[2,2]'],
  ['matmul scalar', () => mi.matmul(f32([]), f32([2, 2])), 'matmul', '[]', '[2,2]'],
  ['linear', () => mi.linear(f32([2, 3]), f32([4, 5])), 'linear', '[2,3]', '[4,5]'],
];
for (const [name, fn, ...fragments] of mismatches) ops(`error: ${name}`, () => mi.tidy(() => throwsNaming(fn, ...fragments)));

for (const [name, f, inputs] of GRAD_CASES.matmul)
  ops(`gradcheck: ${name}`, () => {
    gradcheckPoisoned(name, f, inputs);
  });

ops.run();
