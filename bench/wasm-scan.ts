// The WebAssembly SIMD selective scan (engine/wasm/kernels/scan.ts) against the CPU backend's
// scalar TypeScript kernel (engine/cpu/kernels/scan.ts, float64 state), one thread each, in the
// same run: forward and backward, in ns per (t, e, n) step, at a toy shape (b8 T256 E128 N16) and
// the 130m model's (b1 T128 E1536 N16), with the model's flags (D, z, delta bias, softplus).
// Each figure is the best of 3 timed calls after warm-up calls (the scalar kernel's first calls
// run V8's baseline code), as wall-clock time and, in brackets, as this process's CPU time.
// `uptime`'s load average is printed before and after: the machine is shared, so a wall-clock
// figure is only as good as the load it ran under (the CPU time is steadier).
//   npx tsx bench/wasm-scan.ts [--quick] [--variants]
//   --variants: also the generated code's options, one at a time away from the default (states per
//   pass forward and backward, exp degree, hoisted constants)
import { loadavg } from 'node:os';
import { scanBatches, scanBwdBatches, scanBwdCombine, scanBwdPartialSize } from '../engine/cpu/kernels/scan.ts';
import type { KernelParams, ScanParams } from '../engine/kernels.ts';
import { Rng } from '../engine/random.ts';
import { DEFAULT_OPTIONS, type ScanCodegenOptions } from '../engine/wasm/kernels/scan/codegen.ts';
import { scanKernels } from '../engine/wasm/kernels/scan.ts';
import { WasmHeap } from '../engine/wasm/memory.ts';
import { MIXER_SCAN_FLAGS } from './lib/scan.ts';
import { reportErrorsAsOneLine } from '../steps/cli-main.ts';

reportErrorsAsOneLine(); // a failure is one line `error: ...`, exit 1 (2 for a bad flag)

const quick = process.argv.includes('--quick');
const withVariants = process.argv.includes('--variants');
const rng = new Rng('bench/wasm-scan');
const heap = new WasmHeap({ initialPages: 2048 });

/** The best of `reps` timed calls after `warm` untimed ones: wall-clock ms, and this process's CPU ms (user + system: less disturbed by other jobs on the machine, which only take the CPU away). */
function best(fn: () => void, reps: number, warm: number): { wall: number; cpu: number } {
  for (let i = 0; i < warm; i++) fn();
  let wall = Infinity,
    cpu = Infinity;
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    fn();
    wall = Math.min(wall, performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1000);
  }
  return { wall, cpu };
}

function array(n: number, f: () => number): Float32Array {
  const a = heap.allocF32(n);
  for (let i = 0; i < n; i++) a[i] = f();
  return a;
}

const load = () =>
  `load average ${loadavg()
    .map((x) => x.toFixed(2))
    .join(' ')}`;

function run(label: string, batch: number, T: number, E: number, N: number): void {
  const p: ScanParams = { batch, T, E, N, ...MIXER_SCAN_FLAGS };
  const pb: KernelParams['scan_bwd'] = { ...p, hasDhT: false, hasDhs: false };
  const randn = () => rng.normal();
  const ins = [
    array(batch * T * E, randn), // x
    array(batch * T * E, () => rng.normal() - 2), // delta before the softplus
    array(E * N, () => -(1 + Math.floor(rng.uniform() * N))), // A = -(1..N), as S4D-real
    array(batch * T * N, randn),
    array(batch * T * N, randn),
    array(E, randn), // D
    array(batch * T * E, randn), // z
    array(E, () => 0.5 * rng.normal()), // delta bias
  ];
  const dy = array(batch * T * E, randn);
  const outs = [array(batch * T * E, () => 0), array(batch * E * N, () => 0)];
  const bIns = [...ins, dy];
  const sizes = [batch * T * E, batch * T * E, E * N, batch * T * N, batch * T * N, E, batch * T * E, E];
  const bOuts = sizes.map((n) => array(n, () => 0));
  const steps = batch * T * E * N;
  const ns = (ms: number) => ((ms * 1e6) / steps).toFixed(2);
  const fmt = (t: { wall: number; cpu: number }) => `${ns(t.wall).padStart(6)} (cpu ${ns(t.cpu).padStart(5)})`;
  const partials = new Float64Array(scanBwdPartialSize(pb));
  const sf = best(() => scanBatches(ins, outs, p, 0, batch), 3, 2);
  const sb = best(
    () => {
      scanBwdBatches(bIns, bOuts, pb, 0, batch, partials);
      scanBwdCombine(bOuts, pb, partials);
    },
    3,
    2,
  );
  const line = (name: string, o: ScanCodegenOptions) => {
    const k = scanKernels(o);
    const wf = best(() => k.scan.run(heap, ins, outs, p), 3, 3);
    const wb = best(() => k.scan_bwd.run(heap, bIns, bOuts, pb), 3, 2);
    console.log(
      `${label.padEnd(18)} ${name.padEnd(22)} forward: scalar ${fmt(sf)} wasm ${fmt(wf)} ns/step (${(sf.wall / wf.wall).toFixed(1)}x)   backward: scalar ${fmt(sb)} wasm ${fmt(wb)} ns/step (${(sb.wall / wb.wall).toFixed(1)}x)`,
    );
  };
  line('default', DEFAULT_OPTIONS);
  if (withVariants) {
    // one option at a time away from the default
    const d = DEFAULT_OPTIONS;
    for (const nb of [1, 2, 4]) if (nb !== d.nb) line(`forward states ${nb}`, { ...d, nb });
    for (const bnb of [1, 2]) if (bnb !== d.bnb) line(`backward states ${bnb}`, { ...d, bnb });
    line(`exp degree ${d.degree === 5 ? 6 : 5}`, { ...d, degree: d.degree === 5 ? 6 : 5 });
    line(d.hoist ? 'constants inline' : 'constants hoisted', { ...d, hoist: !d.hoist });
  }
  for (const a of [...ins, dy, ...outs, ...bOuts]) heap.free(a.byteOffset);
}

console.log(load());
run('b8 T256 E128 N16', 8, 256, 128, 16);
if (!quick) run('b1 T128 E1536 N16', 1, 128, 1536, 16);
console.log(load());
