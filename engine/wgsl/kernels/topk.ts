// Top-k of each row: values descending, int32 indices, ties broken toward the lower index and NaN
// ranked largest, as the CPU kernel's sort does. One workgroup per row runs k rounds; round r
// finds, by a workgroup argmax, the best element that ranks strictly after the one picked in round
// r-1. The order is total, so no "already taken" marks are needed and memory stays O(workgroup),
// whatever the row length (a vocabulary of 50k with k = 10 costs 10 passes over the row).
import type { KernelPlan, WgslKernel } from '../kernel.ts';
import { groups, LINEAR_WID, packUniforms, pow2Workgroup, WGSL_SPECIALS } from '../fused-util.ts';

export const topk: WgslKernel<'topk'> = (_i, _o, p, device): KernelPlan => {
  const WG = pow2Workgroup(256, device);
  const code = /* wgsl */ `
struct U { rows: u32, cols: u32, k: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> indices: array<i32>;
${WGSL_SPECIALS}
const WG: u32 = ${WG}u;
const NONE: u32 = 0xffffffffu;
var<workgroup> best_v: array<f32, ${WG}>;
var<workgroup> best_i: array<u32, ${WG}>;

// does (a, ia) rank before (b, ib)? NaN first, then larger values, then lower indices
fn before(a: f32, ia: u32, b: f32, ib: u32) -> bool {
  if (ib == NONE) { return ia != NONE; }
  if (ia == NONE) { return false; }
  let na = mi_is_nan(a);
  let nb = mi_is_nan(b);
  if (na && nb) { return ia < ib; }
  if (na || nb) { return na; }
  if (a != b) { return a > b; }
  return ia < ib;
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
      {
        label: 'topk',
        code,
        foldable: true,
        workgroups: [groups(p.rows), 1, 1],
        uniforms: packUniforms([
          ['u', p.rows],
          ['u', p.cols],
          ['u', p.k],
        ]),
        bindings: [
          { kind: 'input', index: 0 },
          { kind: 'output', index: 0 },
          { kind: 'output', index: 1 },
        ],
      },
    ],
  };
};
