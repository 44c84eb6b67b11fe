// Streaming reader and writer for the safetensors format (https://github.com/huggingface/safetensors):
//   [u64 little-endian header length N][N bytes of JSON header, space-padded][raw tensor bytes]
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative to
// the first byte after the header) plus an optional "__metadata__" map of strings.
//
// Opening reads only the header; `read(name)` reads just that tensor's bytes from disk into the
// typed array it returns, so a large checkpoint is never held in memory more than once.
import { open, readFile, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { atomicWrite, writeTextAtomic } from './node-files.ts';
import {
  Checkpoint,
  checkHeaderLength,
  INDEX_FILE,
  parseHeader,
  parseIndex,
  SafetensorsReader,
  SINGLE_FILE,
  type HeaderEntry,
} from './safetensors-format.ts';

export { writeTextAtomic } from './node-files.ts';
export {
  SafetensorsBuffer,
  SafetensorsReader,
  type SafetensorsArray,
  type TensorEntry,
  type TensorRecord,
  type TensorSource,
} from './safetensors-format.ts';

/** A safetensors file on disk: opening reads the header, each `read` just that tensor's bytes. */
export class SafetensorsFile extends SafetensorsReader {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    entries: Map<string, HeaderEntry>,
    metadata: Record<string, string> | undefined,
  ) {
    super(path, entries, metadata);
  }

  static async open(path: string): Promise<SafetensorsFile> {
    const handle = await open(path, 'r');
    try {
      const { entries, metadata } = await readHeader(path, handle);
      return new SafetensorsFile(path, handle, entries, metadata);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  protected async readBytes(begin: number, end: number, where: string): Promise<Uint8Array> {
    const bytes = end - begin;
    // Read into a buffer with the stored element type's alignment so it can be viewed without copying.
    const raw = new Uint8Array(new ArrayBuffer(bytes + ((8 - (bytes % 8)) % 8)), 0, bytes);
    await readFully(this.handle, raw, begin, where);
    return raw;
  }
}

export function openSafetensors(path: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(path);
}

async function readHeader(path: string, handle: FileHandle) {
  const where = `safetensors ${path}`;
  const fileSize = (await handle.stat()).size;
  if (fileSize < 8) throw new Error(`${where}: file is ${fileSize} bytes, too short for the 8-byte header length`);
  const lenBytes = new Uint8Array(8);
  await readFully(handle, lenBytes, 0, `${where}: header length`);
  const headerLen = new DataView(lenBytes.buffer).getBigUint64(0, true);
  checkHeaderLength(headerLen, fileSize, where);
  const headerBytes = new Uint8Array(Number(headerLen));
  await readFully(handle, headerBytes, 8, `${where}: header`);
  return parseHeader(headerBytes, fileSize, where);
}

async function readFully(handle: FileHandle, into: Uint8Array, position: number, where: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, position + done);
    if (bytesRead === 0) throw new Error(`${where}: file ended after ${done} of ${into.length} bytes (truncated?)`);
    done += bytesRead;
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

export type WritableDType = 'F32' | 'F64' | 'I64' | 'I32' | 'F16' | 'BF16';

export interface TensorToWrite {
  name: string;
  dtype: WritableDType;
  shape: readonly number[];
  /** Values in row-major order; for I64 a BigInt64Array is written as is. */
  data: ArrayLike<number> | BigInt64Array;
}

const WRITE_BYTES: Record<WritableDType, number> = { F32: 4, F64: 8, I64: 8, I32: 4, F16: 2, BF16: 2 };

/**
 * Writes tensors (in name order) to `path` via a temporary file and a rename, so an interrupted
 * run never leaves a half-written checkpoint. A Float32Array written as F32 is copied bit for bit.
 */
export async function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata?: Record<string, string>): Promise<void> {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Entries as [key, value] pairs: a plain object would move integer-like names ("0") to the front.
  const header: [string, unknown][] = [];
  const seen = new Set<string>();
  if (metadata) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`writeSafetensors ${path}: metadata "${k}" must be a string`);
    }
    header.push(['__metadata__', metadata]);
  }
  let offset = 0;
  for (const t of sorted) {
    const where = `writeSafetensors ${path}: tensor "${t.name}"`;
    if (!t.name || t.name === '__metadata__') throw new Error(`${where}: invalid name`);
    if (seen.has(t.name)) throw new Error(`${where}: duplicate name`);
    seen.add(t.name);
    const size = WRITE_BYTES[t.dtype];
    if (size === undefined) throw new Error(`${where}: cannot write dtype "${t.dtype}"`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${where}: bad shape ${JSON.stringify(t.shape)}`);
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (t.data.length !== count) throw new Error(`${where}: shape [${t.shape}] needs ${count} values, data has ${t.data.length}`);
    const bytes = count * size;
    header.push([t.name, { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes] }]);
    offset += bytes;
  }
  let json = `{${header.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
  // The format asks for the header to be padded with spaces so the data starts 8-byte aligned.
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf-8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));

  await atomicWrite(path, async (tmp) => {
    const handle = await open(tmp, 'w');
    try {
      await handle.write(prefix);
      await handle.write(headerBytes);
      for (const t of sorted) await handle.write(encode(t, `writeSafetensors ${path}: tensor "${t.name}"`));
      await handle.sync();
    } catch (e) {
      await handle.close().catch(() => undefined);
      throw e;
    }
    await handle.close();
  });
}

function encode(t: TensorToWrite, where: string): Uint8Array {
  const { data } = t;
  const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  if (data instanceof BigInt64Array) {
    if (t.dtype !== 'I64') throw new Error(`${where}: BigInt64Array data can only be written as I64, not ${t.dtype}`);
    return asBytes(data);
  }
  const values = data as ArrayLike<number>;
  switch (t.dtype) {
    case 'F32':
      return asBytes(values instanceof Float32Array ? values : Float32Array.from(values));
    case 'F64':
      return asBytes(values instanceof Float64Array ? values : Float64Array.from(values));
    case 'I32':
      return asBytes(values instanceof Int32Array ? values : Int32Array.from(values, (v, i) => checkInt(v, i, 2 ** 31, where)));
    case 'I64':
      return asBytes(BigInt64Array.from(Array.from(values), (v, i) => BigInt(checkInt(v, i, 2 ** 53, where))));
    case 'BF16': {
      const f = Float32Array.from(values);
      const bits = new Uint32Array(f.buffer);
      const out = new Uint16Array(f.length);
      for (let i = 0; i < f.length; i++) out[i] = floatBitsToBf16(bits[i]);
      return asBytes(out);
    }
    case 'F16':
      return asBytes(Uint16Array.from(values, floatToHalf));
  }
}

function checkInt(v: number, i: number, limit: number, where: string): number {
  if (!Number.isInteger(v) || v < -limit || v >= limit)
    throw new Error(`${where}: value ${v} at index ${i} is not a representable integer`);
  return v;
}

/** float32 bits → bfloat16 bits, rounding to nearest even (NaN stays NaN). */
function floatBitsToBf16(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && bits & 0x7fffff) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** number → IEEE half bits, rounding to nearest even. */
function floatToHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // Inf / NaN
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow → Inf
  if (e <= 0) {
    if (e < -10) return sign; // underflow → ±0
    mant |= 0x800000; // implicit leading bit, then shift into the subnormal range
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to Inf).
  return sign | (half + (rem > 0x1000 || (rem === 0x1000 && half & 1) ? 1 : 0));
}

// ---------------------------------------------------------------------------------------------
// Checkpoint folders: one `model.safetensors`, or shards listed by `model.safetensors.index.json`
// ({"metadata": {...}, "weight_map": {tensor name: shard file name}}) as save_pretrained writes them.

export { Checkpoint, INDEX_FILE, parseIndex, SINGLE_FILE } from './safetensors-format.ts';

/** Opens `dir/model.safetensors` if present, else the shards named by `dir/model.safetensors.index.json`. */
export async function openCheckpoint(dir: string): Promise<Checkpoint<SafetensorsFile>> {
  const single = join(dir, SINGLE_FILE);
  if (await exists(single)) {
    const f = await openSafetensors(single);
    return new Checkpoint(dir, new Map([[SINGLE_FILE, f]]), new Map(f.names.map((n) => [n, f])));
  }
  const indexPath = join(dir, INDEX_FILE);
  if (!(await exists(indexPath))) throw new Error(`checkpoint ${dir}: neither ${SINGLE_FILE} nor ${INDEX_FILE} exists`);
  const weightMap = parseIndex(await readFile(indexPath, 'utf-8'), indexPath);

  const shards = new Map<string, SafetensorsFile>();
  const shardOf = new Map<string, SafetensorsFile>();
  try {
    for (const shard of new Set(weightMap.values())) {
      const shardPath = join(dir, shard);
      if (!(await exists(shardPath))) throw new Error(`checkpoint ${indexPath}: shard "${shard}" does not exist (${shardPath})`);
      shards.set(shard, await openSafetensors(shardPath));
    }
    for (const [name, shard] of weightMap) {
      const f = shards.get(shard)!;
      if (!f.has(name)) throw new Error(`checkpoint ${indexPath}: weight_map puts "${name}" in shard "${shard}", which has no such tensor`);
      shardOf.set(name, f);
    }
  } catch (e) {
    await Promise.all([...shards.values()].map((f) => f.close()));
    throw e;
  }
  return new Checkpoint(dir, shards, shardOf);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/**
 * Writes tensors as a sharded checkpoint: shards of at most `maxShardBytes` (a tensor larger than that
 * gets a shard of its own) named like save_pretrained's `model-00001-of-00003.safetensors`, then the
 * index. Every file is written via temp + rename; the index last, so a reader never sees an index
 * naming shards that are not there yet.
 */
export async function writeShardedCheckpoint(
  dir: string,
  tensors: readonly TensorToWrite[],
  options: { maxShardBytes: number; metadata?: Record<string, string> },
): Promise<string[]> {
  const groups: TensorToWrite[][] = [];
  let bytes = 0;
  let total = 0;
  for (const t of [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const size = t.data.length * WRITE_BYTES[t.dtype];
    if (!groups.length || (bytes + size > options.maxShardBytes && bytes > 0)) {
      groups.push([]);
      bytes = 0;
    }
    groups[groups.length - 1].push(t);
    bytes += size;
    total += size;
  }
  const pad = (n: number) => String(n).padStart(5, '0');
  const files = groups.map((_, i) => `model-${pad(i + 1)}-of-${pad(groups.length)}.safetensors`);
  const weightMap: Record<string, string> = {};
  for (const [i, group] of groups.entries()) {
    await writeSafetensors(join(dir, files[i]), group, options.metadata);
    for (const t of group) weightMap[t.name] = files[i];
  }
  await writeTextAtomic(join(dir, INDEX_FILE), `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`);
  return files;
}
