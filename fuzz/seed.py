#!/usr/bin/env python3
"""Builds seed corpora for the fuzz targets from the project's own captures and configs.

Usage: seed.py REPO_ROOT OUT_DIR

Writes OUT_DIR/<target>/<sha1> files in each target's input layout (see the `//!` header
of each file in fuzz_targets/). Only the standard library is used; the captures are
classic pcap, read here without any capture library. Nothing written here is committed.
"""

import hashlib
import os
import struct
import sys
from collections import defaultdict

# Per-target size caps, kept equal to the -max_len values in scripts/fuzz.sh.
MAX_LEN = {
    "decode": 2048,
    "capture": 16384,
    "config": 2048,
    "probes": 1024,
    "ftp": 1024,
    "smb": 2048,
    "tftp": 1024,
}

# Link-type slots of fuzz_targets/decode.rs (index = low nibble of byte 0).
LT_ETHERNET, LT_RAW, LT_IPV4, LT_IPV6, LT_NULL, LT_LOOP = 0, 1, 2, 3, 4, 5
LT_SLL, LT_SLL2, LT_PPP, LT_PPP_HDLC, LT_NFLOG = 6, 7, 8, 9, 10

# Server ports of fuzz_targets/probes.rs, in its order.
PROBE_PORTS = [21, 69, 139, 445, 990, 80, 443, 40000]


class Seeds:
    def __init__(self, out):
        self.out = out
        self.counts = defaultdict(int)

    def add(self, target, data):
        data = bytes(data)[: MAX_LEN[target]]
        if not data:
            return
        d = os.path.join(self.out, target)
        os.makedirs(d, exist_ok=True)
        name = os.path.join(d, hashlib.sha1(data).hexdigest())
        if not os.path.exists(name):
            with open(name, "wb") as f:
                f.write(data)
            self.counts[target] += 1


def read_pcap(path):
    """(linktype, [(sec, frac, frame, origlen)], raw bytes, endian prefix) of a classic pcap."""
    raw = open(path, "rb").read()
    magic = raw[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        return None
    linktype = struct.unpack(e + "I", raw[20:24])[0] & 0x03FFFFFF
    frames = []
    off = 24
    while off + 16 <= len(raw):
        sec, frac, caplen, origlen = struct.unpack(e + "IIII", raw[off : off + 16])
        data = raw[off + 16 : off + 16 + caplen]
        if len(data) < caplen:
            break
        frames.append((sec, frac, data, origlen))
        off += 16 + caplen
    return linktype, frames, raw, e


def ether_split(frame):
    """(ethertype, network bytes) after Ethernet and VLAN tags, or None."""
    if len(frame) < 14:
        return None
    et = struct.unpack(">H", frame[12:14])[0]
    rest = frame[14:]
    while et in (0x8100, 0x88A8, 0x9100) and len(rest) >= 4:
        et = struct.unpack(">H", rest[2:4])[0]
        rest = rest[4:]
    return et, rest


def l4(ip, et):
    """(src, dst, proto, sport, dport, payload, seq) of a TCP/UDP packet, or None."""
    if et == 0x0800 and len(ip) >= 20:
        ihl = (ip[0] & 15) * 4
        total = struct.unpack(">H", ip[2:4])[0]
        proto, src, dst = ip[9], ip[12:16], ip[16:20]
        body = ip[ihl:total]
        if struct.unpack(">H", ip[6:8])[0] & 0x1FFF:
            return None
    elif et == 0x86DD and len(ip) >= 40:
        proto, src, dst = ip[6], ip[8:24], ip[24:40]
        body = ip[40 : 40 + struct.unpack(">H", ip[4:6])[0]]
    else:
        return None
    if proto == 6 and len(body) >= 20:
        sport, dport, seq = struct.unpack(">HHI", body[:8])
        return src, dst, 6, sport, dport, body[(body[12] >> 4) * 4 :], seq
    if proto == 17 and len(body) >= 8:
        sport, dport = struct.unpack(">HH", body[:4])
        return src, dst, 17, sport, dport, body[8:], None
    return None


def relink(frame):
    """The frame's network packet re-framed for each non-Ethernet link type the decoder reads."""
    split = ether_split(frame)
    if split is None or split[0] not in (0x0800, 0x86DD):
        return []
    et, ip = split
    v4 = et == 0x0800
    ppp_proto = b"\x00\x21" if v4 else b"\x00\x57"
    sll = b"\x00\x00\x00\x01\x00\x06" + frame[6:12] + b"\x00\x00" + struct.pack(">H", et)
    sll2 = struct.pack(">H", et) + b"\x00\x00" + b"\x00\x00\x00\x02" + b"\x00\x01\x00\x06"
    sll2 += frame[6:12] + b"\x00\x00"
    # NFLOG: family, version, resource id, then TLVs (little-endian length and type);
    # type 9 carries the packet.
    payload_tlv = struct.pack("<HH", 4 + len(ip), 9) + ip
    prefix_tlv = struct.pack("<HH", 8, 10) + b"fuzz"
    nflog = bytes([2 if v4 else 10, 0, 0, 0]) + prefix_tlv + payload_tlv
    return [
        (LT_RAW, ip),
        (LT_IPV4 if v4 else LT_IPV6, ip),
        (LT_NULL, struct.pack("<I", 2 if v4 else 30) + ip),
        (LT_LOOP, struct.pack(">I", 2 if v4 else 24) + ip),
        (LT_SLL, sll + ip),
        (LT_SLL2, sll2 + ip),
        (LT_PPP, ppp_proto + ip),
        (LT_PPP_HDLC, b"\xff\x03" + ppp_proto + ip),
        (LT_NFLOG, nflog),
    ]


def csum(b):
    if len(b) % 2:
        b += b"\x00"
    s = sum(struct.unpack(">%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4(proto, body, src=b"\xc6\x33\x64\x01", dst=b"\xc6\x33\x64\x02"):
    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 1, 0, 64, proto, 0, src, dst)
    hdr = hdr[:10] + struct.pack(">H", csum(hdr)) + hdr[12:]
    return hdr + body


def tunnels(frame):
    """The frame wrapped in VXLAN, GRE (IP inside) and ERSPAN II, as Ethernet frames."""
    split = ether_split(frame)
    if split is None:
        return []
    et, ip = split
    eth = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"
    vx = b"\x08\x00\x00\x00\x00\x00\x64\x00" + frame
    udp = struct.pack(">HHHH", 49152, 4789, 8 + len(vx), 0) + vx
    out = [eth + ipv4(17, udp)]
    if et in (0x0800, 0x86DD):
        out.append(eth + ipv4(47, struct.pack(">HH", 0, et) + ip))
    # GRE with a sequence number, then an 8-byte ERSPAN type II header (version 1).
    erspan = b"\x10\x00\x88\xbe" + b"\x00\x00\x00\x01" + b"\x10\x64\x00\x00\x00\x00\x00\x00"
    out.append(eth + ipv4(47, erspan + frame))
    return out


def decode_seeds(seeds, frames, per_file=40):
    picked = frames[:per_file]
    for _, _, f, _ in picked:
        seeds.add("decode", bytes([LT_ETHERNET]) + f)
    # Re-framed and tunnelled copies of a few frames per file (one per flow is plenty).
    for _, _, f, _ in picked[:: max(1, len(picked) // 4)]:
        for slot, g in relink(f):
            seeds.add("decode", bytes([slot]) + g)
        for g in tunnels(f):
            seeds.add("decode", bytes([LT_ETHERNET]) + g)
    # A multi-frame input (bit 7): the first frames of the file, u16-length framed.
    multi = bytearray([0x80 | LT_ETHERNET])
    for _, _, f, _ in picked[:24]:
        if len(multi) + 2 + len(f) > MAX_LEN["decode"]:
            break
        multi += struct.pack(">H", len(f)) + f
    seeds.add("decode", multi)


def pcap_bytes(e, linktype, frames, nanos=False):
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = bytearray(struct.pack(e + "IHHiIII", magic, 2, 4, 0, 0, 262144, linktype))
    for sec, frac, data, origlen in frames:
        out += struct.pack(e + "IIII", sec, frac * 1000 if nanos else frac, len(data), origlen)
        out += data
    return bytes(out)


def pcapng_bytes(linktype, frames, simple=False):
    def block(btype, body):
        body += b"\x00" * (-len(body) % 4)
        n = 12 + len(body)
        return struct.pack("<II", btype, n) + body + struct.pack("<I", n)

    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    # if_tsresol = 9 (nanoseconds), then opt_endofopt.
    opts = struct.pack("<HH", 9, 1) + b"\x09\x00\x00\x00" + struct.pack("<HH", 0, 0)
    idb = block(1, struct.pack("<HHI", linktype, 0, 262144) + opts)
    out = bytearray(shb + idb)
    for sec, frac, data, origlen in frames:
        if simple:
            out += block(3, struct.pack("<I", origlen) + data)
        else:
            t = sec * 1_000_000_000 + frac * 1000
            hdr = struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(data), origlen)
            out += block(6, hdr + data)
    return bytes(out)


def capture_seeds(seeds, linktype, frames, e):
    cap = MAX_LEN["capture"] - 1
    head = bytes([0x03])  # record limit 262144, reads of 97 bytes
    small = []
    size = 24
    for fr in frames:
        size += 16 + len(fr[2])
        if size > cap:
            break
        small.append(fr)
    whole = pcap_bytes(e, linktype, small)
    seeds.add("capture", head + whole)
    seeds.add("capture", head + pcap_bytes(">" if e == "<" else "<", linktype, small[:8]))
    seeds.add("capture", head + pcap_bytes(e, linktype, small[:8], nanos=True))
    # Cut inside the last record, and a tight record limit.
    seeds.add("capture", head + whole[: max(24, len(whole) - 7)])
    seeds.add("capture", bytes([0x00]) + pcap_bytes(e, linktype, small[:8]))
    ng = pcapng_bytes(linktype, small[:40])
    seeds.add("capture", head + ng)
    seeds.add("capture", head + ng[: len(ng) - 5])
    seeds.add("capture", head + pcapng_bytes(linktype, small[:8], simple=True))


def flows(frames):
    """Per flow, the payload-carrying packets in order: (key, [(to_server, payload)])."""
    out = {}
    first_dir = {}
    seen = set()
    for _, _, f, _ in frames:
        split = ether_split(f)
        if split is None:
            continue
        p = l4(split[1], split[0])
        if p is None:
            continue
        src, dst, proto, sport, dport, payload, seq = p
        a, b = (src, sport), (dst, dport)
        key = (proto,) + tuple(sorted([a, b]))
        if key not in first_dir:
            first_dir[key] = a
        if not payload:
            continue
        if proto == 6:
            tag = (key, a, seq, len(payload))
            if tag in seen:
                continue  # retransmission
            seen.add(tag)
        to_server = first_dir[key] == a
        out.setdefault(key, []).append((to_server, payload))
    return out


def server_port(key, pkts):
    (_, (_, p1), (_, p2)) = key
    known = {21, 69, 139, 445, 990, 20}
    for p in (p1, p2):
        if p in known:
            return p
    return min(p1, p2)


def probe_head(proto, port):
    want_l4 = 0 if proto == 6 else 1
    idx = PROBE_PORTS.index(port) if port in PROBE_PORTS else 7
    for head in range(64, 256):
        if head % 3 == want_l4 and (head >> 2) % len(PROBE_PORTS) == idx and head % 11 >= 4:
            return head
    return want_l4


def proto_seeds(seeds, frames):
    for key, pkts in flows(frames).items():
        proto = key[0]
        port = server_port(key, pkts)
        first = pkts[0][1]
        # probes: the head byte, then <=127-byte pieces (bit 7 = to client).
        buf = bytearray([probe_head(proto, port)])
        for to_server, payload in pkts[:6]:
            for i in range(0, len(payload), 127):
                piece = payload[i : i + 127]
                buf += bytes([len(piece) | (0 if to_server else 0x80)]) + piece
        seeds.add("probes", buf)
        if proto == 6 and (port == 21 or first.startswith(b"220")):
            # Windows of the control session, so later commands fit under max_len too.
            for start in range(0, len(pkts), 4):
                buf = bytearray()
                for to_server, payload in pkts[start:]:
                    for i in range(0, len(payload), 63):
                        piece = payload[i : i + 63]
                        buf += bytes([(len(piece) << 2) | (0 if to_server else 1)]) + piece
                    if len(buf) > MAX_LEN["ftp"]:
                        break
                seeds.add("ftp", buf)
        if proto == 6 and port in (139, 445):
            # Windows of the connection (TREE_CONNECT, CREATE, WRITE … sit past the first
            # few kilobytes), and each small message alone.
            for start in range(0, min(len(pkts), 200), 3):
                buf = bytearray()
                for to_server, payload in pkts[start:]:
                    for i in range(0, len(payload), 8191):
                        piece = payload[i : i + 8191]
                        a = ((len(piece) >> 8) << 3) | (0 if to_server else 1)
                        buf += bytes([a, len(piece) & 0xFF]) + piece
                    if len(buf) > MAX_LEN["smb"]:
                        break
                seeds.add("smb", buf)
            for to_server, payload in pkts[:60]:
                if len(payload) <= 1024:
                    a = ((len(payload) >> 8) << 3) | (0 if to_server else 1)
                    seeds.add("smb", bytes([a, len(payload) & 0xFF]) + payload)
    tftp_seeds(seeds, frames)


def tftp_seeds(seeds, frames):
    """A transfer per request to port 69: the request, then the packets of its client port."""
    reqs = {}
    for _, _, f, _ in frames:
        split = ether_split(f)
        p = l4(split[1], split[0]) if split else None
        if p is None or p[2] != 17:
            continue
        src, dst, _, sport, dport, payload, _ = p
        if dport == 69 and payload[:2] in (b"\x00\x01", b"\x00\x02"):
            reqs[(src, sport)] = [payload, bytearray()]
            seeds.add("tftp", payload)
            continue
        for client, from_server in (((src, sport), False), ((dst, dport), True)):
            r = reqs.get(client)
            if r is not None and len(r[1]) < MAX_LEN["tftp"]:
                hdr = len(payload) | (0x8000 if from_server else 0)
                r[1] += struct.pack(">H", hdr) + payload
    for req, pkts in reqs.values():
        seeds.add("tftp", bytes([len(req)]) + req + pkts)
        seeds.add("tftp", b"\x00" + pkts)


def config_seeds(seeds, tomls):
    for path in tomls:
        text = open(path, "rb").read()
        seeds.add("config", text)
        # Without comments, and each [section] alone: small inputs mutate faster and the
        # parser's time goes to keys and values rather than prose.
        bare = [ln for ln in text.splitlines(keepends=True) if not ln.lstrip().startswith(b"#")]
        seeds.add("config", b"".join(bare))
        section = bytearray()
        for line in bare:
            if line.startswith(b"[") and section.strip():
                seeds.add("config", section)
                section = bytearray()
            section += line
        seeds.add("config", section)


def main():
    root, out = sys.argv[1], sys.argv[2]
    seeds = Seeds(out)
    pcaps = sorted(
        os.path.join(d, n)
        for d in (os.path.join(root, "pcaps"), os.path.join(root, "pcaps", "real"))
        if os.path.isdir(d)
        for n in os.listdir(d)
        if n.endswith(".pcap")
    )
    for path in pcaps:
        parsed = read_pcap(path)
        if parsed is None:
            print(f"seed: skipping {path}: not a classic pcap", file=sys.stderr)
            continue
        linktype, frames, _, e = parsed
        decode_seeds(seeds, frames)
        capture_seeds(seeds, linktype, frames, e)
        proto_seeds(seeds, frames)
    tomls = [os.path.join(root, "sensor.toml")]
    tomls += sorted(
        os.path.join(root, "pcaps", n) for n in os.listdir(os.path.join(root, "pcaps"))
        if n.endswith(".toml")
    )
    config_seeds(seeds, tomls)
    for t in sorted(MAX_LEN):
        print(f"seed: {t}: {seeds.counts[t]} new files in {os.path.join(out, t)}")


if __name__ == "__main__":
    main()
