#!/usr/bin/env bash
# Servers and client scenarios for the namespace lab built by lab.sh.
#
#   scenarios.sh install           install the Debian packages below if any is missing
#   scenarios.sh start             write configs and data under $XW_RUN, start every server
#   scenarios.sh stop              stop the servers started by `start` (by their PIDs)
#   scenarios.sh list              scenario names, one per line
#   scenarios.sh run NAME...       run client scenarios (lab up and servers started)
#   scenarios.sh versions          dpkg-query versions of the software used
#
# $XW_RUN (default /tmp/xw-lab) holds server configs, data, logs, PID files and the client's
# files. It is the lab's own directory: `start` deletes what an earlier run left there.
# Nothing is written under /etc; the servers run in the foreground with their own config
# files. File contents come from AES-128-CTR keyed by the file name, so every run sends the
# same bytes, of the same sizes, as the README of pcaps/real describes.
#
# Servers (in xw-ext, "external", documentation addresses; and in xw-int, internal):
#   xw-ext  198.51.100.20:21     vsftpd, anonymous, explicit FTPS (AUTH TLS) offered
#   xw-ext  198.51.100.20:990    vsftpd, implicit FTPS
#   xw-ext  [2001:db8:20::20]:21 vsftpd, anonymous
#   xw-ext  198.51.100.20:69/udp in.tftpd (tftpd-hpa), uploads allowed
#   xw-ext  198.51.100.20:445    smbd, share "vault", encryption required
#   xw-int  10.30.0.20:21        vsftpd, anonymous
#   xw-int  10.30.0.20:445       smbd, share "share", encryption off
# Clients run in xw-client (10.20.0.10, fd00:20::10), every one under `timeout`.
set -euo pipefail

XW_RUN=${XW_RUN:-/tmp/xw-lab}
readonly EXT4=198.51.100.20 EXT6=2001:db8:20::20 INT4=10.30.0.20
readonly SMB_USER=root SMB_PASS=xwlab-pass
readonly CLIENT_TIMEOUT=60
readonly PACKAGES=(vsftpd tftpd-hpa tftp-hpa samba smbclient lftp tcpdump curl openssl ethtool
  iproute2 iputils-ping)

# Scenario name -> function; also the order `record.sh` runs them in.
readonly SCENARIOS=(
  ftp-passive-upload-external
  ftp-active-download-external
  ftp-epsv-ipv6
  ftp-internal-upload
  ftps-explicit
  ftps-implicit
  tftp-put-get
  smb2-put-get
  smb3-encrypted
)

die() { echo "scenarios.sh: $*" >&2; exit 1; }
log() { echo "scenarios.sh: $*" >&2; }
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
# A client command in xw-client, bounded in time.
client() { nsx xw-client timeout "$CLIENT_TIMEOUT" "$@"; }

# ---------------------------------------------------------------------------------------------
# Install

xw_install() {
  local need=() pkg
  for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed' ||
      need+=("$pkg")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "need root to install: ${need[*]}"
  log "installing ${need[*]}"
  # The packages' maintainer scripts would start smbd, vsftpd and in.tftpd in the host's
  # namespace. A temporary policy-rc.d forbids that (unless one already exists).
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made_policy=1
  fi
  local rc=0
  {
    apt-get update -qq &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
  } >/dev/null 2>&1 || rc=$?
  [ "$made_policy" -eq 1 ] && rm -f "$policy"
  [ "$rc" -eq 0 ] || die "apt-get install ${need[*]} failed ($rc)"
}

xw_versions() {
  dpkg-query -W "${PACKAGES[@]}" 2>/dev/null
}

# ---------------------------------------------------------------------------------------------
# Deterministic file content

# gen FILE SIZE: SIZE pseudo-random bytes, the same on every run for the same file name.
gen() {
  local file=$1 size=$2 key
  key=$(printf '%s' "$(basename "$file")" | sha256sum | cut -c1-32)
  head -c "$size" /dev/zero |
    openssl enc -aes-128-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000 >"$file"
  [ "$(stat -c %s "$file")" -eq "$size" ] || die "gen $file: wrong size"
}

# ---------------------------------------------------------------------------------------------
# Servers

pidfile_add() { echo "$1 $2" >>"$XW_RUN/pids"; }

# start_bg NS NAME CMD...: starts a foreground server in NS, logs in $XW_RUN/log/NAME.log.
# Each server gets its own session (setsid execs in place, so $! stays the server's PID):
# smbd with --no-process-group signals its whole process group when it stops, which would
# otherwise take down this script and whatever started it.
start_bg() {
  local ns=$1 name=$2
  shift 2
  ip netns exec "$ns" setsid "$@" >"$XW_RUN/log/$name.log" 2>&1 </dev/null &
  pidfile_add "$!" "$name"
}

vsftpd_conf() {
  local file=$1 root=$2 log=$3
  shift 3
  {
    cat <<EOF
# vsftpd for the xferwatch namespace lab (written by scenarios.sh)
background=NO
anonymous_enable=YES
no_anon_password=NO
local_enable=NO
write_enable=YES
anon_upload_enable=YES
anon_mkdir_write_enable=YES
anon_other_write_enable=YES
anon_umask=022
anon_root=$root
connect_from_port_20=YES
secure_chroot_dir=$XW_RUN/empty
seccomp_sandbox=NO
xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
vsftpd_log_file=$log
syslog_enable=NO
tcp_wrappers=NO
EOF
    printf '%s\n' "$@"
  } >"$file"
}

smb_conf() {
  local file=$1 dir=$2 name=$3 share=$4 encrypt=$5
  mkdir -p "$dir"/{private,lock,state,cache,pid,ncalrpc,binddns,log} "$dir/$share"
  cat >"$file" <<EOF
# smbd for the xferwatch namespace lab (written by scenarios.sh)
[global]
  netbios name = $name
  workgroup = XWLAB
  server role = standalone server
  smb ports = 445
  disable netbios = yes
  private dir = $dir/private
  lock directory = $dir/lock
  state directory = $dir/state
  cache directory = $dir/cache
  pid directory = $dir/pid
  ncalrpc dir = $dir/ncalrpc
  binddns dir = $dir/binddns
  passdb backend = tdbsam:$dir/private/passdb.tdb
  log file = $dir/log/log.%m
  logging = file
  load printers = no
  printing = bsd
  printcap name = /dev/null
  disable spoolss = yes
  rpc start on demand helpers = no
  map to guest = never
  server smb encrypt = $encrypt

[$share]
  path = $dir/$share
  read only = no
EOF
  printf '%s\n%s\n' "$SMB_PASS" "$SMB_PASS" | smbpasswd -c "$file" -s -a "$SMB_USER" >/dev/null
}

# wait_listen NS PROTO PORT: bounded wait until something listens there.
wait_listen() {
  local ns=$1 proto=$2 port=$3 flag=-ltnH
  [ "$proto" = udp ] && flag=-lunH
  for _ in $(seq 50); do
    nsx "$ns" ss "$flag" "sport = :$port" 2>/dev/null | grep -q . && return 0
    sleep 0.1
  done
  die "nothing listens on $ns $proto/$port (see $XW_RUN/log/)"
}

xw_start() {
  if [ ! -e /run/netns/xw-ext ] || [ ! -e /run/netns/xw-int ]; then
    die "lab is not up (lab.sh up)"
  fi
  [ -s "$XW_RUN/pids" ] && xw_stop
  rm -rf "$XW_RUN"
  mkdir -p "$XW_RUN"/{log,empty,client,tls}
  chmod 755 "$XW_RUN" "$XW_RUN/empty"
  : >"$XW_RUN/pids"

  # Self-signed certificate for FTPS, made per run and never kept.
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=ftp.example.net" \
    -keyout "$XW_RUN/tls/key.pem" -out "$XW_RUN/tls/cert.pem" >/dev/null 2>&1

  # Anonymous FTP roots: the root itself must not be writable by the ftp user.
  local site
  for site in ext int; do
    mkdir -p "$XW_RUN/$site/ftp/incoming" "$XW_RUN/$site/ftp/pub"
    chmod 755 "$XW_RUN/$site" "$XW_RUN/$site/ftp" "$XW_RUN/$site/ftp/pub"
    chown ftp "$XW_RUN/$site/ftp/incoming"
  done
  gen "$XW_RUN/ext/ftp/pub/firmware-3.2.bin" 300000
  gen "$XW_RUN/ext/ftp/pub/dataset-v6.bin" 300000

  mkdir -p "$XW_RUN/ext/tftp"
  gen "$XW_RUN/ext/tftp/firmware.bin" 200000
  gen "$XW_RUN/ext/tftp/pxe-boot.img" 204800
  chmod 755 "$XW_RUN/ext/tftp"
  chown nobody "$XW_RUN/ext/tftp"
  chmod 644 "$XW_RUN/ext/tftp"/*

  local tls=(ssl_enable=YES allow_anon_ssl=YES force_anon_logins_ssl=NO force_anon_data_ssl=NO
    "rsa_cert_file=$XW_RUN/tls/cert.pem" "rsa_private_key_file=$XW_RUN/tls/key.pem"
    ssl_ciphers=HIGH)
  vsftpd_conf "$XW_RUN/ext/vsftpd-v4.conf" "$XW_RUN/ext/ftp" "$XW_RUN/log/vsftpd-ext-v4.xfer" \
    listen=YES listen_ipv6=NO "listen_address=$EXT4" "${tls[@]}"
  vsftpd_conf "$XW_RUN/ext/vsftpd-v6.conf" "$XW_RUN/ext/ftp" "$XW_RUN/log/vsftpd-ext-v6.xfer" \
    listen=NO listen_ipv6=YES "listen_address6=$EXT6"
  vsftpd_conf "$XW_RUN/ext/vsftpd-implicit.conf" "$XW_RUN/ext/ftp" \
    "$XW_RUN/log/vsftpd-ext-implicit.xfer" \
    listen=YES listen_ipv6=NO "listen_address=$EXT4" listen_port=990 implicit_ssl=YES \
    "${tls[@]}"
  vsftpd_conf "$XW_RUN/int/vsftpd.conf" "$XW_RUN/int/ftp" "$XW_RUN/log/vsftpd-int.xfer" \
    listen=YES listen_ipv6=NO "listen_address=$INT4"

  smb_conf "$XW_RUN/ext/smb.conf" "$XW_RUN/ext/samba" XWEXT vault required
  smb_conf "$XW_RUN/int/smb.conf" "$XW_RUN/int/samba" XWINT share off
  gen "$XW_RUN/int/samba/share/handbook.pdf" 500000

  # Client-side files.
  gen "$XW_RUN/client/export-2026.zip" 1572864
  gen "$XW_RUN/client/ipv6-export.tar" 300000
  gen "$XW_RUN/client/q3-financials.7z" 300000
  gen "$XW_RUN/client/mailbox.pst" 200000
  gen "$XW_RUN/client/backup-2026.tar.gz" 204800
  gen "$XW_RUN/client/logs-2026.7z" 200000
  gen "$XW_RUN/client/payroll-2026.xlsx" 512000
  gen "$XW_RUN/client/secrets-2026.kdbx" 200000

  start_bg xw-ext vsftpd-ext-v4 vsftpd "$XW_RUN/ext/vsftpd-v4.conf"
  start_bg xw-ext vsftpd-ext-v6 vsftpd "$XW_RUN/ext/vsftpd-v6.conf"
  start_bg xw-ext vsftpd-ext-implicit vsftpd "$XW_RUN/ext/vsftpd-implicit.conf"
  start_bg xw-int vsftpd-int vsftpd "$XW_RUN/int/vsftpd.conf"
  start_bg xw-ext tftpd-ext in.tftpd --foreground --listen --address "$EXT4:69" \
    --secure --create --user nobody "$XW_RUN/ext/tftp"
  start_bg xw-ext smbd-ext smbd --foreground --no-process-group --debug-stdout \
    -s "$XW_RUN/ext/smb.conf"
  start_bg xw-int smbd-int smbd --foreground --no-process-group --debug-stdout \
    -s "$XW_RUN/int/smb.conf"

  wait_listen xw-ext tcp 21
  wait_listen xw-ext tcp 990
  wait_listen xw-ext udp 69
  wait_listen xw-ext tcp 445
  wait_listen xw-int tcp 21
  wait_listen xw-int tcp 445
  log "servers up (state in $XW_RUN)"
}

# Stops the servers `start` recorded, by PID: TERM, a bounded wait, then KILL. A recorded PID
# is only signalled while it still lives in one of the lab's namespaces, so a stale PID file
# (the lab torn down, the number reused) cannot hit an unrelated process.
ours() { ip netns identify "$1" 2>/dev/null | grep -q '^xw-'; }

xw_stop() {
  [ -f "$XW_RUN/pids" ] || return 0
  local pid name alive
  while read -r pid name; do
    ours "$pid" && kill -TERM "$pid" 2>/dev/null
  done <"$XW_RUN/pids"
  for _ in $(seq 20); do
    alive=0
    while read -r pid name; do
      ours "$pid" && alive=1
    done <"$XW_RUN/pids"
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  while read -r pid name; do
    ours "$pid" && kill -KILL "$pid" 2>/dev/null
  done <"$XW_RUN/pids"
  : >"$XW_RUN/pids"
}

# ---------------------------------------------------------------------------------------------
# Scenarios: each runs its clients in xw-client and returns when they have finished.

C() { echo "$XW_RUN/client/$1"; }

# Passive (PASV, EPSV disabled) upload of 1.5 MiB to the external server, then LIST, in one
# control session.
scn_ftp_passive_upload_external() {
  client curl -sS --disable-epsv -T "$(C export-2026.zip)" "ftp://$EXT4/incoming/export-2026.zip" \
    --next -sS --disable-epsv -o /dev/null "ftp://$EXT4/incoming/"
}

# Active mode (PORT, EPRT disabled): LIST of pub/, then RETR of 300000 bytes.
scn_ftp_active_download_external() {
  client curl -sS -P 10.20.0.10 --disable-eprt -o /dev/null "ftp://$EXT4/pub/" \
    --next -sS -P 10.20.0.10 --disable-eprt -o "$(C firmware-3.2.bin)" \
    "ftp://$EXT4/pub/firmware-3.2.bin"
}

# IPv6, EPSV: upload 300000 bytes, then download 300000 bytes, one control session.
scn_ftp_epsv_ipv6() {
  client curl -sS -T "$(C ipv6-export.tar)" "ftp://[$EXT6]/incoming/ipv6-export.tar" \
    --next -sS -o "$(C dataset-v6.bin)" "ftp://[$EXT6]/pub/dataset-v6.bin"
}

# The passive upload again, to the internal server: no external peer.
scn_ftp_internal_upload() {
  client curl -sS --disable-epsv -T "$(C export-2026.zip)" "ftp://$INT4/incoming/export-2026.zip" \
    --next -sS --disable-epsv -o /dev/null "ftp://$INT4/incoming/"
}

# Explicit FTPS with lftp (GnuTLS): AUTH TLS, PBSZ 0, PROT P, PASV, TLS data channels;
# upload of 300000 bytes then LIST. (curl sends AUTH SSL, and over TLS 1.3 its uploads lose
# their tail: it closes without reading the server's session tickets, so the kernel resets.)
scn_ftps_explicit() {
  (cd "$XW_RUN/client" && client lftp -c "set ssl:verify-certificate no; set ftp:ssl-force yes;
    set ftp:ssl-protect-data yes; set ftp:passive-mode yes; set net:max-retries 1;
    set net:timeout 10; open -u anonymous, $EXT4; cd incoming; put q3-financials.7z; ls" \
    >/dev/null)
}

# Implicit FTPS on 990 with curl (OpenSSL): TLS from the first byte, EPSV, upload of 200000
# bytes. TLS 1.2, for the session-ticket reason above.
scn_ftps_implicit() {
  client curl -sS -k --tls-max 1.2 -T "$(C mailbox.pst)" "ftps://$EXT4/incoming/mailbox.pst"
}

# TFTP: tftp-hpa put and get (512-byte blocks, no options), then curl put and get with
# blksize 1428 (curl also sends tsize).
scn_tftp_put_get() {
  client tftp -m binary "$EXT4" -c put "$(C backup-2026.tar.gz)" backup-2026.tar.gz
  client tftp -m binary "$EXT4" -c get firmware.bin "$(C firmware.bin)"
  client curl -sS --tftp-blksize 1428 -T "$(C logs-2026.7z)" "tftp://$EXT4/logs-2026.7z"
  client curl -sS --tftp-blksize 1428 -o "$(C pxe-boot.img)" "tftp://$EXT4/pxe-boot.img"
}

smbclient_run() {
  local target=$1
  shift
  client smbclient "$target" -p 445 -U "$SMB_USER%$SMB_PASS" \
    --option='client use kerberos=off' "$@"
}

# SMB2/3 without encryption to the internal server: ls, put 512000, get 500000, ls.
scn_smb2_put_get() {
  (cd "$XW_RUN/client" && smbclient_run "//$INT4/share" --option='client smb encrypt=off' \
    -c 'ls; put payroll-2026.xlsx; get handbook.pdf; ls')
}

# SMB3 with encryption required, to the external server: put 200000 bytes, ls.
scn_smb3_encrypted() {
  (cd "$XW_RUN/client" && smbclient_run "//$EXT4/vault" --client-protection=encrypt \
    -c 'put secrets-2026.kdbx; ls')
}

xw_run() {
  local name fn
  for name in "$@"; do
    fn="scn_${name//-/_}"
    declare -F "$fn" >/dev/null || die "unknown scenario '$name' (see: scenarios.sh list)"
    log "scenario $name (client output: $XW_RUN/log/client-$name.log)"
    "$fn" >>"$XW_RUN/log/client-$name.log"
  done
}

# ---------------------------------------------------------------------------------------------

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case "$cmd" in
    install) xw_install ;;
    versions) xw_versions ;;
    start) xw_start ;;
    stop) xw_stop ;;
    list) printf '%s\n' "${SCENARIOS[@]}" ;;
    run) [ $# -ge 1 ] || die "usage: scenarios.sh run NAME..."; xw_run "$@" ;;
    *) die "usage: scenarios.sh install | versions | start | stop | list | run NAME..." ;;
  esac
}

# Sourcing the file (for the xw_* functions) runs nothing.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then main "$@"; fi
