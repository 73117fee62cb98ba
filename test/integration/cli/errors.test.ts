/**
 * The CLI's error contract for `tt download` and `tt seed`, through the built
 * binary: documented exit codes (2 usage, 3 unreadable, 4 invalid torrent,
 * 5 no peers, 7 incomplete seed) and exactly one `tt: ` line on stderr.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { readdirSync } from 'node:fs';
import { mkdir, open, readFile, writeFile, copyFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeFixture, stopAll, trackDir, type Fixture } from '../../helpers/swarm.js';
import { LOOPBACK, expectErrorLastLine, expectOneErrorLine, killAllTt, runTt, startTt, type TtProcess } from './tt-cli.js';

const FIXTURES = fileURLToPath(new URL('../../../fixtures/torrents/', import.meta.url));
const BAD = readdirSync(FIXTURES).filter((f) => f.startsWith('bad-') && f.endsWith('.torrent')).sort();
/** Spawned at once while sweeping the fixtures (keeps a 2-core machine responsive). */
const CONCURRENCY = 6;

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

async function fixture(opts: Parameters<typeof makeFixture>[0] = {}): Promise<Fixture> {
  const fx = await makeFixture(opts);
  trackDir(fx.work);
  return fx;
}

async function inBatches<T, R>(items: readonly T[], fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += CONCURRENCY) out.push(...(await Promise.all(items.slice(i, i + CONCURRENCY).map(fn))));
  return out;
}

/** download and seed, each quiet (stderr must be just the error) and plain. */
function variants(torrent: string, dir: string): string[][] {
  return [
    ['download', torrent, '--out', dir, ...LOOPBACK, '--quiet'],
    ['download', torrent, '--out', dir, ...LOOPBACK],
    ['seed', torrent, '--dir', dir, ...LOOPBACK, '--quiet'],
    ['seed', torrent, '--dir', dir, ...LOOPBACK],
  ];
}

function expectExit(p: TtProcess, code: number): void {
  expect(p.exit?.code, p.describe()).toBe(code);
}

describe('tt download / tt seed: unreadable and invalid input', () => {
  it('a missing torrent file exits 3 with one line naming it', async () => {
    const fx = await fixture();
    const missing = join(fx.work, 'no-such.torrent');
    for (const args of variants(missing, join(fx.work, 'out'))) {
      const p = await runTt(args);
      expectExit(p, 3);
      expectOneErrorLine(p, /no-such\.torrent/);
    }
  });

  it('a directory given as the torrent exits 3', async () => {
    const fx = await fixture();
    for (const args of variants(fx.work, join(fx.work, 'out'))) {
      const p = await runTt(args);
      expectExit(p, 3);
      expectOneErrorLine(p, /directory/);
    }
  });

  it('a file that is not a torrent exits 4', async () => {
    const fx = await fixture();
    const notTorrent = join(fx.work, 'notes.txt');
    await writeFile(notTorrent, 'just some text\nwith lines\n');
    for (const args of variants(notTorrent, join(fx.work, 'out'))) {
      const p = await runTt(args);
      expectExit(p, 4);
      expectOneErrorLine(p, /torrent/);
    }
  });

  it(`every bad-*.torrent fixture (${BAD.length}) exits 4 for download and seed, one line, nothing created`, async () => {
    expect(BAD.length).toBeGreaterThan(30);
    const fx = await fixture();
    const jobs = BAD.flatMap((name) =>
      [
        ['download', join(FIXTURES, name), '--out', join(fx.work, 'out'), ...LOOPBACK, '--quiet'],
        ['seed', join(FIXTURES, name), '--dir', join(fx.work, 'out'), ...LOOPBACK, '--quiet'],
      ].map((args) => ({ name, args })),
    );
    const results = await inBatches(jobs, async (job) => ({ ...job, p: await runTt(job.args) }));
    for (const { p } of results) {
      expectExit(p, 4);
      expectOneErrorLine(p);
    }
    // an invalid torrent never reaches the disk: the output folder was not even made
    expect(readdirSync(fx.work).sort()).toEqual(['payload.torrent', 'seed']);
  }, 120_000);
});

describe('tt download / tt seed: bad option values', () => {
  const BAD_OPTIONS: { flag: string[]; why: RegExp }[] = [
    { flag: ['--port', '70000'], why: /port/ },
    { flag: ['--port', '-1'], why: /port/ },
    { flag: ['--upload-limit', 'abc'], why: /upload-limit|size/ },
    { flag: ['--max-peers', '0'], why: /max-peers|number/ },
    { flag: ['--max-peers-per-ip', '0'], why: /max-peers-per-ip|number/ },
  ];

  for (const { flag, why } of BAD_OPTIONS) {
    it(`${flag.join(' ')} exits 2 with one 'tt: ' line, before touching anything`, async () => {
      const fx = await fixture();
      const out = join(fx.work, 'out');
      for (const cmd of ['download', 'seed']) {
        const p = await runTt([cmd, fx.torrentPath, cmd === 'seed' ? '--dir' : '--out', out, '--bind', '127.0.0.1', ...flag]);
        expectExit(p, 2);
        expectOneErrorLine(p, why);
      }
      expect(readdirSync(fx.work)).not.toContain('out');
    });
  }

  it('a bad --download-limit and a bad --seed-time are usage errors too (download)', async () => {
    const fx = await fixture();
    for (const flag of [['--download-limit', '5 parsecs'], ['--seed-time', 'soon'], ['--peer', 'nohostport']]) {
      const p = await runTt(['download', fx.torrentPath, '--out', join(fx.work, 'out'), ...LOOPBACK, ...flag]);
      expectExit(p, 2);
      expectOneErrorLine(p);
    }
  });
});

describe('tt download: no way to find peers', () => {
  it('a torrent without trackers and no --peer exits 5 at once', async () => {
    const fx = await fixture(); // makeFixture adds no announce URL
    expect(fx.meta.announceList).toHaveLength(0);
    const t0 = Date.now();
    const quiet = await runTt(['download', fx.torrentPath, '--out', join(fx.work, 'out'), ...LOOPBACK, '--quiet'], 10_000);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expectExit(quiet, 5);
    expectOneErrorLine(quiet, /peer/);
    const plain = await runTt(['download', fx.torrentPath, '--out', join(fx.work, 'out'), ...LOOPBACK], 10_000);
    expectExit(plain, 5);
    expectErrorLastLine(plain, /--peer/);
  });

  it('--no-trackers without --peer exits 5 at once even when the torrent has a tracker', async () => {
    const fx = await fixture({ announce: 'http://127.0.0.1:9/announce' });
    expect(fx.meta.announceList.length).toBeGreaterThan(0);
    const t0 = Date.now();
    const p = await runTt(['download', fx.torrentPath, '--out', join(fx.work, 'out'), ...LOOPBACK, '--no-trackers', '--json'], 10_000);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expectExit(p, 5);
    expectOneErrorLine(p, /peer/);
    expect(p.badLines).toEqual([]);
  });
});

describe('no data, and a file where a folder should be', () => {
  it('tt seed and tt verify: the torrent\'s path missing altogether is "no data" (exit 3), with or without --partial', async () => {
    const fx = await fixture();
    const single = await fixture({ single: true, files: [{ path: ['one.bin'], size: 70_000 }] });
    for (const f of [fx, single]) {
      for (const dir of [join(f.work, 'nonexistent'), join(f.work)]) {
        const top = join(dir, f.meta.name);
        for (const args of [
          ['seed', f.torrentPath, '--dir', dir, ...LOOPBACK, '--quiet'],
          ['seed', f.torrentPath, '--dir', dir, ...LOOPBACK, '--partial', '--quiet'],
          ['verify', f.torrentPath, '--dir', dir, '--quiet'],
        ]) {
          const p = await runTt(args);
          expectExit(p, 3);
          expect(expectOneErrorLine(p)).toBe(`tt: no data: ${top} does not exist`);
        }
      }
    }
    expect(readdirSync(fx.work)).not.toContain('nonexistent');
  });

  it('--dir a file: exit 3 "is not a folder"; download --out a file (or below one): exit 6 "is not a folder"', async () => {
    const fx = await fixture();
    const file = join(fx.work, 'afile');
    await writeFile(file, 'not a folder');
    for (const args of [
      ['seed', fx.torrentPath, '--dir', file, ...LOOPBACK, '--quiet'],
      ['verify', fx.torrentPath, '--dir', file, '--quiet'],
    ]) {
      const p = await runTt(args);
      expectExit(p, 3);
      expect(expectOneErrorLine(p)).toBe(`tt: no data: ${file} is not a folder`);
    }
    const out = await runTt(['download', fx.torrentPath, '--out', file, ...LOOPBACK, '--peer', '127.0.0.1:9', '--quiet']);
    expectExit(out, 6);
    expect(expectOneErrorLine(out)).toBe(`tt: cannot download into ${file}: it is not a folder`);
    const below = await runTt(['download', fx.torrentPath, '--out', join(file, 'sub'), ...LOOPBACK, '--peer', '127.0.0.1:9', '--quiet']);
    expectExit(below, 6);
    expect(expectOneErrorLine(below)).toBe(`tt: cannot download into ${file}: it is not a folder (${join(file, 'sub')} would be inside it)`);
    expect(await readFile(file, 'utf8')).toBe('not a folder');
  });
});

describe('tt download: trackers tt cannot speak', () => {
  it("a magnet whose only tracker is javascript: is a usage error at once (exit 2), naming the scheme", async () => {
    const fx = await fixture();
    const magnet = `magnet:?xt=urn:btih:${fx.meta.infoHashHex}&tr=${encodeURIComponent('javascript:alert(1)')}`;
    const t0 = Date.now();
    const p = await runTt(['download', magnet, '--out', join(fx.work, 'out'), ...LOOPBACK, '--quiet'], 10_000);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expectExit(p, 2);
    expectOneErrorLine(p, /no tracker of the magnet link can be used \(javascript:alert\(1\): unsupported URL scheme 'javascript:' \(tt speaks http, https and udp\)\), no peer \(x\.pe\) and no --peer given/);
    expect(readdirSync(fx.work)).not.toContain('out');
  });

  it('a torrent whose only tracker is wss:// ends with exit 8 naming why, not an empty list', async () => {
    const fx = await fixture({ announce: 'wss://tracker.example/announce' });
    const p = await runTt(['download', fx.torrentPath, '--out', join(fx.work, 'out'), ...LOOPBACK, '--quiet'], 10_000);
    expectExit(p, 8);
    expectOneErrorLine(p, /^tt: every tracker failed: wss:\/\/tracker\.example\/announce: unsupported URL scheme 'wss:' \(tt speaks http, https and udp\)$/);
  });
});

describe('tt seed: refuses a copy with missing pieces', () => {
  it("the torrent's folder there but empty exits 7 and says how many pieces are missing", async () => {
    const fx = await fixture();
    const n = fx.meta.pieceCount;
    const empty = join(fx.work, 'empty');
    await mkdir(join(empty, fx.meta.name), { recursive: true });
    const quiet = await runTt(['seed', fx.torrentPath, '--dir', empty, ...LOOPBACK, '--quiet']);
    expectExit(quiet, 7);
    expectOneErrorLine(quiet, new RegExp(`\\b${n} of ${n} pieces\\b.*missing`));
    const plain = await runTt(['seed', fx.torrentPath, '--dir', empty, ...LOOPBACK]);
    expectExit(plain, 7);
    expectErrorLastLine(plain, new RegExp(`\\b${n} of ${n} pieces\\b`));
  });

  it('a partial folder exits 7 naming exactly the missing count, and --partial serves it', async () => {
    const fx = await fixture({ files: [{ path: ['one.bin'], size: 10 * 32_768 + 100 }], pieceLength: 32_768 });
    const dir = join(fx.work, 'partial');
    await mkdir(join(dir, fx.meta.name), { recursive: true });
    const file = join(dir, fx.meta.name, 'one.bin');
    await copyFile(join(fx.seedRoot, fx.meta.name, 'one.bin'), file);
    // damage pieces 2 and 7, and truncate off the last one
    const h = await open(file, 'r+');
    await h.write(Buffer.alloc(10, 0xaa), 0, 10, 2 * 32_768 + 5);
    await h.write(Buffer.alloc(10, 0xaa), 0, 10, 7 * 32_768 + 5);
    await h.truncate(10 * 32_768);
    await h.close();
    const p = await runTt(['seed', fx.torrentPath, '--dir', dir, ...LOOPBACK, '--quiet']);
    expectExit(p, 7);
    expectOneErrorLine(p, /\b3 of 11 pieces\b/);
    const json = await runTt(['seed', fx.torrentPath, '--dir', dir, ...LOOPBACK, '--json']);
    expectExit(json, 7);
    expect(json.events.find((e) => e.event === 'checked')).toMatchObject({ have: 8, pieceCount: 11 });
    expect(json.badLines).toEqual([]);
    expectOneErrorLine(json, /\b3 of 11\b/);
    // --partial serves the 8 good pieces instead of refusing
    const partial = startTt(['seed', fx.torrentPath, '--dir', dir, ...LOOPBACK, '--json', '--partial']);
    expect(await partial.waitForEvent('started')).toMatchObject({ have: 8, pieceCount: 11 });
    expect(partial.exit).toBeUndefined();
    await partial.kill9();
    // and its status line says seeding: tt seed never downloads
    const plain = startTt(['seed', fx.torrentPath, '--dir', dir, ...LOOPBACK, '--partial']);
    const status = await plain.waitFor('a status line', () => /^(seeding|downloading) [\d.]+% .*$/m.exec(plain.stderr)?.[0], 15_000);
    expect(status).toMatch(/^seeding 72\.7% 8\/11 pieces \| /);
    await plain.kill9();
  });
});
