// The Mamba selective scan on the GPU, forward and backward (maths in engine/ops/scan.ts):
//   dt = softplus(delta + bias) (as flagged), h_t = exp(dt A) h_{t-1} + dt B_t x_t,
//   y_t = (C_t . h_t + D x_t) * silu(z_t)
//
// Forward: a chunked scan. A workgroup owns (batch b, a block of CB channels); its threads are
// CB channels x NC chunks of time, each thread keeping all N states of its channel in registers.
//   1. each thread scans its chunk from a zero state, giving the chunk's end state H_c and the
//      sum S_c of its dt (the chunk's decay is exp(A S_c): the product of the exp(dt A));
//   2. the chunk carries compose (h -> exp(A S_c) h + H_c is associative), walked over NC chunks
//      per (channel, state), giving each chunk's true start state (h0 for chunk 0) and hT;
//   3. each thread rescans its chunk from that start state and writes y (and hs).
//
// Backward: the simpler kernel allowed by the issue, not the chunked one: one thread per (batch,
// channel, state) walks time serially. It recomputes the states forward, saving a checkpoint every
// CK steps into scratch, then walks back chunk by chunk, recomputing each chunk's CK states from
// its checkpoint into registers. Sums over the N states (dx, ddelta, dz) and over the channels of
// the workgroup (dB, dC) go through workgroup memory each step; the sums across workgroups (dA,
// dD, ddeltaBias over the batch, dB and dC over channel blocks) are partials in scratch added by
// a second pass (no float atomics).
//
// Storage buffers: WebGPU only guarantees 8 per shader stage (Chromium on SwiftShader allows 10),
// and the kernel contract has up to 9 inputs and 3 outputs forward, 12 and 9 backward. So a
// pack pass first copies the small inputs (A, D, deltaBias, h0, B, C and dhT: per channel, per
// state or per step, never [batch, T, E]-sized but B and C's [batch, T, N]) into regions of the one
// scratch buffer, which the main pass reads; the backward also writes dz into scratch and copies
// it out afterwards. Every pass then binds at most 8 buffers in every flag combination
// (test/engine/wgsl/storage-limit.test.ts checks all of them).
import { WGSL_ELEMENTWISE_PRELUDE } from '../../elementwise.ts';
import type { KernelParams, ScanParams } from '../../kernels.ts';
import type { BindingRef, ComputePass, DeviceFacts, KernelPlan, WgslKernel } from '../kernel.ts';
import { computePass, input, output, scratch, type Storage, type UniformFields } from '../layout.ts';
import { sumPartialsPass } from '../passes.ts';
import { groups, LINEAR_WID } from '../shader.ts';

/** Backward checkpoint interval: states recomputed per chunk live in a private array this long. */
const CK = 32;

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

function forwardShape(p: ScanParams, device: DeviceFacts): { CB: number; NC: number } {
  const CB = Math.max(1, Math.min(p.E, 16));
  const threads = Math.min(256, device.maxWorkgroupSize);
  // workgroup memory: S (1 float) and H (N floats) per thread
  const byMemory = Math.floor(device.maxWorkgroupStorage / (4 * (p.N + 1)));
  const NC = Math.max(1, Math.min(Math.floor(Math.min(threads, byMemory) / CB), p.T));
  if (CB * NC * (p.N + 1) * 4 > device.maxWorkgroupStorage) {
    throw new Error(
      `scan: N=${p.N} states need ${(p.N + 1) * 4 * CB} bytes of workgroup memory, the device has ${device.maxWorkgroupStorage}`,
    );
  }
  return { CB, NC };
}

export const scan: WgslKernel<'scan'> = (_i, _o, p, device): KernelPlan => {
  const { batch, T, E, N } = p;
  const { CB, NC } = forwardShape(p, device);
  const L = Math.ceil(T / NC);
  const nEB = Math.ceil(E / CB);
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
  const WG = CB * NC;
  const code = /* wgsl */ `
${packedAccessors('P', packed)}
${WGSL_ELEMENTWISE_PRELUDE}
${dtExpr(p)}
const N: u32 = ${N}u;
const CB: u32 = ${CB}u;
const NC: u32 = ${NC}u;
var<workgroup> sh_S: array<f32, ${WG}>;
var<workgroup> sh_H: array<f32, ${WG * N}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= u.batch * u.nEB) { return; }
  let b = g / u.nEB;
  let e0 = (g % u.nEB) * CB;
  let ch = lid % CB;
  let chunk = lid / CB;
  let e = e0 + ch;
  let valid = e < u.E;
  let t0 = min(u.T, chunk * u.L);
  let t1 = min(u.T, t0 + u.L);
  var a: array<f32, ${N}>;
  var h: array<f32, ${N}>;
  for (var n = 0u; n < N; n++) { a[n] = select(0.0, A_at(e * N + n), valid); h[n] = 0.0; }

  // 1. local scan of this chunk from a zero state
  var S = 0.0;
  if (valid) {
    for (var t = t0; t < t1; t++) {
      let i = (b * u.T + t) * u.E + e;
      let dt = step_dt(raw_dt(i, e));
      let bx = dt * x[i];
      let bt = (b * u.T + t) * N;
      S += dt;
      for (var n = 0u; n < N; n++) { h[n] = exp(dt * a[n]) * h[n] + bx * B_at(bt + n); }
    }
  }
  sh_S[lid] = S;
  for (var n = 0u; n < N; n++) { sh_H[lid * N + n] = h[n]; }
  workgroupBarrier();

  // 2. compose the chunk carries per (channel, state); sh_H becomes each chunk's start state
  for (var j = lid; j < CB * N; j += ${WG}u) {
    let c = j / N;
    let n = j % N;
    let ec = e0 + c;
    if (ec < u.E) {
      let an = A_at(ec * N + n);
      var carry = ${p.hasH0 ? 'h0_at((b * u.E + ec) * N + n)' : '0.0'};
      for (var k = 0u; k < NC; k++) {
        let slot = (k * CB + c) * N + n;
        let local_end = sh_H[slot];
        sh_H[slot] = carry;
        carry = exp(an * sh_S[k * CB + c]) * carry + local_end;
      }
      hT[(b * u.E + ec) * N + n] = carry;
    }
  }
  workgroupBarrier();

  // 3. rescan from the true start state, writing y (and hs)
  if (valid) {
    for (var n = 0u; n < N; n++) { h[n] = sh_H[lid * N + n]; }
    for (var t = t0; t < t1; t++) {
      let i = (b * u.T + t) * u.E + e;
      let dt = step_dt(raw_dt(i, e));
      let xv = x[i];
      let bx = dt * xv;
      let bt = (b * u.T + t) * N;
      var s = 0.0;
      for (var n = 0u; n < N; n++) {
        h[n] = exp(dt * a[n]) * h[n] + bx * B_at(bt + n);
        s += C_at(bt + n) * h[n];
        ${p.saveStates ? 'hs[i * N + n] = h[n];' : ''}
      }
      ${p.hasD ? 's += D_at(e) * xv;' : ''}
      ${p.hasZ ? 's *= z[i] * mi_sigmoid(z[i]);' : ''}
      y[i] = s;
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
          L: ['u32', L],
          nEB: ['u32', nEB],
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

export const scan_bwd: WgslKernel<'scan_bwd'> = (_i, _o, p: KernelParams['scan_bwd'], device): KernelPlan => {
  const { batch, T, E, N } = p;
  const threads = Math.min(256, device.maxWorkgroupSize);
  if (N > threads) throw new Error(`scan_bwd: N=${N} states exceed the ${threads} threads of a workgroup`);
  const CB = Math.max(1, Math.min(E, Math.floor(threads / N)));
  const WG = CB * N;
  const nEB = Math.ceil(E / CB);
  const nCk = Math.max(1, Math.ceil(T / CK));
  const BT = batch * T;
  // one scratch buffer, in regions: the packed inputs, the checkpoints, the partial sums and dz
  const ins = scanInputs(p, p);
  const packed = PACKED.filter((n) => ins.has(n));
  const sizes = packedSizes(p);
  const regions = new Regions();
  for (const n of packed) regions.take(n, sizes[n]);
  regions.take('ck', batch * E * nCk * N);
  regions.take('dA', batch * E * N);
  regions.take('dB', nEB * BT * N);
  regions.take('dC', nEB * BT * N);
  regions.take('dD', p.hasD ? batch * E : 0);
  regions.take('dBias', p.hasDeltaBias ? batch * E : 0);
  regions.take('dh0', p.hasH0 ? batch * E * N : 0);
  regions.take('dz', p.hasZ ? BT * E : 0);
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
  // at most x, delta, z, dy, dhs, scratch, dx, ddelta: 8 storage buffers
  const bufs: Storage[] = [read('x'), read('delta')];
  if (p.hasZ) bufs.push(read('z'));
  bufs.push(read('dy'));
  if (p.hasDhs) bufs.push(read('dhs'));
  bufs.push(['scr', 'f32', 'read_write', scr], ['dx', 'f32', 'read_write', output(0)], ['ddelta', 'f32', 'read_write', output(1)]);

  const code = /* wgsl */ `
${packedAccessors('scr', packed)}
${WGSL_ELEMENTWISE_PRELUDE}
${dtExpr(p)}
const N: u32 = ${N}u;
const CB: u32 = ${CB}u;
const CK: u32 = ${CK}u;
const WG: u32 = ${WG}u;
var<workgroup> r_x: array<f32, ${WG}>;
var<workgroup> r_dt: array<f32, ${WG}>;
var<workgroup> r_s: array<f32, ${WG}>;
var<workgroup> r_B: array<f32, ${WG}>;
var<workgroup> r_C: array<f32, ${WG}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.x + wid.y * nwg.x;
  if (g >= u.batch * u.nEB) { return; }
  let b = g / u.nEB;
  let eb = g % u.nEB;
  let e0 = eb * CB;
  let ch = lid / N;
  let n = lid % N;
  let e = e0 + ch;
  let valid = e < u.E;
  let a = select(0.0, A_at(e * N + n), valid);
  let sIdx = (b * u.E + e) * N + n;

  // forward: checkpoints of the state before every chunk of CK steps
  var h = ${p.hasH0 ? 'select(0.0, h0_at(sIdx), valid)' : '0.0'};
  if (valid) {
    for (var k = 0u; k < u.nCk; k++) {
      scr[u.r_ck + ((b * u.E + e) * u.nCk + k) * N + n] = h;
      let t1 = min(u.T, (k + 1u) * CK);
      for (var t = k * CK; t < t1; t++) {
        let i = (b * u.T + t) * u.E + e;
        let dt = step_dt(raw_dt(i, e));
        h = exp(dt * a) * h + dt * B_at((b * u.T + t) * N + n) * x[i];
      }
    }
  }

  // backward, chunk by chunk from the end
  var G = ${p.hasDhT ? 'select(0.0, dhT_at(sIdx), valid)' : '0.0'};  // dL/dh flowing into the current step
  var dA_acc = 0.0;
  var dD_acc = 0.0;
  var dBias_acc = 0.0;
  var hist: array<f32, ${CK}>;
  for (var kk = 0u; kk < u.nCk; kk++) {
    let k = u.nCk - 1u - kk;
    let t0 = k * CK;
    let len = min(u.T, t0 + CK) - t0;
    let h_start = select(0.0, scr[u.r_ck + ((b * u.E + e) * u.nCk + k) * N + n], valid);
    var hc = h_start;
    for (var j = 0u; j < len; j++) {
      let i = (b * u.T + t0 + j) * u.E + e;
      if (valid) {
        let dt = step_dt(raw_dt(i, e));
        hc = exp(dt * a) * hc + dt * B_at((b * u.T + t0 + j) * N + n) * x[i];
      }
      hist[j] = hc;
    }
    for (var jj = 0u; jj < len; jj++) {
      let j = len - 1u - jj;
      let t = t0 + j;
      let bt = (b * u.T + t) * N;
      var cx = 0.0; var cdt = 0.0; var cs = 0.0; var cB = 0.0; var cC = 0.0;
      if (valid) {
        let i = (b * u.T + t) * u.E + e;
        let dt = step_dt(raw_dt(i, e));
        let xv = x[i];
        ${p.hasZ ? 'let gate = dy[i] * z[i] * mi_sigmoid(z[i]);' : 'let gate = dy[i];'}
        ${p.hasDhs ? 'G += dhs[i * N + n];' : ''}
        let cn = C_at(bt + n);
        let bn = B_at(bt + n);
        G += gate * cn;
        let ht = hist[j];
        var hprev = h_start;
        if (j > 0u) { hprev = hist[j - 1u]; }
        let abar = exp(dt * a);
        cx = G * dt * bn;
        cdt = G * (a * abar * hprev + bn * xv);
        cs = cn * ht;
        cB = G * dt * xv;
        cC = gate * ht;
        dA_acc += G * dt * abar * hprev;
        G *= abar;
      }
      r_x[lid] = cx; r_dt[lid] = cdt; r_s[lid] = cs; r_B[lid] = cB; r_C[lid] = cC;
      workgroupBarrier();
      if (n == 0u && valid) {
        // per channel: sums over the N states
        var sx = 0.0; var sdt = 0.0; var ss = 0.0;
        for (var m = 0u; m < N; m++) { sx += r_x[lid + m]; sdt += r_dt[lid + m]; ss += r_s[lid + m]; }
        let i = (b * u.T + t) * u.E + e;
        let xv = x[i];
        let q = dy[i];
        ${
          p.hasZ
            ? `let zv = z[i];
        scr[u.r_dz + i] = q * (ss${p.hasD ? ' + D_at(e) * xv' : ''}) * mi_silu_grad(zv);
        let gate = q * zv * mi_sigmoid(zv);`
            : 'let gate = q;'
        }
        ${p.hasD ? 'sx += gate * D_at(e);\n        dD_acc += gate * xv;' : ''}
        dx[i] = sx;
        let r = raw_dt(i, e);
        let ddr = ${p.deltaSoftplus ? 'sdt * mi_sigmoid(r)' : 'sdt'};
        ddelta[i] = ddr;
        dBias_acc += ddr;
      }
      if (ch == 0u) {
        // per state: sums over this workgroup's channels, a partial over channel blocks
        var sB = 0.0; var sC = 0.0;
        for (var c = 0u; c < CB; c++) { sB += r_B[c * N + n]; sC += r_C[c * N + n]; }
        let pIdx = (eb * u.batch * u.T + b * u.T + t) * N + n;
        scr[u.r_dB + pIdx] = sB;
        scr[u.r_dC + pIdx] = sC;
      }
      workgroupBarrier();
    }
  }
  if (valid) {
    scr[u.r_dA + sIdx] = dA_acc;
    ${p.hasH0 ? 'scr[u.r_dh0 + sIdx] = G;' : ''}
    if (n == 0u) {
      ${p.hasD ? 'scr[u.r_dD + b * u.E + e] = dD_acc;' : ''}
      ${p.hasDeltaBias ? 'scr[u.r_dBias + b * u.E + e] = dBias_acc;' : ''}
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
        nCk: ['u32', nCk],
        ...offsetFields('r_', OUT_REGIONS, region),
        ...offsetFields('o_', packed, region),
      },
      buffers: bufs,
      code,
      foldable: true,
      workgroups: [Math.max(1, batch * nEB), 1, 1],
    }),
    sumPartialsPass('scan_bwd dA sum', batch, E * N, scr, output(outIndex.dA), region.dA),
    sumPartialsPass('scan_bwd dB sum', nEB, BT * N, scr, output(outIndex.dB), region.dB),
    sumPartialsPass('scan_bwd dC sum', nEB, BT * N, scr, output(outIndex.dC), region.dC),
  ];
  if (p.hasD) passes.push(sumPartialsPass('scan_bwd dD sum', batch, E, scr, output(outIndex.dD), region.dD));
  if (p.hasDeltaBias) passes.push(sumPartialsPass('scan_bwd ddeltaBias sum', batch, E, scr, output(outIndex.dBias), region.dBias));
  // dh0 and dz have no sum to do: one "block" copies each out of scratch
  if (p.hasH0) passes.push(sumPartialsPass('scan_bwd dh0 copy', 1, batch * E * N, scr, output(outIndex.dh0), region.dh0));
  if (p.hasZ) passes.push(sumPartialsPass('scan_bwd dz copy', 1, BT * E, scr, output(outIndex.dz), region.dz));
  return { passes, scratch: [Math.max(4, regions.size * 4)] };
};
