// The fused sparse autoencoder on the GPU, forward and backward (maths in engine/ops/sae.ts;
// target shape: d 768, 16k latents, TopK 32, 4096 rows).
//
// Forward, topk:
//   1. encode: a register-tiled matmul (64 x 64 output tiles, 4 x 4 per thread, as matmul.ts)
//      whose A-tile loads subtract b_dec and whose epilogue adds b_enc: pre [rows, L] (scratch);
//   2. select: one workgroup per row finds the k-th largest pre-activation by radix select (four
//      8-bit digits of an order-preserving u32 key, each a 256-bin histogram in workgroup memory:
//      4 reads of the row instead of k), then collects the keys above it and, in index order, as
//      many equal to it as are needed (ties to the lower index);
//   3. rank: one thread per kept latent counts the kept ones that rank before it (k reads) and
//      writes values and indices in order (descending, ties by index, NaN first);
//   4. decode + loss: one workgroup per row gathers only the k active rows of W_dec (contiguous,
//      coalesced), adds b_dec, and reduces ||recon - x||^2 + l1 * sum(act) in workgroup memory;
//   AuxK repeats 2-4 on the pre-activations of dead latents (others at -inf) and reconstructs the
//   residual x - recon from its kAux rows of W_dec.
// Forward, relu: the encode matmul with a ReLU epilogue writes z; a second tiled matmul decodes;
//   a row pass reduces the loss.
//
// Backward, topk (sparse: work and traffic in k + kAux latents per row, not L):
//   G = 2 gloss (recon - x) + grecon, the decoder cotangent (elementwise), and for AuxK its
//   own G_aux = 2 gaux (ehat - (x - recon)) (a row pass gathering the kAux rows again);
//   the active entries (row, latent, activation) of every row are packed into one list;
//   dval = (value > 0) (G_row . W_dec[latent] + l1 gloss + gvalues) per entry, one workgroup per
//   row (dot products over d reduced 8 entries at a time in workgroup memory);
//   dx = -2 gloss (recon - x) + sum over the row's entries of dval W_enc[:, latent], gathering
//   contiguous rows of W_enc^T (a tiled transpose of W_enc first, 2 d L floats of traffic);
//   the entries are sorted by latent (a stable LSD radix sort, 8 bits a digit: per-block
//   histograms, one scan, a stable scatter), each latent's segment found by binary search, and one
//   workgroup per latent sums its segment: dW_dec[l] = sum act G_row, dW_enc^T[l] = sum dval
//   (x_row - b_dec), db_enc[l] = sum dval (deterministic: no float atomics, fixed order); a tiled
//   transpose writes dW_enc [d, L]; db_dec = sum over rows of (grecon - dx) (partial sums per
//   block of rows, then a sum pass).
// Backward, relu: the same G, then four tiled matmuls with fused prologues/epilogues:
//   dpre = (z > 0) (G W_dec^T + l1 gloss + gz), dW_enc = (x - b_dec)^T dpre, dW_dec = z^T G,
//   dx = dpre W_enc^T - 2 gloss (recon - x); db_enc, db_dec as column sums.
// Every pass binds at most 8 storage buffers; scratch buffers are typed per pass (f32 or u32).
import type { KernelParams, SaeKernelParams } from '../../kernels.ts';
import type { BindingRef, BufferInfo, ComputePass, DeviceFacts, KernelPlan, WgslKernel } from '../kernel.ts';
import { checkSize, computePass, input, output, scratch, type Storage, type UniformFields } from '../layout.ts';
import { sumPartialsPass } from '../passes.ts';
import { elementwiseGroups, elementwiseMain, groups, LINEAR_WID, rowReducePrelude, WGSL_RANK_BEFORE, WGSL_SPECIALS } from '../shader.ts';

const WG = 256;
const TILE = 64;
const BK = 16;
/** rows per block of the column-sum partials */
const COLSUM_ROWS = 64;
/** entries per block of the radix sort */
const SORT_BLOCK = 1024;
/** entries whose dot products the dval pass reduces together */
const JC = 8;

class Regions {
  readonly at: Record<string, number> = {};
  size = 0;
  take(name: string, n: number): number {
    this.at[name] = this.size;
    this.size += n;
    return this.at[name];
  }
}

function checkDevice(device: DeviceFacts, kernel: string): void {
  if (device.maxWorkgroupSize < WG)
    throw new Error(`${kernel}: needs workgroups of ${WG} threads, the device allows ${device.maxWorkgroupSize}`);
}

// ---- building blocks --------------------------------------------------------------------------

interface MatmulSpec {
  label: string;
  M: number;
  N: number;
  K: number;
  /** WGSL expression of A(gi, gk), gi < M and gk < K */
  a: string;
  /** consecutive k of A are contiguous in memory (else consecutive i) */
  aKFast: boolean;
  /** WGSL expression of B(gk, gj) */
  b: string;
  /** consecutive j of B are contiguous in memory (else consecutive k) */
  bJFast: boolean;
  /** WGSL statements storing `acc` for the output element (gi, gj) */
  store: string;
  buffers: readonly Storage[];
  uniforms?: UniformFields;
}

/**
 * C = A B, register-tiled as engine/wgsl/kernels/matmul.ts (a 64 x 64 output tile per workgroup of
 * 16 x 16 threads, 4 x 4 each, K in steps of 16 through workgroup memory), with the operands read
 * through expressions (so a bias subtraction or a transpose is part of the load) and the store an
 * epilogue. Loads follow the memory order of each operand.
 */
function matmulPass(s: MatmulSpec): ComputePass {
  const loadA = s.aKFast ? `let kk = e % ${BK}u; let ii = e / ${BK}u;` : `let ii = e % ${TILE}u; let kk = e / ${TILE}u;`;
  const loadB = s.bJFast ? `let jj = e % ${TILE}u; let kk = e / ${TILE}u;` : `let kk = e % ${BK}u; let jj = e / ${BK}u;`;
  const code = /* wgsl */ `
var<workgroup> As: array<f32, ${TILE * BK}>;
var<workgroup> Bs: array<f32, ${TILE * BK}>;
fn a_at(gi: u32, gk: u32) -> f32 { return ${s.a}; }
fn b_at(gk: u32, gj: u32) -> f32 { return ${s.b}; }

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let tx = lid % 16u;
  let ty = lid / 16u;
  let row0 = wid.y * ${TILE}u;
  let col0 = wid.x * ${TILE}u;
  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < u.K; k0 += ${BK}u) {
    for (var r = 0u; r < ${(TILE * BK) / 256}u; r++) {
      let e = lid + r * 256u;
      {
        ${loadA}
        let gi = row0 + ii;
        let gk = k0 + kk;
        var v = 0.0;
        if (gi < u.M && gk < u.K) { v = a_at(gi, gk); }
        As[kk * ${TILE}u + ii] = v;
      }
      {
        ${loadB}
        let gj = col0 + jj;
        let gk = k0 + kk;
        var v = 0.0;
        if (gj < u.N && gk < u.K) { v = b_at(gk, gj); }
        Bs[kk * ${TILE}u + jj] = v;
      }
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
  for (var r = 0u; r < 4u; r++) {
    let gi = row0 + ty + r * 16u;
    if (gi >= u.M) { continue; }
    for (var c = 0u; c < 4u; c++) {
      let gj = col0 + tx + c * 16u;
      if (gj < u.N) {
        let acc_v = acc[r][c];
        ${s.store}
      }
    }
  }
}`;
  return computePass({
    label: s.label,
    uniforms: { M: ['u32', s.M], N: ['u32', s.N], K: ['u32', s.K], ...s.uniforms },
    buffers: s.buffers,
    code,
    workgroups: [Math.ceil(s.N / TILE), Math.ceil(s.M / TILE), 1],
  });
}

/**
 * Column sums of a [rows, cols] matrix given by the WGSL expression `value` (of u32 r, c): partial
 * sums over blocks of COLSUM_ROWS rows into scratch `part` at float offset `partAt`, then one sum
 * pass into `out`.
 */
function colSumPasses(
  label: string,
  rows: number,
  cols: number,
  value: string,
  buffers: readonly Storage[],
  partName: string,
  part: BindingRef,
  partAt: number,
  out: BindingRef,
): ComputePass[] {
  const nRB = Math.ceil(rows / COLSUM_ROWS);
  const nCB = Math.ceil(cols / WG);
  const partial = computePass({
    label: `${label} partial sums`,
    uniforms: { rows: ['u32', rows], cols: ['u32', cols], nCB: ['u32', nCB], partAt: ['u32', partAt] },
    buffers,
    foldable: true,
    workgroups: [nCB * nRB, 1, 1],
    code: /* wgsl */ `
fn value_at(r: u32, c: u32) -> f32 { return ${value}; }
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = ${LINEAR_WID};
  let cb = w % u.nCB;
  let rb = w / u.nCB;
  let c = cb * ${WG}u + lid;
  if (c >= u.cols || rb * ${COLSUM_ROWS}u >= u.rows) { return; }
  var s = 0.0;
  let r1 = min(u.rows, (rb + 1u) * ${COLSUM_ROWS}u);
  for (var r = rb * ${COLSUM_ROWS}u; r < r1; r++) { s += value_at(r, c); }
  ${partName}[u.partAt + rb * u.cols + c] = s;
}`,
  });
  return [partial, sumPartialsPass(`${label} sum`, nRB, cols, part, out, partAt)];
}

/** Floats the column-sum partials of `rows` x `cols` need. */
const colSumFloats = (rows: number, cols: number) => Math.ceil(rows / COLSUM_ROWS) * cols;

/**
 * out [C, R] = the transpose of in [R, C], 16 x 16 tiles through workgroup memory (reads coalesced
 * along C, writes along R); in and out are [name, binding, float offset].
 */
function transposePass(
  label: string,
  R: number,
  C: number,
  src: [string, BindingRef, number],
  dst: [string, BindingRef, number],
): ComputePass {
  return computePass({
    label,
    uniforms: { R: ['u32', R], C: ['u32', C], src: ['u32', src[2]], dst: ['u32', dst[2]] },
    buffers: [
      [src[0], 'f32', 'read', src[1]],
      [dst[0], 'f32', 'read_write', dst[1]],
    ],
    workgroups: [Math.ceil(C / 16), Math.ceil(R / 16), 1],
    code: /* wgsl */ `
var<workgroup> tile: array<f32, 272>;
@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let r0 = wid.y * 16u;
  let c0 = wid.x * 16u;
  var v = 0.0;
  if (r0 + lid.y < u.R && c0 + lid.x < u.C) { v = ${src[0]}[u.src + (r0 + lid.y) * u.C + c0 + lid.x]; }
  tile[lid.y * 17u + lid.x] = v;
  workgroupBarrier();
  if (c0 + lid.y < u.C && r0 + lid.x < u.R) { ${dst[0]}[u.dst + (c0 + lid.y) * u.R + r0 + lid.x] = tile[lid.x * 17u + lid.y]; }
}`,
  });
}

/** key_of: an order-preserving u32 of an f32 (NaN above everything, -0 as +0); rank_before(): the rank order. */
const SELECT_HELPERS = /* wgsl */ `
${WGSL_SPECIALS}
fn key_of(v: f32) -> u32 {
  if (mi_is_nan(v)) { return 0xffffffffu; }
  let b = select(bitcast<u32>(v), 0u, v == 0.0);
  return select(b | 0x80000000u, ~b, (b >> 31u) == 1u);
}
${WGSL_RANK_BEFORE}`;

/** The value a selection ranks: the pre-activation, or for AuxK -inf where the latent is not dead. */
const valueFn = (aux: boolean) =>
  aux
    ? `fn val_at(off: u32, j: u32) -> f32 { if (dead[j] != 0.0) { return pre[off + j]; } return mi_neg_inf(); }`
    : 'fn val_at(off: u32, j: u32) -> f32 { return pre[off + j]; }';

/**
 * Radix select of the k largest of each row of `pre` (scratch 0) into candidate slots of scratch 1
 * (u32 latent indices, unordered), one workgroup per row.
 */
function selectPass(label: string, p: SaeKernelParams, k: number, candAt: number, dead: BindingRef | null): ComputePass {
  const buffers: Storage[] = [['pre', 'f32', 'read', scratch(0)]];
  if (dead) buffers.push(['dead', 'f32', 'read', dead]);
  buffers.push(['cand', 'u32', 'read_write', scratch(1)]);
  return computePass({
    label,
    uniforms: { rows: ['u32', p.rows], cols: ['u32', p.latents], k: ['u32', k], candAt: ['u32', candAt] },
    buffers,
    foldable: true,
    workgroups: [groups(p.rows), 1, 1],
    code: /* wgsl */ `
${SELECT_HELPERS}
${valueFn(!!dead)}
const WG: u32 = ${WG}u;
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> picked: array<u32, 3>;
var<workgroup> scan_buf: array<u32, ${WG}>;
var<workgroup> counter: atomic<u32>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = ${LINEAR_WID};
  if (row >= u.rows) { return; }
  let off = row * u.cols;
  // the key of the k-th largest element, one 8-bit digit per pass, most significant first
  var prefix = 0u;
  var mask = 0u;
  var remaining = u.k;
  var eq_total = 0u;
  for (var dp = 0u; dp < 4u; dp++) {
    let shift = 24u - 8u * dp;
    atomicStore(&hist[lid], 0u);
    workgroupBarrier();
    for (var j = lid; j < u.cols; j += WG) {
      let key = key_of(val_at(off, j));
      if ((key & mask) == prefix) { atomicAdd(&hist[(key >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (lid == 0u) {
      var cum = 0u;
      var bin = 255u;
      loop {
        let c = atomicLoad(&hist[bin]);
        if (cum + c >= remaining || bin == 0u) { break; }
        cum += c;
        bin -= 1u;
      }
      picked[0] = prefix | (bin << shift);
      picked[1] = remaining - cum;
      picked[2] = atomicLoad(&hist[bin]);
    }
    prefix = workgroupUniformLoad(&picked[0]);
    remaining = workgroupUniformLoad(&picked[1]);
    eq_total = workgroupUniformLoad(&picked[2]);
    mask = mask | (255u << shift);
  }
  // prefix is now the k-th largest key; remaining = how many elements equal to it are kept
  let need = remaining;
  let greater = u.k - need;
  let base = u.candAt + row * u.k;
  if (lid == 0u) { atomicStore(&counter, 0u); }
  workgroupBarrier();
  let all_ties = eq_total == need;
  for (var j = lid; j < u.cols; j += WG) {
    let key = key_of(val_at(off, j));
    if (key > prefix || (all_ties && key == prefix)) { cand[base + atomicAdd(&counter, 1u)] = j; }
  }
  if (!all_ties) {
    // the first \`need\` elements equal to the k-th key, in index order: a prefix count per tile
    var taken = 0u;
    for (var t0 = 0u; t0 < u.cols; t0 += WG) {
      let j = t0 + lid;
      var f = 0u;
      if (j < u.cols && key_of(val_at(off, j)) == prefix) { f = 1u; }
      scan_buf[lid] = f;
      workgroupBarrier();
      for (var o = 1u; o < WG; o = o << 1u) {
        var v = scan_buf[lid];
        if (lid >= o) { v += scan_buf[lid - o]; }
        workgroupBarrier();
        scan_buf[lid] = v;
        workgroupBarrier();
      }
      let at = taken + scan_buf[lid] - 1u;
      if (f == 1u && at < need) { cand[base + greater + at] = j; }
      taken += workgroupUniformLoad(&scan_buf[WG - 1u]);
      if (taken >= need) { break; }
    }
  }
}`,
  });
}

/** Kept latents in rank order: values and indices, one thread per kept latent. */
function rankPass(
  label: string,
  p: SaeKernelParams,
  k: number,
  candAt: number,
  dead: BindingRef | null,
  values: BindingRef,
  indices: BindingRef,
): ComputePass {
  const buffers: Storage[] = [['pre', 'f32', 'read', scratch(0)]];
  if (dead) buffers.push(['dead', 'f32', 'read', dead]);
  buffers.push(['cand', 'u32', 'read', scratch(1)], ['values', 'f32', 'read_write', values], ['indices', 'i32', 'read_write', indices]);
  const n = p.rows * k;
  return computePass({
    label,
    uniforms: { n: ['u32', n], cols: ['u32', p.latents], k: ['u32', k], candAt: ['u32', candAt] },
    buffers,
    foldable: true,
    workgroups: elementwiseGroups(n),
    code: `${SELECT_HELPERS}
${valueFn(!!dead)}
${elementwiseMain(
  'u.n',
  /* wgsl */ `
  let row = i / u.k;
  let off = row * u.cols;
  let base = u.candAt + row * u.k;
  let j = cand[base + i % u.k];
  let v = val_at(off, j);
  var rank = 0u;
  for (var c = 0u; c < u.k; c++) {
    let j2 = cand[base + c];
    if (rank_before(val_at(off, j2), j2, v, j)) { rank++; }
  }
  values[row * u.k + rank] = v;
  indices[row * u.k + rank] = i32(j);`,
)}`,
  });
}

// ---- forward ----------------------------------------------------------------------------------

function checkBuffers(kernel: string, ins: BufferInfo[], outs: BufferInfo[], p: SaeKernelParams): void {
  const { rows, d, latents: L } = p;
  for (const [what, list] of [
    ['input', ins],
    ['output', outs],
  ] as const) {
    list.forEach((b, i) => {
      if (b.dtype === 'float64') throw new Error(`${kernel}: ${what} ${i} is ${b.dtype}; the WebGPU kernel is float32 only`);
    });
  }
  checkSize(kernel, 'x', ins[0], rows * d);
  checkSize(kernel, 'W_enc', ins[1], d * L);
  checkSize(kernel, 'b_enc', ins[2], L);
  checkSize(kernel, 'W_dec', ins[3], L * d);
  checkSize(kernel, 'b_dec', ins[4], d);
}

export const sae: WgslKernel<'sae'> = (ins, outs, p, device): KernelPlan => {
  checkDevice(device, 'sae');
  checkBuffers('sae', ins, outs, p);
  const { rows, d, latents: L, kind, k, kAux } = p;
  const encodeBuffers: Storage[] = [
    ['x', 'f32', 'read', input(0)],
    ['b_dec', 'f32', 'read', input(4)],
    ['W_enc', 'f32', 'read', input(1)],
    ['b_enc', 'f32', 'read', input(2)],
  ];
  const encode = (out: BindingRef, store: string) =>
    matmulPass({
      label: `sae encode (${kind})`,
      M: rows,
      N: L,
      K: d,
      a: 'x[gi * u.dim + gk] - b_dec[gk]',
      aKFast: true,
      b: 'W_enc[gk * u.N + gj]',
      bJFast: true,
      store,
      buffers: [...encodeBuffers, ['out', 'f32', 'read_write', out]],
      uniforms: { dim: ['u32', d] },
    });
  const rowPrelude = /* wgsl */ `
${rowReducePrelude(WG)}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = ${LINEAR_WID};
  if (row >= u.rows) { return; }`;

  if (kind === 'relu') {
    const loss = computePass({
      label: 'sae loss (relu)',
      uniforms: { rows: ['u32', rows], dim: ['u32', d], lat: ['u32', L], l1: ['f32', p.l1] },
      buffers: [
        ['x', 'f32', 'read', input(0)],
        ['z', 'f32', 'read', output(0)],
        ['recon', 'f32', 'read', output(1)],
        ['loss', 'f32', 'read_write', output(2)],
      ],
      foldable: true,
      workgroups: [groups(rows), 1, 1],
      code: /* wgsl */ `${rowPrelude}
  var err = 0.0;
  for (var q = lid; q < u.dim; q += WG) { let e = recon[row * u.dim + q] - x[row * u.dim + q]; err += e * e; }
  var sa = 0.0;
  for (var l = lid; l < u.lat; l += WG) { sa += z[row * u.lat + l]; }
  let tot = wg_sum(err, lid);
  let tsa = wg_sum(sa, lid);
  if (lid == 0u) { loss[row] = tot + u.l1 * tsa; }
}`,
    });
    return {
      passes: [
        encode(output(0), 'let v = acc_v + b_enc[gj]; out[gi * u.N + gj] = select(0.0, v, v > 0.0);'),
        matmulPass({
          label: 'sae decode (relu)',
          M: rows,
          N: d,
          K: L,
          a: 'z[gi * u.K + gk]',
          aKFast: true,
          b: 'W_dec[gk * u.N + gj]',
          bJFast: true,
          store: 'recon[gi * u.N + gj] = acc_v + b_dec[gj];',
          buffers: [
            ['z', 'f32', 'read', output(0)],
            ['W_dec', 'f32', 'read', input(3)],
            ['b_dec', 'f32', 'read', input(4)],
            ['recon', 'f32', 'read_write', output(1)],
          ],
        }),
        loss,
      ],
    };
  }

  const dead = kAux > 0 ? input(5) : null;
  const passes: ComputePass[] = [
    encode(scratch(0), 'out[gi * u.N + gj] = acc_v + b_enc[gj];'),
    selectPass('sae select', p, k, 0, null),
    rankPass('sae rank', p, k, 0, null, output(0), output(1)),
  ];
  if (kAux > 0) {
    passes.push(
      selectPass('sae select (AuxK)', p, kAux, rows * k, dead),
      rankPass('sae rank (AuxK)', p, kAux, rows * k, dead, output(4), output(5)),
    );
  }
  passes.push(
    computePass({
      label: 'sae decode + loss (topk)',
      uniforms: { rows: ['u32', rows], dim: ['u32', d], k: ['u32', k], l1: ['f32', p.l1] },
      buffers: [
        ['x', 'f32', 'read', input(0)],
        ['W_dec', 'f32', 'read', input(3)],
        ['b_dec', 'f32', 'read', input(4)],
        ['values', 'f32', 'read', output(0)],
        ['indices', 'i32', 'read', output(1)],
        ['recon', 'f32', 'read_write', output(2)],
        ['loss', 'f32', 'read_write', output(3)],
      ],
      foldable: true,
      workgroups: [groups(rows), 1, 1],
      code: /* wgsl */ `${rowPrelude}
  var err = 0.0;
  for (var q = lid; q < u.dim; q += WG) {
    var acc = b_dec[q];
    for (var j = 0u; j < u.k; j++) {
      let a = values[row * u.k + j];
      if (a > 0.0) { acc += a * W_dec[u32(indices[row * u.k + j]) * u.dim + q]; }
    }
    recon[row * u.dim + q] = acc;
    let e = acc - x[row * u.dim + q];
    err += e * e;
  }
  var sa = 0.0;
  for (var j = lid; j < u.k; j += WG) { let a = values[row * u.k + j]; if (a > 0.0) { sa += a; } }
  let tot = wg_sum(err, lid);
  let tsa = wg_sum(sa, lid);
  if (lid == 0u) { loss[row] = tot + u.l1 * tsa; }
}`,
    }),
  );
  if (kAux > 0) {
    passes.push(
      computePass({
        label: 'sae AuxK decode + loss',
        uniforms: { rows: ['u32', rows], dim: ['u32', d], k: ['u32', kAux] },
        buffers: [
          ['x', 'f32', 'read', input(0)],
          ['W_dec', 'f32', 'read', input(3)],
          ['recon', 'f32', 'read', output(2)],
          ['values', 'f32', 'read', output(4)],
          ['indices', 'i32', 'read', output(5)],
          ['loss', 'f32', 'read_write', output(6)],
        ],
        foldable: true,
        workgroups: [groups(rows), 1, 1],
        code: /* wgsl */ `${rowPrelude}
  var err = 0.0;
  for (var q = lid; q < u.dim; q += WG) {
    var acc = 0.0;
    for (var j = 0u; j < u.k; j++) {
      let a = values[row * u.k + j];
      if (a > 0.0) { acc += a * W_dec[u32(indices[row * u.k + j]) * u.dim + q]; }
    }
    let e = acc - (x[row * u.dim + q] - recon[row * u.dim + q]);
    err += e * e;
  }
  let tot = wg_sum(err, lid);
  if (lid == 0u) { loss[row] = tot; }
}`,
      }),
    );
  }
  return { passes, scratch: [4 * Math.max(1, rows * L), 4 * Math.max(1, rows * (k + kAux))] };
};

// ---- backward ---------------------------------------------------------------------------------

/** Input indices of sae_bwd by name, in the flag-dependent order of the contract. */
function bwdInputs(p: KernelParams['sae_bwd']): Record<string, number> {
  const names = ['x', 'W_enc', 'b_enc', 'W_dec', 'b_dec'];
  names.push(...(p.kind === 'relu' ? ['z'] : ['values', 'indices']), 'recon');
  if (p.kAux > 0) names.push('auxValues', 'auxIndices');
  names.push('gloss');
  if (p.kAux > 0) names.push('gaux');
  if (p.hasGRecon) names.push('grecon');
  if (p.hasGLatents) names.push('glat');
  return Object.fromEntries(names.map((n, i) => [n, i]));
}

export const sae_bwd: WgslKernel<'sae_bwd'> = (ins, outs, p, device): KernelPlan => {
  checkDevice(device, 'sae_bwd');
  checkBuffers('sae_bwd', ins, outs, p);
  const { rows, d, latents: L, kind, k, kAux } = p;
  const at = bwdInputs(p);
  const inp = (name: string) => input(at[name]);
  const f = new Regions();
  const oG = f.take('G', rows * d);
  const passes: ComputePass[] = [];

  // G = 2 gloss (recon - x) + grecon, the cotangent of recon
  passes.push(
    computePass({
      label: 'sae_bwd G',
      uniforms: { n: ['u32', rows * d], dim: ['u32', d], oG: ['u32', oG] },
      buffers: [
        ['x', 'f32', 'read', inp('x')],
        ['recon', 'f32', 'read', inp('recon')],
        ['gloss', 'f32', 'read', inp('gloss')],
        ...(p.hasGRecon ? [['grecon', 'f32', 'read', inp('grecon')] as Storage] : []),
        ['sf', 'f32', 'read_write', scratch(0)],
      ],
      foldable: true,
      workgroups: elementwiseGroups(rows * d),
      code: elementwiseMain('u.n', `  sf[u.oG + i] = 2.0 * gloss[i / u.dim] * (recon[i] - x[i])${p.hasGRecon ? ' + grecon[i]' : ''};`),
    }),
  );
  // db_dec = sum over rows of (grecon - dx), once dx is written (last in both plans)
  const dbDec = (oPart: number) =>
    colSumPasses(
      'sae_bwd db_dec',
      rows,
      d,
      p.hasGRecon ? 'grecon[r * u.cols + c] - dx[r * u.cols + c]' : '-dx[r * u.cols + c]',
      [
        ['dx', 'f32', 'read', output(0)],
        ...(p.hasGRecon ? [['grecon', 'f32', 'read', inp('grecon')] as Storage] : []),
        ['sf', 'f32', 'read_write', scratch(0)],
      ],
      'sf',
      scratch(0),
      oPart,
      output(4),
    );

  if (kind === 'relu') {
    const oDpre = f.take('dpre', rows * L);
    const oPart = f.take('part', Math.max(colSumFloats(rows, L), colSumFloats(rows, d)));
    passes.push(
      matmulPass({
        label: 'sae_bwd dpre (relu)',
        M: rows,
        N: L,
        K: d,
        a: 'sf[u.oG + gi * u.K + gk]',
        aKFast: true,
        b: 'W_dec[gj * u.K + gk]',
        bJFast: false,
        store: `let zz = z[gi * u.N + gj];
        var v = 0.0;
        if (zz > 0.0) { v = acc_v + u.l1 * gloss[gi]${p.hasGLatents ? ' + glat[gi * u.N + gj]' : ''}; }
        sf[u.oDpre + gi * u.N + gj] = v;`,
        buffers: [
          ['sf', 'f32', 'read_write', scratch(0)],
          ['W_dec', 'f32', 'read', inp('W_dec')],
          ['z', 'f32', 'read', inp('z')],
          ['gloss', 'f32', 'read', inp('gloss')],
          ...(p.hasGLatents ? [['glat', 'f32', 'read', inp('glat')] as Storage] : []),
        ],
        uniforms: { oG: ['u32', oG], oDpre: ['u32', oDpre], l1: ['f32', p.l1] },
      }),
      matmulPass({
        label: 'sae_bwd dW_enc (relu)',
        M: d,
        N: L,
        K: rows,
        a: 'x[gk * u.M + gi] - b_dec[gi]',
        aKFast: false,
        b: 'sf[u.oDpre + gk * u.N + gj]',
        bJFast: true,
        store: 'dW_enc[gi * u.N + gj] = acc_v;',
        buffers: [
          ['x', 'f32', 'read', inp('x')],
          ['b_dec', 'f32', 'read', inp('b_dec')],
          ['sf', 'f32', 'read', scratch(0)],
          ['dW_enc', 'f32', 'read_write', output(1)],
        ],
        uniforms: { oDpre: ['u32', oDpre] },
      }),
      matmulPass({
        label: 'sae_bwd dW_dec (relu)',
        M: L,
        N: d,
        K: rows,
        a: 'z[gk * u.M + gi]',
        aKFast: false,
        b: 'sf[u.oG + gk * u.N + gj]',
        bJFast: true,
        store: 'dW_dec[gi * u.N + gj] = acc_v;',
        buffers: [
          ['z', 'f32', 'read', inp('z')],
          ['sf', 'f32', 'read', scratch(0)],
          ['dW_dec', 'f32', 'read_write', output(3)],
        ],
        uniforms: { oG: ['u32', oG] },
      }),
      matmulPass({
        label: 'sae_bwd dx (relu)',
        M: rows,
        N: d,
        K: L,
        a: 'sf[u.oDpre + gi * u.K + gk]',
        aKFast: true,
        b: 'W_enc[gj * u.K + gk]',
        bJFast: false,
        store: 'dx[gi * u.N + gj] = acc_v - 2.0 * gloss[gi] * (recon[gi * u.N + gj] - x[gi * u.N + gj]);',
        buffers: [
          ['sf', 'f32', 'read', scratch(0)],
          ['W_enc', 'f32', 'read', inp('W_enc')],
          ['recon', 'f32', 'read', inp('recon')],
          ['x', 'f32', 'read', inp('x')],
          ['gloss', 'f32', 'read', inp('gloss')],
          ['dx', 'f32', 'read_write', output(0)],
        ],
        uniforms: { oDpre: ['u32', oDpre] },
      }),
      ...colSumPasses(
        'sae_bwd db_enc',
        rows,
        L,
        `sf[${oDpre}u + r * u.cols + c]`,
        [['sf', 'f32', 'read_write', scratch(0)]],
        'sf',
        scratch(0),
        oPart,
        output(2),
      ),
      ...dbDec(oPart),
    );
    return { passes, scratch: [4 * f.size] };
  }

  // ---- topk: sparse -----------------------------------------------------------------------------
  const nMain = rows * k;
  const nEnt = rows * (k + kAux);
  const oGaux = kAux > 0 ? f.take('Gaux', rows * d) : 0;
  const oAct = f.take('act', nEnt);
  const oDval = f.take('dval', nEnt);
  const oWT = f.take('WT', L * d);
  const oPart = f.take('part', colSumFloats(rows, d));
  const uRegions = new Regions();
  const oLat = uRegions.take('lat', nEnt);
  const bufs = [uRegions.take('keysA', nEnt), uRegions.take('valsA', nEnt), uRegions.take('keysB', nEnt), uRegions.take('valsB', nEnt)];
  const nBlocks = Math.ceil(nEnt / SORT_BLOCK);
  const oHist = uRegions.take('hist', 256 * nBlocks);
  const oOff = uRegions.take('offsets', L + 1);
  const rowPrelude = (extra = '') => /* wgsl */ `
${rowReducePrelude(WG)}
${extra}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = ${LINEAR_WID};
  if (row >= u.rows) { return; }`;
  // entry q of a row: main entries 0..k-1, then AuxK entries
  const entryFn = `fn entry_of(row: u32, q: u32) -> u32 {
  if (q < u.k) { return row * u.k + q; }
  return u.nMain + row * u.kAux + (q - u.k);
}`;
  const entryUniforms: UniformFields = { rows: ['u32', rows], dim: ['u32', d], k: ['u32', k], kAux: ['u32', kAux], nMain: ['u32', nMain] };

  if (kAux > 0) {
    passes.push(
      computePass({
        label: 'sae_bwd G (AuxK)',
        uniforms: { rows: ['u32', rows], dim: ['u32', d], k: ['u32', kAux], oGaux: ['u32', oGaux] },
        buffers: [
          ['x', 'f32', 'read', inp('x')],
          ['recon', 'f32', 'read', inp('recon')],
          ['W_dec', 'f32', 'read', inp('W_dec')],
          ['values', 'f32', 'read', inp('auxValues')],
          ['indices', 'i32', 'read', inp('auxIndices')],
          ['gaux', 'f32', 'read', inp('gaux')],
          ['sf', 'f32', 'read_write', scratch(0)],
        ],
        foldable: true,
        workgroups: [groups(rows), 1, 1],
        code: /* wgsl */ `${rowPrelude()}
  for (var q = lid; q < u.dim; q += WG) {
    var acc = 0.0;
    for (var j = 0u; j < u.k; j++) {
      let a = values[row * u.k + j];
      if (a > 0.0) { acc += a * W_dec[u32(indices[row * u.k + j]) * u.dim + q]; }
    }
    let i = row * u.dim + q;
    sf[u.oGaux + i] = 2.0 * gaux[row] * (acc - (x[i] - recon[i]));
  }
}`,
      }),
    );
  }
  // the entries: latent (u32) and activation
  passes.push(
    computePass({
      label: 'sae_bwd entries',
      uniforms: { n: ['u32', nEnt], nMain: ['u32', nMain], oAct: ['u32', oAct], oLat: ['u32', oLat] },
      buffers: [
        ['values', 'f32', 'read', inp('values')],
        ['indices', 'i32', 'read', inp('indices')],
        ...(kAux > 0
          ? ([
              ['auxValues', 'f32', 'read', inp('auxValues')],
              ['auxIndices', 'i32', 'read', inp('auxIndices')],
            ] as Storage[])
          : []),
        ['sf', 'f32', 'read_write', scratch(0)],
        ['su', 'u32', 'read_write', scratch(1)],
      ],
      foldable: true,
      workgroups: elementwiseGroups(nEnt),
      code: elementwiseMain(
        'u.n',
        /* wgsl */ `
  var v = 0.0;
  var l = 0i;
  if (i < u.nMain) { v = values[i]; l = indices[i]; }
  ${kAux > 0 ? 'else { v = auxValues[i - u.nMain]; l = auxIndices[i - u.nMain]; }' : ''}
  sf[u.oAct + i] = select(0.0, v, v > 0.0);
  su[u.oLat + i] = u32(l);`,
      ),
    }),
  );
  // dval per entry: (act > 0) (G_row . W_dec[latent] + l1 gloss + gvalues), JC entries at a time
  passes.push(
    computePass({
      label: 'sae_bwd dval',
      uniforms: {
        ...entryUniforms,
        oG: ['u32', oG],
        oGaux: ['u32', oGaux],
        oAct: ['u32', oAct],
        oDval: ['u32', oDval],
        oLat: ['u32', oLat],
        l1: ['f32', p.l1],
      },
      buffers: [
        ['sf', 'f32', 'read_write', scratch(0)],
        ['su', 'u32', 'read', scratch(1)],
        ['W_dec', 'f32', 'read', inp('W_dec')],
        ['gloss', 'f32', 'read', inp('gloss')],
        ...(p.hasGLatents ? [['glat', 'f32', 'read', inp('glat')] as Storage] : []),
      ],
      foldable: true,
      workgroups: [groups(rows), 1, 1],
      code: /* wgsl */ `
const WG: u32 = ${WG}u;
const JC: u32 = ${JC}u;
var<workgroup> red: array<f32, ${JC * WG}>;
${entryFn}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = ${LINEAR_WID};
  if (row >= u.rows) { return; }
  let nq = u.k + u.kAux;
  for (var c0 = 0u; c0 < nq; c0 += JC) {
    for (var cc = 0u; cc < JC; cc++) {
      let q = c0 + cc;
      var sum = 0.0;
      if (q < nq) {
        let e = entry_of(row, q);
        let l = su[u.oLat + e];
        let g0 = select(u.oG, u.oGaux, q >= u.k) + row * u.dim;
        for (var dd = lid; dd < u.dim; dd += WG) { sum += sf[g0 + dd] * W_dec[l * u.dim + dd]; }
      }
      red[cc * WG + lid] = sum;
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
      if (lid < s) {
        for (var cc = 0u; cc < JC; cc++) { red[cc * WG + lid] += red[cc * WG + lid + s]; }
      }
      workgroupBarrier();
    }
    if (lid < JC && c0 + lid < nq) {
      let q = c0 + lid;
      let e = entry_of(row, q);
      var dv = 0.0;
      if (sf[u.oAct + e] > 0.0) {
        dv = red[lid * WG];
        if (q < u.k) { dv += u.l1 * gloss[row]${p.hasGLatents ? ' + glat[row * u.k + q]' : ''}; }
      }
      sf[u.oDval + e] = dv;
    }
    workgroupBarrier();
  }
}`,
    }),
  );
  // dx = -2 gloss (recon - x) + sum over the row's entries of dval W_enc[:, latent], gathering
  // contiguous rows of W_enc^T (a transpose into the WT region, which the latent sums reuse later)
  passes.push(
    transposePass('sae_bwd W_enc transpose', d, L, ['W_enc', inp('W_enc'), 0], ['sf', scratch(0), oWT]),
    computePass({
      label: 'sae_bwd dx (topk)',
      uniforms: { ...entryUniforms, oDval: ['u32', oDval], oLat: ['u32', oLat], oWT: ['u32', oWT] },
      buffers: [
        ['x', 'f32', 'read', inp('x')],
        ['recon', 'f32', 'read', inp('recon')],
        ['gloss', 'f32', 'read', inp('gloss')],
        ['sf', 'f32', 'read', scratch(0)],
        ['su', 'u32', 'read', scratch(1)],
        ['dx', 'f32', 'read_write', output(0)],
      ],
      foldable: true,
      workgroups: [groups(rows), 1, 1],
      code: /* wgsl */ `
const WG: u32 = ${WG}u;
${entryFn}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = ${LINEAR_WID};
  if (row >= u.rows) { return; }
  let nq = u.k + u.kAux;
  for (var dd = lid; dd < u.dim; dd += WG) {
    let i = row * u.dim + dd;
    var acc = -2.0 * gloss[row] * (recon[i] - x[i]);
    for (var q = 0u; q < nq; q++) {
      let e = entry_of(row, q);
      let dv = sf[u.oDval + e];
      if (dv != 0.0) { acc += dv * sf[u.oWT + su[u.oLat + e] * u.dim + dd]; }
    }
    dx[i] = acc;
  }
}`,
    }),
  );
  // the entries sorted by latent: a stable LSD radix sort, 8 bits a digit
  const digits = Math.max(1, Math.ceil(Math.log2(Math.max(2, L)) / 8));
  let src = oLat,
    srcVal = 0;
  for (let dg = 0; dg < digits; dg++) {
    const dst = bufs[(dg % 2) * 2],
      dstVal = bufs[(dg % 2) * 2 + 1];
    const sortUniforms: UniformFields = {
      n: ['u32', nEnt],
      nBlocks: ['u32', nBlocks],
      shift: ['u32', 8 * dg],
      src: ['u32', src],
      srcVal: ['u32', srcVal],
      first: ['u32', dg === 0 ? 1 : 0],
      dst: ['u32', dst],
      dstVal: ['u32', dstVal],
      oHist: ['u32', oHist],
    };
    passes.push(
      computePass({
        label: `sae_bwd sort histogram ${dg}`,
        uniforms: sortUniforms,
        buffers: [['su', 'u32', 'read_write', scratch(1)]],
        foldable: true,
        workgroups: [nBlocks, 1, 1],
        code: /* wgsl */ `
var<workgroup> bins: array<atomic<u32>, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let blk = ${LINEAR_WID};
  if (blk >= u.nBlocks) { return; }
  atomicStore(&bins[lid], 0u);
  workgroupBarrier();
  for (var q = lid; q < ${SORT_BLOCK}u; q += 256u) {
    let e = blk * ${SORT_BLOCK}u + q;
    if (e < u.n) { atomicAdd(&bins[(su[u.src + e] >> u.shift) & 255u], 1u); }
  }
  workgroupBarrier();
  su[u.oHist + lid * u.nBlocks + blk] = atomicLoad(&bins[lid]);
}`,
      }),
      computePass({
        label: `sae_bwd sort scan ${dg}`,
        uniforms: sortUniforms,
        buffers: [['su', 'u32', 'read_write', scratch(1)]],
        workgroups: [1, 1, 1],
        code: /* wgsl */ `
var<workgroup> scan_buf: array<u32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let n = 256u * u.nBlocks;
  let per = (n + 255u) / 256u;
  let start = min(n, lid * per);
  let end = min(n, start + per);
  var sum = 0u;
  for (var i = start; i < end; i++) { sum += su[u.oHist + i]; }
  scan_buf[lid] = sum;
  workgroupBarrier();
  for (var o = 1u; o < 256u; o = o << 1u) {
    var v = scan_buf[lid];
    if (lid >= o) { v += scan_buf[lid - o]; }
    workgroupBarrier();
    scan_buf[lid] = v;
    workgroupBarrier();
  }
  var run = scan_buf[lid] - sum;
  for (var i = start; i < end; i++) {
    let v = su[u.oHist + i];
    su[u.oHist + i] = run;
    run += v;
  }
}`,
      }),
      computePass({
        label: `sae_bwd sort scatter ${dg}`,
        uniforms: sortUniforms,
        buffers: [['su', 'u32', 'read_write', scratch(1)]],
        foldable: true,
        workgroups: [nBlocks, 1, 1],
        code: /* wgsl */ `
var<workgroup> dig: array<u32, 256>;
var<workgroup> run: array<atomic<u32>, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let blk = ${LINEAR_WID};
  if (blk >= u.nBlocks) { return; }
  atomicStore(&run[lid], 0u);
  workgroupBarrier();
  for (var q0 = 0u; q0 < ${SORT_BLOCK}u; q0 += 256u) {
    let e = blk * ${SORT_BLOCK}u + q0 + lid;
    let ok = e < u.n;
    var key = 0u;
    var val = e;
    var dg = 256u;
    if (ok) {
      key = su[u.src + e];
      if (u.first == 0u) { val = su[u.srcVal + e]; }
      dg = (key >> u.shift) & 255u;
    }
    dig[lid] = dg;
    workgroupBarrier();
    if (ok) {
      // stable: entries of this round with the same digit and a lower lane go first
      var rank = 0u;
      for (var l2 = 0u; l2 < lid; l2++) { if (dig[l2] == dg) { rank++; } }
      let pos = su[u.oHist + dg * u.nBlocks + blk] + atomicLoad(&run[dg]) + rank;
      su[u.dst + pos] = key;
      su[u.dstVal + pos] = val;
    }
    workgroupBarrier();
    if (ok) { atomicAdd(&run[dg], 1u); }
    workgroupBarrier();
  }
}`,
      }),
    );
    src = dst;
    srcVal = dstVal;
  }
  const oSortedKeys = src,
    oSorted = srcVal;
  // each latent's segment [offsets[l], offsets[l+1]) of the sorted entries
  passes.push(
    computePass({
      label: 'sae_bwd segments',
      uniforms: { n: ['u32', nEnt], lat: ['u32', L], keys: ['u32', oSortedKeys], oOff: ['u32', oOff] },
      buffers: [['su', 'u32', 'read_write', scratch(1)]],
      foldable: true,
      workgroups: elementwiseGroups(L + 1),
      code: elementwiseMain(
        'u.lat + 1u',
        /* wgsl */ `
  var lo = 0u;
  var hi = u.n;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (su[u.keys + mid] < i) { lo = mid + 1u; } else { hi = mid; }
  }
  su[u.oOff + i] = lo;`,
      ),
    }),
  );
  // one workgroup per latent sums its segment
  passes.push(
    computePass({
      label: 'sae_bwd latent sums',
      uniforms: {
        ...entryUniforms,
        lat: ['u32', L],
        oG: ['u32', oG],
        oGaux: ['u32', oGaux],
        oAct: ['u32', oAct],
        oDval: ['u32', oDval],
        oWT: ['u32', oWT],
        oSorted: ['u32', oSorted],
        oOff: ['u32', oOff],
      },
      buffers: [
        ['sf', 'f32', 'read_write', scratch(0)],
        ['su', 'u32', 'read', scratch(1)],
        ['x', 'f32', 'read', inp('x')],
        ['b_dec', 'f32', 'read', inp('b_dec')],
        ['dW_dec', 'f32', 'read_write', output(3)],
        ['db_enc', 'f32', 'read_write', output(2)],
      ],
      foldable: true,
      workgroups: [groups(L), 1, 1],
      code: /* wgsl */ `
const WG: u32 = ${WG}u;
fn row_of(e: u32) -> u32 {
  if (e < u.nMain) { return e / u.k; }
  return (e - u.nMain) / max(u.kAux, 1u);
}
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let l = ${LINEAR_WID};
  if (l >= u.lat) { return; }
  let p0 = su[u.oOff + l];
  let p1 = su[u.oOff + l + 1u];
  for (var dd = lid; dd < u.dim; dd += WG) {
    var gd = 0.0;
    var ge = 0.0;
    for (var q = p0; q < p1; q++) {
      let e = su[u.oSorted + q];
      let r = row_of(e);
      let g0 = select(u.oG, u.oGaux, e >= u.nMain);
      gd += sf[u.oAct + e] * sf[g0 + r * u.dim + dd];
      ge += sf[u.oDval + e] * (x[r * u.dim + dd] - b_dec[dd]);
    }
    dW_dec[l * u.dim + dd] = gd;
    sf[u.oWT + l * u.dim + dd] = ge;
  }
  if (lid == 0u) {
    var sb = 0.0;
    for (var q = p0; q < p1; q++) { sb += sf[u.oDval + su[u.oSorted + q]]; }
    db_enc[l] = sb;
  }
}`,
    }),
  );
  // dW_enc [d, L] = transpose of dW_enc^T [L, d]
  passes.push(transposePass('sae_bwd dW_enc transpose', L, d, ['sf', scratch(0), oWT], ['dW_enc', output(1), 0]));
  passes.push(...dbDec(oPart));
  return { passes, scratch: [4 * Math.max(1, f.size), 4 * Math.max(1, uRegions.size)] };
};
