/**
 * Encrypted connections (MSE/PE with the RC4 stream) against real clients set
 * to "require encryption", as qBittorrent and Transmission users do: tt with
 * default settings downloads from libtorrent and aria2c seeders that drop a
 * plain handshake (tt redials with MSE), serves a libtorrent leecher that
 * offers only RC4, and with --encryption require downloads from libtorrent.
 * Loopback only; bytes compared with the source.
 */
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { startAria2Seeder } from '../helpers/clients/aria2.js';
import { assertSameTree } from '../helpers/clients/data.js';
import { ltDownload, startLtSeeder } from '../helpers/clients/libtorrent.js';
import { freePort } from '../helpers/clients/process.js';
import { useTrackedTorrent } from '../helpers/clients/tracked-torrent.js';
import { startTtDownload, startTtSeeder } from '../helpers/clients/tt.js';

const DOWNLOAD_TIMEOUT_MS = 60_000;
const t = useTrackedTorrent('tt-interop-encryption-');

async function ttFrom(port: number, label: string, extra: readonly string[] = []): Promise<void> {
  const out = await mkdtemp(join(t.dir, `out-${label}-`));
  const tt = startTtDownload({ torrent: t.torrent, outDir: out, extraArgs: ['--no-trackers', '--peer', `127.0.0.1:${port}`, ...extra] });
  await tt.expectSuccess(DOWNLOAD_TIMEOUT_MS);
  await assertSameTree(t.source, join(out, 'multi'), { strict: true });
}

describe('encryption required by real clients (MSE, RC4 stream)', () => {
  it('tt (default settings) downloads from a libtorrent seeder that requires RC4', async () => {
    const seeder = await startLtSeeder({ torrent: t.torrent, dataDir: t.seedDir, requireRc4: true });
    await ttFrom(seeder.port, 'lt-rc4');
  }, DOWNLOAD_TIMEOUT_MS + 30_000);

  it('tt --encryption require downloads from a libtorrent seeder that requires RC4', async () => {
    const seeder = await startLtSeeder({ torrent: t.torrent, dataDir: t.seedDir, requireRc4: true });
    await ttFrom(seeder.port, 'lt-rc4-require', ['--encryption', 'require']);
  }, DOWNLOAD_TIMEOUT_MS + 30_000);

  it('tt (default settings) downloads from an aria2c seeder that requires encryption at the RC4 level', async () => {
    const port = await freePort();
    await startAria2Seeder({ torrent: t.torrent, dataDir: t.seedDir, port, extraArgs: ['--bt-require-crypto=true', '--bt-min-crypto-level=arc4'] });
    await ttFrom(port, 'aria2-rc4');
  }, DOWNLOAD_TIMEOUT_MS + 60_000);

  it('a libtorrent leecher that offers only RC4 downloads everything from tt seed', async () => {
    const seeder = await startTtSeeder(t.torrent, t.seedDir);
    const out = await mkdtemp(join(t.dir, 'out-lt-leech-rc4-'));
    await ltDownload({ torrent: t.torrent, outDir: out, peers: [`127.0.0.1:${seeder.port}`], timeoutS: 60, requireRc4: true });
    await assertSameTree(t.source, join(out, 'multi'), { strict: true });
  }, DOWNLOAD_TIMEOUT_MS + 30_000);
});
