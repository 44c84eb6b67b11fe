// The WebAssembly binary format, the parts this repository's kernels use: LEB128 integers, value
// types, section ids and the opcode numbers (from the WebAssembly core specification 2.0, section 5,
// and its SIMD128 opcode table). Everything here is plain data and byte pushing; the function and
// module builder that uses it is engine/wasm/assembler.ts.
// Bytes are collected in plain number[] arrays: modules are a few kilobytes, built once per process.

export type Bytes = number[];

/** Value types (spec 5.3.1). */
export const VALTYPE = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b } as const;
export type ValType = keyof typeof VALTYPE;

/** Section ids (spec 5.5.2). */
export const SECTION = {
  custom: 0,
  type: 1,
  import: 2,
  function: 3,
  memory: 5,
  global: 6,
  export: 7,
  start: 8,
  code: 10,
  data: 11,
} as const;

/** Kinds of import and export descriptors (spec 5.5.5, 5.5.10). */
export const EXTERNAL = { func: 0x00, table: 0x01, memory: 0x02, global: 0x03 } as const;

/** The block type of a block, loop or if without a result. */
export const BLOCK_EMPTY = 0x40;

/** Unsigned LEB128 of a non-negative integer (numbers up to 2^53, or a bigint). */
export function uleb(out: Bytes, value: number | bigint): void {
  if (typeof value === 'bigint') {
    if (value < 0n) throw new RangeError(`uleb: negative value ${value}`);
    do {
      let byte = Number(value & 0x7fn);
      value >>= 7n;
      if (value !== 0n) byte |= 0x80;
      out.push(byte);
    } while (value !== 0n);
    return;
  }
  if (!Number.isInteger(value) || value < 0) throw new RangeError(`uleb: not a non-negative integer: ${value}`);
  // plain division, not >>>, so that values of 2^32 and above (u64 immediates) stay exact
  do {
    let byte = value % 128;
    value = Math.floor(value / 128);
    if (value !== 0) byte |= 0x80;
    out.push(byte);
  } while (value !== 0);
}

/**
 * Signed LEB128: as many 7-bit groups as needed so that the last group's bit 6 is the sign.
 * Numbers must be safe integers; i64 immediates beyond 2^53 are given as bigints.
 */
export function sleb(out: Bytes, value: number | bigint): void {
  let v = BigInt(value);
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n; // arithmetic shift: stays -1 for negative numbers
    const done = (v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return;
  }
}

/** An i32 immediate: the value as a signed 32-bit integer (so 0xffffffff encodes as -1). */
export function sleb32(out: Bytes, value: number): void {
  if (!Number.isInteger(value) || value < -(2 ** 31) || value >= 2 ** 32) throw new RangeError(`i32 immediate out of range: ${value}`);
  sleb(out, value | 0);
}

const scratch = new DataView(new ArrayBuffer(8));

/** An f32 immediate: 4 bytes, little-endian IEEE 754. */
export function f32Bytes(out: Bytes, value: number): void {
  scratch.setFloat32(0, value, true);
  for (let i = 0; i < 4; i++) out.push(scratch.getUint8(i));
}

/** An f64 immediate: 8 bytes, little-endian IEEE 754. */
export function f64Bytes(out: Bytes, value: number): void {
  scratch.setFloat64(0, value, true);
  for (let i = 0; i < 8; i++) out.push(scratch.getUint8(i));
}

/**
 * Appends bytes to out. In chunks through push's arguments (a builtin copy): a loop of single
 * pushes is what made encoding slow before the generator's code had been optimised.
 */
export function append(out: Bytes, bytes: ArrayLike<number>): void {
  const CHUNK = 8192;
  for (let i = 0; i < bytes.length; i += CHUNK) out.push(...Array.prototype.slice.call(bytes, i, i + CHUNK));
}

const utf8Encoder = new TextEncoder();

/** A name: its UTF-8 byte length, then the bytes. */
export function name(out: Bytes, s: string): void {
  const utf8 = utf8Encoder.encode(s);
  uleb(out, utf8.length);
  append(out, utf8);
}

/** A section: id, byte length, contents. */
export function section(out: Bytes, id: number, body: Bytes): void {
  out.push(id);
  uleb(out, body.length);
  append(out, body);
}

/** The module preamble: magic "\0asm" and version 1. */
export const PREAMBLE = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/** One-byte opcodes (spec 5.4): control, variables, memory, numeric. */
export const OP = {
  unreachable: 0x00,
  nop: 0x01,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  else: 0x05,
  end: 0x0b,
  br: 0x0c,
  br_if: 0x0d,
  return: 0x0f,
  call: 0x10,
  drop: 0x1a,
  select: 0x1b,
  'local.get': 0x20,
  'local.set': 0x21,
  'local.tee': 0x22,
  'i32.load': 0x28,
  'i64.load': 0x29,
  'f32.load': 0x2a,
  'f64.load': 0x2b,
  'i32.store': 0x36,
  'i64.store': 0x37,
  'f32.store': 0x38,
  'f64.store': 0x39,
  'memory.size': 0x3f,
  'memory.grow': 0x40,
  'i32.const': 0x41,
  'i64.const': 0x42,
  'f32.const': 0x43,
  'f64.const': 0x44,
} as const;

/** One-byte numeric opcodes, by type: `${type}.${op}` = code (spec 5.4.7). */
export const NUMERIC: Record<string, number> = {};
function numeric(type: string, first: number, ops: string): void {
  ops.split(' ').forEach((op, i) => {
    if (op !== '_') NUMERIC[`${type}.${op}`] = first + i;
  });
}
numeric('i32', 0x45, 'eqz eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u');
numeric('i64', 0x50, 'eqz eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u');
numeric('f32', 0x5b, 'eq ne lt gt le ge');
numeric('f64', 0x61, 'eq ne lt gt le ge');
numeric('i32', 0x67, 'clz ctz popcnt add sub mul div_s div_u rem_s rem_u and or xor shl shr_s shr_u rotl rotr');
numeric('i64', 0x79, 'clz ctz popcnt add sub mul div_s div_u rem_s rem_u and or xor shl shr_s shr_u rotl rotr');
numeric('f32', 0x8b, 'abs neg ceil floor trunc nearest sqrt add sub mul div min max copysign');
numeric('f64', 0x99, 'abs neg ceil floor trunc nearest sqrt add sub mul div min max copysign');
numeric('i32', 0xa7, 'wrap_i64 trunc_f32_s trunc_f32_u trunc_f64_s trunc_f64_u');
numeric('i64', 0xac, 'extend_i32_s extend_i32_u trunc_f32_s trunc_f32_u trunc_f64_s trunc_f64_u');
numeric('f32', 0xb2, 'convert_i32_s convert_i32_u convert_i64_s convert_i64_u demote_f64');
numeric('f64', 0xb7, 'convert_i32_s convert_i32_u convert_i64_s convert_i64_u promote_f32');
numeric('i32', 0xbc, 'reinterpret_f32');
numeric('i64', 0xbd, 'reinterpret_f64');
numeric('f32', 0xbe, 'reinterpret_i32');
numeric('f64', 0xbf, 'reinterpret_i64');

/** Prefix byte of the SIMD128 instructions; the opcode that follows is a uleb (spec 5.4.8). */
export const SIMD_PREFIX = 0xfd;

/** SIMD128 opcodes (after the 0xfd prefix), `${shape}.${op}` = code; `_` marks a gap in the table. */
export const SIMD: Record<string, number> = {};
function simd(first: number, ops: string): void {
  ops
    .trim()
    .split(/\s+/)
    .forEach((op, i) => {
      if (op !== '_') SIMD[op] = first + i;
    });
}
simd(
  0,
  `v128.load v128.load8x8_s v128.load8x8_u v128.load16x4_s v128.load16x4_u v128.load32x2_s v128.load32x2_u
   v128.load8_splat v128.load16_splat v128.load32_splat v128.load64_splat v128.store v128.const i8x16.shuffle i8x16.swizzle
   i8x16.splat i16x8.splat i32x4.splat i64x2.splat f32x4.splat f64x2.splat
   i8x16.extract_lane_s i8x16.extract_lane_u i8x16.replace_lane i16x8.extract_lane_s i16x8.extract_lane_u i16x8.replace_lane
   i32x4.extract_lane i32x4.replace_lane i64x2.extract_lane i64x2.replace_lane f32x4.extract_lane f32x4.replace_lane
   f64x2.extract_lane f64x2.replace_lane`,
);
simd(35, 'i8x16.eq i8x16.ne i8x16.lt_s i8x16.lt_u i8x16.gt_s i8x16.gt_u i8x16.le_s i8x16.le_u i8x16.ge_s i8x16.ge_u');
simd(45, 'i16x8.eq i16x8.ne i16x8.lt_s i16x8.lt_u i16x8.gt_s i16x8.gt_u i16x8.le_s i16x8.le_u i16x8.ge_s i16x8.ge_u');
simd(55, 'i32x4.eq i32x4.ne i32x4.lt_s i32x4.lt_u i32x4.gt_s i32x4.gt_u i32x4.le_s i32x4.le_u i32x4.ge_s i32x4.ge_u');
simd(65, 'f32x4.eq f32x4.ne f32x4.lt f32x4.gt f32x4.le f32x4.ge f64x2.eq f64x2.ne f64x2.lt f64x2.gt f64x2.le f64x2.ge');
simd(77, 'v128.not v128.and v128.andnot v128.or v128.xor v128.bitselect v128.any_true');
simd(
  84,
  `v128.load8_lane v128.load16_lane v128.load32_lane v128.load64_lane v128.store8_lane v128.store16_lane v128.store32_lane
   v128.store64_lane v128.load32_zero v128.load64_zero f32x4.demote_f64x2_zero f64x2.promote_low_f32x4`,
);
simd(103, 'f32x4.ceil f32x4.floor f32x4.trunc f32x4.nearest');
simd(116, 'f64x2.ceil f64x2.floor');
simd(122, 'f64x2.trunc');
simd(148, 'f64x2.nearest');
simd(
  160,
  `i32x4.abs i32x4.neg _ i32x4.all_true i32x4.bitmask _ _ i32x4.extend_low_i16x8_s i32x4.extend_high_i16x8_s
   i32x4.extend_low_i16x8_u i32x4.extend_high_i16x8_u i32x4.shl i32x4.shr_s i32x4.shr_u i32x4.add _ _ i32x4.sub _ _ _
   i32x4.mul i32x4.min_s i32x4.min_u i32x4.max_s i32x4.max_u`,
);
simd(224, 'f32x4.abs f32x4.neg _ f32x4.sqrt f32x4.add f32x4.sub f32x4.mul f32x4.div f32x4.min f32x4.max f32x4.pmin f32x4.pmax');
simd(236, 'f64x2.abs f64x2.neg _ f64x2.sqrt f64x2.add f64x2.sub f64x2.mul f64x2.div f64x2.min f64x2.max f64x2.pmin f64x2.pmax');
simd(
  248,
  `i32x4.trunc_sat_f32x4_s i32x4.trunc_sat_f32x4_u f32x4.convert_i32x4_s f32x4.convert_i32x4_u
   i32x4.trunc_sat_f64x2_s_zero i32x4.trunc_sat_f64x2_u_zero f64x2.convert_low_i32x4_s f64x2.convert_low_i32x4_u`,
);
