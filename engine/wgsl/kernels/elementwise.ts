// One-thread-per-element kernels: fill, unary, binary, where and cast. Float
// expressions come from the shared table (engine/elementwise.ts); int32 has its own short list.
import { BINARY, UNARY, WGSL_ELEMENTWISE_PRELUDE, type BinaryOp, type UnaryOp } from '../../elementwise.ts';
import { stridesOf } from '../../shape.ts';
import type { WgslKernel } from '../kernel.ts';
import {
  checkSize,
  collapseDims,
  elementwiseGroups,
  elementwiseMain,
  product,
  storage,
  stridedOffsets,
  Uniforms,
  wgslType,
} from '../common.ts';

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
  const u = new Uniforms().u32('size', p.size)[t]('value', p.value);
  return {
    passes: [
      {
        label: 'fill',
        code: u.struct() + storage(1, 'O', t, true) + elementwiseMain('u.size', '  O[i] = u.value;'),
        workgroups: elementwiseGroups(p.size),
        uniforms: u.bytes(),
        bindings: [{ kind: 'output', index: 0 }],
        foldable: true,
      },
    ],
  };
};

export const unary: WgslKernel<'unary'> = ([x], [out], p) => {
  checkSize('unary', 'x', x, p.size);
  checkSize('unary', 'out', out, p.size);
  const t = wgslType(x.dtype, 'unary');
  const expr = t === 'f32' ? UNARY[p.op].wgsl : UNARY_I32[p.op];
  if (!expr) throw new Error(`unary: op '${p.op}' has no int32 version on WebGPU`);
  const u = new Uniforms().u32('size', p.size).f32('alpha', p.alpha).f32('beta', p.beta);
  // alpha and beta are f32 in the block; int32 ops do not use them
  const body = `  let x = X[i];\n  let alpha = u.alpha;\n  let beta = u.beta;\n  _ = alpha; _ = beta;\n  O[i] = ${expr};`;
  return {
    passes: [
      {
        label: `unary ${p.op}`,
        code:
          u.struct() +
          storage(1, 'X', t, false) +
          storage(2, 'O', t, true) +
          (t === 'f32' ? WGSL_ELEMENTWISE_PRELUDE : '') +
          elementwiseMain('u.size', body),
        workgroups: elementwiseGroups(p.size),
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

/** The uniform block and offset code of a broadcast walk over `shape` with one strides list per operand. */
function broadcastWalk(kernel: string, shape: readonly number[], operands: Record<string, readonly number[]>) {
  const names = Object.keys(operands);
  const size = product(shape);
  // the output is contiguous: collapsing with its strides too keeps i's decomposition valid
  const c = collapseDims(shape, [stridesOf(shape), ...names.map((n) => operands[n])]);
  const u = new Uniforms().u32('size', size).vec('shape', 'u32', c.shape);
  names.forEach((n, k) => u.vec(`${n}Strides`, 'i32', c.strides[k + 1]));
  return { u, size, offsets: stridedOffsets(c.shape.length, names, kernel) };
}

export const binary: WgslKernel<'binary'> = ([a], [out], p) => {
  const { u, size, offsets } = broadcastWalk('binary', p.shape, { a: p.aStrides, b: p.bStrides });
  checkSize('binary', 'out', out, size);
  const t = wgslType(a.dtype, 'binary');
  const to = wgslType(out.dtype, 'binary');
  const expr = t === 'f32' ? BINARY[p.op].wgsl : BINARY_I32[p.op];
  if (!expr) throw new Error(`binary: op '${p.op}' has no int32 version on WebGPU`);
  const body = `${offsets}\n  let a = A[u32(off_a)];\n  let b = B[u32(off_b)];\n  O[i] = ${to}(${expr});`;
  return {
    passes: [
      {
        label: `binary ${p.op}`,
        code:
          u.struct() +
          storage(1, 'A', t, false) +
          storage(2, 'B', t, false) +
          storage(3, 'O', to, true) +
          (t === 'f32' ? WGSL_ELEMENTWISE_PRELUDE : '') +
          elementwiseMain('u.size', body),
        workgroups: elementwiseGroups(size),
        uniforms: u.bytes(),
        foldable: true,
        bindings: [
          { kind: 'input', index: 0 },
          { kind: 'input', index: 1 },
          { kind: 'output', index: 0 },
        ],
      },
    ],
  };
};

export const where: WgslKernel<'where'> = ([c, a], [out], p) => {
  const { u, size, offsets } = broadcastWalk('where', p.shape, { c: p.cStrides, a: p.aStrides, b: p.bStrides });
  checkSize('where', 'out', out, size);
  const tc = wgslType(c.dtype, 'where');
  const t = wgslType(a.dtype, 'where');
  const zero = tc === 'f32' ? '0.0' : '0i';
  const body = `${offsets}\n  O[i] = select(B[u32(off_b)], A[u32(off_a)], C[u32(off_c)] != ${zero});`;
  return {
    passes: [
      {
        label: 'where',
        code:
          u.struct() +
          storage(1, 'C', tc, false) +
          storage(2, 'A', t, false) +
          storage(3, 'B', t, false) +
          storage(4, 'O', t, true) +
          elementwiseMain('u.size', body),
        workgroups: elementwiseGroups(size),
        uniforms: u.bytes(),
        foldable: true,
        bindings: [
          { kind: 'input', index: 0 },
          { kind: 'input', index: 1 },
          { kind: 'input', index: 2 },
          { kind: 'output', index: 0 },
        ],
      },
    ],
  };
};

export const cast: WgslKernel<'cast'> = ([x], [out], p) => {
  checkSize('cast', 'x', x, p.size);
  checkSize('cast', 'out', out, p.size);
  const ti = wgslType(x.dtype, 'cast');
  const to = wgslType(out.dtype, 'cast');
  // WGSL's f32 -> i32 conversion truncates toward zero, as the CPU's Math.trunc
  const u = new Uniforms().u32('size', p.size);
  return {
    passes: [
      {
        label: `cast ${x.dtype}->${out.dtype}`,
        code: u.struct() + storage(1, 'X', ti, false) + storage(2, 'O', to, true) + elementwiseMain('u.size', `  O[i] = ${to}(X[i]);`),
        workgroups: elementwiseGroups(p.size),
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
