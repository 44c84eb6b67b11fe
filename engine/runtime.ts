// Engine-wide state: the current backend, whether gradients are recorded, and the stack of
// tidy() scopes that own the tensors created inside them.
import type { Backend, BackendName } from './backend.ts';
import { CpuBackend } from './cpu/backend.ts';

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

/**
 * Resolves a backend by name: 'cpu'; 'webgpu' (an error if no adapter); 'auto' (WebGPU when an
 * adapter exists, else the CPU, saying so in one line). `MI_BACKEND` in the environment overrides
 * the default 'auto'. Makes the result the current backend. The CPU backend it returns has its
 * WebAssembly kernels compiled (asynchronously, as a browser's main thread requires).
 */
export async function initBackend(name?: BackendName, log: (line: string) => void = console.error): Promise<Backend> {
  const env = typeof process !== 'undefined' ? process.env.MI_BACKEND : undefined;
  const want = (name ?? env ?? 'auto') as BackendName;
  if (want !== 'auto' && want !== 'cpu' && want !== 'webgpu') {
    throw new Error(`backend: unknown backend '${want}' (expected auto, cpu or webgpu)`);
  }
  if (want === 'cpu') {
    await cpuBackend().prepare();
    setBackend(cpuBackend());
    return getBackend();
  }
  const { createWebGpuBackend } = await import('./wgsl/backend.ts');
  const gpu = await createWebGpuBackend().catch((e: Error) => {
    if (want === 'webgpu') throw e;
    log(`backend: no WebGPU adapter (${e.message}); using the CPU backend`);
    return null;
  });
  if (!gpu) await cpuBackend().prepare();
  setBackend(gpu ?? cpuBackend());
  return getBackend();
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
