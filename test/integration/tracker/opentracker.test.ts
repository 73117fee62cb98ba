import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { announceHttp, scrapeHttp } from '../../../src/tracker/http.js';
import { announceUdp, clearUdpConnectionCache, scrapeUdp } from '../../../src/tracker/udp.js';
import { TrackerRefusedError, type AnnounceParams } from '../../../src/tracker/types.js';
import { startOpentracker, type OpentrackerHandle } from '../../helpers/opentracker.js';

const httpHash = Buffer.from('1111111111111111111111111111111111111111', 'hex');
const udpHash = Buffer.from('2222222222222222222222222222222222222222', 'hex');

function peer(infoHash: Buffer, port: number, left: number): AnnounceParams {
  return {
    infoHash,
    peerId: Buffer.from(`-TT0001-ot${String(port).padStart(10, '0')}`, 'latin1'),
    port,
    uploaded: 0,
    downloaded: 0,
    left,
    key: port,
    event: 'started',
    numwant: 50,
  };
}

let ot: OpentrackerHandle;
beforeAll(async () => {
  ot = await startOpentracker([httpHash, udpHash]);
});
afterAll(async () => {
  await ot?.stop();
  clearUdpConnectionCache();
});

/** opentracker returns the announcing peer too: the caller must drop its own address. */
const others = (peers: { host: string; port: number }[], self: number): number[] =>
  peers.filter((p) => p.port !== self).map((p) => p.port);

describe('against a real opentracker', () => {
  it('HTTP: two announcing peers get each other; scrape counts them', async () => {
    await announceHttp(ot.httpUrl, peer(httpHash, 41001, 100));
    const second = await announceHttp(ot.httpUrl, peer(httpHash, 41002, 0));
    expect(others(second.peers, 41002)).toEqual([41001]);
    expect(second.peers.every((p) => p.host === '127.0.0.1')).toBe(true);
    const first = await announceHttp(ot.httpUrl, { ...peer(httpHash, 41001, 100), event: 'completed' });
    expect(others(first.peers, 41001)).toEqual([41002]);
    expect(first.interval).toBeGreaterThanOrEqual(60);
    const s = await scrapeHttp(ot.httpUrl, httpHash);
    expect(s.complete + s.incomplete).toBe(2);
  });

  it('UDP: two announcing peers get each other; scrape counts them', async () => {
    await announceUdp(ot.udpUrl, peer(udpHash, 42001, 100));
    const second = await announceUdp(ot.udpUrl, peer(udpHash, 42002, 0));
    expect(others(second.peers, 42002)).toEqual([42001]);
    expect(second.complete! + second.incomplete!).toBe(2);
    const s = await scrapeUdp(ot.udpUrl, udpHash);
    expect(s).toMatchObject({ complete: 1, incomplete: 1 });
  });

  it('a stopped peer disappears', async () => {
    const hash = httpHash;
    await announceHttp(ot.httpUrl, peer(hash, 41003, 10));
    await announceHttp(ot.httpUrl, { ...peer(hash, 41003, 10), event: 'stopped' });
    const r = await announceHttp(ot.httpUrl, { ...peer(hash, 41004, 10) });
    expect(r.peers.map((p) => p.port)).not.toContain(41003);
  });

  it('a hash not on the whitelist is refused over HTTP', async () => {
    await expect(announceHttp(ot.httpUrl, peer(Buffer.alloc(20, 0x33), 43001, 1))).rejects.toThrow(TrackerRefusedError);
  });
});
