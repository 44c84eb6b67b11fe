// Tensors: a shape, a dtype and a reference-counted buffer on one backend. Tensors are contiguous
// and row-major; reshape shares the buffer, everything else writes a new one. Autograd fields
// (requiresGrad, grad, node) are filled in by engine/autograd.
import type { Backend, Buffer } from './backend.ts';
import { arrayFor, convertArray, type DType, type TypedArray } from './dtype.ts';
import { checkShape, shapeStr, sizeOf, type Shape } from './shape.ts';
import { cpuBackend, getBackend, track } from './runtime.ts';
import type { CpuBackend } from './cpu/backend.ts';

/** A node of the autograd graph: the op that made one or more tensors, and how to pull back. */
export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Given the cotangent of each output (null where none reached it), the cotangent of each input. */
  readonly backward: (grads: (Tensor | null)[]) => (Tensor | null | undefined)[];
  readonly nOut: number;
}

interface SharedBuffer {
  readonly buf: Buffer;
  refs: number;
}

let nextId = 1;
let liveTensors = 0;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly backend: Backend;
  readonly size: number;
  requiresGrad = false;
  grad: Tensor | null = null;
  node: GradNode | null = null;
  outIndex = 0;
  name?: string;
  private shared: SharedBuffer | null;

  /** Use the creation functions (tensor, zeros, ...) rather than this constructor. */
  constructor(backend: Backend, buf: Buffer | SharedBuffer, shape: Shape, dtype: DType) {
    this.backend = backend;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    this.shared = 'buf' in buf ? buf : { buf, refs: 0 };
    this.shared.refs++;
    if (this.shared.buf.size !== this.size) {
      throw new Error(`Tensor: buffer of ${this.shared.buf.size} elements for shape ${shapeStr(shape)}`);
    }
    liveTensors++;
    track(this);
  }

  get rank(): number {
    return this.shape.length;
  }
  get disposed(): boolean {
    return this.shared === null;
  }

  get buffer(): Buffer {
    if (!this.shared) throw new Error(`tensor #${this.id}${this.name ? ` (${this.name})` : ''} ${shapeStr(this.shape)} was disposed`);
    return this.shared.buf;
  }

  /** A new tensor of another shape over the same buffer (no copy). */
  view(shape: Shape): Tensor {
    this.buffer;
    return new Tensor(this.backend, this.shared!, shape, this.dtype);
  }

  /** The elements, copied out (waits for queued GPU work). */
  async data(): Promise<TypedArray> {
    return this.backend.read(this.buffer);
  }

  /** The elements, synchronously; only backends that can (the CPU). */
  dataSync(): TypedArray {
    if (!this.backend.readSync) throw new Error(`dataSync: the ${this.backend.name} backend reads asynchronously; use await t.data()`);
    return this.backend.readSync(this.buffer);
  }

  async item(): Promise<number> {
    if (this.size !== 1) throw new Error(`item: tensor of shape ${shapeStr(this.shape)} is not a scalar`);
    return (await this.data())[0];
  }

  /** The elements as nested arrays. */
  async array(): Promise<unknown> {
    return nest(await this.data(), this.shape);
  }

  dispose(): void {
    if (!this.shared) return;
    if (--this.shared.refs === 0) this.backend.free(this.shared.buf);
    this.shared = null;
    this.node = null;
    liveTensors--;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Replaces this tensor's contents with another's (same shape and dtype); for optimisers. */
  assign(src: Tensor): void {
    if (src.size !== this.size || src.dtype !== this.dtype || src.backend !== this.backend) {
      throw new Error(`assign: ${src.dtype}${shapeStr(src.shape)} into ${this.dtype}${shapeStr(this.shape)}`);
    }
    const old = this.shared!;
    this.buffer;
    src.buffer;
    (src as unknown as { shared: SharedBuffer }).shared.refs++;
    this.shared = (src as unknown as { shared: SharedBuffer }).shared;
    if (--old.refs === 0) this.backend.free(old.buf);
  }

  toString(): string {
    return `Tensor(${this.dtype}${shapeStr(this.shape)}${this.name ? ` ${this.name}` : ''})`;
  }
}

function nest(data: TypedArray, shape: readonly number[]): unknown {
  if (shape.length === 0) return data[0];
  const [d, ...rest] = shape;
  const step = sizeOf(rest);
  return Array.from({ length: d }, (_, i) => nest(data.subarray(i * step, (i + 1) * step), rest));
}

export function liveTensorCount(): number {
  return liveTensors;
}

// ---- creation -------------------------------------------------------------------------------
export interface CreateOptions {
  dtype?: DType;
  backend?: Backend;
  requiresGrad?: boolean;
}

/** A new, uninitialised tensor (for op implementations). */
export function empty(shape: Shape, dtype: DType = 'float32', backend: Backend = getBackend()): Tensor {
  checkShape(shape, 'empty');
  if (!backend.supports(dtype)) throw new Error(`the ${backend.name} backend has no ${dtype} tensors`);
  return new Tensor(backend, backend.alloc(dtype, sizeOf(shape)), shape, dtype);
}

type Nested = number | Nested[];

function flatten(data: Nested, shape: number[], out: number[], depth = 0): void {
  if (typeof data === 'number') {
    if (depth !== shape.length && shape.length) throw new Error('tensor: ragged nested array');
    out.push(data);
    return;
  }
  if (shape.length <= depth) shape.push(data.length);
  else if (shape[depth] !== data.length) throw new Error('tensor: ragged nested array');
  for (const d of data) flatten(d, shape, out, depth + 1);
}

/** A tensor from a typed array or (nested) numbers. Shape defaults to the data's own. */
export function tensor(data: TypedArray | Nested, shape?: Shape, opts: CreateOptions = {}): Tensor {
  let flat: ArrayLike<number>;
  let inferred: number[] = [];
  if (typeof data === 'number' || Array.isArray(data)) {
    const out: number[] = [];
    flatten(data, inferred, out);
    flat = out;
  } else {
    flat = data;
    inferred = [data.length];
  }
  const s = shape ? checkShape(shape, 'tensor') : inferred;
  if (sizeOf(s) !== flat.length) throw new Error(`tensor: ${flat.length} values do not fill shape ${shapeStr(s)}`);
  const dtype = opts.dtype ?? (ArrayBuffer.isView(data) ? dtypeOf(data as TypedArray) : 'float32');
  const t = empty(s, dtype, opts.backend);
  t.backend.write(t.buffer, convertArray(flat, dtype));
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

function dtypeOf(a: TypedArray): DType {
  return a instanceof Float64Array ? 'float64' : a instanceof Int32Array ? 'int32' : 'float32';
}

export function full(shape: Shape, value: number, opts: CreateOptions = {}): Tensor {
  const t = empty(shape, opts.dtype ?? 'float32', opts.backend);
  t.backend.run('fill', [], [t.buffer], { size: t.size, value });
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

export const zeros = (shape: Shape, opts: CreateOptions = {}) => full(shape, 0, opts);
export const ones = (shape: Shape, opts: CreateOptions = {}) => full(shape, 1, opts);
export const scalar = (value: number, opts: CreateOptions = {}) => full([], value, opts);

export function arange(n: number, opts: CreateOptions = {}): Tensor {
  const a = arrayFor(opts.dtype ?? 'int32', n);
  for (let i = 0; i < n; i++) a[i] = i;
  return tensor(a, [n], opts);
}

/** The CPU backend's live array behind a CPU tensor, without a copy (fast paths only). */
export function cpuView(t: Tensor): TypedArray {
  if (t.backend.name !== 'cpu') throw new Error('cpuView: not a CPU tensor');
  return (t.backend as CpuBackend).view(t.buffer);
}

/** Copies a tensor to another backend. */
export async function toBackend(t: Tensor, backend: Backend): Promise<Tensor> {
  if (t.backend === backend) return t;
  return tensor(await t.data(), t.shape, { dtype: t.dtype, backend });
}

export { cpuBackend };
