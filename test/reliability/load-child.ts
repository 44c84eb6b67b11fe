// The library's loader as a child process for test/reliability/checkpoints.test.ts:
//   node --import tsx test/reliability/load-child.ts DIR
// loadPretrained on the CPU through the CLIs' one error path (steps/cli-main.ts).
import { cpuBackend } from '../../engine/index.ts';
import { loadPretrained } from '../../mamba/pretrained.ts';
import { runMain } from '../../steps/cli-main.ts';

await runMain(async () => {
  const model = await loadPretrained(process.argv[2], { backend: cpuBackend() });
  model.dispose();
  return 0;
});
