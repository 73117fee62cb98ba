/**
 * Shared set-up for the hostile-peer tests (HARDENING.md "peer wire" and "load"):
 * a seeding tt with an honest leecher beside it, raw hostile leechers and seeders
 * (BEP 3 framing via RawPeer), and a "never reads" socket for backpressure cases.
 */
import { expect } from 'vitest';
import { connect as netConnect, type Socket } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Bitfield } from '../../../src/core/bitfield.js';
import { BLOCK_SIZE } from '../../../src/core/geometry.js';
import type { Metainfo } from '../../../src/metainfo/metainfo.js';
import type { SessionOptions } from '../../../src/session/torrent-session.js';
import { HANDSHAKE_LENGTH, encodeHandshake } from '../../../src/wire/handshake.js';
import { MessageDecoder } from '../../../src/wire/decoder.js';
import { encodeMessage } from '../../../src/wire/messages.js';
import { RawPeer, type RawPeerServer } from '../../helpers/raw-peer.js';
import { expectSameData, makeFixture, startSession, trackDir, whenComplete, type Fixture, type Running } from '../../helpers/swarm.js';

/** 2 MiB + 123 bytes in 32 KiB pieces: 65 pieces, so the bitfield has 7 spare bits. */
export const PIECE_LENGTH = 32_768;
/** maxPeersPerIp for tests whose many peers are all 127.0.0.1 by necessity, not by design. */
export const ONE_IP_LIMIT_LIFTED = 1_000;
export const PAYLOAD_BYTES = 2 * 1024 * 1024 + 123;
/** Seed upload limit: the honest download takes about a second, so it overlaps the attack. */
export const SEED_UPLOAD_LIMIT = 2 * 1024 * 1024;
/** How long a drop may take once the offending bytes are sent (loopback, no timers involved). */
export const DROP_BOUND_MS = 2_000;
/** How long the honest download may take while it is being attacked. */
export const HONEST_BOUND_MS = 20_000;

export interface SeedSetup {
  fx: Fixture;
  seed: Running;
}

/**
 * A seeding tt (in-process) over a fresh fixture. Every attacker here comes
 * from 127.0.0.1, so the per-IP limit is lifted unless `opts` sets it
 * (per-ip.test.ts tests that limit).
 */
export async function startSeed(opts: Partial<Omit<SessionOptions, 'listener' | 'meta' | 'root' | 'mode'>> = {}, size = PAYLOAD_BYTES): Promise<SeedSetup> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size }], pieceLength: PIECE_LENGTH });
  trackDir(fx.work);
  const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed', uploadLimit: SEED_UPLOAD_LIMIT, maxPeersPerIp: ONE_IP_LIMIT_LIFTED, ...opts });
  return { fx, seed };
}

/**
 * An honest tt leecher of `fx` from `peers`; `done` resolves once it completed
 * and every byte on disk equals the fixture.
 */
export async function startHonestLeecher(fx: Fixture, peers: SessionOptions['peers'], opts: Partial<SessionOptions> = {}, boundMs = HONEST_BOUND_MS) {
  const out = join(fx.work, `honest-${randomBytes(4).toString('hex')}`);
  const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', peers: peers ?? [], ...opts });
  const done = whenComplete(leech.session, boundMs).then(() => expectSameData(fx, out));
  done.catch(() => undefined); // awaited by the test; never an unhandled rejection meanwhile
  return { leech, out, done };
}

/** A raw leecher that completed the handshake with `seed` (and so may now misbehave). */
export async function hostileLeecher(meta: Metainfo, seed: Running, peerId?: Buffer, reserved?: Buffer): Promise<RawPeer> {
  const peer = await RawPeer.connect('127.0.0.1', seed.address.port);
  peer.sendHandshake(meta.infoHash, peerId, reserved);
  const theirs = await peer.readHandshake();
  expect(theirs.infoHash.equals(meta.infoHash)).toBe(true);
  return peer;
}

/** The connection closes within `boundMs` of the call (the offence was just sent). */
export async function expectDropped(peer: RawPeer, boundMs = DROP_BOUND_MS): Promise<number> {
  const t0 = Date.now();
  await peer.waitClosed(boundMs);
  return Date.now() - t0;
}

/** The connection is still open after `waitMs` (the message was ignored). */
export async function expectKept(peer: RawPeer, waitMs = 500): Promise<void> {
  await new Promise((r) => setTimeout(r, waitMs));
  expect(peer.isClosed()).toBe(false);
}

/** Interested, then wait for tt's unchoke (a free upload slot is given at once). */
export async function getUnchoked(peer: RawPeer): Promise<void> {
  peer.send({ type: 'interested' });
  await peer.waitFor((m) => m.type === 'unchoke');
}

/** Proves a kept connection is still served: request one block and receive exactly it. */
export async function expectServed(peer: RawPeer, fx: Fixture, index = 0, begin = 0): Promise<void> {
  const data = fx.files[0]!.data;
  const length = Math.min(BLOCK_SIZE, PIECE_LENGTH - begin);
  peer.send({ type: 'request', index, begin, length });
  const m = await peer.waitFor((x) => x.type === 'piece' && x.index === index && x.begin === begin);
  if (m.type !== 'piece') throw new Error('unreachable');
  const at = index * PIECE_LENGTH + begin;
  expect(m.block.equals(data.subarray(at, at + length))).toBe(true);
}

/** A 4-byte length prefix followed by `body` (any bytes, any size claim). */
export function frame(length: number, body: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(4);
  head.writeUInt32BE(length >>> 0, 0);
  return Buffer.concat([head, body]);
}

/** A frame with an honest length prefix for id + payload. */
export function message(id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  return frame(1 + payload.length, Buffer.concat([Buffer.from([id]), payload]));
}

export function u32(...values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v >>> 0, 4 * i));
  return b;
}

/**
 * A scripted seeder listening on loopback that tt dials: it answers the
 * handshake, claims every piece and then runs `script` with the connection.
 */
export async function hostileSeeder(
  meta: Metainfo,
  script: (peer: RawPeer) => Promise<void>,
  opts: { unchoke?: boolean; peerId?: (theirs: Buffer) => Buffer } = {},
): Promise<{ server: RawPeerServer; port: number; peer: Promise<RawPeer>; done: Promise<void> }> {
  const server = await RawPeer.listen({ timeoutMs: 10_000 });
  let resolvePeer!: (p: RawPeer) => void;
  const peerP = new Promise<RawPeer>((r) => (resolvePeer = r));
  const done = (async () => {
    const peer = await server.accept(10_000);
    resolvePeer(peer);
    const theirs = await peer.readHandshake();
    peer.sendHandshake(meta.infoHash, opts.peerId ? opts.peerId(theirs.peerId) : undefined);
    if (peer.isClosed()) return;
    peer.send({ type: 'bitfield', bitfield: Bitfield.full(meta.pieceCount) });
    if (opts.unchoke !== false) peer.send({ type: 'unchoke' });
    await script(peer);
  })();
  done.catch(() => undefined);
  return { server, port: server.port, peer: peerP, done };
}

/** A seeder that claims every piece, never unchokes and sends a keep-alive every 250 ms, `ticks` times. */
export function chokingSeeder(meta: Metainfo, ticks: number) {
  return hostileSeeder(
    meta,
    async (peer) => {
      for (let i = 0; i < ticks && !peer.isClosed(); i++) {
        peer.send({ type: 'keep-alive' });
        await new Promise((r) => setTimeout(r, 250));
      }
    },
    { unchoke: false },
  );
}

/**
 * A leecher socket that handshakes, says interested, waits for tt's unchoke and
 * from then on never reads: tt's sends pile up in the kernel and then in tt's
 * own socket buffer. A raw net.Socket because RawPeer always reads.
 */
export async function neverReadingLeecher(meta: Metainfo, port: number, timeoutMs = 5_000, reserved?: Buffer): Promise<Socket> {
  const socket = netConnect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  socket.write(encodeHandshake(meta.infoHash, Buffer.concat([Buffer.from('-NR0001-'), randomBytes(12)]), reserved));
  socket.write(encodeMessage({ type: 'interested' }));
  const decoder = new MessageDecoder({ pieceCount: 0, lenient: true });
  await new Promise<void>((resolve, reject) => {
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => reject(new Error('never unchoked')), timeoutMs);
    const onData = (chunk: Buffer): void => {
      if (head.length < HANDSHAKE_LENGTH) {
        head = Buffer.concat([head, chunk]);
        if (head.length < HANDSHAKE_LENGTH) return;
        chunk = head.subarray(HANDSHAKE_LENGTH);
      }
      if (decoder.push(chunk).some((m) => m.type === 'unchoke')) {
        clearTimeout(timer);
        socket.removeListener('data', onData);
        socket.pause(); // from now on: never read again
        resolve();
      }
    };
    socket.on('data', onData);
  });
  return socket;
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resident set size of a process from /proc (Linux), in bytes. */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) * 1024;
}
