#!/usr/bin/python3
"""libtorrent 2.0 driver for tt's interop tests and benchmark (BEP 3 peer, loopback only).

Owns: creating/hashing torrents with libtorrent, and running a libtorrent seeder or leecher
that reports newline-delimited JSON events on stdout. Run with Debian's /usr/bin/python3
(python3-libtorrent is not importable from other Pythons). Exits cleanly on SIGTERM/SIGINT.
"""
import argparse
import json
import os
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


def make_session(port, upload_limit=0, metadata=False, require_rc4=False):
    # flags=0: no default plugins (no ut_pex, ut_metadata, smart_ban); ut_metadata (BEP 9) on request
    settings = session_settings(port, upload_limit)
    if require_rc4:
        # "require encryption" as qBittorrent/Transmission users set it: MSE both ways, RC4 stream only
        settings.update({"out_enc_policy": 0, "in_enc_policy": 0, "allowed_enc_level": 2, "prefer_rc4": True})
    ses = lt.session(settings, 0)
    if metadata:
        ses.add_extension("ut_metadata")
    if upload_limit > 0:
        # libtorrent exempts local peers from rate limits unless the local class is limited
        ses.set_peer_class(ses.local_peer_class_id, {"upload_limit": upload_limit, "download_limit": 0,
                                                     "ignore_unchoke_slots": True, "label": "local"})
        ses.set_peer_class(ses.global_peer_class_id, {"upload_limit": upload_limit, "download_limit": 0,
                                                      "label": "global"})
    return ses


def wait_listening(ses, deadline):
    """Drain alerts until the TCP listener is up; return its port."""
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


def run_until_stopped(ses):
    while not stopping:
        ses.wait_for_alert(int(POLL_INTERVAL_S * 1000))
        ses.pop_alerts()


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
    ses = make_session(args.port, args.upload_limit, args.metadata, args.require_rc4)
    if args.corrupt:
        ses.apply_settings({"disable_hash_checks": True})
    try:
        port = wait_listening(ses, time.time() + 10)
        emit({"event": "listening", "port": port})
        h = ses.add_torrent(params)
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
            st = h.status()
            if st.is_seeding:
                seeding = True
            elif st.state not in CHECKING_STATES and st.has_metadata and st.num_pieces < ti.num_pieces():
                fail("data in %s is incomplete: %d of %d pieces verify" % (data_dir, st.num_pieces, ti.num_pieces()))
        if seeding:
            emit({"event": "seeding", "infoHash": str(ti.info_hashes().v1), "pieces": ti.num_pieces()})
        run_until_stopped(ses)
        emit({"event": "stopped", "uploaded": h.status().total_payload_upload})
    finally:
        del ses
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


def describe_peers(h):
    """One line per connected peer: choke/interest state and queues, to tell a stall's cause."""
    out = []
    for p in h.get_peer_info():
        flags = []
        if p.flags & lt.peer_info.remote_choked:
            flags.append("choked-by-peer")
        if p.flags & lt.peer_info.interesting:
            flags.append("we-interested")
        if p.flags & lt.peer_info.snubbed:
            flags.append("snubbed")
        out.append("%s:%d %s %s dl_queue=%d req_queue=%d downloading=%s" % (
            p.ip[0], p.ip[1], p.client, ",".join(flags), p.download_queue_length, p.target_dl_queue_length,
            p.downloading_piece_index))
    return "; ".join(out) or "none"


def cmd_leech(args):
    magnet = args.torrent.startswith("magnet:")
    ti = None if magnet else load_info(args.torrent)
    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    # a magnet's info dictionary comes from peers (BEP 9)
    ses = make_session(args.port, metadata=magnet, require_rc4=args.require_rc4)
    if magnet:
        params = lt.parse_magnet_uri(args.torrent)
    else:
        params = lt.add_torrent_params()
        params.ti = ti
    params.save_path = out_dir
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    port = wait_listening(ses, time.time() + 10)
    emit({"event": "listening", "port": port})
    started = time.time()
    h = ses.add_torrent(params)
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

    s = sub.add_parser("leech")
    s.add_argument("torrent", help="a .torrent file or a magnet link (fetched with ut_metadata)")
    s.add_argument("out_dir")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--peer", action="append", default=[])
    s.add_argument("--timeout", type=int, default=120)
    s.add_argument("--require-rc4", action="store_true", help="encrypted (MSE, RC4 stream) connections only")

    args = p.parse_args()
    {"infohash": cmd_infohash, "create": cmd_create, "seed": cmd_seed, "leech": cmd_leech}[args.cmd](args)


if __name__ == "__main__":
    main()
