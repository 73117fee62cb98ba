/**
 * A tiny helper for the tracker's sockets: run a start call (listen, bind, connect)
 * and resolve on its callback or reject on the 'error' it emits instead.
 */
import type { EventEmitter } from 'node:events';

export function whenStarted(emitter: EventEmitter, start: (done: () => void) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    emitter.once('error', reject);
    start(() => {
      emitter.off('error', reject);
      resolve();
    });
  });
}
