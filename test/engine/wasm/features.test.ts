// The feature check of engine/wasm/features.ts in Node: WebAssembly SIMD (a validated probe
// module), shared memory and synchronous compilation are all there; MI_WASM is read once.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { wasmFeatures } from '../../../engine/wasm/features.ts';

const test = suite('wasm features');

test('Node 20 has WebAssembly SIMD, shared memory and synchronous compilation', () => {
  const f = wasmFeatures();
  assert.equal(
    { wasm: f.wasm, simd: f.simd, sharedMemory: f.sharedMemory, syncCompile: f.syncCompile },
    {
      wasm: true,
      simd: true,
      sharedMemory: true,
      syncCompile: true,
    },
  );
  assert.is(f.switchedOff, process.env.MI_WASM === '0');
  assert.is(wasmFeatures(), f, 'detected once');
});

test.run();
