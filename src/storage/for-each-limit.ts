/**
 * Bounded concurrency for storage's many small file-system calls (creating
 * or checking 100,000 small files): enough in flight to keep libuv's thread
 * pool busy, few enough to stay far below the open-file limit. No BEP.
 */

/**
 * Runs `fn` over `items` (with each one's index), at most `limit` at a time,
 * starting them in order; after the first failure no new item starts, and it
 * is rethrown once the running ones have ended (so the caller can clean up
 * knowing nothing is still in flight).
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (!failure && next < items.length) {
      const index = next++;
      try {
        await fn(items[index]!, index);
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.err;
}
