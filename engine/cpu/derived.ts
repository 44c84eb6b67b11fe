// The CPU backend's cache of derived blocks (engine/wasm/kernel.ts, WasmContext.derived): blocks of
// the heap computed from one buffer alone, such as a weight matrix packed for the matmul kernels,
// kept across calls so that a weight read token after token is packed once.
//
// Keys: the owner buffer (the CpuBuffer object: buffers are written once, when made, so a live
// buffer's contents do not change) and a string naming the layout. A block is dropped when its
// owner is freed or written (backend.write, or the output of a kernel), so it never outlives the
// data it was made from.
//
// Admission: a block is built the second time it is asked for, not the first: a buffer read once
// (an activation, a weight that training replaces every step) is never packed for nothing.
// Budget: the bytes held stay within `budget`; to make room, the least recently used blocks are
// dropped, but only those not used since the new one was last asked for (they are colder than
// it). When the blocks in use cycle through more than the budget (a model too large for it), the
// ones already held stay and the others run without: no block is rebuilt every cycle. A block the
// heap cannot hold is not built; the backend drops blocks when a tensor would not fit otherwise.
import type { WasmHeap } from '../wasm/memory.ts';

interface Block {
  owner: object;
  key: string;
  offset: number;
  bytes: number;
  lastUse: number;
}

export interface DerivedStats {
  /** bytes held in blocks */
  bytes: number;
  blocks: number;
  /** the most bytes held */
  budget: number;
  /** blocks built, and requests answered by a block held, so far */
  builds: number;
  hits: number;
}

/** The default budget: half the heap's limit, at most 2 GiB (mamba-130m's packed weights are 513 MB). */
export function defaultDerivedBudget(heapLimit: number): number {
  return Math.min(2 ** 31, Math.floor(heapLimit / 2));
}

export class DerivedCache {
  private readonly byOwner = new Map<object, Map<string, Block>>();
  // when a (owner, key) without a block was last asked for
  private readonly asked = new WeakMap<object, Map<string, number>>();
  private tick = 0;
  private held = 0;
  private builds = 0;
  private hits = 0;

  constructor(
    private readonly heap: WasmHeap,
    readonly budget: number,
  ) {}

  /** WasmContext.derived for `owner`: the block's offset, or 0 when there is none (see the header). */
  get(owner: object, key: string, bytes: number, build: (offset: number) => void): number {
    const t = ++this.tick;
    const have = this.byOwner.get(owner)?.get(key);
    if (have) {
      have.lastUse = t;
      this.hits++;
      return have.offset;
    }
    let asked = this.asked.get(owner);
    if (!asked) {
      asked = new Map();
      this.asked.set(owner, asked);
    }
    const before = asked.get(key);
    asked.set(key, t);
    if (before === undefined || !(bytes > 0) || bytes > this.budget) return 0;
    while (this.held + bytes > this.budget) {
      const victim = this.leastRecent();
      if (!victim || victim.lastUse > before) return 0;
      this.drop(victim);
    }
    let offset: number;
    try {
      offset = this.heap.alloc(bytes);
    } catch (e) {
      if (e instanceof RangeError) return 0;
      throw e;
    }
    try {
      build(offset);
    } catch (e) {
      this.heap.free(offset);
      throw e;
    }
    let blocks = this.byOwner.get(owner);
    if (!blocks) {
      blocks = new Map();
      this.byOwner.set(owner, blocks);
    }
    blocks.set(key, { owner, key, offset, bytes, lastUse: t });
    asked.delete(key);
    this.held += bytes;
    this.builds++;
    return offset;
  }

  /** Drops the blocks derived from `owner` (freed or written) and forgets that they were asked for. */
  invalidate(owner: object): void {
    this.asked.delete(owner);
    const blocks = this.byOwner.get(owner);
    if (blocks) for (const b of [...blocks.values()]) this.drop(b);
  }

  /** Drops the least recently used block; false when there was none. */
  dropOne(): boolean {
    const b = this.leastRecent();
    if (b) this.drop(b);
    return !!b;
  }

  /** Drops every block. */
  clear(): void {
    while (this.dropOne());
  }

  stats(): DerivedStats {
    let blocks = 0;
    for (const m of this.byOwner.values()) blocks += m.size;
    return { bytes: this.held, blocks, budget: this.budget, builds: this.builds, hits: this.hits };
  }

  private leastRecent(): Block | null {
    let best: Block | null = null;
    for (const m of this.byOwner.values()) for (const b of m.values()) if (!best || b.lastUse < best.lastUse) best = b;
    return best;
  }

  private drop(b: Block): void {
    const blocks = this.byOwner.get(b.owner)!;
    blocks.delete(b.key);
    if (!blocks.size) this.byOwner.delete(b.owner);
    this.heap.free(b.offset);
    this.held -= b.bytes;
  }
}
