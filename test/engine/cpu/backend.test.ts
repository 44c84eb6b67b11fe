// The CPU backend (engine/cpu/backend.ts): deterministic (a computation through many ops and its
// gradients, run twice, gives the same bits); its storage is the WebAssembly heap (every buffer a
// view of processHeap(), freed back to it), which a 10,000-step training loop keeps flat; a tensor
// past the heap's limit gets a one-line error; a non-shared heap (a page that is not cross-origin
// isolated) gives the same results though its growth detaches views; MI_WASM=0 gives the scalar
// kernels and says so. Derived blocks (a weight packed for the few-rows matmul, engine/cpu/derived.ts):
// built on a buffer's second use and reused, the same bits as without, dropped when the buffer is
// freed or written, bounded by the budget without rebuilding every cycle, given up for tensors.
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { suite, test } from 'uvu';
import * as assert from 'uvu/assert';
import { CpuBackend } from '../../../engine/cpu/backend.ts';
import { runWasmSplit, splitCounts, splitRange, threadsReady } from '../../../engine/cpu/threads.ts';
import * as mi from '../../../engine/index.ts';
import { packedBBytes, WASM_MATMUL } from '../../../engine/wasm/kernels/matmul.ts';
import { processHeap, WasmHeap } from '../../../engine/wasm/memory.ts';

test('determinism: the same computation twice gives identical bits, values and gradients', () => {
  const once = () =>
    mi.tidy(() => {
      const r = new mi.Rng('determinism');
      const x = mi.randn([2, 5, 3], r.fork('x'), { requiresGrad: true });
      const W = mi.randn([4, 3], r.fork('W'), { requiresGrad: true });
      const h = mi.silu(mi.linear(x, W));
      const s = mi.selectiveScan({
        x: mi.slice(h, 2, 0, 3),
        delta: mi.softplus(mi.slice(h, 2, 1, 4)),
        A: mi.neg(mi.exp(mi.randn([3, 2], r.fork('A')))),
        B: mi.slice(h, 2, 0, 2),
        C: mi.slice(h, 2, 2, 4),
        deltaSoftplus: true,
      });
      const loss = mi.crossEntropy(mi.rmsNorm(s.y, mi.ones([3])), mi.randint([2, 5], 0, 3, r.fork('t')));
      const g = mi.backwardFrom(loss);
      return [loss, g.get(x)!, g.get(W)!].map((t) => new Uint8Array((t.dataSync() as Float32Array).buffer));
    });
  const a = once(),
    b = once();
  for (let i = 0; i < a.length; i++) assert.equal([...a[i]], [...b[i]], `output ${i} bit for bit`);
  assert.ok(
    a[1].some((v) => v !== 0),
    'the gradient is not trivially zero',
  );
});

test.run();

const storage = suite('cpu backend storage (the WebAssembly heap)');

storage('every buffer is a view of the heap, allocated from it and freed back to it', () => {
  const cpu = mi.cpuBackend();
  const heap = processHeap();
  assert.is(cpu.heap, heap);
  const before = heap.stats().inUse;
  const bufs = (['float32', 'float64', 'int32'] as const).map((d) => cpu.alloc(d, 1001));
  for (const b of bufs) {
    const v = cpu.view(b);
    assert.ok(heap.owns(v), `${b.dtype} buffer is a view of the heap`);
    assert.is(v.byteOffset, b.offset);
    assert.is(v.length, 1001);
  }
  assert.is(heap.stats().inUse - before, 4016 + 8016 + 4016, 'blocks of 16-byte multiples');
  for (const b of bufs) cpu.free(b);
  assert.is(heap.stats().inUse, before);
  assert.throws(() => cpu.view(bufs[0]), /freed buffer/);
  // a buffer of a backend on another heap is refused (its offsets mean nothing here)
  const other = new CpuBackend({ heap: new WasmHeap({ initialPages: 1, maximumPages: 16 }) });
  const foreign = other.alloc('float32', 4);
  assert.throws(() => cpu.run('fill', [], [foreign], { size: 4, value: 1 }), /another heap/);
  other.free(foreign);
});

storage("a 10,000-step training loop keeps the heap's peak top, live bytes, live blocks and buffers flat after warm-up", () => {
  const cpu = mi.cpuBackend();
  const heap = processHeap();
  const rng = new mi.Rng('backend/flat');
  const g = { requiresGrad: true };
  const params = [
    mi.randn([32, 16], rng.fork('w1'), { ...g, std: 0.25 }),
    mi.zeros([32], g),
    mi.randn([4, 32], rng.fork('w2'), { ...g, std: 0.18 }),
    mi.zeros([4], g),
  ];
  const x = mi.randn([8, 16], rng.fork('x'));
  const y = mi.randint([8], 0, 4, rng.fork('y'));
  const opt = new mi.AdamW(params, { lr: 1e-2 });
  // between steps: what is live (the parameters, their moments, the data); the peak top is the most
  // the heap had to hold within any step
  const snap = () => ({
    peakTop: heap.stats().peakTop,
    inUse: heap.stats().inUse,
    blocks: heap.blocks(),
    liveBuffers: cpu.liveBuffers(),
    liveBytes: cpu.memory().liveBytes,
  });
  let warm = snap();
  let first = 0,
    last = 0;
  const t0 = performance.now();
  for (let step = 0; step < 10_000; step++) {
    mi.tidy(() => {
      const [w1, b1, w2, b2] = params;
      const loss = mi.crossEntropy(mi.linear(mi.silu(mi.linear(x, w1, b1)), w2, b2), y);
      mi.backward(loss);
      if (step === 0) first = loss.dataSync()[0];
      if (step === 9_999) last = loss.dataSync()[0];
    });
    opt.step();
    opt.zeroGrad();
    if (step === 99) warm = snap();
    else if (step > 99 && step % 1000 === 999) assert.equal(snap(), warm, `step ${step + 1} vs step 100`);
  }
  const ms = (performance.now() - t0) / 10_000;
  assert.ok(last < 0.5 * first, `the loop trains (loss ${first} -> ${last})`);
  assert.ok(ms < 20, `${ms.toFixed(2)} ms per step`);
  opt.dispose();
  for (const t of [...params, x, y]) t.dispose();
});

storage('a tensor past the heap limit: one line naming its bytes, the limit and the bytes in use', () => {
  // the process heap: 4 GiB, the wasm32 maximum (refused before any memory is grown)
  const cpu = mi.cpuBackend();
  const err = (f: () => unknown): string => {
    try {
      f();
    } catch (e) {
      assert.instance(e, RangeError);
      return (e as Error).message;
    }
    return assert.unreachable('no error') as never;
  };
  const big = err(() => mi.zeros([2 ** 15, 2 ** 15 + 1]));
  assert.not.match(big, /\n/);
  assert.match(big, /^cpu backend: cannot allocate a float32 tensor of 1073774592 elements \(4295098368 bytes\)/);
  assert.match(big, /the WebAssembly heap's limit is 4 GiB \(4294967296 bytes, the wasm32 maximum\) and \d+ bytes are in use$/);
  // a small heap, with something in use
  const small = new CpuBackend({ heap: new WasmHeap({ initialPages: 1, maximumPages: 16 }) });
  const held = small.alloc('float64', 10_000);
  const msg = err(() => small.alloc('float32', 300_000));
  assert.is(
    msg,
    "cpu backend: cannot allocate a float32 tensor of 300000 elements (1200000 bytes): the WebAssembly heap's limit is 1 MiB (1048576 bytes) and 80000 bytes are in use",
  );
  small.free(held);
  assert.is(small.liveBuffers(), 0);
  assert.ok(cpu.liveBuffers() >= 0);
});

storage('a non-shared heap (growth detaches old views): the same bits as the shared one', () => {
  const heap = new WasmHeap({ initialPages: 1, shared: false });
  assert.not.ok(heap.memory.buffer instanceof SharedArrayBuffer);
  const local = new CpuBackend({ heap });
  const rng = new mi.Rng('backend/non-shared');
  const a = mi.randn([70, 300], rng.fork('a')),
    b = mi.randn([300, 90], rng.fork('b'));
  const want = mi.tidy(() => mi.silu(mi.matmul(a, b)).dataSync());
  const la = mi.tensor(a.dataSync(), a.shape, { backend: local }),
    lb = mi.tensor(b.dataSync(), b.shape, { backend: local });
  const generation = heap.generation;
  const got = mi.tidy(() => {
    // grow the memory between the operands and the product: views made before are detached
    const filler = mi.zeros([600_000], { backend: local });
    const y = mi.silu(mi.matmul(la, lb)).dataSync();
    filler.dispose();
    return y;
  });
  assert.ok(heap.generation > generation, 'the memory grew');
  assert.equal([...got], [...want]);
  for (const t of [a, b, la, lb]) t.dispose();
  assert.is(local.liveBuffers(), 0);
});

storage('MI_WASM=0: the description says scalar, and float32 matmul equals the float64-summing scalar kernel bit for bit', async () => {
  const child = resolve(import.meta.dirname, '../../helpers/wasm-switch.ts');
  const tsx = resolve(import.meta.dirname, '../../../node_modules/.bin/tsx');
  const run = async (env: Record<string, string>) => {
    const { stdout } = await promisify(execFile)(tsx, [child], { env: { ...process.env, ...env }, timeout: 120_000 });
    return JSON.parse(stdout.trim().split('\n').pop()!) as { description: string; scalar: boolean; wasm: boolean; differ: boolean };
  };
  const off = await run({ MI_WASM: '0' });
  assert.match(
    off.description,
    /^cpu \(Node [\d.]+, scalar TypeScript kernels: WebAssembly SIMD switched off by MI_WASM=0, \d+ threads?\)$/,
  );
  assert.ok(off.differ, 'the case tells the two kernels apart');
  assert.equal([off.scalar, off.wasm], [true, false]);
  const on = await run({ MI_WASM: '1' });
  assert.match(on.description, /^cpu \(Node [\d.]+, WebAssembly SIMD, \d+ threads?\)$/);
  assert.equal([on.scalar, on.wasm], [false, true]);
  const bad = await run({ MI_WASM: 'yes' }).then(
    () => '',
    (e: Error & { stderr?: string }) => e.stderr ?? e.message,
  );
  assert.match(bad, /MI_WASM must be 0 \(scalar kernels\) or 1, got 'yes'/);
});

storage.run();

const derived = suite('cpu backend derived blocks (packed weights)');

const bits = (t: mi.Tensor) => [...new Uint32Array((t.dataSync() as Float32Array).buffer)];
/** A backend on its own heap (its stats are this test's alone), WebAssembly on. */
const ownBackend = (opts: { derivedBudget?: number; maximumPages?: number; shared?: boolean } = {}) =>
  new CpuBackend({ heap: new WasmHeap({ initialPages: 1, ...opts }), wasm: true, derivedBudget: opts.derivedBudget });
const packedSize = (out: number, inF: number) =>
  packedBBytes({ batch: 1, M: 1, N: out, K: inF, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0 });

derived('a weight is packed on its second use and reused after: the same bits each time; dropped (its bytes back) when freed', () => {
  const cpu = ownBackend();
  const rng = new mi.Rng('derived/reuse');
  const o = { backend: cpu };
  const empty = cpu.heap.stats().inUse;
  const W = mi.tensor(mi.randn([1029, 37], rng.fork('W')).dataSync(), [1029, 37], o);
  const before = cpu.heap.stats().inUse;
  const outs: number[][] = [];
  for (const M of [1, 1, 1, 3, 3, 8]) {
    mi.tidy(() => {
      const x = mi.tensor(mi.randn([M, 37], rng.fork(`x${outs.length}`)).dataSync(), [M, 37], o);
      const y = bits(mi.linear(x, W));
      // the same product without any derived block (the kernels on W where it lies)
      const plain = new CpuBackend({ heap: cpu.heap, wasm: true, derivedBudget: 0 });
      const [px, pW] = [x, W].map((t) => mi.tensor(t.dataSync(), t.shape, { backend: plain }));
      assert.equal(y, bits(mi.linear(px, pW)), `M=${M}: the same bits as without the packed weight`);
      outs.push(y);
    });
    const s = cpu.derivedBlocks();
    if (outs.length === 1) assert.equal([s.blocks, s.builds], [0, 0], 'first use: nothing built');
    else assert.equal([s.blocks, s.builds, s.hits], [1, 1, outs.length - 2], `use ${outs.length}: one block, built once`);
  }
  assert.is(cpu.derivedBlocks().bytes, packedSize(1029, 37));
  assert.is(cpu.heap.stats().inUse, before + packedSize(1029, 37), 'the block is all the heap holds beyond the tensors');
  W.dispose();
  assert.equal([cpu.derivedBlocks().blocks, cpu.derivedBlocks().bytes], [0, 0], 'dropped with the weight');
  assert.is(cpu.heap.stats().inUse, empty, "the weight's and the block's bytes returned");
  assert.is(cpu.liveBuffers(), 0);
});

derived('a write, or a kernel writing the buffer, drops its block: the next products read the new values', () => {
  const cpu = ownBackend();
  const rng = new mi.Rng('derived/write');
  const o = { backend: cpu };
  const W = mi.tensor(mi.randn([40, 16], rng.fork('W')).dataSync(), [40, 16], o);
  const x = mi.tensor(mi.randn([1, 16], rng.fork('x')).dataSync(), [1, 16], o);
  const product = () => mi.tidy(() => bits(mi.linear(x, W)));
  product();
  product();
  assert.is(cpu.derivedBlocks().blocks, 1);
  const fresh = mi.randn([40, 16], rng.fork('W2')).dataSync();
  cpu.write(W.buffer, fresh);
  assert.is(cpu.derivedBlocks().blocks, 0, 'write: dropped');
  const want = mi.tidy(() => bits(mi.linear(mi.tensor(x.dataSync(), [1, 16]), mi.tensor(fresh, [40, 16]))));
  for (let i = 0; i < 3; i++) assert.equal(product(), want, `after the write, product ${i + 1}`);
  assert.is(cpu.derivedBlocks().builds, 2, 'built again on its second use after the write');
  cpu.run('fill', [], [W.buffer], { size: 640, value: 0.5 });
  assert.is(cpu.derivedBlocks().blocks, 0, 'written by a kernel: dropped');
  const filled = mi.tidy(() => bits(mi.linear(mi.tensor(x.dataSync(), [1, 16]), mi.full([40, 16], 0.5))));
  for (let i = 0; i < 3; i++) assert.equal(product(), filled, `after the fill, product ${i + 1}`);
  for (const t of [W, x]) t.dispose();
  assert.is(cpu.derivedBlocks().bytes, 0);
});

derived('the budget bounds the bytes held; weights cycling past it are not rebuilt every cycle; colder blocks make room', () => {
  const size = packedSize(64, 32);
  const cpu = ownBackend({ derivedBudget: 2 * size });
  const rng = new mi.Rng('derived/budget');
  const o = { backend: cpu };
  const Ws = Array.from({ length: 5 }, (_, i) => mi.tensor(mi.randn([64, 32], rng.fork(`W${i}`)).dataSync(), [64, 32], o));
  const x = mi.tensor(mi.randn([2, 32], rng.fork('x')).dataSync(), [2, 32], o);
  const use = (W: mi.Tensor) => mi.tidy(() => void mi.linear(x, W).dataSync());
  // three weights in turn, a budget of two: two are built and stay, the third runs without
  for (let cycle = 0; cycle < 6; cycle++) for (const W of Ws.slice(0, 3)) use(W);
  let s = cpu.derivedBlocks();
  assert.equal([s.blocks, s.builds, s.bytes, s.budget], [2, 2, 2 * size, 2 * size], 'two built, once each');
  // the work moves on to two other weights: the first blocks are colder and give way
  for (let cycle = 0; cycle < 3; cycle++) for (const W of Ws.slice(3)) use(W);
  s = cpu.derivedBlocks();
  assert.equal([s.blocks, s.builds, s.bytes], [2, 4, 2 * size], 'the two new ones replace them');
  assert.ok(s.hits >= 2, 'and are used');
  // a block larger than the whole budget is never built
  const big = mi.tensor(mi.randn([200, 32], rng.fork('big')).dataSync(), [200, 32], o);
  for (let i = 0; i < 3; i++) use(big);
  assert.is(cpu.derivedBlocks().builds, 4);
  for (const t of [...Ws, x, big]) t.dispose();
  assert.equal(cpu.derivedBlocks().bytes, 0);
  // budget 0: nothing is ever built
  const none = ownBackend({ derivedBudget: 0 });
  const W0 = mi.ones([16, 8], { backend: none }),
    x0 = mi.ones([1, 8], { backend: none });
  for (let i = 0; i < 3; i++) mi.tidy(() => void mi.linear(x0, W0).dataSync());
  assert.is(none.derivedBlocks().builds, 0);
  for (const t of [W0, x0]) t.dispose();
});

derived('a block kept by one backend is dropped when another backend on the heap frees or writes its buffer', () => {
  const heap = new WasmHeap({ initialPages: 1 });
  const a = new CpuBackend({ heap, wasm: true }),
    b = new CpuBackend({ heap, wasm: true });
  const W = mi.ones([64, 16], { backend: a }),
    x = mi.ones([1, 16], { backend: a });
  const empty = heap.stats().inUse - 4 * (64 * 16 + 16);
  // x W^T on b, on a's buffers: the product whose derived block (W's packed form) b keeps
  const product = () => {
    const out = b.alloc('float32', 64);
    b.run('matmul', [x.buffer, W.buffer], [out], {
      batch: 1,
      M: 1,
      N: 64,
      K: 16,
      transA: false,
      transB: true,
      aBatchStride: 0,
      bBatchStride: 0,
    });
    return out;
  };
  // b runs the products on a's buffers and keeps the block
  for (let i = 0; i < 2; i++) {
    const out = product();
    b.free(out);
  }
  assert.equal([a.derivedBlocks().blocks, b.derivedBlocks().blocks], [0, 1]);
  a.write(W.buffer, new Float32Array(64 * 16).fill(2));
  assert.is(b.derivedBlocks().blocks, 0, "a's write drops b's block");
  for (let i = 0; i < 2; i++) {
    const out = product();
    assert.is(b.readSync(out)[5], 32, 'the product reads the new values');
    b.free(out);
  }
  assert.is(b.derivedBlocks().blocks, 1);
  W.dispose();
  x.dispose();
  assert.is(b.derivedBlocks().blocks, 0, "a's free drops b's block");
  assert.is(heap.stats().inUse, empty);
});

derived('a tensor that would not fit beside the blocks: the blocks are dropped, not the allocation', () => {
  // a 1 MiB heap: a 320 KB weight and its 320 KB block leave no room for a 500 KB tensor
  const cpu = ownBackend({ maximumPages: 16 });
  const o = { backend: cpu };
  const W = mi.ones([1000, 80], o),
    x = mi.ones([1, 80], o);
  for (let i = 0; i < 2; i++) mi.tidy(() => void mi.linear(x, W).dataSync());
  assert.is(cpu.derivedBlocks().blocks, 1);
  const t = mi.zeros([125_000], o);
  assert.is(cpu.derivedBlocks().blocks, 0, 'dropped to make room');
  t.dispose();
  assert.equal([...mi.tidy(() => mi.linear(x, W).dataSync()).subarray(0, 3)], [80, 80, 80]);
  for (const u of [W, x]) u.dispose();
});

derived('a non-shared heap grown by the packing (views detached): the same bits', () => {
  const cpu = ownBackend({ shared: false });
  const rng = new mi.Rng('derived/non-shared');
  const o = { backend: cpu };
  const W = mi.tensor(mi.randn([3000, 64], rng.fork('W')).dataSync(), [3000, 64], o);
  const x = mi.tensor(mi.randn([1, 64], rng.fork('x')).dataSync(), [1, 64], o);
  const first = mi.tidy(() => bits(mi.linear(x, W)));
  const generation = cpu.heap.generation;
  const second = mi.tidy(() => bits(mi.linear(x, W)));
  assert.ok(cpu.heap.generation > generation, 'the packing grew the memory');
  assert.is(cpu.derivedBlocks().blocks, 1);
  assert.equal(second, first);
  for (const t of [W, x]) t.dispose();
});

derived('split over the worker threads (parts claimed in turn), the packed weight read by every part: the bits of one thread', async () => {
  for (let i = 0; i < 300 && threadsReady() < 2; i++) await new Promise((r) => setTimeout(r, 50));
  if (threadsReady() < 2) return; // MI_CPU_THREADS=1 (threads.test.ts checks that the workers start)
  const cpu = new CpuBackend({ wasm: true });
  const one = new CpuBackend({ heap: new WasmHeap({ initialPages: 1 }), wasm: true });
  const rng = new mi.Rng('derived/threads');
  const Wd = mi.randn([4099, 768], rng.fork('W')).dataSync();
  const W = mi.tensor(Wd, [4099, 768], { backend: cpu }),
    W1 = mi.tensor(Wd, [4099, 768], { backend: one });
  const before = splitCounts['wasm matmul'] ?? 0;
  for (const M of [1, 1, 1, 2, 8]) {
    const xd = mi.randn([M, 768], rng.fork(`x${M}`)).dataSync();
    const y = mi.tidy(() => bits(mi.linear(mi.tensor(xd, [M, 768], { backend: cpu }), W)));
    const y1 = mi.tidy(() => bits(mi.linear(mi.tensor(xd, [M, 768], { backend: one }), W1)));
    assert.equal(y, y1, `M=${M}`);
  }
  assert.ok((splitCounts['wasm matmul'] ?? 0) - before >= 5, 'every product split');
  assert.equal([cpu.derivedBlocks().blocks, one.derivedBlocks().blocks], [1, 1]);
  for (const t of [W, W1]) t.dispose();
  // seven parts for two threads, claimed in turn: every output written, the bits of one thread
  const heap = processHeap();
  const p = { batch: 1, M: 301, N: 70, K: 230, transA: false, transB: true, aBatchStride: 0, bBatchStride: 0 };
  const [a, b, out, want] = [p.M * p.K, p.N * p.K, p.M * p.N, p.M * p.N].map((n) => heap.allocF32(n));
  for (const x of [a, b]) x.set(mi.randn([x.length], rng.fork(`ab${x.length}`)).dataSync());
  out.fill(Number.NaN);
  WASM_MATMUL.run(heap, [a, b], [want], p);
  assert.ok(runWasmSplit('matmul', WASM_MATMUL.split!, [a, b], [out], p, splitRange(p.M, 7, 4)));
  assert.equal(
    [...new Uint32Array(out.buffer, out.byteOffset, out.length)],
    [...new Uint32Array(want.buffer, want.byteOffset, want.length)],
  );
  for (const x of [a, b, out, want]) heap.free(x.byteOffset);
});

derived.run();
