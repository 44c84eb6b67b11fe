// Reductions over the middle axis of [outer, len, inner]: sum/max/min and argmax.
// One workgroup of 256 threads, arranged as TY rows x TX columns, owns TX neighbouring columns i
// of one o: each thread folds k = ty, ty + TY, ... into a register, then the TY partials of each
// column meet in a tree through workgroup memory. Nothing assumes a subgroup size (8 on lavapipe,
// 32 on NVIDIA), and the result does not depend on the hardware's scheduling.
import type { KernelParams } from '../../kernels.ts';
import type { WgslKernel } from '../kernel.ts';
import { checkSize, computePass, input, output, type UniformFields, wgslType } from '../layout.ts';

const THREADS = 256;

/** Columns per workgroup: 1 for row reductions, wider when there are columns to share the work. */
function columnsPerGroup(inner: number): number {
  return inner === 1 ? 1 : inner < 32 ? 8 : 32;
}

/** Threads per column (TX x TY), the uniform block and the workgroup count of a reduction. */
function tiling(p: { outer: number; len: number; inner: number }) {
  const TX = columnsPerGroup(p.inner);
  const TY = THREADS / TX;
  const colBlocks = Math.ceil(p.inner / TX);
  const uniforms: UniformFields = {
    outer: ['u32', p.outer],
    len: ['u32', p.len],
    inner: ['u32', p.inner],
    colBlocks: ['u32', colBlocks],
    negInf: ['u32', 0xff800000],
    posInf: ['u32', 0x7f800000],
  };
  return { TX, TY, uniforms, groups: [p.outer * colBlocks, 1, 1] as [number, number, number] };
}

/** WGSL prologue: which (o, column) this thread serves, and whether the column exists. */
function prologue(TX: number): string {
  return `@compute @workgroup_size(${THREADS})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= u.outer * u.colBlocks) { return; }  // uniform per workgroup: barriers stay in uniform control flow
  let o = g / u.colBlocks;
  let tx = lid % ${TX}u;
  let ty = lid / ${TX}u;
  let col = (g % u.colBlocks) * ${TX}u + tx;
  let live = col < u.inner;
  let base = o * u.len * u.inner + col;
`;
}

/** Tree over ty in workgroup memory; `combine(a, b)` writes the merge of slot b into slot a. */
function tree(TX: number, TY: number, combine: (a: string, b: string) => string): string {
  return `  var s = ${TY / 2}u;
  loop {
    if (s == 0u) { break; }
    if (ty < s) { ${combine('lid', `lid + s * ${TX}u`)} }
    workgroupBarrier();
    s = s / 2u;
  }
`;
}

export const reduce: WgslKernel<'reduce'> = ([x], [out], p) => {
  checkSize('reduce', 'x', x, p.outer * p.len * p.inner);
  checkSize('reduce', 'out', out, p.outer * p.inner);
  const t = wgslType(x.dtype, 'reduce');
  const { TX, TY, uniforms, groups } = tiling(p);
  const init = initial(p.op, t);
  // max/min propagate NaN as the CPU does; WGSL's max() may drop it, so test the bits
  const isNan = (v: string) => (t === 'f32' ? `((bitcast<u32>(${v}) & 0x7fffffffu) > 0x7f800000u)` : 'false');
  const merge = (a: string, b: string) =>
    p.op === 'sum' ? `${a} + ${b}` : `select(select(${p.op}(${a}, ${b}), ${b}, ${isNan(b)}), ${a}, ${isNan(a)})`;
  const code =
    `var<workgroup> part: array<${t}, ${THREADS}>;\n` +
    prologue(TX) +
    `  var acc = ${init};
  if (live) {
    for (var k = ty; k < u.len; k += ${TY}u) { acc = ${merge('acc', 'X[base + k * u.inner]')}; }
  }
  part[lid] = acc;
  workgroupBarrier();
` +
    tree(TX, TY, (a, b) => `part[${a}] = ${merge(`part[${a}]`, `part[${b}]`)};`) +
    `  if (ty == 0u && live) { O[o * u.inner + col] = part[tx]; }\n}\n`;
  return {
    passes: [
      computePass({
        label: `reduce ${p.op}`,
        uniforms,
        buffers: [
          ['X', t, 'read', input(0)],
          ['O', t, 'read_write', output(0)],
        ],
        code,
        workgroups: groups,
        foldable: true,
      }),
    ],
  };
};

function initial(op: KernelParams['reduce']['op'], t: 'f32' | 'i32'): string {
  if (op === 'sum') return t === 'f32' ? '0.0' : '0i';
  if (t === 'i32') return op === 'max' ? 'i32(-2147483647 - 1)' : '2147483647i';
  // infinities through a runtime value (a constant infinity does not compile)
  return `bitcast<f32>(u.${op === 'max' ? 'negInf' : 'posInf'})`;
}

/**
 * First k with the largest value, as the CPU: only values above -Infinity count (NaN never wins),
 * ties go to the lower k, and a column with no such value gives 0.
 */
export const argmax: WgslKernel<'argmax'> = ([x], [out], p) => {
  checkSize('argmax', 'x', x, p.outer * p.len * p.inner);
  checkSize('argmax', 'out', out, p.outer * p.inner);
  const t = wgslType(x.dtype, 'argmax');
  const { TX, TY, uniforms, groups } = tiling(p);
  const lowest = t === 'f32' ? 'bitcast<f32>(u.negInf)' : 'i32(-2147483647 - 1)';
  const NONE = '0xffffffffu';
  const code =
    `var<workgroup> bestV: array<${t}, ${THREADS}>;\nvar<workgroup> bestK: array<u32, ${THREADS}>;\n` +
    prologue(TX) +
    `  var v = ${lowest};
  var kk = ${NONE};
  if (live) {
    // k rises along the loop, so strict > keeps the first of equal values
    for (var k = ty; k < u.len; k += ${TY}u) {
      let xv = X[base + k * u.inner];
      if (${t === 'i32' ? `kk == ${NONE} || ` : ''}xv > v) { v = xv; kk = k; }
    }
  }
  bestV[lid] = v;
  bestK[lid] = kk;
  workgroupBarrier();
` +
    tree(
      TX,
      TY,
      (a, b) => `let bv = bestV[${b}]; let bk = bestK[${b}];
      if (bk != ${NONE} && (bestK[${a}] == ${NONE} || bv > bestV[${a}] || (bv == bestV[${a}] && bk < bestK[${a}]))) {
        bestV[${a}] = bv; bestK[${a}] = bk;
      }`,
    ) +
    `  if (ty == 0u && live) { O[o * u.inner + col] = select(i32(bestK[tx]), 0i, bestK[tx] == ${NONE}); }\n}\n`;
  return {
    passes: [
      computePass({
        label: 'argmax',
        uniforms,
        buffers: [
          ['X', t, 'read', input(0)],
          ['O', 'i32', 'read_write', output(0)],
        ],
        code,
        workgroups: groups,
        foldable: true,
      }),
    ],
  };
};
