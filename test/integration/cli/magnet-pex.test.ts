/**
 * `tt download <magnet>` with peer exchange (BEP 11) in the metadata phase,
 * through the built binary on 127.0.0.1. tt's only --peer is a raw peer
 * without the metadata that names one other peer in a ut_pex message on its
 * first connection only (so the download proper cannot hear it again): a tt
 * seed is reached, its metadata fetched, and the download started with it
 * dials it too and completes; for a private torrent the peer named through
 * PEX serves the metadata and is never contacted again; with --no-pex it is
 * never contacted at all.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { OUR_UT_PEX_ID, UT_PEX } from '../../../src/wire/pex.js';
import { RAW_UT_METADATA_ID, RAW_UT_PEX_ID, closeScriptedPeers, scriptedPeers, sendPex, serveMetadata, type ScriptedPeers } from '../../helpers/metadata-fetcher.js';
import { expectSameData, makeFixture, startSession, stopAll, trackDir, type Fixture } from '../../helpers/swarm.js';
import { LOOPBACK, expectOneErrorLine, killAllTt, runTt, type TtProcess } from './tt-cli.js';

afterEach(async () => {
  await killAllTt();
  await closeScriptedPeers();
  await stopAll();
});

/** tt's --peer-timeout / --stall-timeout where it is expected to give up. */
const GIVE_UP_S = 3;

async function fixture(opts: { private?: boolean } = {}): Promise<Fixture> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 500_000 }], pieceLength: 32_768, ...opts });
  trackDir(fx.work);
  return fx;
}

/** A peer without the metadata (it offers ut_pex only) that names `named` on its first connection; `id`: the ut_pex id it sends under (default: the one tt asked for). */
function relay(fx: Fixture, named: { host: string; port: number }, id?: number): Promise<ScriptedPeers> {
  return scriptedPeers(fx.meta.infoHash, { m: { [UT_PEX]: RAW_UT_PEX_ID } }, (peer, theirs, index) => {
    const to = id ?? theirs.m.get(UT_PEX) ?? 0;
    if (index === 0 && to !== 0) sendPex(peer, to, [named]);
  });
}

function download(fx: Fixture, relayPort: number, extra: readonly string[] = []): Promise<TtProcess> {
  const magnet = `magnet:?xt=urn:btih:${fx.meta.infoHashHex}`;
  return runTt(['download', magnet, '--out', join(fx.work, 'out'), ...LOOPBACK, '--no-trackers', '--peer', `127.0.0.1:${relayPort}`, '--json', '--verbose', ...extra], 30_000);
}

const infos = (p: TtProcess): string[] => p.events.filter((e) => e.event === 'info').map((e) => String(e.message));
const indexOf = (p: TtProcess, event: string, match: (e: Record<string, unknown>) => boolean = () => true): number => p.events.findIndex((e) => e.event === event && match(e));

describe('tt download <magnet>: PEX in the metadata phase', () => {
  it('a seed named only in a ut_pex of a peer without the metadata: metadata from it, then the whole download', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const at = `127.0.0.1:${seed.address.port}`;
    const r = await relay(fx, seed.address);
    const p = await download(fx, r.port);
    expect(p.exit?.code, p.describe()).toBe(0);
    await expectSameData(fx, join(fx.work, 'out'));
    const pex = p.events.filter((e) => e.event === 'pex');
    expect(pex, p.describe()).toEqual([expect.objectContaining({ peer: `127.0.0.1:${r.port}`, added: 1, fresh: 1 })]);
    expect(indexOf(p, 'pex')).toBeLessThan(indexOf(p, 'metadata'));
    expect(infos(p)).toContain(`peer ${at}: connected (metadata)`);
    // the download dialed the seed it heard of only through the metadata phase's PEX
    const started = indexOf(p, 'started');
    expect(indexOf(p, 'info', (e) => e.message === `peer ${at}: connected`), p.describe()).toBeGreaterThan(started);
    expect(r.connections.length, p.describe()).toBeGreaterThanOrEqual(1);
  });

  it('a private torrent: the peer named through PEX serves the metadata, and the download never contacts it', async () => {
    const fx = await fixture({ private: true });
    expect(fx.meta.private).toBe(true);
    // tt seeds do not serve a private torrent's metadata; this raw one does
    const source = await scriptedPeers(fx.meta.infoHash, { m: { ut_metadata: RAW_UT_METADATA_ID }, metadataSize: fx.meta.rawInfo.length }, (peer, theirs) =>
      serveMetadata(peer, theirs, fx.meta.rawInfo),
    );
    const r = await relay(fx, { host: '127.0.0.1', port: source.port });
    const p = await download(fx, r.port, ['--peer-timeout', String(GIVE_UP_S), '--stall-timeout', String(GIVE_UP_S)]);
    expect(p.exit?.code, p.describe()).toBe(5);
    expect(indexOf(p, 'metadata'), p.describe()).toBeGreaterThan(indexOf(p, 'pex'));
    expect(indexOf(p, 'started'), p.describe()).toBeGreaterThan(0);
    expect(infos(p)).toContain('private torrent: 1 peer heard of through PEX left out of the download (BEP 27)');
    expect(source.connections, p.describe()).toHaveLength(1);
    expect(infos(p).filter((m) => m.startsWith(`peer 127.0.0.1:${source.port}: connected`))).toEqual([`peer 127.0.0.1:${source.port}: connected (metadata)`]);
  });

  it('--no-pex: no ut_pex offered, a list sent anyway is not read, the peer it names is never contacted', async () => {
    const fx = await fixture();
    const named = await scriptedPeers(fx.meta.infoHash, undefined);
    const r = await relay(fx, { host: '127.0.0.1', port: named.port }, OUR_UT_PEX_ID);
    const p = await download(fx, r.port, ['--no-pex', '--peer-timeout', String(GIVE_UP_S)]);
    expect(p.exit?.code, p.describe()).toBe(5);
    expectOneErrorLine(p, /metadata/);
    expect(p.events.filter((e) => e.event === 'pex')).toEqual([]);
    expect(r.connections.length).toBeGreaterThanOrEqual(1);
    expect(named.connections).toHaveLength(0);
    expect(existsSync(join(fx.work, 'out'))).toBe(false);
  });
});
