/**
 * A corrupt libtorrent seeder (lt.py seed --corrupt: a flipped byte in every
 * piece, hash checks off) that tt bans: libtorrent dials tt back from a new
 * ephemeral port, under a new peer id each time, naming the same listening
 * port in its BEP 10 handshake. tt must refuse it there (before asking it for
 * anything), not ban it again and again, and its comebacks must not keep
 * --peer-timeout and --stall-timeout from ending the download. Beside honest
 * libtorrent seeders on the same IP (127.0.0.1) the download completes.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assertSameTree } from '../helpers/clients/data.js';
import { startLtSeeder } from '../helpers/clients/libtorrent.js';
import { startProcess, type JsonEvent } from '../helpers/clients/process.js';
import { useTrackedTorrent } from '../helpers/clients/tracked-torrent.js';
import { TT_BIN } from '../helpers/clients/tt.js';

const DOWNLOAD_TIMEOUT_MS = 60_000;
const t = useTrackedTorrent('tt-interop-ban-');

function ttDownload(out: string, peers: readonly number[], extra: readonly string[]) {
  return startProcess('tt download', process.execPath, [
    TT_BIN, 'download', t.torrent, '--out', out, '--bind', '127.0.0.1', '--port', '0', '--no-trackers',
    ...peers.flatMap((p) => ['--peer', `127.0.0.1:${p}`]), '--json', '--verbose', ...extra,
  ]);
}

const messages = (events: readonly JsonEvent[], kind: string): string[] => events.filter((e) => e['event'] === kind).map((e) => String(e['message'] ?? ''));

describe('a corrupt libtorrent seeder that tt banned dials tt again', () => {
  it('alone: banned once, every comeback refused at its extended handshake, and --peer-timeout ends the download (exit 5)', async () => {
    const liar = await startLtSeeder({ torrent: t.torrent, dataDir: t.seedDir, corrupt: true });
    const out = await mkdtemp(join(t.dir, 'out-liar-'));
    const tt = ttDownload(out, [liar.port], ['--peer-timeout', '5s', '--stall-timeout', '10s']);
    const status = await tt.waitForExit(30_000);
    expect(status.code, tt.output()).toBe(5);
    const banned = tt.events.filter((e) => e['event'] === 'peer-banned');
    expect(banned.map((e) => e['peer']), tt.output()).toEqual([`127.0.0.1:${liar.port}`]);
    // libtorrent came back (it knows our port from our extended handshake) and was turned away each time
    const comebacks = messages(tt.events, 'info').filter((m) => m.includes(`closed: refused: banned:`) && m.endsWith(`(it listens at 127.0.0.1:${liar.port})`));
    expect(comebacks.length, tt.output()).toBeGreaterThan(0);
    expect(tt.output()).toMatch(/no peer connected for 5 s/);
  }, 60_000);

  it('beside two honest libtorrent seeders on the same IP: the download completes, the liar banned once', async () => {
    const honest = await Promise.all([0, 1].map(() => startLtSeeder({ torrent: t.torrent, dataDir: t.seedDir, uploadLimit: 1024 * 1024 })));
    const liar = await startLtSeeder({ torrent: t.torrent, dataDir: t.seedDir, corrupt: true });
    const out = await mkdtemp(join(t.dir, 'out-mixed-'));
    const tt = ttDownload(out, [liar.port, ...honest.map((s) => s.port)], ['--peer-timeout', '20s']);
    await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
    await assertSameTree(t.source, join(out, 'multi'), { strict: true });
    const banned = tt.events.filter((e) => e['event'] === 'peer-banned');
    expect(banned.map((e) => e['peer']), tt.output()).toEqual([`127.0.0.1:${liar.port}`]);
    const done = tt.events.find((e) => e['event'] === 'done');
    expect(done?.['bannedPeers'], tt.output()).toBe(1);
  }, DOWNLOAD_TIMEOUT_MS + 60_000);
});
