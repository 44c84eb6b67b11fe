// Helpers shared by the fused WGSL kernels (softmax, rmsnorm, conv1d, topk, scan): packing the
// uniform block, choosing a power-of-two workgroup size, the workgroup-memory row reduction and
// the "sum K partial blocks" pass used instead of float atomics.
import type { BindingRef, ComputePass, DeviceFacts } from './kernel.ts';

/** Packs u32 ('u'), i32 ('i') and f32 ('f') scalars, padded to a multiple of 16 bytes. */
export function packUniforms(fields: Array<['u' | 'i' | 'f', number]>): ArrayBuffer {
  const buf = new ArrayBuffer(Math.max(16, Math.ceil(fields.length / 4) * 16));
  const view = new DataView(buf);
  fields.forEach(([kind, v], i) => {
    if (kind === 'f') view.setFloat32(i * 4, v, true);
    else if (kind === 'i') view.setInt32(i * 4, v, true);
    else view.setUint32(i * 4, v, true);
  });
  return buf;
}

/** The largest power of two <= min(want, the device's workgroup size). */
export function pow2Workgroup(want: number, device: DeviceFacts): number {
  let wg = 1;
  while (wg * 2 <= Math.min(want, device.maxWorkgroupSize)) wg *= 2;
  return wg;
}

/** Workgroup count for `n` items of `per` each, at least 1 (bounds are checked in the shader). */
export function groups(n: number, per = 1): number {
  return Math.max(1, Math.ceil(n / per));
}

/**
 * The linear workgroup index of a foldable pass (the backend may fold x into y) as a WGSL
 * expression, given builtins `wid` (workgroup_id) and `nwg` (num_workgroups).
 */
export const LINEAR_WID = 'wid.x + wid.y * nwg.x';

/**
 * Tree reductions through workgroup memory (no subgroup-size assumption: lavapipe's is 8, NVIDIA's
 * 32). `WG` must be a power of two. Callers must reach them in uniform control flow.
 */
export function rowReducePrelude(WG: number): string {
  return /* wgsl */ `
const WG: u32 = ${WG}u;
var<workgroup> red: array<f32, ${WG}>;
fn wg_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn wg_max(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
`;
}

/**
 * A quiet NaN and -infinity. WGSL rejects them as constant expressions, so the bits go through a
 * `var` (a runtime value).
 */
export const WGSL_SPECIALS = /* wgsl */ `
fn mi_nan() -> f32 { var b = 0x7fc00000u; return bitcast<f32>(b); }
fn mi_neg_inf() -> f32 { var b = 0xff800000u; return bitcast<f32>(b); }
fn mi_is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }
`;

/**
 * out[i] = sum over k < K of partial[offset + k * M + i]: the second half of every cross-workgroup
 * reduction here (no float atomics). `partial` and `out` are binding refs.
 */
export function sumPartialsPass(label: string, K: number, M: number, partial: BindingRef, out: BindingRef, offset = 0): ComputePass {
  const WGS = 256;
  const code = /* wgsl */ `
struct U { K: u32, M: u32, offset: u32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(${WGS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (${LINEAR_WID}) * ${WGS}u + lid;
  if (i >= u.M) { return; }
  var s = 0.0;
  for (var k = 0u; k < u.K; k++) { s += partial[u.offset + k * u.M + i]; }
  out[i] = s;
}`;
  return {
    code,
    label,
    foldable: true,
    workgroups: [groups(M, WGS), 1, 1],
    uniforms: packUniforms([
      ['u', K],
      ['u', M],
      ['u', offset],
    ]),
    bindings: [partial, out],
  };
}

/** Binding refs for a list of buffers, each an input (false) or an output (true), numbered in order. */
export function bufferRefs(writable: boolean[]): BindingRef[] {
  let nIn = 0,
    nOut = 0;
  return writable.map((w) => (w ? { kind: 'output', index: nOut++ } : { kind: 'input', index: nIn++ }));
}

export interface RowPass {
  label: string;
  rows: number;
  cols: number;
  /** extra uniform: the ignored target (cross-entropy) */
  ignoreIndex?: number;
  /** extra uniform: epsilon (RMSNorm) */
  eps?: number;
  /** storage declarations from binding 1 on: [name, WGSL element type, writable] */
  buffers: Array<[string, 'f32' | 'i32', boolean]>;
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
  const decls = p.buffers
    .map(([name, ty, rw], i) => `@group(0) @binding(${i + 1}) var<storage, ${rw ? 'read_write' : 'read'}> ${name}: array<${ty}>;`)
    .join('\n');
  const code = /* wgsl */ `
struct U { rows: u32, cols: u32, ignore_index: i32, eps: f32 }
@group(0) @binding(0) var<uniform> u: U;
${decls}
${rowReducePrelude(wg)}
${WGSL_SPECIALS}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = ${LINEAR_WID};
  if (row >= u.rows) { return; }
  let off = row * u.cols;
  ${p.body}
}`;
  const bindings = bufferRefs(p.buffers.map(([, , rw]) => rw));
  return {
    code,
    label: p.label,
    foldable: true,
    workgroups: [groups(p.rows), 1, 1],
    bindings,
    uniforms: packUniforms([
      ['u', p.rows],
      ['u', p.cols],
      ['i', p.ignoreIndex ?? 0],
      ['f', p.eps ?? 0],
    ]),
  };
}
