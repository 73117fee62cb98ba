#!/usr/bin/python3
"""libtorrent 2.0 driver for tt's interop tests and benchmark (BEP 3 peer, loopback only).

Owns: creating/hashing torrents with libtorrent, and running a libtorrent seeder or leecher
that reports newline-delimited JSON events on stdout, optionally with the DHT (BEP 5) on and
bootstrapped from loopback nodes only; a DHT-only node (dht-node); and a peer that downloads
nothing and reports whom it is connected to, optionally exchanging peers (join, BEP 11). Run
with Debian's /usr/bin/python3 (python3-libtorrent is not importable from other Pythons).
Exits cleanly on SIGTERM/SIGINT.
"""
import argparse
import ipaddress
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time

import libtorrent as lt

POLL_INTERVAL_S = 0.05
PROGRESS_INTERVAL_S = 0.5
MIB = 1024 * 1024

stopping = False
CHECKING_STATES = (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)


def on_signal(_signum, _frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, on_signal)
signal.signal(signal.SIGINT, on_signal)


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def fail(message, code=1):
    emit({"event": "error", "message": message})
    sys.stderr.write("lt.py: " + message + "\n")
    sys.exit(code)


def session_settings(port, upload_limit=0):
    """Loopback-only, TCP-only, no DHT/LSD/UPnP/NAT-PMP; tuned to serve fast."""
    cat = lt.alert.category_t
    return {
        "listen_interfaces": "127.0.0.1:%d" % port,
        "outgoing_interfaces": "127.0.0.1",
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "enable_incoming_tcp": True,
        "enable_outgoing_tcp": True,
        # every peer on loopback is 127.0.0.1: allow several per IP
        "allow_multiple_connections_per_ip": True,
        # tracker on 127.0.0.1 must be usable
        "ssrf_mitigation": False,
        # tt speaks plaintext BEP 3; don't make every outgoing connection try MSE first
        "out_enc_policy": 2,  # pe_disabled
        "in_enc_policy": 1,  # pe_enabled (accept both)
        "announce_to_all_trackers": True,
        "announce_to_all_tiers": True,
        "alert_mask": cat.error_notification | cat.status_notification | cat.storage_notification
        | cat.tracker_notification,
        # serve fast on loopback
        "max_allowed_in_request_queue": 2000,
        "max_out_request_queue": 2000,
        "send_buffer_watermark": 8 * MIB,
        "send_buffer_low_watermark": 1 * MIB,
        "send_buffer_watermark_factor": 150,
        "aio_threads": 4,
        "hashing_threads": 2,
        "unchoke_slots_limit": 20,
        "connections_limit": 200,
        "upload_rate_limit": upload_limit,
        "min_reconnect_time": 1,
        "peer_connect_timeout": 5,
        "request_timeout": 10,
        "user_agent": "tt-interop-lt/2.0",
    }


def dht_settings(bootstrap, announce_interval=None):
    """DHT on, talking to the given loopback bootstrap nodes only (possibly none).

    Measured against libtorrent 2.0.8 on 127.0.0.1 (every node shares one IP):
    - dht_bootstrap_nodes must be given when the session is constructed: its default is
      dht.libtorrent.org:25401. Bootstrap nodes are "router" nodes: queried, never put in the
      routing table.
    - dht_restrict_routing_ips / dht_restrict_search_ips: by default one node per IP (per /24
      in a lookup), so a loopback routing table holds at most one node and a lookup follows
      at most one non-bootstrap node.
    - dht_block_ratelimit: the DoS blocker drops every packet from an IP that sent 50 (5 x 10)
      in 10 s, for 5 minutes; on loopback that is all nodes together.
    - dht_upload_rate_limit: 8000 B/s by default; replies over quota are dropped.
    - BEP 42 node ids and dht_ignore_dark_internet do not matter for 127.0.0.0/8.
    """
    cat = lt.alert.category_t
    settings = {
        "enable_dht": True,
        "dht_bootstrap_nodes": ",".join("%s:%d" % hp for hp in bootstrap),
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_block_ratelimit": 1000000,
        "dht_upload_rate_limit": 100 * MIB,
        # dht_log: the raw-packet alerts that tell when our announce_peer was answered
        "alert_mask": session_settings(0)["alert_mask"] | cat.dht_notification | cat.dht_operation_notification
        | cat.dht_log_notification,
    }
    if announce_interval is not None:
        settings["dht_announce_interval"] = announce_interval
    return settings


def make_session(port, upload_limit=0, metadata=False, require_rc4=False, dht=None, pex=False):
    # flags=0: no default plugins (no ut_pex, ut_metadata, smart_ban); ut_metadata (BEP 9) and
    # ut_pex (BEP 11) on request
    settings = session_settings(port, upload_limit)
    if dht is not None:
        # before the session exists: it must never start the DHT with the public bootstrap nodes
        settings.update(dht)
    if require_rc4:
        # "require encryption" as qBittorrent/Transmission users set it: MSE both ways, RC4 stream only
        settings.update({"out_enc_policy": 0, "in_enc_policy": 0, "allowed_enc_level": 2, "prefer_rc4": True})
    ses = lt.session(settings, 0)
    if dht is not None and ses.get_settings()["dht_bootstrap_nodes"] != dht["dht_bootstrap_nodes"]:
        fail("DHT bootstrap nodes not applied")
    if metadata:
        ses.add_extension("ut_metadata")
    if pex:
        # a first full list on its first tick after the extended handshake once it has 2 peers, then a diff every 60 s
        ses.add_extension("ut_pex")
    if upload_limit > 0:
        # libtorrent exempts local peers from rate limits unless the local class is limited
        ses.set_peer_class(ses.local_peer_class_id, {"upload_limit": upload_limit, "download_limit": 0,
                                                     "ignore_unchoke_slots": True, "label": "local"})
        ses.set_peer_class(ses.global_peer_class_id, {"upload_limit": upload_limit, "download_limit": 0,
                                                      "label": "global"})
    return ses


def wait_listening(ses, deadline, dht=None):
    """Drain alerts until the TCP listener is up (and, with a DhtWatcher, the UDP socket the DHT
    runs on); return the TCP port."""
    if dht is not None:
        return wait_listening_dht(ses, deadline, dht)
    while time.time() < deadline and not stopping:
        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            if isinstance(a, lt.listen_succeeded_alert) and a.socket_type == lt.socket_type_t.tcp:
                return a.port
            if isinstance(a, lt.listen_failed_alert):
                fail("listen failed: " + a.message())
    if ses.listen_port() > 0:
        return ses.listen_port()
    fail("listener did not come up")


def wait_listening_dht(ses, deadline, dht):
    tcp = None
    while time.time() < deadline and not stopping and (tcp is None or dht.udp_port is None):
        ses.wait_for_alert(100)
        for a in ses.pop_alerts():
            if isinstance(a, lt.listen_succeeded_alert) and a.socket_type == lt.socket_type_t.tcp:
                tcp = a.port
            elif isinstance(a, lt.listen_failed_alert):
                fail("listen failed: " + a.message())
            else:
                dht.handle(a)
    if tcp is None or dht.udp_port is None:
        fail("listener did not come up (tcp %s, udp %s)" % (tcp, dht.udp_port))
    return tcp


def parse_dht_node(text):
    """host:port of a DHT node; loopback (127.0.0.0/8) only: the DHT must stay on this machine."""
    host, _, port = text.rpartition(":")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ok = port.isdigit() and 0 < int(port) < 65536 and ipaddress.ip_address(host).version == 4 \
            and ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        fail("bad --dht-bootstrap %r (want 127.x.x.x:port, loopback only)" % text, 2)
    return host, int(port)


def dht_options(args):
    """DHT settings from --dht / --dht-bootstrap / --dht-announce-interval, or None (DHT off)."""
    nodes = [parse_dht_node(t) for t in args.dht_bootstrap]
    if not nodes and not args.dht:
        return None
    return dht_settings(nodes, args.dht_announce_interval)


PKT_RE = re.compile(r"^(==>|<==) \[([^\]]+)\]")


class DhtWatcher:
    """Turns libtorrent's DHT alerts into JSON events; re-announces once the DHT is bootstrapped.

    libtorrent 2.0 does not announce a torrent that starts before its DHT is up (a magnet link
    added right after the session) until the next interval: force_dht_announce() covers it.
    """

    def __init__(self, ses, stats_interval=1.0, periodic=False):
        self.ses = ses
        self.stats_interval = stats_interval
        self.periodic = periodic  # a "dht" line every interval, else only when it changes
        self.next_stats = 0.0
        self.last_emitted = None
        self.udp_port = None
        self.bootstrapped = False
        self.handles = []
        self.sent_announces = {}  # (node, transaction id) -> info hash (hex)
        self.last_stats = None
        self.counters = {}

    def add_handle(self, h):
        self.handles.append(h)
        if self.bootstrapped:
            h.force_dht_announce()

    def announce(self):
        for h in self.handles:
            h.force_dht_announce()

    def handle(self, a):
        if isinstance(a, lt.listen_succeeded_alert):
            if a.socket_type in (lt.socket_type_t.udp, lt.socket_type_t.utp):
                self.udp_port = a.port
        elif isinstance(a, lt.dht_pkt_alert):
            self.on_packet(a)
        elif isinstance(a, lt.dht_bootstrap_alert):
            self.bootstrapped = True
            emit({"event": "dht-bootstrap"})
            self.announce()
        elif isinstance(a, lt.dht_announce_alert):
            # a node announced itself to us (announce_peer with a valid token)
            emit({"event": "dht-incoming-announce", "infoHash": str(a.info_hash), "peer": "%s:%d" % (a.ip, a.port)})
        elif isinstance(a, lt.dht_get_peers_alert):
            emit({"event": "dht-incoming-get-peers", "infoHash": str(a.info_hash)})
        elif isinstance(a, lt.dht_reply_alert):
            # a get_peers lookup of ours returned peers
            emit({"event": "dht-peers", "infoHash": str(a.handle.info_hashes().v1), "peers": a.num_peers})
        elif isinstance(a, lt.dht_stats_alert):
            nodes = sum(b["num_nodes"] for b in a.routing_table)
            replacements = sum(b["num_replacements"] for b in a.routing_table)
            self.last_stats = (nodes, replacements)
        elif isinstance(a, lt.session_stats_alert):
            v = a.values  # the binding gives {metric name: value}
            self.counters = {k: v.get(k, 0) for k in (
                "dht.dht_torrents", "dht.dht_peers", "dht.dht_messages_in", "dht.dht_messages_in_dropped")}
            ev = self.stats_event()
            if ev is not None:
                key = (ev["nodes"], ev["replacements"], ev["torrents"], ev["peers"], ev["droppedIn"])
                if self.periodic or key != self.last_emitted:
                    self.last_emitted = key
                    emit(ev)

    def on_packet(self, a):
        m = PKT_RE.match(a.message())
        if not m:
            return
        try:
            msg = lt.bdecode(bytes(a.pkt_buf))
        except Exception:  # libtorrent logs what it could not decode too
            return
        if not isinstance(msg, dict):
            return
        outgoing, node = m.group(1) == "==>", m.group(2)
        tid = msg.get(b"t")
        y = msg.get(b"y")
        if outgoing and y == b"q" and msg.get(b"q") == b"announce_peer":
            ih = msg.get(b"a", {}).get(b"info_hash", b"")
            self.sent_announces[(node, tid)] = ih.hex()
        elif not outgoing and y in (b"r", b"e") and (node, tid) in self.sent_announces:
            ih = self.sent_announces.pop((node, tid))
            if y == b"r":
                emit({"event": "dht-announce", "infoHash": ih, "node": node})
            else:
                err = msg.get(b"e", [])  # [code, message]
                text = " ".join(x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in err)
                emit({"event": "dht-announce-error", "infoHash": ih, "node": node, "message": text})

    def tick(self):
        """Ask for routing table and counters every stats_interval; the answer arrives as alerts."""
        now = time.time()
        if now >= self.next_stats:
            self.next_stats = now + self.stats_interval
            self.ses.post_dht_stats()  # dht_stats_alert first, then session_stats_alert
            self.ses.post_session_stats()

    def pump(self, alerts):
        for a in alerts:
            self.handle(a)
        self.tick()

    def stats_event(self):
        if self.last_stats is None:
            return None
        return {"event": "dht", "nodes": self.last_stats[0], "replacements": self.last_stats[1],
                "torrents": self.counters.get("dht.dht_torrents", 0), "peers": self.counters.get("dht.dht_peers", 0),
                "messagesIn": self.counters.get("dht.dht_messages_in", 0),
                "droppedIn": self.counters.get("dht.dht_messages_in_dropped", 0)}


def load_info(path):
    try:
        return lt.torrent_info(path)
    except Exception as exc:  # libtorrent raises RuntimeError with its error message
        fail("cannot load torrent %s: %s" % (path, exc), 3)


def parse_peer(text):
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit():
        fail("bad --peer %r (want host:port)" % text, 2)
    return host.strip("[]"), int(port)


def cmd_infohash(args):
    ti = load_info(args.torrent)
    emit({"infoHash": str(ti.info_hashes().v1), "name": ti.name(), "numPieces": ti.num_pieces(),
          "pieceLength": ti.piece_length(), "totalSize": ti.total_size(), "numFiles": ti.num_files()})


def cmd_create(args):
    src = os.path.abspath(args.path)
    if not os.path.exists(src):
        fail("no such path: " + src, 3)
    fs = lt.file_storage()
    lt.add_files(fs, src)
    if fs.num_files() == 0:
        fail("nothing to add under " + src, 3)
    # hybrid: v1 and v2 (BEP 52) in one info dict, files aligned with BEP 47 padding files, as
    # libtorrent 2.0 and qBittorrent make them by default
    flags = 0 if args.hybrid else lt.create_torrent.v1_only
    t = lt.create_torrent(fs, args.piece_length, flags=flags)
    for tier, url in enumerate(args.tracker):
        t.add_tracker(url, tier)
    t.set_creator("tt-interop lt.py")
    lt.set_piece_hashes(t, os.path.dirname(src))
    data = lt.bencode(t.generate())
    with open(args.out, "wb") as f:
        f.write(data)
    ti = lt.torrent_info(args.out)
    emit({"event": "created", "path": args.out, "infoHash": str(ti.info_hashes().v1),
          "numPieces": ti.num_pieces(), "totalSize": ti.total_size()})


def corrupt_copy(ti, data_dir):
    """Copy the torrent's files to a temp dir and flip one byte in every piece."""
    tmp = tempfile.mkdtemp(prefix="lt-corrupt-")
    fs = ti.files()
    for i in range(fs.num_files()):
        rel = fs.file_path(i)
        dst = os.path.join(tmp, rel)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copyfile(os.path.join(data_dir, rel), dst)
    for piece in range(ti.num_pieces()):
        # flip a byte in the middle of the piece, in whichever file holds it
        size = ti.piece_size(piece)
        slices = ti.map_block(piece, size // 2, 1)
        for sl in slices:
            path = os.path.join(tmp, fs.file_path(sl.file_index))
            with open(path, "r+b") as f:
                f.seek(sl.offset)
                b = f.read(1)
                f.seek(sl.offset)
                f.write(bytes([b[0] ^ 0xFF]))
    return tmp


def run_until_stopped(ses, dht=None):
    while not stopping:
        ses.wait_for_alert(int(POLL_INTERVAL_S * 1000))
        alerts = ses.pop_alerts()
        if dht is not None:
            dht.pump(alerts)


def cmd_seed(args):
    ti = load_info(args.torrent)
    data_dir = os.path.abspath(args.data_dir)
    tmp = None
    params = lt.add_torrent_params()
    params.ti = ti
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    if args.corrupt:
        # serve damaged copies as if they were good: skip the check and hash verification
        tmp = corrupt_copy(ti, data_dir)
        data_dir = tmp
        params.flags |= lt.torrent_flags.seed_mode
    params.save_path = data_dir
    dht_opts = dht_options(args)
    ses = make_session(args.port, args.upload_limit, args.metadata, args.require_rc4, dht=dht_opts)
    dht = DhtWatcher(ses) if dht_opts is not None else None
    if args.corrupt:
        ses.apply_settings({"disable_hash_checks": True})
    if args.keep_redundant:
        ses.apply_settings(KEEP_REDUNDANT)
    try:
        port = wait_listening(ses, time.time() + 10, dht)
        if dht is None:
            emit({"event": "listening", "port": port})
        else:
            emit({"event": "listening", "port": port, "dhtPort": dht.udp_port})
        h = ses.add_torrent(params)
        if dht is not None:
            dht.add_handle(h)
        for peer in args.peer:
            h.connect_peer(parse_peer(peer))
        deadline = time.time() + args.check_timeout
        seeding = False
        while not stopping and not seeding:
            if time.time() > deadline:
                fail("torrent did not become a seed within %ds (data missing or wrong?)" % args.check_timeout)
            ses.wait_for_alert(100)
            for a in ses.pop_alerts():
                if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                    fail("seed error: " + a.message())
                elif dht is not None:
                    dht.handle(a)
            st = h.status()
            if st.is_seeding:
                seeding = True
            elif st.state not in CHECKING_STATES and st.has_metadata and st.num_pieces < ti.num_pieces():
                fail("data in %s is incomplete: %d of %d pieces verify" % (data_dir, st.num_pieces, ti.num_pieces()))
        if seeding:
            emit({"event": "seeding", "infoHash": str(ti.info_hashes().v1), "pieces": ti.num_pieces()})
            if dht is not None:
                dht.announce()
        run_until_stopped(ses, dht)
        emit({"event": "stopped", "uploaded": h.status().total_payload_upload})
    finally:
        del ses
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def describe_peers(h):
    """One line per connected peer: choke/interest state and queues, to tell a stall's cause.
    Only fields the 2.0.8 bindings have (peer_info has no target_dl_queue_length there: reading
    it raised AttributeError on the timeout path and hid the timeout's own message)."""
    out = []
    for p in h.get_peer_info():
        flags = []
        if p.flags & lt.peer_info.remote_choked:
            flags.append("choked-by-peer")
        if p.flags & lt.peer_info.interesting:
            flags.append("we-interested")
        if p.flags & lt.peer_info.snubbed:
            flags.append("snubbed")
        client = p.client.decode("utf-8", "replace") if isinstance(p.client, bytes) else str(p.client)
        out.append("%s:%d %s %s our_requests=%d its_requests=%d queued_bytes=%d downloading=%s" % (
            p.ip[0], p.ip[1], client, ",".join(flags), p.download_queue_length, p.upload_queue_length,
            p.queue_bytes, p.downloading_piece_index))
    return "; ".join(out) or "none"


def cmd_leech(args):
    magnet = args.torrent.startswith("magnet:")
    ti = None if magnet else load_info(args.torrent)
    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    # a magnet's info dictionary comes from peers (BEP 9)
    dht_opts = dht_options(args)
    ses = make_session(args.port, metadata=magnet, require_rc4=args.require_rc4, dht=dht_opts)
    dht = DhtWatcher(ses) if dht_opts is not None else None
    if magnet:
        params = lt.parse_magnet_uri(args.torrent)
    else:
        params = lt.add_torrent_params()
        params.ti = ti
    params.save_path = out_dir
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    port = wait_listening(ses, time.time() + 10, dht)
    if dht is None:
        emit({"event": "listening", "port": port})
    else:
        emit({"event": "listening", "port": port, "dhtPort": dht.udp_port})
    started = time.time()
    h = ses.add_torrent(params)
    if dht is not None:
        dht.add_handle(h)
    for peer in args.peer:
        h.connect_peer(parse_peer(peer))
    deadline = started + args.timeout
    last_progress = 0.0
    hash_failures = 0
    while not stopping:
        now = time.time()
        if ti is None and h.status().has_metadata:
            ti = h.torrent_file()
            emit({"event": "metadata", "name": ti.name(), "numPieces": ti.num_pieces()})
        if now > deadline:
            st = h.status()
            missing = [i for i, have in enumerate(st.pieces) if not have][:10]
            fail("timeout after %ds: %d of %s pieces (metadata %s), %d peers, %d hash failures, missing pieces %s; peers: %s" % (
                args.timeout, st.num_pieces, ti.num_pieces() if ti else "?", "yes" if ti else "no", st.num_peers,
                hash_failures, missing, describe_peers(h)))
        ses.wait_for_alert(int(POLL_INTERVAL_S * 1000))
        for a in ses.pop_alerts():
            if isinstance(a, lt.hash_failed_alert):
                hash_failures += 1
            elif isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                fail("leech error: " + a.message())
            elif isinstance(a, lt.tracker_error_alert):
                emit({"event": "tracker-error", "message": a.message()})
            elif dht is not None:
                dht.handle(a)
        if dht is not None:
            dht.tick()
        st = h.status()
        if now - last_progress >= PROGRESS_INTERVAL_S:
            last_progress = now
            emit({"event": "progress", "progress": round(st.progress, 4), "pieces": st.num_pieces,
                  "downloadRate": st.download_payload_rate, "peers": st.num_peers,
                  "hashFailures": hash_failures})
        if ti is not None and (st.is_finished or st.is_seeding):
            break
    if stopping:
        emit({"event": "stopped"})
        return
    # is_finished counts pieces that passed the hash check; num_pieces only those also written
    # to disk: wait (bounded) for the last writes before calling it done
    write_deadline = time.time() + 30
    st = h.status()
    while st.num_pieces != ti.num_pieces() and time.time() < write_deadline and not stopping:
        ses.wait_for_alert(int(POLL_INTERVAL_S * 1000))
        ses.pop_alerts()
        st = h.status()
    seconds = time.time() - started
    if st.num_pieces != ti.num_pieces():
        fail("finished with %d of %d pieces" % (st.num_pieces, ti.num_pieces()))
    # make sure everything reached the files before we report success
    ses.remove_torrent(h)
    flush_deadline = time.time() + 30
    while time.time() < flush_deadline:
        ses.wait_for_alert(100)
        if any(isinstance(a, lt.torrent_removed_alert) for a in ses.pop_alerts()):
            break
    emit({"event": "done", "seconds": round(seconds, 3), "hashFailures": hash_failures,
          "downloaded": st.total_payload_download})


# close_redundant_connections (on by default) drops a connection between two upload-only ends,
# e.g. a seeder and a peer in upload mode (join), as soon as the extended handshakes are in
KEEP_REDUNDANT = {"close_redundant_connections": False}


def peer_endpoints(h):
    """The peers a torrent is connected to (handshake done) as sorted "ip:port" lists: all, and
    those it learned through ut_pex. An outgoing connection shows the peer's listening port, an
    incoming one the peer's ephemeral port."""
    peers, from_pex = [], []
    for p in h.get_peer_info():
        if p.flags & (lt.peer_info.connecting | lt.peer_info.handshake):
            continue
        endpoint = "%s:%d" % (p.ip[0], p.ip[1])
        peers.append(endpoint)
        if p.source & lt.peer_info.pex:
            from_pex.append(endpoint)
    return sorted(peers), sorted(from_pex)


def cmd_join(args):
    """A peer that joins a torrent's swarm with no data and downloads nothing: libtorrent's upload
    mode sends no requests, so it never has a piece to give. With --pex it tells its peers about
    each other and learns peers from them (ut_pex). Reports the peers it is connected to.

    Upload mode makes it upload-only (it says so in its extended handshake), and by default
    libtorrent drops a connection where both ends are upload-only: a libtorrent seeder it talks
    to needs --keep-redundant.

    Given a magnet link instead of a .torrent file, it joins by info hash alone and never gets
    the metadata (the session has no ut_metadata): a peer in the metadata phase for good, which
    still exchanges peers with --pex (libtorrent does PEX before it has the metadata)."""
    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    ses = make_session(args.port, pex=args.pex)
    ses.apply_settings(KEEP_REDUNDANT)
    if args.torrent.startswith("magnet:"):
        params = lt.parse_magnet_uri(args.torrent)
    else:
        params = lt.add_torrent_params()
        params.ti = load_info(args.torrent)
    params.save_path = out_dir
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    params.flags |= lt.torrent_flags.upload_mode
    port = wait_listening(ses, time.time() + 10)
    emit({"event": "listening", "port": port})
    h = ses.add_torrent(params)
    for peer in args.peer:
        h.connect_peer(parse_peer(peer))
    next_report = 0.0
    while not stopping:
        ses.wait_for_alert(int(POLL_INTERVAL_S * 1000))
        for a in ses.pop_alerts():
            if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                fail("join error: " + a.message())
        now = time.time()
        if now >= next_report:
            next_report = now + args.report_interval
            st = h.status()
            peers, from_pex = peer_endpoints(h)
            emit({"event": "peers", "peers": peers, "fromPex": from_pex, "pieces": st.num_pieces,
                  "downloaded": st.total_payload_download, "uploaded": st.total_payload_upload})
    emit({"event": "stopped", "uploaded": h.status().total_payload_upload})


def cmd_dht_node(args):
    """A DHT-only session (no torrents): a bootstrap/router node for loopback DHT tests."""
    nodes = [parse_dht_node(t) for t in args.dht_bootstrap]
    ses = make_session(args.port, dht=dht_settings(nodes, args.dht_announce_interval))
    dht = DhtWatcher(ses, stats_interval=args.stats_interval, periodic=True)
    port = wait_listening(ses, time.time() + 10, dht)
    emit({"event": "listening", "port": port, "dhtPort": dht.udp_port})
    run_until_stopped(ses, dht)
    emit({"event": "stopped"})


def add_dht_args(s):
    s.add_argument("--dht", action="store_true", help="DHT on (implied by --dht-bootstrap); no bootstrap nodes")
    s.add_argument("--dht-bootstrap", action="append", default=[], metavar="127.0.0.1:PORT",
                   help="DHT on, bootstrapping from this loopback node only (repeatable)")
    s.add_argument("--dht-announce-interval", type=int, default=None, metavar="SECONDS",
                   help="re-announce torrents to the DHT this often (libtorrent's default 900)")


def main():
    p = argparse.ArgumentParser(prog="lt.py", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("infohash")
    s.add_argument("torrent")

    s = sub.add_parser("create")
    s.add_argument("path")
    s.add_argument("out")
    s.add_argument("--piece-length", type=int, default=256 * 1024)
    s.add_argument("--tracker", action="append", default=[])
    s.add_argument("--hybrid", action="store_true", help="v1+v2 torrent with padding files (libtorrent's default)")

    s = sub.add_parser("seed")
    s.add_argument("torrent")
    s.add_argument("data_dir")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--upload-limit", type=int, default=0, help="bytes per second, applies to local peers too")
    s.add_argument("--corrupt", action="store_true", help="serve a copy with one flipped byte in every piece")
    s.add_argument("--peer", action="append", default=[], help="host:port to connect to (e.g. a Transmission leecher)")
    s.add_argument("--check-timeout", type=int, default=300)
    s.add_argument("--metadata", action="store_true", help="serve the info dictionary to magnet users (ut_metadata)")
    s.add_argument("--require-rc4", action="store_true", help="encrypted (MSE, RC4 stream) connections only")
    s.add_argument("--keep-redundant", action="store_true",
                   help="keep connections to upload-only peers (e.g. a join peer) instead of closing them")
    add_dht_args(s)

    s = sub.add_parser("leech")
    s.add_argument("torrent", help="a .torrent file or a magnet link (fetched with ut_metadata)")
    s.add_argument("out_dir")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--peer", action="append", default=[])
    s.add_argument("--timeout", type=int, default=120)
    s.add_argument("--require-rc4", action="store_true", help="encrypted (MSE, RC4 stream) connections only")
    add_dht_args(s)

    s = sub.add_parser("join", help="join a swarm without downloading (upload mode); report connected peers")
    s.add_argument("torrent", help="a .torrent file, or a magnet link (joined without ever getting the metadata)")
    s.add_argument("out_dir", help="save path (nothing is written there)")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--peer", action="append", default=[])
    s.add_argument("--pex", action="store_true", help="exchange peers with peers (BEP 11 ut_pex; off by default)")
    s.add_argument("--report-interval", type=float, default=PROGRESS_INTERVAL_S, metavar="SECONDS",
                   help="seconds between \"peers\" lines")

    s = sub.add_parser("dht-node", help="DHT-only node (no torrents) on 127.0.0.1")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--dht-bootstrap", action="append", default=[], metavar="127.0.0.1:PORT",
                   help="loopback node to bootstrap from (repeatable; none: wait to be contacted)")
    s.add_argument("--dht-announce-interval", type=int, default=None, metavar="SECONDS")
    s.add_argument("--stats-interval", type=float, default=1.0, help="seconds between \"dht\" lines")

    args = p.parse_args()
    {"infohash": cmd_infohash, "create": cmd_create, "seed": cmd_seed, "leech": cmd_leech,
     "join": cmd_join,
     "dht-node": cmd_dht_node}[args.cmd](args)


if __name__ == "__main__":
    main()
