// The safetensors format without any file system, so that it also runs in a browser:
//   [u64 little-endian header length N][N bytes of JSON header, space-padded][raw tensor bytes]
// Parsing and validating the header, decoding a tensor's bytes, and a TensorSource over an
// ArrayBuffer (a `fetch()`ed model.safetensors), on a reader base that mamba/safetensors.ts also
// builds on to read files in Node.

/** The storage dtypes this module knows the size of (open validates byte lengths with them). */
const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** The header is JSON text; the reference implementation refuses headers over 100 MB. */
export const MAX_HEADER_BYTES = 100_000_000;

export type SafetensorsArray = Float32Array | Float64Array | Int32Array;

export interface TensorEntry {
  /** The safetensors dtype string as stored (F32, BF16, I64, ...). */
  dtype: string;
  shape: number[];
}

export interface TensorRecord extends TensorEntry {
  data: SafetensorsArray;
}

/** What checkpoint consumers need: a single file and a sharded checkpoint both provide it. */
export interface TensorSource {
  readonly names: readonly string[];
  has(name: string): boolean;
  entry(name: string): TensorEntry;
  read(name: string): Promise<TensorRecord>;
  close(): Promise<void>;
}

export interface HeaderEntry extends TensorEntry {
  begin: number; // absolute file offsets
  end: number;
}

// Typed arrays use host byte order and the format is little-endian; tensors are decoded by viewing
// their bytes directly. (Checked with a typed array: node:os is not available in a browser.)
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('safetensors: this reader assumes a little-endian host');
}

/** Throws unless the 8-byte header length is within the limit and fits a file (or buffer) of `fileSize` bytes. */
export function checkHeaderLength(headerLen: bigint, fileSize: number, where: string): void {
  if (headerLen < 2n || headerLen > BigInt(MAX_HEADER_BYTES) || headerLen > BigInt(fileSize - 8)) {
    throw new Error(`${where}: header length ${headerLen} is not sane (file is ${fileSize} bytes, limit ${MAX_HEADER_BYTES})`);
  }
}

/**
 * Parses and validates the JSON header (its bytes, after the length prefix) of a file of
 * `fileSize` bytes: every entry gets absolute offsets, and no two tensors may share bytes.
 */
export function parseHeader(
  headerBytes: Uint8Array,
  fileSize: number,
  where: string,
): { entries: Map<string, HeaderEntry>; metadata: Record<string, string> | undefined } {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw new Error(`${where}: header is not valid UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new Error(`${where}: header is not a JSON object`);
  }

  const dataStart = 8 + headerBytes.length;
  const dataBytes = fileSize - dataStart;
  const entries = new Map<string, HeaderEntry>();
  let metadata: Record<string, string> | undefined;
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(value, where);
      continue;
    }
    entries.set(name, parseEntry(name, value, dataStart, dataBytes, where));
  }

  // The reference reader (huggingface/safetensors, Metadata::validate and read_metadata) sorts the
  // entries by data_offsets and requires them to tile the data region exactly: the first begins at
  // 0, each begins where the one before ends (no gap, no overlap), and the last ends at the end of
  // the file (no trailing bytes). Bytes no tensor claims are a sign of a damaged or spliced file.
  const byOffset = [...entries.entries()].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let covered = 0; // relative to dataStart: where the next tensor must begin
  let prevName: string | undefined;
  for (const [name, e] of byOffset) {
    const begin = e.begin - dataStart;
    if (begin < covered) {
      throw new Error(`${where}: tensor "${name}" overlaps tensor "${prevName}" (data_offsets begin ${begin} < ${covered})`);
    }
    if (begin > covered) {
      const after = prevName === undefined ? 'the start of the data' : `tensor "${prevName}" (which ends at ${covered})`;
      throw new Error(`${where}: tensor "${name}" begins at ${begin}, leaving a gap of ${begin - covered} bytes after ${after}`);
    }
    covered = e.end - dataStart;
    prevName = name;
  }
  if (covered !== dataBytes) {
    const last = prevName === undefined ? 'no tensor' : `the last tensor, "${prevName}", ends at ${covered}`;
    throw new Error(`${where}: ${dataBytes - covered} trailing bytes after the tensors (the data region is ${dataBytes} bytes; ${last})`);
  }
  return { entries, metadata };
}

function parseMetadata(value: unknown, where: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${where}: "__metadata__" must be an object of strings`);
  }
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw new Error(`${where}: "__metadata__.${k}" must be a string, found ${JSON.stringify(v)}`);
  }
  return { ...(value as Record<string, string>) };
}

function parseEntry(name: string, value: unknown, dataStart: number, dataBytes: number, file: string): HeaderEntry {
  const where = `${file}: tensor "${name}"`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof dtype !== 'string') throw new Error(`${where}: missing or non-string "dtype"`);
  const size = DTYPE_BYTES[dtype];
  if (size === undefined) throw new Error(`${where}: unknown dtype "${dtype}"`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new Error(`${where}: "shape" must be an array of non-negative integers, found ${JSON.stringify(shape)}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[0] > offsets[1]
  ) {
    throw new Error(`${where}: "data_offsets" must be [begin, end] with 0 <= begin <= end, found ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as number[];
  const expected = (shape as number[]).reduce((a, b) => a * b, 1) * size;
  if (end - begin !== expected) {
    throw new Error(
      `${where}: data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype}${JSON.stringify(shape)} needs ${expected}`,
    );
  }
  if (end > dataBytes) {
    throw new Error(`${where}: data_offsets end ${end} is past the end of the data (${dataBytes} bytes): the file is truncated`);
  }
  return { dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end };
}

/** Converts raw little-endian bytes (in an 8-byte-aligned buffer) to the array type we compute with. */
export function decode(raw: Uint8Array, dtype: string, count: number, where: string): SafetensorsArray {
  const buf = raw.buffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf, 0, count);
    case 'F64':
      return new Float64Array(buf, 0, count);
    case 'I32':
      return new Int32Array(buf, 0, count);
    case 'I16':
      return Int32Array.from(new Int16Array(buf, 0, count));
    case 'I8':
      return Int32Array.from(new Int8Array(buf, 0, count));
    case 'U8':
      return Int32Array.from(raw);
    case 'BOOL':
      return Int32Array.from(raw, (b) => (b ? 1 : 0));
    case 'I64': {
      // An int64 fits int32 exactly when its high word is the sign extension of its low word.
      const words = new Int32Array(buf, 0, 2 * count);
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        const lo = words[2 * i],
          hi = words[2 * i + 1];
        if (hi !== lo >> 31) {
          const value = new BigInt64Array(buf, 8 * i, 1)[0];
          throw new Error(`${where}: I64 value ${value} at index ${i} does not fit in int32`);
        }
        out[i] = lo;
      }
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const halves = new Uint16Array(buf, 0, count);
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = halves[i] << 16;
      return out;
    }
    case 'F16': {
      const halves = new Uint16Array(buf, 0, count);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(halves[i]);
      return out;
    }
    default:
      throw new Error(`${where}: cannot convert dtype "${dtype}" (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)`);
  }
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal or zero
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * A parsed safetensors header and the reads it allows; a subclass supplies only how a tensor's
 * bytes are fetched (from disk in mamba/safetensors.ts, from memory below) and what closing means.
 */
export abstract class SafetensorsReader implements TensorSource {
  /** Tensor names in sorted order. */
  readonly names: readonly string[];

  /** `label` names the file in errors (a path, URL or file name). */
  protected constructor(
    readonly label: string,
    private readonly entries: Map<string, HeaderEntry>,
    /** The header's "__metadata__" map, if present. */
    readonly metadata: Record<string, string> | undefined,
  ) {
    this.names = [...entries.keys()].sort();
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): TensorEntry {
    const e = this.lookup(name);
    return { dtype: e.dtype, shape: [...e.shape] };
  }

  /** Reads one tensor, converted to Float32Array, Float64Array or Int32Array (see `decode`). */
  async read(name: string): Promise<TensorRecord> {
    const e = this.lookup(name);
    const where = `safetensors ${this.label}: tensor "${name}"`;
    const count = e.shape.reduce((a, b) => a * b, 1);
    const raw = await this.readBytes(e.begin, e.end, where);
    return { dtype: e.dtype, shape: [...e.shape], data: decode(raw, e.dtype, count, where) };
  }

  abstract close(): Promise<void>;

  /**
   * The file's bytes [begin, end) (absolute offsets), in a fresh buffer of their own starting at
   * offset 0, so that `decode` can view them as any element type (aligned) without aliasing.
   */
  protected abstract readBytes(begin: number, end: number, where: string): Promise<Uint8Array>;

  private lookup(name: string): HeaderEntry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`safetensors ${this.label}: no tensor named "${name}"`);
    return e;
  }
}

/**
 * A safetensors file held in memory, e.g. `await (await fetch(url)).arrayBuffer()`. Each `read`
 * copies one tensor's bytes out of the buffer (decoded arrays never alias it).
 */
export class SafetensorsBuffer extends SafetensorsReader {
  /** `label` names the buffer in errors (a URL or file name). */
  constructor(
    private readonly buffer: ArrayBuffer,
    label: string,
  ) {
    const parsed = parseBufferHeader(buffer, label);
    super(label, parsed.entries, parsed.metadata);
  }

  async close(): Promise<void> {}

  protected async readBytes(begin: number, end: number): Promise<Uint8Array> {
    // slice: a fresh buffer that starts at offset 0, so aligned for any element type
    return new Uint8Array(this.buffer.slice(begin, end));
  }
}

function parseBufferHeader(buffer: ArrayBuffer, label: string): ReturnType<typeof parseHeader> {
  const where = `safetensors ${label}`;
  const size = buffer.byteLength;
  if (size < 8) throw new Error(`${where}: file is ${size} bytes, too short for the 8-byte header length`);
  const headerLen = new DataView(buffer, 0, 8).getBigUint64(0, true);
  checkHeaderLength(headerLen, size, where);
  return parseHeader(new Uint8Array(buffer, 8, Number(headerLen)), size, where);
}

// Checkpoint folders: one `model.safetensors`, or shards listed by `model.safetensors.index.json`
// ({"metadata": {...}, "weight_map": {tensor name: shard file name}}) as save_pretrained writes
// them. Read from files (mamba/safetensors.ts openCheckpoint) or over HTTP (fetch-checkpoint.ts).

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** A checkpoint read through one API, whichever way it is stored (one file or shards, on disk or fetched). */
export class Checkpoint<S extends TensorSource = TensorSource> implements TensorSource {
  readonly names: readonly string[];

  constructor(
    /** the folder or URL, for errors */
    readonly dir: string,
    /** Shard file name → its source. */
    readonly shards: ReadonlyMap<string, S>,
    private readonly shardOf: ReadonlyMap<string, S>,
  ) {
    this.names = [...shardOf.keys()].sort();
  }

  has(name: string): boolean {
    return this.shardOf.has(name);
  }

  entry(name: string): TensorEntry {
    return this.fileOf(name).entry(name);
  }

  read(name: string): Promise<TensorRecord> {
    return this.fileOf(name).read(name);
  }

  async close(): Promise<void> {
    await Promise.all([...this.shards.values()].map((f) => f.close()));
  }

  private fileOf(name: string): S {
    const f = this.shardOf.get(name);
    if (!f) throw new Error(`checkpoint ${this.dir}: no tensor named "${name}"`);
    return f;
  }
}

/** The weight_map of a model.safetensors.index.json (`path` names it in errors): tensor name → shard file name. */
export function parseIndex(text: string, path: string): Map<string, string> {
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (e) {
    throw new Error(`checkpoint ${path}: not valid JSON (${(e as Error).message})`);
  }
  const weightMap = (index as { weight_map?: unknown } | null)?.weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new Error(`checkpoint ${path}: missing "weight_map" object`);
  }
  const out = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    // A shard must be a plain file name in the checkpoint folder, never a path out of it.
    if (typeof shard !== 'string' || !shard || shard.includes('/') || shard.includes('\\') || shard === '.' || shard === '..') {
      throw new Error(`checkpoint ${path}: weight_map["${name}"] must be a shard file name, found ${JSON.stringify(shard)}`);
    }
    out.set(name, shard);
  }
  return out;
}
