// One-thread-per-element kernels: fill, unary, binary, where and cast. Float
// expressions come from the shared table (engine/elementwise.ts); int32 has its own short list.
import { BINARY, UNARY, WGSL_ELEMENTWISE_PRELUDE, type BinaryOp, type UnaryOp } from '../../elementwise.ts';
import { stridesOf } from '../../shape.ts';
import type { WgslKernel } from '../kernel.ts';
import { checkSize, computePass, output, input, type UniformFields, wgslType } from '../layout.ts';
import { collapseDims, elementwiseGroups, elementwiseMain, product, stridedOffsets } from '../shader.ts';

// int32 versions of the ops that make sense on integers (indices, counts, masks)
const UNARY_I32: Partial<Record<UnaryOp, string>> = { neg: '-x', abs: 'abs(x)', sign: 'sign(x)', square: 'x * x' };
const BINARY_I32: Partial<Record<BinaryOp, string>> = {
  add: 'a + b',
  sub: 'a - b',
  mul: 'a * b',
  maximum: 'max(a, b)',
  minimum: 'min(a, b)',
  gt: 'select(0i, 1i, a > b)',
  ge: 'select(0i, 1i, a >= b)',
  lt: 'select(0i, 1i, a < b)',
  le: 'select(0i, 1i, a <= b)',
  eq: 'select(0i, 1i, a == b)',
  ne: 'select(0i, 1i, a != b)',
};

export const fill: WgslKernel<'fill'> = (_in, [out], p) => {
  checkSize('fill', 'out', out, p.size);
  const t = wgslType(out.dtype, 'fill');
  return {
    passes: [
      computePass({
        label: 'fill',
        uniforms: { size: ['u32', p.size], value: [t, p.value] },
        buffers: [['O', t, 'read_write', output(0)]],
        code: elementwiseMain('u.size', '  O[i] = u.value;'),
        workgroups: elementwiseGroups(p.size),
        foldable: true,
      }),
    ],
  };
};

export const unary: WgslKernel<'unary'> = ([x], [out], p) => {
  checkSize('unary', 'x', x, p.size);
  checkSize('unary', 'out', out, p.size);
  const t = wgslType(x.dtype, 'unary');
  const expr = t === 'f32' ? UNARY[p.op].wgsl : UNARY_I32[p.op];
  if (!expr) throw new Error(`unary: op '${p.op}' has no int32 version on WebGPU`);
  // alpha and beta are f32 in the block; int32 ops do not use them
  const body = `  let x = X[i];\n  let alpha = u.alpha;\n  let beta = u.beta;\n  _ = alpha; _ = beta;\n  O[i] = ${expr};`;
  return {
    passes: [
      computePass({
        label: `unary ${p.op}`,
        uniforms: { size: ['u32', p.size], alpha: ['f32', p.alpha], beta: ['f32', p.beta] },
        buffers: [
          ['X', t, 'read', input(0)],
          ['O', t, 'read_write', output(0)],
        ],
        code: (t === 'f32' ? WGSL_ELEMENTWISE_PRELUDE : '') + elementwiseMain('u.size', body),
        workgroups: elementwiseGroups(p.size),
        foldable: true,
      }),
    ],
  };
};

/** The uniform fields and offset code of a broadcast walk over `shape` with one strides list per operand. */
function broadcastWalk(kernel: string, shape: readonly number[], operands: Record<string, readonly number[]>) {
  const names = Object.keys(operands);
  const size = product(shape);
  // the output is contiguous: collapsing with its strides too keeps i's decomposition valid
  const c = collapseDims(shape, [stridesOf(shape), ...names.map((n) => operands[n])]);
  const uniforms: UniformFields = { size: ['u32', size], shape: ['u32', c.shape] };
  names.forEach((n, k) => {
    uniforms[`${n}Strides`] = ['i32', c.strides[k + 1]];
  });
  return { uniforms, size, offsets: stridedOffsets(c.shape.length, names, kernel) };
}

export const binary: WgslKernel<'binary'> = ([a], [out], p) => {
  const { uniforms, size, offsets } = broadcastWalk('binary', p.shape, { a: p.aStrides, b: p.bStrides });
  checkSize('binary', 'out', out, size);
  const t = wgslType(a.dtype, 'binary');
  const to = wgslType(out.dtype, 'binary');
  const expr = t === 'f32' ? BINARY[p.op].wgsl : BINARY_I32[p.op];
  if (!expr) throw new Error(`binary: op '${p.op}' has no int32 version on WebGPU`);
  const body = `${offsets}\n  let a = A[u32(off_a)];\n  let b = B[u32(off_b)];\n  O[i] = ${to}(${expr});`;
  return {
    passes: [
      computePass({
        label: `binary ${p.op}`,
        uniforms,
        buffers: [
          ['A', t, 'read', input(0)],
          ['B', t, 'read', input(1)],
          ['O', to, 'read_write', output(0)],
        ],
        code: (t === 'f32' ? WGSL_ELEMENTWISE_PRELUDE : '') + elementwiseMain('u.size', body),
        workgroups: elementwiseGroups(size),
        foldable: true,
      }),
    ],
  };
};

export const where: WgslKernel<'where'> = ([c, a], [out], p) => {
  const { uniforms, size, offsets } = broadcastWalk('where', p.shape, { c: p.cStrides, a: p.aStrides, b: p.bStrides });
  checkSize('where', 'out', out, size);
  const tc = wgslType(c.dtype, 'where');
  const t = wgslType(a.dtype, 'where');
  const zero = tc === 'f32' ? '0.0' : '0i';
  const body = `${offsets}\n  O[i] = select(B[u32(off_b)], A[u32(off_a)], C[u32(off_c)] != ${zero});`;
  return {
    passes: [
      computePass({
        label: 'where',
        uniforms,
        buffers: [
          ['C', tc, 'read', input(0)],
          ['A', t, 'read', input(1)],
          ['B', t, 'read', input(2)],
          ['O', t, 'read_write', output(0)],
        ],
        code: elementwiseMain('u.size', body),
        workgroups: elementwiseGroups(size),
        foldable: true,
      }),
    ],
  };
};

export const cast: WgslKernel<'cast'> = ([x], [out], p) => {
  checkSize('cast', 'x', x, p.size);
  checkSize('cast', 'out', out, p.size);
  const ti = wgslType(x.dtype, 'cast');
  const to = wgslType(out.dtype, 'cast');
  // WGSL's f32 -> i32 conversion truncates toward zero, as the CPU's Math.trunc
  return {
    passes: [
      computePass({
        label: `cast ${x.dtype}->${out.dtype}`,
        uniforms: { size: ['u32', p.size] },
        buffers: [
          ['X', ti, 'read', input(0)],
          ['O', to, 'read_write', output(0)],
        ],
        code: elementwiseMain('u.size', `  O[i] = ${to}(X[i]);`),
        workgroups: elementwiseGroups(p.size),
        foldable: true,
      }),
    ],
  };
};
