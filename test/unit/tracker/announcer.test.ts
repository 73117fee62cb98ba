import { afterEach, describe, expect, it, vi } from 'vitest';
import { TrackerError } from '../../../src/core/errors.js';
import { Announcer, MAX_ANNOUNCES_IN_FLIGHT, type AnnounceFn, type AnnouncerOptions, type TrackerFailure } from '../../../src/tracker/announcer.js';
import { TrackerTimeoutError, type AnnounceParams, type AnnounceResult } from '../../../src/tracker/types.js';

interface Call {
  url: string;
  params: AnnounceParams;
  signal: AbortSignal | undefined;
  resolve: (r: AnnounceResult) => void;
  reject: (e: Error) => void;
}

/** A scripted transport: each URL gets a behaviour; every call is recorded. */
function fakeTransport(behaviour: Record<string, 'ok' | 'fail' | 'hang' | ((p: AnnounceParams) => AnnounceResult)>) {
  const calls: Call[] = [];
  const fn: AnnounceFn = (url, params, opts) =>
    new Promise<AnnounceResult>((resolve, reject) => {
      calls.push({ url, params, signal: opts.signal, resolve, reject });
      const b = behaviour[url] ?? 'hang';
      if (b === 'ok') resolve({ peers: [{ host: '10.0.0.1', port: 1000 }], interval: 60 });
      else if (b === 'fail') reject(new TrackerError(`${url} is down`));
      else if (typeof b === 'function') resolve(b(params));
      opts.signal?.addEventListener('abort', () => reject(new TrackerError('aborted')));
    });
  return { fn, calls, urls: () => calls.map((c) => c.url), events: () => calls.map((c) => `${c.url}:${c.params.event ?? '-'}`) };
}

function make(list: string[][], transport: AnnounceFn, over: Partial<AnnouncerOptions> = {}): Announcer {
  return new Announcer({
    announceList: list,
    infoHash: Buffer.alloc(20, 1),
    peerId: Buffer.alloc(20, 2),
    port: 6881,
    stats: () => ({ uploaded: 0, downloaded: 0, left: 100 }),
    announce: transport,
    ...over,
  });
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await Promise.resolve();
};

let live: Announcer | undefined;
afterEach(async () => {
  await live?.stop(50);
  live = undefined;
  vi.useRealTimers();
});

describe('Announcer tier order and failover (BEP 12)', () => {
  it('asks only the first tier when it answers, with event=started', async () => {
    vi.useFakeTimers();
    const t = fakeTransport({ 'http://a/announce': 'ok', 'http://b/announce': 'ok' });
    const a = (live = make([['http://a/announce'], ['http://b/announce']], t.fn));
    const peers: [unknown, string][] = [];
    a.on('peers', (p, url) => peers.push([p, url]));
    a.start();
    await flush();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(t.events()).toEqual(['http://a/announce:started']);
    expect(peers).toEqual([[[{ host: '10.0.0.1', port: 1000 }], 'http://a/announce']]);
    expect(a.status()[0]).toMatchObject({ url: 'http://a/announce', state: 'working', peers: 1 });
  });

  it('starts the next tier after the fallback delay when the first hangs, and stops escalating once one answers', async () => {
    vi.useFakeTimers();
    const t = fakeTransport({ 'http://a/announce': 'hang', 'udp://b:1': 'ok', 'http://c/announce': 'ok' });
    const a = (live = make([['http://a/announce'], ['udp://b:1'], ['http://c/announce']], t.fn));
    a.start();
    await flush();
    expect(t.urls()).toEqual(['http://a/announce']);
    await vi.advanceTimersByTimeAsync(2_999);
    expect(t.urls()).toEqual(['http://a/announce']);
    await vi.advanceTimersByTimeAsync(1);
    expect(t.urls()).toEqual(['http://a/announce', 'udp://b:1']);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(t.urls()).toEqual(['http://a/announce', 'udp://b:1']);
  });

  it('moves on immediately when a tracker fails, emitting tracker-error', async () => {
    vi.useFakeTimers();
    const t = fakeTransport({ 'http://a/announce': 'fail', 'http://b/announce': 'ok' });
    const a = (live = make([['http://a/announce'], ['http://b/announce']], t.fn));
    const errors: string[] = [];
    a.on('tracker-error', (err: Error, url: string) => errors.push(`${url}: ${err.message}`));
    a.start();
    await flush();
    expect(t.urls()).toEqual(['http://a/announce', 'http://b/announce']);
    expect(errors).toEqual(['http://a/announce: http://a/announce is down']);
  });

  it('promotes the tracker that answered to the front of its tier', async () => {
    vi.useFakeTimers();
    const urls = ['http://a/announce', 'http://b/announce', 'http://c/announce'];
    const t = fakeTransport({ [urls[0]!]: 'fail', [urls[1]!]: 'fail', [urls[2]!]: 'ok' });
    const a = (live = make([urls], t.fn));
    a.start();
    await flush();
    expect(a.status()[0]!.url).toBe('http://c/announce');
    expect(a.status().map((s) => s.tier)).toEqual([0, 0, 0]);
  });

  it("emits 'all-failed' once when every tracker failed and none answered, and keeps retrying with backoff", async () => {
    vi.useFakeTimers();
    const t = fakeTransport({ 'http://a/announce': 'fail', 'udp://b:1': 'fail' });
    const a = (live = make([['http://a/announce'], ['udp://b:1']], t.fn, { retryBaseMs: 1_000 }));
    const allFailed: TrackerFailure[][] = [];
    a.on('all-failed', (f: TrackerFailure[]) => allFailed.push(f));
    a.on('tracker-error', () => {});
    a.start();
    await flush();
    expect(allFailed).toHaveLength(1);
    expect(allFailed[0]!.map((f) => f.url).sort()).toEqual(['http://a/announce', 'udp://b:1']);
    const countA = (): number => t.urls().filter((u) => u === 'http://a/announce').length;
    expect(countA()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(countA()).toBe(2); // first retry after 1 s
    await vi.advanceTimersByTimeAsync(1_999);
    expect(countA()).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(countA()).toBe(3); // then after 2 s
    expect(allFailed).toHaveLength(1);
    expect(a.status()[0]).toMatchObject({ state: 'failing', failures: 3 });
  });

  it("trackers that only time out are not 'all-failed' (they may be busy: retried, --peer-timeout decides); one refusing later still is", async () => {
    vi.useFakeTimers();
    let bRefuses = false;
    const fn: AnnounceFn = (url) =>
      Promise.reject(url === 'udp://b:1' && bRefuses ? new TrackerError('tracker refused: unregistered torrent') : new TrackerTimeoutError(`${url} did not answer within 15000 ms`));
    const a = (live = make([['http://a/announce'], ['udp://b:1']], fn, { retryBaseMs: 1_000 }));
    const allFailed: TrackerFailure[][] = [];
    a.on('all-failed', (f: TrackerFailure[]) => allFailed.push(f));
    a.on('tracker-error', () => {});
    a.start();
    await flush();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(allFailed).toHaveLength(0);
    // the silent one is still silent, the other now refuses: not every tracker failed for good yet
    bRefuses = true;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(allFailed).toHaveLength(0);
  });

  it('skips unsupported schemes with one warning each and reports all-failed when nothing is usable', () => {
    const t = fakeTransport({});
    const a = (live = make([['wss://tracker.example'], ['magnet:?x']], t.fn));
    const warnings: string[] = [];
    let allFailed = 0;
    a.on('warning', (m: string) => warnings.push(m));
    a.on('all-failed', () => allFailed++);
    a.start();
    a.start();
    expect(warnings).toEqual(['unsupported tracker skipped: wss://tracker.example', 'unsupported tracker skipped: magnet:?x']);
    expect(allFailed).toBe(1);
    expect(t.calls).toHaveLength(0);
    expect(a.status().map((s) => s.state)).toEqual(['unsupported', 'unsupported']);
  });
});

describe('Announcer schedule and events', () => {
  it('re-announces on the interval with no event, then sends completed once', async () => {
    vi.useFakeTimers();
    let left = 100;
    const t = fakeTransport({ 'http://a/announce': () => ({ peers: [], interval: 60 }) });
    const a = (live = make([['http://a/announce']], t.fn, { stats: () => ({ uploaded: 1, downloaded: 2, left }) }));
    a.start();
    await flush();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.events()).toEqual(['http://a/announce:started', 'http://a/announce:-']);
    left = 0;
    a.completed();
    a.completed();
    await flush();
    expect(t.events()).toEqual(['http://a/announce:started', 'http://a/announce:-', 'http://a/announce:completed']);
    expect(t.calls[2]!.params.left).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.events().at(-1)).toBe('http://a/announce:-');
  });

  it('emits a warning but still uses the peers', async () => {
    const t = fakeTransport({ 'http://a/announce': () => ({ peers: [{ host: '1.2.3.4', port: 5 }], interval: 60, warning: 'be nice' }) });
    const a = (live = make([['http://a/announce']], t.fn));
    const seen: string[] = [];
    a.on('warning', (m: string, url: string) => seen.push(`warning ${m} ${url}`));
    a.on('peers', (p: { host: string }[]) => seen.push(`peers ${p.map((x) => x.host).join()}`));
    a.start();
    await flush();
    expect(seen).toEqual(['warning be nice http://a/announce', 'peers 1.2.3.4']);
  });

  it('requestPeers re-announces only after the min interval', async () => {
    vi.useFakeTimers();
    const t = fakeTransport({ 'http://a/announce': () => ({ peers: [], interval: 1800, minInterval: 120 }) });
    const a = (live = make([['http://a/announce']], t.fn));
    a.requestPeers(); // before start: ignored
    a.start();
    await flush();
    a.requestPeers();
    await flush();
    expect(t.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(119_000);
    a.requestPeers();
    await flush();
    expect(t.calls).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1_000);
    a.requestPeers();
    await flush();
    expect(t.events()).toEqual(['http://a/announce:started', 'http://a/announce:-']);
  });

  it('echoes the tracker id it was given', async () => {
    vi.useFakeTimers();
    const t = fakeTransport({ 'http://a/announce': () => ({ peers: [], interval: 60, trackerId: 'T1' }) });
    live = make([['http://a/announce']], t.fn);
    live.start();
    await flush();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(t.calls[0]!.params.trackerId).toBeUndefined();
    expect(t.calls[1]!.params.trackerId).toBe('T1');
  });
});

describe('Announcer.stop', () => {
  it('sends stopped to every tracker that got started, and nothing fires afterwards', async () => {
    vi.useFakeTimers();
    const t = fakeTransport({ 'http://a/announce': 'ok', 'http://b/announce': 'ok', 'http://c/announce': 'ok' });
    const a = make([['http://a/announce'], ['http://b/announce'], ['http://c/announce']], t.fn);
    a.start();
    await flush();
    const stopping = a.stop(1_000);
    await vi.advanceTimersByTimeAsync(0);
    await stopping;
    expect(t.events()).toEqual(['http://a/announce:started', 'http://a/announce:stopped']);
    expect(t.calls[1]!.params.numwant).toBe(0);
    const n = t.calls.length;
    let emitted = 0;
    a.on('peers', () => emitted++);
    a.requestPeers();
    a.completed();
    a.start();
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(t.calls).toHaveLength(n);
    expect(emitted).toBe(0);
  });

  it('abandon() (a magnet hands over to the download): no stopped, in-flight announces aborted, nothing fires afterwards', async () => {
    vi.useFakeTimers();
    const t = fakeTransport({ 'http://ok/announce': 'ok', 'http://hang/announce': 'hang' });
    const answered = make([['http://ok/announce']], t.fn);
    const hanging = make([['http://hang/announce']], t.fn);
    answered.start();
    hanging.start();
    await flush();
    const inFlight = t.calls.find((c) => c.url === 'http://hang/announce')!;
    expect(inFlight.signal?.aborted).toBe(false);
    answered.abandon();
    hanging.abandon();
    expect(inFlight.signal?.aborted).toBe(true);
    await answered.stop(1_000); // after abandon, stop sends nothing either
    await hanging.stop(1_000);
    await vi.advanceTimersByTimeAsync(3_600_000);
    expect(t.events()).toEqual(['http://ok/announce:started', 'http://hang/announce:started']);
  });

  it('returns within its bound when trackers hang, aborting in-flight announces', async () => {
    const calls: { url: string; event: string; signal: AbortSignal | undefined }[] = [];
    const transport: AnnounceFn = (url, params, opts) => {
      calls.push({ url, event: params.event ?? '-', signal: opts.signal });
      if (url === 'http://a/announce' && params.event === 'started') return Promise.resolve({ peers: [], interval: 60 });
      return new Promise(() => {}); // hangs, even ignoring its signal
    };
    const a = make([['http://hang/announce'], ['http://a/announce']], transport, { fallbackDelayMs: 10 });
    a.start();
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.map((c) => `${c.url}:${c.event}`)).toEqual(['http://hang/announce:started', 'http://a/announce:started']);
    const began = Date.now();
    await a.stop(200);
    const took = Date.now() - began;
    expect(took).toBeGreaterThanOrEqual(150);
    expect(took).toBeLessThan(1_000);
    expect(calls[0]!.signal?.aborted).toBe(true);
    expect(calls.slice(2).map((c) => `${c.url}:${c.event}`).sort()).toEqual(['http://a/announce:stopped', 'http://hang/announce:stopped']);
  });
});

describe('Announcer with many trackers', () => {
  // a failure that walked the whole list made this quadratic: 10,000 trackers took minutes (now about a second)
  it('10,000 refusing trackers: each asked once, then one all-failed naming every one (a failure walks no list)', async () => {
    const n = 10_000;
    const list = Array.from({ length: n }, (_, i) => [`http://127.0.0.1:1/announce/${i}`]);
    let calls = 0;
    const fn: AnnounceFn = (url) => {
      calls++;
      // refused on the next turn of the event loop, as a closed port is
      return new Promise((_, reject) => setImmediate(() => reject(new TrackerError(`${url}: connect ECONNREFUSED`))));
    };
    const a = (live = make(list, fn));
    const allFailed: TrackerFailure[][] = [];
    a.on('all-failed', (f: TrackerFailure[]) => allFailed.push(f));
    a.on('tracker-error', () => {});
    a.start();
    for (let i = 0; i < 4 * n && allFailed.length === 0; i++) await new Promise((r) => setImmediate(r));
    expect(allFailed).toHaveLength(1);
    expect(allFailed[0]).toHaveLength(n);
    expect(calls).toBe(n);
  }, 30_000);

  it(`at most ${MAX_ANNOUNCES_IN_FLIGHT} announces out at once: retries due together queue, in order, and all go out`, async () => {
    vi.useFakeTimers();
    const urls = Array.from({ length: 40 }, (_, i) => `http://t${i}/announce`);
    const tried = new Set<string>();
    const out: Call[] = [];
    let most = 0;
    const fn: AnnounceFn = (url, params, opts) => {
      if (!tried.has(url)) {
        tried.add(url);
        return Promise.reject(new TrackerError('down'));
      }
      return new Promise<AnnounceResult>((resolve, reject) => {
        out.push({ url, params, signal: opts.signal, resolve, reject });
        most = Math.max(most, out.length);
        opts.signal?.addEventListener('abort', () => reject(new TrackerError('aborted')));
      });
    };
    const a = (live = make([urls], fn, { retryBaseMs: 1_000 }));
    a.on('tracker-error', () => {});
    a.on('all-failed', () => {});
    a.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(tried.size).toBe(40); // each failure let the next one start
    await vi.advanceTimersByTimeAsync(1_000); // every retry is due now
    expect(out).toHaveLength(MAX_ANNOUNCES_IN_FLIGHT);
    expect(a.status().filter((s) => s.state === 'announcing')).toHaveLength(MAX_ANNOUNCES_IN_FLIGHT);
    const answered: string[] = [];
    for (let i = 0; i < 100 && out.length > 0; i++) {
      const c = out.shift()!;
      answered.push(c.url);
      c.resolve({ peers: [], interval: 1800 });
      await flush();
    }
    expect(most).toBe(MAX_ANNOUNCES_IN_FLIGHT);
    expect(new Set(answered).size).toBe(40);
    expect(a.status().every((s) => s.state === 'working')).toBe(true);
  });

  it(`stop() tells every tracker that knows us, ${MAX_ANNOUNCES_IN_FLIGHT} at a time`, async () => {
    vi.useFakeTimers();
    const urls = Array.from({ length: 40 }, (_, i) => `http://t${i}/announce`);
    const tried = new Set<string>();
    const stopped: string[] = [];
    let out = 0;
    let most = 0;
    const fn: AnnounceFn = (url, params) => {
      if (params.event === 'stopped') {
        stopped.push(url);
        most = Math.max(most, ++out);
        return new Promise((resolve) => setTimeout(() => (out--, resolve({ peers: [], interval: 60 })), 10));
      }
      if (!tried.has(url)) {
        tried.add(url);
        return Promise.reject(new TrackerError('down'));
      }
      return Promise.resolve({ peers: [], interval: 1800 });
    };
    const a = make([urls], fn, { retryBaseMs: 1_000 });
    a.on('tracker-error', () => {});
    a.on('all-failed', () => {});
    a.start();
    await vi.advanceTimersByTimeAsync(0);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(a.status().filter((s) => s.state === 'working')).toHaveLength(40);
    const stopping = a.stop(1_000);
    await vi.advanceTimersByTimeAsync(100);
    await stopping;
    expect(new Set(stopped).size).toBe(40);
    expect(most).toBe(MAX_ANNOUNCES_IN_FLIGHT);
  });
});

describe('Announcer: completed at stop (BEP 3: trackers count downloads by it)', () => {
  it('a completed announce still out when stop() comes is awaited, not aborted, then stopped follows', async () => {
    const t = fakeTransport({}); // every call waits to be answered by hand
    let left = 100;
    const a = make([['http://a/announce']], t.fn, { stats: () => ({ uploaded: 0, downloaded: 100, left }) });
    a.start();
    await flush();
    t.calls[0]!.resolve({ peers: [], interval: 60 });
    await flush();
    left = 0;
    a.completed();
    const stopping = a.stop(1_000);
    await flush();
    expect(t.events()).toEqual(['http://a/announce:started', 'http://a/announce:completed']);
    const completedCall = t.calls[1]!;
    expect(completedCall.signal?.aborted).toBe(false);
    completedCall.resolve({ peers: [], interval: 60 });
    await flush();
    t.calls[2]?.resolve({ peers: [], interval: 60 });
    await stopping;
    expect(t.events()).toEqual(['http://a/announce:started', 'http://a/announce:completed', 'http://a/announce:stopped']);
    expect(t.calls[2]!.params.left).toBe(0);
  });

  it('a tracker still owed completed (its announce failed, a retry pending) gets completed, then stopped', async () => {
    vi.useFakeTimers();
    let left = 100;
    const fn = fakeTransport({
      'http://a/announce': (p) => {
        if (p.event === 'completed' && !failedOnce) {
          failedOnce = true;
          throw new TrackerError('busy');
        }
        return { peers: [], interval: 60 };
      },
    });
    let failedOnce = false;
    const a = make([['http://a/announce']], fn.fn, { stats: () => ({ uploaded: 0, downloaded: 100, left }) });
    a.on('tracker-error', () => {});
    a.start();
    await flush();
    left = 0;
    a.completed();
    await flush();
    expect(fn.events()).toEqual(['http://a/announce:started', 'http://a/announce:completed']);
    const stopping = a.stop(1_000);
    await vi.advanceTimersByTimeAsync(0);
    await stopping;
    expect(fn.events()).toEqual(['http://a/announce:started', 'http://a/announce:completed', 'http://a/announce:completed', 'http://a/announce:stopped']);
    expect(fn.calls.slice(2).map((c) => c.params.numwant)).toEqual([0, 0]);
  });

  it('a tracker that got completed gets only stopped', async () => {
    vi.useFakeTimers();
    const t = fakeTransport({ 'http://a/announce': 'ok' });
    const a = make([['http://a/announce']], t.fn);
    a.start();
    await flush();
    a.completed();
    await flush();
    const stopping = a.stop(1_000);
    await vi.advanceTimersByTimeAsync(0);
    await stopping;
    expect(t.events()).toEqual(['http://a/announce:started', 'http://a/announce:completed', 'http://a/announce:stopped']);
  });
});

describe('Announcer: port 0', () => {
  it('a tracker URL naming port 0 is skipped like an unsupported one, never dialed (node would dial 80)', () => {
    const t = fakeTransport({});
    const a = (live = make([['http://127.0.0.1:0/announce'], ['udp://127.0.0.1:0'], ['https://h:0/announce']], t.fn));
    const warnings: string[] = [];
    const allFailed: TrackerFailure[][] = [];
    a.on('warning', (m: string) => warnings.push(m));
    a.on('all-failed', (f: TrackerFailure[]) => allFailed.push(f));
    a.start();
    expect(t.calls).toHaveLength(0);
    expect(warnings).toEqual([
      'unsupported tracker skipped: http://127.0.0.1:0/announce',
      'unsupported tracker skipped: udp://127.0.0.1:0',
      'unsupported tracker skipped: https://h:0/announce',
    ]);
    expect(allFailed[0]!.map((f) => f.error.message)).toEqual(['port 0 cannot be dialed', 'port 0 cannot be dialed', 'port 0 cannot be dialed']);
  });
});
