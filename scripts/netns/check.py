#!/usr/bin/env python3
"""Checks that the lab captures hold what record.sh meant to record.

For each pcap under DIR (default pcaps/real) whose scenario is known: the expected control,
data and transfer flows exist, every TCP flow was seen in both directions from SYN to FIN,
the data channels carry exactly the file sizes the scenarios send (TLS ones at least that),
the TFTP transfers come from a server port other than 69, and SMB is clear (SMB2 headers) or
encrypted (transform headers) as intended. Prints one line per check; exits 1 on a failure.

usage: check.py [DIR]
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flows import flow_table, frames, parse  # noqa: E402

MIB15 = 1572864
failures = 0


def ok(cond, what):
    global failures
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures += 1


def port(fl, side):
    return fl[side][1]


def tcp_data(flows, ctrl_port):
    """TCP flows other than the control connection(s), which use ctrl_port."""
    return [f for f in flows if f["proto"] == "tcp" and ctrl_port not in (port(f, "initiator"), port(f, "responder"))]


def common_tcp(name, flows):
    for f in flows:
        if f["proto"] != "tcp":
            continue
        ok(f["pkts"][0] > 0 and f["pkts"][1] > 0 and "S" in f["flags"] and "F" in f["flags"],
           f"{name}: tcp {f['initiator'][1]}->{f['responder'][1]} both directions, SYN and FIN")
        ok(f["retx"] == 0, f"{name}: tcp {f['initiator'][1]}->{f['responder'][1]} no retransmissions")


def smb_markers(path):
    clear = enc = 0
    for frame in frames(path):
        p = parse(frame)
        if p is None or p[0] != "tcp" or 445 not in (p[2], p[4]):
            continue
        clear += p[8].count(b"\xfeSMB")
        enc += p[8].count(b"\xfdSMB")
    return clear, enc


def check(name, path):
    flows = flow_table(path)
    common_tcp(name, flows)
    ctrl = [f for f in flows if f["proto"] == "tcp" and port(f, "responder") in (21, 990)]
    data = tcp_data(flows, 990 if name == "ftps-implicit" else 21)
    if name in ("ftp-passive-upload-external", "ftp-internal-upload"):
        server = "198.51.100.20" if "external" in name else "10.30.0.20"
        ok(len(ctrl) == 1, f"{name}: one control session")
        ok(len(data) == 2 and all(port(f, "responder") > 1023 for f in data),
           f"{name}: two passive data channels (STOR, LIST) to server high ports")
        up = [f for f in data if f["payload"] == (MIB15, 0)]
        ok(len(up) == 1 and str(up[0]["responder"][0]) == server,
           f"{name}: STOR channel carries {MIB15} bytes client->{server}")
    elif name == "ftp-active-download-external":
        ok(len(ctrl) == 1, f"{name}: one control session")
        ok(len(data) == 2 and all(port(f, "initiator") == 20 for f in data),
           f"{name}: two active data channels opened by the server from port 20")
        ok(any(f["payload"] == (300000, 0) for f in data), f"{name}: RETR channel carries 300000 bytes server->client")
    elif name == "ftp-epsv-ipv6":
        ok(len(ctrl) == 1 and ctrl[0]["initiator"][0].version == 6, f"{name}: one IPv6 control session")
        ok(sorted(f["payload"] for f in data) == [(0, 300000), (300000, 0)],
           f"{name}: EPSV channels carry 300000 up and 300000 down")
    elif name in ("ftps-explicit", "ftps-implicit"):
        size = 300000 if name == "ftps-explicit" else 200000
        ok(len(ctrl) == 1, f"{name}: one control session")
        ok(any(f["payload"][0] > size for f in data), f"{name}: a TLS data channel carries more than {size} bytes up")
    elif name == "tftp-put-get":
        reqs = [f for f in flows if f["proto"] == "udp" and port(f, "responder") == 69]
        xfers = [f for f in flows if f["proto"] == "udp" and port(f, "initiator") != 69 and port(f, "responder") != 69]
        ok(len(reqs) == 4, f"{name}: four requests to port 69")
        ok(len(xfers) == 4 and all(str(f["initiator"][0]) == "198.51.100.20" for f in xfers),
           f"{name}: four transfer flows opened by the server from ephemeral ports")
        # (client->server, server->client) payload: DATA is 4 + block, ACK 4, OACK as sent.
        want = sorted([(206404, 1608), (1564, 201564), (200564, 602), (580, 205414)])
        got = sorted((f["payload"][1], f["payload"][0]) for f in xfers)
        ok(got == want, f"{name}: transfer payloads {got} == {want}")
    elif name in ("smb2-put-get", "smb3-encrypted"):
        smb = [f for f in flows if f["proto"] == "tcp" and port(f, "responder") == 445]
        ok(len(smb) == 1, f"{name}: one SMB connection to 445")
        clear, enc = smb_markers(path)
        if name == "smb2-put-get":
            ok(smb and smb[0]["payload"][0] > 512000 and smb[0]["payload"][1] > 500000,
               f"{name}: more than 512000 bytes up and 500000 down")
            ok(clear > 0 and enc == 0, f"{name}: SMB2 headers in clear ({clear}), no transform headers")
        else:
            ok(smb and smb[0]["payload"][0] > 200000, f"{name}: more than 200000 bytes up")
            ok(enc > 0, f"{name}: SMB3 transform headers present ({enc}; {clear} clear headers before encryption)")
    else:
        print(f"skip {name}: no expectations")


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../pcaps/real")
    names = sorted(f for f in os.listdir(d) if f.endswith(".pcap"))
    if not names:
        raise SystemExit(f"no pcap files in {d}")
    for f in names:
        check(f[: -len(".pcap")], os.path.join(d, f))
    print(f"{failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
