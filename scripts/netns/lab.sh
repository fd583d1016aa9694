#!/usr/bin/env bash
# Network-namespace lab for recording and live-testing file-transfer traffic.
#
#   xw-client  10.20.0.10/24  fd00:20::10/64      internal host (the clients run here)
#      | xw-c0 <-> xw-r0                           <- capture point: sees both directions
#   xw-router  10.20.0.1  198.51.100.1  10.30.0.1  forwards between its own veths only
#      | xw-r1 <-> xw-e0              | xw-r2 <-> xw-i0
#   xw-ext     198.51.100.20/24       xw-int     10.30.0.20/24
#              2001:db8:20::20/64                fd00:30::20/64
#              ("external" servers on documentation addresses)
#
# Every namespace, veth and route is the lab's own: nothing is attached to the host's
# namespace, no namespace has a default route, and there is no NAT. Forwarding is switched on
# only inside xw-router (a per-namespace sysctl). Offloads are switched off on every veth so
# a capture holds wire-sized frames with correct checksums, as a SPAN port would.
#
# Usage: lab.sh up | down | status | exec NS CMD...   (NS: client|router|ext|int or xw-*)
# `up` and `down` are idempotent; `up` first removes leftovers of an earlier run.
set -euo pipefail

readonly PREFIX=xw-
readonly NAMESPACES=(xw-client xw-router xw-ext xw-int)
# Interface the sensor (or tcpdump) captures on, inside xw-router.
readonly CAPTURE_NS=xw-router
readonly CAPTURE_IF=xw-r0

die() { echo "lab.sh: $*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "must run as root (network namespaces)"
  command -v ip >/dev/null 2>&1 || die "iproute2 (ip) is not installed"
}

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

ns_name() {
  case "$1" in
    client | router | ext | int) echo "${PREFIX}$1" ;;
    xw-client | xw-router | xw-ext | xw-int) echo "$1" ;;
    *) die "unknown namespace '$1' (client, router, ext, int)" ;;
  esac
}

# Kills, by PID, every process still running inside one of the lab's namespaces. They can
# only be processes started for the lab (servers, clients, captures).
kill_ns_pids() {
  local ns=$1 pids pid
  pids=$(ip netns pids "$ns" 2>/dev/null || true)
  [ -n "$pids" ] || return 0
  for pid in $pids; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [ -n "$pids" ] || return 0
    sleep 0.2
  done
  for pid in $pids; do kill -KILL "$pid" 2>/dev/null || true; done
}

lab_down() {
  local ns link
  for ns in "${NAMESPACES[@]}"; do
    if [ -e "/run/netns/$ns" ]; then
      kill_ns_pids "$ns"
      ip netns del "$ns"
    fi
  done
  # A crash between `ip link add` and the move into a namespace could leave a veth end in
  # the host namespace; only links with the lab's own prefix are touched.
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^${PREFIX}" || true); do
    ip link del "$link" 2>/dev/null || true
  done
}

# veth A (in namespace NA) <-> B (in NB), both created directly inside their namespaces.
veth() {
  local a=$1 na=$2 b=$3 nb=$4 dev
  ip link add "$a" netns "$na" type veth peer name "$b" netns "$nb"
  for dev in "$na:$a" "$nb:$b"; do
    local ns=${dev%%:*} ifc=${dev#*:}
    if command -v ethtool >/dev/null 2>&1; then
      nsx "$ns" ethtool -K "$ifc" tx off rx off tso off gso off gro off >/dev/null 2>&1 || true
    fi
    nsx "$ns" ip link set "$ifc" up
  done
}

addr() { nsx "$1" ip addr add "$3" dev "$2" ${4:+$4}; }

lab_up() {
  lab_down
  local ns
  for ns in "${NAMESPACES[@]}"; do
    ip netns add "$ns"
    nsx "$ns" ip link set lo up
    # No router advertisements exist here, but make sure none could install routes; skip
    # duplicate address detection so IPv6 works as soon as the links are up.
    nsx "$ns" sysctl -qw net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
      net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  done

  veth xw-c0 xw-client xw-r0 xw-router
  veth xw-r1 xw-router xw-e0 xw-ext
  veth xw-r2 xw-router xw-i0 xw-int

  addr xw-client xw-c0 10.20.0.10/24
  addr xw-client xw-c0 fd00:20::10/64 nodad
  addr xw-router xw-r0 10.20.0.1/24
  addr xw-router xw-r0 fd00:20::1/64 nodad
  addr xw-router xw-r1 198.51.100.1/24
  addr xw-router xw-r1 2001:db8:20::1/64 nodad
  addr xw-router xw-r2 10.30.0.1/24
  addr xw-router xw-r2 fd00:30::1/64 nodad
  addr xw-ext xw-e0 198.51.100.20/24
  addr xw-ext xw-e0 2001:db8:20::20/64 nodad
  addr xw-int xw-i0 10.30.0.20/24
  addr xw-int xw-i0 fd00:30::20/64 nodad

  # Forwarding inside the router namespace only; it has no other interfaces.
  nsx xw-router sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

  # Specific routes only, each toward the lab router: no default routes anywhere.
  nsx xw-client ip route add 198.51.100.0/24 via 10.20.0.1
  nsx xw-client ip route add 10.30.0.0/24 via 10.20.0.1
  nsx xw-client ip -6 route add 2001:db8:20::/64 via fd00:20::1
  nsx xw-client ip -6 route add fd00:30::/64 via fd00:20::1
  nsx xw-ext ip route add 10.20.0.0/24 via 198.51.100.1
  nsx xw-ext ip -6 route add fd00:20::/64 via 2001:db8:20::1
  nsx xw-int ip route add 10.20.0.0/24 via 10.30.0.1
  nsx xw-int ip -6 route add fd00:20::/64 via fd00:30::1

  # Resolve neighbours now, so the first capture does not start with ARP/ND noise. The
  # links need a moment before IPv6 neighbour discovery answers: bounded retries.
  for _ in 1 2 3 4 5; do
    lab_ping >/dev/null && return 0
    sleep 1
  done
  lab_ping >&2 || die "lab is up but not every server address answers"
}

# One ping to each server address from the client; exits non-zero if one is unreachable.
lab_ping() {
  local dst fail=0
  for dst in 198.51.100.20 10.30.0.20; do
    nsx xw-client ping -c1 -W2 -q "$dst" >/dev/null 2>&1 || { echo "unreachable: $dst"; fail=1; }
  done
  for dst in 2001:db8:20::20 fd00:30::20; do
    nsx xw-client ping -6 -c1 -W2 -q "$dst" >/dev/null 2>&1 || { echo "unreachable: $dst"; fail=1; }
  done
  [ "$fail" -eq 0 ] && echo "reachable: all lab servers"
  return "$fail"
}

lab_status() {
  local ns up=0
  for ns in "${NAMESPACES[@]}"; do
    if [ -e "/run/netns/$ns" ]; then
      up=$((up + 1))
      echo "== $ns  (pids: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' '))"
      nsx "$ns" ip -brief addr show | grep -v '^lo '
    else
      echo "== $ns  (absent)"
    fi
  done
  echo "capture point: ip netns exec $CAPTURE_NS ... -i $CAPTURE_IF"
  if [ "$up" -eq "${#NAMESPACES[@]}" ]; then lab_ping; else return 1; fi
}

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case "$cmd" in
    up) need_root; lab_up; echo "lab up; capture point: $CAPTURE_NS/$CAPTURE_IF" ;;
    down) need_root; lab_down ;;
    status) need_root; lab_status ;;
    exec)
      need_root
      [ $# -ge 2 ] || die "usage: lab.sh exec NS CMD..."
      local ns
      ns=$(ns_name "$1"); shift
      exec ip netns exec "$ns" "$@"
      ;;
    *) die "usage: lab.sh up | down | status | exec NS CMD..." ;;
  esac
}

main "$@"
