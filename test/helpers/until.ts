import { performance } from 'node:perf_hooks';

/**
 * Polls `check` every 5 ms until it is true; rejects after `ms` (every wait in a test is bounded,
 * also in a test that fakes Date: the deadline runs on the monotonic clock).
 */
export async function until(check: () => boolean, ms = 5_000, what = 'the condition'): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
