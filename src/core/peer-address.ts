/**
 * A peer's network address, as trackers and listeners report it. Pure.
 */
export interface PeerAddress {
  /** IPv4 dotted quad or IPv6 text form (no brackets). */
  readonly host: string;
  readonly port: number;
  /** Present when the tracker's dictionary form gave one. */
  readonly peerId?: Buffer;
}
