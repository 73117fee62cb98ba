/**
 * checkExisting stopped or failing while hash tasks are on worker threads:
 * the promise always settles (INTERRUPTED for a stop, the worker's error for
 * a crash, never a partial answer), and no worker outlives it. The workers
 * are the real ones (hasher.ts), watched through a wrapped Worker class.
 */
import { randomBytes } from 'node:crypto';
import type { Worker as NodeWorker } from 'node:worker_threads';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TtError } from '../../../src/core/errors.js';
import { checkExisting, type CheckProgress } from '../../../src/storage/check.js';
import { makeTorrent, withTempDir, writeAll } from './fixture.js';

const track = vi.hoisted(() => ({
  created: [] as NodeWorker[],
  exited: new Set<NodeWorker>(),
  /** Called after each task is handed to a worker, with how many were so far. */
  onPost: undefined as ((worker: NodeWorker, posts: number) => void) | undefined,
  posts: 0,
}));

vi.mock('node:worker_threads', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:worker_threads')>();
  class TrackedWorker extends actual.Worker {
    constructor(...args: ConstructorParameters<typeof actual.Worker>) {
      super(...args);
      track.created.push(this);
      this.once('exit', () => track.exited.add(this));
    }
    override postMessage(...args: Parameters<NodeWorker['postMessage']>): void {
      super.postMessage(...args);
      track.onPost?.(this, ++track.posts);
    }
  }
  return { ...actual, Worker: TrackedWorker };
});

afterEach(async () => {
  track.onPost = undefined;
  track.posts = 0;
  await Promise.all(track.created.splice(0).map((w) => w.terminate()));
  track.exited.clear();
});

/** 64 MiB in 1 MiB pieces: eight read runs of eight pieces, the data on disk and matching. */
async function withCopy(fn: (root: string, meta: ReturnType<typeof makeTorrent>['meta']) => Promise<void>): Promise<void> {
  await withTempDir(async (root) => {
    const data = randomBytes(64 * 1024 * 1024);
    const { meta } = makeTorrent([data.length], 1024 * 1024, data);
    await writeAll(root, meta, data);
    await fn(root, meta);
  });
}

describe('checkExisting stopped or failing with hashes on the workers', () => {
  for (const workers of [1, 2]) {
    it(`a stop while hashes are on the workers settles with INTERRUPTED, once every worker has exited (${workers} workers)`, async () => {
      await withCopy(async (root, meta) => {
        const ac = new AbortController();
        // stopped as the second run goes to a worker: that hash (and with 2 workers the first too) is under way
        track.onPost = (_worker, posts) => {
          if (posts === 2) ac.abort();
        };
        const seen: CheckProgress[] = [];
        const run = checkExisting(root, meta, { signal: ac.signal, workers, onProgress: (p) => seen.push(p) });
        const err = await run.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(TtError);
        expect(err).toMatchObject({ code: 'INTERRUPTED' });
        expect(track.created.length).toBeGreaterThan(0);
        expect(track.exited.size).toBe(track.created.length); // no worker is left
        // nothing of the check runs on after it settled
        const reported = seen.length;
        await new Promise((r) => setTimeout(r, 100));
        expect(seen.length).toBe(reported);
        expect(seen.every((p) => p.checked < meta.pieceCount)).toBe(true);
      });
    });
  }

  it('a stop before the first hash: INTERRUPTED, no worker started', async () => {
    await withCopy(async (root, meta) => {
      const ac = new AbortController();
      ac.abort();
      await expect(checkExisting(root, meta, { signal: ac.signal, workers: 2 })).rejects.toMatchObject({ code: 'INTERRUPTED' });
      expect(track.created).toEqual([]);
    });
  });

  it('a hash worker that dies fails the check with its error, not a partial answer', async () => {
    await withCopy(async (root, meta) => {
      // the first worker fails just after taking its first task, while the next run is being read
      track.onPost = (worker, posts) => {
        if (posts === 1) process.nextTick(() => worker.emit('error', new Error('hash worker crashed')));
      };
      const run = checkExisting(root, meta, { workers: 1 });
      await expect(run).rejects.toThrow(/hash worker crashed/);
      // every worker the hasher still held is gone (the crashed one is only out of its hands)
      expect(track.exited.size).toBeGreaterThanOrEqual(track.created.length - 1);
    });
  });
});
