// Runs independent jobs in a few worker threads (node:worker_threads), each worker taking the next
// job when it finishes one. Results come back in job order, so the outcome does not depend on which
// worker ran what or how fast. The worker module is TypeScript: each thread registers tsx's loader
// itself, because module loader hooks registered in the main thread do not reach workers.
//
// A worker module handles messages {job} with its `handler` (see serveJobs) and answers
// {result} or {error}, and may send {progress} lines in between.
import { parentPort, Worker } from 'node:worker_threads';

type Message<R> = { result: R } | { error: string } | { progress: unknown };

export interface PoolOptions {
  workers: number;
  /** called with whatever a worker reports while a job runs, and the job's index */
  onProgress?: (progress: unknown, jobIndex: number) => void;
}

export async function runInWorkers<J, R>(entry: URL, jobs: readonly J[], o: PoolOptions): Promise<R[]> {
  const results: R[] = new Array(jobs.length);
  let next = 0;
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); })`;
  const lane = async () => {
    if (next >= jobs.length) return;
    const worker = new Worker(boot, { eval: true });
    try {
      while (next < jobs.length) {
        const index = next++;
        results[index] = await new Promise<R>((resolve, reject) => {
          const onMessage = (m: Message<R>) => {
            if ('progress' in m) {
              o.onProgress?.(m.progress, index);
              return;
            }
            worker.off('message', onMessage);
            worker.off('error', reject);
            worker.off('exit', onExit);
            if ('error' in m) reject(new Error(m.error));
            else resolve(m.result);
          };
          const onExit = (code: number) => reject(new Error(`worker ${entry.pathname} exited (code ${code}) while running job ${index}`));
          worker.on('message', onMessage);
          worker.once('error', reject);
          worker.once('exit', onExit);
          worker.postMessage({ job: jobs[index] });
        });
      }
    } finally {
      await worker.terminate();
    }
  };
  const lanes = Array.from({ length: Math.max(1, Math.min(o.workers, jobs.length)) }, lane);
  // one lane failing stops the others from taking new jobs
  try {
    await Promise.all(lanes);
  } catch (e) {
    next = jobs.length;
    await Promise.allSettled(lanes);
    throw e;
  }
  return results;
}

/** Inside a worker module: answer each job with handler's result (or its error). */
export function serveJobs<J, R>(handler: (job: J, progress: (p: unknown) => void) => Promise<R>): void {
  const port = parentPort;
  if (!port) throw new Error('serveJobs: not running in a worker thread');
  port.on('message', (m: { job: J }) => {
    handler(m.job, (p) => port.postMessage({ progress: p })).then(
      (result) => port.postMessage({ result }),
      (e: Error) => port.postMessage({ error: e.stack ?? e.message }),
    );
  });
}
