// Gather (embedding lookup), its scatter-add backward, and one-hot.
//
// A GPU kernel cannot throw, so an out-of-range index (the CPU throws) poisons the result instead
// of dropping out of it: the gathered row is NaN, and every element of a scatter_add is NaN.
import type { WgslKernel } from '../kernel.ts';
import { checkSize, computePass, input, output, scratch, type Storage, type UniformFields, wgslType } from '../layout.ts';
import { elementwiseGroups, elementwiseMain } from '../shader.ts';

const NAN_BITS = 0x7fc00000;

export const gather: WgslKernel<'gather'> = ([table, idx], [out], p) => {
  const { n, rows, cols } = p;
  checkSize('gather', 'table', table, rows * cols);
  checkSize('gather', 'idx', idx, n);
  checkSize('gather', 'out', out, n * cols);
  if (idx.dtype !== 'int32') throw new Error(`gather: indices are ${idx.dtype}, not int32`);
  const t = wgslType(table.dtype, 'gather');
  // int32 tables have no NaN: an out-of-range index gives i32's minimum there
  const bad = t === 'f32' ? 'bitcast<f32>(u.bad)' : 'i32(-2147483647 - 1)';
  const body = `  let row = i / u.cols;
  let r = Idx[row];
  if (r < 0 || u32(r) >= u.rows) { O[i] = ${bad}; return; }
  O[i] = T[u32(r) * u.cols + i % u.cols];`;
  return {
    passes: [
      computePass({
        label: 'gather',
        uniforms: { size: ['u32', n * cols], rows: ['u32', rows], cols: ['u32', cols], bad: ['u32', NAN_BITS] },
        buffers: [
          ['T', t, 'read', input(0)],
          ['Idx', 'i32', 'read', input(1)],
          ['O', t, 'read_write', output(0)],
        ],
        code: elementwiseMain('u.size', body),
        workgroups: elementwiseGroups(n * cols),
        foldable: true,
      }),
    ],
  };
};

/**
 * out[r] = sum of g[i] over the i with idx[i] == r, without float atomics and in a fixed order
 * (ascending i, as the CPU), so the result is deterministic. Four passes: count the indices of each
 * row; exclusive scan of the counts into offsets; list each row's i in ascending order; sum.
 * Passes 1 and 3 cost rows x n index reads, which is small next to the sum for embedding sizes.
 */
export const scatter_add: WgslKernel<'scatter_add'> = ([g, idx], [out], p) => {
  const { n, rows, cols } = p;
  checkSize('scatter_add', 'g', g, n * cols);
  checkSize('scatter_add', 'idx', idx, n);
  checkSize('scatter_add', 'out', out, rows * cols);
  if (g.dtype !== 'float32') throw new Error(`scatter_add: g is ${g.dtype}; the WebGPU scatter_add is float32 only`);
  // the four passes share one uniform block
  const uniforms: UniformFields = {
    n: ['u32', n],
    rows: ['u32', rows],
    cols: ['u32', cols],
    bad: ['u32', NAN_BITS],
    size: ['u32', rows * cols],
  };
  const Idx: Storage = ['Idx', 'i32', 'read', input(1)];
  const counts = scratch(0);
  const offsets = scratch(1);
  const list = scratch(2);
  const count = computePass({
    label: 'scatter_add count',
    uniforms,
    buffers: [Idx, ['Counts', 'u32', 'read_write', counts]],
    code: elementwiseMain(
      'u.rows',
      `  var c = 0u;
  for (var k = 0u; k < u.n; k++) { if (Idx[k] == i32(i)) { c++; } }
  Counts[i] = c;`,
    ),
    workgroups: elementwiseGroups(rows),
    foldable: true,
  });
  // one workgroup: each thread scans a contiguous chunk of rows; chunk totals meet in workgroup memory
  const scan = computePass({
    label: 'scatter_add scan',
    uniforms,
    buffers: [
      ['Counts', 'u32', 'read', counts],
      ['Offsets', 'u32', 'read_write', offsets],
    ],
    code: `
var<workgroup> part: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let chunk = (u.rows + 255u) / 256u;
  let lo = min(lid * chunk, u.rows);
  let hi = min(lo + chunk, u.rows);
  var s = 0u;
  for (var r = lo; r < hi; r++) { s += Counts[r]; }
  part[lid] = s;
  workgroupBarrier();
  if (lid == 0u) {
    var run = 0u;
    for (var t = 0u; t < 256u; t++) { let v = part[t]; part[t] = run; run += v; }
    Offsets[u.rows] = run;
  }
  workgroupBarrier();
  var at = part[lid];
  for (var r = lo; r < hi; r++) { Offsets[r] = at; at += Counts[r]; }
}
`,
    workgroups: [1, 1, 1],
  });
  const fillList = computePass({
    label: 'scatter_add list',
    uniforms,
    buffers: [Idx, ['Offsets', 'u32', 'read', offsets], ['List', 'u32', 'read_write', list]],
    code: elementwiseMain(
      'u.rows',
      `  var at = Offsets[i];
  for (var k = 0u; k < u.n; k++) { if (Idx[k] == i32(i)) { List[at] = k; at++; } }`,
    ),
    workgroups: elementwiseGroups(rows),
    foldable: true,
  });
  const sum = computePass({
    label: 'scatter_add sum',
    uniforms,
    buffers: [
      ['G', 'f32', 'read', input(0)],
      ['Offsets', 'u32', 'read', offsets],
      ['List', 'u32', 'read', list],
      ['O', 'f32', 'read_write', output(0)],
    ],
    code: elementwiseMain(
      'u.size',
      `  // indices that matched no row were out of range: poison everything rather than drop them
  if (Offsets[u.rows] != u.n) { O[i] = bitcast<f32>(u.bad); return; }
  let r = i / u.cols;
  let c = i % u.cols;
  var acc = 0.0;
  for (var k = Offsets[r]; k < Offsets[r + 1u]; k++) { acc += G[List[k] * u.cols + c]; }
  O[i] = acc;`,
    ),
    workgroups: elementwiseGroups(rows * cols),
    foldable: true,
  });
  return { scratch: [rows * 4, (rows + 1) * 4, Math.max(1, n) * 4], passes: [count, scan, fillList, sum] };
};

export const onehot: WgslKernel<'onehot'> = ([idx], [out], p) => {
  const { n, depth } = p;
  checkSize('onehot', 'idx', idx, n);
  checkSize('onehot', 'out', out, n * depth);
  const t = wgslType(out.dtype, 'onehot');
  const one = t === 'f32' ? '1.0' : '1i';
  const zero = t === 'f32' ? '0.0' : '0i';
  return {
    passes: [
      computePass({
        label: 'onehot',
        uniforms: { size: ['u32', n * depth], depth: ['u32', depth] },
        buffers: [
          ['Idx', 'i32', 'read', input(0)],
          ['O', t, 'read_write', output(0)],
        ],
        code: elementwiseMain('u.size', `  O[i] = select(${zero}, ${one}, Idx[i / u.depth] == i32(i % u.depth));`),
        workgroups: elementwiseGroups(n * depth),
        foldable: true,
      }),
    ],
  };
};
