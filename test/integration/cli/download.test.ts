/**
 * `tt download`, `tt seed` and `tt demo` runs through the built binary on
 * 127.0.0.1: the --json event stream, --quiet, Ctrl-C keeping verified pieces
 * (a restart fetches only the rest), --seed --seed-time, and the demo swarm.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { rawEncode, rdict } from '../../helpers/torrent-factory.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { join } from 'node:path';
import { RawPeer } from '../../helpers/raw-peer.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, whenComplete, type Fixture } from '../../helpers/swarm.js';
import { directSupported } from '../../helpers/direct-io.js';
import { piecesOnDisk } from '../safety/pieces-on-disk.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt, startTt } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

const PIECE = 32_768;

async function fixture(size: number): Promise<Fixture> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size }], pieceLength: PIECE });
  trackDir(fx.work);
  return fx;
}

async function seeder(fx: Fixture, uploadLimit = 0): Promise<string> {
  const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit });
  return `${seed.address.host}:${seed.address.port}`;
}

describe('tt download --json', () => {
  it('prints only well-formed events, in a sensible order, and the data is byte-identical', async () => {
    const fx = await fixture(1024 * 1024 + 123);
    const peer = await seeder(fx, 384 * 1024); // ~3 s: several progress events
    const out = join(fx.work, 'out');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', peer, '--json'], 30_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(p.stderr).toBe('');
    expect(p.badLines).toEqual([]);
    const names = p.events.map((e) => e.event);
    for (const n of ['listening', 'checked', 'started', 'progress', 'complete', 'done']) expect(names, n).toContain(n);
    const first = (n: string): number => names.indexOf(n);
    expect(first('listening')).toBeLessThan(first('checked'));
    expect(first('checked')).toBeLessThan(first('started'));
    expect(first('started')).toBeLessThan(first('progress'));
    expect(first('progress')).toBeLessThan(first('complete'));
    expect(names[names.length - 1]).toBe('done');
    expect(names.filter((n) => n === 'done')).toHaveLength(1);
    expect(names.filter((n) => n === 'complete')).toHaveLength(1);
    expect(names.filter((n) => n === 'progress').length).toBeGreaterThanOrEqual(2);
    // field contents
    const listening = p.events.find((e) => e.event === 'listening')!;
    expect(listening.port).toBeGreaterThan(0);
    expect(p.events.find((e) => e.event === 'checked')).toMatchObject({ have: 0, pieceCount: fx.meta.pieceCount });
    expect(p.events.find((e) => e.event === 'started')).toMatchObject({ infoHash: fx.meta.infoHashHex, pieceCount: fx.meta.pieceCount, have: 0 });
    const progress = p.events.filter((e) => e.event === 'progress');
    for (const e of progress) {
      for (const k of ['have', 'pieceCount', 'left', 'downloaded', 'uploaded', 'downloadRate', 'uploadRate', 'peers', 'knownPeers']) {
        expect(typeof e[k], `progress.${k}`).toBe('number');
      }
    }
    const haves = progress.map((e) => e.have as number);
    expect(haves).toEqual([...haves].sort((a, b) => a - b)); // never goes backwards
    expect(progress[progress.length - 1]).toMatchObject({ have: fx.meta.pieceCount, left: 0 });
    expect(p.events[p.events.length - 1]).toMatchObject({ event: 'done', complete: true, have: fx.meta.pieceCount });
    await expectSameData(fx, out);
  });

  it('writes whole pieces with O_DIRECT by default, through the page cache with --no-direct-io', async () => {
    const fx = await fixture(32 * PIECE + 123);
    const peer = await seeder(fx);
    const supported = await directSupported(fx.work);
    for (const [flags, expected] of [[[], supported ? 32 * PIECE : 0], [['--no-direct-io'], 0]] as const) {
      const out = join(fx.work, `out${flags.length}`);
      const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', peer, '--json', ...flags]);
      expect(p.exit?.code, p.describe()).toBe(0);
      const done = p.events.find((e) => e.event === 'done')!;
      expect(done.directWriteBytes, flags.join(' ')).toBe(expected); // the 123-byte last piece always goes through the page cache
      await expectSameData(fx, out);
    }
  });

  it('--quiet prints nothing at all on success', async () => {
    const fx = await fixture(300_000);
    const peer = await seeder(fx);
    const out = join(fx.work, 'out');
    const p = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', peer, '--quiet']);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(p.stdout).toBe('');
    expect(p.stderr).toBe('');
    await expectSameData(fx, out);
  });
});

describe('Ctrl-C', () => {
  it('SIGINT mid-download exits 130 within seconds with one line; verified pieces are kept and a restart fetches only the rest', async () => {
    const fx = await fixture(4 * 1024 * 1024); // 128 pieces
    const slow = await seeder(fx, 512 * 1024); // ~8 s for all of it
    const out = join(fx.work, 'out');
    const args = ['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--json'];
    const first = startTt([...args, '--peer', slow]);
    await first.waitForEvent('progress', 15_000, (e) => (e.have as number) >= 20);
    const sentAt = Date.now();
    first.signal('SIGINT');
    const exit = await first.waitForExit(10_000);
    const seconds = (Date.now() - sentAt) / 1000;
    expect(exit.code, first.describe()).toBe(130);
    expect(seconds).toBeLessThan(5);
    expectOneErrorLine(first, /interrupted.*\d+ of 128 pieces/);
    expect(first.badLines).toEqual([]);
    const kept = Number(/(\d+) of 128 pieces/.exec(first.stderr)![1]);
    expect(kept).toBeGreaterThanOrEqual(20);
    expect(kept).toBeLessThan(128);
    // what it says it kept really is on disk and hashes
    const onDisk = await piecesOnDisk(fx.meta, out);
    expect(onDisk.length).toBeGreaterThanOrEqual(kept);
    // restart (against a fast seeder): re-checks, finds them, fetches only the rest
    const fast = await seeder(fx);
    const second = await runTt([...args, '--peer', fast], 30_000);
    expect(second.exit?.code, second.describe()).toBe(0);
    const checked = second.events.find((e) => e.event === 'checked')!;
    expect(checked.have).toBe(onDisk.length);
    const done = second.events.find((e) => e.event === 'done')!;
    expect(done.downloaded).toBeLessThanOrEqual((128 - onDisk.length) * PIECE);
    expect(done.downloaded).toBeGreaterThan(0);
    await expectSameData(fx, out);
  });
});

describe('Ctrl-C while checking', () => {
  it('stops checking a large existing file at once: exit 130, one line, the file untouched', async () => {
    // 48 GiB, sparse: hashing all of it takes tens of seconds on two cores; the hashes are made up, so nothing matches
    const work = mkdtempSync(join(tmpdir(), 'tt-check-int-'));
    trackDir(work);
    const size = 48 * 1024 ** 3;
    const pieceLength = 16 * 1024 * 1024;
    const pieces = randomBytes((size / pieceLength) * 20);
    const torrentPath = join(work, 'big.torrent');
    writeFileSync(torrentPath, rawEncode(rdict([['announce', 'http://127.0.0.1:9/announce'], ['info', rdict([['length', size], ['name', 'big.bin'], ['piece length', pieceLength], ['pieces', pieces]])]])));
    const out = join(work, 'out');
    mkdirSync(out);
    writeFileSync(join(out, 'big.bin'), '');
    truncateSync(join(out, 'big.bin'), size);
    for (const command of [['download', torrentPath, '--out', out, '--no-trackers', '--peer', '127.0.0.1:9'], ['seed', torrentPath, '--dir', out, '--partial']]) {
      const p = startTt([...command, ...LOOPBACK, '--json']);
      await p.waitForEvent('listening', 15_000);
      await new Promise((r) => setTimeout(r, 300)); // well into the check
      const sentAt = Date.now();
      p.signal('SIGINT');
      const exit = await p.waitForExit(60_000);
      expect(exit.code, p.describe()).toBe(130);
      expect(Date.now() - sentAt).toBeLessThan(5_000);
      expectOneErrorLine(p, /interrupted by SIGINT while checking (existing|its) data/);
      expect(p.events.some((e) => e.event === 'checked')).toBe(false); // it really was cut short
      expect(statSync(join(out, 'big.bin')).size).toBe(size);
      expect(readdirSync(out)).toEqual(['big.bin']);
    }
  }, 150_000);
});

describe('tt download <magnet>', () => {
  it('fetches the metadata from a tt seed named by x.pe, then every byte of a multi-file torrent; the events say so, in order', async () => {
    const fx = await makeFixture({ pieceLength: PIECE });
    trackDir(fx.work);
    const peer = await seeder(fx);
    const out = join(fx.work, 'out');
    // the seed's address travels in the link itself (x.pe), no --peer
    const magnet = `magnet:?xt=urn:btih:${fx.meta.infoHashHex}&dn=${encodeURIComponent(fx.meta.name)}&x.pe=${encodeURIComponent(peer)}`;
    const p = await runTt(['download', magnet, '--out', out, ...LOOPBACK, '--no-trackers', '--json'], 30_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(p.badLines).toEqual([]);
    const names = p.events.map((e) => e.event);
    expect(names.indexOf('metadata-fetching')).toBeGreaterThanOrEqual(0);
    expect(names.indexOf('metadata')).toBeGreaterThan(names.indexOf('metadata-fetching'));
    expect(names.indexOf('started')).toBeGreaterThan(names.indexOf('metadata'));
    expect(p.events.find((e) => e.event === 'metadata')!.bytes).toBe(fx.meta.rawInfo.length);
    expect(p.events.find((e) => e.event === 'started')!.infoHash).toBe(fx.meta.infoHashHex);
    await expectSameData(fx, out);
  });

  it('--save-torrent writes the torrent file once the metadata is verified; tt seed serves from it; a re-run accepts it, another torrent there is refused', async () => {
    const fx = await makeFixture({ pieceLength: PIECE });
    trackDir(fx.work);
    const peer = await seeder(fx);
    const out = join(fx.work, 'out');
    const saved = join(fx.work, 'saved.torrent');
    const tr = 'http://127.0.0.1:1/announce';
    const magnet = `magnet:?xt=urn:btih:${fx.meta.infoHashHex}&tr=${encodeURIComponent(tr)}&x.pe=${encodeURIComponent(peer)}`;
    const args = ['download', magnet, '--out', out, ...LOOPBACK, '--no-trackers', '--save-torrent', saved, '--json'];
    const p = await runTt(args, 30_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    const names = p.events.map((e) => e.event);
    expect(names.indexOf('torrent-saved'), names.join(' ')).toBeGreaterThan(names.indexOf('metadata'));
    expect(names.indexOf('torrent-saved')).toBeLessThan(names.indexOf('started'));
    expect(p.events.find((e) => e.event === 'torrent-saved')).toMatchObject({ path: saved, written: true });
    await expectSameData(fx, out);
    const meta = parseTorrent(readFileSync(saved));
    expect(meta.infoHashHex).toBe(fx.meta.infoHashHex); // the info dictionary byte for byte
    expect(meta.announceList).toEqual([[tr]]);

    // the saved file is an ordinary torrent: tt seed checks the download against it and serves it
    const seed = startTt(['seed', saved, '--dir', out, ...LOOPBACK, '--json']);
    expect((await seed.waitForEvent('checked', 15_000)).have).toBe(fx.meta.pieceCount);
    seed.signal('SIGINT');
    await seed.waitForExit(10_000);

    // the same command again: the same file there is fine
    const again = await runTt(args, 30_000);
    expect(again.exit?.code, again.describe()).toBe(0);
    expect(again.events.find((e) => e.event === 'torrent-saved')).toMatchObject({ written: false });

    // a different file under that name is never replaced: exit 2 before anything is downloaded
    writeFileSync(saved, 'not this torrent');
    const other = join(fx.work, 'other');
    const refused = await runTt(['download', magnet, '--out', other, ...LOOPBACK, '--no-trackers', '--save-torrent', saved, '--quiet'], 30_000);
    expect(refused.exit?.code, refused.describe()).toBe(2);
    expectOneErrorLine(refused, /saved\.torrent already exists/);
    expect(readFileSync(saved, 'utf8')).toBe('not this torrent');
    expect(existsSync(other)).toBe(false);
  });

  it('--save-torrent with a .torrent file is a usage error', async () => {
    const fx = await fixture(64 * 1024);
    const p = await runTt(['download', fx.torrentPath, '--out', join(fx.work, 'out'), ...LOOPBACK, '--save-torrent', join(fx.work, 'x.torrent')], 15_000);
    expect(p.exit?.code, p.describe()).toBe(2);
    expectOneErrorLine(p, /--save-torrent is for magnet links/);
    expect(existsSync(join(fx.work, 'x.torrent'))).toBe(false);
  });

  it("--save-torrent - is a usage error (stdout carries the download's messages), before any peer is asked", async () => {
    const fx = await fixture(64 * 1024);
    const magnet = `magnet:?xt=urn:btih:${fx.meta.infoHashHex}`;
    const p = await runTt(['download', magnet, '--out', join(fx.work, 'out'), ...LOOPBACK, '--peer', '127.0.0.1:9', '--save-torrent', '-'], 15_000);
    expect(p.exit?.code, p.describe()).toBe(2);
    expectOneErrorLine(p, /--save-torrent -: standard output/);
    expect(existsSync(join(fx.work, 'out'))).toBe(false);
  });

  it('SIGINT while waiting for the metadata exits 130 with one line and writes nothing', async () => {
    const fx = await fixture(64 * 1024);
    // a listener that accepts and never answers: tt stays in the metadata phase
    const silent = await RawPeer.listen();
    try {
      const out = join(fx.work, 'out');
      const magnet = `magnet:?xt=urn:btih:${fx.meta.infoHashHex}`;
      const p = startTt(['download', magnet, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${silent.port}`, '--json']);
      await p.waitForEvent('metadata-fetching', 15_000);
      await silent.accept(10_000);
      p.signal('SIGINT');
      const exit = await p.waitForExit(10_000);
      expect(exit.code, p.describe()).toBe(130);
      expectOneErrorLine(p, /interrupted.*metadata/);
      expect(existsSync(out)).toBe(false);
    } finally {
      await silent.close();
    }
  });
});

describe('tt download: fast resume across Ctrl-C and a crash', () => {
  it('Ctrl-C leaves a resume record; a run killed mid-download does not spoil it; the third run trusts only unchanged files and completes', async () => {
    const fx = await makeFixture({
      files: [
        { path: ['a.bin'], size: 900_001 },
        { path: ['b.bin'], size: 700_000 },
        { path: ['c.bin'], size: 600_000 },
      ],
      pieceLength: PIECE,
    });
    trackDir(fx.work);
    const peer = await seeder(fx, 512 * 1024);
    const out = join(fx.work, 'out');
    const args = ['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', peer, '--json'];
    const record = join(out, `.${fx.meta.infoHashHex}.tt-resume`);

    const first = startTt(args);
    await first.waitForEvent('progress', 20_000, (e) => (e.have as number) >= 15);
    first.signal('SIGINT');
    expect((await first.waitForExit(10_000)).code, first.describe()).toBe(130);
    expect(existsSync(record)).toBe(true);

    const second = startTt(args);
    const checked = await second.waitForEvent('checked', 20_000);
    const had = checked.have as number;
    expect(had).toBeGreaterThanOrEqual(15);
    expect(checked.resumed).toBe(had); // every piece from the record, none hashed
    await second.waitForEvent('progress', 20_000, (e) => (e.have as number) >= had + 10);
    second.signal('SIGKILL'); // pieces written after the record: their files changed since
    await second.waitForExit(10_000);

    const third = await runTt(args, 60_000);
    expect(third.exit?.code, third.describe()).toBe(0);
    const resumed = third.events.find((e) => e.event === 'checked')!;
    expect(resumed.resumed as number).toBeLessThanOrEqual(had);
    expect(resumed.have as number).toBeGreaterThanOrEqual(had + 10); // the killed run's pieces were kept (hashed again)
    await expectSameData(fx, out);
    expect(existsSync(record)).toBe(false);
  }, 90_000);
});

describe('tt download --max-peers-per-ip', () => {
  it('with 1, three peers at one IP are dialed one at a time (each connection held open)', async () => {
    const fx = await fixture(64 * 1024);
    const silent = await Promise.all([0, 1, 2].map(() => RawPeer.listen()));
    try {
      const out = join(fx.work, 'out');
      const peers = silent.flatMap((s) => ['--peer', `127.0.0.1:${s.port}`]);
      const p = startTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', ...peers, '--max-peers-per-ip', '1', '--json']);
      await p.waitForEvent('started', 15_000);
      const accepted = silent.map((s) => s.accept(3_000).then(() => 1, () => 0));
      const connections = (await Promise.all(accepted)).reduce((a: number, b) => a + b, 0);
      expect(connections, p.describe()).toBe(1);
    } finally {
      await Promise.all(silent.map((s) => s.close()));
    }
  });
});

describe('tt seed', () => {
  it('--json: listening, checked (all), started, complete; serves a tt download; SIGINT ends it: exit 0 and the done event', async () => {
    const fx = await fixture(700_000);
    const seed = startTt(['seed', fx.torrentPath, '--dir', fx.seedRoot, ...LOOPBACK, '--json']);
    const port = (await seed.waitForEvent('listening')).port as number;
    await seed.waitForEvent('started');
    const out = join(fx.work, 'out');
    const leech = await runTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${port}`, '--quiet']);
    expect(leech.exit?.code, leech.describe()).toBe(0);
    await expectSameData(fx, out);
    await seed.waitForEvent('progress', 5_000, (e) => (e.uploaded as number) >= fx.meta.totalLength);
    const names = seed.events.map((e) => e.event);
    expect(names.indexOf('listening')).toBeLessThan(names.indexOf('checked'));
    expect(names.indexOf('checked')).toBeLessThan(names.indexOf('started'));
    expect(seed.events.find((e) => e.event === 'checked')).toMatchObject({ have: fx.meta.pieceCount, pieceCount: fx.meta.pieceCount });
    expect(names).toContain('complete');
    expect(seed.exit).toBeUndefined();
    seed.signal('SIGINT');
    const exit = await seed.waitForExit(5_000);
    // Ctrl-C is how seeding ends: the summary, not an interruption
    expect(exit.code, seed.describe()).toBe(0);
    expect(seed.stderr).toBe('');
    expect(seed.events[seed.events.length - 1]).toMatchObject({ event: 'done', complete: true });
    expect(seed.badLines).toEqual([]);
  });
});

describe('tt download --seed --seed-time', () => {
  it('the summary line gives the download\'s time and average, then how long it seeded', async () => {
    const fx = await fixture(600_000);
    const peer = await seeder(fx);
    const p = await runTt(['download', fx.torrentPath, '--out', join(fx.work, 'out'), ...LOOPBACK, '--no-trackers', '--peer', peer, '--seed-time', '3s'], 30_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    const m = /^complete: payload 585\.94 KiB\/585\.94 KiB in ([\d.]+)s \(avg [\d.]+ (?:KiB|MiB|GiB)\/s\), then seeded ([\d.]+)s \| /m.exec(p.stdout);
    expect(m, p.stdout).not.toBeNull();
    expect(Number(m![1])).toBeLessThan(2.5); // a loopback download of 600 KB, not the 3 s of seeding
    expect(Number(m![2])).toBeGreaterThanOrEqual(2.5);
  });

  it('keeps serving after completion (another peer downloads from it), then exits 0 after the seed time', async () => {
    const fx = await fixture(600_000);
    const peer = await seeder(fx);
    const out = join(fx.work, 'out');
    const p = startTt(['download', fx.torrentPath, '--out', out, ...LOOPBACK, '--no-trackers', '--peer', peer, '--json', '--seed', '--seed-time', '3s']);
    const port = (await p.waitForEvent('listening')).port as number;
    await p.waitForEvent('complete', 20_000);
    const completeAt = Date.now();
    // a second leecher that only knows the tt process gets everything from it
    const leech = await startSession({ meta: fx.meta, root: join(fx.work, 'leech'), mode: 'download', peers: [{ host: '127.0.0.1', port }] });
    await whenComplete(leech.session, 10_000);
    await expectSameData(fx, join(fx.work, 'leech'));
    expect(p.exit, 'tt exited before the second peer finished').toBeUndefined();
    const exit = await p.waitForExit(15_000);
    const seeded = (Date.now() - completeAt) / 1000;
    expect(exit.code, p.describe()).toBe(0);
    expect(seeded).toBeGreaterThanOrEqual(2.5);
    expect(seeded).toBeLessThan(8);
    const done = p.events[p.events.length - 1]!;
    expect(done).toMatchObject({ event: 'done', complete: true });
    expect(done.uploaded).toBeGreaterThanOrEqual(fx.meta.totalLength);
    // the download's time is apart from the seeding after it (the average rate is over the former)
    expect(done.seededSeconds as number).toBeGreaterThanOrEqual(2.5);
    expect(done.downloadSeconds as number).toBeLessThan((done.seconds as number) - 2.5);
    expect(p.stderr).toBe('');
  });
});

describe('tt demo', () => {
  it('--size 8MiB exits 0 and says the files were verified', async () => {
    const p = await runTt(['demo', '--size', '8MiB'], 60_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(p.stdout).toMatch(/complete: .*\b8(\.0+)? ?MiB.*\bverified\b/);
    expect(p.stderr).not.toMatch(/^tt: /m);
  }, 90_000);

  it('Ctrl-C while the swarm is being set up exits 130 with one line and removes the temporary folder', async () => {
    const tmp = mkdtempSync(join(tmpdir(), 'tt-demo-int-'));
    trackDir(tmp);
    const p = startTt(['demo', '--size', '512MiB', '--json'], { TMPDIR: tmp });
    // the first generated file is written: the data, the torrent and two seeders' checks are still to come
    for (let i = 0; i < 300 && !readdirSync(tmp).some((d) => existsSync(join(tmp, d, 'seed', 'tt-demo', 'README.txt'))); i++) await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(tmp)).toHaveLength(1);
    p.signal('SIGINT');
    const exit = await p.waitForExit(30_000);
    expect(exit.code, p.describe()).toBe(130);
    expectOneErrorLine(p, /interrupted by SIGINT/);
    expect(readdirSync(tmp)).toEqual([]);
  }, 60_000);

  it('--size 8MiB --json ends with a done event that counts the verified files', async () => {
    const p = await runTt(['demo', '--size', '8MiB', '--json'], 60_000);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(p.badLines).toEqual([]);
    const done = p.events[p.events.length - 1]!;
    expect(done).toMatchObject({ event: 'done', complete: true });
    expect(done.verifiedFiles).toBeGreaterThanOrEqual(2);
  }, 90_000);
});
