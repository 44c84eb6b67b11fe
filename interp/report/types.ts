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
  p?: number;
  /** after Holm or Benjamini-Hochberg across the step's family of tests */
  pAdjusted?: number;
  correction?: string;
  /** what the estimate was compared with: "random subspace of equal dimension (20 draws)" */
  control: string;
  controlEstimate?: number;
  controlInterval?: [number, number];
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
