// Whole compute passes shared by several kernels: one workgroup per row (softmax, cross-entropy,
// rmsnorm) and the "sum K partial blocks" pass that every cross-workgroup reduction here uses
// instead of float atomics (rmsnorm, conv1d and scan backwards).
import type { BindingRef, ComputePass, DeviceFacts } from './kernel.ts';
import { computePass, type Storage } from './layout.ts';
import { ELEMENTWISE_WG, elementwiseMain, groups, LINEAR_WID, pow2Workgroup, rowReducePrelude, WGSL_SPECIALS } from './shader.ts';

/**
 * out[i] = sum over k < K of partial[offset + k * M + i]: the second half of every cross-workgroup
 * reduction here (no float atomics). `partial` and `out` are binding refs.
 */
export function sumPartialsPass(label: string, K: number, M: number, partial: BindingRef, out: BindingRef, offset = 0): ComputePass {
  return computePass({
    label,
    uniforms: { K: ['u32', K], M: ['u32', M], offset: ['u32', offset] },
    buffers: [
      ['partial', 'f32', 'read', partial],
      ['out', 'f32', 'read_write', out],
    ],
    foldable: true,
    workgroups: [groups(M, ELEMENTWISE_WG), 1, 1],
    code: elementwiseMain(
      'u.M',
      /* wgsl */ `
  var s = 0.0;
  for (var k = 0u; k < u.K; k++) { s += partial[u.offset + k * u.M + i]; }
  out[i] = s;`,
    ),
  });
}

export interface RowPass {
  label: string;
  rows: number;
  cols: number;
  /** extra uniform: the ignored target (cross-entropy) */
  ignoreIndex?: number;
  /** extra uniform: epsilon (RMSNorm) */
  eps?: number;
  buffers: readonly Storage[];
  /** WGSL body run with `row`, `off` (row * cols), `lid` defined, in uniform control flow */
  body: string;
  device: DeviceFacts;
}

/**
 * One workgroup per row of a [rows, cols] problem. The uniform block `u` holds rows, cols, an
 * i32 `ignore_index` and an f32 `eps`; the body sees `row`, `off` = row * cols, `lid`, WG, wg_sum and wg_max.
 */
export function rowPass(p: RowPass): ComputePass {
  const wg = pow2Workgroup(256, p.device);
  return computePass({
    label: p.label,
    uniforms: { rows: ['u32', p.rows], cols: ['u32', p.cols], ignore_index: ['i32', p.ignoreIndex ?? 0], eps: ['f32', p.eps ?? 0] },
    buffers: p.buffers,
    foldable: true,
    workgroups: [groups(p.rows), 1, 1],
    code: /* wgsl */ `
${rowReducePrelude(wg)}
${WGSL_SPECIALS}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = ${LINEAR_WID};
  if (row >= u.rows) { return; }
  let off = row * u.cols;
  ${p.body}
}`,
  });
}
