// Task variables: the per-position labels of a task batch (interp/tasks) turned into the targets
// that SAE latents are correlated with and sparse probes predict. One rule for every task, so a
// new task's labels work without code here:
//  - an indicator label (one value wherever it applies, e.g. induction's isTrigger = 1 at triggers)
//    becomes a BINARY variable over every row: 1 where the label applies, 0 elsewhere;
//  - a token-valued label (the token the model must output: copyToken, value) becomes a BINARY
//    variable over the rows where it applies: "the token id is in the upper half of the range seen".
//    One-vs-rest over the tokens would need several rows of every token in every CV split, which
//    a collection's few hundred scored rows cannot give (and a 50k vocabulary never could); one bit
//    of the identity is decodable whenever the identity is, with balanced classes and chance 1/2;
//  - any other label (positions, distances, indices) is CONTINUOUS over the rows where it applies.
// Rows are (sequence, position) pairs in row-major order, as the collected activations.
import { NO_LABEL } from './tasks/index.ts';

/** Labels whose value is a token id (the answer the model must produce). */
export const TOKEN_LABELS: ReadonlySet<string> = new Set(['copyToken', 'value']);

export interface TaskVariable {
  /** the label name, e.g. "isTrigger", "copyToken>=9", "distance" */
  name: string;
  /** the label it comes from */
  label: string;
  kind: 'binary' | 'continuous';
  description: string;
  /** the rows where the variable is defined (ascending) */
  rows: Int32Array;
  /** its value at each of those rows (0/1 for binary) */
  values: Float64Array;
}

/**
 * The task variables of per-position labels ({name: Int32Array [rows]}, NO_LABEL where a label does
 * not apply). Variables with fewer than `minRows` defined rows, or with a single value, are left out.
 */
export function taskVariables(labels: Record<string, ArrayLike<number>>, opts: { minRows?: number } = {}): TaskVariable[] {
  const minRows = opts.minRows ?? 8;
  const out: TaskVariable[] = [];
  for (const [label, lab] of Object.entries(labels)) {
    const rows: number[] = [];
    const distinct = new Set<number>();
    for (let r = 0; r < lab.length; r++) {
      if (lab[r] === NO_LABEL) continue;
      rows.push(r);
      distinct.add(lab[r]);
    }
    if (rows.length < minRows) continue;
    if (distinct.size === 1) {
      if (rows.length === lab.length) continue; // applies everywhere: nothing to tell apart
      out.push({
        name: label,
        label,
        kind: 'binary',
        description: `${label}: 1 where the label applies, 0 at every other position`,
        rows: Int32Array.from({ length: lab.length }, (_, r) => r),
        values: Float64Array.from({ length: lab.length }, (_, r) => (lab[r] === NO_LABEL ? 0 : 1)),
      });
    } else if (TOKEN_LABELS.has(label)) {
      const vals = rows.map((r) => lab[r]);
      const lo = Math.min(...vals),
        hi = Math.max(...vals);
      const cut = Math.ceil((lo + hi + 1) / 2); // upper half of [lo, hi]
      out.push({
        name: `${label}>=${cut}`,
        label,
        kind: 'binary',
        description: `${label} (a token id) is in the upper half [${cut}, ${hi}] of the ids seen, at the positions where it applies`,
        rows: Int32Array.from(rows),
        values: Float64Array.from(vals, (v) => (v >= cut ? 1 : 0)),
      });
    } else {
      out.push({
        name: label,
        label,
        kind: 'continuous',
        description: `${label} (a number) at the positions where it applies`,
        rows: Int32Array.from(rows),
        values: Float64Array.from(rows, (r) => lab[r]),
      });
    }
  }
  return out;
}
