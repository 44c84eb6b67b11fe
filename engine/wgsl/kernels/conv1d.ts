// Causal depthwise conv1d over time, x [batch, T, C], w [C, K], optional bias [C]:
//   y[b,t,c] = bias[c] + sum_k w[c,k] x[b, t-K+1+k, c]   (zero before t = 0)
// Forward and dx: one thread per element (neighbouring threads take neighbouring channels, so
// reads are coalesced). dw and dbias sum over batch*T without float atomics: per-block partial
// sums into scratch, then a pass adding the blocks.
import type { ComputePass, KernelPlan, WgslKernel } from '../kernel.ts';
import { bufferRefs, groups, LINEAR_WID, packUniforms, sumPartialsPass } from '../fused-util.ts';

const WGS = 256;
/** (b, t) rows summed by one thread of the dw / dbias partial passes. */
const ROWS_PER_BLOCK = 64;

function elementPass(
  label: string,
  count: number,
  buffers: Array<[string, boolean]>,
  body: string,
  p: ConvParams,
  blocks = 0,
): ComputePass {
  // the element count is a uniform, not part of the source, so one pipeline serves every shape
  const uniforms = packUniforms([
    ['u', p.batch],
    ['u', p.T],
    ['u', p.C],
    ['u', p.K],
    ['u', blocks],
    ['u', count],
  ]);
  const decls = buffers
    .map(([name, rw], i) => `@group(0) @binding(${i + 1}) var<storage, ${rw ? 'read_write' : 'read'}> ${name}: array<f32>;`)
    .join('\n');
  const code = /* wgsl */ `
struct U { batch: u32, T: u32, C: u32, K: u32, blocks: u32, n: u32 }
@group(0) @binding(0) var<uniform> u: U;
${decls}
@compute @workgroup_size(${WGS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (${LINEAR_WID}) * ${WGS}u + lid;
  if (i >= u.n) { return; }
  ${body}
}`;
  return {
    label,
    code,
    foldable: true,
    workgroups: [groups(count, WGS), 1, 1],
    uniforms,
    bindings: bufferRefs(buffers.map(([, rw]) => rw)),
  };
}

type ConvParams = { batch: number; T: number; C: number; K: number };

export const conv1d: WgslKernel<'conv1d'> = (_i, _o, p): KernelPlan => {
  const n = p.batch * p.T * p.C;
  const buffers: Array<[string, boolean]> = [
    ['x', false],
    ['w', false],
  ];
  if (p.hasBias) buffers.push(['bias', false]);
  buffers.push(['y', true]);
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
      ['w', false],
      ['dy', false],
      ['dx', true],
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
  dx.bindings = [
    { kind: 'input', index: 1 },
    { kind: 'input', index: 2 },
    { kind: 'output', index: 0 },
  ];
  // partial item i = block * C*K + c*K + k
  const dwPartial = elementPass(
    'conv1d_bwd dw partials',
    blocks * p.C * p.K,
    [
      ['x', false],
      ['dy', false],
      ['partial', true],
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
  dwPartial.bindings = [
    { kind: 'input', index: 0 },
    { kind: 'input', index: 2 },
    { kind: 'scratch', index: 0 },
  ];
  const passes = [
    dx,
    dwPartial,
    sumPartialsPass('conv1d_bwd dw sum', blocks, p.C * p.K, { kind: 'scratch', index: 0 }, { kind: 'output', index: 1 }),
  ];
  const scratch = [blocks * p.C * p.K * 4];
  if (p.hasBias) {
    const dbPartial = elementPass(
      'conv1d_bwd dbias partials',
      blocks * p.C,
      [
        ['dy', false],
        ['partial', true],
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
    dbPartial.bindings = [
      { kind: 'input', index: 2 },
      { kind: 'scratch', index: 1 },
    ];
    passes.push(
      dbPartial,
      sumPartialsPass('conv1d_bwd dbias sum', blocks, p.C, { kind: 'scratch', index: 1 }, { kind: 'output', index: 2 }),
    );
    scratch.push(blocks * p.C * 4);
  }
  return { passes, scratch };
};
