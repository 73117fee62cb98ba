/**
 * SIGHUP (the terminal closed) stops tt as gracefully as Ctrl-C does, through
 * the built binary: a download mid-way announces `stopped`, writes its resume
 * record and says one line naming SIGHUP, then ends by SIGHUP itself (status
 * 129 in a shell; Node 20 would abort with SIGABRT on a normal exit from a
 * hung-up terminal). The same for a seed whose pty really hangs up, for the
 * magnet metadata phase, `tt verify` and `tt tracker`. SIGTERM keeps exit 130.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encode } from '../../../src/metainfo/bencode.js';
import { RawPeer } from '../../helpers/raw-peer.js';
import { makeFixture, startSession, stopAll, trackDir, type Fixture } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';
import { LOOPBACK, TT_BIN, expectOneErrorLine, killAllTt, startTt } from './tt-cli.js';

/** An HTTP tracker that answers every announce with no peers and keeps each request's `event`. */
interface FakeTracker {
  url: string;
  events: string[];
  close(): Promise<void>;
}

const trackers: FakeTracker[] = [];
afterEach(async () => {
  await killAllTt();
  await stopAll();
  for (const t of trackers.splice(0)) await t.close();
});

async function fakeTracker(): Promise<FakeTracker> {
  const events: string[] = [];
  const server: Server = createServer((req, res) => {
    events.push(new URL(req.url ?? '/', 'http://x').searchParams.get('event') ?? '');
    res.end(encode({ interval: 1800, peers: Buffer.alloc(0) }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const t: FakeTracker = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/announce`,
    events,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
  trackers.push(t);
  return t;
}

const PIECE = 32_768;

async function fixture(announce?: string): Promise<Fixture> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 4 * 1024 * 1024 }], pieceLength: PIECE, ...(announce ? { announce } : {}) });
  trackDir(fx.work);
  return fx;
}

describe('SIGHUP', () => {
  it('mid-download: `stopped` announced, resume record written, one line naming SIGHUP, then ended by SIGHUP', async () => {
    const tracker = await fakeTracker();
    const fx = await fixture(tracker.url);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 512 * 1024 });
    const out = join(fx.work, 'out');
    const p = startTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--peer', `${seed.address.host}:${seed.address.port}`, '--json']);
    await p.waitForEvent('progress', 20_000, (e) => (e.have as number) >= 10);
    expect(tracker.events).toContain('started');
    p.signal('SIGHUP');
    const exit = await p.waitForExit(10_000);
    expect(exit, p.describe()).toEqual({ code: null, signal: 'SIGHUP' });
    expectOneErrorLine(p, /^tt: interrupted by SIGHUP \(terminal hangup\); \d+ of 128 pieces verified and kept$/);
    expect(p.badLines).toEqual([]);
    expect(tracker.events).toContain('stopped');
    expect(existsSync(join(out, `.${fx.meta.infoHashHex}.tt-resume`))).toBe(true);
  });

  it('a seed whose terminal really hangs up (pty closed): `stopped` announced, ended by SIGHUP, not aborted', async () => {
    const tracker = await fakeTracker();
    const fx = await fixture(tracker.url);
    // python's pty: tt's stdin, stdout and stderr are the terminal; closing the master hangs it up
    const script = [
      'import json, os, pty, select, sys, time',
      'pid, fd = pty.fork()',
      'if pid == 0:',
      '    os.execv(sys.argv[1], sys.argv[1:])',
      'seen, deadline = b"", time.time() + 20',
      'while b"Ctrl-C to stop" not in seen and time.time() < deadline:',
      '    if select.select([fd], [], [], 0.1)[0]:',
      '        try: seen += os.read(fd, 65536)',
      '        except OSError: break',
      'os.close(fd)',
      '_, status = os.waitpid(pid, 0)',
      'print(json.dumps({"ready": b"Ctrl-C to stop" in seen, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None, "code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}))',
    ].join('\n');
    const args = [TT_BIN, 'seed', fx.torrentPath, '--dir', fx.seedRoot, ...LOOPBACK];
    const child = spawn('python3', ['-c', script, process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    const done = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await done;
    clearTimeout(timer);
    const result = JSON.parse(stdout) as { ready: boolean; signal: number | null; code: number | null };
    expect(result.ready, stdout).toBe(true);
    expect(result, 'killed by SIGHUP (1), not SIGABRT (6)').toMatchObject({ signal: 1, code: null });
    await until(() => tracker.events.includes('stopped'), 5_000, 'the stopped announce');
    expect(tracker.events[0]).toBe('started');
  });

  it('while fetching a magnet link\'s metadata: one line naming SIGHUP, nothing written', async () => {
    const fx = await fixture();
    const silent = await RawPeer.listen();
    try {
      const out = join(fx.work, 'out');
      const p = startTt(['download', `magnet:?xt=urn:btih:${fx.meta.infoHashHex}`, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${silent.port}`, '--json']);
      await p.waitForEvent('metadata-fetching', 15_000);
      await silent.accept(10_000);
      p.signal('SIGHUP');
      expect(await p.waitForExit(10_000), p.describe()).toEqual({ code: null, signal: 'SIGHUP' });
      expectOneErrorLine(p, /^tt: interrupted by SIGHUP \(terminal hangup\) while fetching the metadata; nothing written$/);
      expect(existsSync(out)).toBe(false);
    } finally {
      await silent.close();
    }
  });

  it('tt verify while hashing, and tt tracker: one line naming SIGHUP each', async () => {
    const fx = await makeFixture({ files: [{ path: ['big.bin'], size: 1 }], pieceLength: PIECE });
    trackDir(fx.work);
    // a large sparse file and a torrent of it: hashing takes seconds
    const data = join(fx.work, 'big');
    execFileSync('mkdir', ['-p', join(data, 'payload')]);
    const fh = await open(join(data, 'payload', 'big.bin'), 'w');
    await fh.truncate(1024 * 1024 * 1024);
    await fh.close();
    const torrent = join(fx.work, 'big.torrent');
    const created = startTt(['create', join(data, 'payload'), '-o', torrent, '--piece-length', '4MiB']);
    expect((await created.waitForExit(60_000)).code, created.describe()).toBe(0);
    const verify = startTt(['verify', torrent, '--dir', data, '--json']);
    await verify.waitForEvent('info', 10_000);
    verify.signal('SIGHUP');
    expect(await verify.waitForExit(10_000), verify.describe()).toEqual({ code: null, signal: 'SIGHUP' });
    expectOneErrorLine(verify, /^tt: interrupted by SIGHUP \(terminal hangup\) while verifying; nothing written$/);

    const tracker = startTt(['tracker', '--bind', '127.0.0.1', '--port', '0', '--json']);
    await tracker.waitForEvent('listening', 10_000);
    tracker.signal('SIGHUP');
    expect(await tracker.waitForExit(10_000), tracker.describe()).toEqual({ code: null, signal: 'SIGHUP' });
    expectOneErrorLine(tracker, /^tt: tracker stopped by SIGHUP$/);
  }, 90_000);
});

describe('SIGTERM', () => {
  it('mid-download: exit 130, one line naming SIGTERM, `stopped` announced', async () => {
    const tracker = await fakeTracker();
    const fx = await fixture(tracker.url);
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: 512 * 1024 });
    const p = startTt(['download', fx.torrentPath, '--out', join(fx.work, 'out'), ...LOOPBACK, '--peer', `${seed.address.host}:${seed.address.port}`, '--json']);
    await p.waitForEvent('progress', 20_000, (e) => (e.have as number) >= 5);
    p.signal('SIGTERM');
    expect((await p.waitForExit(10_000)).code, p.describe()).toBe(130);
    expectOneErrorLine(p, /^tt: interrupted by SIGTERM; \d+ of 128 pieces verified and kept$/);
    expect(tracker.events).toContain('stopped');
  });
});
