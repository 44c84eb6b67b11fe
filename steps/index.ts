// The registry of steps, in order. A step not listed here is not built yet.
import type { Step } from './step.ts';
import { setupStep } from './step00-setup.ts';

export const STEPS: Step[] = [setupStep];

export const STEP_TITLES = [
  'setup and seeding', 'train controlled models', 'collect activations', 'sparse-autoencoder features',
  'sparse probes', 'circuit selection', 'activation patching', 'perturbation robustness',
  'temporal causality', 'dynamics', 'cross-seed reproducibility', 'cross-task transfer',
  'visualisation and report', 'controls and statistics', 'scale-up plan',
];
