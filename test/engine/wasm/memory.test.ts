// The WebAssembly heap (engine/wasm/memory.ts): 16-byte aligned blocks, freed blocks reused and
// coalesced, growth up to the limit with views that see it, a clear error past the limit, a flat
// memory over many alloc/free cycles of mixed sizes; a non-shared heap (growth detaches views), a
// heap attached to another thread's memory (views only), the per-thread processHeap().
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import * as mi from '../../../engine/index.ts';
import { PAGE_BYTES, processHeap, WasmHeap } from '../../../engine/wasm/memory.ts';

const test = suite('wasm heap');

test('a shared memory; blocks 16-byte aligned, never at 0, disjoint', () => {
  const heap = new WasmHeap({ initialPages: 1, maximumPages: 64 });
  assert.ok(heap.memory.buffer instanceof SharedArrayBuffer);
  const blocks: [number, number][] = [];
  for (const n of [1, 3, 16, 17, 100, 0, 4096, 5]) {
    const off = heap.alloc(n);
    assert.ok(off > 0 && off % 16 === 0, `offset ${off} for ${n} bytes`);
    assert.is(heap.sizeOf(off), Math.max(16, Math.ceil(n / 16) * 16));
    blocks.push([off, heap.sizeOf(off)]);
  }
  blocks.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < blocks.length; i++) assert.ok(blocks[i - 1][0] + blocks[i - 1][1] <= blocks[i][0], 'blocks overlap');
});

test('freed blocks are reused; neighbours coalesce; the top comes down', () => {
  const heap = new WasmHeap({ initialPages: 1, maximumPages: 64 });
  const a = heap.alloc(64),
    b = heap.alloc(64),
    c = heap.alloc(64),
    d = heap.alloc(64);
  heap.free(b);
  assert.is(heap.alloc(48), b, 'a smaller request reuses the hole');
  heap.free(b);
  heap.free(c); // b and c coalesce into one 128-byte hole
  assert.is(heap.stats().free, 128);
  assert.is(heap.alloc(128), b, 'the coalesced hole takes a request neither half could');
  heap.free(d); // d was the highest block: the top comes down to it
  assert.is(heap.stats().top, d);
  assert.is(heap.stats().free, 0);
  heap.free(a);
  heap.free(b); // a and b merge and reach the top: the heap is empty again
  assert.equal({ ...heap.stats(), capacity: 0, limit: 0, peakTop: 0 }, { inUse: 0, free: 0, top: 16, peakTop: 0, capacity: 0, limit: 0 });
  assert.throws(() => heap.free(b), /not a live block/);
});

test('growth: the memory grows on demand; old views keep their data, new views see the new pages', () => {
  const heap = new WasmHeap({ initialPages: 1, maximumPages: 64 });
  const x = heap.allocF32(1000);
  x.fill(3.5);
  const before = heap.memory.buffer.byteLength;
  const big = heap.allocF32(200_000); // 800 KB: more than the first page
  assert.ok(heap.memory.buffer.byteLength > before);
  assert.ok(heap.stats().capacity >= heap.stats().top);
  big[big.length - 1] = 7;
  assert.is(x[999], 3.5, 'a view from before the growth still reads its block');
  assert.is(heap.f32(x.byteOffset, 1000)[0], 3.5);
  assert.is(new Float32Array(heap.memory.buffer, big.byteOffset, big.length)[big.length - 1], 7);
  assert.ok(heap.owns(x) && heap.owns(big));
  assert.is(heap.offsetOf(big), big.byteOffset);
  assert.not.ok(heap.owns(new Float32Array(4)));
  assert.throws(() => heap.offsetOf(new Float32Array(new SharedArrayBuffer(16))), /not a view of this heap/);
  assert.throws(() => heap.f32(x.byteOffset, 1001), /do not fit/);
});

test('a request past the limit: a RangeError naming the bytes wanted and the limit', () => {
  const heap = new WasmHeap({ initialPages: 1, maximumPages: 4 });
  heap.alloc(100_000);
  try {
    heap.alloc(300_000);
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, RangeError);
    const msg = (e as Error).message;
    assert.match(msg, /cannot allocate 300000 bytes/);
    assert.match(msg, /limit is 262144 bytes \(4 pages/);
    assert.match(msg, /100000 bytes are in use|100000|100016/);
  }
  // the heap is still usable after the failed request
  assert.ok(heap.alloc(100_000) > 0);
  assert.throws(() => new WasmHeap({ maximumPages: 65537 }), /maximumPages/);
  assert.throws(() => heap.alloc(-1));
});

test('memory flat over many cycles: repeated steps of mixed sizes, and random alloc/free with a bounded live set', () => {
  const rng = new mi.Rng('wasm-heap');
  // (1) a "training step": the same mixed sizes each step, freed in a shuffled order
  const heap = new WasmHeap({ initialPages: 1, maximumPages: 4096 });
  const sizes = Array.from({ length: 40 }, () => Math.floor(rng.uniform() * 50_000) + 1);
  const tops: number[] = [];
  for (let step = 0; step < 200; step++) {
    const offs = sizes.map((n) => heap.alloc(n));
    for (let i = offs.length - 1; i > 0; i--) {
      const j = Math.floor(rng.uniform() * (i + 1));
      [offs[i], offs[j]] = [offs[j], offs[i]];
    }
    for (const o of offs) heap.free(o);
    tops.push(heap.memory.buffer.byteLength);
    assert.is(heap.stats().inUse, 0);
    assert.is(heap.stats().top, 16, 'everything freed: the heap is empty');
  }
  assert.is(tops[199], tops[0], 'the memory did not grow after the first step');
  // (2) random: sizes from 16 B to 256 KB (log-uniform), live set capped at 8 MB
  const h2 = new WasmHeap({ initialPages: 1, maximumPages: 4096 });
  const live: number[] = [];
  let liveBytes = 0,
    peakLive = 0,
    peakTop = 0,
    topAt5k = 0;
  for (let op = 0; op < 20_000; op++) {
    const n = Math.floor(16 * 2 ** (rng.uniform() * 14));
    if (liveBytes + n <= 8 << 20 && (rng.uniform() < 0.55 || live.length === 0)) {
      const o = h2.alloc(n);
      live.push(o);
      liveBytes += h2.sizeOf(o);
    } else {
      const o = live.splice(Math.floor(rng.uniform() * live.length), 1)[0];
      liveBytes -= h2.sizeOf(o);
      h2.free(o);
    }
    assert.is(h2.stats().inUse, liveBytes);
    peakLive = Math.max(peakLive, liveBytes);
    peakTop = Math.max(peakTop, h2.stats().top);
    if (op === 5000) topAt5k = h2.memory.buffer.byteLength;
  }
  // fragmentation stays bounded: the high-water mark within 1.5x the peak live bytes, and the
  // memory no bigger after 20000 operations than after 5000
  assert.ok(peakTop <= 1.5 * peakLive, `top ${peakTop} vs peak live ${peakLive}`);
  assert.is(h2.memory.buffer.byteLength, topAt5k, `grew from ${topAt5k} to ${h2.memory.buffer.byteLength}`);
  for (const o of live) h2.free(o);
  assert.is(h2.stats().top, 16);
  assert.ok(h2.memory.buffer.byteLength <= 16 << 20, `${h2.memory.buffer.byteLength / PAGE_BYTES} pages`);
});

test('peakTop: the highest the top has been', () => {
  const heap = new WasmHeap({ initialPages: 1, maximumPages: 64 });
  const a = heap.alloc(1000),
    b = heap.alloc(1000);
  heap.free(b);
  heap.free(a);
  assert.equal([heap.stats().top, heap.stats().peakTop], [16, 16 + 1008 + 1008]);
});

test('a non-shared heap: growth detaches old views, generation counts it, new views see the data', () => {
  const heap = new WasmHeap({ initialPages: 1, maximumPages: 64, shared: false });
  assert.not.ok(heap.shared);
  assert.not.ok(heap.memory.buffer instanceof SharedArrayBuffer);
  const x = heap.allocF32(100);
  x.fill(2.5);
  const at = x.byteOffset,
    g = heap.generation;
  heap.allocF32(100_000);
  assert.is(heap.generation, g + 1);
  assert.is(x.length, 0, 'the old view is detached');
  const again = heap.viewAt('float32', at, 100);
  assert.is(again[99], 2.5);
  assert.ok(heap.owns(again));
});

test('a heap attached to another memory (a worker thread): views of it, no allocation', () => {
  const owner = new WasmHeap({ initialPages: 1, maximumPages: 64 });
  const x = owner.allocF32(10);
  x.set([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const worker = new WasmHeap({ memory: owner.memory });
  assert.ok(worker.attached && worker.shared);
  const v = worker.viewAt('float32', x.byteOffset, 10) as Float32Array;
  assert.is(v[9], 10);
  assert.ok(worker.owns(v));
  assert.is(worker.offsetOf(v), x.byteOffset);
  v[0] = -1;
  assert.is(x[0], -1, 'the same memory');
  assert.throws(() => worker.alloc(16), /does not allocate/);
  // the owner grows the memory: the attached heap's views see the new pages
  const big = owner.allocF32(200_000);
  big[199_999] = 42;
  assert.is((worker.viewAt('float32', big.byteOffset, 200_000) as Float32Array)[199_999], 42);
});

test('processHeap: one heap per thread, shared memory in Node', () => {
  assert.is(processHeap(), processHeap());
  assert.ok(processHeap().shared);
  assert.is(processHeap().limit, 2 ** 32);
});

test.run();
