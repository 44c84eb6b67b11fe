// The instruction namespaces of a FunctionBuilder (f.i32, f.f32, f.v128, f.f32x4, ...): for each
// instruction, its opcode and the types of its operands, from which number operands get their
// constant type. Each namespace is one object, built once when this module loads; a builder gets
// its own small object inheriting from it (creating some 400 closures per function was the bulk
// of the generation time).
import type { FunctionBuilder, Operand } from './assembler.ts';
import { NUMERIC, OP, SIMD, type ValType } from './encoding.ts';

// Operand types of each instruction, one letter per operand: i i32, I i64, f f32, F f64, v v128.
// They say what a number operand becomes (i32.const, f32.const, ...).
const TYPE_OF: Record<string, ValType> = { i: 'i32', I: 'i64', f: 'f32', F: 'f64', v: 'v128' };

/** The words of a space-separated string literal type, as a union. */
type Words<S extends string> = S extends `${infer H} ${infer T}` ? H | Words<T> : S;

function sigs<const S extends string>(sig: string, names: S): Record<Words<S>, string> {
  return Object.fromEntries(names.split(' ').map((n) => [n, sig])) as Record<Words<S>, string>;
}

const INT_BINARY = 'add sub mul div_s div_u rem_s rem_u and or xor shl shr_s shr_u rotl rotr eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u';
const FLOAT_BINARY = 'add sub mul div min max copysign eq ne lt gt le ge';
const FLOAT_UNARY = 'abs neg ceil floor trunc nearest sqrt';

const I32_OPS = {
  ...sigs('ii', INT_BINARY),
  ...sigs('i', 'eqz clz ctz popcnt'),
  ...sigs('I', 'wrap_i64'),
  ...sigs('f', 'trunc_f32_s trunc_f32_u reinterpret_f32'),
  ...sigs('F', 'trunc_f64_s trunc_f64_u'),
};
const I64_OPS = {
  ...sigs('II', INT_BINARY),
  ...sigs('I', 'eqz clz ctz popcnt'),
  ...sigs('i', 'extend_i32_s extend_i32_u'),
  ...sigs('f', 'trunc_f32_s trunc_f32_u'),
  ...sigs('F', 'trunc_f64_s trunc_f64_u reinterpret_f64'),
};
const F32_OPS = {
  ...sigs('ff', FLOAT_BINARY),
  ...sigs('f', FLOAT_UNARY),
  ...sigs('i', 'convert_i32_s convert_i32_u reinterpret_i32'),
  ...sigs('I', 'convert_i64_s convert_i64_u'),
  ...sigs('F', 'demote_f64'),
};
const F64_OPS = {
  ...sigs('FF', FLOAT_BINARY),
  ...sigs('F', FLOAT_UNARY),
  ...sigs('i', 'convert_i32_s convert_i32_u'),
  ...sigs('I', 'convert_i64_s convert_i64_u reinterpret_i64'),
  ...sigs('f', 'promote_f32'),
};
const V128_OPS = { ...sigs('vv', 'and or xor andnot'), ...sigs('v', 'not any_true'), ...sigs('vvv', 'bitselect') };
const F32X4_OPS = {
  ...sigs('vv', 'add sub mul div min max pmin pmax eq ne lt gt le ge'),
  ...sigs('v', `${FLOAT_UNARY} convert_i32x4_s convert_i32x4_u demote_f64x2_zero` as const),
  ...sigs('f', 'splat'),
};
const F64X2_OPS = {
  ...sigs('vv', 'add sub mul div min max pmin pmax eq ne lt gt le ge'),
  ...sigs('v', `${FLOAT_UNARY} promote_low_f32x4 convert_low_i32x4_s convert_low_i32x4_u` as const),
  ...sigs('F', 'splat'),
};
const I32X4_OPS = {
  ...sigs('vv', 'add sub mul min_s min_u max_s max_u eq ne lt_s lt_u gt_s gt_u le_s le_u ge_s ge_u'),
  ...sigs('v', 'abs neg all_true bitmask trunc_sat_f32x4_s trunc_sat_f32x4_u trunc_sat_f64x2_s_zero trunc_sat_f64x2_u_zero'),
  ...sigs('vi', 'shl shr_s shr_u'),
  ...sigs('i', 'splat'),
};

/** What every namespace method reaches its builder through. */
export interface Bound {
  readonly f: FunctionBuilder;
}

type OpFn = (this: Bound, ...operands: Operand[]) => FunctionBuilder;
type Ops<T> = { [K in keyof T]: OpFn };

/** The instruction methods of one table: `${prefix}.${op}`, one-byte or SIMD opcodes. */
function ops<T extends Record<string, string>>(prefix: string, table: T, isSimd: boolean): Ops<T> {
  const out: Record<string, OpFn> = {};
  for (const [op, sig] of Object.entries(table)) {
    const full = `${prefix}.${op}`;
    const code = isSimd ? SIMD[full] : NUMERIC[full];
    if (code === undefined) throw new Error(`assembler: no opcode for ${full}`);
    const types = [...sig].map((c) => TYPE_OF[c]);
    out[op] = function (this: Bound, ...operands: Operand[]) {
      const f = this.f;
      if (operands.length > types.length)
        throw new Error(`assembler: ${full} takes at most ${types.length} operands, got ${operands.length}`);
      // the operands given are the last ones: the earlier ones are already on the stack
      const first = types.length - operands.length;
      for (let i = 0; i < operands.length; i++) f.push(operands[i], types[first + i]);
      return isSimd ? f.simd(code) : f.emit(code);
    };
  }
  return out as Ops<T>;
}

// log2 of the natural alignment: the default (and largest valid) alignment hint of a memarg.
// The hint promises nothing: any address works, and V8 generates the same code whatever it says.
// Every load and store takes (..., offset = 0, align = natural) as its last parameters.
const ALIGN: Record<string, number> = { i32: 2, i64: 3, f32: 2, f64: 3, v128: 4 };

/** Scalar loads and stores: load(addr?, offset), store(addr?, value?, offset). */
function memory(type: 'i32' | 'i64' | 'f32' | 'f64') {
  const load = OP[`${type}.load`],
    store = OP[`${type}.store`];
  return {
    load(this: Bound, addr?: Operand, offset = 0, align = ALIGN[type]) {
      return this.f.opt(addr, 'i32').emit(load).memarg(align, offset, ALIGN[type]);
    },
    store(this: Bound, addr?: Operand, value?: Operand, offset = 0, align = ALIGN[type]) {
      return this.f.opt(addr, 'i32').opt(value, type).emit(store).memarg(align, offset, ALIGN[type]);
    },
  };
}

/** extract_lane(lane, v?) and replace_lane(lane, v?, x?) of a SIMD shape with `lane`-typed lanes. */
function lanes(shape: string, lane: ValType) {
  const extract = SIMD[`${shape}.extract_lane`],
    replace = SIMD[`${shape}.replace_lane`];
  return {
    extract_lane(this: Bound, index: number, v?: Operand) {
      return this.f.opt(v, 'v128').simd(extract).emit(index);
    },
    replace_lane(this: Bound, index: number, v?: Operand, x?: Operand) {
      return this.f.opt(v, 'v128').opt(x, lane).simd(replace).emit(index);
    },
  };
}

/** A SIMD load: load(addr?, offset). */
function simdLoad(op: string, alignLog2: number) {
  const code = SIMD[op];
  return function (this: Bound, addr?: Operand, offset = 0, align = alignLog2) {
    return this.f.opt(addr, 'i32').simd(code).memarg(align, offset, alignLog2);
  };
}

/** A SIMD store: store(addr?, value?, offset). */
function simdStore(op: string) {
  const code = SIMD[op];
  return function (this: Bound, addr?: Operand, value?: Operand, offset = 0, align = 4) {
    return this.f.opt(addr, 'i32').opt(value, 'v128').simd(code).memarg(align, offset, 4);
  };
}
/** A lane load or store: (lane, addr?, vec?, offset). */
function simdLane(op: string, alignLog2: number) {
  const code = SIMD[op];
  return function (this: Bound, lane: number, addr?: Operand, vec?: Operand, offset = 0, align = alignLog2) {
    return this.f.opt(addr, 'i32').opt(vec, 'v128').simd(code).memarg(align, offset, alignLog2).emit(lane);
  };
}

function lanes4(values: number[]): number[] {
  if (values.length === 1) return [values[0], values[0], values[0], values[0]];
  if (values.length !== 4) throw new Error(`assembler: a 4-lane constant takes 1 or 4 values, got ${values.length}`);
  return values;
}

export const I32 = {
  ...ops('i32', I32_OPS, false),
  ...memory('i32'),
  const(this: Bound, v: number) {
    return this.f.emit(OP['i32.const']).imm32(v);
  },
};
export const I64 = {
  ...ops('i64', I64_OPS, false),
  ...memory('i64'),
  const(this: Bound, v: number | bigint) {
    return this.f.emit(OP['i64.const']).immS(v);
  },
};
export const F32 = {
  ...ops('f32', F32_OPS, false),
  ...memory('f32'),
  const(this: Bound, v: number) {
    return this.f.emit(OP['f32.const']).immF32(v);
  },
};
export const F64 = {
  ...ops('f64', F64_OPS, false),
  ...memory('f64'),
  const(this: Bound, v: number) {
    return this.f.emit(OP['f64.const']).immF64(v);
  },
};

export const V128 = {
  ...ops('v128', V128_OPS, true),
  load: simdLoad('v128.load', 4),
  store: simdStore('v128.store'),
  /** One f32 / i32 from memory in every lane. */
  load32_splat: simdLoad('v128.load32_splat', 2),
  load64_splat: simdLoad('v128.load64_splat', 3),
  /** 4 (or 8) bytes into lane 0, zeros elsewhere. */
  load32_zero: simdLoad('v128.load32_zero', 2),
  load64_zero: simdLoad('v128.load64_zero', 3),
  /** vec with its 32-bit lane `lane` replaced from memory. */
  load32_lane: simdLane('v128.load32_lane', 2),
  /** Stores the 32-bit (64-bit) lane `lane` of vec. */
  store32_lane: simdLane('v128.store32_lane', 2),
  store64_lane: simdLane('v128.store64_lane', 3),
  /** The shuffle of 32-bit lanes (0-3 from a, 4-7 from b): e.g. [0, 4, 1, 5] interleaves the low halves. */
  shuffle32(this: Bound, lanes: readonly number[], a?: Operand, b?: Operand) {
    return this.f.i8x16.shuffle(
      lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]),
      a,
      b,
    );
  },
  /** A 16-byte constant. */
  const(this: Bound, bytes: ArrayLike<number>) {
    if (bytes.length !== 16) throw new Error(`assembler: v128.const takes 16 bytes, got ${bytes.length}`);
    return this.f.simd(SIMD['v128.const']).emit(...Array.from(bytes));
  },
};

export const F32X4 = {
  ...ops('f32x4', F32X4_OPS, true),
  ...lanes('f32x4', 'f32'),
  /** 4 lanes, or 1 value for all four. */
  const(this: Bound, ...values: number[]) {
    return this.f.v128.const(new Uint8Array(new Float32Array(lanes4(values)).buffer));
  },
};
export const I32X4 = {
  ...ops('i32x4', I32X4_OPS, true),
  ...lanes('i32x4', 'i32'),
  const(this: Bound, ...values: number[]) {
    return this.f.v128.const(new Uint8Array(new Int32Array(lanes4(values)).buffer));
  },
};
export const F64X2 = {
  ...ops('f64x2', F64X2_OPS, true),
  ...lanes('f64x2', 'f64'),
};
export const I8X16 = {
  /** Bytes of a and b (0-15 from a, 16-31 from b) picked by 16 constant lane indices. */
  shuffle(this: Bound, lanes: ArrayLike<number>, a?: Operand, b?: Operand) {
    if (lanes.length !== 16 || Array.from(lanes).some((l) => !(l >= 0 && l < 32)))
      throw new Error(`assembler: i8x16.shuffle takes 16 lane indices in [0, 32), got ${Array.from(lanes)}`);
    return this.f
      .opt(a, 'v128')
      .opt(b, 'v128')
      .simd(SIMD['i8x16.shuffle'])
      .emit(...Array.from(lanes));
  },
  swizzle(this: Bound, a?: Operand, s?: Operand) {
    return this.f.opt(a, 'v128').opt(s, 'v128').simd(SIMD['i8x16.swizzle']);
  },
};
