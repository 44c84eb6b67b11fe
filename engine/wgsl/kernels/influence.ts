// The hidden attention of a selective scan on the GPU (maths in engine/ops/influence.ts):
//   alpha[b,e,t,s] = C_t . (prod_{r=s+1..t} exp(delta_r A_e)) delta_s B_s,  norm[b,t,s] over e.
//
// Main pass: one workgroup per (batch b, block of SB = 32 source positions s, group of channels).
// Its 256 threads are CE = 8 channel lanes x SB source lanes; each thread runs the impulse response
// of its (channel, s) forward in time with the N states in registers: h = delta_s B_s at t = s,
// then h *= exp(delta_t A) and alpha = C_t . h at every later t (a running product of decays: no
// prefix sums of delta, whose differences cancel catastrophically in float32 and whose
// exponentials under/overflow). Time advances in tiles of TB steps: the workgroup first stages
// the tile's decays exp(delta_t A[e,n]) for its CE channels (each computed once, not once per
// source lane) and C_t in workgroup memory, then every thread steps TB times, writing alpha
// (coalesced: neighbouring threads hold neighbouring s) and |alpha| (or alpha^2) into workgroup
// memory, where one thread per (t, s) of the tile sums the CE channel lanes into its cell of a
// partial map. A workgroup walks its group's channels CE at a time, adding into the same cells (each
// cell has one owner thread, so no atomics), and the number of channel groups is chosen so that
// short sequences still give the GPU enough workgroups.
// Finish pass: norm = the sum of the groups' partial maps, / E or square-rooted; 0 above the diagonal.
import type { KernelPlan, WgslKernel } from '../kernel.ts';
import { checkSize, computePass, input, output, scratch, type Storage } from '../layout.ts';
import { elementwiseGroups, elementwiseMain, LINEAR_WID } from '../shader.ts';

const CE = 8;
const SB = 32;
const WG = CE * SB;
/** workgroups the main pass aims for before it stops splitting channels into groups */
const TARGET_WORKGROUPS = 256;

export const influence: WgslKernel<'influence'> = (ins, outs, p, device): KernelPlan => {
  const { batch, T, E, N, saveAlpha } = p;
  for (const [i, b] of ins.entries())
    if (b.dtype !== 'float32') throw new Error(`influence: input ${i} is ${b.dtype}; the WebGPU kernel is float32 only`);
  checkSize('influence', 'delta', ins[0], batch * T * E);
  checkSize('influence', 'A', ins[1], E * N);
  checkSize('influence', 'B', ins[2], batch * T * N);
  checkSize('influence', 'C', ins[3], batch * T * N);
  checkSize('influence', 'norm', outs[0], batch * T * T);
  if (saveAlpha) checkSize('influence', 'alpha', outs[1], batch * E * T * T);
  if (device.maxWorkgroupSize < WG)
    throw new Error(`influence: needs workgroups of ${WG} threads, the device allows ${device.maxWorkgroupSize}`);
  // workgroup memory per step of a tile: decays CE x N, C_t N, the channel lanes' |alpha| CE x SB
  const perStep = 4 * (CE * N + N + CE * SB);
  const TB = Math.min(8, Math.floor(device.maxWorkgroupStorage / perStep));
  if (TB < 1)
    throw new Error(`influence: N=${N} states need ${perStep} bytes of workgroup memory, the device has ${device.maxWorkgroupStorage}`);
  const nSB = Math.ceil(T / SB);
  const chunks = Math.ceil(E / CE); // channel chunks of CE
  const want = Math.max(1, Math.min(chunks, Math.ceil(TARGET_WORKGROUPS / (nSB * batch))));
  const EJ = Math.ceil(chunks / want); // chunks per group
  const nG = Math.ceil(chunks / EJ);
  const abs = p.norm === 'mean_abs';
  const buffers: Storage[] = [
    ['delta', 'f32', 'read', input(0)],
    ['A', 'f32', 'read', input(1)],
    ['B', 'f32', 'read', input(2)],
    ['C', 'f32', 'read', input(3)],
    ['partial', 'f32', 'read_write', scratch(0)],
  ];
  if (saveAlpha) buffers.push(['alpha', 'f32', 'read_write', output(1)]);
  const alphaAt = '((b * u.E + e) * u.T + t) * u.T + s';
  const main = computePass({
    label: 'influence',
    uniforms: {
      batch: ['u32', batch],
      T: ['u32', T],
      E: ['u32', E],
      nSB: ['u32', nSB],
      nG: ['u32', nG],
      EJ: ['u32', EJ],
      nWork: ['u32', nSB * nG * batch],
    },
    buffers,
    foldable: true,
    workgroups: [nSB * nG * batch, 1, 1],
    code: /* wgsl */ `
const CE: u32 = ${CE}u;
const SB: u32 = ${SB}u;
const TB: u32 = ${TB}u;
const NS: u32 = ${N}u;
var<workgroup> dec: array<f32, ${TB * CE * N}>;
var<workgroup> cs: array<f32, ${TB * N}>;
var<workgroup> red: array<f32, ${TB * CE * SB}>;

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let w = ${LINEAR_WID};
  if (w >= u.nWork) { return; }
  let sb = w % u.nSB;
  let g = (w / u.nSB) % u.nG;
  let b = w / (u.nSB * u.nG);
  let el = lid / SB;
  let sl = lid % SB;
  let s0 = sb * SB;
  let s = s0 + sl;
  for (var j = 0u; j < u.EJ; j++) {
    let e0 = (g * u.EJ + j) * CE;
    let e = e0 + el;
    let live = e < u.E && s < u.T;
    var h: array<f32, ${N}>;
    var ds = 0.0;
    if (live) {
      ds = delta[(b * u.T + s) * u.E + e];
      ${saveAlpha ? `for (var t = 0u; t < s0; t++) { alpha[${alphaAt}] = 0.0; }` : ''}
    }
    for (var t0 = s0; t0 < u.T; t0 += TB) {
      // the tile's decays exp(delta_t A[e, n]) for the CE channels, and C_t
      for (var q = lid; q < TB * CE * NS; q += ${WG}u) {
        let t = t0 + q / (CE * NS);
        let ec = e0 + (q / NS) % CE;
        var v = 0.0;
        if (t < u.T && ec < u.E) { v = exp(delta[(b * u.T + t) * u.E + ec] * A[ec * NS + q % NS]); }
        dec[q] = v;
      }
      for (var q = lid; q < TB * NS; q += ${WG}u) {
        let t = t0 + q / NS;
        var v = 0.0;
        if (t < u.T) { v = C[(b * u.T + t) * NS + q % NS]; }
        cs[q] = v;
      }
      workgroupBarrier();
      for (var tt = 0u; tt < TB; tt++) {
        let t = t0 + tt;
        var a = 0.0;
        if (live && t >= s && t < u.T) {
          if (t == s) {
            for (var n = 0u; n < NS; n++) { h[n] = ds * B[(b * u.T + s) * NS + n]; }
          } else {
            for (var n = 0u; n < NS; n++) { h[n] = h[n] * dec[(tt * CE + el) * NS + n]; }
          }
          for (var n = 0u; n < NS; n++) { a += cs[tt * NS + n] * h[n]; }
        }
        ${saveAlpha ? `if (live && t < u.T) { alpha[${alphaAt}] = a; }` : ''}
        red[(tt * CE + el) * SB + sl] = ${abs ? 'abs(a)' : 'a * a'};
      }
      workgroupBarrier();
      // one thread per (t, s) of the tile sums the channel lanes into its partial cell
      if (lid < TB * SB) {
        let tt = lid / SB;
        let t = t0 + tt;
        let sc = s0 + lid % SB;
        if (t < u.T && sc < u.T) {
          var sum = 0.0;
          for (var q = 0u; q < CE; q++) { sum += red[(tt * CE + q) * SB + lid % SB]; }
          let cell = ((g * u.batch + b) * u.T + t) * u.T + sc;
          if (j == 0u) { partial[cell] = sum; } else { partial[cell] = partial[cell] + sum; }
        }
      }
      workgroupBarrier();
    }
  }
}`,
  });
  const cells = batch * T * T;
  const finish = computePass({
    label: 'influence norm',
    uniforms: { cells: ['u32', cells], T: ['u32', T], G: ['u32', nG], invE: ['f32', 1 / E] },
    buffers: [
      ['partial', 'f32', 'read', scratch(0)],
      ['norm', 'f32', 'read_write', output(0)],
    ],
    foldable: true,
    workgroups: elementwiseGroups(cells),
    code: elementwiseMain(
      'u.cells',
      /* wgsl */ `
  let t = (i / u.T) % u.T;
  let s = i % u.T;
  var v = 0.0;
  if (s <= t) {
    for (var g = 0u; g < u.G; g++) { v += partial[g * u.cells + i]; }
    v = ${abs ? 'v * u.invE' : 'sqrt(v)'};
  }
  norm[i] = v;`,
    ),
  });
  return { passes: [main, finish], scratch: [4 * Math.max(1, nG * cells)] };
};
