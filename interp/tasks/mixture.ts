// A mixture of toy tasks in one vocabulary, so that one model learns several of them and what it
// does for one task can be compared with what it does for another in the same basis (step 11).
//
// Each sequence comes from one component. Its first token names the component (a task token, ids
// after the largest component vocabulary); the component's own sequence, generated at seqLen - 1,
// follows from position 1. The component tokens keep their ids, so components share the ids below
// their own vocabulary size (induction's content tokens and selective copying's data tokens are
// partly the same ids); only the task token tells the model which task it is doing.
//
// Vocabulary (K components, V = the largest component vocabulary): 0 .. V-1 the components' own
// tokens (each component's entries, named "<task>: <entry>"), V + i the task token of component i;
// vocabSize = V + K.
// Targets: the component's, one position later (the task token is not scored).
// Labels: every component label, one position later and NO_LABEL in other components' sequences;
// labels whose name ends in "Pos" hold positions and so also have 1 added to their value; `task`
// is the component index at every position of the sequence.
// Sequences are balanced: in a batch of B, each component gets floor(B / K) sequences and the
// remainder goes to components drawn without replacement; the order is shuffled.
import { Rng } from '../../engine/random.ts';
import type { Baseline } from './baselines.ts';
import { emptyBatch, IGNORE_INDEX, NO_LABEL, requireInt, type Task, type TaskBatch, type TaskOptions, type VocabEntry } from './types.ts';

export interface MixtureComponent {
  // biome-ignore lint/suspicious/noExplicitAny: any task, with its own options type
  task: Task<any>;
  /** the component's generator options; its seqLen is replaced by the mixture's seqLen - 1 */
  options: Record<string, number>;
}

/** The task label of a mixture batch: the component index at every position. */
export const TASK_LABEL = 'task';

/** Labels holding a position in the sequence (their values move with the shift). */
export const isPositionLabel = (name: string) => name.endsWith('Pos');

export interface MixtureTask extends Task<TaskOptions> {
  components: readonly MixtureComponent[];
  /** the largest component vocabulary: task token i is firstTaskToken + i */
  firstTaskToken: number;
  /** the mixture's vocabulary size (firstTaskToken + components) */
  vocabSize: number;
  /** a batch of component i's sequences only, in the mixture's layout */
  generateComponent(opts: TaskOptions, component: number, rng: Rng, batch: number): TaskBatch;
  /** each component's own chance at its answers, in order */
  componentChance(opts: TaskOptions): number[];
}

export function mixtureTask(components: readonly MixtureComponent[]): MixtureTask {
  if (components.length < 2) throw new Error(`mixture: needs at least 2 component tasks, got ${components.length}`);
  const names = components.map((c) => c.task.name);
  if (new Set(names).size !== names.length) throw new Error(`mixture: component tasks repeat (${names.join(', ')})`);
  const firstTaskToken = Math.max(...components.map((c) => c.options.vocabSize));
  const vocabSize = firstTaskToken + components.length;
  // every component's label names (a task's labels do not depend on its draws)
  let labelNames: string[] | null = null;
  const labelsAt = (T: number) =>
    (labelNames ??= [
      ...new Set([
        TASK_LABEL,
        ...components.flatMap((c) => Object.keys(c.task.generate(inner(c, T - 1), new Rng('mixture-labels'), 1).labels)),
      ]),
    ]);
  const resolve = (opts: TaskOptions) => {
    requireInt('mixture', 'vocabSize', opts.vocabSize, vocabSize, vocabSize);
    requireInt('mixture', 'seqLen', opts.seqLen, 3);
    for (const c of components) c.task.chance(inner(c, opts.seqLen - 1)); // an error naming the component's option at fault
    return opts.seqLen;
  };
  const fill = (out: TaskBatch, b: number, k: number, part: TaskBatch) => {
    const T = out.shape[1],
      row = b * T;
    out.inputs[row] = firstTaskToken + k;
    out.inputs.set(part.inputs, row + 1);
    out.targets[row] = IGNORE_INDEX;
    out.targets.set(part.targets, row + 1);
    out.labels[TASK_LABEL].fill(k, row, row + T);
    for (const [name, values] of Object.entries(part.labels)) {
      const shift = isPositionLabel(name) ? 1 : 0;
      const dst = out.labels[name];
      for (let t = 0; t < T - 1; t++) dst[row + 1 + t] = values[t] === NO_LABEL ? NO_LABEL : values[t] + shift;
    }
  };
  const generateOrder = (opts: TaskOptions, order: readonly number[], rng: Rng) => {
    const T = resolve(opts);
    const out = emptyBatch(order.length, T, labelsAt(T));
    order.forEach((k, b) => fill(out, b, k, components[k].task.generate(inner(components[k], T - 1), rng.fork(`seq${b}`), 1)));
    return out;
  };
  return {
    name: `mixture(${names.join('+')})`,
    description: `One of ${names.join(', ')} per sequence, named by a task token at position 0.`,
    components,
    firstTaskToken,
    vocabSize,
    vocabulary(opts) {
      resolve(opts);
      const own: VocabEntry[] = components.flatMap((c) =>
        c.task.vocabulary(inner(c, opts.seqLen - 1)).map((e: VocabEntry) => ({ ...e, name: `${c.task.name}: ${e.name}` })),
      );
      return [
        ...own,
        ...components.map((c, i) => ({
          name: `TASK ${c.task.name}`,
          first: firstTaskToken + i,
          last: firstTaskToken + i,
          description: `position 0 of a ${c.task.name} sequence`,
        })),
      ];
    },
    componentChance(opts) {
      resolve(opts);
      return components.map((c) => c.task.chance(inner(c, opts.seqLen - 1)));
    },
    chance(opts) {
      // each component is equally likely; exact when they score as many positions a sequence
      const c = this.componentChance(opts);
      return c.reduce((s, v) => s + v, 0) / c.length;
    },
    baselines(opts) {
      resolve(opts);
      // the j-th rule of every component, each applied to its own sequences (read past the task token)
      const per = components.map((c) => c.task.baselines(inner(c, opts.seqLen - 1)) as Baseline[]);
      const count = Math.min(...per.map((b) => b.length));
      return Array.from({ length: count }, (_, j) => ({
        name: per.map((b) => b[j].name).join(' / '),
        description: per.map((b, i) => `${names[i]}: ${b[j].description}`).join('; '),
        guess: (row: Int32Array, t: number) => per[componentOfRow(row)][j].guess(row.subarray(1), t - 1),
      }));
    },
    generate(opts, rng, batch) {
      requireInt('mixture', 'batch', batch, 1);
      const K = components.length;
      const order = Array.from({ length: batch }, (_, b) => (b < batch - (batch % K) ? b % K : -1));
      const extra = rng.fork('remainder').sample(K, batch % K);
      for (let b = batch - (batch % K), i = 0; b < batch; b++, i++) order[b] = extra[i];
      const perm = rng.fork('order').permutation(batch);
      return generateOrder(
        opts,
        perm.map((p) => order[p]),
        rng.fork('sequences'),
      );
    },
    generateComponent(opts, component, rng, batch) {
      requireInt('mixture', 'component', component, 0, components.length - 1);
      requireInt('mixture', 'batch', batch, 1);
      return generateOrder(opts, new Array<number>(batch).fill(component), rng.fork(`component${component}`));
    },
  };

  function componentOfRow(row: Int32Array): number {
    const k = row[0] - firstTaskToken;
    if (!(k >= 0 && k < components.length)) throw new Error(`mixture: position 0 holds ${row[0]}, not a task token`);
    return k;
  }
}

/** A component's options at the given inner length. */
function inner(c: MixtureComponent, seqLen: number): Record<string, number> {
  return { ...c.options, seqLen };
}
