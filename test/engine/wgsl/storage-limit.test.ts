// WebGPU guarantees only 8 storage buffers per shader stage (Chromium on SwiftShader allows 10;
// lavapipe, which the other Node suites use, 16). Every pass of every WGSL kernel must fit in 8:
// - statically: the plans of every case of test/engine/kernel-cases.ts, and of scan/scan_bwd in
//   every flag combination, bind at most 8 buffers, and bind only buffers the kernel was given;
// - on a device: a second WebGPU device, created with maxStorageBuffersPerShaderStage 8, runs the
//   fused kernels' parity cases (softmax ... scan_bwd, sae, sae_bwd, influence), and the backend's own check rejects a pass
//   that binds more, naming the kernel and the pass, before anything is recorded.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import type { Backend, Buffer } from '../../../engine/backend.ts';
import type { KernelName, KernelParams, ScanParams } from '../../../engine/kernels.ts';
import { acquireDevice } from '../../../engine/wgsl/device.ts';
import { WebGpuBackend } from '../../../engine/wgsl/backend.ts';
import type { BufferInfo, DeviceFacts, KernelPlan, WgslKernel } from '../../../engine/wgsl/kernel.ts';
import { WGSL_KERNELS } from '../../../engine/wgsl/kernels/index.ts';
import { runKernelCases } from '../kernel-cases.ts';
import { getWebGpu } from '../../helpers/webgpu.ts';

const LIMIT = 8;
const Limit = suite('webgpu: at most 8 storage buffers per pass');

/** WebGPU's default limits: what a kernel may assume on any device. */
const SPEC_DEFAULT_FACTS: DeviceFacts = { maxWorkgroupSize: 256, maxWorkgroupStorage: 16384, maxWorkgroupsPerDimension: 65535 };

function plan<K extends KernelName>(kernel: K, inputs: BufferInfo[], outputs: BufferInfo[], params: KernelParams[K]): KernelPlan {
  const impl = WGSL_KERNELS[kernel] as WgslKernel<K> | undefined;
  if (!impl) throw new Error(`no WGSL kernel '${kernel}'`);
  return impl(inputs, outputs, params, SPEC_DEFAULT_FACTS);
}

/** Problems of a plan: too many bindings, a binding to a buffer it was not given. */
function planProblems(what: string, p: KernelPlan, nIn: number, nOut: number): string[] {
  const problems: string[] = [];
  const bound = { input: new Set<number>(), output: new Set<number>() };
  for (const pass of p.passes) {
    if (pass.bindings.length > LIMIT) problems.push(`${what}: '${pass.label}' binds ${pass.bindings.length}`);
    for (const r of pass.bindings) {
      const have = r.kind === 'input' ? nIn : r.kind === 'output' ? nOut : (p.scratch?.length ?? 0);
      if (r.index >= have) problems.push(`${what}: '${pass.label}' binds ${r.kind} ${r.index} of ${have}`);
      if (r.kind !== 'scratch') bound[r.kind].add(r.index);
    }
  }
  // every output must be written by some pass (every input of a scan is read: none is optional)
  if (bound.output.size !== nOut) problems.push(`${what}: binds ${bound.output.size} of its ${nOut} outputs`);
  return problems;
}

/**
 * A CPU backend that also plans each kernel call as the WebGPU backend would, so the kernel
 * parity cases (every kernel, with their parameters) can be checked without a device.
 */
class PlanningBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly description = 'cpu, recording WGSL plans';
  readonly problems: string[] = [];
  readonly kernelsPlanned = new Set<KernelName>();
  maxBindings = 0;
  constructor(private readonly cpu: Backend) {}
  alloc(dtype: Parameters<Backend['alloc']>[0], size: number): Buffer {
    return this.cpu.alloc(dtype, size);
  }
  write(buf: Buffer, data: Parameters<Backend['write']>[1]): void {
    this.cpu.write(buf, data);
  }
  read(buf: Buffer) {
    return this.cpu.read(buf);
  }
  free(buf: Buffer): void {
    this.cpu.free(buf);
  }
  flush() {
    return this.cpu.flush();
  }
  liveBuffers(): number {
    return this.cpu.liveBuffers();
  }
  supports(dtype: Parameters<Backend['supports']>[0]): boolean {
    return this.cpu.supports(dtype);
  }
  run<K extends KernelName>(kernel: K, inputs: Buffer[], outputs: Buffer[], params: KernelParams[K]): void {
    const p = plan(kernel, inputs, outputs, params);
    this.kernelsPlanned.add(kernel);
    for (const pass of p.passes) this.maxBindings = Math.max(this.maxBindings, pass.bindings.length);
    this.problems.push(...planProblems(kernel, p, inputs.length, outputs.length));
    this.cpu.run(kernel, inputs, outputs, params);
  }
}

Limit('the WGSL plans of every kernel parity case bind at most 8 storage buffers per pass', async () => {
  const planning = new PlanningBackend(mi.cpuBackend());
  const results = await runKernelCases(planning, mi.cpuBackend());
  assert.ok(results.length > 100, `only ${results.length} cases ran`);
  assert.equal(
    Object.keys(WGSL_KERNELS).filter((k) => !planning.kernelsPlanned.has(k as KernelName)),
    [],
    'kernels with no case',
  );
  assert.equal(planning.problems, []);
  assert.ok(planning.maxBindings <= LIMIT && planning.maxBindings >= 4, `most bindings in a pass: ${planning.maxBindings}`);
});

const SCAN_FLAGS = ['hasD', 'hasZ', 'hasH0', 'hasDeltaBias', 'deltaSoftplus', 'saveStates'] as const;

Limit('scan and scan_bwd plans bind at most 8 storage buffers per pass in all 64 x 4 flag combinations', () => {
  const f = (n: number): BufferInfo => ({ size: n, dtype: 'float32' });
  const [batch, T, E, N] = [2, 9, 3, 4];
  const problems: string[] = [];
  let most = 0;
  for (let mask = 0; mask < 64; mask++) {
    const p = Object.fromEntries(SCAN_FLAGS.map((k, i) => [k, !!(mask & (1 << i))])) as Omit<ScanParams, 'batch' | 'T' | 'E' | 'N'>;
    const sp: ScanParams = { batch, T, E, N, ...p };
    const ins = [f(batch * T * E), f(batch * T * E), f(E * N), f(batch * T * N), f(batch * T * N)];
    if (sp.hasD) ins.push(f(E));
    if (sp.hasZ) ins.push(f(batch * T * E));
    if (sp.hasH0) ins.push(f(batch * E * N));
    if (sp.hasDeltaBias) ins.push(f(E));
    const outs = [f(batch * T * E), f(batch * E * N)];
    if (sp.saveStates) outs.push(f(batch * T * E * N));
    const fwd = plan('scan', ins, outs, sp);
    problems.push(...planProblems(`scan flags=${mask.toString(2)}`, fwd, ins.length, outs.length));
    if (sp.saveStates) continue; // the backward has no saveStates
    for (const [hasDhT, hasDhs] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ]) {
      const bins = [...ins, f(batch * T * E)];
      if (hasDhT) bins.push(f(batch * E * N));
      if (hasDhs) bins.push(f(batch * T * E * N));
      const bwd = plan('scan_bwd', bins, ins, { ...sp, hasDhT, hasDhs });
      problems.push(...planProblems(`scan_bwd flags=${mask.toString(2)} dhT=${hasDhT} dhs=${hasDhs}`, bwd, bins.length, ins.length));
      for (const pass of [...fwd.passes, ...bwd.passes]) most = Math.max(most, pass.bindings.length);
    }
  }
  assert.equal(problems, []);
  // with every flag the backward's main pass needs all 8 (x, delta, z, dy, dhs, scratch, dx, ddelta)
  assert.is(most, LIMIT);
});

// ---- on a device whose limit is 8 ------------------------------------------------------------
const shared = await getWebGpu();
const limited = shared ? new WebGpuBackend(await acquireDevice({ limits: { maxStorageBuffersPerShaderStage: LIMIT } })) : null;
const FUSED: KernelName[] = [
  'softmax',
  'softmax_bwd',
  'cross_entropy',
  'cross_entropy_bwd',
  'rmsnorm',
  'rmsnorm_bwd',
  'conv1d',
  'conv1d_bwd',
  'topk',
  'scan',
  'scan_bwd',
  'sae',
  'sae_bwd',
  'influence',
];

Limit('acquireDevice({limits}) gives a device with maxStorageBuffersPerShaderStage 8, and refuses more than the adapter has', async () => {
  if (!limited) return;
  assert.is(limited.device.limits.maxStorageBuffersPerShaderStage, LIMIT);
  const adapterMax = limited.adapter.limits.maxStorageBuffersPerShaderStage;
  try {
    await acquireDevice({ limits: { maxStorageBuffersPerShaderStage: adapterMax + 1 } });
    assert.unreachable("a limit above the adapter's was accepted");
  } catch (e) {
    assert.match((e as Error).message, `maxStorageBuffersPerShaderStage = ${adapterMax + 1} is above the adapter's ${adapterMax}`);
  }
});

Limit("the fused kernels' parity cases (softmax ... scan_bwd with every flag, sae, sae_bwd, influence) pass on that device", async () => {
  if (!limited) return;
  let made = 0;
  const results = await runKernelCases(
    async () => {
      // a device error ends a backend (see engine/wgsl/backend.ts): a second one means a case failed
      if (made++) throw new Error('the limited backend failed in an earlier case');
      return limited;
    },
    mi.cpuBackend(),
    { kernels: FUSED, labels: ['gpu', 'cpu'] },
  );
  assert.equal([...new Set(results.map((r) => r.kernel))].sort(), [...FUSED].sort());
  const failed = results.filter((r) => !r.ok).map((r) => `${r.name}: ${r.detail}`);
  assert.equal(failed, [], `${failed.length} of ${results.length} cases failed:\n  ${failed.join('\n  ')}`);
});

Limit('the backend rejects a pass binding 9 storage buffers, naming kernel and pass, and stays usable', async () => {
  if (!limited) return;
  const fill = WGSL_KERNELS.fill!;
  const out = limited.alloc('float32', 4);
  try {
    WGSL_KERNELS.fill = (i, o, p, d) => {
      const real = fill(i, o, p, d);
      const pass = real.passes[0];
      return { passes: [{ ...pass, label: 'fill too wide', bindings: Array.from({ length: LIMIT + 1 }, () => pass.bindings[0]) }] };
    };
    assert.throws(
      () => limited.run('fill', [], [out], { size: 4, value: 1 }),
      (e: Error) =>
        e.message ===
        `webgpu: kernel 'fill', pass 'fill too wide' binds ${LIMIT + 1} storage buffers, more than this device's maxStorageBuffersPerShaderStage of ${LIMIT}`,
    );
  } finally {
    WGSL_KERNELS.fill = fill;
  }
  limited.run('fill', [], [out], { size: 4, value: 2.5 });
  assert.equal([...(await limited.read(out))], [2.5, 2.5, 2.5, 2.5]);
  limited.free(out);
});

if (!shared) console.log('webgpu storage-limit: device tests skipped (no adapter)');
Limit.run();
