/**
 * A magnet link's BEP 53 `so=` (select-only file indices, counted from 0)
 * through the built binary against an in-process tt seed on 127.0.0.1: the
 * files it names are the selection, as `--select` would make it; `--select`
 * given too wins; an index the torrent does not have is exit 2 before
 * anything is written.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeFixture, startSession, stopAll, trackDir, type Fixture } from '../../helpers/swarm.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await stopAll();
});

/** ODD_FILES: so= 0 a.txt, 1 empty.bin, 2 sub/b.bin, 3 sub/deeper/c.bin, 4 z.bin (no padding: tt numbers are so= + 1). */
async function swarm(): Promise<{ fx: Fixture; magnet: (extra: string) => string }> {
  const fx = await makeFixture({ pieceLength: 32_768 });
  trackDir(fx.work);
  const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
  const peer = `127.0.0.1:${seed.address.port}`;
  return { fx, magnet: (extra) => `magnet:?xt=urn:btih:${fx.meta.infoHashHex}&x.pe=${encodeURIComponent(peer)}${extra}` };
}

async function onDisk(fx: Fixture, root: string): Promise<('same' | 'differs' | 'absent')[]> {
  return Promise.all(
    fx.files.map(async (f) => {
      const path = join(root, fx.meta.name, ...f.path);
      if (!existsSync(path)) return 'absent' as const;
      return (await readFile(path)).equals(f.data) ? ('same' as const) : ('differs' as const);
    }),
  );
}

describe('tt download of a magnet link with so= (BEP 53)', () => {
  it('downloads only the files so= names', async () => {
    const { fx, magnet } = await swarm();
    const out = join(fx.work, 'out');
    const p = await runTt(['download', magnet('&so=0,3-4'), '--out', out, ...LOOPBACK, '--no-trackers', '--json']);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(await onDisk(fx, out)).toEqual(['same', 'absent', 'absent', 'same', 'same']);
    expect(p.events.find((e) => e.event === 'done')?.['selectedFiles']).toBe(3);
    expect(p.events.some((e) => e.event === 'info' && String(e['message']).includes('the magnet link selects 3 of 5 files (so=)'))).toBe(true);
  });

  it('--select given too wins', async () => {
    const { fx, magnet } = await swarm();
    const out = join(fx.work, 'out');
    const p = await runTt(['download', magnet('&so=4'), '--out', out, ...LOOPBACK, '--no-trackers', '--quiet', '--select', '1']);
    expect(p.exit?.code, p.describe()).toBe(0);
    expect(await onDisk(fx, out)).toEqual(['same', 'absent', 'absent', 'absent', 'absent']);
  });

  it('an index the torrent does not have: exit 2 once the metadata is in, nothing written', async () => {
    const { fx, magnet } = await swarm();
    const out = join(fx.work, 'out');
    const p = await runTt(['download', magnet('&so=1,5'), '--out', out, ...LOOPBACK, '--no-trackers', '--quiet']);
    expect(p.exit?.code, p.describe()).toBe(2);
    expectOneErrorLine(p, /so= names file index 5, but payload has 5 files \(so= counts from 0, padding files included\): give --select/);
    expect(existsSync(out)).toBe(false);
  });
});
