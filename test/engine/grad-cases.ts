// The gradient cases of every differentiable op of engine/ops, one list per op file
// (engine/ops/X.ts): one line per case, naming the function and how to build each input (see
// test/helpers/gradcheck.ts for the input builders). Inputs are float64 by default. Read by:
//   test/engine/X.test.ts                 X's cases against finite differences in float64
//                                         (gradchecks(X) of test/helpers/gradcheck.ts)
//   test/engine/wgsl/grad-parity.test.ts  every case rebuilt in float32, WebGPU's gradients vs the CPU's
// A new op gets both checks by adding one line to its op file's list here.
import * as mi from '../../engine/index.ts';
import type { Tensor } from '../../engine/tensor.ts';
import { awayFrom, constant, distinct, given, indices, negative, normal, positive, type Input } from '../helpers/gradcheck.ts';

export type GradCase = [name: string, f: (...xs: Tensor[]) => Tensor, inputs: Input[]];
/** The op files of engine/ops that have differentiable ops (creation.ts composes others). */
export type OpFile =
  | 'elementwise'
  | 'shape'
  | 'indexing'
  | 'matmul'
  | 'reduce'
  | 'softmax'
  | 'rmsnorm'
  | 'conv1d'
  | 'topk'
  | 'scan'
  | 'sae';

// selective-scan inputs: batch 2, T 4, E 3, N 2 (optional ones appended by the cases)
const [SB, ST, SE, SN] = [2, 4, 3, 2];
const scanCore: Input[] = [[SB, ST, SE], positive([SB, ST, SE], 0.1, 1), negative([SE, SN], -1.5, -0.2), [SB, ST, SN], [SB, ST, SN]];
const scanAll = (
  x: Tensor,
  delta: Tensor,
  A: Tensor,
  B: Tensor,
  C: Tensor,
  D: Tensor,
  z: Tensor,
  h0: Tensor,
  deltaBias: Tensor,
  returnStates = false,
) => mi.selectiveScan({ x, delta, A, B, C, D, z, h0, deltaBias, deltaSoftplus: true, returnStates });
const scanAllInputs: Input[] = [
  [SB, ST, SE],
  normal([SB, ST, SE]),
  negative([SE, SN], -1.5, -0.2),
  [SB, ST, SN],
  [SB, ST, SN],
  [SE],
  [SB, ST, SE],
  [SB, SE, SN],
  [SE],
];
const flat = (t: Tensor) => mi.reshape(t, [-1]);

// SAE inputs: 3 rows, d 4, 6 latents; b_enc spread out so that the top-k selection and the ReLU
// kinks stay more than 2h away under every finite-difference step (fixed seeds: checked once)
const saeInputs: Input[] = [
  [3, 4],
  normal([4, 6], 0.3),
  given([6], [-1.1, 0.9, -0.3, 1.7, 0.35, -2.2]),
  normal([6, 4], 0.5),
  normal([4], 0.2),
];
type Five = [Tensor, Tensor, Tensor, Tensor, Tensor];
const saeOf = (t: Tensor[], opts: { kind: 'relu' | 'topk'; k?: number; l1?: number; dead?: Tensor; kAux?: number }) => {
  const [x, W_enc, b_enc, W_dec, b_dec] = t as Five;
  return mi.sparseAutoencoder({ x, W_enc, b_enc, W_dec, b_dec, ...opts });
};
const deadMask = constant(given([6], [1, 0, 1, 1, 0, 1]));

const cond = constant(given([2, 3], [1, 0, 0, 1, 1, 0]));
const targets = given([2, 3], [0, 4, -100, 2, -100, 1], { dtype: 'int32' });

export const GRAD_CASES: { [F in OpFile]: GradCase[] } = {
  elementwise: [
    // binary, with broadcasting and size-1 dimensions
    [
      'add',
      (a, b) => mi.add(a, b),
      [
        [2, 3],
        [2, 3],
      ],
    ],
    [
      'add broadcast [2,1,3]+[4,1]',
      (a, b) => mi.add(a, b),
      [
        [2, 1, 3],
        [4, 1],
      ],
    ],
    ['add scalar number', (a) => mi.add(a, 2.5), [[3]]],
    ['add the same tensor twice', (a) => mi.add(a, a), [[2, 2]]],
    ['add 0-d + [3]', (a, b) => mi.add(a, b), [[], [3]]],
    [
      'sub',
      (a, b) => mi.sub(a, b),
      [
        [2, 3],
        [2, 3],
      ],
    ],
    [
      'sub broadcast [2,1]-[1,3]',
      (a, b) => mi.sub(a, b),
      [
        [2, 1],
        [1, 3],
      ],
    ],
    ['sub number - tensor', (a) => mi.sub(1, a), [[3]]],
    [
      'mul',
      (a, b) => mi.mul(a, b),
      [
        [2, 3],
        [2, 3],
      ],
    ],
    [
      'mul broadcast [3,1,2]*[1,4,1]',
      (a, b) => mi.mul(a, b),
      [
        [3, 1, 2],
        [1, 4, 1],
      ],
    ],
    ['mul x*x', (a) => mi.mul(a, a), [[4]]],
    ['div', (a, b) => mi.div(a, b), [[2, 3], positive([2, 3])]],
    ['div broadcast [2,3]/[3]', (a, b) => mi.div(a, b), [[2, 3], positive([3])]],
    ['div number / tensor', (a) => mi.div(2, a), [positive([3])]],
    ['pow', (a, b) => mi.pow(a, b), [positive([2, 3]), [2, 3]]],
    ['pow broadcast exponent [3]', (a, b) => mi.pow(a, b), [positive([2, 3]), [3]]],
    ['pow number exponent', (a) => mi.pow(a, 1.7), [positive([4])]],
    ['pow number base', (b) => mi.pow(2, b), [[4]]],
    ['maximum', (a, b) => mi.maximum(a, b), [distinct([2, 3]), distinct([2, 3], 0.05)]],
    ['maximum broadcast [2,3],[3]', (a, b) => mi.maximum(a, b), [distinct([2, 3]), distinct([3], 0.05)]],
    ['minimum', (a, b) => mi.minimum(a, b), [distinct([2, 3]), distinct([2, 3], 0.05)]],
    ['minimum broadcast [2,1],[1,3]', (a, b) => mi.minimum(a, b), [distinct([2, 1]), distinct([1, 3], 0.05)]],
    // unary
    ['neg', (x) => mi.neg(x), [[2, 3]]],
    ['exp', (x) => mi.exp(x), [[2, 3]]],
    ['log', (x) => mi.log(x), [positive([2, 3])]],
    ['sqrt', (x) => mi.sqrt(x), [positive([2, 3])]],
    ['rsqrt', (x) => mi.rsqrt(x), [positive([2, 3])]],
    ['abs', (x) => mi.abs(x), [awayFrom([2, 3], [0])]],
    ['square', (x) => mi.square(x), [[2, 3]]],
    ['relu', (x) => mi.relu(x), [awayFrom([2, 3], [0])]],
    ['sigmoid', (x) => mi.sigmoid(x), [normal([2, 3], 3)]],
    ['silu', (x) => mi.silu(x), [normal([2, 3], 3)]],
    ['tanh', (x) => mi.tanh(x), [normal([2, 3], 2)]],
    ['softplus', (x) => mi.softplus(x), [normal([2, 3], 3)]],
    ['softplus large |x|', (x) => mi.softplus(x), [given([6], [-30, -25, -20, 20, 25, 30])]],
    ['clamp', (x) => mi.clamp(x, -0.5, 0.5), [awayFrom([3, 3], [-0.5, 0.5])]],
    ['affine', (x) => mi.affine(x, -1.5, 0.25), [[2, 3]]],
    ['powScalar 2.5', (x) => mi.powScalar(x, 2.5), [positive([2, 3])]],
    ['powScalar 3 (negative bases)', (x) => mi.powScalar(x, 3), [[2, 3]]],
    ['where', (c, a, b) => mi.where(c, a, b), [cond, [2, 3], [2, 3]]],
    ['where broadcast a [3], b [2,1]', (c, a, b) => mi.where(c, a, b), [cond, [3], [2, 1]]],
    ['where number branch', (c, a) => mi.where(c, a, 0), [cond, [2, 3]]],
    ['cast f64 -> f64', (x) => mi.mul(mi.cast(x, 'float64'), x), [[2, 3]]],
  ],
  shape: [
    ['reshape', (x) => mi.mul(mi.reshape(x, [3, -1]), mi.reshape(x, [3, 2])), [[2, 3]]],
    ['permute', (x) => mi.permute(x, [2, 0, 1]), [[2, 3, 4]]],
    ['transpose', (x) => mi.transpose(x, 0, 2), [[2, 3, 4]]],
    ['transpose default last two', (x) => mi.transpose(x), [[2, 3, 4]]],
    ['expand [3,1] -> [2,3,4]', (x) => mi.expand(x, [2, 3, 4]), [[3, 1]]],
    ['slice', (x) => mi.slice(x, 1, 1, 3), [[2, 4, 2]]],
    ['slice negative bounds', (x) => mi.slice(x, -1, -3, -1), [[2, 5]]],
    ['slice from start', (x) => mi.slice(x, 0, 0, 1), [[3, 2]]],
    [
      'concat',
      (a, b, c) => mi.concat([a, b, c], 1),
      [
        [2, 1, 3],
        [2, 2, 3],
        [2, 3, 3],
      ],
    ],
    ['concat the same tensor twice', (a) => mi.concat([a, a], 0), [[2, 3]]],
    [
      'split',
      (x) => {
        const [p, q] = mi.split(x, [1, 3], 1);
        return mi.add(mi.mul(p, 3), q);
      },
      [[2, 4]],
    ],
    [
      'stack',
      (a, b) => mi.stack([a, b], 1),
      [
        [2, 3],
        [2, 3],
      ],
    ],
    [
      'stack last axis',
      (a, b) => mi.stack([a, b], -1),
      [
        [2, 3],
        [2, 3],
      ],
    ],
    ['squeeze / unsqueeze', (x) => mi.unsqueeze(mi.squeeze(x, 1), -1), [[3, 1, 2]]],
    ['squeeze all size-1', (x) => mi.squeeze(x), [[1, 3, 1]]],
    ['flatten', (x) => mi.mul(mi.flatten(x), mi.flatten(x)), [[2, 3]]],
    ['sumTo [2,3,4] -> [3,1]', (x) => mi.sumTo(x, [3, 1]), [[2, 3, 4]]],
  ],
  indexing: [
    ['embedding', (t, i) => mi.embedding(t, i), [[5, 3], indices([2, 4], 5)]],
    ['embedding repeated index', (t, i) => mi.embedding(t, i), [[3, 2], given([4], [1, 1, 0, 1], { dtype: 'int32' })]],
    ['embedding 1-D table', (t, i) => mi.embedding(t, i), [[5], indices([3], 5)]],
    ['indexSelect axis 0', (x, i) => mi.indexSelect(x, 0, i), [[4, 3], indices([5], 4)]],
    ['indexSelect axis 1', (x, i) => mi.indexSelect(x, 1, i), [[2, 4, 3], indices([3], 4)]],
    ['scatterAdd', (g, i) => mi.scatterAdd(g, i, [4, 2]), [[6, 2], indices([6], 4)]],
  ],
  matmul: [
    [
      'matmul',
      (a, b) => mi.matmul(a, b),
      [
        [3, 4],
        [4, 5],
      ],
    ],
    [
      'matmul transA',
      (a, b) => mi.matmul(a, b, { transA: true }),
      [
        [4, 3],
        [4, 5],
      ],
    ],
    [
      'matmul transB',
      (a, b) => mi.matmul(a, b, { transB: true }),
      [
        [3, 4],
        [5, 4],
      ],
    ],
    [
      'matmul transA transB',
      (a, b) => mi.matmul(a, b, { transA: true, transB: true }),
      [
        [4, 3],
        [5, 4],
      ],
    ],
    [
      'matmul batched',
      (a, b) => mi.matmul(a, b),
      [
        [2, 3, 4],
        [2, 4, 5],
      ],
    ],
    [
      'matmul batched transA transB',
      (a, b) => mi.matmul(a, b, { transA: true, transB: true }),
      [
        [2, 4, 3],
        [2, 5, 4],
      ],
    ],
    [
      'matmul broadcast batch [2,1,3,4]@[3,4,5]',
      (a, b) => mi.matmul(a, b),
      [
        [2, 1, 3, 4],
        [3, 4, 5],
      ],
    ],
    [
      'matmul broadcast batch [3,4]@[2,4,5]',
      (a, b) => mi.matmul(a, b),
      [
        [3, 4],
        [2, 4, 5],
      ],
    ],
    [
      'matmul broadcast batch [2,3,4]@[1,5,4]^T',
      (a, b) => mi.matmul(a, b, { transB: true }),
      [
        [2, 3, 4],
        [1, 5, 4],
      ],
    ],
    ['matmul 1-D @ 2-D', (a, b) => mi.matmul(a, b), [[4], [4, 5]]],
    ['matmul 2-D @ 1-D', (a, b) => mi.matmul(a, b), [[3, 4], [4]]],
    ['matmul 1-D @ 1-D', (a, b) => mi.matmul(a, b), [[4], [4]]],
    ['matmul 1-D @ 2-D^T', (a, b) => mi.matmul(a, b, { transB: true }), [[4], [5, 4]]],
    ['matmul 2-D^T @ 1-D', (a, b) => mi.matmul(a, b, { transA: true }), [[4, 3], [4]]],
    ['matmul batched @ 1-D', (a, b) => mi.matmul(a, b), [[2, 3, 4], [4]]],
    ['linear with bias', (x, W, b) => mi.linear(x, W, b), [[2, 3, 4], [5, 4], [5]]],
    [
      'linear without bias',
      (x, W) => mi.linear(x, W),
      [
        [3, 4],
        [5, 4],
      ],
    ],
  ],
  reduce: [
    // single axes, several non-contiguous axes, all axes, keepdim
    ...(['sum', 'mean', 'max', 'min', 'logsumexp'] as const).flatMap((op): GradCase[] => {
      const r = { sum: mi.sum, mean: mi.mean, max: mi.max, min: mi.min, logsumexp: mi.logsumexp }[op];
      const x = op === 'max' || op === 'min' ? distinct([3, 4, 2]) : normal([3, 4, 2]);
      return [
        [`${op} axis 0`, (t) => r(t, 0), [x]],
        [`${op} axis 1`, (t) => r(t, 1), [x]],
        [`${op} axis -1 keepdim`, (t) => r(t, -1, true), [x]],
        [`${op} axes [0,2]`, (t) => r(t, [0, 2]), [x]],
        [`${op} axes [2,0] keepdim`, (t) => r(t, [2, 0], true), [x]],
        [`${op} all axes`, (t) => r(t), [x]],
        [`${op} all axes keepdim`, (t) => r(t, undefined, true), [x]],
        [`${op} size-1 axis keepdim`, (t) => r(t, 1, true), [op === 'max' || op === 'min' ? distinct([3, 1, 2]) : [3, 1, 2]]],
      ];
    }),
  ],
  softmax: [
    ['softmax axis -1', (x) => mi.softmax(x), [[3, 4, 2]]],
    ['softmax axis 0', (x) => mi.softmax(x, 0), [[3, 4, 2]]],
    ['softmax axis 1', (x) => mi.softmax(x, 1), [[3, 4, 2]]],
    ['logSoftmax axis -1', (x) => mi.logSoftmax(x), [[3, 4, 2]]],
    ['logSoftmax axis 0', (x) => mi.logSoftmax(x, 0), [[3, 4, 2]]],
    ['logSoftmax axis 1', (x) => mi.logSoftmax(x, 1), [[3, 4, 2]]],
    ['crossEntropy mean, ignore index', (l, t) => mi.crossEntropy(l, t), [[2, 3, 5], targets]],
    ['crossEntropy sum', (l, t) => mi.crossEntropy(l, t, { reduction: 'sum' }), [[2, 3, 5], targets]],
    ['crossEntropy none', (l, t) => mi.crossEntropy(l, t, { reduction: 'none' }), [[2, 3, 5], targets]],
    [
      'crossEntropy custom ignoreIndex',
      (l, t) => mi.crossEntropy(l, t, { ignoreIndex: 4 }),
      [[2, 3, 5], given([2, 3], [0, 4, 3, 2, 4, 1], { dtype: 'int32' })],
    ],
  ],
  rmsnorm: [
    ['rmsNorm (x and weight)', (x, w) => mi.rmsNorm(x, w), [[2, 3, 4], [4]]],
    ['rmsNorm small rows', (x, w) => mi.rmsNorm(x, w, 1e-3), [normal([3, 2], 0.1), [2]]],
  ],
  conv1d: [
    ['conv1dCausal K=4 with bias', (x, w, b) => mi.conv1dCausal(x, w, b), [[2, 5, 3], [3, 4], [3]]],
    ['conv1dCausal K=1', (x, w, b) => mi.conv1dCausal(x, w, b), [[2, 5, 3], [3, 1], [3]]],
    ['conv1dCausal K > T', (x, w, b) => mi.conv1dCausal(x, w, b), [[1, 3, 2], [2, 5], [2]]],
    [
      'conv1dCausal no bias, weight [C,1,K]',
      (x, w) => mi.conv1dCausal(x, w),
      [
        [2, 4, 3],
        [3, 1, 4],
      ],
    ],
  ],
  topk: [
    ['topk values', (x) => mi.topk(x, 2).values, [distinct([3, 6])]],
    ['topk k = cols', (x) => mi.topk(x, 4).values, [distinct([2, 2, 4])]],
  ],
  scan: [
    ['selectiveScan plain', (x, d, A, B, C) => mi.selectiveScan({ x, delta: d, A, B, C }).y, scanCore],
    ['selectiveScan with z', (x, d, A, B, C, z) => mi.selectiveScan({ x, delta: d, A, B, C, z }).y, [...scanCore, [SB, ST, SE]]],
    ['selectiveScan with D', (x, d, A, B, C, D) => mi.selectiveScan({ x, delta: d, A, B, C, D }).y, [...scanCore, [SE]]],
    ['selectiveScan with h0', (x, d, A, B, C, h0) => mi.selectiveScan({ x, delta: d, A, B, C, h0 }).y, [...scanCore, [SB, SE, SN]]],
    [
      'selectiveScan deltaSoftplus',
      (x, d, A, B, C) => mi.selectiveScan({ x, delta: d, A, B, C, deltaSoftplus: true }).y,
      [scanCore[0], normal([SB, ST, SE]), ...scanCore.slice(2)],
    ],
    [
      'selectiveScan deltaBias + deltaSoftplus',
      (x, d, A, B, C, bias) => mi.selectiveScan({ x, delta: d, A, B, C, deltaBias: bias, deltaSoftplus: true }).y,
      [scanCore[0], normal([SB, ST, SE]), ...scanCore.slice(2), [SE]],
    ],
    ['selectiveScan all options, cotangent on y', (...t) => scanAll(...(t as Nine)).y, scanAllInputs],
    ['selectiveScan all options, cotangent on hT only', (...t) => scanAll(...(t as Nine)).hT, scanAllInputs],
    ['selectiveScan all options, cotangent on hs only', (...t) => scanAll(...(t as Nine), true).hs!, scanAllInputs],
    [
      'selectiveScan all options, cotangents on y, hT, hs',
      (...t) => {
        const { y, hT, hs } = scanAll(...(t as Nine), true);
        return mi.concat([flat(y), flat(hT), flat(hs!)], 0);
      },
      scanAllInputs,
    ],
    [
      'selectiveScan T=1',
      (x, d, A, B, C, h0) => mi.selectiveScan({ x, delta: d, A, B, C, h0 }).y,
      [[1, 1, 2], positive([1, 1, 2]), negative([2, 3]), [1, 1, 3], [1, 1, 3], [1, 2, 3]],
    ],
  ],
  sae: [
    ['sparseAutoencoder relu, loss with L1', (...t) => saeOf(t, { kind: 'relu', l1: 0.3 }).loss, saeInputs],
    [
      'sparseAutoencoder relu, cotangents on z, recon, loss',
      (...t) => {
        const o = saeOf(t, { kind: 'relu' });
        return mi.concat([flat(o.z!), flat(o.recon), o.loss], 0);
      },
      saeInputs,
    ],
    ['sparseAutoencoder topk, loss', (...t) => saeOf(t, { kind: 'topk', k: 2 }).loss, saeInputs],
    ['sparseAutoencoder topk k = latents, recon', (...t) => saeOf(t, { kind: 'topk', k: 6, l1: 0.2 }).recon, saeInputs],
    // the AuxK loss holds its residual x - recon constant, which finite differences cannot see:
    // its gradient is checked against the composed ops in test/engine/sae.test.ts
    [
      'sparseAutoencoder topk with AuxK, cotangents on values, recon, loss',
      (...t) => {
        const o = saeOf(t.slice(0, 5), { kind: 'topk', k: 2, l1: 0.1, dead: t[5], kAux: 3 });
        return mi.concat([flat(o.values!), flat(o.recon), o.loss], 0);
      },
      [...saeInputs, deadMask],
    ],
  ],
};
type Nine = [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];

/** Every case of every op file, in the order of GRAD_CASES. */
export const ALL_GRAD_CASES: GradCase[] = Object.values(GRAD_CASES).flat();
