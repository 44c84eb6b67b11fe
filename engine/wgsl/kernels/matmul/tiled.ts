// The register-tiled matmul of engine/wgsl/kernels/matmul.ts: a workgroup of 16 x 16 threads
// computes a TM x TN tile of the output (TM, TN each 64 or 128), each thread an (TM/16) x (TN/16)
// block held in registers (8 x 8 at 128 x 128), as vec4 accumulators updated with fma.
//
// - Staging: slabs of A (TM x 8) and B (8 x TN) go through workgroup memory, k-major
//   (`As[k][i]`, `Bs[k][j]`, as vec4s), double-buffered: while a slab is multiplied the next one
//   is already loaded into registers, and is stored into the other half after it, so one barrier
//   per slab suffices. 2 x 8 x (TM + TN) floats: 16 KiB at 128 x 128, the spec's default limit.
// - A thread's rows are ty*4 + {0..3} (+ 64 for the second half of a 128 tile), its columns
//   tx*4 + {0..3} (+ 64): its operands for one k are one or two vec4 loads from each slab, and
//   neighbouring threads store neighbouring vec4s of the output.
// - Global loads are vec4s of the operand's contiguous axis when that axis and the batch stride are
//   multiples of 4 (the buffer is then declared array<vec4<f32>>), otherwise four scalar loads;
//   either way a load past an edge reads zero, and stores past an edge are skipped, so any M, N, K
//   is correct. Operands contiguous along k (A, B^T) are transposed on the way into the slab.
// - Workgroups are numbered linearly (the backend folds more than 65535 into two dimensions) over
//   batch x (split) x tiles, the tiles in groups of 8 tile-rows (each group sweeps every
//   tile-column), so the workgroups in flight share panels of A and B in cache.
// - Split-K: with `split` > 1 each workgroup sums a chunk of k of `kChunk` (a multiple of 8) into
//   its own slice of a scratch buffer [split, batch, M, N]; a second pass adds the slices.
import type { BindingRef, ComputePass } from '../../kernel.ts';
import { computePass, input, output, scratch } from '../../layout.ts';
import { ELEMENTWISE_WG, LINEAR_WID } from '../../shader.ts';
import type { MatvecParams } from './matvec.ts';

/** k per slab. */
export const BK = 8;
/** tile-rows per group of the workgroup order */
const GROUP = 8;
const WG = 256;

/** The product's sizes, layout and batch strides (as the matvec kernel takes them), and the tiling. */
export interface TiledPlan extends MatvecParams {
  tm: 64 | 128;
  tn: 64 | 128;
  /** vec4 loads of A, of B, vec4 stores of the output */
  vecA: boolean;
  vecB: boolean;
  vecO: boolean;
  /** k chunks (1: no split) and the chunk length (a multiple of BK) */
  split: number;
  kChunk: number;
}

const XYZW = 'xyzw';

/**
 * One operand's slab: WGSL that fetches it from global memory into registers `r<op><n>` and
 * stores those into workgroup memory. `outer` is the operand's non-k axis (rows i of A, columns j
 * of B) of tile size T at tile origin `o0`, bounded by `lim`; `kMajor` when the operand's memory
 * is contiguous along the outer axis (A^T, B), else it is contiguous along k.
 */
function slab(op: 'A' | 'B', T: number, kMajor: boolean, vec: boolean, o0: string, lim: string, xOff: string) {
  const T4 = T / 4;
  const entries = (T * BK) / 4; // vec4s per slab
  const per = Math.ceil(entries / WG);
  const regs = Array.from({ length: per }, (_, n) => `r${op}${n}`);
  const decl = regs.map((r) => `  var ${r} = vec4<f32>(0.0);`).join('\n');
  const S = `${op}s`;
  const fetch: string[] = [];
  const store: string[] = [];
  regs.forEach((r, n) => {
    const e = `(lid + ${n * WG}u)`;
    const guard = (entries % WG !== 0 && n === per - 1) || entries < WG ? `${e} < ${entries}u` : 'true';
    if (kMajor) {
      // element (o, k) at X[xOff + k * lim + o]: entry e is row kk = e / T4 of the slab, vec4 oq = e % T4
      const kk = `(${e} / ${T4}u)`;
      const oq = `(${e} % ${T4}u)`;
      if (vec) {
        fetch.push(`    if (${guard}) {
      ${r} = vec4<f32>(0.0);
      let gk = k0 + ${kk}; let go = ${o0} + ${oq} * 4u;
      if (gk < kEnd && go < ${lim}) { ${r} = ${op}[(${xOff} + gk * ${lim} + go) / 4u]; }
    }`);
      } else {
        const comps = [0, 1, 2, 3]
          .map((c) => `      if (gk < kEnd && go + ${c}u < ${lim}) { ${r}.${XYZW[c]} = ${op}[${xOff} + gk * ${lim} + go + ${c}u]; }`)
          .join('\n');
        fetch.push(`    if (${guard}) {
      ${r} = vec4<f32>(0.0);
      let gk = k0 + ${kk}; let go = ${o0} + ${oq} * 4u;
${comps}
    }`);
      }
      store.push(`    if (${guard}) { ${S}[stage + ${kk} * ${T4}u + ${oq}] = ${r}; }`);
    } else {
      // element (o, k) at X[xOff + o * K + k]: entry e is outer index o = e / 2, vec4 kq = e % 2 along k
      const o = `(${e} / 2u)`;
      const kq = `(${e} % 2u)`;
      const row = `${o0} + ${o}`;
      if (vec) {
        fetch.push(`    if (${guard}) {
      ${r} = vec4<f32>(0.0);
      let go = ${row}; let gk = k0 + ${kq} * 4u;
      if (go < ${lim} && gk < kEnd) { ${r} = ${op}[(${xOff} + go * u.K + gk) / 4u]; }
    }`);
      } else {
        const comps = [0, 1, 2, 3]
          .map((c) => `      if (go < ${lim} && gk + ${c}u < kEnd) { ${r}.${XYZW[c]} = ${op}[${xOff} + go * u.K + gk + ${c}u]; }`)
          .join('\n');
        fetch.push(`    if (${guard}) {
      ${r} = vec4<f32>(0.0);
      let go = ${row}; let gk = k0 + ${kq} * 4u;
${comps}
    }`);
      }
      const comps = [0, 1, 2, 3].map((c) => `${S}[stage + (${kq} * 4u + ${c}u) * ${T4}u + ${o} / 4u][${o} % 4u] = ${r}.${XYZW[c]};`);
      store.push(`    if (${guard}) { ${comps.join(' ')} }`);
    }
  });
  return { decl, fetch: fetch.join('\n'), store: store.join('\n') };
}

export function tiledCode(p: Omit<TiledPlan, 'batch' | 'M' | 'N' | 'K' | 'aBatch' | 'bBatch' | 'kChunk'>): string {
  const { tm, tn } = p;
  const TM4 = tm / 4,
    TN4 = tn / 4;
  const RG = tm / 64, // vec4 row groups per thread
    CG = tn / 64; // vec4 column groups per thread
  const aStage = BK * TM4,
    bStage = BK * TN4; // vec4s per half
  const a = slab('A', tm, p.transA, p.vecA, 'row0', 'u.M', 'aOff');
  const b = slab('B', tn, !p.transB, p.vecB, 'col0', 'u.N', 'bOff');
  const accs: string[] = [];
  for (let r = 0; r < RG * 4; r++) for (let h = 0; h < CG; h++) accs.push(`acc${r}_${h}`);
  const decl = accs.map((x) => `  var ${x} = vec4<f32>(0.0);`).join('\n');
  const steps: string[] = [];
  for (let kk = 0; kk < BK; kk++) {
    const lines: string[] = [];
    for (let g = 0; g < RG; g++) lines.push(`let a${g} = As[aS + ${kk * TM4 + g * 16}u + ty];`);
    for (let h = 0; h < CG; h++) lines.push(`let b${h} = Bs[bS + ${kk * TN4 + h * 16}u + tx];`);
    for (let g = 0; g < RG; g++)
      for (let rr = 0; rr < 4; rr++)
        for (let h = 0; h < CG; h++) {
          const acc = `acc${g * 4 + rr}_${h}`;
          lines.push(`${acc} = fma(vec4<f32>(a${g}.${XYZW[rr]}), b${h}, ${acc});`);
        }
    steps.push(`    {\n      ${lines.join('\n      ')}\n    }`);
  }
  const stores: string[] = [];
  for (let g = 0; g < RG; g++)
    for (let rr = 0; rr < 4; rr++) {
      const lines: string[] = [];
      for (let h = 0; h < CG; h++) {
        const acc = `acc${g * 4 + rr}_${h}`;
        const col = `col0 + ${h * 64}u + tx * 4u`;
        if (p.vecO) lines.push(`{ let j = ${col}; if (j < u.N) { O[(oOff + i * u.N + j) / 4u] = ${acc}; } }`);
        else
          lines.push(
            `{ let j = ${col};${[0, 1, 2, 3].map((c) => ` if (j + ${c}u < u.N) { O[oOff + i * u.N + j + ${c}u] = ${acc}.${XYZW[c]}; }`).join('')} }`,
          );
      }
      stores.push(`  { let i = row0 + ${g * 64 + rr}u + ty * 4u; if (i < u.M) { ${lines.join(' ')} } }`);
    }
  return /* wgsl */ `
var<workgroup> As: array<vec4<f32>, ${2 * aStage}>;
var<workgroup> Bs: array<vec4<f32>, ${2 * bStage}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let lin = ${LINEAR_WID};
  if (lin >= u.groups) { return; }
  let perMat = u.tilesM * u.tilesN;
  let z = lin / perMat; // split * batch + batch index
  let pid = lin - z * perMat;
  let inGroup = ${GROUP}u * u.tilesN;
  let first = (pid / inGroup) * ${GROUP}u;
  let gsz = min(u.tilesM - first, ${GROUP}u);
  let tmI = first + (pid % inGroup) % gsz;
  let tnI = (pid % inGroup) / gsz;
  let bI = z % u.batch;
  let sI = z / u.batch;
  let row0 = tmI * ${tm}u;
  let col0 = tnI * ${tn}u;
  let aOff = bI * u.aBatch;
  let bOff = bI * u.bBatch;
  let oOff = z * u.M * u.N;
  let kBeg = sI * u.kChunk;
  let kEnd = min(u.K, kBeg + u.kChunk);
  let nSlabs = select(0u, (kEnd - kBeg + ${BK - 1}u) / ${BK}u, kEnd > kBeg);
  let tx = lid % 16u;
  let ty = lid / 16u;
${decl}
${a.decl}
${b.decl}
  if (nSlabs > 0u) {
    let k0 = kBeg;
    let stage = 0u;
${a.fetch}
${b.fetch}
${a.store}
${b.store}
  }
  workgroupBarrier();
  for (var t = 0u; t < nSlabs; t++) {
    let cur = t & 1u;
    let more = t + 1u < nSlabs;
    if (more) {
      let k0 = kBeg + (t + 1u) * ${BK}u;
${a.fetch}
${b.fetch}
    }
    let aS = cur * ${aStage}u;
    let bS = cur * ${bStage}u;
${steps.join('\n')}
    if (more) {
      let stage = (1u - cur) * ${aStage}u;
${a.store}
    }
    if (more) {
      let stage = (1u - cur) * ${bStage}u;
${b.store}
    }
    workgroupBarrier();
  }
${stores.join('\n')}
}
`;
}

/** The pass (and, with a split, the pass adding the slices) of one matmul call. */
export function tiledPasses(p: TiledPlan): { passes: ComputePass[]; scratch?: number[] } {
  const tilesM = Math.ceil(p.M / p.tm),
    tilesN = Math.ceil(p.N / p.tn);
  const groups = tilesM * tilesN * p.batch * p.split;
  const total = p.batch * p.M * p.N;
  const dst: BindingRef = p.split > 1 ? scratch(0) : output(0);
  const f = (v: boolean) => (v ? 'vec4<f32>' : 'f32');
  const label = `matmul ${p.tm}x${p.tn} ${p.transA ? 'T' : 'N'}${p.transB ? 'T' : 'N'}${p.split > 1 ? ` split ${p.split}` : ''}`;
  const main = computePass({
    label,
    uniforms: {
      M: ['u32', p.M],
      N: ['u32', p.N],
      K: ['u32', p.K],
      aBatch: ['u32', p.aBatch],
      bBatch: ['u32', p.bBatch],
      batch: ['u32', p.batch],
      tilesM: ['u32', tilesM],
      tilesN: ['u32', tilesN],
      groups: ['u32', groups],
      kChunk: ['u32', p.kChunk],
    },
    buffers: [
      ['A', f(p.vecA), 'read', input(0)],
      ['B', f(p.vecB), 'read', input(1)],
      ['O', f(p.vecO), 'read_write', dst],
    ],
    code: tiledCode(p),
    workgroups: [groups, 1, 1],
    foldable: true,
  });
  if (p.split === 1) return { passes: [main] };
  // out[i] = sum over s of slice s, in vec4s where the output allows
  const n = p.vecO ? total / 4 : total;
  const adds = Array.from({ length: p.split }, (_, s) => `P[i + ${s}u * u.n]`).join(' + ');
  const reduce = computePass({
    label: `matmul split ${p.split} sum`,
    uniforms: { n: ['u32', n] },
    buffers: [
      ['P', f(p.vecO), 'read', scratch(0)],
      ['O', f(p.vecO), 'read_write', output(0)],
    ],
    code: `@compute @workgroup_size(${ELEMENTWISE_WG})
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) lid: u32) {
  let i = (${LINEAR_WID}) * ${ELEMENTWISE_WG}u + lid;
  if (i >= u.n) { return; }
  O[i] = ${adds};
}
`,
    workgroups: [Math.ceil(n / ELEMENTWISE_WG), 1, 1],
    foldable: true,
  });
  return { passes: [main, reduce], scratch: [4 * total * p.split] };
}
