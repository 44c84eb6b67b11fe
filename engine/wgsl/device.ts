// Acquiring a WebGPU device: Dawn (npm `webgpu`) in Node, navigator.gpu in a browser. The device
// asks for the adapter's own limits (a bare requestDevice() gets the small spec defaults) and for
// the optional features the adapter has.
import { type AdapterSummary, adapterFacts, adapterLabel, classifyAdapter } from './adapter.ts';

/** The device and everything that must stay reachable while it lives. */
export interface AcquiredDevice {
  device: GPUDevice;
  adapter: GPUAdapter;
  /**
   * The GPU object that made the adapter. In Node it must outlive the device: when Dawn's GPU
   * object is garbage-collected while its device is in use, Node aborts at random (futex and
   * pthread errors; see shared/notes/webgpu-in-node.md). Holding it here keeps it alive.
   */
  gpu: GPU;
  /** "webgpu (nvidia hopper: NVIDIA H100 ...)". */
  description: string;
  /** vendor, architecture, description, and whether it is a software adapter (adapter.ts) */
  adapterInfo: AdapterSummary;
  features: Set<string>;
}

// Limits the kernels rely on; each is requested at the adapter's own value.
const LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupsPerDimension',
] as const;

const OPTIONAL_FEATURES = ['timestamp-query', 'subgroups', 'shader-f16'] as const;

/** Dawn's GPU object, made once per process and never released (see AcquiredDevice.gpu). */
let nodeGpu: Promise<GPU> | null = null;

function getGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return Promise.resolve(nav.gpu);
  nodeGpu ??= createNodeGpu().catch((e) => {
    nodeGpu = null;
    throw e;
  });
  return nodeGpu;
}

async function createNodeGpu(): Promise<GPU> {
  if (typeof process === 'undefined' || !process.versions?.node) {
    throw new Error('webgpu: this browser has no navigator.gpu');
  }
  // Mesa's software Vulkan driver prints errors at start without a runtime folder.
  if (!process.env.XDG_RUNTIME_DIR) {
    const { mkdtempSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    process.env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), 'mi-xdg-'));
  }
  // A dynamic import with a computed name, so that a browser bundler never follows it.
  const name = 'webgpu';
  const mod = (await import(/* @vite-ignore */ name)) as { create: (opts: string[]) => GPU; globals: object };
  // GPUBufferUsage, GPUMapMode, ... as globals, as in a browser
  Object.assign(globalThis, mod.globals);
  // Dawn rounds timestamp-query values to 2^15 ns (32.8 us) by default, coarser than most kernels;
  // WebGpuBackend.profile() needs them as the GPU gives them.
  return mod.create(['disable-dawn-features=timestamp_quantization']);
}

/**
 * The adapter that acquireDevice would get, classified (adapter.ts), without making a device; null
 * when there is none. Throws when WebGPU itself cannot be loaded.
 */
export async function probeAdapter(): Promise<AdapterSummary | null> {
  const gpu = await getGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  return adapter ? classifyAdapter(adapterFacts(adapter)) : null;
}

export type DeviceLimitName = (typeof LIMITS)[number];

export interface AcquireOptions {
  /**
   * Limits to request below the adapter's own, e.g. `{ maxStorageBuffersPerShaderStage: 8 }` to
   * check that the kernels fit a spec-default device on a more generous adapter. A value above
   * the adapter's is an error; one below the spec default gets the default (WebGPU's rule).
   */
  limits?: Partial<Record<DeviceLimitName, number>>;
}

/**
 * A new device on a new adapter: each call is independent (an adapter gives one device, but
 * requestAdapter may be called again), so a test can hold a lowered-limit device beside the
 * shared one.
 */
export async function acquireDevice(options: AcquireOptions = {}): Promise<AcquiredDevice> {
  const gpu = await getGpu();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new Error('webgpu: requestAdapter() found no adapter');
  const requiredLimits: Record<string, number> = {};
  for (const k of LIMITS) requiredLimits[k] = adapter.limits[k];
  for (const [k, v] of Object.entries(options.limits ?? {})) {
    if (!(LIMITS as readonly string[]).includes(k))
      throw new Error(`webgpu: acquireDevice: unknown limit '${k}' (known: ${LIMITS.join(', ')})`);
    if (!(v <= adapter.limits[k as DeviceLimitName]))
      throw new Error(`webgpu: acquireDevice: ${k} = ${v} is above the adapter's ${adapter.limits[k as DeviceLimitName]}`);
    requiredLimits[k] = v;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures, label: 'mamba-interp' });
  const adapterInfo = classifyAdapter(adapterFacts(adapter));
  const description = `webgpu (${adapterLabel(adapterInfo)})`;
  return { device, adapter, gpu, description, adapterInfo, features: new Set(requiredFeatures) };
}
