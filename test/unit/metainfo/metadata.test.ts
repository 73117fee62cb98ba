/**
 * Metadata from peers (BEP 9): the assembler keeps exactly the pieces it should,
 * accepts the whole only when it hashes to the info hash (and names the senders
 * when not), and the verified dictionary becomes the same Metainfo as the
 * .torrent file it came from; a hostile dictionary gets the usual validation.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BencodeError, MetainfoError } from '../../../src/core/errors.js';
import { MetadataAssembler, METADATA_PIECE_BYTES, metadataPieceCount, torrentFileBytes, torrentFromMetadata } from '../../../src/metainfo/metadata.js';
import { parseTorrent } from '../../../src/metainfo/parse-torrent.js';
import { multiInfo, rawEncode, rdict, torrent, withEntry } from '../../helpers/torrent-factory.js';

const sha1 = (b: Buffer): Buffer => createHash('sha1').update(b).digest();

function pieces(metadata: Buffer): Buffer[] {
  return Array.from({ length: metadataPieceCount(metadata.length) }, (_, i) => metadata.subarray(i * METADATA_PIECE_BYTES, (i + 1) * METADATA_PIECE_BYTES));
}

describe('MetadataAssembler', () => {
  const metadata = Buffer.alloc(2 * METADATA_PIECE_BYTES + 5, 7);

  it('keeps pieces of the right length once, reports what is missing, verifies the whole', () => {
    const a = new MetadataAssembler(sha1(metadata), metadata.length);
    const [p0, p1, p2] = pieces(metadata) as [Buffer, Buffer, Buffer];
    expect(a.pieceCount).toBe(3);
    expect(a.add(0, p0, 'A')).toBe(true);
    expect(a.add(0, p0, 'A')).toBe(false); // duplicate
    expect(a.add(1, p2, 'A')).toBe(false); // wrong length for piece 1
    expect(a.add(3, p2, 'A')).toBe(false); // out of range
    expect(a.add(-1, p0, 'A')).toBe(false);
    expect(a.missing()).toEqual([1, 2]);
    expect(a.complete).toBe(false);
    a.add(2, p2, 'B');
    a.add(1, p1, 'B');
    const r = a.verify();
    expect(r.ok && r.metadata.equals(metadata)).toBe(true);
  });

  it('a copy is kept: the sender reusing its buffer changes nothing', () => {
    const small = Buffer.from('d4:name1:xe');
    const a = new MetadataAssembler(sha1(small), small.length);
    const wire = Buffer.from(small);
    a.add(0, wire, 'A');
    wire.fill(0);
    expect(a.verify().ok).toBe(true);
  });

  it('bytes that do not hash to the info hash: everything dropped, the senders named', () => {
    const a = new MetadataAssembler(sha1(metadata), metadata.length);
    const [p0, p1, p2] = pieces(metadata) as [Buffer, Buffer, Buffer];
    const bad = Buffer.from(p1);
    bad[0] = bad[0]! ^ 1;
    a.add(0, p0, 'A');
    a.add(1, bad, 'B');
    a.add(2, p2, 'A');
    const r = a.verify();
    expect(r.ok).toBe(false);
    expect(!r.ok && r.sources.sort()).toEqual(['A', 'B']);
    expect(a.missing()).toEqual([0, 1, 2]);
    expect(a.complete).toBe(false);
  });

  it('refuses sizes no torrent may have', () => {
    expect(() => new MetadataAssembler(sha1(metadata), 0)).toThrow(RangeError);
    expect(() => new MetadataAssembler(sha1(metadata), 10 * 1024 * 1024 + 1)).toThrow(RangeError);
  });
});

describe('torrentFromMetadata', () => {
  it('gives the Metainfo of the .torrent file the dictionary came from, with the magnet trackers as tiers', () => {
    const file = parseTorrent(torrent(rdict(multiInfo())));
    const meta = torrentFromMetadata(file.rawInfo, ['http://127.0.0.1:1/announce', 'udp://127.0.0.1:2']);
    expect(meta.infoHash.equals(file.infoHash)).toBe(true);
    expect(meta.files).toEqual(file.files);
    expect(meta.pieces.equals(file.pieces)).toBe(true);
    expect(meta.announceList).toEqual([['http://127.0.0.1:1/announce'], ['udp://127.0.0.1:2']]);
    expect(torrentFromMetadata(file.rawInfo, []).announceList).toEqual([]);
  });

  it("carries a magnet's web seeds as url-list (after info, so the bytes stay canonical bencode)", () => {
    const file = parseTorrent(torrent(rdict(multiInfo())));
    const meta = torrentFromMetadata(file.rawInfo, ['http://t/a'], ['http://127.0.0.1:8080/', 'https://h/x']);
    expect(meta.infoHash.equals(file.infoHash)).toBe(true);
    expect(meta.urlList).toEqual(['http://127.0.0.1:8080/', 'https://h/x']);
    expect(torrentFromMetadata(file.rawInfo, []).urlList).toEqual([]);
  });

  it('the bytes spliced in are the hashed ones, byte for byte', () => {
    const file = parseTorrent(torrent(rdict(multiInfo())));
    const bytes = torrentFileBytes(file.rawInfo, ['http://t/a']);
    expect(bytes.includes(file.rawInfo)).toBe(true);
    expect(sha1(file.rawInfo).equals(file.infoHash)).toBe(true);
  });

  it('a dictionary with a path escaping the download folder is refused like any torrent', () => {
    const evil = rawEncode(rdict(withEntry(multiInfo(), 'files', [rdict([['length', 1], ['path', ['..', 'x']]])])));
    expect(() => torrentFromMetadata(evil, [])).toThrow(MetainfoError);
  });

  it('a dictionary followed by junk is not a torrent', () => {
    const file = parseTorrent(torrent(rdict(multiInfo())));
    expect(() => torrentFromMetadata(Buffer.concat([file.rawInfo, Buffer.from('x')]), [])).toThrow();
  });

  it('metadata that closes the torrent early is refused, though a .torrent file may carry trailing bytes', () => {
    // spliced in, 'e' ends the dictionary and the rest would trail it: the info hash would not be the metadata's
    const file = parseTorrent(torrent(rdict(multiInfo())));
    const early = Buffer.concat([file.rawInfo, Buffer.from('e3:junk')]);
    expect(() => torrentFromMetadata(early, ['http://t/a'], ['http://127.0.0.1:8080/'])).toThrow(BencodeError);
    expect(() => torrentFromMetadata(early, [])).toThrow(/trailing bytes/);
  });
});
