// Engine-wide state: the current backend, whether gradients are recorded, and the stack of
// tidy() scopes that own the tensors created inside them.
import type { Backend, BackendName } from './backend.ts';
import { CpuBackend } from './cpu/backend.ts';
import type { AdapterSummary } from './wgsl/adapter.ts';

let cpu: CpuBackend | null = null;
let current: Backend | null = null;

export function cpuBackend(): CpuBackend {
  cpu ??= new CpuBackend();
  return cpu;
}

/** The backend new tensors are created on (CPU until another is set). */
export function getBackend(): Backend {
  current ??= cpuBackend();
  return current;
}

export function setBackend(b: Backend): void {
  current = b;
}

/** How initBackend chose the backend (steps/step00-setup.ts records it). */
export interface BackendSelection {
  requested: BackendName;
  backend: Backend;
  /** one line: why this backend */
  reason: string;
  /** the WebGPU adapter that was looked at, if any */
  adapter: AdapterSummary | null;
}

let selection: BackendSelection | null = null;

/** The last choice initBackend made (null before its first call). */
export function backendSelection(): BackendSelection | null {
  return selection;
}

/**
 * Resolves a backend by name: 'cpu'; 'webgpu' (an error if no adapter; a software adapter is used,
 * with a one-line warning); 'auto' (WebGPU on a hardware adapter, else the CPU, saying why in one
 * line). `MI_BACKEND` in the environment overrides the default 'auto'. Makes the result the
 * current backend and records the choice (backendSelection()). The CPU backend it returns has its
 * WebAssembly kernels compiled (asynchronously, as a browser's main thread requires).
 */
export async function initBackend(name?: BackendName, log: (line: string) => void = console.error): Promise<Backend> {
  const env = typeof process !== 'undefined' ? process.env.MI_BACKEND : undefined;
  const want = (name ?? env ?? 'auto') as BackendName;
  if (want !== 'auto' && want !== 'cpu' && want !== 'webgpu') {
    throw new Error(`backend: unknown backend '${want}' (expected auto, cpu or webgpu)`);
  }
  const choose = async (backend: Backend, reason: string, adapter: AdapterSummary | null = null) => {
    if (backend === cpu) await cpu.prepare();
    selection = { requested: want, backend, reason, adapter };
    setBackend(backend);
    return backend;
  };
  if (want === 'cpu') return choose(cpuBackend(), 'asked for the CPU backend');
  const { createWebGpuBackend } = await import('./wgsl/backend.ts');
  if (want === 'webgpu') {
    const gpu = await createWebGpuBackend();
    const a = gpu.adapterInfo;
    if (a.software) log(`webgpu: using a software adapter (${a.description || a.vendor}): CPU speed, for tests`);
    return choose(gpu, `asked for WebGPU; ${a.software ? 'a software' : 'a hardware'} adapter`, a);
  }
  // auto: look at the adapter before making a device on it
  const { probeAdapter } = await import('./wgsl/device.ts');
  const cpuBecause = (why: string, adapter: AdapterSummary | null = null, hint = '') => {
    log(`backend: ${why}; using the CPU backend${hint}`);
    return choose(cpuBackend(), `auto: ${why}`, adapter);
  };
  let adapter: AdapterSummary | null;
  try {
    adapter = await probeAdapter();
  } catch (e) {
    return cpuBecause(`no WebGPU (${(e as Error).message})`);
  }
  if (!adapter) return cpuBecause('no WebGPU adapter');
  if (adapter.software) {
    const what = adapter.description || adapter.vendor;
    return cpuBecause(`only a software WebGPU adapter (${what}), slower than the CPU`, adapter, ' (--backend webgpu uses it anyway)');
  }
  try {
    const gpu = await createWebGpuBackend();
    return choose(gpu, 'auto: a hardware WebGPU adapter', gpu.adapterInfo);
  } catch (e) {
    return cpuBecause(`no WebGPU device on ${adapter.description || adapter.vendor} (${(e as Error).message})`, adapter);
  }
}

// ---- gradient recording -------------------------------------------------------------------
let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn with recording set to `on`, restoring the previous setting after (also on a throw). */
function withGrad<T>(on: boolean, fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = on;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Runs fn without recording operations for autograd. */
export function noGrad<T>(fn: () => T): T {
  return withGrad(false, fn);
}

/** Runs fn with recording on, even inside noGrad (grad, vjp and jacobian need their own forward). */
export function enableGrad<T>(fn: () => T): T {
  return withGrad(true, fn);
}

// ---- scopes ----------------------------------------------------------------------------------
export interface Disposable {
  dispose(): void;
  readonly disposed: boolean;
}
const scopes: Set<Disposable>[] = [];

/** Called for every new tensor: the innermost scope takes ownership of it. */
export function track(t: Disposable): void {
  if (scopes.length) scopes[scopes.length - 1].add(t);
}

/** Removes a tensor from every scope, so that no tidy() disposes it. */
export function keep<T extends Disposable>(t: T): T {
  for (const s of scopes) s.delete(t);
  return t;
}

export function collectDisposables(value: unknown, into: Set<Disposable>, depth = 0): void {
  if (value === null || typeof value !== 'object' || depth > 8) return;
  if ('dispose' in value && 'disposed' in value) {
    into.add(value as Disposable);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) collectDisposables(v, into, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) collectDisposables(v, into, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collectDisposables(v, into, depth + 1);
  }
}

function endScope(scope: Set<Disposable>, result: unknown): void {
  scopes.pop();
  const kept = new Set<Disposable>();
  collectDisposables(result, kept);
  for (const t of scope) if (!kept.has(t) && !t.disposed) t.dispose();
  // what the scope returns belongs to the enclosing scope
  for (const t of kept) if (scope.has(t)) track(t);
}

/**
 * Runs fn and disposes every tensor created inside it except those it returns (directly or
 * inside arrays, Maps and plain objects) and those passed to keep().
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope(scope, undefined);
    throw e;
  }
  if (result instanceof Promise) throw new Error('tidy: fn returned a Promise; use tidyAsync');
  endScope(scope, result);
  return result;
}

/**
 * tidy() for async work (reading results inside the scope). Scopes are a stack: do not interleave
 * two tidyAsync calls concurrently.
 */
export async function tidyAsync<T>(fn: () => Promise<T>): Promise<T> {
  const scope = new Set<Disposable>();
  scopes.push(scope);
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    endScope(scope, undefined);
    throw e;
  }
  endScope(scope, result);
  return result;
}
