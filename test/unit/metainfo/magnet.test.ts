import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MetainfoError, TtError } from '../../../src/core/errors.js';
import { MAX_MAGNET_PEERS, MAX_MAGNET_WEB_SEEDS, MAX_NAMED_BAD_PEERS, parseMagnet, selectOnlyFiles, toMagnet } from '../../../src/metainfo/magnet.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { createTorrent } from '../../../src/metainfo/create.js';

const HEX = '0123456789abcdef0123456789abcdef01234567';

describe('magnet links', () => {
  it('round trips a torrent: hash, awkward name, every tracker once', () => {
    const meta = parseTorrent(
      createTorrent('a & b=c?d #1 é.txt', Buffer.alloc(1000, 1), {
        announceList: [['http://127.0.0.1:1/announce?x=1&y=2'], ['udp://127.0.0.1:2', 'http://127.0.0.1:1/announce?x=1&y=2']],
      }),
    );
    const uri = toMagnet(meta);
    expect(uri.startsWith(`magnet:?xt=urn:btih:${meta.infoHashHex}&dn=`)).toBe(true);
    expect(uri).not.toMatch(/[ #é]/);
    expect(uri.split('&').length).toBe(4);
    const back = parseMagnet(uri);
    expect(back.infoHash).toEqual(meta.infoHash);
    expect(back.name).toBe('a & b=c?d #1 é.txt');
    expect(back.trackers).toEqual(['http://127.0.0.1:1/announce?x=1&y=2', 'udp://127.0.0.1:2']);
  });

  it('reads base32 info hashes, numbered keys and + as space in dn', () => {
    const base32 = 'AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH'; // 0x0123456789abcdef0123456789abcdef01234567
    const m = parseMagnet(`magnet:?xt.1=urn:btih:${base32.toLowerCase()}&dn=two+words&tr.1=udp%3A%2F%2F127.0.0.1%3A1&x.pe=1`);
    expect(m.infoHash.toString('hex')).toBe(HEX);
    expect(m.name).toBe('two words');
    expect(m.trackers).toEqual(['udp://127.0.0.1:1']);
    expect(parseMagnet(`MAGNET:?xt=urn:btih:${HEX.toUpperCase()}`)).toEqual({ infoHash: Buffer.from(HEX, 'hex'), trackers: [], peers: [], webSeeds: [] });
  });

  it('reads ws web seeds (BEP 19), each once, at most MAX_MAGNET_WEB_SEEDS, and writes them back', () => {
    const ws = 'http://127.0.0.1:8080/files/a%20b?x=1&y=2';
    const m = parseMagnet(`magnet:?xt=urn:btih:${HEX}&ws=${encodeURIComponent(ws)}&ws.1=${encodeURIComponent(ws)}&ws=`);
    expect(m.webSeeds).toEqual([ws]);
    const many = Array.from({ length: MAX_MAGNET_WEB_SEEDS + 5 }, (_, i) => `ws=http%3A%2F%2Fh%2F${i}`).join('&');
    expect(parseMagnet(`magnet:?xt=urn:btih:${HEX}&${many}`).webSeeds).toHaveLength(MAX_MAGNET_WEB_SEEDS);
    const meta = parseTorrent(createTorrent('x', Buffer.from('data'), { urlList: [ws] }));
    const uri = toMagnet(meta);
    expect(uri).toContain(`&ws=${encodeURIComponent(ws)}`);
    expect(parseMagnet(uri).webSeeds).toEqual([ws]);
  });

  it('reads x.pe peers (IPv4, [IPv6], host names), skipping malformed ones, at most MAX_MAGNET_PEERS', () => {
    const m = parseMagnet(`magnet:?xt=urn:btih:${HEX}&x.pe=127.0.0.1:6881&x.pe=%5B%3A%3A1%5D%3A51413&x.pe=seed.example:7&x.pe=nope&x.pe=1.2.3.4:0&x.pe=1.2.3.4:70000`);
    expect(m.peers).toEqual([
      { host: '127.0.0.1', port: 6881 },
      { host: '::1', port: 51413 },
      { host: 'seed.example', port: 7 },
    ]);
    const many = Array.from({ length: MAX_MAGNET_PEERS + 50 }, (_, i) => `x.pe=10.0.${i >> 8}.${i & 255}:1`).join('&');
    expect(parseMagnet(`magnet:?xt=urn:btih:${HEX}&${many}`).peers).toHaveLength(MAX_MAGNET_PEERS);
  });

  it('skips a v2-only xt and uses the btih one', () => {
    const m = parseMagnet(`magnet:?xt=urn:btmh:1220${'ab'.repeat(32)}&xt=urn:btih:${HEX}`);
    expect(m.infoHash.toString('hex')).toBe(HEX);
  });

  it.each([
    ['http://example/', 'magnet'],
    ['magnet:?dn=x', 'magnet.xt'],
    [`magnet:?xt=urn:btih:${HEX.slice(1)}`, 'magnet.xt'],
    ['magnet:?xt=urn:btih:AERUKZ4JVPG66AJDIVTYTK6N54ASGRL1', 'magnet.xt'],
    [`magnet:?xt=urn:btih:${HEX}&dn=%E0%A4%A`, 'magnet.dn'],
    [`magnet:?xt=urn:btih:${HEX}&tr=${'a'.repeat(70_000)}`, 'magnet'],
  ])('refuses %s (%s)', (uri, field) => {
    let caught: unknown;
    try {
      parseMagnet(uri);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MetainfoError);
    expect((caught as MetainfoError).field).toBe(field);
  });
});

function refusal(uri: string): MetainfoError {
  try {
    parseMagnet(uri);
  } catch (err) {
    expect(err).toBeInstanceOf(MetainfoError);
    return err as MetainfoError;
  }
  throw new Error(`${uri} was accepted`);
}

describe('magnet links: what a black-box review found', () => {
  it("anything starting with magnet: is read as a link, and a bad start is said as such (not 'no such file')", () => {
    expect(refusal('magnet:').message).toBe('invalid magnet link: magnet: empty: a magnet link is magnet:?xt=urn:btih:<info hash>&...');
    expect(refusal(`magnet://?xt=urn:btih:${HEX}`).message).toMatch(/^invalid magnet link: magnet: 'magnet:\/\/\?\.\.\.' is not how a magnet link starts: it is magnet:\?xt=urn:btih:/);
    expect(refusal(`Magnet:xt=urn:btih:${HEX}`).field).toBe('magnet');
  });

  it('a v2-only link (btmh alone) is refused as such, not as a link with no hash', () => {
    const err = refusal(`magnet:?xt=urn:btmh:1220${'ab'.repeat(32)}&dn=x`);
    expect(err.field).toBe('magnet.xt');
    expect(err.message).toMatch(/v2-only link \(urn:btmh\): tt reads v1 links \(urn:btih\) only/);
  });

  it('two different btih hashes are refused; the same hash twice (hex and base32) is one torrent', () => {
    const other = 'fedcba9876543210fedcba9876543210fedcba98';
    const err = refusal(`magnet:?xt=urn:btih:${HEX}&xt.2=urn:btih:${other}`);
    expect(err.field).toBe('magnet.xt');
    expect(err.message).toContain(`two different info hashes (${HEX} and ${other})`);
    const twice = parseMagnet(`magnet:?xt.1=urn:btih:${HEX}&xt.2=urn:btih:AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH`);
    expect(twice.infoHash.toString('hex')).toBe(HEX);
  });

  it('x.pe values that are not host:port are kept to be named (the first few), not dropped in silence', () => {
    const m = parseMagnet(`magnet:?xt=urn:btih:${HEX}&x.pe=127.0.0.1&x.pe=127.0.0.1:6881&x.pe=%5B%3A%3A1%5D`);
    expect(m.peers).toEqual([{ host: '127.0.0.1', port: 6881 }]);
    expect(m.badPeers).toEqual(['127.0.0.1', '[::1]']);
    const many = Array.from({ length: 20 }, (_, i) => `x.pe=10.0.0.${i}`).join('&');
    expect(parseMagnet(`magnet:?xt=urn:btih:${HEX}&${many}`).badPeers).toHaveLength(MAX_NAMED_BAD_PEERS);
    expect(parseMagnet(`magnet:?xt=urn:btih:${HEX}&x.pe=127.0.0.1:1`).badPeers).toBeUndefined();
  });

  it('so= (BEP 53): 0-based indices and inclusive ranges, several so= merged; garbage is refused', () => {
    expect(parseMagnet(`magnet:?xt=urn:btih:${HEX}&so=0,2,4-6&so=9`).selectOnly).toEqual([
      [0, 0],
      [2, 2],
      [4, 6],
      [9, 9],
    ]);
    expect(parseMagnet(`magnet:?xt=urn:btih:${HEX}&so=`).selectOnly).toBeUndefined();
    for (const so of ['1,,2', 'a', '-3', '5-2', '1-', '1;2']) expect(refusal(`magnet:?xt=urn:btih:${HEX}&so=${so}`).field).toBe('magnet.so');
  });

  it("so= counts the torrent's file list from 0, padding files included (as libtorrent), and maps to tt's numbering", () => {
    // padded/x.bin, .pad, padded/y.bin, .pad, padded/w.bin: tt numbers 1, -, 2, -, 3
    const meta = parseTorrent(readFileSync(join(import.meta.dirname, '../../../fixtures/torrents/good-bep47-padding.torrent')));
    const picked = (ranges: [number, number][]) => meta.files.map((_, i) => selectOnlyFiles(meta, ranges).isSelected(i));
    expect(picked([[2, 2]])).toEqual([false, false, true, false, false]);
    expect(picked([[4, 4]])).toEqual([false, false, false, false, true]);
    expect(picked([[0, 2]])).toEqual([true, false, true, false, false]);
    expect(selectOnlyFiles(meta, [[0, 4]]).selectedCount).toBe(3);
    expect(() => selectOnlyFiles(meta, [[5, 5]])).toThrow(/so= names file index 5, but padded has 5 files \(so= counts from 0, padding files included\)/);
    expect(() => selectOnlyFiles(meta, [[1, 1], [3, 3]])).toThrow(/names only padding files/);
    expect(() => selectOnlyFiles(meta, [[0, 9]])).toThrow(expect.objectContaining({ code: 'USAGE' }) as TtError);
  });
});
