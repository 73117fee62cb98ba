/**
 * Seed corpora for the fuzz targets: every .torrent under fixtures/torrents/, torrents
 * generated with createTorrent and the fixture factory, and small valid samples of
 * each tracker and wire format, so mutations start from inputs that get deep.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { encode } from '../../src/metainfo/bencode.js';
import { createTorrent } from '../../src/metainfo/create.js';
import { toMagnet } from '../../src/metainfo/magnet.js';
import { parseTorrent } from '../../src/metainfo/parse-torrent.js';
import { goodFixtures, patternBytes } from '../helpers/torrent-factory.js';

const FIXTURE_DIR = join(import.meta.dirname, '..', '..', 'fixtures', 'torrents');

export function fixtureTorrents(): Buffer[] {
  return readdirSync(FIXTURE_DIR)
    .filter((f) => f.endsWith('.torrent'))
    .sort()
    .map((f) => readFileSync(join(FIXTURE_DIR, f)));
}

/** Valid torrents of several shapes, made by tt's own creator. */
export function generatedTorrents(): Buffer[] {
  return [
    createTorrent('one.bin', patternBytes(1, 1), { pieceLength: 16384 }),
    createTorrent('small-pieces.bin', patternBytes(5000, 2), { pieceLength: 64, announce: 'udp://127.0.0.1:6969' }),
    createTorrent('exact.bin', patternBytes(32768, 3), { pieceLength: 16384, private: true, creationDate: 1_700_000_000 }),
    createTorrent(
      'multi',
      [
        { path: ['a'], data: patternBytes(3, 4) },
        { path: ['dir', 'b'], data: patternBytes(20_000, 5) },
        { path: ['dir', 'deeper', 'c'], data: Buffer.alloc(0) },
        { path: ['ünïcødé', '名前.txt'], data: patternBytes(100, 6) },
      ],
      {
        pieceLength: 16384,
        announce: 'http://127.0.0.1:6969/announce',
        announceList: [['http://127.0.0.1:6969/announce', 'udp://127.0.0.1:6969'], ['http://[::1]:7070/announce?passkey=x']],
        comment: 'a comment ✓',
        createdBy: 'tt fuzz',
        urlList: ['http://127.0.0.1:8080/'],
      },
    ),
    createTorrent(
      'many',
      Array.from({ length: 40 }, (_, i) => ({ path: [`d${i % 3}`, `f${i}`], data: patternBytes(i * 37, i) })),
      { pieceLength: 4096 },
    ),
  ];
}

export function torrentCorpus(): Buffer[] {
  return [...fixtureTorrents(), ...goodFixtures().map((f) => f.bytes), ...generatedTorrents()];
}

/** Small bencode documents hitting every token kind and limit. */
export function bencodeCorpus(): Buffer[] {
  const docs = [
    'i0e', 'i-42e', 'i9007199254740991e', '0:', '4:spam', 'le', 'de', 'l4:spami42ee', 'd3:bar4:spam3:fooi42ee',
    'd1:ad1:bl1:ci1eeee', 'd8:__proto__d1:xi1eee', 'l'.repeat(100) + 'e'.repeat(100), 'd1:b0:1:a0:e',
  ];
  return [
    ...docs.map((d) => Buffer.from(d, 'latin1')),
    encode({ interval: 1800, peers: Buffer.from([127, 0, 0, 1, 0x1a, 0xe1]), 'tracker id': 'abc' }),
    ...torrentCorpus().filter((t) => t.length < 8192),
  ];
}

export function magnetCorpus(): Buffer[] {
  const good = generatedTorrents().map((t) => toMagnet(parseTorrent(t)));
  return [
    ...good,
    'magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a',
    'magnet:?xt=urn:btih:YEX6BQDLUISUVHOJ6UM3GNNKPQJWPKEK&dn=a+b%20c',
    'MAGNET:?XT=URN:BTIH:C12FE1C06BBA254A9DC9F519B335AA7C1367A88A&tr.1=udp%3A%2F%2Fx&tr.2=http://y',
    'magnet:?xt=urn:btmh:1220abcd&xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&x.pe=1.2.3.4:5',
    'magnet:?xt=urn:btih:c12fe1c06bba254a9dc9f519b335aa7c1367a88a&x.pe=%5B%3A%3A1%5D%3A6881&x.pe=seed.example:51413&x.pe=bad',
  ].map((s) => Buffer.from(s, 'utf8'));
}

export const SCRAPE_HASH = Buffer.alloc(20, 0xab);

/** HTTP announce and scrape replies: compact v4/v6, dictionary peers, refusals, scrape. */
export function httpReplyCorpus(): Buffer[] {
  const v4 = Buffer.from([127, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80]);
  const v6 = Buffer.concat([Buffer.alloc(15), Buffer.from([1, 0x1a, 0xe1])]);
  return [
    encode({ interval: 1800, 'min interval': 60, complete: 3, incomplete: 4, peers: v4 }),
    encode({ interval: 0, peers: v4, peers6: v6, 'tracker id': 'tid', 'warning message': 'careful\x1b[31m' }),
    encode({ interval: 2 ** 40, peers: [{ ip: '127.0.0.1', port: 6881, 'peer id': Buffer.alloc(20, 1) }, { ip: '::1', port: 1 }] }),
    encode({ 'failure reason': 'not registered' }),
    encode({ files: new Map([[SCRAPE_HASH.toString('latin1'), { complete: 1, incomplete: 2, downloaded: 3 }]]) }),
    encode({ files: new Map([[SCRAPE_HASH.toString('latin1'), { complete: -1 }], ['x'.repeat(20), { complete: 5 }]]) }),
  ];
}
