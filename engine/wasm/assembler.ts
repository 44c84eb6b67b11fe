// A small WebAssembly assembler: kernels are written in TypeScript as calls on a FunctionBuilder,
// which appends instruction bytes; a ModuleBuilder gathers the functions, the imported memory and
// the exports into a module's bytes. No text format, no parser: a kernel generator is ordinary code
// (loops in TypeScript unroll a WebAssembly loop body, constants are folded before emission).
//
// Instructions are a stack machine's, and every instruction method may also be handed its operands:
// each operand is pushed before the instruction, in order. An operand is a local (local.get), a
// number (a constant of the type that position expects) or a function that emits code. So
//   f.i32.add(p, () => f.i32.shl(i, 2))   emits   local.get p; local.get i; i32.const 2; i32.shl; i32.add
// and with no operands the instruction takes what is already on the stack.
//
// Example, y[i] += a * x[i] over n floats, four at a time (n a multiple of 4):
//   const m = new ModuleBuilder();
//   m.importMemory({ initial: 1, maximum: 16, shared: true });
//   m.function('axpy', ['i32', 'i32', 'i32', 'f32'], [], (f, x, y, n, a) => {
//     const i = f.local.declare('i32'), av = f.local.declare('v128');
//     f.local.set(av, () => f.f32x4.splat(a));            // hoisted out of the loop
//     f.for(i, 0, () => f.i32.shl(n, 2), 16, () => {       // i: byte offset, 16 bytes a step
//       f.v128.store(() => f.i32.add(y, i), () =>
//         f.f32x4.add(() => f.v128.load(() => f.i32.add(y, i)), () => f.f32x4.mul(av, () => f.v128.load(() => f.i32.add(x, i)))));
//     });
//   }, { export: true });
//   const mod = m.compile();
//
// Validation is WebAssembly's own: compile() reports V8's message, which names the function.
import {
  BLOCK_EMPTY,
  type Bytes,
  EXTERNAL,
  f32Bytes,
  f64Bytes,
  NUMERIC,
  name as encodeName,
  OP,
  PREAMBLE,
  SECTION,
  SIMD,
  SIMD_PREFIX,
  section,
  sleb,
  sleb32,
  uleb,
  VALTYPE,
  type ValType,
} from './encoding.ts';

export type { ValType } from './encoding.ts';

/** A parameter or local variable of the function being built. */
export interface Local {
  readonly index: number;
  readonly type: ValType;
}

/** An open block, loop or if, the target of br / br_if (a loop's label continues it). */
export interface Label {
  readonly depth: number;
}

/** What an instruction method pushes before the instruction: see the header. */
export type Operand = Local | number | bigint | (() => void);

/** A function of the module, for call and export. */
export interface FuncRef {
  readonly index: number;
  readonly name: string;
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

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

function lanes4(lanes: number[]): number[] {
  if (lanes.length === 1) return [lanes[0], lanes[0], lanes[0], lanes[0]];
  if (lanes.length !== 4) throw new Error(`assembler: a 4-lane constant takes 1 or 4 values, got ${lanes.length}`);
  return lanes;
}

type OpFn = (...operands: Operand[]) => FunctionBuilder;
type Ops<T> = { [K in keyof T]: OpFn };

// log2 of the natural alignment, given in every memarg (an alignment hint; any address works)
const ALIGN: Record<string, number> = { i32: 2, i64: 3, f32: 2, f64: 3, v128: 4 };

/**
 * The body of one function: params are locals 0..n-1, further locals come from local.declare.
 * Every method appends bytes and returns the builder.
 */
export class FunctionBuilder {
  readonly body: Bytes = [];
  readonly params: Local[];
  private readonly locals: ValType[] = [];
  private readonly open: Label[] = [];

  constructor(
    readonly name: string,
    params: readonly ValType[],
  ) {
    this.params = params.map((type, index) => ({ index, type }));
  }

  /** Raw bytes, for anything the builder has no method for. */
  emit(...bytes: number[]): this {
    for (const b of bytes) this.body.push(b);
    return this;
  }

  private simd(op: string): void {
    const code = SIMD[op];
    if (code === undefined) throw new Error(`assembler: no SIMD opcode ${op}`);
    this.body.push(SIMD_PREFIX);
    uleb(this.body, code);
  }

  /** Pushes an operand whose position expects `type`. */
  push(x: Operand, type: ValType): this {
    if (typeof x === 'function') x();
    else if (typeof x === 'object') this.local.get(x);
    else if (type === 'i32') this.emit(OP['i32.const']).imm32(Number(x));
    else if (type === 'i64') this.emit(OP['i64.const']).immS(x);
    else if (type === 'f32') this.emit(OP['f32.const']).immF32(Number(x));
    else if (type === 'f64') this.emit(OP['f64.const']).immF64(Number(x));
    else throw new Error(`assembler: a number (${x}) cannot be a v128 operand; use v128.const or a splat`);
    return this;
  }

  private pushAll(operands: Operand[], sig: string, what: string): void {
    if (operands.length > sig.length) throw new Error(`assembler: ${what} takes at most ${sig.length} operands, got ${operands.length}`);
    // operands given are the last ones of the signature: the earlier ones are already on the stack
    const first = sig.length - operands.length;
    operands.forEach((x, i) => {
      this.push(x, TYPE_OF[sig[first + i]]);
    });
  }

  private imm32(v: number): this {
    sleb32(this.body, v);
    return this;
  }
  private immS(v: number | bigint): this {
    sleb(this.body, v);
    return this;
  }
  private immF32(v: number): this {
    f32Bytes(this.body, v);
    return this;
  }
  private immF64(v: number): this {
    f64Bytes(this.body, v);
    return this;
  }
  private memarg(alignLog2: number, offset: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset >= 2 ** 32) throw new RangeError(`assembler: bad memory offset ${offset}`);
    uleb(this.body, alignLog2);
    uleb(this.body, offset);
  }

  /** The instruction methods of one numeric namespace: `${prefix}.${op}`, one-byte or SIMD opcodes. */
  private ops<T extends Record<string, string>>(prefix: string, table: T, isSimd: boolean): Ops<T> {
    const out: Record<string, OpFn> = {};
    for (const [op, sig] of Object.entries(table)) {
      const full = `${prefix}.${op}`;
      const code = isSimd ? SIMD[full] : NUMERIC[full];
      if (code === undefined) throw new Error(`assembler: no opcode for ${full}`);
      out[op] = (...operands) => {
        this.pushAll(operands, sig, full);
        if (isSimd) this.simd(full);
        else this.body.push(code);
        return this;
      };
    }
    return out as Ops<T>;
  }

  /** Scalar loads and stores of one type: load(addr?, offset), store(addr?, value?, offset). */
  private memory(type: ValType, sig: string) {
    return {
      load: (addr?: Operand, offset = 0) => {
        if (addr !== undefined) this.push(addr, 'i32');
        this.body.push(OP[`${type}.load` as keyof typeof OP]);
        this.memarg(ALIGN[type], offset);
        return this;
      },
      store: (addr?: Operand, value?: Operand, offset = 0) => {
        if (addr !== undefined) this.push(addr, 'i32');
        if (value !== undefined) this.push(value, TYPE_OF[sig]);
        this.body.push(OP[`${type}.store` as keyof typeof OP]);
        this.memarg(ALIGN[type], offset);
        return this;
      },
    };
  }

  /** extract_lane(lane, v?) and replace_lane(lane, v?, x?) of a SIMD shape whose lanes are `lane` typed. */
  private lanes(shape: string, lane: ValType) {
    return {
      extract_lane: (index: number, v?: Operand) => {
        if (v !== undefined) this.push(v, 'v128');
        this.simd(`${shape}.extract_lane`);
        return this.emit(index);
      },
      replace_lane: (index: number, v?: Operand, x?: Operand) => {
        if (v !== undefined) this.push(v, 'v128');
        if (x !== undefined) this.push(x, lane);
        this.simd(`${shape}.replace_lane`);
        return this.emit(index);
      },
    };
  }

  readonly local = {
    /** A new local variable (zero-initialised, as WebAssembly locals are). */
    declare: (type: ValType): Local => {
      this.locals.push(type);
      return { index: this.params.length + this.locals.length - 1, type };
    },
    get: (x: Local) => {
      this.body.push(OP['local.get']);
      uleb(this.body, x.index);
      return this;
    },
    set: (x: Local, value?: Operand) => {
      if (value !== undefined) this.push(value, x.type);
      this.body.push(OP['local.set']);
      uleb(this.body, x.index);
      return this;
    },
    tee: (x: Local, value?: Operand) => {
      if (value !== undefined) this.push(value, x.type);
      this.body.push(OP['local.tee']);
      uleb(this.body, x.index);
      return this;
    },
  };

  readonly i32 = {
    ...this.ops('i32', I32_OPS, false),
    ...this.memory('i32', 'i'),
    const: (v: number) => this.emit(OP['i32.const']).imm32(v),
  };
  readonly i64 = {
    ...this.ops('i64', I64_OPS, false),
    ...this.memory('i64', 'I'),
    const: (v: number | bigint) => this.emit(OP['i64.const']).immS(v),
  };
  readonly f32 = {
    ...this.ops('f32', F32_OPS, false),
    ...this.memory('f32', 'f'),
    const: (v: number) => this.emit(OP['f32.const']).immF32(v),
  };
  readonly f64 = {
    ...this.ops('f64', F64_OPS, false),
    ...this.memory('f64', 'F'),
    const: (v: number) => this.emit(OP['f64.const']).immF64(v),
  };

  /** A SIMD load or store: address (and value) operands, then the opcode and its memarg. */
  private simdMemory(op: string, alignLog2: number, operands: [Operand | undefined, ValType][], offset: number, lane?: number): this {
    for (const [x, t] of operands) if (x !== undefined) this.push(x, t);
    this.simd(op);
    this.memarg(alignLog2, offset);
    if (lane !== undefined) this.emit(lane);
    return this;
  }

  readonly v128 = {
    ...this.ops('v128', V128_OPS, true),
    load: (addr?: Operand, offset = 0) => this.simdMemory('v128.load', 4, [[addr, 'i32']], offset),
    store: (addr?: Operand, value?: Operand, offset = 0) =>
      this.simdMemory(
        'v128.store',
        4,
        [
          [addr, 'i32'],
          [value, 'v128'],
        ],
        offset,
      ),
    /** One f32 / i32 from memory in every lane. */
    load32_splat: (addr?: Operand, offset = 0) => this.simdMemory('v128.load32_splat', 2, [[addr, 'i32']], offset),
    load64_splat: (addr?: Operand, offset = 0) => this.simdMemory('v128.load64_splat', 3, [[addr, 'i32']], offset),
    /** 4 (or 8) bytes into lane 0, zeros elsewhere. */
    load32_zero: (addr?: Operand, offset = 0) => this.simdMemory('v128.load32_zero', 2, [[addr, 'i32']], offset),
    load64_zero: (addr?: Operand, offset = 0) => this.simdMemory('v128.load64_zero', 3, [[addr, 'i32']], offset),
    /** vec with its 32-bit lane `lane` replaced from memory. */
    load32_lane: (lane: number, addr?: Operand, vec?: Operand, offset = 0) =>
      this.simdMemory(
        'v128.load32_lane',
        2,
        [
          [addr, 'i32'],
          [vec, 'v128'],
        ],
        offset,
        lane,
      ),
    /** Stores the 32-bit lane `lane` of vec. */
    store32_lane: (lane: number, addr?: Operand, vec?: Operand, offset = 0) =>
      this.simdMemory(
        'v128.store32_lane',
        2,
        [
          [addr, 'i32'],
          [vec, 'v128'],
        ],
        offset,
        lane,
      ),
    store64_lane: (lane: number, addr?: Operand, vec?: Operand, offset = 0) =>
      this.simdMemory(
        'v128.store64_lane',
        3,
        [
          [addr, 'i32'],
          [vec, 'v128'],
        ],
        offset,
        lane,
      ),
    /** The shuffle of 32-bit lanes (0-3 from a, 4-7 from b): e.g. [0, 4, 1, 5] interleaves the low halves. */
    shuffle32: (lanes: readonly number[], a?: Operand, b?: Operand) =>
      this.i8x16.shuffle(
        lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]),
        a,
        b,
      ),
    /** A 16-byte constant. */
    const: (bytes: ArrayLike<number>) => {
      if (bytes.length !== 16) throw new Error(`assembler: v128.const takes 16 bytes, got ${bytes.length}`);
      this.simd('v128.const');
      return this.emit(...Array.from(bytes));
    },
  };

  readonly f32x4 = {
    ...this.ops('f32x4', F32X4_OPS, true),
    ...this.lanes('f32x4', 'f32'),
    const: (...lanes: number[]) => this.v128.const(new Uint8Array(new Float32Array(lanes4(lanes)).buffer)),
  };
  readonly i32x4 = {
    ...this.ops('i32x4', I32X4_OPS, true),
    ...this.lanes('i32x4', 'i32'),
    const: (...lanes: number[]) => this.v128.const(new Uint8Array(new Int32Array(lanes4(lanes)).buffer)),
  };
  readonly f64x2 = {
    ...this.ops('f64x2', F64X2_OPS, true),
    ...this.lanes('f64x2', 'f64'),
  };
  readonly i8x16 = {
    /** Bytes of a and b (0-15 from a, 16-31 from b) picked by 16 constant lane indices. */
    shuffle: (lanes: ArrayLike<number>, a?: Operand, b?: Operand) => {
      if (lanes.length !== 16 || Array.from(lanes).some((l) => !(l >= 0 && l < 32)))
        throw new Error(`assembler: i8x16.shuffle takes 16 lane indices in [0, 32), got ${Array.from(lanes)}`);
      if (a !== undefined) this.push(a, 'v128');
      if (b !== undefined) this.push(b, 'v128');
      this.simd('i8x16.shuffle');
      return this.emit(...Array.from(lanes));
    },
    swizzle: (a?: Operand, s?: Operand) => {
      if (a !== undefined) this.push(a, 'v128');
      if (s !== undefined) this.push(s, 'v128');
      this.simd('i8x16.swizzle');
      return this;
    },
  };

  /** Structured control. `body` gets the block's label; `result` is the block's value type, if any. */
  private structured(op: number, body: (label: Label) => void, result?: ValType): this {
    this.body.push(op, result ? VALTYPE[result] : BLOCK_EMPTY);
    const label = { depth: this.open.length + 1 };
    this.open.push(label);
    body(label);
    this.open.pop();
    this.body.push(OP.end);
    return this;
  }

  block(body: (label: Label) => void, result?: ValType): this {
    return this.structured(OP.block, body, result);
  }

  /** A loop: br / br_if to its label jumps back to the top. Falling off the end leaves it. */
  loop(body: (label: Label) => void, result?: ValType): this {
    return this.structured(OP.loop, body, result);
  }

  /** if cond then ... else ... end; cond null: the condition is already on the stack. */
  if(cond: Operand | null, then: (label: Label) => void, otherwise?: (label: Label) => void, result?: ValType): this {
    if (cond !== null) this.push(cond, 'i32');
    this.body.push(OP.if, result ? VALTYPE[result] : BLOCK_EMPTY);
    const label = { depth: this.open.length + 1 };
    this.open.push(label);
    then(label);
    if (otherwise) {
      this.body.push(OP.else);
      otherwise(label);
    }
    this.open.pop();
    this.body.push(OP.end);
    return this;
  }

  private relativeDepth(label: Label): number {
    if (!this.open.includes(label)) throw new Error(`assembler: ${this.name}: branch to a label that is not open here`);
    return this.open.length - label.depth;
  }

  br(label: Label): this {
    this.body.push(OP.br);
    uleb(this.body, this.relativeDepth(label));
    return this;
  }

  /** Branches when cond (i32, on the stack if not given) is non-zero. */
  br_if(label: Label, cond?: Operand): this {
    if (cond !== undefined) this.push(cond, 'i32');
    this.body.push(OP.br_if);
    uleb(this.body, this.relativeDepth(label));
    return this;
  }

  return(...values: Operand[]): this {
    for (const v of values) this.push(v, 'i32');
    return this.emit(OP.return);
  }

  call(fn: FuncRef, ...args: Operand[]): this {
    args.forEach((a, i) => {
      this.push(a, fn.params[fn.params.length - args.length + i]);
    });
    this.body.push(OP.call);
    uleb(this.body, fn.index);
    return this;
  }

  drop(): this {
    return this.emit(OP.drop);
  }
  unreachable(): this {
    return this.emit(OP.unreachable);
  }

  /**
   * A counted loop: i = from; while (i < to) { body(); i += step } (signed i32 compare, `to`
   * re-evaluated each time round, so give a local or constant). Emitted as a guarded do-while,
   * the shape compilers turn into one compare-and-branch per iteration.
   */
  for(i: Local, from: Operand, to: Operand, step: number, body: (exit: Label) => void): this {
    this.local.set(i, from);
    return this.block((exit) => {
      this.br_if(exit, () => this.i32.ge_s(i, to));
      this.loop((top) => {
        body(exit);
        this.local.set(i, () => this.i32.add(i, step));
        this.br_if(top, () => this.i32.lt_s(i, to));
      });
    });
  }

  /** The code section entry: locals (runs of one type), the body, end. */
  encode(): Bytes {
    if (this.open.length) throw new Error(`assembler: ${this.name}: ${this.open.length} blocks left open`);
    const groups: [number, ValType][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const code: Bytes = [];
    uleb(code, groups.length);
    for (const [n, t] of groups) {
      uleb(code, n);
      code.push(VALTYPE[t]);
    }
    for (const b of this.body) code.push(b);
    code.push(OP.end);
    const out: Bytes = [];
    uleb(out, code.length);
    for (const b of code) out.push(b);
    return out;
  }
}

/** An imported memory: "env" "memory" unless named otherwise; sizes in 64 KiB pages. */
export interface MemoryImport {
  module?: string;
  name?: string;
  initial: number;
  /** required for shared memory */
  maximum?: number;
  shared?: boolean;
}

/** Pages of a wasm32 memory at most: 4 GiB. */
export const MAX_PAGES = 65536;

interface Defined {
  ref: FuncRef;
  type: number;
  builder: FunctionBuilder;
}

/**
 * A module: imported memory (optional), functions, exports. Functions are numbered in the order
 * they are defined, so a function calls only those defined before it.
 */
export class ModuleBuilder {
  private memoryImport: MemoryImport | null = null;
  private readonly types: string[] = [];
  private readonly functions: Defined[] = [];
  private readonly exports: { name: string; kind: number; index: number }[] = [];

  importMemory(m: MemoryImport): this {
    if (m.shared && m.maximum === undefined) throw new Error('assembler: a shared memory needs a maximum');
    if (m.initial < 0 || (m.maximum ?? m.initial) > MAX_PAGES || m.initial > (m.maximum ?? MAX_PAGES))
      throw new RangeError(`assembler: memory pages ${m.initial}..${m.maximum} outside 0..${MAX_PAGES}`);
    this.memoryImport = m;
    return this;
  }

  /** Defines a function; `body` gets the builder and the parameters as locals. */
  function(
    name: string,
    params: readonly ValType[],
    results: readonly ValType[],
    body: (f: FunctionBuilder, ...params: Local[]) => void,
    opts: { export?: boolean | string } = {},
  ): FuncRef {
    const key = `${params.join(',')}->${results.join(',')}`;
    let type = this.types.indexOf(key);
    if (type < 0) type = this.types.push(key) - 1;
    const ref: FuncRef = { index: this.functions.length, name, params, results };
    const builder = new FunctionBuilder(name, params);
    body(builder, ...builder.params);
    this.functions.push({ ref, type, builder });
    if (opts.export) this.export(typeof opts.export === 'string' ? opts.export : name, ref);
    return ref;
  }

  export(name: string, fn: FuncRef): this {
    if (this.exports.some((e) => e.name === name)) throw new Error(`assembler: export ${name} defined twice`);
    this.exports.push({ name, kind: EXTERNAL.func, index: fn.index });
    return this;
  }

  /** The module's bytes. */
  encode(): Uint8Array<ArrayBuffer> {
    const out: Bytes = [...PREAMBLE];
    const vec = (items: Bytes[]): Bytes => {
      const b: Bytes = [];
      uleb(b, items.length);
      for (const it of items) for (const x of it) b.push(x);
      return b;
    };
    const valtypes = (ts: string) => (ts ? ts.split(',').map((t) => VALTYPE[t as ValType]) : []);
    section(
      out,
      SECTION.type,
      vec(
        this.types.map((key) => {
          const [p, r] = key.split('->');
          return [0x60, ...vec(valtypes(p).map((t) => [t])), ...vec(valtypes(r).map((t) => [t]))];
        }),
      ),
    );
    if (this.memoryImport) {
      const m = this.memoryImport;
      const imp: Bytes = [];
      encodeName(imp, m.module ?? 'env');
      encodeName(imp, m.name ?? 'memory');
      imp.push(EXTERNAL.memory);
      // limits: flag 0 (min), 1 (min, max), 3 (shared: min, max) -- threads proposal
      imp.push(m.shared ? 0x03 : m.maximum !== undefined ? 0x01 : 0x00);
      uleb(imp, m.initial);
      if (m.maximum !== undefined) uleb(imp, m.maximum);
      section(out, SECTION.import, vec([imp]));
    }
    section(
      out,
      SECTION.function,
      vec(
        this.functions.map((f) => {
          const b: Bytes = [];
          uleb(b, f.type);
          return b;
        }),
      ),
    );
    section(
      out,
      SECTION.export,
      vec(
        this.exports.map((e) => {
          const b: Bytes = [];
          encodeName(b, e.name);
          b.push(e.kind);
          uleb(b, e.index);
          return b;
        }),
      ),
    );
    section(out, SECTION.code, vec(this.functions.map((f) => f.builder.encode())));
    // the "name" custom section (function names, subsection 1): stack traces and compile errors
    // then name the generated function
    const names: Bytes = [];
    encodeName(names, 'name');
    const fnNames = vec(
      this.functions.map((f) => {
        const b: Bytes = [];
        uleb(b, f.ref.index);
        encodeName(b, f.ref.name);
        return b;
      }),
    );
    names.push(1);
    uleb(names, fnNames.length);
    for (const b of fnNames) names.push(b);
    section(out, SECTION.custom, names);
    return Uint8Array.from(out);
  }

  /**
   * Compiles synchronously. Fine in Node and in workers; a browser's main thread refuses to compile
   * modules over 4 KB synchronously, so use compileAsync there.
   */
  compile(): WebAssembly.Module {
    return new WebAssembly.Module(this.encode());
  }

  compileAsync(): Promise<WebAssembly.Module> {
    return WebAssembly.compile(this.encode());
  }
}
