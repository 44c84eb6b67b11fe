// The WebGPU backend for test suites: created once per process, or null where this machine has no
// adapter (suites then skip, after one line saying so). With REQUIRE_WEBGPU=1 a missing adapter
// is an error, so CI fails instead of silently skipping.
import type { Backend } from '../../engine/backend.ts';
import { createWebGpuBackend, type WebGpuBackend } from '../../engine/wgsl/backend.ts';

let attempt: Promise<WebGpuBackend | null> | null = null;

export function getWebGpu(): Promise<(Backend & WebGpuBackend) | null> {
  attempt ??= createWebGpuBackend().catch((e: Error) => {
    if (process.env.REQUIRE_WEBGPU === '1') {
      throw new Error(`REQUIRE_WEBGPU=1 but no WebGPU backend: ${e.message}`);
    }
    console.log(`webgpu: no adapter (${e.message}); WebGPU suites skip (set REQUIRE_WEBGPU=1 to fail instead)`);
    return null;
  });
  return attempt;
}
