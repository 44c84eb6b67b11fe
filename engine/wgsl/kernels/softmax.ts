// Row-wise softmax / log-softmax and cross-entropy with int32 targets, forward and backward.
// One workgroup per row; the row max and the sum of exponentials are tree reductions through
// workgroup memory (shader.ts), so no subgroup size is assumed.
import type { KernelPlan, WgslKernel } from '../kernel.ts';
import { input, output } from '../layout.ts';
import { rowPass } from '../passes.ts';

/** The log-sum-exp of row `off` of buffer `x`, as WGSL statements defining `lse`. */
const LSE = /* wgsl */ `
  var m = mi_neg_inf();
  for (var j = lid; j < u.cols; j += WG) { m = max(m, x[off + j]); }
  m = wg_max(m, lid);
  var se = 0.0;
  for (var j = lid; j < u.cols; j += WG) { se += exp(x[off + j] - m); }
  se = wg_sum(se, lid);
  let lse = m + log(se);
`;

export const softmax: WgslKernel<'softmax'> = (_i, _o, p, device): KernelPlan => ({
  passes: [
    rowPass({
      label: p.log ? 'log_softmax' : 'softmax',
      rows: p.rows,
      cols: p.cols,
      device,
      buffers: [
        ['x', 'f32', 'read', input(0)],
        ['out', 'f32', 'read_write', output(0)],
      ],
      body: `${LSE}
  for (var j = lid; j < u.cols; j += WG) { out[off + j] = ${p.log ? 'x[off + j] - lse' : 'exp(x[off + j] - lse)'}; }`,
    }),
  ],
});

// softmax: dx = y (dy - sum(dy y));  log-softmax: dx = dy - exp(y) sum(dy)
export const softmax_bwd: WgslKernel<'softmax_bwd'> = (_i, _o, p, device): KernelPlan => ({
  passes: [
    rowPass({
      label: p.log ? 'log_softmax_bwd' : 'softmax_bwd',
      rows: p.rows,
      cols: p.cols,
      device,
      buffers: [
        ['y', 'f32', 'read', input(0)],
        ['dy', 'f32', 'read', input(1)],
        ['dx', 'f32', 'read_write', output(0)],
      ],
      body: `
  var s = 0.0;
  for (var j = lid; j < u.cols; j += WG) { s += ${p.log ? 'dy[off + j]' : 'dy[off + j] * y[off + j]'}; }
  s = wg_sum(s, lid);
  for (var j = lid; j < u.cols; j += WG) {
    dx[off + j] = ${p.log ? 'dy[off + j] - exp(y[off + j]) * s' : 'y[off + j] * (dy[off + j] - s)'};
  }`,
    }),
  ],
});

// A target out of [0, cols) (other than ignoreIndex) cannot throw on the GPU as it does on the
// CPU: it gives NaN, so the error shows in the loss instead of passing silently.
const TARGET = /* wgsl */ `
  let t = targets[row];
  let ignored = t == u.ignore_index;
  let valid = t >= 0 && u32(t) < u.cols;
`;

export const cross_entropy: WgslKernel<'cross_entropy'> = (_i, _o, p, device): KernelPlan => ({
  passes: [
    rowPass({
      label: 'cross_entropy',
      rows: p.rows,
      cols: p.cols,
      ignoreIndex: p.ignoreIndex,
      device,
      buffers: [
        ['x', 'f32', 'read', input(0)],
        ['targets', 'i32', 'read', input(1)],
        ['loss', 'f32', 'read_write', output(0)],
      ],
      body: `${TARGET}${LSE}
  if (lid == 0u) {
    var l = mi_nan();
    if (ignored) { l = 0.0; } else if (valid) { l = lse - x[off + u32(t)]; }
    loss[row] = l;
  }`,
    }),
  ],
});

export const cross_entropy_bwd: WgslKernel<'cross_entropy_bwd'> = (_i, _o, p, device): KernelPlan => ({
  passes: [
    rowPass({
      label: 'cross_entropy_bwd',
      rows: p.rows,
      cols: p.cols,
      ignoreIndex: p.ignoreIndex,
      device,
      buffers: [
        ['x', 'f32', 'read', input(0)],
        ['targets', 'i32', 'read', input(1)],
        ['g', 'f32', 'read', input(2)],
        ['dx', 'f32', 'read_write', output(0)],
      ],
      body: `${TARGET}${LSE}
  let gr = g[row];
  for (var j = lid; j < u.cols; j += WG) {
    var d = mi_nan();
    if (ignored) { d = 0.0; } else if (valid) { d = (exp(x[off + j] - lse) - select(0.0, 1.0, i32(j) == t)) * gr; }
    dx[off + j] = d;
  }`,
    }),
  ],
});
