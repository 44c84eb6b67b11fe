// The one way a WGSL kernel declares what a compute pass binds. A pass states, once, its uniform
// fields (with values) and its storage buffers in binding order (with the kernel buffer each one
// binds to); `computePass` generates from that one list
//   - the WGSL declarations: `struct Uniforms`, `var<uniform> u` at @binding(0), the storage
//     buffers from @binding(1) on (the layout engine/wgsl/backend.ts binds),
//   - the bytes of the uniform block,
//   - the `bindings` of the ComputePass,
// so the shader, the bytes and the bind group cannot disagree.
import type { DType } from '../dtype.ts';
import type { BindingRef, BufferInfo, ComputePass } from './kernel.ts';

export type Scalar = 'u32' | 'i32' | 'f32';

/**
 * Uniform fields by name, in declaration order: a scalar, or an array read in WGSL through
 * `vecAt(name, d)` (stored as vec4s, since WGSL's uniform layout gives array elements 16 bytes).
 */
export type UniformFields = Record<string, readonly [Scalar, number | readonly number[]]>;

/**
 * A storage buffer: its WGSL name, element type, access, and the kernel buffer bound to it. A
 * float32 buffer may be declared `vec4<f32>` (four elements a load), where the kernel's accesses
 * are 4-aligned; its arrayLength is then the whole vec4s the binding holds.
 */
export type Storage = readonly [name: string, type: Scalar | 'vec4<f32>', access: 'read' | 'read_write', ref: BindingRef];

/** WebGPU's guaranteed maxStorageBuffersPerShaderStage; every pass must fit in it (see kernel.ts). */
export const MAX_STORAGE_BUFFERS = 8;

export const input = (index: number): BindingRef => ({ kind: 'input', index });
export const output = (index: number): BindingRef => ({ kind: 'output', index });
export const scratch = (index: number): BindingRef => ({ kind: 'scratch', index });

export interface PassSpec {
  /** A name for errors: "scan_bwd pass 2". */
  label: string;
  uniforms?: UniformFields;
  buffers: readonly Storage[];
  /** The rest of the WGSL module (entry point `main`); it reads the uniforms as `u.<name>`. */
  code: string;
  workgroups: [number, number, number];
  /** See ComputePass.foldable. */
  foldable?: boolean;
}

/**
 * A ComputePass from its one declaration, e.g.
 *
 *   computePass({
 *     label: 'cast',
 *     uniforms: { size: ['u32', n] },
 *     buffers: [['X', 'f32', 'read', input(0)], ['O', 'i32', 'read_write', output(0)]],
 *     code: elementwiseMain('u.size', '  O[i] = i32(X[i]);'),
 *     workgroups: elementwiseGroups(n),
 *   });
 *
 * Throws when a pass binds more than MAX_STORAGE_BUFFERS or two buffers share a name.
 */
export function computePass(p: PassSpec): ComputePass {
  const names = new Set(['u']);
  for (const [name] of p.buffers) {
    if (names.has(name)) throw new Error(`${p.label}: storage buffer name '${name}' is taken`);
    names.add(name);
  }
  if (p.buffers.length > MAX_STORAGE_BUFFERS) {
    throw new Error(`${p.label}: binds ${p.buffers.length} storage buffers, more than ${MAX_STORAGE_BUFFERS}`);
  }
  const block = p.uniforms && Object.keys(p.uniforms).length ? uniformBlock(p.label, p.uniforms) : null;
  const decls = p.buffers.map(
    ([name, type, access], i) => `@group(0) @binding(${i + 1}) var<storage, ${access}> ${name}: array<${type}>;\n`,
  );
  return {
    label: p.label,
    code: (block?.wgsl ?? '') + decls.join('') + p.code,
    workgroups: p.workgroups,
    ...(block && { uniforms: block.bytes }),
    bindings: p.buffers.map(([, , , ref]) => ref),
    ...(p.foldable && { foldable: true }),
  };
}

/** WGSL for element d of uniform array `name`. */
export function vecAt(name: string, d: number): string {
  return `u.${name}[${d >> 2}].${'xyzw'[d & 3]}`;
}

/**
 * Scalars first (4 bytes each), then the arrays, 16-byte aligned. The WGSL depends only on names,
 * types and array lengths, never on values, so one source (one cached pipeline) serves every call
 * of the same shape of kernel.
 */
function uniformBlock(label: string, fields: UniformFields): { wgsl: string; bytes: ArrayBuffer } {
  const scalars: [string, Scalar, number][] = [];
  const arrays: [string, Scalar, number[]][] = [];
  for (const [name, [type, v]] of Object.entries(fields)) {
    if (typeof v === 'number') {
      if (type === 'u32' && !(Number.isInteger(v) && v >= 0 && v < 2 ** 32))
        throw new Error(`${label}: uniform ${name}: ${v} is not a u32`);
      scalars.push([name, type, v]);
    } else {
      const n = Math.max(4, Math.ceil(v.length / 4) * 4);
      arrays.push([name, type, [...v, ...new Array(n - v.length).fill(0)]]);
    }
  }
  const lines = scalars.map(([n, t]) => `  ${n}: ${t},`);
  // pad the scalars to 16 bytes so the arrays start aligned
  const start = arrays.length ? Math.ceil(scalars.length / 4) * 4 : scalars.length;
  for (let i = scalars.length; i < start; i++) lines.push(`  _pad${i}: u32,`);
  for (const [n, t, v] of arrays) lines.push(`  ${n}: array<vec4<${t}>, ${v.length / 4}>,`);
  const wgsl = `struct Uniforms {\n${lines.join('\n')}\n};\n@group(0) @binding(0) var<uniform> u: Uniforms;\n`;

  const words = start + arrays.reduce((s, [, , v]) => s + v.length, 0);
  const bytes = new ArrayBuffer(Math.max(16, Math.ceil((words * 4) / 16) * 16));
  const dv = new DataView(bytes);
  const put = (at: number, t: Scalar, v: number) => {
    if (t === 'f32') dv.setFloat32(at * 4, v, true);
    else if (t === 'i32') dv.setInt32(at * 4, v, true);
    else dv.setUint32(at * 4, v, true);
  };
  scalars.forEach(([, t, v], i) => put(i, t, v));
  let at = start;
  for (const [, t, v] of arrays) for (const x of v) put(at++, t, x);
  return { wgsl, bytes };
}

/** The WGSL element type of a kernel buffer. */
export function wgslType(dtype: DType, kernel: string): 'f32' | 'i32' {
  if (dtype === 'float32') return 'f32';
  if (dtype === 'int32') return 'i32';
  throw new Error(`${kernel}: the WebGPU backend has no ${dtype} buffers`);
}

export function checkSize(kernel: string, what: string, buf: BufferInfo | undefined, want: number): void {
  if (!buf) throw new Error(`${kernel}: missing ${what} buffer`);
  if (buf.size < want) throw new Error(`${kernel}: ${what} has ${buf.size} elements, needs ${want}`);
}
