/**
 * Piece and block arithmetic (BEP 3): the one place that knows about the short
 * last piece and the short last block. Pure; every other module asks here.
 */

/** The request unit: 16 KiB (BEP 3 "block"). */
export const BLOCK_SIZE = 16 * 1024;

export class PieceGeometry {
  readonly pieceLength: number;
  readonly totalLength: number;
  readonly pieceCount: number;
  readonly lastPieceLength: number;

  constructor(pieceLength: number, totalLength: number) {
    if (!Number.isSafeInteger(pieceLength) || pieceLength <= 0) throw new RangeError('piece length must be a positive integer');
    if (!Number.isSafeInteger(totalLength) || totalLength < 0) throw new RangeError('total length must be a non-negative integer');
    this.pieceLength = pieceLength;
    this.totalLength = totalLength;
    this.pieceCount = Math.ceil(totalLength / pieceLength);
    this.lastPieceLength = this.pieceCount === 0 ? 0 : totalLength - (this.pieceCount - 1) * pieceLength;
  }

  /** Byte length of piece `index`. */
  pieceSize(index: number): number {
    if (index === this.pieceCount - 1) return this.lastPieceLength;
    return this.pieceLength;
  }

  /** Absolute byte offset of piece `index` in the torrent's concatenated data. */
  pieceOffset(index: number): number {
    return index * this.pieceLength;
  }

  /** Number of 16 KiB blocks in piece `index`. */
  blockCount(index: number): number {
    return Math.ceil(this.pieceSize(index) / BLOCK_SIZE);
  }

  /** Byte length of block number `block` of piece `index`. */
  blockSize(index: number, block: number): number {
    const size = this.pieceSize(index);
    const begin = block * BLOCK_SIZE;
    return Math.min(BLOCK_SIZE, size - begin);
  }

  /** True when `index` names a piece of this torrent. */
  isValidIndex(index: number): boolean {
    return Number.isInteger(index) && index >= 0 && index < this.pieceCount;
  }

  /** A peer request we may serve: index in range, 1..16 KiB, inside the piece. */
  isValidRequest(index: number, begin: number, length: number): boolean {
    if (!this.isValidIndex(index)) return false;
    if (!Number.isInteger(begin) || !Number.isInteger(length)) return false;
    if (length < 1 || length > BLOCK_SIZE || begin < 0) return false;
    return begin + length <= this.pieceSize(index);
  }

  /** A block we asked for is exactly one of ours: aligned begin, exact block size. */
  isExpectedBlock(index: number, begin: number, length: number): boolean {
    if (!this.isValidIndex(index) || begin % BLOCK_SIZE !== 0 || begin < 0) return false;
    const block = begin / BLOCK_SIZE;
    return block < this.blockCount(index) && length === this.blockSize(index, block);
  }
}
