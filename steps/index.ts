// The registry of steps, in order. A step not listed here is not built yet.
import type { Step } from './step.ts';
import { setupStep } from './step00-setup.ts';
import { trainStep } from './step01-train.ts';
import { collectStep } from './step02-collect.ts';
import { saeStep } from './step03-sae.ts';
import { probesStep } from './step04-probes.ts';
import { circuitsStep } from './step05-circuits.ts';
import { patchingStep } from './step06-patching.ts';
import { perturbStep } from './step07-perturb.ts';
import { temporalStep } from './step08-temporal.ts';
import { dynamicsStep } from './step09-dynamics.ts';
import { reproducibilityStep } from './step10-reproducibility.ts';
import { transferStep } from './step11-transfer.ts';
import { reportStep } from './step12-report.ts';
import { statisticsStep } from './step13-statistics.ts';
import { scaleupStep } from './step14-scaleup.ts';

export const STEPS: Step[] = [
  setupStep,
  trainStep,
  collectStep,
  saeStep,
  probesStep,
  circuitsStep,
  patchingStep,
  perturbStep,
  temporalStep,
  dynamicsStep,
  reproducibilityStep,
  transferStep,
  reportStep,
  statisticsStep,
  scaleupStep,
];

export const STEP_TITLES = [
  'setup and seeding',
  'train controlled models',
  'collect activations',
  'sparse-autoencoder features',
  'sparse probes',
  'circuit selection',
  'activation patching',
  'perturbation robustness',
  'temporal causality',
  'dynamics',
  'cross-seed reproducibility',
  'cross-task transfer',
  'visualisation and report',
  'controls and statistics',
  'scale-up plan',
];
