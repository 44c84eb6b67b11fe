// The strided copy that serves permute, slice, expand and concat (every shape op), one thread per
// element of the copied region.
import type { WgslKernel } from '../kernel.ts';
import { collapseDims, elementwiseGroups, elementwiseMain, product, storage, stridedOffsets, Uniforms, wgslType } from '../common.ts';

export const copy: WgslKernel<'copy'> = ([x], [out], p) => {
  const size = product(p.shape);
  const c = collapseDims(p.shape, [p.inStrides, p.outStrides]);
  const u = new Uniforms()
    .u32('size', size)
    .i32('inOffset', p.inOffset)
    .i32('outOffset', p.outOffset)
    .vec('shape', 'u32', c.shape)
    .vec('xStrides', 'i32', c.strides[0])
    .vec('oStrides', 'i32', c.strides[1]);
  const t = wgslType(x.dtype, 'copy');
  if (out.dtype !== x.dtype) throw new Error(`copy: ${x.dtype} into ${out.dtype}`);
  const body = `${stridedOffsets(c.shape.length, ['x', 'o'], 'copy')}\n  O[u32(u.outOffset + off_o)] = X[u32(u.inOffset + off_x)];`;
  return {
    passes: [
      {
        label: 'copy',
        code: u.struct() + storage(1, 'X', t, false) + storage(2, 'O', t, true) + elementwiseMain('u.size', body),
        workgroups: elementwiseGroups(size),
        uniforms: u.bytes(),
        foldable: true,
        bindings: [
          { kind: 'input', index: 0 },
          { kind: 'output', index: 0 },
        ],
      },
    ],
  };
};
