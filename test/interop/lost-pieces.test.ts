/**
 * `tt seed` whose data is truncated under it, serving a libtorrent leecher:
 * the pieces past the end of the shortened file are dropped from what tt has
 * (one warning), their requests are rejected (BEP 6), and the leecher gets
 * every piece that is still readable over the connection it has, which tt
 * never closes.
 */
import { cp, mkdtemp, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startLtLeecher } from '../helpers/clients/libtorrent.js';
import { useTrackedTorrent } from '../helpers/clients/tracked-torrent.js';
import { startTtSeeder } from '../helpers/clients/tt.js';

const t = useTrackedTorrent('tt-interop-lost-');

describe('tt seed loses part of a file while a libtorrent leecher downloads', () => {
  it('the leecher gets every readable piece; tt keeps the connection and says once which pieces are gone', async () => {
    const dir = await mkdtemp(join(t.dir, 'seed-copy-'));
    await cp(t.seedDir, dir, { recursive: true });
    const seeder = await startTtSeeder(t.torrent, dir, ['--verbose']);
    // sub/d.bin is 2,000,001 bytes: keep its first 300,000
    await truncate(join(dir, 'multi', 'sub', 'd.bin'), 300_000);
    const out = await mkdtemp(join(t.dir, 'out-lt-'));
    const leecher = startLtLeecher({ torrent: t.torrent, outDir: out, peers: [`127.0.0.1:${seeder.port}`], timeoutS: 120 });
    const warning = await seeder.proc.waitForEvent((e) => e['event'] === 'warning' && /past its end/.test(String(e['message'])), 30_000, 'the warning');
    const m = /: pieces (\d+)\.\.(\d+) past its end can no longer be read: no longer served$/.exec(String(warning['message']));
    expect(m, String(warning['message'])).not.toBeNull();
    const lost = Number(m![2]) - Number(m![1]) + 1;
    const readable = t.pieceCount - lost;
    expect(readable).toBeGreaterThan(0);
    await leecher.waitForEvent((e) => e['event'] === 'progress' && e['pieces'] === readable, 60_000, `${readable} pieces at the leecher`);
    const seen = seeder.proc.events.filter((e) => e['event'] === 'info').map((e) => String(e['message']));
    expect(seen.filter((s) => s.includes(': closed: ')), seeder.proc.output()).toEqual([]);
    expect(seeder.proc.events.filter((e) => e['event'] === 'warning'), seeder.proc.output()).toHaveLength(1);
    await leecher.kill();
  }, 120_000);
});
