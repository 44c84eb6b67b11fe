// RMSNorm forward and backward. y = x * rstd * w with rstd = 1/sqrt(mean(x^2) + eps), one
// workgroup per row. The backward's dx is also per row; dw sums over rows, done without float
// atomics: per-block partial sums into a scratch buffer, then a second pass adds the blocks.
import type { KernelPlan, WgslKernel } from '../kernel.ts';
import { computePass, input, output, scratch } from '../layout.ts';
import { rowPass, sumPartialsPass } from '../passes.ts';
import { ELEMENTWISE_WG, elementwiseMain, groups } from '../shader.ts';

/** Rows summed by one thread of the dw partial pass. */
const ROWS_PER_BLOCK = 64;

export const rmsnorm: WgslKernel<'rmsnorm'> = (_i, _o, p, device): KernelPlan => ({
  passes: [
    rowPass({
      label: 'rmsnorm',
      rows: p.rows,
      cols: p.cols,
      eps: p.eps,
      device,
      buffers: [
        ['x', 'f32', 'read', input(0)],
        ['w', 'f32', 'read', input(1)],
        ['y', 'f32', 'read_write', output(0)],
        ['rstd', 'f32', 'read_write', output(1)],
      ],
      body: `
  var ss = 0.0;
  for (var j = lid; j < u.cols; j += WG) { let v = x[off + j]; ss += v * v; }
  ss = wg_sum(ss, lid);
  let rs = 1.0 / sqrt(ss / f32(u.cols) + u.eps);
  if (lid == 0u) { rstd[row] = rs; }
  for (var j = lid; j < u.cols; j += WG) { y[off + j] = x[off + j] * rs * w[j]; }`,
    }),
  ],
});

// dx_j = r w_j dy_j - x_j r^3 / cols * sum_k (w_k dy_k x_k);  dw_j = sum_rows x_j r dy_j
export const rmsnorm_bwd: WgslKernel<'rmsnorm_bwd'> = (_i, _o, p, device): KernelPlan => {
  const { rows, cols } = p;
  const blocks = Math.max(1, Math.ceil(rows / ROWS_PER_BLOCK));
  const dxPass = rowPass({
    label: 'rmsnorm_bwd dx',
    rows,
    cols,
    device,
    buffers: [
      ['x', 'f32', 'read', input(0)],
      ['w', 'f32', 'read', input(1)],
      ['rstd', 'f32', 'read', input(2)],
      ['dy', 'f32', 'read', input(3)],
      ['dx', 'f32', 'read_write', output(0)],
    ],
    body: `
  var dot = 0.0;
  for (var j = lid; j < u.cols; j += WG) { dot += w[j] * dy[off + j] * x[off + j]; }
  dot = wg_sum(dot, lid);
  let rs = rstd[row];
  let c = rs * rs * rs * dot / f32(u.cols);
  for (var j = lid; j < u.cols; j += WG) { dx[off + j] = rs * w[j] * dy[off + j] - x[off + j] * c; }`,
  });
  const partials = computePass({
    label: 'rmsnorm_bwd dw partials',
    uniforms: { rows: ['u32', rows], cols: ['u32', cols], blocks: ['u32', blocks] },
    buffers: [
      ['x', 'f32', 'read', input(0)],
      ['rstd', 'f32', 'read', input(2)],
      ['dy', 'f32', 'read', input(3)],
      ['partial', 'f32', 'read_write', scratch(0)],
    ],
    foldable: true,
    workgroups: [groups(blocks * cols, ELEMENTWISE_WG), 1, 1],
    code: elementwiseMain(
      'u.blocks * u.cols',
      /* wgsl */ `
  // i = block * cols + j: neighbouring threads read neighbouring columns
  let blk = i / u.cols;
  let j = i % u.cols;
  let r1 = min(u.rows, (blk + 1u) * ${ROWS_PER_BLOCK}u);
  var s = 0.0;
  for (var r = blk * ${ROWS_PER_BLOCK}u; r < r1; r++) { s += x[r * u.cols + j] * rstd[r] * dy[r * u.cols + j]; }
  partial[i] = s;`,
    ),
  });
  return {
    scratch: [blocks * cols * 4],
    passes: [dxPass, partials, sumPartialsPass('rmsnorm_bwd dw sum', blocks, cols, scratch(0), output(1))],
  };
};
