// Placeholder until the WebGPU backend lands (issue 3).
import type { Backend } from '../backend.ts';
export async function createWebGpuBackend(): Promise<Backend> {
  throw new Error('the WebGPU backend is not built yet');
}
