/**
 * The bounded handle cache (storage/handle-cache.ts) with fake handles: the
 * bound holds however many files are in use at once, callers wait first come
 * first served without deadlock, idle handles are reused and closed least
 * recently used first, and EMFILE is met by closing idle handles (in every
 * cache) and retrying, never by failing while a handle can still be freed.
 */
import { execFileSync } from 'node:child_process';
import type { FileHandle } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { HandleCache, MIN_HANDLES, handleBudget, openFileLimit, parseOpenFileLimit, type Lease } from '../../../src/storage/handle-cache.js';

/** Fake descriptors: counts what is open, can play a process limit (EMFILE at `limit`). */
class FakeFiles {
  open = 0;
  peak = 0;
  opens = 0;
  readonly closed: string[] = [];
  limit = Infinity;

  opener(name: string): () => Promise<FileHandle> {
    return async () => {
      await tick();
      if (this.open >= this.limit) throw Object.assign(new Error(`EMFILE: too many open files, open '${name}'`), { code: 'EMFILE' });
      this.open++;
      this.opens++;
      this.peak = Math.max(this.peak, this.open);
      const fh = {
        name,
        close: async () => {
          await tick();
          this.open--;
          this.closed.push(name);
        },
      };
      return fh as unknown as FileHandle;
    };
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const nameOf = (lease: Lease): string => (lease.fh as unknown as { name: string }).name;

/** Whether `p` settles within a few turns of the event loop. */
async function settlesSoon(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 10 && !settled; i++) await tick();
  return settled;
}

describe('HandleCache', () => {
  it('never holds more descriptors than its capacity, however many files are in use at once', async () => {
    const files = new FakeFiles();
    const cache = new HandleCache<number>(4);
    // 300 operations on 100 files at once, as pieces spanning many small files are written in parallel
    await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const lease = await cache.acquire(i % 100, files.opener(`f${i % 100}`));
        expect(cache.held).toBeLessThanOrEqual(4);
        await sleep(i % 3);
        lease.release();
      }),
    );
    expect(files.peak).toBeLessThanOrEqual(4);
    expect(files.open).toBeLessThanOrEqual(4); // idle ones stay for reuse
    await cache.close();
    expect(files.open).toBe(0);
  });

  it('a file already open is shared: its callers never wait, even with every descriptor in use', async () => {
    const files = new FakeFiles();
    const cache = new HandleCache<string>(2);
    const a = await cache.acquire('a', files.opener('a'));
    const b = await cache.acquire('b', files.opener('b'));
    const c = cache.acquire('c', files.opener('c'));
    expect(await settlesSoon(c)).toBe(false); // full: waits
    const a2 = cache.acquire('a', files.opener('a'));
    expect(await settlesSoon(a2)).toBe(true);
    expect(files.opens).toBe(2);
    a.release();
    (await a2).release(); // a's last lease: its descriptor goes to c
    expect(nameOf(await c)).toBe('c');
    expect(files.closed).toEqual(['a']);
    b.release();
    (await c).release();
    await cache.close();
  });

  it('callers waiting for a descriptor are served first come, first served', async () => {
    const files = new FakeFiles();
    const cache = new HandleCache<string>(2);
    const held = [await cache.acquire('a', files.opener('a')), await cache.acquire('b', files.opener('b'))];
    const order: string[] = [];
    const waiting = ['c', 'd', 'e'].map((k) =>
      cache.acquire(k, files.opener(k)).then((lease) => {
        order.push(k);
        return lease;
      }),
    );
    await tick();
    // a newcomer for a new file queues behind them, even when a descriptor frees up
    const late = cache.acquire('f', files.opener('f')).then((lease) => {
      order.push('f');
      return lease;
    });
    for (const lease of held) lease.release();
    const [c, d] = await Promise.all(waiting.slice(0, 2));
    c!.release();
    d!.release();
    (await waiting[2]!).release();
    (await late).release();
    expect(order).toEqual(['c', 'd', 'e', 'f']);
    expect(files.peak).toBeLessThanOrEqual(2);
    await cache.close();
  });

  it('idle handles stay open for reuse; for a new file the least recently used idle one is closed', async () => {
    const files = new FakeFiles();
    const cache = new HandleCache<string>(2);
    (await cache.acquire('a', files.opener('a'))).release();
    (await cache.acquire('b', files.opener('b'))).release();
    (await cache.acquire('a', files.opener('a'))).release(); // reused, and now the most recently used
    expect(files.opens).toBe(2);
    (await cache.acquire('c', files.opener('c'))).release();
    expect(files.closed).toEqual(['b']);
    expect(cache.has('a') && cache.has('c') && !cache.has('b')).toBe(true);
    await cache.close();
  });

  it('at capacity, idle handles are closed for every waiting caller at once, not one close after another', async () => {
    const cache = new HandleCache<string>(4);
    let closing = 0;
    let peakClosing = 0;
    const closes: (() => void)[] = [];
    let held = true; // closes wait until the test lets them go
    const opener = (name: string) => async (): Promise<FileHandle> =>
      ({
        name,
        close: () => {
          closing++;
          peakClosing = Math.max(peakClosing, closing);
          return new Promise<void>((resolve) => {
            const done = (): void => (closing--, resolve());
            if (held) closes.push(done);
            else done();
          });
        },
      }) as unknown as FileHandle;
    try {
      for (const k of ['a', 'b', 'c', 'd']) (await cache.acquire(k, opener(k))).release(); // four idle handles
      const waiting = ['e', 'f', 'g'].map((k) => cache.acquire(k, opener(k)));
      for (let i = 0; i < 10; i++) await tick();
      // one close per caller under way together (the old cache closed one, waited for it, then the next)
      expect(peakClosing).toBe(3);
      held = false;
      for (const done of closes.splice(0)) done();
      for (const lease of await Promise.all(waiting)) lease.release();
    } finally {
      held = false;
      for (const done of closes.splice(0)) done();
      await cache.close();
    }
  });

  it('beforeClose runs with each handle once no lease holds it, before its close; its failure does not keep the handle open', async () => {
    const files = new FakeFiles();
    const seen: string[] = [];
    const cache = new HandleCache<string>(2, {
      beforeClose: async (key, fh) => {
        seen.push(`${key}:${(fh as unknown as { name: string }).name}:${files.closed.includes(key) ? 'closed' : 'open'}`);
        if (key === 'b') throw new Error('no stamp');
      },
    });
    const a = await cache.acquire('a', files.opener('a'));
    (await cache.acquire('b', files.opener('b'))).release();
    const c = cache.acquire('c', files.opener('c')); // takes idle b's room
    (await c).release();
    expect(seen).toEqual(['b:b:open']);
    const discarded = cache.discard('a');
    await tick();
    expect(seen).toEqual(['b:b:open']); // a is still leased
    a.release();
    await discarded;
    await cache.close();
    expect(seen).toEqual(['b:b:open', 'a:a:open', 'c:c:open']);
    expect(files.open).toBe(0);
  });

  it(`no deadlock at the minimum of ${MIN_HANDLES}: one lease held throughout (the part file) while many callers come and go`, async () => {
    const files = new FakeFiles();
    const cache = new HandleCache<string>(1); // raised to the minimum
    expect(cache.capacity).toBe(MIN_HANDLES);
    const part = await cache.acquire('part', files.opener('part'));
    await Promise.all(
      Array.from({ length: 16 }, async (_, i) => {
        const lease = await cache.acquire(`f${i}`, files.opener(`f${i}`));
        await tick();
        lease.release();
      }),
    );
    part.release();
    expect(files.peak).toBeLessThanOrEqual(MIN_HANDLES);
    await cache.close();
  });

  it('an open that fails is not cached, frees its room, and tells every caller that waited on it', async () => {
    const files = new FakeFiles();
    const cache = new HandleCache<string>(2);
    const enoent = Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    const failing = (): Promise<FileHandle> => tick().then(() => Promise.reject(enoent));
    const [x, y] = [cache.acquire('x', failing), cache.acquire('x', failing)];
    await expect(x).rejects.toBe(enoent);
    await expect(y).rejects.toBe(enoent);
    expect(cache.held).toBe(0);
    expect(cache.has('x')).toBe(false);
    (await cache.acquire('x', files.opener('x'))).release(); // tried again
    await cache.close();
  });

  it('discard: later callers open the file anew; the old handle closes once its lease is given back', async () => {
    const files = new FakeFiles();
    const cache = new HandleCache<string>(4);
    const old = await cache.acquire('a', files.opener('a-old'));
    const gone = cache.discard('a');
    const fresh = await cache.acquire('a', files.opener('a-new'));
    expect(nameOf(fresh)).toBe('a-new');
    expect(await settlesSoon(gone)).toBe(false); // still in use
    old.release();
    await gone;
    expect(files.closed).toEqual(['a-old']);
    fresh.release();
    await cache.close();
    expect(files.open).toBe(0);
  });

  it('close: waiting callers are rejected; handles in use are closed once given back', async () => {
    const files = new FakeFiles();
    const cache = new HandleCache<string>(2, { closedError: () => new Error('closed!') });
    const a = await cache.acquire('a', files.opener('a'));
    (await cache.acquire('b', files.opener('b'))).release();
    const b2 = await cache.acquire('b', files.opener('b'));
    const waiting = cache.acquire('c', files.opener('c'));
    const closing = cache.close();
    await expect(waiting).rejects.toThrow('closed!');
    await expect(cache.acquire('d', files.opener('d'))).rejects.toThrow('closed!');
    expect(await settlesSoon(closing)).toBe(false);
    a.release();
    b2.release();
    await closing;
    expect(files.open).toBe(0);
  });

  describe('EMFILE / ENFILE', () => {
    it("closes idle handles, its own and other caches', lowers its capacity, and retries", async () => {
      const files = new FakeFiles();
      const other = new HandleCache<string>(8);
      for (const k of ['o1', 'o2', 'o3']) (await other.acquire(k, files.opener(k))).release(); // idle, open
      const cache = new HandleCache<string>(8);
      const mine = await cache.acquire('m1', files.opener('m1'));
      files.limit = 4; // the process is at its limit
      const lease = await cache.acquire('m2', files.opener('m2'));
      expect(nameOf(lease)).toBe('m2');
      expect(other.held).toBe(0);
      expect(files.closed.sort()).toEqual(['o1', 'o2', 'o3']);
      expect(cache.capacity).toBe(MIN_HANDLES); // it held one besides the failed open
      lease.release();
      mine.release();
      await Promise.all([cache.close(), other.close()]);
    });

    it('with every handle in use it waits for one to be given back, then opens (no failure)', async () => {
      const files = new FakeFiles();
      const cache = new HandleCache<string>(8);
      const a = await cache.acquire('a', files.opener('a'));
      const b = await cache.acquire('b', files.opener('b'));
      files.limit = 2;
      const c = cache.acquire('c', files.opener('c'));
      expect(await settlesSoon(c)).toBe(false);
      a.release(); // over the lowered capacity: closed, and c's retry gets its descriptor
      expect(nameOf(await c)).toBe('c');
      expect(files.closed).toEqual(['a']);
      expect(files.peak).toBe(2);
      (await c).release();
      b.release();
      await cache.close();
    });

    it('an exhaustion that never ends is reported after emfileRetryMs, as the EMFILE it is', async () => {
      const files = new FakeFiles();
      files.limit = 0;
      const cache = new HandleCache<string>(8, { emfileRetryMs: 200 });
      const started = Date.now();
      await expect(cache.acquire('a', files.opener('a'))).rejects.toMatchObject({ code: 'EMFILE' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(190);
      expect(Date.now() - started).toBeLessThan(2_000);
      expect(cache.held).toBe(0);
      await cache.close();
    });

    it('ENFILE (the system table is full) is retried the same way', async () => {
      const cache = new HandleCache<string>(8, { emfileRetryMs: 5_000 });
      const files = new FakeFiles();
      let failures = 2;
      const flaky = async (): Promise<FileHandle> => {
        if (failures-- > 0) throw Object.assign(new Error('ENFILE'), { code: 'ENFILE' });
        return files.opener('a')();
      };
      (await cache.acquire('a', flaky)).release();
      await cache.close();
    });
  });
});

describe('the descriptor budget', () => {
  it("reads the soft limit from /proc/self/limits' text", () => {
    const text = [
      'Limit                     Soft Limit           Hard Limit           Units     ',
      'Max processes             63432                63432                processes ',
      'Max open files            1024                 524288               files     ',
      'Max locked memory         8388608              8388608              bytes     ',
    ].join('\n');
    expect(parseOpenFileLimit(text)).toBe(1024);
    expect(parseOpenFileLimit(text.replace('1024 ', 'unlimited '))).toBe(Infinity);
    expect(parseOpenFileLimit('')).toBeUndefined();
  });

  it("this process's limit is the one the kernel reports (a child shell inherits it)", () => {
    const soft = execFileSync('sh', ['-c', 'ulimit -Sn'], { encoding: 'utf8' }).trim();
    expect(openFileLimit()).toBe(soft === 'unlimited' ? Infinity : Number(soft));
  });

  it('a quarter of the limit for files, at most what was asked, never below the minimum', () => {
    expect(handleBudget(64, 20_000)).toBe(64);
    expect(handleBudget(64, 1024)).toBe(64);
    expect(handleBudget(64, 128)).toBe(32);
    expect(handleBudget(64, 20)).toBe(5);
    expect(handleBudget(64, 4)).toBe(MIN_HANDLES);
    expect(handleBudget(1, 1024)).toBe(MIN_HANDLES);
    expect(handleBudget(64, Infinity)).toBe(64);
  });
});
