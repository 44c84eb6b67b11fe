// The skinny matmul of engine/wgsl/kernels/matmul.ts: one side of the output has at most
// MATVEC_MAX rows (decoding: M = 1; a probe: N = 1). That side's operand, V (S rows of length K),
// is small and read through the cache; the other, W (K x L), is read exactly once, coalesced, and
// every element of it is used for all S rows. Two layouts of W:
// - contiguous along k (the linear layer's W[out, in], A of an N-small product): "dot". Teams of
//   lanes (256 / teams each) walk one row of W each, in vec4s where K allows, and sum their
//   partial dot products in a tree through workgroup memory (no subgroup operations, so no
//   assumption about the subgroup size).
// - contiguous along l (B of x @ B, A^T): "axpy". Each thread owns four neighbouring columns
//   (one vec4 of a row of W), the workgroup's threads split k into slices, and slice 0 adds the
//   slices' vec4s up through workgroup memory.
// Workgroups are numbered linearly over batch x groups of l (folded by the backend past 65535).
import type { ComputePass } from '../../kernel.ts';
import { computePass, input, output } from '../../layout.ts';
import { LINEAR_WID } from '../../shader.ts';

/** The most rows the small side may have. */
export const MATVEC_MAX = 8;
const WG = 256;

export interface MatvecParams {
  batch: number;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  aBatch: number;
  bBatch: number;
}

const pow2AtLeast = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

export function matvecPasses(p: MatvecParams): { passes: ComputePass[] } {
  const { M, N, K } = p;
  const mSmall = M <= N;
  const S = mSmall ? M : N;
  const L = mSmall ? N : M;
  if (S > MATVEC_MAX) throw new Error(`matmul: the skinny kernel takes at most ${MATVEC_MAX} rows, got ${S}`);
  // V (s, k) at V[vOff + s*vs + k*vk]; W (k, l) contiguous along k ("dot", row stride K) or along l (row stride L)
  const [vIn, wIn] = mSmall ? [0, 1] : [1, 0];
  const vs = mSmall ? (p.transA ? 1 : K) : p.transB ? K : 1;
  const vk = mSmall ? (p.transA ? M : 1) : p.transB ? 1 : N;
  const dot = mSmall ? p.transB : !p.transA;
  const vBatch = mSmall ? p.aBatch : p.bBatch;
  const wBatch = mSmall ? p.bBatch : p.aBatch;
  const [os, ol] = mSmall ? [N, 1] : [1, N];
  const vecW = (dot ? K % 4 === 0 : L % 4 === 0) && wBatch % 4 === 0;
  const vecV = dot && vecW && vk === 1 && K % 4 === 0 && vBatch % 4 === 0;
  const rows = Array.from({ length: S }, (_, s) => s);
  let code: string;
  let lGroups: number;
  if (dot) {
    const T = Math.min(8, pow2AtLeast(L)); // teams, one row of W each
    const LANES = WG / T;
    lGroups = Math.ceil(L / T);
    const vAt = (s: number, k: string) => `V[vOff + ${s}u * u.vs + (${k}) * u.vk]`;
    const body = vecW
      ? `let wRow = (wOff + l * u.K) / 4u;
    for (var q = lane; q < u.K / 4u; q += ${LANES}u) {
      let w = W[wRow + q];
${rows
  .map((s) =>
    vecV
      ? `      acc${s} += dot(V[(vOff + ${s}u * u.vs) / 4u + q], w);`
      : `      { let k = q * 4u; acc${s} += dot(vec4<f32>(${vAt(s, 'k')}, ${vAt(s, 'k + 1u')}, ${vAt(s, 'k + 2u')}, ${vAt(s, 'k + 3u')}), w); }`,
  )
  .join('\n')}
    }`
      : `for (var k = lane; k < u.K; k += ${LANES}u) {
      let w = W[wOff + l * u.K + k];
${rows.map((s) => `      acc${s} += ${vAt(s, 'k')} * w;`).join('\n')}
    }`;
    code = /* wgsl */ `
var<workgroup> red: array<f32, ${S * WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lin = ${LINEAR_WID};
  if (lin >= u.groups) { return; }
  let bI = lin / u.lGroups;
  let l = (lin - bI * u.lGroups) * ${T}u + lid / ${LANES}u;
  let lane = lid % ${LANES}u;
  let vOff = bI * u.vBatch;
  let wOff = bI * u.wBatch;
  let oOff = bI * u.oBatch;
${rows.map((s) => `  var acc${s} = 0.0;`).join('\n')}
  if (l < u.L) {
    ${body}
  }
${rows.map((s) => `  red[${s * WG}u + lid] = acc${s};`).join('\n')}
  workgroupBarrier();
  for (var off = ${LANES / 2}u; off > 0u; off = off >> 1u) {
    if (lane < off) {
${rows.map((s) => `      red[${s * WG}u + lid] += red[${s * WG}u + lid + off];`).join('\n')}
    }
    workgroupBarrier();
  }
  if (lane == 0u && l < u.L) {
${rows.map((s) => `    O[oOff + ${s}u * u.os + l * u.ol] = red[${s * WG}u + lid];`).join('\n')}
  }
}
`;
  } else {
    const C = Math.min(64, Math.max(4, pow2AtLeast(Math.ceil(L / 4)))); // threads along l (4 columns each)
    const SL = WG / C; // slices of k
    lGroups = Math.ceil(L / (4 * C));
    const load = vecW
      ? 'let w = W[(wOff + k * u.L + l) / 4u];'
      : `var w = vec4<f32>(0.0);
      let base = wOff + k * u.L + l;
      w.x = W[base];
      if (l + 1u < u.L) { w.y = W[base + 1u]; }
      if (l + 2u < u.L) { w.z = W[base + 2u]; }
      if (l + 3u < u.L) { w.w = W[base + 3u]; }`;
    const sum = Array.from({ length: SL - 1 }, (_, j) => ` + red[col + ${(j + 1) * C}u]`).join('');
    code = /* wgsl */ `
var<workgroup> red: array<vec4<f32>, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lin = ${LINEAR_WID};
  if (lin >= u.groups) { return; }
  let bI = lin / u.lGroups;
  let col = lid % ${C}u;
  let slice = lid / ${C}u;
  let l = ((lin - bI * u.lGroups) * ${C}u + col) * 4u;
  let vOff = bI * u.vBatch;
  let wOff = bI * u.wBatch;
  let oOff = bI * u.oBatch;
${rows.map((s) => `  var acc${s} = vec4<f32>(0.0);`).join('\n')}
  if (l < u.L) {
    for (var k = slice; k < u.K; k += ${SL}u) {
      ${load}
${rows.map((s) => `      acc${s} = fma(vec4<f32>(V[vOff + ${s}u * u.vs + k * u.vk]), w, acc${s});`).join('\n')}
    }
  }
${rows
  .map(
    (s) => `  red[lid] = acc${s};
  workgroupBarrier();
  if (slice == 0u && l < u.L) {
    let t = red[col]${sum};
    let o = oOff + ${s}u * u.os + l * u.ol;
    O[o] = t.x;
    if (l + 1u < u.L) { O[o + u.ol] = t.y; }
    if (l + 2u < u.L) { O[o + 2u * u.ol] = t.z; }
    if (l + 3u < u.L) { O[o + 3u * u.ol] = t.w; }
  }
  workgroupBarrier();`,
  )
  .join('\n')}
}
`;
  }
  const groups = lGroups * p.batch;
  return {
    passes: [
      computePass({
        label: `matmul ${dot ? 'dot' : 'axpy'} ${mSmall ? 'M' : 'N'}=${S} ${p.transA ? 'T' : 'N'}${p.transB ? 'T' : 'N'}`,
        uniforms: {
          L: ['u32', L],
          K: ['u32', K],
          vs: ['u32', vs],
          vk: ['u32', vk],
          vBatch: ['u32', vBatch],
          wBatch: ['u32', wBatch],
          oBatch: ['u32', M * N],
          os: ['u32', os],
          ol: ['u32', ol],
          lGroups: ['u32', lGroups],
          groups: ['u32', groups],
        },
        buffers: [
          ['V', vecV ? 'vec4<f32>' : 'f32', 'read', input(vIn)],
          ['W', vecW ? 'vec4<f32>' : 'f32', 'read', input(wIn)],
          ['O', 'f32', 'read_write', output(0)],
        ],
        code,
        workgroups: [groups, 1, 1],
        foldable: true,
      }),
    ],
  };
}
