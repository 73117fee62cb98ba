/** Test fixtures for storage: a Metainfo built from file lengths and its data. */
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Bitfield } from '../../../src/core/bitfield.js';
import type { Metainfo, TorrentFile } from '../../../src/metainfo/metainfo.js';

export function filesOf(lengths: readonly number[], name = 'T'): TorrentFile[] {
  let offset = 0;
  return lengths.map((length, i) => {
    const file: TorrentFile = { path: [name, `f${i}.bin`], length, offset, padding: false };
    offset += length;
    return file;
  });
}

/** A multi-file torrent over `lengths` with real piece hashes of `data` (random when omitted). */
export function makeTorrent(lengths: readonly number[], pieceLength: number, data?: Buffer): { meta: Metainfo; data: Buffer } {
  const files = filesOf(lengths);
  const totalLength = lengths.reduce((a, b) => a + b, 0);
  const bytes = data ?? randomBytes(totalLength);
  const pieceCount = Math.ceil(totalLength / pieceLength);
  const pieces = Buffer.alloc(pieceCount * 20);
  for (let i = 0; i < pieceCount; i++) {
    createHash('sha1').update(bytes.subarray(i * pieceLength, (i + 1) * pieceLength)).digest().copy(pieces, i * 20);
  }
  const meta: Metainfo = {
    infoHash: Buffer.alloc(20),
    infoHashHex: '00'.repeat(20),
    rawInfo: Buffer.alloc(0),
    name: 'T',
    pieceLength,
    pieceCount,
    pieces,
    totalLength,
    multiFile: true,
    files,
    announce: undefined,
    announceList: [],
    private: false,
    creationDate: undefined,
    comment: undefined,
    createdBy: undefined,
    urlList: [],
  };
  return { meta, data: bytes };
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tt-storage-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** `meta` with file `fileIndex` moved under T/<sub>/ (offsets unchanged). */
export function withFileIn(meta: Metainfo, fileIndex: number, sub: string): Metainfo {
  const files = meta.files.map((f, i) => (i === fileIndex ? { ...f, path: [f.path[0]!, sub, ...f.path.slice(1)] } : f));
  return { ...meta, files };
}

/**
 * A hybrid-style torrent (BEP 47): `lengths` with a padding file after each but
 * the last, filling to the next piece boundary, under T/.pad/<size> as
 * libtorrent names them. The data has zeros in the padding.
 */
export function makePaddedTorrent(lengths: readonly number[], pieceLength: number): { meta: Metainfo; data: Buffer } {
  const parts: Buffer[] = [];
  const files: TorrentFile[] = [];
  let offset = 0;
  lengths.forEach((length, i) => {
    files.push({ path: ['T', `f${i}.bin`], length, offset, padding: false });
    parts.push(randomBytes(length));
    offset += length;
    const pad = (pieceLength - (offset % pieceLength)) % pieceLength;
    if (i < lengths.length - 1 && pad > 0) {
      files.push({ path: ['T', '.pad', String(pad)], length: pad, offset, padding: true });
      parts.push(Buffer.alloc(pad));
      offset += pad;
    }
  });
  const { meta, data } = makeTorrent([offset], pieceLength, Buffer.concat(parts));
  return { meta: { ...meta, files }, data };
}

/** Write `data` as the torrent's files under `root` (padding files are not written). */
export async function writeAll(root: string, meta: Metainfo, data: Buffer): Promise<void> {
  for (const file of meta.files) {
    if (file.padding) continue;
    const p = path.join(root, ...file.path);
    await mkdir(path.dirname(p), { recursive: true });
    await writeFile(p, data.subarray(file.offset, file.offset + file.length));
  }
}

/** A bitfield as '0'/'1' text, piece 0 first. */
export const bits = (b: Bitfield | undefined): string | undefined =>
  b === undefined ? undefined : Array.from({ length: b.size }, (_, i) => (b.has(i) ? '1' : '0')).join('');

/** The bitfield '0'/'1' text describes. */
export function bitfieldOf(text: string): Bitfield {
  const b = new Bitfield(text.length);
  [...text].forEach((c, i) => c === '1' && b.set(i));
  return b;
}

/** Open file descriptors of this process (Linux: /proc/self/fd). */
export const openDescriptors = (): number => readdirSync('/proc/self/fd').length;

/** Runs `work` while sampling `sample` at every turn of the event loop; returns its result and the highest sample. */
export async function peakDuring<T>(sample: () => number, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = sample();
  let done = false;
  const sampler = (async () => {
    while (!done) {
      peak = Math.max(peak, sample());
      await new Promise((r) => setImmediate(r));
    }
  })();
  try {
    const result = await work();
    return { result, peak: Math.max(peak, sample()) };
  } finally {
    done = true;
    await sampler;
  }
}
