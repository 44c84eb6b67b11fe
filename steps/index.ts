// The registry of steps, in order: one per row of table.ts. The only module that imports the step
// modules; everything else reaches steps through STEPS.
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
import type { Step } from './step.ts';
import { STEP_TABLE } from './table.ts';

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

STEPS.forEach((s, i) => {
  if (s.id !== i || s.name !== STEP_TABLE[i]?.name)
    throw new Error(`steps/index.ts: entry ${i} is step ${s.id} (${s.name}), not ${STEP_TABLE[i]?.name}`);
});
if (STEPS.length !== STEP_TABLE.length) throw new Error(`steps/index.ts: ${STEPS.length} steps for ${STEP_TABLE.length} rows of table.ts`);
