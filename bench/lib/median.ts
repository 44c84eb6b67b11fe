// The one timing every benchmark script reports: tinybench's median (p50) wall time of a call.
import { Bench } from 'tinybench';

/**
 * Median wall time of `fn` in ms over at least `iterations` runs and at least `timeMs` of running,
 * after `warmup` untimed runs; a run that throws fails the benchmark with its message.
 */
export async function median(name: string, fn: () => unknown, iterations: number, { timeMs = 0, warmup = 1 } = {}): Promise<number> {
  const bench = new Bench({ iterations, time: timeMs, warmupIterations: warmup, warmupTime: 0 });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0].result;
  if (r.state !== 'completed') throw new Error(`bench ${name}: ${r.state}${'error' in r ? `: ${r.error.message}` : ''}`);
  return r.latency.p50;
}

/** The median of numbers (the middle one, or the mean of the two middle ones). */
export function medianOf(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}
