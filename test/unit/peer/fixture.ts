/**
 * Test fixture for PeerConnection: a real socket pair on 127.0.0.1 with a
 * scripted RawPeer on the far side. Shared by the connection unit tests.
 */
import { connect } from 'node:net';
import { once } from 'node:events';
import { Bitfield } from '../../../src/core/bitfield.js';
import { PeerConnection, sharedReadOptions, type PeerConnectionOptions, type ReadSink } from '../../../src/peer/connection.js';
import type { Message } from '../../../src/wire/messages.js';
import { RawPeer, type RawPeerServer } from '../../helpers/raw-peer.js';

export const LOOPBACK = '127.0.0.1';
export const PIECE_COUNT = 10;
export const INFO_HASH = Buffer.alloc(20, 0x11);
export const OUR_ID = Buffer.from('-TT0001-ourpeerid123', 'latin1');
export const THEIR_ID = Buffer.from('-RP0001-theirpeerid1', 'latin1');
/** Upper bound for anything a test waits for on loopback. */
export const WAIT_MS = 2_000;

export type Overrides = Partial<Omit<PeerConnectionOptions, 'socket' | 'direction' | 'host' | 'port'>>;

export interface Outgoing {
  conn: PeerConnection;
  remote: RawPeer;
  /** Messages the connection emitted, in order. */
  messages: Message[];
  /** Every 'close' reason emitted. */
  closes: string[];
}

/** Undo functions of the current test; each test file runs runCleanups() in afterEach. */
export const cleanups: Array<() => Promise<void> | void> = [];

export async function runCleanups(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn();
}

export function record(conn: PeerConnection): { messages: Message[]; closes: string[] } {
  const messages: Message[] = [];
  const closes: string[] = [];
  conn.on('message', (m) => messages.push(m));
  conn.on('close', (reason) => closes.push(reason));
  return { messages, closes };
}

/**
 * An outgoing PeerConnection (started) to a RawPeer on loopback; with
 * `sharedReads` its socket reads into the process-wide buffer, as the session's do.
 */
export async function outgoing(overrides: Overrides = {}, sharedReads = false): Promise<Outgoing> {
  const server: RawPeerServer = await RawPeer.listen({ timeoutMs: WAIT_MS });
  cleanups.push(() => server.close());
  const sink: ReadSink = { conn: undefined };
  const socket = sharedReads
    ? connect({ host: LOOPBACK, port: server.port, onread: sharedReadOptions(sink) })
    : connect({ host: LOOPBACK, port: server.port });
  const conn = new PeerConnection({
    socket,
    sharedReads: sharedReads ? sink : undefined,
    infoHash: INFO_HASH,
    peerId: OUR_ID,
    pieceCount: PIECE_COUNT,
    direction: 'outgoing',
    host: LOOPBACK,
    port: server.port,
    ...overrides,
  });
  cleanups.push(() => conn.close('test over'));
  const { messages, closes } = record(conn);
  conn.start();
  const remote = await server.accept();
  return { conn, remote, messages, closes };
}

/** outgoing() plus a completed handshake in both directions. */
export async function handshaked(overrides: Overrides = {}, sharedReads = false): Promise<Outgoing> {
  const o = await outgoing(overrides, sharedReads);
  await o.remote.readHandshake();
  const done = once(o.conn, 'handshake');
  o.remote.sendHandshake(INFO_HASH, THEIR_ID);
  await done;
  return o;
}

/** Polls `pred` every 5 ms until true; fails after `ms`. */
export async function until(pred: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function bitfieldOf(...indices: number[]): Bitfield {
  const b = new Bitfield(PIECE_COUNT);
  for (const i of indices) b.set(i);
  return b;
}
