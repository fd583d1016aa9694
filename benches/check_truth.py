#!/usr/bin/env python3
"""Checks a sensor run against the generator's own record of what it wrote.

    benches/check_truth.py EVE.json CAPTURE.truth.json

Speed must never be bought with misses: every file-transfer session the generator put in
(FTP and FTPS, SMB, TFTP), every linked data channel, and every planted mismatch (as an
alert with the expected rule on the same client and server endpoints) must be in the EVE
output. Prints one summary line; exits 1 on any miss.
"""
import collections
import json
import sys


def main(eve_path, truth_path):
    truth = json.load(open(truth_path))
    summary = truth["summary"]
    sessions = collections.Counter()
    linked = 0
    alerts = set()
    for line in open(eve_path):
        r = json.loads(line)
        kind = r["event_type"]
        if kind == "session":
            proto = r["session"]["protocol"]
            # The generator counts explicit and implicit FTPS as FTP sessions.
            sessions["ftp" if proto == "ftps" else proto] += 1
        elif kind == "flow" and str(r.get("app_proto_expected", "")).endswith("-data"):
            linked += 1
        elif kind == "alert":
            alerts.add((r["xfer"]["rule"], r["src_ip"], r["src_port"], r["dest_ip"], r["dest_port"]))
    misses = []
    for proto, want in summary["sessions"].items():
        if sessions[proto] < want:
            misses.append(f"{proto} sessions: {sessions[proto]} of {want}")
    if linked < summary["linked_data_flows"]:
        misses.append(f"linked data channels: {linked} of {summary['linked_data_flows']}")
    found = 0
    for m in truth["mismatch_flows"]:
        key = (m["expected_verdict"], m["client_ip"], m["client_port"], m["server_ip"], m["server_port"])
        if key in alerts:
            found += 1
        else:
            misses.append(f"mismatch {key}")
    planted = sum(summary["verdicts"].values())
    if found < planted:
        misses.append(f"mismatch alerts: {found} of {planted}")
    total = sum(summary["sessions"].values())
    print(f"truth: {sum(sessions.values())}/{total} sessions, {linked}/{summary['linked_data_flows']} "
          f"linked data channels, {found}/{planted} mismatches found")
    for m in misses[:20]:
        print("MISSED:", m, file=sys.stderr)
    return 1 if misses else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2]))
