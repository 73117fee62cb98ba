/**
 * A loopback seeder for torrents tt may (wrongly) accept but no tt session
 * can load: it answers any info hash tt asks for (BEP 3 handshake, full
 * bitfield, unchoke) and serves every request from one content buffer, so a
 * hostile torrent that slipped through parsing would really be written.
 */
import { Bitfield } from '../../../src/core/bitfield.js';
import { RawPeer, type RawPeerServer } from '../../helpers/raw-peer.js';

/** How long a served connection may sit idle before the seeder drops it. */
const IDLE_MS = 10_000;
/** accept() waits this long per round, so the loop notices close() soon. */
const ACCEPT_POLL_MS = 500;

export interface AnySeeder {
  port: number;
  /** Connections that completed a handshake. */
  readonly served: number;
  /** Every request answered, in the order it came (a test of piece order reads it). */
  readonly requests: readonly { index: number; begin: number }[];
  close(): Promise<void>;
}

export async function startAnySeeder(content: Buffer, pieceLength: number): Promise<AnySeeder> {
  const pieceCount = Math.max(1, Math.ceil(content.length / pieceLength));
  const server: RawPeerServer = await RawPeer.listen({ timeoutMs: IDLE_MS });
  let closed = false;
  let served = 0;
  const requests: { index: number; begin: number }[] = [];
  const serve = async (peer: RawPeer): Promise<void> => {
    const hs = await peer.readHandshake();
    peer.sendHandshake(hs.infoHash);
    served++;
    peer.send({ type: 'bitfield', bitfield: Bitfield.full(pieceCount) });
    peer.send({ type: 'unchoke' });
    // bounded: every wait times out after IDLE_MS and a closed socket rejects
    while (!peer.isClosed()) {
      const m = await peer.nextMessage();
      if (m.type !== 'request') continue;
      requests.push({ index: m.index, begin: m.begin });
      const start = m.index * pieceLength + m.begin;
      peer.send({ type: 'piece', index: m.index, begin: m.begin, block: content.subarray(start, start + m.length) });
    }
  };
  const acceptLoop = async (): Promise<void> => {
    while (!closed) {
      const peer = await server.accept(ACCEPT_POLL_MS).catch(() => undefined);
      if (peer) void serve(peer).catch(() => peer.close());
    }
  };
  void acceptLoop();
  return {
    port: server.port,
    get served() {
      return served;
    },
    requests,
    async close() {
      closed = true;
      await server.close();
    },
  };
}
