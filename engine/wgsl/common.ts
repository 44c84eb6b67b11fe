// Helpers shared by the WGSL kernel modules: element types, the uniform block builder (one
// description gives both the WGSL struct and its bytes, so the two cannot disagree), the linear
// workgroup index that survives the backend's 2-D folding, and stride collapsing.
import type { DType } from '../dtype.ts';
import type { BufferInfo } from './kernel.ts';

export function wgslType(dtype: DType, kernel: string): 'f32' | 'i32' {
  if (dtype === 'float32') return 'f32';
  if (dtype === 'int32') return 'i32';
  throw new Error(`${kernel}: the WebGPU backend has no ${dtype} buffers`);
}

type Scalar = 'u32' | 'i32' | 'f32';

/**
 * A uniform block: scalars first (4 bytes each), then arrays of vec4 (16-byte aligned, as WGSL's
 * uniform layout rules want). `struct()` depends only on names and types, never on values, so the
 * WGSL source (and the cached pipeline) is shared by every call of the same shape of kernel.
 */
export class Uniforms {
  private scalars: [string, Scalar, number][] = [];
  private arrays: [string, Scalar, number[]][] = [];

  u32(name: string, v: number): this {
    return this.scalar(name, 'u32', v);
  }
  i32(name: string, v: number): this {
    return this.scalar(name, 'i32', v);
  }
  f32(name: string, v: number): this {
    return this.scalar(name, 'f32', v);
  }
  /** An array read in WGSL as `u.name[d / 4][d % 4]`; use `Uniforms.at(name, d)`. */
  vec(name: string, type: Scalar, values: readonly number[]): this {
    const n = Math.max(4, Math.ceil(values.length / 4) * 4);
    this.arrays.push([name, type, [...values, ...new Array(n - values.length).fill(0)]]);
    return this;
  }

  private scalar(name: string, type: Scalar, v: number): this {
    if (type === 'u32' && !(Number.isInteger(v) && v >= 0 && v < 2 ** 32)) {
      throw new Error(`uniform ${name}: ${v} is not a u32`);
    }
    this.scalars.push([name, type, v]);
    return this;
  }

  /** `struct Params {...}` and the binding of `u` at @binding(0). */
  struct(): string {
    const fields = this.scalars.map(([n, t]) => `  ${n}: ${t},`);
    // pad the scalars to 16 bytes so the arrays start aligned
    const pad = this.arrays.length ? (4 - (this.scalars.length % 4)) % 4 : 0;
    for (let i = 0; i < pad; i++) fields.push(`  _pad${i}: u32,`);
    for (const [n, t, v] of this.arrays) fields.push(`  ${n}: array<vec4<${t}>, ${v.length / 4}>,`);
    if (!fields.length) fields.push('  _unused: u32,');
    return `struct Params {\n${fields.join('\n')}\n};\n@group(0) @binding(0) var<uniform> u: Params;\n`;
  }

  bytes(): ArrayBuffer {
    const nScalar = this.scalars.length;
    const start = this.arrays.length ? Math.ceil(nScalar / 4) * 4 : nScalar;
    const words = start + this.arrays.reduce((s, [, , v]) => s + v.length, 0);
    const buf = new ArrayBuffer(Math.max(16, Math.ceil((words * 4) / 16) * 16));
    const dv = new DataView(buf);
    const put = (at: number, t: Scalar, v: number) => {
      if (t === 'f32') dv.setFloat32(at * 4, v, true);
      else if (t === 'i32') dv.setInt32(at * 4, v, true);
      else dv.setUint32(at * 4, v, true);
    };
    this.scalars.forEach(([, t, v], i) => put(i, t, v));
    let at = start;
    for (const [, t, v] of this.arrays) for (const x of v) put(at++, t, x);
    return buf;
  }

  /** WGSL for element d of uniform array `name`. */
  static at(name: string, d: number): string {
    return `u.${name}[${d >> 2}].${'xyzw'[d & 3]}`;
  }
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
  let i = (wid.x + wid.y * nwg.x) * ${ELEMENTWISE_WG}u + lid;
  if (i >= ${limit}) { return; }
${body}
}
`;
}

export function elementwiseGroups(n: number): [number, number, number] {
  return [Math.ceil(n / ELEMENTWISE_WG), 1, 1];
}

export function storage(binding: number, name: string, type: string, write: boolean): string {
  return `@group(0) @binding(${binding}) var<storage, ${write ? 'read_write' : 'read'}> ${name}: array<${type}>;\n`;
}

export function checkSize(kernel: string, what: string, buf: BufferInfo | undefined, want: number): void {
  if (!buf) throw new Error(`${kernel}: missing ${what} buffer`);
  if (buf.size < want) throw new Error(`${kernel}: ${what} has ${buf.size} elements, needs ${want}`);
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
 * WGSL lines that turn the linear element index `i` (over `rank` collapsed axes held in u.shape)
 * into one offset per operand, `off_<name>` (i32; strides in u.<name>Strides may be 0 or negative).
 */
export function stridedOffsets(rank: number, names: string[], kernel: string): string {
  if (rank > MAX_RANK) throw new Error(`${kernel}: rank ${rank} after collapsing exceeds ${MAX_RANK}`);
  const lines = names.map((n) => `  var off_${n} = 0i;`);
  lines.push('  var rem = i;');
  for (let d = rank - 1; d >= 0; d--) {
    lines.push(`  { let n = ${Uniforms.at('shape', d)}; let c = i32(rem % n); rem = rem / n;`);
    for (const n of names) lines.push(`    off_${n} += c * ${Uniforms.at(`${n}Strides`, d)};`);
    lines.push('  }');
  }
  return lines.join('\n');
}

export function product(a: readonly number[]): number {
  return a.reduce((p, d) => p * d, 1);
}
