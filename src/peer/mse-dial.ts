/**
 * The encrypted (MSE) opening of a connection tt dialed, before the
 * PeerConnection takes the socket: drives wire/mse.ts's MseInitiator over the
 * socket's reads (which arrive through the ReadSink, as for any outgoing
 * socket) and resolves with the plaintext that followed the handshake and the
 * RC4 stream, if one was selected. Bounded by a timeout; never throws past its
 * promise.
 */
import type { Socket } from 'node:net';
import { ProtocolError, errorMessage } from '../core/errors.js';
import { MseInitiator, type MseInitiatorResult } from '../wire/mse.js';
import type { ReadSink } from './connection.js';

export const MSE_DIAL_TIMEOUT_MS = 10_000;

export function negotiateMse(socket: Socket, sink: ReadSink, infoHash: Buffer, provide: number, timeoutMs = MSE_DIAL_TIMEOUT_MS): Promise<MseInitiatorResult> {
  return new Promise((resolve, reject) => {
    const initiator = new MseInitiator(infoHash, provide);
    let settled = false;
    const finish = (err: Error | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sink.onEarly = undefined;
      // the close/error listeners stay (no-ops from now on): the socket is never without an
      // 'error' listener before the PeerConnection adds its own
      if (err) reject(err);
      else resolve(initiator.result!);
    };
    const onClose = (): void => finish(new ProtocolError('MSE: connection closed during the encrypted handshake'));
    const onError = (err: Error): void => finish(new ProtocolError(`MSE: ${errorMessage(err)}`));
    const timer = setTimeout(() => finish(new ProtocolError('MSE: encrypted handshake timeout')), timeoutMs);
    timer.unref();
    socket.on('close', onClose);
    socket.on('error', onError);
    sink.onEarly = (): void => {
      const chunks = sink.early ?? [];
      sink.early = undefined;
      try {
        for (const reply of initiator.push(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))) socket.write(reply);
      } catch (err) {
        finish(err instanceof Error ? err : new ProtocolError(String(err)));
        return;
      }
      if (initiator.result) finish(undefined);
    };
    socket.write(initiator.first);
  });
}
