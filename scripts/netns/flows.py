#!/usr/bin/env python3
"""Per-flow summary of a classic pcap file (Ethernet, IPv4/IPv6, TCP/UDP), standard library only.

Prints one TSV line per bidirectional TCP or UDP flow (other packets, such as the ICMPv6
neighbour discovery a capture also holds, are skipped), in order of first packet: protocol, initiator
(the endpoint that sent the flow's first packet) and responder, packets and payload bytes
each way, TCP retransmitted payload bytes, and which of SYN/FIN/RST were seen. The payload
counts are the ground truth pcaps/real/README.md quotes; check.py asserts on them.

usage: flows.py FILE.pcap [FILE.pcap ...]
"""

import ipaddress
import struct
import sys


def frames(path):
    with open(path, "rb") as f:
        head = f.read(24)
        magic = head[:4]
        if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
            endian = "<"
        elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
            endian = ">"
        else:
            raise SystemExit(f"{path}: not a classic pcap file")
        linktype = struct.unpack(endian + "I", head[20:24])[0]
        if linktype != 1:
            raise SystemExit(f"{path}: link type {linktype}, only Ethernet (1) is handled")
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            _, _, caplen, _ = struct.unpack(endian + "IIII", rec)
            yield f.read(caplen)


def parse(frame):
    """Returns (proto, src, sport, dst, dport, payload_len, seq, flags, payload) or None."""
    if len(frame) < 14:
        return None
    ethertype = struct.unpack("!H", frame[12:14])[0]
    off = 14
    while ethertype in (0x8100, 0x88A8) and len(frame) >= off + 4:
        ethertype = struct.unpack("!H", frame[off + 2 : off + 4])[0]
        off += 4
    ip = frame[off:]
    if ethertype == 0x0800 and len(ip) >= 20:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        proto = ip[9]
        src, dst = ipaddress.ip_address(ip[12:16]), ipaddress.ip_address(ip[16:20])
        l4 = ip[ihl:total]
    elif ethertype == 0x86DD and len(ip) >= 40:
        plen = struct.unpack("!H", ip[4:6])[0]
        proto = ip[6]
        src, dst = ipaddress.ip_address(ip[8:24]), ipaddress.ip_address(ip[24:40])
        l4 = ip[40 : 40 + plen]
    else:
        return None
    if proto == 6 and len(l4) >= 20:
        sport, dport, seq = struct.unpack("!HHI", l4[:8])
        doff = (l4[12] >> 4) * 4
        return ("tcp", src, sport, dst, dport, len(l4) - doff, seq, l4[13], l4[doff:])
    if proto == 17 and len(l4) >= 8:
        sport, dport = struct.unpack("!HH", l4[:4])
        return ("udp", src, sport, dst, dport, len(l4) - 8, None, 0, l4[8:])
    return None


def flow_table(path):
    """Flows of one file in order of first packet, each a dict (see the module doc)."""
    flows = {}
    order = []
    for frame in frames(path):
        p = parse(frame)
        if p is None:
            continue
        proto, src, sport, dst, dport, plen, seq, flags, _ = p
        key = (proto, src, sport, dst, dport)
        rkey = (proto, dst, dport, src, sport)
        if key in flows:
            fl, d = flows[key], 0
        elif rkey in flows:
            fl, d = flows[rkey], 1
        else:
            fl = {"pkts": [0, 0], "bytes": [0, 0], "retx": 0, "seen": [set(), set()], "flags": ""}
            flows[key] = fl
            order.append(key)
            d = 0
        fl["pkts"][d] += 1
        fl["bytes"][d] += plen
        if seq is not None and plen > 0:
            if (seq, plen) in fl["seen"][d]:
                fl["retx"] += plen
            fl["seen"][d].add((seq, plen))
        for bit, name in ((0x02, "S"), (0x01, "F"), (0x04, "R")):
            if flags & bit and name not in fl["flags"]:
                fl["flags"] += name
    out = []
    for key in order:
        proto, src, sport, dst, dport = key
        fl = flows[key]
        out.append(
            {
                "proto": proto,
                "initiator": (src, sport),
                "responder": (dst, dport),
                "pkts": tuple(fl["pkts"]),
                "payload": tuple(fl["bytes"]),
                "retx": fl["retx"],
                "flags": fl["flags"] or "-",
            }
        )
    return out


def endpoint(ep):
    addr, port = ep
    return f"[{addr}]:{port}" if addr.version == 6 else f"{addr}:{port}"


def summarize(path):
    print("proto\tinitiator\tresponder\tpkts_i2r\tpkts_r2i\tpayload_i2r\tpayload_r2i\tretx_bytes\tflags")
    for fl in flow_table(path):
        print(
            f"{fl['proto']}\t{endpoint(fl['initiator'])}\t{endpoint(fl['responder'])}"
            f"\t{fl['pkts'][0]}\t{fl['pkts'][1]}\t{fl['payload'][0]}\t{fl['payload'][1]}"
            f"\t{fl['retx']}\t{fl['flags']}"
        )


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for i, path in enumerate(sys.argv[1:]):
        if len(sys.argv) > 2:
            print(("" if i == 0 else "\n") + f"# {path}")
        summarize(path)


if __name__ == "__main__":
    main()
