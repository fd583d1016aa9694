#!/usr/bin/env python3
"""Times several sensor builds (and the libpcap loop) on one capture, back to back.

Usage: benches/compare_builds.py CAPTURE NAME=BINARY [NAME=BINARY ...]
Each binary runs 5 times as `BINARY -r CAPTURE -o /dev/null`; the libpcap loop
(target/release/examples/pcap_loop) runs as the baseline. Prints min/median wall time and
min/median CPU time (user+sys, from wait4) per build.
"""
import os
import subprocess
import sys
import time

RUNS = 5


def measure(cmd):
    walls, cpus = [], []
    for _ in range(RUNS):
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        walls.append(time.perf_counter() - t0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"{cmd} failed with status {status}")
        cpus.append(ru.ru_utime + ru.ru_stime)
    walls.sort()
    cpus.sort()
    return walls[0], walls[RUNS // 2], cpus[0], cpus[RUNS // 2]


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cap = sys.argv[1]
    builds = [("libpcap loop", ["target/release/examples/pcap_loop", cap])]
    for arg in sys.argv[2:]:
        name, binary = arg.split("=", 1)
        builds.append((name, [binary, "-r", cap, "-o", "/dev/null"]))
    print(f"load average: {os.getloadavg()[0]:.2f}")
    for name, cmd in builds:
        wmin, wmed, cmin, cmed = measure(cmd)
        print(f"{name:28s} wall min {wmin:.3f} s med {wmed:.3f} s   cpu min {cmin:.3f} s med {cmed:.3f} s")


if __name__ == "__main__":
    main()
