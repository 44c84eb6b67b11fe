// Walking a strided view on the CPU: the runs of its innermost axis, with every operand's offset
// (shared by the elementwise kernels and the strided copy).

/**
 * Calls `body(offsets, count, innerStrides)` for each run of the innermost axis of `shape`, with the
 * start offset of every operand (one strides list per operand; the output is contiguous and first).
 * `offsets` is reused between calls (read it, do not keep it).
 */
export function stridedRuns(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  body: (offsets: number[], count: number, inner: number[]) => void,
): void {
  const rank = shape.length;
  const nOps = strides.length;
  if (rank === 0) {
    body(new Array(nOps).fill(0), 1, new Array(nOps).fill(0));
    return;
  }
  for (const d of shape) if (d === 0) return;
  const last = rank - 1;
  const count = shape[last];
  const inner = strides.map((s) => s[last]);
  const idx = new Array<number>(rank).fill(0);
  const offsets = new Array<number>(nOps).fill(0);
  for (;;) {
    body(offsets, count, inner);
    // odometer over the outer axes
    let ax = last - 1;
    while (ax >= 0) {
      idx[ax]++;
      for (let o = 0; o < nOps; o++) offsets[o] += strides[o][ax];
      if (idx[ax] < shape[ax]) break;
      for (let o = 0; o < nOps; o++) offsets[o] -= strides[o][ax] * shape[ax];
      idx[ax] = 0;
      ax--;
    }
    if (ax < 0) return;
  }
}
