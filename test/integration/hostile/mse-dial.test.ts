/**
 * Hostile MSE/PE peers against tt, both ways, over real loopback sockets.
 *
 * tt dialing out (MseInitiator through peer/mse-dial.ts and session/dialer.ts
 * Dialer.dial): scripted responders (test/helpers/mse-responder.ts) send degenerate
 * Diffie-Hellman keys (0, 1, P-1, P), endless padding, a method tt did not
 * offer, a PadD over 512, close mid-handshake, stay silent, drip one byte at a
 * time, or complete MSE and then send garbage or another torrent's handshake.
 * Each one is dropped within a bound, none crashes the process, and the
 * download still completes from an honest seed in the same swarm: with
 * `requireEncryption` (every dial is MSE, RC4 only) and with the default
 * (a peer that drops the plain handshake is redialed once with MSE).
 *
 * tt answering (Listener with requireEncryption): hostile initiators with a
 * degenerate Ya, an HTTP request, garbage padding, plaintext-only
 * crypto_provide, an over-long PadC or initial payload, garbage or another
 * torrent's handshake after the handshake: each is dropped, and an honest
 * encrypted leecher still completes.
 */
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeHandshake } from '../../../src/wire/handshake.js';
import { encodeMessage } from '../../../src/wire/messages.js';
import { CRYPTO_PLAINTEXT, CRYPTO_RC4 } from '../../../src/wire/mse.js';
import { mseInitiator, type MseInitiatorOptions } from '../../helpers/mse-initiator.js';
import { MSE_PRIME, mseResponder, primeMinusOne, smallKey, type MseResponderServer, type ResponderScript } from '../../helpers/mse-responder.js';
import { expectSameData, makeFixture, startLeech, startSession, stopAll, trackDir, whenComplete, type Fixture, type Running } from '../../helpers/swarm.js';
import { until } from '../../helpers/until.js';

const EXTENSIONS = Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0x04]);
const responders: MseResponderServer[] = [];
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await stopAll();
  await Promise.all(responders.splice(0).map((r) => r.close()));
});

async function fixture(): Promise<Fixture> {
  const fx = await makeFixture({ files: [{ path: ['data.bin'], size: 400_000 }], pieceLength: 32_768 });
  trackDir(fx.work);
  return fx;
}

async function responder(fx: Fixture, script: ResponderScript): Promise<MseResponderServer> {
  const r = await mseResponder(fx.meta.infoHash, script);
  responders.push(r);
  return r;
}

/** Collects the session's dial failures by peer key. */
function dialFailures(run: Running): Map<string, string[]> {
  const failures = new Map<string, string[]>();
  run.session.on('peer-dial-failed', (peer, reason) => failures.set(peer, [...(failures.get(peer) ?? []), reason]));
  return failures;
}

describe('tt dials hostile MSE responders', () => {
  it('requireEncryption: every misbehaving responder is dropped within a bound, the honest seed still serves the whole torrent', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const otherHash = randomBytes(20);
    const scripts: Record<string, { script: ResponderScript; boundMs: number; reason?: RegExp }> = {
      'Yb = 0': { script: { yb: smallKey(0) }, boundMs: 3_000, reason: /encrypted handshake failed/ },
      'Yb = 1': { script: { yb: smallKey(1) }, boundMs: 3_000, reason: /encrypted handshake failed/ },
      'Yb = P-1': { script: { yb: primeMinusOne() }, boundMs: 3_000, reason: /encrypted handshake failed/ },
      'Yb = P': { script: { yb: Buffer.from(MSE_PRIME) }, boundMs: 3_000, reason: /encrypted handshake failed/ },
      'endless padding after Yb': { script: { afterYb: 'endless-padding' }, boundMs: 3_000, reason: /encrypted handshake failed: MSE: no verification constant/ },
      'closes after Yb': { script: { afterYb: 'close' }, boundMs: 3_000, reason: /encrypted handshake failed/ },
      'selects plaintext (not offered)': { script: { select: () => CRYPTO_PLAINTEXT }, boundMs: 3_000, reason: /not one we offered/ },
      'selects both bits': { script: { select: () => CRYPTO_PLAINTEXT | CRYPTO_RC4 }, boundMs: 3_000, reason: /not one we offered/ },
      'selects nothing': { script: { select: () => 0 }, boundMs: 3_000, reason: /not one we offered/ },
      'selects 0xffffffff': { script: { select: () => 0xffffffff }, boundMs: 3_000, reason: /not one we offered/ },
      'PadD 513': { script: { padD: 513 }, boundMs: 3_000, reason: /PadD/ },
      'PadD 65535': { script: { padD: 65535 }, boundMs: 3_000, reason: /PadD/ },
      'garbage after the handshake': { script: { after: (s) => s.wrap(randomBytes(300)) }, boundMs: 3_000 },
      "another torrent's BitTorrent handshake": { script: { after: (s) => s.wrap(encodeHandshake(otherHash, randomBytes(20), EXTENSIONS)) }, boundMs: 3_000 },
      'silent': { script: { silent: true }, boundMs: 12_500, reason: /encrypted handshake failed: MSE: encrypted handshake timeout/ },
      'silent after Yb': { script: { afterYb: 'silent' }, boundMs: 12_500, reason: /encrypted handshake timeout/ },
      'drips one byte per 150 ms': { script: { dripMs: 150 }, boundMs: 12_500, reason: /encrypted handshake timeout/ },
    };
    const servers = new Map<string, MseResponderServer>();
    for (const [name, { script }] of Object.entries(scripts)) servers.set(name, await responder(fx, script));
    const out = join(fx.work, 'out');
    const peers = [...servers.values()].map((s) => ({ host: '127.0.0.1', port: s.port }));
    const leech = await startSession(
      { meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [...peers, seed.address] },
      undefined,
      { requireEncryption: true },
    );
    const failures = dialFailures(leech);
    const connected: [string, boolean][] = [];
    leech.session.on('peer-connected', (peer, encrypted) => connected.push([peer, encrypted]));

    await whenComplete(leech.session, 15_000);
    await expectSameData(fx, out);
    expect(connected).toContainEqual([`127.0.0.1:${seed.address.port}`, true]);

    // every hostile responder's first connection ends within its bound, closed by tt (except the one that closed itself)
    await Promise.all([...servers.values()].map((s) => s.closedCount(1, 13_000)));
    for (const [name, { boundMs, reason }] of Object.entries(scripts)) {
      const server = servers.get(name)!;
      const first = server.connections[0]!;
      expect(first.plain, name).toBe(false);
      expect(first.closedAt! - first.openedAt, `${name}: closed after ${first.closedAt! - first.openedAt} ms`).toBeLessThan(boundMs);
      if (name !== 'closes after Yb') expect(first.closedByUs, name).toBe(false);
      if (first.step3) expect(first.provide, `${name}: tt requires encryption, so it offers RC4 only`).toBe(CRYPTO_RC4);
      const key = `127.0.0.1:${server.port}`;
      if (reason) expect(failures.get(key)?.[0], `${name}: ${JSON.stringify(failures.get(key))}`).toMatch(reason);
      expect(connected.map(([p]) => p), name).not.toContain(key);
      // retries follow the backoff: no hammering
      expect(server.connections.length, name).toBeLessThanOrEqual(4);
    }
  });

  it('default mode: peers that drop the plain handshake are redialed once with MSE; hostile MSE then fails cleanly and they stay encrypted-only', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' }, undefined, { requireEncryption: true });
    const scripts: Record<string, ResponderScript> = {
      'Yb = 0': { yb: smallKey(0) },
      'Yb = P-1': { yb: primeMinusOne() },
      'selects 4': { select: () => 4 },
      'PadD 1000': { padD: 1000 },
      'endless padding': { afterYb: 'endless-padding' },
      'garbage after plaintext select': { select: () => CRYPTO_PLAINTEXT, after: () => randomBytes(200) },
    };
    const servers = new Map<string, MseResponderServer>();
    for (const [name, script] of Object.entries(scripts)) servers.set(name, await responder(fx, script));
    const out = join(fx.work, 'out');
    const leech = await startLeech(fx.meta, out, [...[...servers.values()].map((s) => s.port), seed.address.port]);
    await whenComplete(leech.session, 15_000);
    await expectSameData(fx, out);
    await Promise.all([...servers.values()].map((s) => s.closedCount(2, 5_000)));
    for (const [name, server] of servers) {
      const [plain, encrypted] = server.connections;
      expect(plain!.plain, `${name}: first a plain handshake`).toBe(true);
      expect(encrypted!.plain, `${name}: then MSE`).toBe(false);
      if (encrypted!.step3) expect(encrypted!.provide, name).toBe(CRYPTO_PLAINTEXT | CRYPTO_RC4);
      expect(encrypted!.closedByUs, `${name}: tt ends the MSE attempt`).toBe(false);
      expect(encrypted!.closedAt! - encrypted!.openedAt, name).toBeLessThan(3_000);
      // no third attempt in plain: the pool remembers
      expect(server.connections.slice(2).every((c) => !c.plain), name).toBe(true);
    }
  });

  it('a responder that sends step 4, its BitTorrent handshake and a message in one write is accepted (RC4 and plaintext)', async () => {
    const fx = await fixture();
    // a fresh peer id per connection (tt drops a second connection from the same id)
    const burst = (s: { wrap(b: Buffer): Buffer }): Buffer =>
      s.wrap(Buffer.concat([encodeHandshake(fx.meta.infoHash, Buffer.concat([Buffer.from('-XX0001-'), randomBytes(12)]), EXTENSIONS), encodeMessage({ type: 'have-none' })]));
    const rc4 = await responder(fx, { after: burst, padD: 17 });
    const plain = await responder(fx, { select: () => CRYPTO_PLAINTEXT, after: burst });
    const out = join(fx.work, 'out');
    const leech = await startLeech(fx.meta, out, [rc4.port, plain.port]);
    const connected = new Map<string, boolean>();
    leech.session.on('peer-connected', (peer, encrypted) => connected.set(peer, encrypted));
    // the expectations below say what was missing
    await until(() => connected.size >= 2, 5_000).catch(() => undefined);
    expect(connected.get(`127.0.0.1:${rc4.port}`)).toBe(true);
    expect(connected.get(`127.0.0.1:${plain.port}`)).toBe(false);
    // tt's own handshake reached each responder intact through the selected method
    // (tt may see the responder's handshake before the responder's socket has delivered tt's: wait for the bytes)
    for (const r of [rc4, plain]) {
      await until(() => r.connections.some((x) => x.step3 && x.after.length >= 48), 5_000).catch(() => undefined);
      const c = r.connections.find((x) => x.step3)!;
      expect(c.after.subarray(0, 20).equals(Buffer.concat([Buffer.from([19]), Buffer.from('BitTorrent protocol')]))).toBe(true);
      expect(c.after.subarray(28, 48).equals(fx.meta.infoHash)).toBe(true);
    }
  });
});

/** A raw socket to tt's listener: what it receives, and when it closed. */
async function rawConnect(port: number): Promise<{ socket: Socket; received: () => Buffer; closed: Promise<number> }> {
  const socket = connect({ host: '127.0.0.1', port });
  sockets.push(socket);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('error', reject);
  });
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  const t0 = Date.now();
  const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now() - t0)));
  return { socket, received: () => Buffer.concat(chunks), closed };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms).unref())]);
}

/** Runs an MSE initiator against tt's listener up to step 3 (plus `after`), and resolves with how long tt took to close. */
async function hostileInitiator(port: number, opts: MseInitiatorOptions, after?: Buffer): Promise<number> {
  const peer = await rawConnect(port);
  const init = mseInitiator(opts);
  peer.socket.write(init.first);
  // the expectations below say what was missing
  await until(() => peer.received().length >= 96, 3_000).catch(() => undefined);
  expect(peer.received().length).toBeGreaterThanOrEqual(96);
  const step3 = init.third(peer.received().subarray(0, 96));
  peer.socket.write(step3.bytes);
  if (after) peer.socket.write(after);
  return within(peer.closed, 3_000, 'tt closes');
}

describe("hostile MSE initiators against tt's listener with requireEncryption", () => {
  it('degenerate keys, garbage, plaintext-only, over-long fields and wrong handshakes are all dropped; an honest encrypted leecher completes', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' }, undefined, { requireEncryption: true });
    const port = seed.address.port;
    const hash = fx.meta.infoHash;

    // degenerate Ya: refused before tt sends anything
    for (const [name, ya] of [
      ['0', smallKey(0)],
      ['1', smallKey(1)],
      ['P-1', primeMinusOne()],
      ['P', Buffer.from(MSE_PRIME)],
    ] as const) {
      const peer = await rawConnect(port);
      peer.socket.write(Buffer.concat([ya, randomBytes(20)]));
      const ms = await within(peer.closed, 2_000, `Ya = ${name}`);
      expect(ms, `Ya = ${name}`).toBeLessThan(2_000);
      expect(peer.received().length, `Ya = ${name}: nothing sent back`).toBe(0);
    }

    // an HTTP request (less than a key): the 1 s key timeout
    const http = await rawConnect(port);
    http.socket.write('GET /announce HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await within(http.closed, 2_500, 'HTTP request')).toBeLessThan(2_500);

    // a key, then 600 bytes of padding with no HASH('req1')
    const padding = await rawConnect(port);
    padding.socket.write(randomBytes(96));
    await new Promise((r) => setTimeout(r, 50));
    padding.socket.write(randomBytes(600));
    expect(await within(padding.closed, 2_000, 'endless padding')).toBeLessThan(2_000);

    const handshake = encodeHandshake(hash, randomBytes(20), EXTENSIONS);
    // plaintext-only crypto_provide, with an honest handshake as initial payload
    await hostileInitiator(port, { infoHash: hash, provide: CRYPTO_PLAINTEXT, ia: handshake });
    // a method bit nobody defined, nothing else
    await hostileInitiator(port, { infoHash: hash, provide: 0x08, ia: handshake });
    // PadC over 512
    await hostileInitiator(port, { infoHash: hash, provide: CRYPTO_RC4, padC: 513 });
    // initial payload over 16 KiB
    await hostileInitiator(port, { infoHash: hash, provide: CRYPTO_RC4, ia: randomBytes(16 * 1024 + 1) });
    // RC4 selected, then garbage instead of the BitTorrent handshake
    await hostileInitiator(port, { infoHash: hash, provide: CRYPTO_RC4, ia: randomBytes(100) });
    // RC4 selected, SKEY is this torrent but the BitTorrent handshake names another
    await hostileInitiator(port, { infoHash: hash, provide: CRYPTO_RC4, ia: encodeHandshake(randomBytes(20), randomBytes(20), EXTENSIONS) });
    // an SKEY tt does not serve
    const unknown = await rawConnect(port);
    const init = mseInitiator({ infoHash: randomBytes(20), provide: CRYPTO_RC4 });
    unknown.socket.write(init.first);
    // the expectations below say what was missing
    await until(() => unknown.received().length >= 96, 3_000).catch(() => undefined);
    unknown.socket.write(init.third(unknown.received().subarray(0, 96)).bytes);
    await within(unknown.closed, 2_000, 'unknown torrent');

    // the listener still works for an honest encrypted leecher
    const out = join(fx.work, 'out');
    const leech = await startSession({ meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [seed.address] }, undefined, { requireEncryption: true });
    await whenComplete(leech.session, 10_000);
    await expectSameData(fx, out);
  });
});

describe('stopping while an encrypted dial is half-open', () => {
  it('session.stop() ends a dial still in its MSE handshake (no socket outlives the session)', async () => {
    const fx = await fixture();
    const seed = await startSession({ meta: fx.meta, root: fx.seedRoot, mode: 'seed' });
    const silent = await responder(fx, { afterYb: 'silent' });
    const out = join(fx.work, 'out');
    const leech = await startSession(
      { meta: fx.meta, root: out, mode: 'download', useTrackers: false, peers: [{ host: '127.0.0.1', port: silent.port }, seed.address] },
      undefined,
      { requireEncryption: true },
    );
    await whenComplete(leech.session, 10_000);
    // the expectations below say what was missing
    await until(() => silent.connections.length > 0, 2_000).catch(() => undefined);
    expect(silent.connections[0]?.closedAt, 'the silent responder is still mid-handshake').toBeUndefined();
    const stoppedAt = Date.now();
    await leech.session.stop();
    await leech.listener.close();
    // the MSE dial holds a ref'd socket: until it ends, a `tt download` that is done cannot exit
    await silent.closedCount(1, 3_000);
    expect(silent.connections[0]!.closedAt! - stoppedAt).toBeLessThan(1_000);
  });
});

describe('a peer that requires encryption and drops the plain handshake with a reset', () => {
  it('is redialed at once with MSE, as one that closes it with a FIN is', async () => {
    const fx = await fixture();
    // an honest MSE responder for the rest: it selects RC4 and sends its handshake, so tt connects
    const after = (s: { wrap(b: Buffer): Buffer }): Buffer =>
      s.wrap(encodeHandshake(fx.meta.infoHash, Buffer.concat([Buffer.from('-XX0001-'), randomBytes(12)]), EXTENSIONS));
    const fin = await responder(fx, { plainDrop: 'close', after });
    const rst = await responder(fx, { plainDrop: 'reset', after });
    const out = join(fx.work, 'out');
    const leech = await startLeech(fx.meta, out, [fin.port, rst.port]);
    const closes: string[] = [];
    leech.session.on('peer-dial-failed', (peer, reason) => closes.push(`${peer}: ${reason}`));
    const connected = new Map<string, boolean>();
    leech.session.on('peer-connected', (peer, encrypted) => connected.set(peer, encrypted));
    // the expectations below say what was missing
    await until(() => connected.size >= 2, 2_500).catch(() => undefined);
    expect(connected.get(`127.0.0.1:${fin.port}`), 'FIN: redialed with MSE').toBe(true);
    expect(rst.connections[0]?.plain, 'RST: the first dial was plain').toBe(true);
    expect(
      connected.get(`127.0.0.1:${rst.port}`),
      `RST: redialed with MSE (connections: ${JSON.stringify(rst.connections.map((c) => ({ plain: c.plain, step3: c.step3 })))})`,
    ).toBe(true);
    expect(leech.session.pool.get(`127.0.0.1:${rst.port}`)?.encrypt).toBe(true);
  });
});
