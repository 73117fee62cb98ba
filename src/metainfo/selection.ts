/**
 * Choosing files of a torrent (`tt download --select 2,4-6`): the numbering
 * users see in `tt info` (1-based, padding files not counted), the syntax of
 * a selection, and what a selection means for pieces: a piece is wanted when
 * it overlaps a selected file, and the bytes of unselected files inside
 * wanted pieces (a piece shared by two files) go to a part file in the
 * download folder, `.<info-hash>.tt-parts`, not into files the user did not
 * ask for (as libtorrent's `.<info-hash>.parts`, whose format differs: hence
 * not its name). Pure: no I/O.
 */
import { Bitfield } from '../core/bitfield.js';
import { TtError } from '../core/errors.js';
import type { Metainfo, TorrentFile } from './metainfo.js';

/** Inclusive ranges of 1-based file numbers, as typed: "3" is [3, 3], "4-6" is [4, 6]. */
export type FileNumberRanges = readonly (readonly [number, number])[];

/** Longest --select text accepted (a list of every file of a large torrent still fits). */
export const MAX_SELECT_CHARS = 64 * 1024;

/**
 * Parses "1,3-5, 8" into ranges. Syntax only (the torrent may not be known
 * yet, e.g. a magnet link); selectFiles() checks the numbers against it.
 * Throws RangeError with a one-line reason.
 */
export function parseFileNumbers(text: string): FileNumberRanges {
  if (text.length > MAX_SELECT_CHARS) throw new RangeError(`file list longer than ${MAX_SELECT_CHARS} characters`);
  const ranges: [number, number][] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    const m = /^(\d{1,9})(?:\s*-\s*(\d{1,9}))?$/.exec(item);
    if (!m) throw new RangeError(`'${item.slice(0, 40)}' is not a file number or a range like 2-5 (numbers as tt info lists them)`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (from < 1) throw new RangeError('file numbers start at 1');
    if (to < from) throw new RangeError(`'${item}' is an empty range`);
    ranges.push([from, to]);
  }
  return ranges;
}

/** Indexes into meta.files of the files users number 1, 2, ...: every file but BEP 47 padding. */
export function numberedFiles(meta: Metainfo): number[] {
  const out: number[] = [];
  meta.files.forEach((f, i) => {
    if (!f.padding) out.push(i);
  });
  return out;
}

/**
 * The selection `ranges` names in `meta`. Throws TtError('USAGE') naming the
 * first number the torrent does not have.
 */
export function selectFiles(meta: Metainfo, ranges: FileNumberRanges): FileSelection {
  const numbered = numberedFiles(meta);
  const selected = new Array<boolean>(meta.files.length).fill(false);
  for (const [from, to] of ranges) {
    if (to > numbered.length) {
      const bad = from > numbered.length ? from : to;
      throw new TtError('USAGE', `--select: there is no file ${bad}: ${meta.name} has ${numbered.length} file${numbered.length === 1 ? '' : 's'} (tt info lists them, numbered)`);
    }
    for (let n = from; n <= to; n++) selected[numbered[n - 1]!] = true;
  }
  return new FileSelection(meta, selected);
}

export class FileSelection {
  /** Pieces overlapping at least one selected file (the ones to download and verify). */
  readonly wanted: Bitfield;
  /** Bytes of the wanted pieces. */
  readonly wantedBytes: number;
  /** Number of selected files, and of files users can select (padding not counted). */
  readonly selectedCount: number;
  readonly fileCount: number;
  /** The part file's name, inside the download folder. */
  readonly partFileName: string;
  readonly #selected: readonly boolean[];

  /** `selected[i]` for meta.files[i]; padding files count as unselected. */
  constructor(meta: Metainfo, selected: readonly boolean[]) {
    if (selected.length !== meta.files.length) throw new RangeError('one flag per file');
    this.#selected = meta.files.map((f, i) => selected[i] === true && !f.padding);
    this.selectedCount = this.#selected.filter(Boolean).length;
    this.fileCount = meta.files.filter((f) => !f.padding).length;
    this.partFileName = partFileName(meta);
    this.wanted = new Bitfield(meta.pieceCount);
    let bytes = 0;
    meta.files.forEach((file, i) => {
      if (!this.#selected[i] || file.length === 0) return;
      const first = Math.floor(file.offset / meta.pieceLength);
      const last = Math.floor((file.offset + file.length - 1) / meta.pieceLength);
      for (let p = first; p <= last; p++) {
        if (this.wanted.set(p)) bytes += Math.min(meta.pieceLength, meta.totalLength - p * meta.pieceLength);
      }
    });
    this.wantedBytes = bytes;
  }

  /** Every file: how a folder with a part file from an earlier selective run is read and completed. */
  static all(meta: Metainfo): FileSelection {
    return new FileSelection(meta, new Array<boolean>(meta.files.length).fill(true));
  }

  isSelected(fileIndex: number): boolean {
    return this.#selected[fileIndex] === true;
  }
}

/**
 * The byte ranges (torrent offsets, [from, to)) of `file` that can share a
 * piece with other files: those in its first and in its last piece. Only
 * these ever go to the part file while the file is not selected.
 */
export function edgeRanges(file: TorrentFile, pieceLength: number): [number, number][] {
  if (file.length === 0) return [];
  const end = file.offset + file.length;
  const firstEnd = Math.min(end, (Math.floor(file.offset / pieceLength) + 1) * pieceLength);
  const lastStart = Math.max(firstEnd, Math.floor((end - 1) / pieceLength) * pieceLength);
  return lastStart < end ? [[file.offset, firstEnd], [lastStart, end]] : [[file.offset, firstEnd]];
}

/** `.<info-hash hex>.tt-parts` (libtorrent's is `.parts`, in another format: never confused). */
export function partFileName(meta: Metainfo): string {
  return `.${meta.infoHashHex}.tt-parts`;
}

/** Whether a torrent's top-level name is the name of some torrent's part file (never written as a file). */
export function isPartFileName(name: string): boolean {
  return /^\.[0-9a-f]{40}\.tt-parts$/.test(name);
}
