import { describe, expect, it } from 'vitest';
import { MetainfoError } from '../../../src/core/errors.js';
import { MAX_MAGNET_PEERS, MAX_MAGNET_WEB_SEEDS, parseMagnet, toMagnet } from '../../../src/metainfo/magnet.js';
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
