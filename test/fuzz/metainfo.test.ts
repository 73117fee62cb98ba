import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BencodeError, MetainfoError } from '../../src/core/errors.js';
import { MAX_MAGNET_PEERS, type MagnetLink, parseMagnet } from '../../src/metainfo/magnet.js';
import type { Metainfo } from '../../src/metainfo/metainfo.js';
import { MAX_PIECE_LENGTH, MAX_TORRENT_BYTES, parseTorrent } from '../../src/metainfo/parse-torrent.js';
import { isSafePath } from '../../src/metainfo/path-safety.js';
import { magnetCorpus, torrentCorpus } from './corpus.js';
import { DEFAULT_MAX_CALL_MS, Rng, invariant, runFuzz } from './engine.js';

/** Every promise parseTorrent makes about a Metainfo it returns. */
function checkMetainfo(input: Buffer, m: Metainfo): void {
  invariant(m.pieces.length === m.pieceCount * 20, 'pieceCount * 20 == pieces.length');
  invariant(m.pieceLength > 0 && m.pieceLength <= MAX_PIECE_LENGTH, 'piece length in range');
  invariant(m.pieceCount === Math.ceil(m.totalLength / m.pieceLength), 'piece count matches the total size');
  invariant(Number.isSafeInteger(m.totalLength) && m.totalLength >= 0, 'total length a safe integer');
  invariant(m.files.length >= 1 && (m.multiFile || m.files.length === 1), 'at least one file; one when single-file');
  let offset = 0;
  for (const f of m.files) {
    invariant(f.offset === offset, 'file offsets contiguous');
    invariant(Number.isSafeInteger(f.length) && f.length >= 0, 'file length non-negative');
    invariant(isSafePath(f.path), `every path component safe: ${JSON.stringify(f.path)}`);
    invariant((f.torrentPath ?? f.path)[0] === m.name && f.path.length === (m.multiFile ? f.path.length : 1), 'paths start with the name');
    invariant(f.path[0] === m.files[0]!.path[0], 'one name on disk for every file');
    invariant(f.path.every((c) => Buffer.byteLength(c) <= 255), `every name on disk fits in 255 bytes: ${JSON.stringify(f.path)}`);
    offset += f.length;
  }
  invariant(offset === m.totalLength, 'file lengths sum to totalLength');
  invariant(m.infoHash.equals(createHash('sha1').update(m.rawInfo).digest()), 'infoHash is the SHA-1 of rawInfo');
  invariant(m.infoHashHex === m.infoHash.toString('hex'), 'infoHashHex matches');
  invariant(input.includes(m.rawInfo), 'rawInfo is verbatim from the input');
  for (const url of [...m.announceList.flat(), ...m.urlList, ...(m.announce === undefined ? [] : [m.announce])]) {
    // eslint-disable-next-line no-control-regex
    invariant(url.length > 0 && !/[\s\x00-\x1f\x7f]/.test(url), 'tracker and web seed URLs have no whitespace or controls');
  }
  invariant(m.announceList.every((tier) => tier.length > 0 && new Set(tier).size === tier.length), 'tiers non-empty, no duplicates');
}

function checkMagnet(m: MagnetLink): void {
  invariant(m.infoHash.length === 20, 'info hash is 20 bytes');
  invariant(m.trackers.every((t) => t.length > 0) && new Set(m.trackers).size === m.trackers.length, 'trackers unique, non-empty');
  // what we parsed survives a rebuild: hash, name and trackers round-trip
  const rebuilt = ['xt=urn:btih:' + m.infoHash.toString('hex')];
  if (m.name !== undefined) rebuilt.push(`dn=${encodeURIComponent(m.name)}`);
  for (const t of m.trackers) rebuilt.push(`tr=${encodeURIComponent(t)}`);
  const again = parseMagnet(`magnet:?${rebuilt.join('&')}`);
  invariant(again.infoHash.equals(m.infoHash) && again.name === m.name, 'hash and name round-trip');
  invariant(JSON.stringify(again.trackers) === JSON.stringify(m.trackers), 'trackers round-trip');
  invariant(m.peers.length <= MAX_MAGNET_PEERS, 'x.pe peers bounded');
  for (const p of m.peers) invariant(Number.isInteger(p.port) && p.port >= 1 && p.port <= 65535 && /^[^\s[\]]+$/.test(p.host), 'x.pe peers are host:port');
}

describe('fuzz: metainfo', () => {
  it('parseTorrent returns a consistent, safe Metainfo or throws BencodeError/MetainfoError', () => {
    const corpus = torrentCorpus();
    expect(corpus.length).toBeGreaterThan(55); // every fixture file plus generated ones
    const stats = runFuzz<Metainfo>({
      name: 'parseTorrent',
      corpus,
      iterations: 25_000,
      errors: [BencodeError, MetainfoError],
      maxInputBytes: 256 * 1024,
      randomShare: 0.03,
      run: (input) => parseTorrent(input),
      check: checkMetainfo,
    });
    expect(stats.accepted).toBeGreaterThan(300);
    expect(stats.rejected.get('MetainfoError')).toBeGreaterThan(1000);
    expect(stats.rejected.get('BencodeError')).toBeGreaterThan(1000);
  });

  it('parseMagnet returns a usable link or throws MetainfoError, for any text', () => {
    const stats = runFuzz<MagnetLink>({
      name: 'parseMagnet',
      corpus: magnetCorpus(),
      iterations: 15_000,
      errors: [MetainfoError],
      maxInputBytes: 70 * 1024, // past MAX_MAGNET_CHARS
      run: (input, seed) => parseMagnet(input.toString(new Rng(seed).chance(0.5) ? 'utf8' : 'latin1')),
      check: (_input, m) => checkMagnet(m),
    });
    expect(stats.accepted).toBeGreaterThan(1000);
    expect(stats.rejected.get('MetainfoError')).toBeGreaterThan(1000);
  });
});

/**
 * Hand-made worst cases near the 10 MiB file limit, which random mutation of small
 * inputs never reaches. Time limit: DEFAULT_MAX_CALL_MS plus 2000 ms per MiB, best of 3 runs. Parsing
 * is linear, but its cost per byte depends on the shape: 10 MiB of piece hashes takes
 * ~5 ms/MiB, 200,000 files ~150-280 ms/MiB, and a path of 3-byte components ~600-800
 * ms/MiB (one Buffer and one string per component; measured on a 2-core machine). The
 * limit covers the worst shape on a CI box loaded 2-3x (seen here: 1800 ms/MiB), while a quadratic step (the deep-path
 * bug: 12 s for a 90 KB file, out of memory at 300 KB) still fails by orders of magnitude.
 */
describe('parseTorrent on large hostile inputs', () => {
  const MS_PER_MIB = 2000;
  const ATTEMPTS = 3;
  const limitMs = (bytes: Buffer): number => DEFAULT_MAX_CALL_MS + (MS_PER_MIB * bytes.length) / (1024 * 1024);
  const torrentBytes = (info: string, tail: Buffer = Buffer.alloc(0), after = 'ee'): Buffer =>
    Buffer.concat([Buffer.from(`d4:infod${info}`, 'latin1'), tail, Buffer.from(after, 'latin1')]);

  const cases: { name: string; bytes: () => Buffer; outcome: 'ok' | typeof BencodeError | typeof MetainfoError }[] = [
    {
      name: '10 MiB of piece hashes (524,000 pieces)',
      bytes: () => torrentBytes(`6:lengthi${524_000 * 16384}e4:name1:x12:piece lengthi16384e6:pieces${524_000 * 20}:`, Buffer.alloc(524_000 * 20)),
      outcome: 'ok',
    },
    {
      name: '200,000 files',
      bytes: () => {
        const files = Array.from({ length: 200_000 }, (_, i) => `d6:lengthi1e4:pathl${String(i).length}:${i}ee`).join('');
        const pieces = Math.ceil(200_000 / 16384);
        return torrentBytes(`5:filesl${files}e4:name1:x12:piece lengthi16384e6:pieces${pieces * 20}:`, Buffer.alloc(pieces * 20));
      },
      outcome: 'ok',
    },
    {
      name: 'one path of 300,000 components',
      bytes: () => torrentBytes(`5:filesld6:lengthi1e4:pathl${'1:a'.repeat(300_000)}eee4:name1:x12:piece lengthi16384e6:pieces20:`, Buffer.alloc(20)),
      outcome: 'ok',
    },
    {
      name: 'more than 3,000,000 items (cheap integers)',
      bytes: () => torrentBytes(`1:xl${'i1e'.repeat(3_000_001)}e`),
      outcome: BencodeError,
    },
    { name: '100,000 levels of nesting', bytes: () => Buffer.from('d4:info' + 'l'.repeat(100_000)), outcome: BencodeError },
    { name: 'a string length of 10^15', bytes: () => torrentBytes(`6:pieces999999999999999:`, Buffer.alloc(1024)), outcome: BencodeError },
    {
      name: 'one byte over the size limit',
      bytes: () => Buffer.alloc(MAX_TORRENT_BYTES + 1, 0x64),
      outcome: MetainfoError,
    },
  ];

  for (const c of cases) {
    it(`${c.name}: ${c.outcome === 'ok' ? 'parses' : `throws ${c.outcome.name}`} within its time limit`, () => {
      const bytes = c.bytes();
      expect(bytes.length).toBeLessThanOrEqual(MAX_TORRENT_BYTES + 1);
      let result: Metainfo | undefined;
      let error: unknown;
      let ms = Infinity;
      for (let attempt = 0; attempt < ATTEMPTS && ms >= limitMs(bytes); attempt++) {
        const t0 = performance.now();
        try {
          result = parseTorrent(bytes);
        } catch (err) {
          error = err;
        }
        ms = Math.min(ms, performance.now() - t0);
      }
      if (c.outcome === 'ok') {
        expect(error).toBeUndefined();
        checkMetainfo(bytes, result!);
      } else {
        expect(error).toBeInstanceOf(c.outcome);
      }
      expect(ms).toBeLessThan(limitMs(bytes));
    });
  }
});
