// Causal depthwise conv1d over time, x [batch, T, C], w [C, K], optional bias [C]:
//   y[b,t,c] = bias[c] + sum_k w[c,k] x[b, t-K+1+k, c]   (zero before t = 0)
// Forward and dx: one thread per element (neighbouring threads take neighbouring channels, so
// reads are coalesced). dw and dbias sum over batch*T without float atomics: per-block partial
// sums into scratch, then a pass adding the blocks.
import type { ComputePass, KernelPlan, WgslKernel } from '../kernel.ts';
import { computePass, input, output, scratch, type Storage } from '../layout.ts';
import { sumPartialsPass } from '../passes.ts';
import { ELEMENTWISE_WG, elementwiseMain, groups } from '../shader.ts';

/** (b, t) rows summed by one thread of the dw / dbias partial passes. */
const ROWS_PER_BLOCK = 64;

function elementPass(label: string, count: number, buffers: Storage[], body: string, p: ConvParams, blocks = 0): ComputePass {
  return computePass({
    label,
    // the element count is a uniform, not part of the source, so one pipeline serves every shape
    uniforms: { batch: ['u32', p.batch], T: ['u32', p.T], C: ['u32', p.C], K: ['u32', p.K], blocks: ['u32', blocks], n: ['u32', count] },
    buffers,
    foldable: true,
    workgroups: [groups(count, ELEMENTWISE_WG), 1, 1],
    code: elementwiseMain('u.n', body),
  });
}

type ConvParams = { batch: number; T: number; C: number; K: number };

export const conv1d: WgslKernel<'conv1d'> = (_i, _o, p): KernelPlan => {
  const n = p.batch * p.T * p.C;
  const buffers: Storage[] = [
    ['x', 'f32', 'read', input(0)],
    ['w', 'f32', 'read', input(1)],
  ];
  if (p.hasBias) buffers.push(['bias', 'f32', 'read', input(2)]);
  buffers.push(['y', 'f32', 'read_write', output(0)]);
  return {
    passes: [
      elementPass(
        'conv1d',
        n,
        buffers,
        `
  let c = i % u.C;
  let t = (i / u.C) % u.T;
  var s = ${p.hasBias ? 'bias[c]' : '0.0'};
  for (var k = 0u; k < u.K; k++) {
    // x[t - (K-1-k)] exists when t >= K-1-k
    let back = u.K - 1u - k;
    if (t >= back) { s += w[c * u.K + k] * x[i - back * u.C]; }
  }
  y[i] = s;`,
        p,
      ),
    ],
  };
};

export const conv1d_bwd: WgslKernel<'conv1d_bwd'> = (_i, _o, p): KernelPlan => {
  const rows = p.batch * p.T;
  const blocks = Math.max(1, Math.ceil(rows / ROWS_PER_BLOCK));
  // x[t] feeds y[t + K-1-k] through w[c, k]
  const dx = elementPass(
    'conv1d_bwd dx',
    rows * p.C,
    [
      ['w', 'f32', 'read', input(1)],
      ['dy', 'f32', 'read', input(2)],
      ['dx', 'f32', 'read_write', output(0)],
    ],
    `
  let c = i % u.C;
  let t = (i / u.C) % u.T;
  var s = 0.0;
  for (var k = 0u; k < u.K; k++) {
    let ahead = u.K - 1u - k;
    if (t + ahead < u.T) { s += w[c * u.K + k] * dy[i + ahead * u.C]; }
  }
  dx[i] = s;`,
    p,
    blocks,
  );
  // partial item i = block * C*K + c*K + k
  const dwPartial = elementPass(
    'conv1d_bwd dw partials',
    blocks * p.C * p.K,
    [
      ['x', 'f32', 'read', input(0)],
      ['dy', 'f32', 'read', input(2)],
      ['partial', 'f32', 'read_write', scratch(0)],
    ],
    `
  let ck = i % (u.C * u.K);
  let blk = i / (u.C * u.K);
  let c = ck / u.K;
  let back = u.K - 1u - ck % u.K;
  let r1 = min(u.batch * u.T, (blk + 1u) * ${ROWS_PER_BLOCK}u);
  var s = 0.0;
  for (var r = blk * ${ROWS_PER_BLOCK}u; r < r1; r++) {
    if (r % u.T >= back) { s += dy[r * u.C + c] * x[(r - back) * u.C + c]; }
  }
  partial[i] = s;`,
    p,
    blocks,
  );
  const passes = [dx, dwPartial, sumPartialsPass('conv1d_bwd dw sum', blocks, p.C * p.K, scratch(0), output(1))];
  const scratchBytes = [blocks * p.C * p.K * 4];
  if (p.hasBias) {
    const dbPartial = elementPass(
      'conv1d_bwd dbias partials',
      blocks * p.C,
      [
        ['dy', 'f32', 'read', input(2)],
        ['partial', 'f32', 'read_write', scratch(1)],
      ],
      `
  let c = i % u.C;
  let blk = i / u.C;
  let r1 = min(u.batch * u.T, (blk + 1u) * ${ROWS_PER_BLOCK}u);
  var s = 0.0;
  for (var r = blk * ${ROWS_PER_BLOCK}u; r < r1; r++) { s += dy[r * u.C + c]; }
  partial[i] = s;`,
      p,
      blocks,
    );
    passes.push(dbPartial, sumPartialsPass('conv1d_bwd dbias sum', blocks, p.C, scratch(1), output(2)));
    scratchBytes.push(blocks * p.C * 4);
  }
  return { passes, scratch: scratchBytes };
};
