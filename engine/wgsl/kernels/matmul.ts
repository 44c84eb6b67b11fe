// Batched matmul, register-tiled: a workgroup of 16 x 16 threads computes a 64 x 64 tile of the
// output, each thread a 4 x 4 block held in registers. Tiles of A (64 x 16) and B (16 x 64) are
// staged through workgroup memory; loads past the edges read zero and stores past them are
// skipped, so any M, N, K (1 and odd sizes included) is correct. Rows and columns a thread owns are
// 16 apart, so neighbouring threads touch neighbouring addresses on load and store.
import type { WgslKernel } from '../kernel.ts';
import { checkSize, computePass, input, output } from '../layout.ts';

const TILE = 64;
const BK = 16;
const SIDE = 16; // threads per side; TILE / SIDE = 4 values per thread per side

export const matmul: WgslKernel<'matmul'> = ([a, b], [out], p) => {
  const { batch, M, N, K, transA, transB, aBatchStride, bBatchStride } = p;
  for (const [name, buf] of [
    ['a', a],
    ['b', b],
    ['out', out],
  ] as const) {
    if (buf.dtype !== 'float32') throw new Error(`matmul: ${name} is ${buf.dtype}; the WebGPU matmul is float32 only`);
  }
  checkSize('matmul', 'a', a, (batch - 1) * aBatchStride + M * K);
  checkSize('matmul', 'b', b, (batch - 1) * bBatchStride + K * N);
  checkSize('matmul', 'out', out, batch * M * N);
  // Each thread loads 4 elements of each tile; the element order follows memory order of the
  // operand (k fastest when rows of A are k-contiguous, i fastest when transposed).
  const loadA = transA
    ? `let ii = e % ${TILE}u; let kk = e / ${TILE}u; let gi = row0 + ii; let gk = k0 + kk;
      As[kk * ${TILE}u + ii] = select(0.0, A[aOff + gk * u.M + gi], gi < u.M && gk < u.K);`
    : `let kk = e % ${BK}u; let ii = e / ${BK}u; let gi = row0 + ii; let gk = k0 + kk;
      As[kk * ${TILE}u + ii] = select(0.0, A[aOff + gi * u.K + gk], gi < u.M && gk < u.K);`;
  const loadB = transB
    ? `let kk = e % ${BK}u; let jj = e / ${BK}u; let gj = col0 + jj; let gk = k0 + kk;
      Bs[kk * ${TILE}u + jj] = select(0.0, B[bOff + gj * u.K + gk], gj < u.N && gk < u.K);`
    : `let jj = e % ${TILE}u; let kk = e / ${TILE}u; let gj = col0 + jj; let gk = k0 + kk;
      Bs[kk * ${TILE}u + jj] = select(0.0, B[bOff + gk * u.N + gj], gj < u.N && gk < u.K);`;
  const perThread = (TILE * BK) / (SIDE * SIDE);
  const code = `
var<workgroup> As: array<f32, ${TILE * BK}>;
var<workgroup> Bs: array<f32, ${TILE * BK}>;

@compute @workgroup_size(${SIDE}, ${SIDE})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tx = lid % ${SIDE}u;
  let ty = lid / ${SIDE}u;
  let row0 = wid.y * ${TILE}u;
  let col0 = wid.x * ${TILE}u;
  let aOff = wid.z * u.aBatch;
  let bOff = wid.z * u.bBatch;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < u.K; k0 += ${BK}u) {
    for (var r = 0u; r < ${perThread}u; r++) {
      let e = lid + r * ${SIDE * SIDE}u;
      // select() reads both operands: clamp the address so an edge read stays in bounds
      { ${loadA.replace(/A\[([^\]]+)\]/, 'A[min($1, arrayLength(&A) - 1u)]')} }
      { ${loadB.replace(/B\[([^\]]+)\]/, 'B[min($1, arrayLength(&B) - 1u)]')} }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < ${BK}u; kk++) {
      let bv = vec4<f32>(Bs[kk * ${TILE}u + tx], Bs[kk * ${TILE}u + tx + 16u], Bs[kk * ${TILE}u + tx + 32u], Bs[kk * ${TILE}u + tx + 48u]);
      acc[0] += As[kk * ${TILE}u + ty] * bv;
      acc[1] += As[kk * ${TILE}u + ty + 16u] * bv;
      acc[2] += As[kk * ${TILE}u + ty + 32u] * bv;
      acc[3] += As[kk * ${TILE}u + ty + 48u] * bv;
    }
    workgroupBarrier();
  }
  let outOff = wid.z * u.M * u.N;
  for (var r = 0u; r < 4u; r++) {
    let i = row0 + ty + r * 16u;
    if (i >= u.M) { continue; }
    for (var c = 0u; c < 4u; c++) {
      let j = col0 + tx + c * 16u;
      if (j < u.N) { O[outOff + i * u.N + j] = acc[r][c]; }
    }
  }
}
`;
  return {
    passes: [
      computePass({
        label: `matmul ${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`,
        uniforms: { M: ['u32', M], N: ['u32', N], K: ['u32', K], aBatch: ['u32', aBatchStride], bBatch: ['u32', bBatchStride] },
        buffers: [
          ['A', 'f32', 'read', input(0)],
          ['B', 'f32', 'read', input(1)],
          ['O', 'f32', 'read_write', output(0)],
        ],
        code,
        workgroups: [Math.ceil(N / TILE), Math.ceil(M / TILE), batch],
      }),
    ],
  };
};
