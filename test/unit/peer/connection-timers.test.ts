import { afterEach, describe, expect, it } from 'vitest';
import { encodeHandshake } from '../../../src/wire/handshake.js';
import { INFO_HASH, THEIR_ID, WAIT_MS, handshaked, outgoing, runCleanups, until } from './fixture.js';

afterEach(runCleanups);

describe('PeerConnection timers', () => {
  it('fires the handshake timeout when the peer never answers', async () => {
    const started = Date.now();
    const { closes } = await outgoing({ handshakeTimeoutMs: 100 });
    await until(() => closes.length > 0, 'handshake timeout');
    expect(closes).toEqual(['handshake timeout']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
  });

  it('fires the handshake timeout for a peer trickling its handshake a byte at a time', async () => {
    const { remote, closes } = await outgoing({ handshakeTimeoutMs: 200 });
    const bytes = encodeHandshake(INFO_HASH, THEIR_ID, Buffer.alloc(8));
    for (let i = 0; i < 40 && closes.length === 0; i++) {
      remote.sendRaw(bytes.subarray(i, i + 1));
      await new Promise((r) => setTimeout(r, 25));
    }
    await until(() => closes.length > 0, 'handshake timeout');
    expect(closes).toEqual(['handshake timeout']);
  });

  // The timer ticks every min(5 s, handshakeTimeoutMs): a short handshakeTimeoutMs makes it tick fast enough.
  it('fires the idle timeout when a handshaked peer goes silent', async () => {
    const { closes } = await handshaked({ handshakeTimeoutMs: 50, idleTimeoutMs: 200 });
    const since = Date.now();
    await until(() => closes.length > 0, 'idle timeout');
    expect(closes).toEqual(['idle timeout']);
    expect(Date.now() - since).toBeGreaterThanOrEqual(180);
  });

  it('does not time out a peer that keeps talking', async () => {
    const { remote, closes, conn } = await handshaked({ handshakeTimeoutMs: 50, idleTimeoutMs: 200 });
    for (let i = 0; i < 10; i++) {
      remote.send({ type: 'keep-alive' });
      await new Promise((r) => setTimeout(r, 50)); // 500 ms in all: 2.5 idle timeouts
    }
    expect(closes).toEqual([]);
    expect(conn.closed).toBe(false);
  });

  it('sends a keep-alive after keepAliveIntervalMs of sending nothing', async () => {
    const { remote } = await handshaked({ handshakeTimeoutMs: 50, keepAliveIntervalMs: 150 });
    const since = Date.now();
    const m = await remote.nextMessage(WAIT_MS);
    expect(m).toEqual({ type: 'keep-alive' });
    expect(Date.now() - since).toBeGreaterThanOrEqual(100);
  });
});
