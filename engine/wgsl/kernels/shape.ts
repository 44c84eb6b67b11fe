// The strided copy that serves permute, slice, expand and concat (every shape op), one thread per
// element of the copied region.
import type { WgslKernel } from '../kernel.ts';
import { computePass, input, output, wgslType } from '../layout.ts';
import { collapseDims, elementwiseGroups, elementwiseMain, product, stridedOffsets } from '../shader.ts';

export const copy: WgslKernel<'copy'> = ([x], [out], p) => {
  const size = product(p.shape);
  const c = collapseDims(p.shape, [p.inStrides, p.outStrides]);
  const t = wgslType(x.dtype, 'copy');
  if (out.dtype !== x.dtype) throw new Error(`copy: ${x.dtype} into ${out.dtype}`);
  const body = `${stridedOffsets(c.shape.length, ['x', 'o'], 'copy')}\n  O[u32(u.outOffset + off_o)] = X[u32(u.inOffset + off_x)];`;
  return {
    passes: [
      computePass({
        label: 'copy',
        uniforms: {
          size: ['u32', size],
          inOffset: ['i32', p.inOffset],
          outOffset: ['i32', p.outOffset],
          shape: ['u32', c.shape],
          xStrides: ['i32', c.strides[0]],
          oStrides: ['i32', c.strides[1]],
        },
        buffers: [
          ['X', t, 'read', input(0)],
          ['O', t, 'read_write', output(0)],
        ],
        code: elementwiseMain('u.size', body),
        workgroups: elementwiseGroups(size),
        foldable: true,
      }),
    ],
  };
};
