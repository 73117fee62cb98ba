#!/usr/bin/python3
"""Make a torrent with libtorrent and have libtorrent itself write its data (test/interop/names.test.ts).

A file whose name is longer than 255 bytes cannot exist on disk to be hashed, so this
describes the files in a libtorrent file_storage (names as given, unsanitized), hashes the
concatenated data itself (set_hash), writes the .torrent, then loads it as any client would
and hands libtorrent every piece (add_piece): libtorrent writes each file under the name it
gives it. Prints one JSON object: the info hash and every file's path as libtorrent wrote it
(hex of its UTF-8 bytes, so nothing is lost on the way). No listening socket is used
(127.0.0.1:0, DHT/LSD/UPnP/NAT-PMP off). Run with Debian's /usr/bin/python3.

usage: lt-write-pieces.py SPEC.json OUT.torrent SAVE_DIR
SPEC: {"pieceLength": N, "files": [{"path": ["hex", ...], "length": N}], "dataHex": "..."}
"""
import hashlib
import json
import sys
import time

import libtorrent as lt


def main():
    spec_path, out_torrent, save_dir = sys.argv[1:4]
    with open(spec_path) as f:
        spec = json.load(f)
    data = bytes.fromhex(spec["dataHex"])
    piece_length = spec["pieceLength"]
    fs = lt.file_storage()
    for entry in spec["files"]:
        path = "/".join(bytes.fromhex(c).decode("utf-8", "surrogateescape") for c in entry["path"])
        fs.add_file(path, entry["length"])
    t = lt.create_torrent(fs, piece_length, flags=lt.create_torrent.v1_only)
    for i in range((len(data) + piece_length - 1) // piece_length):
        t.set_hash(i, hashlib.sha1(data[i * piece_length:(i + 1) * piece_length]).digest())
    t.set_creator("tt-interop lt-write-pieces.py")
    with open(out_torrent, "wb") as f:
        f.write(lt.bencode(t.generate()))

    ti = lt.torrent_info(out_torrent)
    ses = lt.session({"listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
                      "enable_upnp": False, "enable_natpmp": False})
    params = lt.add_torrent_params()
    params.ti = ti
    params.save_path = save_dir
    params.flags &= ~lt.torrent_flags.auto_managed
    params.flags &= ~lt.torrent_flags.paused
    h = ses.add_torrent(params)
    deadline = time.time() + 60
    added = False
    while not h.status().is_seeding:
        if time.time() > deadline:
            sys.exit("lt-write-pieces.py: libtorrent did not finish writing within 60 s (%s)" % h.status().state)
        st = h.status()
        if not added and st.state not in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data):
            # pieces given while the torrent is still checking are dropped
            for i in range(ti.num_pieces()):
                h.add_piece(i, data[i * piece_length:(i + 1) * piece_length], 0)
            added = True
        for a in ses.pop_alerts():
            if isinstance(a, (lt.torrent_error_alert, lt.file_error_alert)):
                sys.exit("lt-write-pieces.py: " + a.message())
        ses.wait_for_alert(100)
    h.flush_cache()
    files = ti.files()
    paths = [files.file_path(i).encode("utf-8", "surrogateescape").hex() for i in range(files.num_files())]
    print(json.dumps({"infoHash": str(ti.info_hashes().v1), "paths": paths}))
    ses.remove_torrent(h)
    del ses


main()
