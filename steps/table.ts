// Every step's id, folder name and title: the one place they are written. A step's id is its
// position here. The step modules take theirs with `...stepInfo('train')`, the registry (index.ts)
// checks that it holds one step per row in this order, and the run directory's folder names
// (stepDirName), the runner's usage text and the reports' titles derive from it.

export const STEP_TABLE = [
  { name: 'setup', title: 'setup and seeding' },
  { name: 'train', title: 'train controlled models' },
  { name: 'collect', title: 'collect activations' },
  { name: 'sae', title: 'sparse-autoencoder features' },
  { name: 'probes', title: 'sparse probes' },
  { name: 'circuits', title: 'circuit selection' },
  { name: 'patching', title: 'activation patching' },
  { name: 'perturb', title: 'perturbation robustness' },
  { name: 'temporal', title: 'temporal causality' },
  { name: 'dynamics', title: 'dynamics' },
  { name: 'reproducibility', title: 'cross-seed reproducibility' },
  { name: 'transfer', title: 'cross-task transfer' },
  { name: 'report', title: 'visualisation and report' },
  { name: 'statistics', title: 'controls and statistics' },
  { name: 'scaleup', title: 'scale-up plan' },
] as const;

export type StepName = (typeof STEP_TABLE)[number]['name'];

export interface StepInfo {
  readonly id: number;
  /** folder-safe name, e.g. "train" */
  readonly name: string;
  readonly title: string;
}

/** The id, name and title of the step called `name`. */
export function stepInfo(name: StepName): StepInfo {
  const id = STEP_TABLE.findIndex((s) => s.name === name);
  return { id, name, title: STEP_TABLE[id].title };
}

/** The step's folder in the run directory, e.g. "step-01-train". */
export function stepDirName(step: { id: number; name: string }): string {
  return `step-${String(step.id).padStart(2, '0')}-${step.name}`;
}
