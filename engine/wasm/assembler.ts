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
  append,
  BLOCK_EMPTY,
  type Bytes,
  EXTERNAL,
  f32Bytes,
  f64Bytes,
  name as encodeName,
  OP,
  PREAMBLE,
  SECTION,
  SIMD_PREFIX,
  section,
  sleb,
  sleb32,
  uleb,
  VALTYPE,
  type ValType,
} from './encoding.ts';
import { type Bound, F32, F32X4, F64, F64X2, I8X16, I32, I32X4, I64, V128 } from './instructions.ts';

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

/** A namespace object for one builder: inherits the shared methods, which reach it as this.f. */
function bind<T extends object>(f: FunctionBuilder, proto: T): T & Bound {
  const ns = Object.create(proto) as T & { f: FunctionBuilder };
  ns.f = f;
  return ns;
}

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

  // ---- the encoding layer the instruction namespaces (instructions.ts) are written on

  /** A SIMD opcode: the 0xfd prefix, then the opcode as a uleb. */
  simd(code: number): this {
    this.body.push(SIMD_PREFIX);
    uleb(this.body, code);
    return this;
  }

  /** Pushes an operand whose position expects `type`: see the header. */
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

  /** push, for an operand that may be left out (then it is already on the stack). */
  opt(x: Operand | undefined, type: ValType): this {
    return x === undefined ? this : this.push(x, type);
  }

  imm32(v: number): this {
    sleb32(this.body, v);
    return this;
  }
  immS(v: number | bigint): this {
    sleb(this.body, v);
    return this;
  }
  immF32(v: number): this {
    f32Bytes(this.body, v);
    return this;
  }
  immF64(v: number): this {
    f64Bytes(this.body, v);
    return this;
  }
  /** A memory immediate: alignment hint (log2 bytes, at most the access's natural one) and offset. */
  memarg(alignLog2: number, offset: number, natural = alignLog2): this {
    if (!Number.isInteger(offset) || offset < 0 || offset >= 2 ** 32) throw new RangeError(`assembler: bad memory offset ${offset}`);
    if (!(Number.isInteger(alignLog2) && alignLog2 >= 0 && alignLog2 <= natural))
      throw new RangeError(`assembler: alignment 2^${alignLog2} is more than the access's natural 2^${natural}`);
    uleb(this.body, alignLog2);
    uleb(this.body, offset);
    return this;
  }

  // ---- instructions

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
      this.opt(value, x.type).body.push(OP['local.set']);
      uleb(this.body, x.index);
      return this;
    },
    tee: (x: Local, value?: Operand) => {
      this.opt(value, x.type).body.push(OP['local.tee']);
      uleb(this.body, x.index);
      return this;
    },
  };

  readonly i32 = bind(this, I32);
  readonly i64 = bind(this, I64);
  readonly f32 = bind(this, F32);
  readonly f64 = bind(this, F64);
  readonly v128 = bind(this, V128);
  readonly f32x4 = bind(this, F32X4);
  readonly i32x4 = bind(this, I32X4);
  readonly f64x2 = bind(this, F64X2);
  readonly i8x16 = bind(this, I8X16);

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

  /** cond ? a : b (number operands are i32). */
  select(a?: Operand, b?: Operand, cond?: Operand): this {
    for (const x of [a, b, cond]) if (x !== undefined) this.push(x, 'i32');
    return this.emit(OP.select);
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
    append(code, this.body);
    code.push(OP.end);
    const out: Bytes = [];
    uleb(out, code.length);
    append(out, code);
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
      for (const it of items) append(b, it);
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
    append(names, fnNames);
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
