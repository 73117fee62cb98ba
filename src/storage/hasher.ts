/**
 * SHA-1 piece hashing (BEP 3 `pieces`) on a pool of worker threads, so hashing
 * does not block the event loop. Owns the inline worker (plain JS evaluated
 * from a string: works from dist/ and under vitest alike) and its scheduling.
 * With 0 workers it hashes on the main thread.
 */
import { createHash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** Plain CommonJS run by each worker. Messages: {id, buf, offset, length, pieceLength, skip?}. */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
parentPort.on('message', (m) => {
  try {
    const bytes = new Uint8Array(m.buf, m.offset, m.length);
    const count = Math.ceil(m.length / m.pieceLength);
    const out = new Uint8Array(count * 20);
    for (let i = 0; i < count; i++) {
      if (m.skip && m.skip[i]) continue;
      const piece = bytes.subarray(i * m.pieceLength, Math.min(m.length, (i + 1) * m.pieceLength));
      out.set(createHash('sha1').update(piece).digest(), i * 20);
    }
    parentPort.postMessage({ id: m.id, hashes: out }, [out.buffer]);
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String(err && err.stack || err) });
  }
});
`;

interface Task {
  readonly id: number;
  /** Bytes to hash: read in place when on a SharedArrayBuffer, else copied into the worker's staging area. */
  readonly data: Uint8Array;
  readonly pieceLength: number;
  readonly skip: Uint8Array | undefined;
  resolve(hashes: Buffer): void;
  reject(err: Error): void;
}

interface Slot {
  worker: Worker;
  task: Task | undefined;
  /** Reused per worker: copying into warm memory avoids a page-faulting allocation per piece. */
  staging: SharedArrayBuffer | undefined;
}

/** Default pool size: one worker per core, at most 4. */
export function defaultHashWorkers(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

export class PieceHasher {
  readonly workers: number;
  readonly #slots: Slot[] = [];
  readonly #queue: Task[] = [];
  #nextId = 1;
  #closed = false;

  constructor(workers: number = defaultHashWorkers()) {
    if (!Number.isInteger(workers) || workers < 0) throw new RangeError('workers must be a non-negative integer');
    this.workers = workers;
  }

  /**
   * SHA-1 of `data`. Unless `data` is on a SharedArrayBuffer, it is copied once
   * into the worker's reused staging buffer when the worker takes the job; do
   * not modify it until the promise settles. `data` stays usable (never
   * transferred, so a large pooled backing store is never dragged along).
   */
  async hash(data: Uint8Array): Promise<Buffer> {
    if (this.workers === 0 || data.length === 0) {
      this.#assertOpen();
      return createHash('sha1').update(data).digest();
    }
    return this.#submit(data, data.length, undefined);
  }

  /**
   * SHA-1 of each consecutive piece in `view` (the last may be short), as
   * 20-byte hashes end to end. A view on a SharedArrayBuffer is hashed in place
   * (no copy). Pieces with skip[i] set are not hashed (their hash is zeros).
   */
  async hashPieces(view: Uint8Array, pieceLength: number, skip?: Uint8Array): Promise<Buffer> {
    if (this.workers === 0 || view.length === 0) {
      this.#assertOpen();
      return hashPiecesHere(view, pieceLength, skip);
    }
    return this.#submit(view, pieceLength, skip);
  }

  /**
   * Terminate the workers; pending hashes fail at once (the ones on a worker
   * too). Resolves once every worker has exited. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new Error('hasher closed');
    for (const task of this.#queue.splice(0)) task.reject(closed);
    const slots = this.#slots.splice(0);
    for (const slot of slots) {
      slot.task?.reject(closed);
      slot.task = undefined;
    }
    // terminate() refs each worker until its 'exit', which is what keeps the
    // process alive for this await: nothing may unref it afterwards (#spawn)
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('hasher closed');
  }

  #submit(data: Uint8Array, pieceLength: number, skip: Uint8Array | undefined): Promise<Buffer> {
    this.#assertOpen();
    return new Promise<Buffer>((resolve, reject) => {
      this.#queue.push({ id: this.#nextId++, data, pieceLength, skip, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#queue.length > 0) {
      let slot = this.#slots.find((s) => s.task === undefined);
      if (!slot) {
        if (this.#slots.length >= this.workers) return;
        slot = this.#spawn();
      }
      const task = this.#queue.shift()!;
      slot.task = task;
      slot.worker.ref();
      const { data } = task;
      let buf: SharedArrayBuffer;
      let offset = 0;
      if (data.buffer instanceof SharedArrayBuffer) {
        buf = data.buffer;
        offset = data.byteOffset;
      } else {
        if (!slot.staging || slot.staging.byteLength < data.length) slot.staging = new SharedArrayBuffer(data.length);
        buf = slot.staging;
        new Uint8Array(buf, 0, data.length).set(data);
      }
      const skip = task.skip ? Uint8Array.from(task.skip) : undefined; // exact size: never clone a big backing store
      slot.worker.postMessage({ id: task.id, buf, offset, length: data.length, pieceLength: task.pieceLength, skip });
    }
  }

  #spawn(): Slot {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const slot: Slot = { worker, task: undefined, staging: undefined };
    worker.unref(); // idle workers never keep the process alive
    worker.on('message', (m: { id: number; hashes?: Uint8Array; error?: string }) => {
      // An answer that arrives after close() is dropped, and above all the
      // worker is not unref'd: terminate() ref'd it until its 'exit'. Unref'd,
      // Node could end with the event loop empty and close() never settled, so
      // `tt verify` stopped by SIGTERM while checking exited 0, saying nothing.
      if (this.#closed) return;
      const task = slot.task;
      if (!task || task.id !== m.id) return;
      slot.task = undefined;
      worker.unref();
      if (m.hashes) task.resolve(Buffer.from(m.hashes.buffer, m.hashes.byteOffset, m.hashes.byteLength));
      else task.reject(new Error(`hash worker failed: ${m.error ?? 'unknown'}`));
      this.#pump();
    });
    const fail = (err: Error): void => {
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots.splice(i, 1);
      slot.task?.reject(err);
      slot.task = undefined;
      if (!this.#closed) this.#pump(); // replace it for queued work
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`hash worker exited (${code})`)));
    this.#slots.push(slot);
    return slot;
  }
}

/** Main-thread version of the worker's loop. */
export function hashPiecesHere(view: Uint8Array, pieceLength: number, skip?: Uint8Array): Buffer {
  const count = Math.ceil(view.length / pieceLength);
  const out = Buffer.alloc(count * 20);
  for (let i = 0; i < count; i++) {
    if (skip?.[i]) continue;
    const piece = view.subarray(i * pieceLength, Math.min(view.length, (i + 1) * pieceLength));
    createHash('sha1').update(piece).digest().copy(out, i * 20);
  }
  return out;
}
