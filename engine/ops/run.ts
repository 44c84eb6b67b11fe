// The bridge from ops to kernels: checks that inputs share a backend, allocates outputs and runs
// one kernel of engine/kernels.ts.
import type { DType } from '../dtype.ts';
import type { KernelName, KernelParams } from '../kernels.ts';
import { shapeStr, type Shape } from '../shape.ts';
import { empty, type Tensor } from '../tensor.ts';

export function runKernel<K extends KernelName>(
  kernel: K,
  inputs: readonly Tensor[],
  outputs: readonly { shape: Shape; dtype: DType }[],
  params: KernelParams[K],
): Tensor[] {
  const backend = inputs[0]?.backend;
  for (const t of inputs) {
    if (t.backend !== backend) {
      throw new Error(`${kernel}: inputs on different backends (${backend?.name} and ${t.backend.name})`);
    }
  }
  if (!backend) throw new Error(`${kernel}: runKernel needs at least one input tensor`);
  const outs = outputs.map((o) => empty(o.shape, o.dtype, backend));
  try {
    backend.run(
      kernel,
      inputs.map((t) => t.buffer),
      outs.map((t) => t.buffer),
      params,
    );
  } catch (e) {
    for (const o of outs) o.dispose();
    throw e;
  }
  return outs;
}

export function describe(t: Tensor): string {
  return `${t.dtype}${shapeStr(t.shape)}`;
}

export function assertFloat(op: string, ...ts: Tensor[]): void {
  for (const t of ts) if (t.dtype === 'int32') throw new Error(`${op}: expected a float tensor, got ${describe(t)}`);
}

export function assertSameDtype(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) throw new Error(`${op}: dtype mismatch ${describe(a)} and ${describe(b)}`);
}
