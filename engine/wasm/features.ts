// What this JavaScript engine offers the WebAssembly kernels, checked once at start: SIMD (a tiny
// module using v128 is validated), shared memory (a shared WebAssembly.Memory can be made: Node,
// a cross-origin isolated page), and whether WebAssembly modules may be compiled synchronously
// (not in a browser's main thread, which refuses modules over a few KB: precompileKernelModules
// in engine/wasm/kernel.ts compiles them asynchronously first). MI_WASM=0 in the environment
// switches the WebAssembly kernels off (the CPU backend then runs its scalar TypeScript kernels).

export interface WasmFeatures {
  /** WebAssembly itself (a WebAssembly.Memory can be made) */
  wasm: boolean;
  /** WebAssembly SIMD (v128) */
  simd: boolean;
  /** a shared WebAssembly.Memory (SharedArrayBuffer, cross-origin isolated where a browser requires it) */
  sharedMemory: boolean;
  /** modules may be compiled synchronously (Node, workers; not a browser's main thread) */
  syncCompile: boolean;
  /** MI_WASM=0 in the environment (unset or 1: on) */
  switchedOff: boolean;
}

/** (module (func (result v128) v128.const i32x4 0 0 0 0)): magic and version, the type () -> v128, one function of it, its body */
const SIMD_PROBE = Uint8Array.from(
  `0061736d01000000 0105016000017b 03020100 0a16011400fd0c${'00'.repeat(16)}0b`.replace(/ /g, '').match(/../g)!,
  (h) => Number.parseInt(h, 16),
);

function check(what: () => boolean): boolean {
  try {
    return what();
  } catch {
    return false;
  }
}

function env(name: string): string | undefined {
  return typeof process !== 'undefined' ? process.env?.[name] : undefined;
}

function detect(): WasmFeatures {
  const wasm =
    typeof WebAssembly !== 'undefined' && check(() => new WebAssembly.Memory({ initial: 1, maximum: 1 }) instanceof WebAssembly.Memory);
  const simd = wasm && check(() => WebAssembly.validate(SIMD_PROBE));
  const g = globalThis as { crossOriginIsolated?: boolean; window?: unknown; document?: unknown };
  const sharedMemory =
    wasm &&
    typeof SharedArrayBuffer !== 'undefined' &&
    g.crossOriginIsolated !== false &&
    check(() => new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer);
  const syncCompile = !(typeof g.window !== 'undefined' && typeof g.document !== 'undefined');
  const flag = env('MI_WASM');
  if (flag !== undefined && flag !== '0' && flag !== '1') throw new Error(`MI_WASM must be 0 (scalar kernels) or 1, got '${flag}'`);
  return { wasm, simd, sharedMemory, syncCompile, switchedOff: flag === '0' };
}

/** The features of this engine (detected once, on first call). */
let features: WasmFeatures | null = null;
export function wasmFeatures(): WasmFeatures {
  features ??= detect();
  return features;
}
