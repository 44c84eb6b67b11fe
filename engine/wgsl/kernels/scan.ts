// The Mamba selective scan on the GPU, forward and backward (maths in engine/ops/scan.ts):
//   dt = softplus(delta + bias) (as flagged), h_t = exp(dt A) h_{t-1} + dt B_t x_t,
//   y_t = (C_t . h_t + D x_t) * silu(z_t)
//
// Both directions are chunked scans with the same layout. A workgroup owns (batch b, a block of
// CB <= 32 channels) and walks the sequence in segments of TS = NC * L steps, carrying the state
// from one segment to the next, so any T runs in one workgroup. Its threads are CB channels x NC
// chunks of a segment: thread (c, k) holds the L consecutive steps k*L .. k*L + L - 1 of channel
// c in registers (x, dt and the per-step sums), and owns every state of its channel. Channel is
// the fastest index, so a 32-lane subgroup reads one 128-byte row of a [batch, T, E] tensor per
// step; nothing depends on the subgroup size (lavapipe's is 8, NVIDIA's 32), no subgroup
// operations, no float atomics. Per segment and state n:
//   1. each thread scans its L steps from a zero state: the local end state H_k, the decay
//      product P_k = prod exp(dt A_n) and (backward) the local adjoint sum; the exp(dt A_n) are
//      evaluated once per (t, n) and kept in registers for step 3;
//   2. one thread per channel composes the chunk carries in order (h -> P_k h + H_k is
//      associative; the backward's adjoint composes the same way in reverse), through workgroup
//      memory, giving each chunk its true start state (and adjoint);
//   3. each thread finishes its steps from that start: h_t = H_local_t + P_local_t h_start.
// States live only in registers and workgroup memory; hs is written only when saveStates.
//
// Backward (the adjoint dh_{t-1} = exp(dt_t A) (dh_t + C_t g_t + dhs_t) is the same linear
// recurrence, reversed): phase 0 walks the segments forward and stores only the state at each
// segment start (checkpoints, N floats per (b, e, segment)); phase 1 walks the segments from the
// last to the first: per state, step 1 gives both local sums, step 2 composes the states forward
// from the segment's checkpoint and the adjoints backward from the next segment's carry (kept in
// workgroup memory), and step 3 walks each chunk backwards, accumulating dx, ddelta and C.h (for
// dz) over the states in registers. dB and dC (sums over channels) are summed over the
// workgroup's CB channels through workgroup memory, into one partial per channel block; dA, dD and
// d(delta bias) (sums over time) into one partial per batch row. A sum pass adds the partials in a
// fixed order (no float atomics).
//
// Bytes moved per (t, e) in float32, N states, CB channels per workgroup (32 at E >= 32), TS steps
// per segment (the minimum the op needs in brackets):
//   forward:  x, delta, z read once, y written once: 16 B [16 B]; B and C (per (t, n)) come from
//             L2 once per channel block, 8N/CB B; hs, when asked, 4N B.
//   backward: phase 0 reads x, delta (8 B); phase 1 reads x, delta, dy, z (16 B) and writes dx,
//             ddelta, dz (12 B): 36 B [28 B]; dB, dC partials 8N/CB B written and read again by
//             the sum pass (8 B at N 16, CB 32); checkpoints 8N/TS B (4 B at TS 32); dhs, when
//             given, 4N B. At b8 T2048 E1536 N16: about 48 B per (t, e), 1.2 GB.
// The exponentials: one per (t, n) forward, two backward (phase 0 and phase 1).
//
// Storage buffers: WebGPU only guarantees 8 per shader stage (Chromium on SwiftShader allows 10),
// and the kernel contract has up to 9 inputs and 3 outputs forward, 12 and 9 backward. So a
// pack pass first copies the small inputs (A, D, deltaBias, h0, B, C and dhT: per channel, per
// state or per step, never [batch, T, E]-sized but B and C's [batch, T, N]) into regions of the one
// scratch buffer, which the main pass reads. The backward's main pass binds x, delta, z, dy, the
// scratch, dx, ddelta and dz; with dhs it binds dhs instead of dz and writes dz into scratch, copied
// out afterwards. Every pass then binds at most 8 buffers in every flag combination
// (test/engine/wgsl/storage-limit.test.ts checks all of them).
import { WGSL_ELEMENTWISE_PRELUDE } from '../../elementwise.ts';
import type { KernelParams, ScanParams } from '../../kernels.ts';
import type { BindingRef, ComputePass, DeviceFacts, KernelPlan, WgslKernel } from '../kernel.ts';
import { computePass, input, output, scratch, type Storage, type UniformFields } from '../layout.ts';
import { sumPartialsPass } from '../passes.ts';
import { ELEMENTWISE_WG, elementwiseMain, groups, LINEAR_WID } from '../shader.ts';

/**
 * Steps per thread and segment, held in registers (the code is unrolled over them): the backward
 * keeps about 14 floats per step, the forward 6. Compile time on lavapipe grows with them.
 */
const FWD_L = 8;
const BWD_L = 4;
/** Channels per workgroup at most: one 128-byte row of a 32-lane subgroup. */
const MAX_CB = 32;
/** Chunks per channel at most: bounds the serial carry walk of step 2. */
const MAX_NC = 32;
/** Threads per workgroup. */
const FWD_THREADS = 256;
const BWD_THREADS = 256;

/** Input indices by name, in the flag-dependent order of the kernel contract. */
function scanInputs(p: ScanParams, withBwd?: { hasDhT: boolean; hasDhs: boolean }): Map<string, number> {
  const names = ['x', 'delta', 'A', 'B', 'C'];
  if (p.hasD) names.push('D');
  if (p.hasZ) names.push('z');
  if (p.hasH0) names.push('h0');
  if (p.hasDeltaBias) names.push('bias');
  if (withBwd) {
    names.push('dy');
    if (withBwd.hasDhT) names.push('dhT');
    if (withBwd.hasDhs) names.push('dhs');
  }
  return new Map(names.map((n, i) => [n, i]));
}

/** Regions of the scratch buffer, in floats, laid out in the order taken. */
class Regions {
  readonly at: Record<string, number> = {};
  size = 0;
  take(name: string, floats: number): void {
    this.at[name] = this.size;
    this.size += floats;
  }
}

/** The inputs the pack pass copies into scratch (those present by flag), with their sizes. */
const PACKED = ['A', 'B', 'C', 'D', 'h0', 'bias', 'dhT'] as const;
function packedSizes(p: ScanParams): Record<(typeof PACKED)[number], number> {
  const { batch, T, E, N } = p;
  return { A: E * N, B: batch * T * N, C: batch * T * N, D: E, h0: batch * E * N, bias: E, dhT: batch * E * N };
}

/**
 * The pack pass: dst[offset_k + i] = input_k[i] for each present input k, one thread per i. It
 * binds the inputs and the scratch buffer: at most 7 + 1.
 */
function packPass(label: string, ins: Map<string, number>, p: ScanParams, regions: Regions, dst: BindingRef): ComputePass {
  const sizes = packedSizes(p);
  const present = PACKED.filter((name) => ins.has(name));
  const copies = present.map((name, k) => `if (i < u.n${k}) { dst[u.o${k} + i] = ${name}[i]; }`);
  const longest = Math.max(...present.map((n) => sizes[n]));
  return computePass({
    label,
    uniforms: Object.fromEntries(
      present.flatMap((n, k) => [
        [`n${k}`, ['u32', sizes[n]]],
        [`o${k}`, ['u32', regions.at[n]]],
      ]),
    ),
    buffers: [...present.map((n): Storage => [n, 'f32', 'read', input(ins.get(n)!)]), ['dst', 'f32', 'read_write', dst]],
    foldable: true,
    workgroups: [groups(longest, 256), 1, 1],
    code: /* wgsl */ `
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (${LINEAR_WID}) * 256u + lid;
  ${copies.join('\n  ')}
}`,
  });
}

/** Uniform fields `<prefix><name>` holding the scratch offsets of `names`. */
function offsetFields(prefix: string, names: readonly string[], at: Record<string, number>): UniformFields {
  return Object.fromEntries(names.map((n) => [`${prefix}${n}`, ['u32', at[n]]]));
}

/**
 * WGSL accessors of the packed inputs, reading scratch `buf` at offsets `u.o_<name>`, so that the
 * kernel bodies read like plain arrays: A_at(e * N + n).
 */
function packedAccessors(buf: string, names: readonly string[]): string {
  return names.map((n) => `fn ${n}_at(i: u32) -> f32 { return ${buf}[u.o_${n} + i]; }`).join('\n');
}

/** WGSL for the step size of element i of channel e. */
function dtExpr(p: ScanParams): string {
  const raw = p.hasDeltaBias ? 'delta[i] + bias_at(e)' : 'delta[i]';
  return `fn raw_dt(i: u32, e: u32) -> f32 { return ${raw}; }
fn step_dt(r: f32) -> f32 { return ${p.deltaSoftplus ? 'mi_softplus(r)' : 'r'}; }`;
}

/**
 * `f(j)` for each of the L steps of a thread (the kernels are unrolled over j), one after the
 * other, each starting at the indentation of the last line of `f(0)`.
 */
function each(L: number, f: (j: number) => string, reverse = false): string {
  const js = Array.from({ length: L }, (_, j) => (reverse ? L - 1 - j : j));
  const indent = /\n( *)[^\n]*$/.exec(f(0))?.[1] ?? '';
  return js.map(f).join(`\n${indent}`);
}

/** The workgroup shape of a scan: CB channels x NC chunks of L steps, segments of TS steps. */
export interface ScanShape {
  L: number;
  CB: number;
  NC: number;
  WG: number;
  TS: number;
  nEB: number;
  nSeg: number;
}

/**
 * The shape for `threads` threads at most whose workgroup memory, `bytes(CB, NC)`, fits the
 * device: channel blocks of at most 32 (balanced, so E = 33 gives two blocks of 17), as many
 * chunks as the threads allow (at most MAX_NC, and no more than the sequence fills); chunks, then
 * channels, are halved until the memory fits.
 */
export function scanShape(
  p: ScanParams,
  device: DeviceFacts,
  threads: number,
  L: number,
  bytes: (CB: number, NC: number) => number,
): ScanShape {
  const wg = Math.min(threads, device.maxWorkgroupSize);
  let CB = Math.min(wg, Math.ceil(p.E / Math.ceil(p.E / MAX_CB)));
  let NC = Math.max(1, Math.min(MAX_NC, Math.floor(wg / CB), Math.ceil(p.T / L)));
  while (bytes(CB, NC) > device.maxWorkgroupStorage) {
    if (NC > 1) NC = Math.ceil(NC / 2);
    else if (CB > 1) CB = Math.ceil(CB / 2);
    else {
      throw new Error(`scan: N=${p.N} states need ${bytes(1, 1)} bytes of workgroup memory, the device has ${device.maxWorkgroupStorage}`);
    }
  }
  const TS = NC * L;
  return { L, CB, NC, WG: CB * NC, TS, nEB: Math.ceil(p.E / CB), nSeg: Math.max(1, Math.ceil(p.T / TS)) };
}

/** Forward workgroup memory: H and P per thread, the carried state per (state, channel). */
const fwdBytes = (N: number) => (CB: number, NC: number) => 4 * (2 * CB * NC + N * CB);

/**
 * The bounds of the loops over states, chunks and channels, as uniforms: constant bounds would let
 * the shader compilers unroll these loops, which nothing gains (their bodies read workgroup memory
 * or are long) and which multiplies lavapipe's compile time (seconds per shader). The loops over a
 * thread's L steps are unrolled in the generated code, so that those steps stay in registers.
 */
const LOOP_BOUNDS = (N: number, NC: number, CB: number): UniformFields => ({ N: ['u32', N], NC: ['u32', NC], CB: ['u32', CB] });

/** The per-thread set-up shared by both kernels: which batch row, channels and chunk. */
const THREAD_PRELUDE = /* wgsl */ `
  let g = ${LINEAR_WID};
  if (g >= u.batch * u.nEB) { return; }
  let b = g / u.nEB;
  let eb = g % u.nEB;
  let e0 = eb * CB;
  let c = lid % CB;
  let k = lid / CB;
  let e = e0 + c;
  let valid = e < u.E;
  let ec = min(e, u.E - 1u); // a channel in range, for reads (an invalid channel's steps are all idle)`;

/** WGSL loading step j of this thread's chunk: t_j, ok_j, the element i_j, the B/C row bt_j. */
const stepIndex = (j: number) => `let t${j} = tk + ${j}u;
    let ok${j} = valid && t${j} < u.T;
    let i${j} = (b * u.T + min(t${j}, u.T - 1u)) * u.E + ec;
    let bt${j} = (b * u.T + min(t${j}, u.T - 1u)) * N;`;

/**
 * WGSL of the compose walk (step 2) of one (state n, channel w) over the NC chunks, forward:
 * sh_H[chunk] (local end state) becomes the chunk's start state; `carry` enters as the state
 * before the segment and leaves as the state after it.
 */
const composeForward = /* wgsl */ `for (var kk = 0u; kk < u.NC; kk++) {
          let s = kk * CB + w;
          let hk = sh_H[s];
          sh_H[s] = carry;
          carry = sh_P[s] * carry + hk;
        }`;

export const scan: WgslKernel<'scan'> = (_i, _o, p, device): KernelPlan => {
  const { batch, T, E, N } = p;
  const { L, CB, NC, WG, TS, nEB, nSeg } = scanShape(p, device, FWD_THREADS, FWD_L, fwdBytes(N));
  const ins = scanInputs(p);
  const packed = PACKED.filter((n) => ins.has(n));
  const regions = new Regions();
  const sizes = packedSizes(p);
  for (const n of packed) regions.take(n, sizes[n]);
  const scr = scratch(0);
  const read = (n: string): Storage => [n, 'f32', 'read', input(ins.get(n)!)];
  // at most x, delta, z, scratch, y, hT, hs: 7 storage buffers
  const bufs: Storage[] = [read('x'), read('delta')];
  if (p.hasZ) bufs.push(read('z'));
  bufs.push(['P', 'f32', 'read', scr], ['y', 'f32', 'read_write', output(0)], ['hT', 'f32', 'read_write', output(1)]);
  if (p.saveStates) bufs.push(['hs', 'f32', 'read_write', output(2)]);
  const code = /* wgsl */ `
${packedAccessors('P', packed)}
${WGSL_ELEMENTWISE_PRELUDE}
${dtExpr(p)}
const N: u32 = ${N}u;
const CB: u32 = ${CB}u;
const NC: u32 = ${NC}u;
const WG: u32 = ${WG}u;
const TS: u32 = ${TS}u;
const LOG2E: f32 = 1.4426950408889634;
var<workgroup> sh_H: array<f32, ${WG}>; // per thread: local end state, then the chunk's start state
var<workgroup> sh_P: array<f32, ${WG}>; // per thread: the chunk's decay prod exp(dt A_n)
var<workgroup> sh_c: array<f32, ${N * CB}>; // [n][channel]: the state carried between segments

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${THREAD_PRELUDE}
  // thread w < CB owns channel w's carried states (it alone reads and writes sh_c[n * CB + w])
  for (var w = lid; w < CB; w += WG) {
    for (var n = 0u; n < u.N; n++) {
      ${p.hasH0 ? 'sh_c[n * CB + w] = select(0.0, h0_at((b * u.E + e0 + w) * N + n), e0 + w < u.E);' : 'sh_c[n * CB + w] = 0.0;'}
    }
  }
  ${p.hasD ? 'let dv = D_at(ec);' : ''}
  for (var seg = 0u; seg < u.nSeg; seg++) {
    let tk = seg * TS + k * ${L}u; // this thread's first step
    ${each(
      L,
      (j) => `${stepIndex(j)}
    var x${j} = 0.0;
    var dt${j} = 0.0;
    if (ok${j}) { x${j} = x[i${j}]; dt${j} = step_dt(raw_dt(i${j}, ec)); }
    let bx${j} = dt${j} * x${j};
    var y${j} = 0.0;`,
    )}
    for (var n = 0u; n < u.N; n++) {
      let a2 = A_at(ec * N + n) * LOG2E;
      // 1. this chunk from a zero state (an idle step has dt = 0: exp2(0) = 1, no input)
      var h = 0.0;
      var p = 1.0;
      ${each(
        L,
        (j) => `let ab${j} = exp2(dt${j} * a2);
      h = ab${j} * h + bx${j} * B_at(bt${j} + n);
      p *= ab${j};
      let hl${j} = h;
      let pc${j} = p;`,
      )}
      sh_H[lid] = h;
      sh_P[lid] = p;
      workgroupBarrier();
      // 2. the chunk carries, in order, per channel
      for (var w = lid; w < CB; w += WG) {
        var carry = sh_c[n * CB + w];
        ${composeForward}
        sh_c[n * CB + w] = carry;
      }
      workgroupBarrier();
      // 3. the states from the chunk's start state, into y (and hs)
      let hs0 = sh_H[lid];
      ${each(
        L,
        (j) => `let h${j} = hl${j} + pc${j} * hs0;
      y${j} += C_at(bt${j} + n) * h${j};${p.saveStates ? `\n      if (ok${j}) { hs[i${j} * N + n] = h${j}; }` : ''}`,
      )}
    }
    ${each(
      L,
      (j) => `if (ok${j}) {
      var s = y${j};${p.hasD ? `\n      s += dv * x${j};` : ''}${p.hasZ ? `\n      let zv = z[i${j}];\n      s *= zv * mi_sigmoid(zv);` : ''}
      y[i${j}] = s;
    }`,
    )}
  }
  for (var w = lid; w < CB; w += WG) {
    if (e0 + w < u.E) {
      for (var n = 0u; n < u.N; n++) { hT[(b * u.E + e0 + w) * N + n] = sh_c[n * CB + w]; }
    }
  }
}`;
  return {
    passes: [
      packPass('scan pack', ins, p, regions, scr),
      computePass({
        label: 'scan',
        uniforms: {
          batch: ['u32', batch],
          T: ['u32', T],
          E: ['u32', E],
          nEB: ['u32', nEB],
          nSeg: ['u32', nSeg],
          ...LOOP_BOUNDS(N, NC, CB),
          ...offsetFields('o_', packed, regions.at),
        },
        buffers: bufs,
        code,
        foldable: true,
        workgroups: [Math.max(1, batch * nEB), 1, 1],
      }),
    ],
    scratch: [Math.max(4, regions.size * 4)],
  };
};

/**
 * Backward workgroup memory: H, P, G and dA per thread; the carried adjoint and the dA sums (phase
 * 0: the carried state) per (state, channel); dB and dC of a segment per (step, channel), rows
 * padded to CB + 1 floats so that the summing threads hit distinct banks.
 */
const bwdBytes = (N: number, L: number) => (CB: number, NC: number) => 4 * (4 * CB * NC + 2 * N * CB + 2 * NC * L * (CB + 1));

/**
 * dB, dC: out[(b T + t) N + n] = sum over channel blocks q < K of partial[((q batch + b) N + n) T + t],
 * one thread per output, t fastest so the partials are read in order.
 */
function sumTransposedPass(label: string, p: ScanParams, K: number, src: BindingRef, offset: number, dst: BindingRef): ComputePass {
  const M = p.batch * p.T * p.N;
  return computePass({
    label,
    uniforms: { K: ['u32', K], M: ['u32', M], T: ['u32', p.T], N: ['u32', p.N], offset: ['u32', offset] },
    buffers: [
      ['partial', 'f32', 'read', src],
      ['out', 'f32', 'read_write', dst],
    ],
    foldable: true,
    workgroups: [groups(M, ELEMENTWISE_WG), 1, 1],
    code: elementwiseMain(
      'u.M',
      /* wgsl */ `
  let t = i % u.T;
  let bn = i / u.T; // b * N + n
  var s = 0.0;
  for (var q = 0u; q < u.K; q++) { s += partial[u.offset + q * u.M + i]; }
  out[((bn / u.N) * u.T + t) * u.N + bn % u.N] = s;`,
    ),
  });
}

export const scan_bwd: WgslKernel<'scan_bwd'> = (_i, _o, p: KernelParams['scan_bwd'], device): KernelPlan => {
  const { batch, T, E, N } = p;
  const { L, CB, NC, WG, TS, nEB, nSeg } = scanShape(p, device, BWD_THREADS, BWD_L, bwdBytes(N, BWD_L));
  const BT = batch * T;
  const dzInScratch = p.hasZ && p.hasDhs;
  // one scratch buffer, in regions: the packed inputs, the checkpoints, the partial sums, dh0 (and dz)
  const ins = scanInputs(p, p);
  const packed = PACKED.filter((n) => ins.has(n));
  const sizes = packedSizes(p);
  const regions = new Regions();
  for (const n of packed) regions.take(n, sizes[n]);
  regions.take('ck', batch * nSeg * N * E);
  regions.take('dA', batch * E * N);
  regions.take('dB', nEB * BT * N);
  regions.take('dC', nEB * BT * N);
  regions.take('dD', p.hasD ? batch * E : 0);
  regions.take('dBias', p.hasDeltaBias ? batch * E : 0);
  regions.take('dh0', p.hasH0 ? batch * E * N : 0);
  regions.take('dz', dzInScratch ? BT * E : 0);
  const region = regions.at;
  const OUT_REGIONS = ['ck', 'dA', 'dB', 'dC', 'dD', 'dBias', 'dh0', 'dz'] as const;

  let o = 5;
  const outIndex = {
    dx: 0,
    ddelta: 1,
    dA: 2,
    dB: 3,
    dC: 4,
    dD: p.hasD ? o++ : -1,
    dz: p.hasZ ? o++ : -1,
    dh0: p.hasH0 ? o++ : -1,
    dBias: p.hasDeltaBias ? o++ : -1,
  };
  const scr = scratch(0);
  const read = (n: string): Storage => [n, 'f32', 'read', input(ins.get(n)!)];
  // at most x, delta, z, dy, scratch, dx, ddelta and dz or dhs: 8 storage buffers
  const bufs: Storage[] = [read('x'), read('delta')];
  if (p.hasZ) bufs.push(read('z'));
  bufs.push(read('dy'));
  if (p.hasDhs) bufs.push(read('dhs'));
  bufs.push(['scr', 'f32', 'read_write', scr], ['dx', 'f32', 'read_write', output(0)], ['ddelta', 'f32', 'read_write', output(1)]);
  if (p.hasZ && !dzInScratch) bufs.push(['dz', 'f32', 'read_write', output(outIndex.dz)]);
  const putDz = dzInScratch ? 'scr[u.r_dz + i] = v;' : 'dz[i] = v;';
  // dL/dh_t from C_t g_t (and dhs_t): the adjoint's input at step j
  const q = (j: number) => `g${j} * cn${j}${p.hasDhs ? ` + select(0.0, dhs[i${j} * N + n], ok${j})` : ''}`;
  /** the checkpoint of (b, segment s, state n, channel e) */
  const ck = (s: string, e: string) => `u.r_ck + ((b * u.nSeg + ${s}) * N + n) * u.E + ${e}`;

  const code = /* wgsl */ `
${packedAccessors('scr', packed)}
${WGSL_ELEMENTWISE_PRELUDE}
${dtExpr(p)}
${p.hasZ ? `fn put_dz(i: u32, v: f32) { ${putDz} }` : ''}
const N: u32 = ${N}u;
const CB: u32 = ${CB}u;
const NC: u32 = ${NC}u;
const WG: u32 = ${WG}u;
const TS: u32 = ${TS}u;
const CBP: u32 = ${CB + 1}u;
const LOG2E: f32 = 1.4426950408889634;
var<workgroup> sh_H: array<f32, ${WG}>; // per thread: local end state, then the chunk's start state
var<workgroup> sh_P: array<f32, ${WG}>; // per thread: the chunk's decay
var<workgroup> sh_G: array<f32, ${WG}>; // per thread: local adjoint sum, then the adjoint entering the chunk's end
var<workgroup> sh_A: array<f32, ${WG}>; // per thread: its dA term of the state in hand
var<workgroup> sh_cr: array<f32, ${N * CB}>; // [n][channel]: the adjoint carried between segments
var<workgroup> sh_acc: array<f32, ${N * CB}>; // [n][channel]: phase 0 the carried state, then the dA sums
var<workgroup> red: array<f32, ${2 * TS * (CB + 1)}>; // [dB | dC][step][channel]

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${THREAD_PRELUDE}
  ${p.hasD ? 'let dv = D_at(ec);' : ''}
  // thread w < CB owns channel w's sh_acc (and its checkpoints), thread CB + w its sh_cr
  for (var w = lid; w < 2u * CB; w += WG) {
    let cw = w % CB;
    let we = e0 + cw;
    for (var n = 0u; n < u.N; n++) {
      if (w < CB) {
        sh_acc[n * CB + cw] = ${p.hasH0 ? 'select(0.0, h0_at((b * u.E + we) * N + n), we < u.E)' : '0.0'};
      } else {
        sh_cr[n * CB + cw] = ${p.hasDhT ? 'select(0.0, dhT_at((b * u.E + we) * N + n), we < u.E)' : '0.0'};
      }
    }
  }

  // phase 0: the state before each segment after the first, from the carried state
  for (var seg = 0u; seg + 1u < u.nSeg; seg++) {
    let tk = seg * TS + k * ${L}u;
    ${each(
      L,
      (j) => `${stepIndex(j)}
    var dt${j} = 0.0;
    var bx${j} = 0.0;
    if (ok${j}) { dt${j} = step_dt(raw_dt(i${j}, ec)); bx${j} = dt${j} * x[i${j}]; }`,
    )}
    for (var n = 0u; n < u.N; n++) {
      let a2 = A_at(ec * N + n) * LOG2E;
      var h = 0.0;
      var p = 1.0;
      ${each(
        L,
        (j) => `let ab${j} = exp2(dt${j} * a2);
      h = ab${j} * h + bx${j} * B_at(bt${j} + n);
      p *= ab${j};`,
      )}
      sh_H[lid] = h;
      sh_P[lid] = p;
      workgroupBarrier();
      for (var w = lid; w < CB; w += WG) {
        var carry = sh_acc[n * CB + w];
        ${composeForward}
        sh_acc[n * CB + w] = carry;
        if (e0 + w < u.E) { scr[${ck('seg + 1u', 'e0 + w')}] = carry; }
      }
      workgroupBarrier();
    }
  }
  for (var w = lid; w < CB; w += WG) {
    for (var n = 0u; n < u.N; n++) { sh_acc[n * CB + w] = 0.0; }
  }

  // phase 1: the segments from the last, each chunk walked backwards
  var dD_acc = 0.0;
  var dBias_acc = 0.0;
  for (var sr = 0u; sr < u.nSeg; sr++) {
    let seg = u.nSeg - 1u - sr;
    let tk = seg * TS + k * ${L}u;
    // per step: g = dy silu(z) (the cotangent of C.h + D x), dsg = d dt / d delta, zf = dy silu'(z)
    // (dz = zf (C.h + D x)); dx, ddt and sp (C.h) are summed over the states
    ${each(
      L,
      (j) => `${stepIndex(j)}
    var x${j} = 0.0;
    var dt${j} = 0.0;
    var g${j} = 0.0;
    var dsg${j} = 0.0;
    var zf${j} = 0.0;
    if (ok${j}) {
      x${j} = x[i${j}];
      let r = raw_dt(i${j}, ec);
      dt${j} = step_dt(r);
      dsg${j} = ${p.deltaSoftplus ? 'mi_sigmoid(r)' : '1.0'};
      let q = dy[i${j}];
      ${p.hasZ ? `let zv = z[i${j}];\n      g${j} = q * zv * mi_sigmoid(zv);\n      zf${j} = q * mi_silu_grad(zv);` : `g${j} = q;`}
    }
    let bx${j} = dt${j} * x${j};
    var dx${j} = 0.0;
    var ddt${j} = 0.0;
    var sp${j} = 0.0;`,
    )}
    for (var n = 0u; n < u.N; n++) {
      let a = A_at(ec * N + n);
      let a2 = a * LOG2E;
      // 1. local: the state from zero, the decay, and the adjoint's sum over the chunk of
      //    (C g + dhs)_j prod_{i <= j} exp(dt_i A) (what it adds to dL/dh before the chunk)
      var h = 0.0;
      var p = 1.0;
      var gl = 0.0;
      ${each(
        L,
        (j) => `let ab${j} = exp2(dt${j} * a2);
      let bn${j} = B_at(bt${j} + n);
      let cn${j} = C_at(bt${j} + n);
      h = ab${j} * h + bx${j} * bn${j};
      p *= ab${j};
      let hl${j} = h;
      let pc${j} = p;
      gl += (${q(j)}) * p;`,
      )}
      sh_H[lid] = h;
      sh_P[lid] = p;
      sh_G[lid] = gl;
      workgroupBarrier();
      // 2. per channel: states forward from the segment's start, adjoints backward from its end
      for (var w = lid; w < 2u * CB; w += WG) {
        if (w < CB) {
          var carry = 0.0;
          if (e0 + w < u.E && seg > 0u) { carry = scr[${ck('seg', 'e0 + w')}]; }${
            p.hasH0
              ? `
          if (e0 + w < u.E && seg == 0u) { carry = h0_at((b * u.E + e0 + w) * N + n); }`
              : ''
          }
          ${composeForward}
        } else {
          let cw = w - CB;
          var carry = sh_cr[n * CB + cw];
          for (var kk = 0u; kk < u.NC; kk++) {
            let s = (NC - 1u - kk) * CB + cw;
            let gk = sh_G[s];
            sh_G[s] = carry;
            carry = sh_P[s] * carry + gk;
          }
          sh_cr[n * CB + cw] = carry;
        }
      }
      workgroupBarrier();
      // 3. this chunk backwards: lam = dL/dh_t
      let hs0 = sh_H[lid];
      var G = sh_G[lid];
      var dAl = 0.0;
      ${each(
        L,
        (j) => `{
        let ht = hl${j} + pc${j} * hs0;
        let hp = ${j === 0 ? 'hs0' : `hl${j - 1} + pc${j - 1} * hs0`};
        let lam = G + ${q(j)};
        sp${j} += cn${j} * ht;
        let dtl = dt${j} * lam;
        dx${j} += dtl * bn${j};
        let ahp = ab${j} * hp;
        ddt${j} += lam * (a * ahp + bn${j} * x${j});
        dAl += dtl * ahp;
        red[(k * ${L}u + ${j}u) * CBP + c] = dtl * x${j};
        red[(TS + k * ${L}u + ${j}u) * CBP + c] = g${j} * ht;
        G = lam * ab${j};
      }`,
        true,
      )}
      sh_A[lid] = dAl;
      workgroupBarrier();
      // dB, dC of this state: sums over the block's channels, one partial per channel block
      for (var w = lid; w < 2u * TS; w += WG) {
        var s = 0.0;
        for (var cc = 0u; cc < u.CB; cc++) { s += red[w * CBP + cc]; }
        let r = w % TS;
        let t = seg * TS + r;
        if (t < u.T) { scr[select(u.r_dB, u.r_dC, w >= TS) + ((eb * u.batch + b) * N + n) * u.T + t] = s; }
      }
      for (var w = lid; w < CB; w += WG) {
        var s = 0.0;
        for (var kk = 0u; kk < u.NC; kk++) { s += sh_A[kk * CB + w]; }
        sh_acc[n * CB + w] += s;
      }
    }
    ${each(
      L,
      (j) => `if (ok${j}) {
      let s = sp${j}${p.hasD ? ` + dv * x${j}` : ''};
      ${p.hasZ ? `put_dz(i${j}, zf${j} * s);` : ''}
      dx[i${j}] = dx${j}${p.hasD ? ` + g${j} * dv` : ''};
      let dd = ddt${j} * dsg${j};
      ddelta[i${j}] = dd;
      dD_acc += g${j} * x${j};
      dBias_acc += dd;
    }`,
    )}
  }
  // per channel: dA and dh0 from their owners, dD and d(delta bias) summed over the chunks
  for (var w = lid; w < 2u * CB; w += WG) {
    let cw = w % CB;
    let we = e0 + cw;
    if (we < u.E) {
      for (var n = 0u; n < u.N; n++) {
        if (w < CB) { scr[u.r_dA + (b * u.E + we) * N + n] = sh_acc[n * CB + cw]; }
        ${p.hasH0 ? 'else { scr[u.r_dh0 + (b * u.E + we) * N + n] = sh_cr[n * CB + cw]; }' : ''}
      }
    }
  }
  sh_H[lid] = dD_acc;
  sh_P[lid] = dBias_acc;
  workgroupBarrier();
  for (var w = lid; w < CB; w += WG) {
    var sD = 0.0;
    var sB = 0.0;
    for (var kk = 0u; kk < u.NC; kk++) { sD += sh_H[kk * CB + w]; sB += sh_P[kk * CB + w]; }
    if (e0 + w < u.E) {
      ${p.hasD ? 'scr[u.r_dD + b * u.E + e0 + w] = sD;' : ''}
      ${p.hasDeltaBias ? 'scr[u.r_dBias + b * u.E + e0 + w] = sB;' : ''}
    }
  }
}`;
  const passes: ComputePass[] = [
    packPass('scan_bwd pack', ins, p, regions, scr),
    computePass({
      label: 'scan_bwd',
      uniforms: {
        batch: ['u32', batch],
        T: ['u32', T],
        E: ['u32', E],
        nEB: ['u32', nEB],
        nSeg: ['u32', nSeg],
        ...LOOP_BOUNDS(N, NC, CB),
        ...offsetFields('r_', OUT_REGIONS, region),
        ...offsetFields('o_', packed, region),
      },
      buffers: bufs,
      code,
      foldable: true,
      workgroups: [Math.max(1, batch * nEB), 1, 1],
    }),
    sumPartialsPass('scan_bwd dA sum', batch, E * N, scr, output(outIndex.dA), region.dA),
    sumTransposedPass('scan_bwd dB sum', p, nEB, scr, region.dB, output(outIndex.dB)),
    sumTransposedPass('scan_bwd dC sum', p, nEB, scr, region.dC, output(outIndex.dC)),
  ];
  if (p.hasD) passes.push(sumPartialsPass('scan_bwd dD sum', batch, E, scr, output(outIndex.dD), region.dD));
  if (p.hasDeltaBias) passes.push(sumPartialsPass('scan_bwd ddeltaBias sum', batch, E, scr, output(outIndex.dBias), region.dBias));
  // dh0 (and dz with dhs) have no sum to do: one "block" copies each out of scratch
  if (p.hasH0) passes.push(sumPartialsPass('scan_bwd dh0 copy', 1, batch * E * N, scr, output(outIndex.dh0), region.dh0));
  if (dzInScratch) passes.push(sumPartialsPass('scan_bwd dz copy', 1, BT * E, scr, output(outIndex.dz), region.dz));
  return { passes, scratch: [Math.max(4, regions.size * 4)] };
};
