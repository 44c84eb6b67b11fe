// Activation collection: run a model over task batches, read named hook points, and stream each
// hook's rows ((batch, position) pairs in row-major order, one row of `dim` channels each) into
// sharded safetensors files, flushing a shard whenever it holds `shardRows` rows, so memory stays
// bounded by one shard per hook whatever the number of batches. Per-channel statistics are
// accumulated on the way (float64 sums), so they describe exactly the rows written.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import * as mi from '../engine/index.ts';
import type { MambaLM } from '../mamba/model.ts';
import { writeSafetensors } from '../mamba/safetensors.ts';
import type { TaskBatch } from './tasks/index.ts';

/** Per-channel statistics over the rows of one hook (population moments, ddof 0). */
export interface ChannelStats {
  rows: number;
  mean: number[];
  variance: number[];
  /** root mean square of the channel over the rows */
  norm: number[];
  /** fraction of rows where |x| < SPARSITY_EPS */
  sparsity: number[];
}

export const SPARSITY_EPS = 1e-6;

/** Running sums of a [rows, dim] stream, turned into ChannelStats at the end. */
export class ChannelStatsAccumulator {
  private readonly sum: Float64Array;
  private readonly sumSq: Float64Array;
  private readonly zeros: Float64Array;
  private rows = 0;

  constructor(readonly dim: number) {
    this.sum = new Float64Array(dim);
    this.sumSq = new Float64Array(dim);
    this.zeros = new Float64Array(dim);
  }

  add(data: ArrayLike<number>): void {
    const { dim } = this;
    if (data.length % dim) throw new Error(`ChannelStatsAccumulator: ${data.length} values is not a whole number of rows of ${dim}`);
    for (let r = 0; r < data.length; r += dim) {
      for (let c = 0; c < dim; c++) {
        const v = data[r + c];
        this.sum[c] += v;
        this.sumSq[c] += v * v;
        if (Math.abs(v) < SPARSITY_EPS) this.zeros[c]++;
      }
    }
    this.rows += data.length / dim;
  }

  result(): ChannelStats {
    const n = Math.max(this.rows, 1);
    const mean = Array.from(this.sum, (s) => s / n);
    return {
      rows: this.rows,
      mean,
      // E[x^2] - E[x]^2 in float64, clamped at 0 against rounding
      variance: Array.from(this.sumSq, (s, c) => Math.max(s / n - mean[c] * mean[c], 0)),
      norm: Array.from(this.sumSq, (s) => Math.sqrt(s / n)),
      sparsity: Array.from(this.zeros, (z) => z / n),
    };
  }
}

/** Appends rows of one hook and writes `<prefix>.<k>.safetensors` shards of at most shardRows rows. */
export class ShardWriter {
  private buffer: Float32Array;
  private filled = 0;
  readonly shards: string[] = [];
  rows = 0;

  constructor(
    readonly dir: string,
    readonly prefix: string,
    readonly dim: number,
    readonly shardRows: number,
  ) {
    if (!Number.isInteger(shardRows) || shardRows < 1)
      throw new Error(`ShardWriter ${prefix}: shardRows must be a positive integer, got ${shardRows}`);
    this.buffer = new Float32Array(shardRows * dim);
    mkdirSync(dir, { recursive: true });
  }

  async append(data: Float32Array): Promise<void> {
    if (data.length % this.dim)
      throw new Error(`ShardWriter ${this.prefix}: ${data.length} values is not a whole number of rows of ${this.dim}`);
    let off = 0;
    while (off < data.length) {
      const take = Math.min(data.length - off, this.buffer.length - this.filled);
      this.buffer.set(data.subarray(off, off + take), this.filled);
      this.filled += take;
      off += take;
      if (this.filled === this.buffer.length) await this.flush();
    }
    this.rows += data.length / this.dim;
  }

  /** Writes what is buffered as the next shard (nothing when empty). */
  async flush(): Promise<void> {
    if (!this.filled) return;
    const name = `${this.prefix}.${this.shards.length}.safetensors`;
    const rows = this.filled / this.dim;
    await writeSafetensors(join(this.dir, name), [
      { name: 'acts', dtype: 'F32', shape: [rows, this.dim], data: this.buffer.subarray(0, this.filled) },
    ]);
    this.shards.push(name);
    this.filled = 0;
  }
}

/** Expands "{i}" to every layer and "{last}" to the last one: the concrete hook names, in order. */
export function expandHookPatterns(patterns: readonly string[], layers: number): string[] {
  const out: string[] = [];
  for (const p of patterns) {
    const names = p.includes('{i}') ? Array.from({ length: layers }, (_, i) => p.replaceAll('{i}', String(i))) : [p];
    for (const n of names.map((x) => x.replaceAll('{last}', String(layers - 1)))) if (!out.includes(n)) out.push(n);
  }
  return out;
}

export interface CollectOptions {
  /** concrete hook names (see expandHookPatterns) */
  hooks: string[];
  /** folder the shards go to */
  dir: string;
  shardRows: number;
  /** hooks collected only for the first `limitedBatches` batches (e.g. hook_h, whose rows are E*N wide) */
  limited?: string[];
  limitedBatches?: number;
  onBatch?: (done: number, total: number) => void;
}

export interface CollectedHook {
  name: string;
  dim: number;
  rows: number;
  shards: string[];
  stats: ChannelStats;
}

/**
 * Runs the model over the batches (no gradients) and streams every hook's activations to shards.
 * Rows of a hook are its (batch, position) pairs in row-major order over the batches in turn;
 * a limited hook holds the first rows only.
 */
export async function collectActivations(model: MambaLM, batches: readonly TaskBatch[], o: CollectOptions): Promise<CollectedHook[]> {
  const valid = new Set(model.hookNames());
  for (const h of o.hooks)
    if (!valid.has(h)) throw new Error(`collectActivations: unknown hook "${h}" for a ${model.config.num_hidden_layers}-layer model`);
  const writers = new Map<string, ShardWriter>();
  const stats = new Map<string, ChannelStatsAccumulator>();
  for (const [bi, batch] of batches.entries()) {
    const names = o.hooks.filter((h) => !o.limited?.includes(h) || bi < (o.limitedBatches ?? Infinity));
    const acts = await mi.tidyAsync(async () => {
      const { cache } = mi.noGrad(() => model.runWithCache(rowsOf(batch), names));
      const out = new Map<string, { data: Float32Array; dim: number }>();
      for (const name of names) {
        const t = cache.get(name);
        if (!t) throw new Error(`collectActivations: the forward pass produced no ${name}`);
        const [B, T] = t.shape;
        const dim = t.size / (B * T);
        out.set(name, { data: Float32Array.from(await t.data()), dim });
      }
      return out;
    });
    for (const [name, { data, dim }] of acts) {
      let w = writers.get(name);
      if (!w) {
        w = new ShardWriter(o.dir, name, dim, o.shardRows);
        writers.set(name, w);
        stats.set(name, new ChannelStatsAccumulator(dim));
      }
      await w.append(data);
      stats.get(name)!.add(data);
    }
    o.onBatch?.(bi + 1, batches.length);
  }
  const out: CollectedHook[] = [];
  for (const name of o.hooks) {
    const w = writers.get(name);
    if (!w) continue;
    await w.flush();
    out.push({ name, dim: w.dim, rows: w.rows, shards: w.shards, stats: stats.get(name)!.result() });
  }
  return out;
}

/** The batch's token ids as rows (what MambaLM.run takes). */
export function rowsOf(batch: TaskBatch): number[][] {
  const [B, T] = batch.shape;
  return Array.from({ length: B }, (_, b) => Array.from(batch.inputs.subarray(b * T, (b + 1) * T)));
}
