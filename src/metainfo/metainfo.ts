/**
 * The validated torrent model that parseTorrent() returns (BEP 3, 12, 27, 19).
 * Every field here is known good; nothing downstream re-validates it.
 */

export interface TorrentFile {
  /**
   * Path components relative to the download folder, already proven safe:
   * [name] for a single-file torrent, [name, ...path] for a multi-file one,
   * as written on disk (mapped as libtorrent maps them; see torrentPath).
   */
  readonly path: readonly string[];
  /**
   * The same path as the torrent spells it, present only when a name on disk
   * differs from it (path-safety.ts diskComponent: too long, control
   * characters, invalid UTF-8): web seed URLs name the files this way.
   */
  readonly torrentPath?: readonly string[];
  readonly length: number;
  /** Byte offset of the file's first byte in the torrent's concatenated data. */
  readonly offset: number;
  /** BEP 47 padding file (attr contains 'p'): zeros that align the next file; storage never creates it on disk. */
  readonly padding: boolean;
}

export interface Metainfo {
  /** SHA-1 of the raw `info` dictionary bytes exactly as they stand in the file. */
  readonly infoHash: Buffer;
  readonly infoHashHex: string;
  /** The raw bencoded `info` dictionary (for BEP 9 metadata exchange later). */
  readonly rawInfo: Buffer;
  /** The torrent's name as it spells it (for people); on disk it is files[0].path[0], which may differ. */
  readonly name: string;
  readonly pieceLength: number;
  readonly pieceCount: number;
  /** 20 x pieceCount bytes; use pieceHash(meta, i) to slice. */
  readonly pieces: Buffer;
  readonly totalLength: number;
  readonly multiFile: boolean;
  readonly files: readonly TorrentFile[];
  readonly announce: string | undefined;
  /** BEP 12 tiers; when announce-list is absent, [[announce]] (or [] when neither). */
  readonly announceList: readonly (readonly string[])[];
  readonly private: boolean;
  readonly creationDate: number | undefined;
  readonly comment: string | undefined;
  readonly createdBy: string | undefined;
  /** BEP 19 web seeds (url-list): downloaded from by session/web-seed.ts and webseed/. */
  readonly urlList: readonly string[];
}

/**
 * Index of the last file whose offset <= pos (binary search: torrents may
 * have many files). Empty files share their offset with the next file, so
 * the one found is the file that holds byte pos.
 */
export function fileAt(files: readonly TorrentFile[], pos: number): number {
  let lo = 0;
  let hi = files.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (files[mid]!.offset <= pos) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** The 20-byte SHA-1 of piece `index`. */
export function pieceHash(meta: Metainfo, index: number): Buffer {
  return meta.pieces.subarray(index * 20, index * 20 + 20);
}
