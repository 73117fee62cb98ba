/**
 * The pieces `tt download --first-last` fetches before any other: the first
 * and the last piece of each wanted file (qBittorrent's "Download first and
 * last pieces first", aria2's --bt-prioritize-piece=head,tail), so a player
 * or a file-type check can open a file while the rest downloads. BEP 47
 * padding files and empty files hold no piece of their own and do not count;
 * with a selection only the selected files do. Pure.
 */
import type { Metainfo } from '../metainfo/metainfo.js';
import type { FileSelection } from '../metainfo/selection.js';

/** Piece indexes, ascending, each once. */
export function firstLastPieces(meta: Pick<Metainfo, 'files' | 'pieceLength'>, selection?: FileSelection): number[] {
  const out: number[] = [];
  const add = (piece: number): void => {
    if (out[out.length - 1] !== piece) out.push(piece); // files come in offset order: only neighbours repeat
  };
  meta.files.forEach((file, i) => {
    if (file.padding || file.length === 0 || (selection && !selection.isSelected(i))) return;
    add(Math.floor(file.offset / meta.pieceLength));
    add(Math.floor((file.offset + file.length - 1) / meta.pieceLength));
  });
  return out;
}
