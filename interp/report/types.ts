// What each step hands to the report: its numbers, its figures and its claims. Every claim carries
// its test, its interval and its control.

export interface Claim {
  statement: string;
  /** point estimate and its confidence interval */
  estimate: number;
  interval: [number, number];
  level: number;
  /** e.g. "paired permutation test, 1000 sign flips" */
  test: string;
  /** the raw (uncorrected) p-value of `test` */
  p?: number;
  /** the smallest p `test` can give (1/(n+1) for n random permutations); where p sits at it, the
   *  floor and not the data decided how small p is */
  pFloor?: number;
  /** the claim's own effect condition besides significance, in words ("interval above the
   *  control's"), and whether the data meet it */
  condition: string;
  effect: boolean;
  /** 'pending' until the run-wide correction (interp/claims.ts correctFamily) has been applied;
   *  'untested' for a claim without a p-value (it is never supported) */
  status: 'pending' | 'corrected' | 'untested';
  /** run-wide Holm-adjusted p, over every claim of the run with a p-value (set by the correction) */
  pAdjusted?: number;
  /** run-wide Benjamini-Hochberg q over the same family, shown beside Holm */
  qBh?: number;
  /** e.g. "Holm across the run's 86 claims" */
  correction?: string;
  /** what the estimate was compared with: "random subspace of equal dimension (20 draws)" */
  control: string;
  controlEstimate?: number;
  controlInterval?: [number, number];
  /** a claim over seeds (interp/seeds.ts): each seed's value and own p; estimate and interval are then over seeds */
  perSeed?: { seed: number; model: string; value: number; p?: number }[];
  /** effect && run-wide Holm p < 0.05; false while pending */
  supported: boolean;
}

export interface FigureRef {
  file: string;
  title: string;
  caption: string;
}

/** Rows of cells; null marks a cell with no value. */
export interface Table {
  title: string;
  columns: string[];
  rows: (string | number | null)[][];
}

export interface StepReport {
  step: number;
  title: string;
  summary: string;
  claims: Claim[];
  figures: FigureRef[];
  tables: Table[];
  notes: string[];
}

export function emptyReport(step: number, title: string): StepReport {
  return { step, title, summary: '', claims: [], figures: [], tables: [], notes: [] };
}
