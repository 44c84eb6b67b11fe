// The selective scan's flags as the Mamba mixer runs it in a forward pass: skip connection D, gate
// z, delta bias with softplus; no initial state, no saved states. The CPU, WebGPU and WebAssembly
// scan benchmarks (cpu.ts, webgpu.ts, wasm-scan.ts) time the scan with these.
import type { ScanParams } from '../../engine/kernels.ts';

export const MIXER_SCAN_FLAGS: Omit<ScanParams, 'batch' | 'T' | 'E' | 'N'> = {
  hasD: true,
  hasZ: true,
  hasH0: false,
  hasDeltaBias: true,
  deltaSoftplus: true,
  saveStates: false,
};
