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
//  - a category label (CATEGORY_LABELS: a part-of-speech id) makes no variable (its indicators do);
//  - any other label (positions, distances, indices) is CONTINUOUS over the rows where it applies.
// Rows are (sequence, position) pairs in row-major order, as the collected activations.
//
// Given the sequence length (and the input tokens), each variable also carries, per row, its
// sequence (the unit that splits and CV folds keep whole: interp/probe-eval.ts), its position and
// its current token (the "type" of a Hewitt-Liang control task), and `determinedBy`: whether the
// variable is a function of the position alone or of the current token alone on these rows (e.g.
// induction's isTrigger is "the current token is TRIGGER", MQAR's kvPair is floor(position / 2),
// selective copying's outputIndex is position - L - 1). A probe that reads such a variable shows that
// the position or the token is readable, not that the model computed anything; step 4 keeps it
// out of its claims.
import { NO_LABEL } from './tasks/index.ts';

/** Labels whose value is a token id (the answer the model must produce). */
export const TOKEN_LABELS: ReadonlySet<string> = new Set(['copyToken', 'value']);
/** Labels whose value is a category id (brown's pos: a coarse tag): no variable, since an id's order
 *  means nothing; the task gives one indicator label per category instead (isNOUN, ...). */
export const CATEGORY_LABELS: ReadonlySet<string> = new Set(['pos']);

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
  /** per defined row (given opts.seqLen): its sequence (row / T) and position (row % T) */
  sequence?: Int32Array;
  position?: Int32Array;
  /** per defined row (given opts.inputs): the current input token */
  token?: Int32Array;
  /** 'position' / 'token': on these rows the value is a function of that alone (determinedBy()); null: of neither */
  determinedBy?: 'position' | 'token' | null;
}

/**
 * Whether `values` is a function of `key` on these rows: every key value maps to one value, and keys
 * repeat (at most half as many distinct keys as rows; with nearly unique keys anything is "a function",
 * so that says nothing and counts as not determined).
 */
export function isFunctionOf(key: ArrayLike<number>, values: ArrayLike<number>): boolean {
  if (key.length !== values.length) throw new Error(`isFunctionOf: ${key.length} keys, ${values.length} values`);
  const seen = new Map<number, number>();
  for (let i = 0; i < key.length; i++) {
    const v = seen.get(key[i]);
    if (v === undefined) seen.set(key[i], values[i]);
    else if (v !== values[i]) return false;
  }
  return seen.size <= key.length / 2;
}

/** 'position' or 'token' when the variable is a function of that alone on its rows (position first), else null. */
export function determinedBy(v: {
  values: ArrayLike<number>;
  position?: ArrayLike<number>;
  token?: ArrayLike<number>;
}): 'position' | 'token' | null {
  if (v.position && isFunctionOf(v.position, v.values)) return 'position';
  if (v.token && isFunctionOf(v.token, v.values)) return 'token';
  return null;
}

/**
 * The task variables of per-position labels ({name: Int32Array [rows]}, NO_LABEL where a label does
 * not apply). Variables with fewer than `minRows` defined rows, or with a single value, are left out.
 */
export function taskVariables(
  labels: Record<string, ArrayLike<number>>,
  opts: { minRows?: number; seqLen?: number; inputs?: ArrayLike<number> } = {},
): TaskVariable[] {
  const minRows = opts.minRows ?? 8;
  const out = taskVariablesOf(labels, minRows);
  const T = opts.seqLen;
  if (T === undefined) return out;
  if (!(Number.isInteger(T) && T >= 1)) throw new Error(`taskVariables: seqLen must be a positive integer, got ${T}`);
  const n = Object.values(labels)[0]?.length ?? 0;
  if (opts.inputs && opts.inputs.length !== n)
    throw new Error(`taskVariables: inputs has ${opts.inputs.length} tokens, the labels ${n} rows`);
  for (const v of out) {
    v.sequence = Int32Array.from(v.rows, (r) => Math.floor(r / T));
    v.position = Int32Array.from(v.rows, (r) => r % T);
    if (opts.inputs) {
      const inputs = opts.inputs;
      v.token = Int32Array.from(v.rows, (r) => inputs[r]);
    }
    v.determinedBy = determinedBy(v);
  }
  return out;
}

function taskVariablesOf(labels: Record<string, ArrayLike<number>>, minRows: number): TaskVariable[] {
  const out: TaskVariable[] = [];
  for (const [label, lab] of Object.entries(labels)) {
    if (CATEGORY_LABELS.has(label)) continue;
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
