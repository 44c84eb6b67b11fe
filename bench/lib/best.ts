// The WebAssembly kernel benchmarks' timing (wasm-elementwise.ts, wasm-matmul.ts): the fastest of a
// few synchronous calls after untimed warm-up calls, the figure least disturbed by a shared machine.

/** The fastest of `reps` timed calls of fn in ms, after `warm` untimed ones. */
export function bestMs(fn: () => void, reps: number, warm: number): number {
  for (let i = 0; i < warm; i++) fn();
  let t = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    t = Math.min(t, performance.now() - t0);
  }
  return t;
}
