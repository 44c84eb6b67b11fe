// Prints the WebGPU adapter the engine would use, as one JSON line: vendor, architecture, device,
// description, software or hardware (engine/wgsl/adapter.ts, with the reason), the device limits
// the kernels ask for, the optional features granted, and the subgroup sizes; then a line saying
// what `--backend auto` would pick. Exit 0 with an adapter (1 with --hardware when it is a
// software one), 3 without.
//   npx tsx scripts/probe-adapter.ts [--hardware]
import { parseArgs } from 'node:util';
import { acquireDevice } from '../engine/wgsl/device.ts';

const { values } = parseArgs({ options: { hardware: { type: 'boolean' } } });
try {
  const d = await acquireDevice();
  const lim = d.device.limits;
  const info = d.adapter.info as GPUAdapterInfo & { subgroupMinSize?: number; subgroupMaxSize?: number };
  const record = {
    adapter: d.adapterInfo,
    limits: {
      maxStorageBufferBindingSize: lim.maxStorageBufferBindingSize,
      maxBufferSize: lim.maxBufferSize,
      maxStorageBuffersPerShaderStage: lim.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: lim.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: lim.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupsPerDimension: lim.maxComputeWorkgroupsPerDimension,
    },
    features: [...d.features].sort(),
    adapterFeatures: [...d.adapter.features].sort(),
    subgroups: info.subgroupMinSize ? { min: info.subgroupMinSize, max: info.subgroupMaxSize } : null,
  };
  console.log(JSON.stringify(record));
  const a = d.adapterInfo;
  console.log(
    a.software
      ? `software adapter (${a.why}): --backend auto would use the CPU; --backend webgpu uses it at CPU speed`
      : `hardware adapter (${a.why}): --backend auto uses WebGPU`,
  );
  d.device.destroy();
  process.exit(values.hardware && a.software ? 1 : 0);
} catch (e) {
  console.log(JSON.stringify({ adapter: null, error: (e as Error).message }));
  process.exit(3);
}
