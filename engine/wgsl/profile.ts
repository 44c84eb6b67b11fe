// Per-kernel GPU time from timestamp queries: what WebGpuBackend.profile(fn) returns. In profiling
// mode the backend records every dispatch in a compute pass of its own with `timestampWrites`
// (begin and end), resolves the queries when the submission goes out, and reads them back when
// fn is done; this module sums those pass times by kernel and pass label.

/** One timed pass: the kernel it belongs to, its pass label, and its GPU time. */
export interface PassTime {
  kernel: string;
  label: string;
  ns: number;
}

/** The passes of one (kernel, pass label), summed. */
export interface KernelTime {
  kernel: string;
  label: string;
  calls: number;
  totalMs: number;
  meanMs: number;
  /** share of the summed GPU time of the profile, 0..1 */
  share: number;
}

export interface KernelProfile {
  /** wall time of fn, including waiting for its GPU work */
  wallMs: number;
  /** sum of every pass's GPU time (passes run one after another, so at most wallMs) */
  gpuMs: number;
  passes: number;
  /** passes whose end timestamp came before their begin (counted as 0 ms) */
  invalid: number;
  /** slowest first */
  rows: KernelTime[];
}

/** Sums pass times by kernel and label, slowest first. */
export function summarise(passes: readonly PassTime[], wallMs: number, invalid = 0): KernelProfile {
  const by = new Map<string, KernelTime>();
  let total = 0;
  for (const p of passes) {
    const ms = p.ns / 1e6;
    total += ms;
    const key = `${p.kernel}\u0000${p.label}`;
    const row = by.get(key) ?? { kernel: p.kernel, label: p.label, calls: 0, totalMs: 0, meanMs: 0, share: 0 };
    row.calls++;
    row.totalMs += ms;
    by.set(key, row);
  }
  const rows = [...by.values()].sort((a, b) => b.totalMs - a.totalMs);
  for (const r of rows) {
    r.meanMs = r.totalMs / r.calls;
    r.share = total > 0 ? r.totalMs / total : 0;
  }
  return { wallMs, gpuMs: total, passes: passes.length, invalid, rows };
}

/** The `top` slowest rows as an aligned text table, with a header line of totals. */
export function formatProfile(p: KernelProfile, top = 10): string {
  const head = `GPU time ${p.gpuMs.toFixed(3)} ms in ${p.passes} passes (wall ${p.wallMs.toFixed(1)} ms)${p.invalid ? `, ${p.invalid} passes without a valid time` : ''}`;
  const rows = p.rows
    .slice(0, top)
    .map(
      (r) =>
        `  ${r.label.padEnd(28)} ${r.kernel.padEnd(18)} ${String(r.calls).padStart(5)} x ${r.meanMs.toFixed(4).padStart(9)} ms = ${r.totalMs.toFixed(3).padStart(9)} ms  ${(r.share * 100).toFixed(1).padStart(5)}%`,
    );
  const rest = p.rows.length > top ? [`  ... ${p.rows.length - top} more`] : [];
  return [head, `  ${'pass'.padEnd(28)} ${'kernel'.padEnd(18)} calls`, ...rows, ...rest].join('\n');
}
