// Child process of test/engine/cpu/backend.test.ts (run with and without MI_WASM=0): one float32
// matmul on the CPU backend, compared bit for bit with the scalar kernel (float64 sums rounded
// once, engine/cpu/kernels/matmul.ts) and with the WebAssembly kernel (float32 sums in k order) on
// arrays of their own; prints one JSON line: the backend's description and which one it matched.
//   MI_WASM=0 npx tsx test/helpers/wasm-switch.ts
import { matmul } from '../../engine/cpu/kernels/matmul.ts';
import * as mi from '../../engine/index.ts';
import { wasmMatmul } from '../../engine/wasm/kernels/matmul.ts';
import { WasmHeap } from '../../engine/wasm/memory.ts';
import { Gen } from '../engine/kernel-cases.ts';

const [M, N, K] = [37, 29, 513];
const g = new Gen('wasm-switch');
const a = g.randn(M * K),
  b = g.randn(K * N);
const p = { batch: 1, M, N, K, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0 };
const cpu = mi.cpuBackend();
const got = mi.tidy(() => mi.matmul(mi.tensor(a, [M, K]), mi.tensor(b, [N, K]), { transB: true }).dataSync() as Float32Array);

const scalar = new Float32Array(M * N);
matmul([a, b], [scalar], p);
const heap = new WasmHeap({ initialPages: 64 });
const [ha, hb, hout] = [a, b, scalar].map((x) => heap.allocF32(x.length));
ha.set(a);
hb.set(b);
wasmMatmul(heap, [ha, hb], [hout], p);

const same = (x: Float32Array, y: Float32Array) => x.every((v, i) => Object.is(v, y[i]));
console.log(
  JSON.stringify({ description: cpu.description, scalar: same(got, scalar), wasm: same(got, hout), differ: !same(scalar, hout) }),
);
