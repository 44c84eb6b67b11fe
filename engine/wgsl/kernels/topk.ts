// Top-k of each row: values descending, int32 indices, ties broken toward the lower index and NaN
// ranked largest, as the CPU kernel's sort does. One workgroup per row runs k rounds; round r
// finds, by a workgroup argmax, the best element that ranks strictly after the one picked in round
// r-1. The order is total, so no "already taken" marks are needed and memory stays O(workgroup),
// whatever the row length (a vocabulary of 50k with k = 10 costs 10 passes over the row).
import type { KernelPlan, WgslKernel } from '../kernel.ts';
import { computePass, input, output } from '../layout.ts';
import { groups, LINEAR_WID, pow2Workgroup, WGSL_RANK_BEFORE, WGSL_SPECIALS } from '../shader.ts';

export const topk: WgslKernel<'topk'> = (_i, _o, p, device): KernelPlan => {
  const WG = pow2Workgroup(256, device);
  const code = /* wgsl */ `
${WGSL_SPECIALS}
const WG: u32 = ${WG}u;
const NONE: u32 = 0xffffffffu;
var<workgroup> best_v: array<f32, ${WG}>;
var<workgroup> best_i: array<u32, ${WG}>;

${WGSL_RANK_BEFORE}
// rank_before, with NONE (no element) ranked after every element
fn before(a: f32, ia: u32, b: f32, ib: u32) -> bool {
  if (ib == NONE) { return ia != NONE; }
  if (ia == NONE) { return false; }
  return rank_before(a, ia, b, ib);
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = ${LINEAR_WID};
  if (row >= u.rows) { return; }
  let off = row * u.cols;
  var prev_v = 0.0;
  var prev_i = NONE;
  for (var r = 0u; r < u.k; r++) {
    var bv = 0.0;
    var bi = NONE;
    for (var j = lid; j < u.cols; j += WG) {
      let v = x[off + j];
      // candidates rank strictly after the previous pick
      if ((prev_i == NONE || before(prev_v, prev_i, v, j)) && before(v, j, bv, bi)) { bv = v; bi = j; }
    }
    best_v[lid] = bv;
    best_i[lid] = bi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
      if (lid < s && before(best_v[lid + s], best_i[lid + s], best_v[lid], best_i[lid])) {
        best_v[lid] = best_v[lid + s];
        best_i[lid] = best_i[lid + s];
      }
      workgroupBarrier();
    }
    prev_v = best_v[0];
    prev_i = best_i[0];
    workgroupBarrier();
    if (lid == 0u) {
      values[row * u.k + r] = prev_v;
      indices[row * u.k + r] = i32(prev_i);
    }
  }
}`;
  return {
    passes: [
      computePass({
        label: 'topk',
        uniforms: { rows: ['u32', p.rows], cols: ['u32', p.cols], k: ['u32', p.k] },
        buffers: [
          ['x', 'f32', 'read', input(0)],
          ['values', 'f32', 'read_write', output(0)],
          ['indices', 'i32', 'read_write', output(1)],
        ],
        code,
        foldable: true,
        workgroups: [groups(p.rows), 1, 1],
      }),
    ],
  };
};
