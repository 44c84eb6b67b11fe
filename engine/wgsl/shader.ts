// WGSL building blocks shared by the kernels: entry points and their workgroup counts, the linear
// workgroup index that survives the backend's 2-D folding, workgroup-memory tree reductions, NaN
// and infinity, and the strided walk of the shape ops. Bindings and uniforms are declared in
// layout.ts, never here.
import type { DeviceFacts } from './kernel.ts';
import { vecAt } from './layout.ts';

/**
 * The linear workgroup index of a foldable pass (the backend may fold x into y) as a WGSL
 * expression, given builtins `wid` (workgroup_id) and `nwg` (num_workgroups).
 */
export const LINEAR_WID = 'wid.x + wid.y * nwg.x';

/** Workgroup count for `n` items of `per` each, at least 1 (bounds are checked in the shader). */
export function groups(n: number, per = 1): number {
  return Math.max(1, Math.ceil(n / per));
}

/** The largest power of two <= min(want, the device's workgroup size). */
export function pow2Workgroup(want: number, device: DeviceFacts): number {
  let wg = 1;
  while (wg * 2 <= Math.min(want, device.maxWorkgroupSize)) wg *= 2;
  return wg;
}

/** Workgroup size of the one-thread-per-element kernels. */
export const ELEMENTWISE_WG = 256;

/**
 * Entry point of a one-thread-per-element kernel: defines `i` (the element) and returns when
 * i >= limit. The workgroup index is linear over (x, y), so the backend may fold a grid wider than
 * 65535 workgroups into 2-D.
 */
export function elementwiseMain(limit: string, body: string): string {
  return `@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (${LINEAR_WID}) * ${ELEMENTWISE_WG}u + lid;
  if (i >= ${limit}) { return; }
${body}
}
`;
}

export function elementwiseGroups(n: number): [number, number, number] {
  return [Math.ceil(n / ELEMENTWISE_WG), 1, 1];
}

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
 * rank_before(a, ia, b, ib): does (a, ia) rank before (b, ib) in the order of the top-k kernels (the
 * contract's topk and sae)? NaN first, then larger values, then lower indices. Needs WGSL_SPECIALS.
 */
export const WGSL_RANK_BEFORE = /* wgsl */ `
fn rank_before(a: f32, ia: u32, b: f32, ib: u32) -> bool {
  let na = mi_is_nan(a);
  let nb = mi_is_nan(b);
  if (na && nb) { return ia < ib; }
  if (na || nb) { return na; }
  if (a != b) { return a > b; }
  return ia < ib;
}
`;

export function product(a: readonly number[]): number {
  return a.reduce((p, d) => p * d, 1);
}

/**
 * Drops size-1 axes and merges neighbouring axes that are contiguous for every operand, so a
 * broadcast or strided walk runs at the lowest rank that describes it (usually 1 to 3).
 */
export function collapseDims(shape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const keep = shape.map((_d, i) => i).filter((i) => shape[i] !== 1);
  let outShape = keep.map((i) => shape[i]);
  let outStrides = strides.map((s) => keep.map((i) => s[i]));
  for (let d = outShape.length - 2; d >= 0; d--) {
    const mergeable = outStrides.every((s) => s[d] === s[d + 1] * outShape[d + 1]);
    if (!mergeable) continue;
    outShape = [...outShape.slice(0, d), outShape[d] * outShape[d + 1], ...outShape.slice(d + 2)];
    outStrides = outStrides.map((s) => [...s.slice(0, d), s[d + 1], ...s.slice(d + 2)]);
  }
  return { shape: outShape, strides: outStrides };
}

export const MAX_RANK = 8;

/**
 * WGSL lines that turn the linear element index `i` (over `rank` collapsed axes held in the
 * uniform array `shape`) into one offset per operand, `off_<name>` (i32; strides in the uniform
 * arrays `<name>Strides` may be 0 or negative).
 */
export function stridedOffsets(rank: number, names: string[], kernel: string): string {
  if (rank > MAX_RANK) throw new Error(`${kernel}: rank ${rank} after collapsing exceeds ${MAX_RANK}`);
  const lines = names.map((n) => `  var off_${n} = 0i;`);
  lines.push('  var rem = i;');
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`  { let n = ${vecAt('shape', d)}; let c = i32(rem % n); rem = rem / n;`);
    for (const n of names) lines.push(`    off_${n} += c * ${vecAt(`${n}Strides`, d)};`);
    lines.push('  }');
  }
  return lines.join('\n');
}
