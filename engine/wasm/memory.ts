// One WebAssembly.Memory for the CPU backend's buffers and the WebAssembly kernels' scratch, and an
// allocator over it handing out byte offsets. The memory is shared (backed by a SharedArrayBuffer)
// where the engine allows it, so that worker threads can instantiate the same kernels on it and
// work on parts of one output in place; the kernel modules import it ("env" "memory"). In a
// browser a shared memory, like any SharedArrayBuffer, needs a cross-origin isolated page; a page
// that is not gets a non-shared memory (and no threads). One heap per thread of JavaScript:
// processHeap(). A worker thread attaches to the calling thread's memory (`memory` option): it
// makes views and runs kernels on it, and never allocates.
//
// Allocator: address-ordered first fit with coalescing. Blocks are multiples of 16 bytes at
// 16-byte offsets (v128 loads of a block's start are aligned). Free blocks are kept sorted by
// offset, each merged with its free neighbours on release, and a free block that reaches the top
// lowers the top instead, so the region above the top is one free span that only grows the memory
// when nothing below fits. Training and decoding allocate the same sizes step after step, and
// first fit over coalesced blocks then settles into the same offsets: the memory stays flat.
// Offset 0 is never handed out, so kernels can use it as a null pointer.
//
// Growth: WebAssembly memories only grow. Growing a shared memory does not detach views made
// before (they keep their length), but `memory.buffer` must be read again to view the new pages;
// growing a non-shared one detaches every view made before (length 0). Every view this heap makes
// reads the buffer afresh, and `generation` counts the growths, so that a holder of views knows
// when to make them again.
import type { DType } from '../dtype.ts';
import { wasmFeatures } from './features.ts';

/** Bytes in a WebAssembly page. */
export const PAGE_BYTES = 65536;
/** Pages of a wasm32 memory at most (4 GiB). */
export const WASM32_MAX_PAGES = 65536;
/** Alignment and size granule of every block. */
export const BLOCK_ALIGN = 16;

export interface HeapOptions {
  /** pages to start with (default 16: 1 MiB) */
  initialPages?: number;
  /**
   * pages the memory may grow to (default and at most 65536: 4 GiB). A shared memory reserves its
   * maximum's address space up front, so a smaller maximum suits constrained browsers.
   */
  maximumPages?: number;
  /** a shared memory (default: where the engine has them, wasmFeatures().sharedMemory) */
  shared?: boolean;
  /** attach to this existing memory instead (a worker thread): views only, no allocation */
  memory?: WebAssembly.Memory;
}

export interface HeapStats {
  /** bytes in live blocks */
  inUse: number;
  /** bytes in free blocks below the top */
  free: number;
  /** end of the highest block (everything above is unused) */
  top: number;
  /** the highest the top has been (what the memory had to hold at most) */
  peakTop: number;
  /** the memory's current size in bytes */
  capacity: number;
  /** the most the memory may grow to */
  limit: number;
}

type View = Float32Array | Float64Array | Int32Array | Uint8Array | Uint32Array;

const roundUp = (n: number, a: number) => Math.ceil(n / a) * a;

export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  /** the most bytes the memory may hold */
  readonly limit: number;
  /** whether the memory is shared (SharedArrayBuffer) */
  readonly shared: boolean;
  /** attached to another thread's memory: views only */
  readonly attached: boolean;
  /** how many times the memory has grown (views of a non-shared memory made before are detached) */
  generation = 0;
  private top = BLOCK_ALIGN;
  private peakTop = BLOCK_ALIGN;
  // free blocks below the top: parallel arrays sorted by offset, never two adjacent
  private freeOffsets: number[] = [];
  private freeSizes: number[] = [];
  private readonly live = new Map<number, number>();
  private inUse = 0;
  // every buffer object memory.buffer has returned (one per size the memory has had), to tell views
  // of this heap from other arrays
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private last: ArrayBufferLike | null = null;

  constructor(opts: HeapOptions = {}) {
    if (opts.memory) {
      this.memory = opts.memory;
      this.shared = typeof SharedArrayBuffer !== 'undefined' && opts.memory.buffer instanceof SharedArrayBuffer;
      this.attached = true;
      this.limit = (opts.maximumPages ?? WASM32_MAX_PAGES) * PAGE_BYTES;
      return;
    }
    const initial = opts.initialPages ?? 16;
    const maximum = opts.maximumPages ?? WASM32_MAX_PAGES;
    if (!(Number.isInteger(maximum) && maximum >= 1 && maximum <= WASM32_MAX_PAGES))
      throw new RangeError(`wasm heap: maximumPages ${maximum} outside 1..${WASM32_MAX_PAGES}`);
    if (!(Number.isInteger(initial) && initial >= 1 && initial <= maximum))
      throw new RangeError(`wasm heap: initialPages ${initial} outside 1..${maximum}`);
    this.shared = opts.shared ?? wasmFeatures().sharedMemory;
    this.attached = false;
    this.memory = new WebAssembly.Memory({ initial, maximum, shared: this.shared });
    this.limit = maximum * PAGE_BYTES;
  }

  /** The memory's current buffer (read afresh: after growth an older one does not show the new pages). */
  get buffer(): ArrayBufferLike {
    const b = this.memory.buffer;
    if (b !== this.last) {
      this.last = b;
      this.buffers.add(b);
    }
    return b;
  }

  /** A block of at least `bytes` bytes at a 16-byte aligned offset (contents undefined: freed blocks are reused as they are). */
  alloc(bytes: number): number {
    if (!(Number.isInteger(bytes) && bytes >= 0)) throw new RangeError(`wasm heap: cannot allocate ${bytes} bytes`);
    if (this.attached) throw new Error("wasm heap: a heap attached to another thread's memory does not allocate");
    const size = Math.max(BLOCK_ALIGN, roundUp(bytes, BLOCK_ALIGN));
    let offset = -1;
    for (let i = 0; i < this.freeOffsets.length; i++) {
      const s = this.freeSizes[i];
      if (s < size) continue;
      offset = this.freeOffsets[i];
      if (s === size) {
        this.freeOffsets.splice(i, 1);
        this.freeSizes.splice(i, 1);
      } else {
        this.freeOffsets[i] += size;
        this.freeSizes[i] -= size;
      }
      break;
    }
    if (offset < 0) {
      // a free block ending at the top is extended upwards rather than left behind
      const last = this.freeOffsets.length - 1;
      const base = last >= 0 && this.freeOffsets[last] + this.freeSizes[last] === this.top ? this.freeOffsets[last] : this.top;
      this.ensure(base + size, bytes);
      if (base !== this.top) {
        this.freeOffsets.pop();
        this.freeSizes.pop();
      }
      offset = base;
      this.top = base + size;
      if (this.top > this.peakTop) this.peakTop = this.top;
    }
    this.live.set(offset, size);
    this.inUse += size;
    return offset;
  }

  /** Returns a block from alloc to the heap. */
  free(offset: number): void {
    const size = this.live.get(offset);
    if (size === undefined) throw new Error(`wasm heap: free(${offset}): not a live block`);
    this.live.delete(offset);
    this.inUse -= size;
    // position among the free blocks (binary search on offset)
    let lo = 0,
      hi = this.freeOffsets.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.freeOffsets[mid] < offset) lo = mid + 1;
      else hi = mid;
    }
    let start = offset,
      end = offset + size;
    const mergePrev = lo > 0 && this.freeOffsets[lo - 1] + this.freeSizes[lo - 1] === start;
    const mergeNext = lo < this.freeOffsets.length && this.freeOffsets[lo] === end;
    if (mergePrev) start = this.freeOffsets[lo - 1];
    if (mergeNext) end = this.freeOffsets[lo] + this.freeSizes[lo];
    const from = mergePrev ? lo - 1 : lo;
    const count = (mergePrev ? 1 : 0) + (mergeNext ? 1 : 0);
    if (end === this.top) {
      // the freed span reaches the top: lower the top instead of keeping a free block there
      this.freeOffsets.splice(from, count);
      this.freeSizes.splice(from, count);
      this.top = start;
    } else {
      this.freeOffsets.splice(from, count, start);
      this.freeSizes.splice(from, count, end - start);
    }
  }

  /** The size of a live block (its request rounded up to 16 bytes). */
  sizeOf(offset: number): number {
    const size = this.live.get(offset);
    if (size === undefined) throw new Error(`wasm heap: ${offset} is not a live block`);
    return size;
  }

  /** Grows the memory so that bytes [0, end) exist; `wanted` is the request, for the error. */
  private ensure(end: number, wanted: number): void {
    const have = this.memory.buffer.byteLength;
    if (end <= have) return;
    if (end > this.limit) {
      let largest = this.limit - this.top;
      for (const s of this.freeSizes) largest = Math.max(largest, s);
      throw new RangeError(
        `wasm heap: cannot allocate ${wanted} bytes: the heap's limit is ${this.limit} bytes (${this.limit / PAGE_BYTES} pages of 64 KiB), ` +
          `${this.inUse} bytes are in use and the largest free span is ${largest} bytes`,
      );
    }
    // at least double (amortised growth), never past the limit
    const havePages = have / PAGE_BYTES;
    const needPages = Math.ceil(end / PAGE_BYTES);
    const pages = Math.min(this.limit / PAGE_BYTES, Math.max(needPages, 2 * havePages));
    try {
      this.memory.grow(pages - havePages);
    } catch (e) {
      throw new RangeError(
        `wasm heap: cannot allocate ${wanted} bytes: growing the memory to ${pages * PAGE_BYTES} bytes failed (${(e as Error).message}); ${this.inUse} bytes are in use`,
      );
    }
    this.generation++;
  }

  private view<T extends View>(
    Ctor: { new (b: ArrayBufferLike, offset: number, length: number): T; BYTES_PER_ELEMENT: number },
    offset: number,
    length: number,
  ): T {
    const size = this.live.get(offset);
    if (size === undefined) throw new Error(`wasm heap: ${offset} is not a live block`);
    if (length * Ctor.BYTES_PER_ELEMENT > size)
      throw new RangeError(`wasm heap: ${length} elements do not fit the ${size}-byte block at ${offset}`);
    return new Ctor(this.buffer, offset, length);
  }

  /** Views of `length` elements at the start of a live block. */
  f32(offset: number, length: number): Float32Array {
    return this.view(Float32Array, offset, length);
  }
  f64(offset: number, length: number): Float64Array {
    return this.view(Float64Array, offset, length);
  }
  i32(offset: number, length: number): Int32Array {
    return this.view(Int32Array, offset, length);
  }

  /**
   * A view of `length` elements of `type` at `offset`, unchecked (no block table: a worker's
   * attached heap, or a holder that knows its block).
   */
  viewAt(type: DType, offset: number, length: number): Float32Array | Float64Array | Int32Array {
    const b = this.buffer;
    return type === 'float32'
      ? new Float32Array(b, offset, length)
      : type === 'float64'
        ? new Float64Array(b, offset, length)
        : new Int32Array(b, offset, length);
  }

  /** Allocates a block for `length` floats and returns its view (its byteOffset is the block's offset). */
  allocF32(length: number): Float32Array {
    return this.f32(this.alloc(4 * length), length);
  }

  /** Whether a typed array views this heap's memory (what the kernels can read by offset). */
  owns(a: ArrayBufferView): boolean {
    return this.buffers.has(a.buffer) || a.buffer === this.buffer;
  }

  /** The byte offset of a view of this heap (throws for an array elsewhere). */
  offsetOf(a: ArrayBufferView): number {
    if (!this.owns(a)) throw new Error('wasm heap: the array is not a view of this heap');
    return a.byteOffset;
  }

  /** Live blocks (for tests: a training loop keeps this flat). */
  blocks(): number {
    return this.live.size;
  }

  stats(): HeapStats {
    let free = 0;
    for (const s of this.freeSizes) free += s;
    return { inUse: this.inUse, free, top: this.top, peakTop: this.peakTop, capacity: this.memory.buffer.byteLength, limit: this.limit };
  }
}

let theHeap: WasmHeap | null = null;

/** The heap of this thread of JavaScript (the CPU backend's storage): made on first use. */
export function processHeap(): WasmHeap {
  theHeap ??= new WasmHeap();
  return theHeap;
}
