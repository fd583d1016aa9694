//! One conversation (TCP connection or UDP flow), described as packets and written lazily.
//!
//! Builders append [`Spec`]s — time, flags, sequence numbers and a reference into a
//! [`Payload`] — so a flow costs ~40 bytes per packet until the mux renders each packet,
//! right before it is written. TCP follows RFC 9293 arithmetic: SYN and FIN take one
//! sequence number, data segments are at most one MSS (1448 bytes over IPv4 with the
//! timestamp option, 1428 over IPv6), the receiver ACKs every second full segment and the
//! end of each message (piggybacked on its reply when that comes within the delayed-ACK
//! time).

use std::net::IpAddr;

use anyhow::{Context, Result, bail};
use etherparse::{
    EtherType, Ethernet2Header, IpFragOffset, IpHeaders, IpNumber, Ipv4Header, Ipv6FlowLabel,
    Ipv6Header, PacketBuilder, TcpHeader, TcpOptionElement, VlanId,
};
use xferwatch::direction::Direction;
use xferwatch::time::Ts;

use crate::net::{self, Endpoint};
use crate::payload::Payload;
use crate::rng::Rng;
use crate::truth::{DirTruth, FlowMeta, FlowTruth};

/// TCP FIN flag.
const FIN: u8 = 0x01;
/// TCP SYN flag.
const SYN: u8 = 0x02;
/// TCP RST flag.
const RST: u8 = 0x04;
/// TCP PSH flag.
const PSH: u8 = 0x08;
/// TCP ACK flag.
const ACK: u8 = 0x10;

/// Linux's delayed-ACK timer: a reply sent sooner carries the ACK.
const DELAYED_ACK_US: u64 = 40_000;
/// Window scale both sides announce.
const WSCALE: u8 = 7;

/// A value per direction (no indexing by `Direction::index`, so no bounds to check).
#[derive(Debug, Clone, Copy, Default)]
pub struct PerDir<T> {
    /// Client to server.
    pub ts: T,
    /// Server to client.
    pub tc: T,
}

impl<T> PerDir<T> {
    /// Both values.
    pub const fn new(ts: T, tc: T) -> PerDir<T> {
        PerDir { ts, tc }
    }

    /// The value for `dir`.
    pub fn get(&self, dir: Direction) -> &T {
        match dir {
            Direction::ToServer => &self.ts,
            Direction::ToClient => &self.tc,
        }
    }

    /// The value for `dir`, mutably.
    pub fn get_mut(&mut self, dir: Direction) -> &mut T {
        match dir {
            Direction::ToServer => &mut self.ts,
            Direction::ToClient => &mut self.tc,
        }
    }
}

/// Path characteristics as seen from the sensor.
#[derive(Debug, Clone, Copy)]
pub struct Link {
    /// Round-trip time in microseconds.
    pub rtt_us: u64,
    /// Bottleneck rate, megabits per second (sets the gap between back-to-back segments).
    pub mbps: u64,
}

impl Link {
    /// A switched LAN: 0.4 ms, 1 Gbit/s.
    pub const LAN: Link = Link {
        rtt_us: 400,
        mbps: 1000,
    };
    /// An Internet path: 28 ms, 100 Mbit/s.
    pub const WAN: Link = Link {
        rtt_us: 28_000,
        mbps: 100,
    };
}

/// TCP or UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// One packet, before rendering.
#[derive(Debug, Clone, Copy)]
struct Spec {
    ts: u64,
    off: u64,
    seq: u32,
    ack: u32,
    chunk: u32,
    len: u32,
    flags: u8,
    dir: Direction,
    /// IPv4 fragment offset in 8-byte units, for a UDP datagram sent in pieces; `len` is
    /// then the fragment's share of the IP payload (the UDP header counts in the first).
    frag: Option<u16>,
}

/// The last data segment sent in a direction, kept so it can be retransmitted.
#[derive(Debug, Clone, Copy)]
struct Segment {
    seq: u32,
    chunk: u32,
    off: u64,
    len: u32,
}

/// How a TCP flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    Fin,
    Rst,
}

/// A conversation under construction, then being written.
pub struct Conv {
    id: u32,
    transport: Transport,
    client: Endpoint,
    server: Endpoint,
    vlan: Option<u16>,
    link: Link,
    now: u64,
    next_seq: PerDir<u32>,
    last_data_dir: Option<Direction>,
    pending_ack: Option<(Direction, u64)>,
    last_seg: PerDir<Option<Segment>>,
    chunks: Vec<Payload>,
    specs: Vec<Spec>,
    counts: PerDir<DirTruth>,
    end: End,
    /// What the flow should be identified as.
    pub meta: FlowMeta,
    // Rendering state.
    cursor: usize,
    ip_id: PerDir<u16>,
    ts_base: PerDir<u32>,
    last_tsval: PerDir<u32>,
}

impl Conv {
    /// A TCP connection from `client` to `server`; nothing is sent until a builder call.
    pub fn tcp(
        id: u32,
        client: Endpoint,
        server: Endpoint,
        start_us: u64,
        link: Link,
        rng: &mut Rng,
    ) -> Conv {
        Conv::new(id, Transport::Tcp, client, server, start_us, link, rng)
    }

    /// A UDP flow whose first datagram goes from `client` to `server`.
    pub fn udp(
        id: u32,
        client: Endpoint,
        server: Endpoint,
        start_us: u64,
        link: Link,
        rng: &mut Rng,
    ) -> Conv {
        Conv::new(id, Transport::Udp, client, server, start_us, link, rng)
    }

    fn new(
        id: u32,
        transport: Transport,
        client: Endpoint,
        server: Endpoint,
        start_us: u64,
        link: Link,
        rng: &mut Rng,
    ) -> Conv {
        Conv {
            id,
            transport,
            client,
            server,
            vlan: None,
            link,
            now: start_us,
            next_seq: PerDir::new(rng.next_u32(), rng.next_u32()),
            last_data_dir: None,
            pending_ack: None,
            last_seg: PerDir::default(),
            chunks: Vec::new(),
            specs: Vec::new(),
            counts: PerDir::default(),
            end: End::Open,
            meta: FlowMeta::default(),
            cursor: 0,
            ip_id: PerDir::new(rng.next_u32() as u16, rng.next_u32() as u16),
            ts_base: PerDir::new(rng.next_u32() >> 2, rng.next_u32() >> 2),
            last_tsval: PerDir::default(),
        }
    }

    /// Tags every frame with 802.1Q `vid`.
    pub fn with_vlan(mut self, vid: Option<u16>) -> Conv {
        self.vlan = vid;
        self
    }

    /// The flow id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The time of the last packet built so far (or the start time).
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Moves the clock forward to `t` (never back): the flow waits for another one.
    pub fn sync_to(&mut self, t: u64) {
        self.now = self.now.max(t);
    }

    /// Idles for `us` microseconds (user think time, server processing).
    pub fn wait(&mut self, us: u64) {
        self.now += us;
    }

    fn mss(&self) -> u32 {
        match self.client.ip {
            IpAddr::V4(_) => 1448,
            IpAddr::V6(_) => 1428,
        }
    }

    fn frame_len(&self, flags: u8, len: u32) -> u64 {
        let l2 = if self.vlan.is_some() { 18 } else { 14 };
        let l3 = match self.client.ip {
            IpAddr::V4(_) => 20,
            IpAddr::V6(_) => 40,
        };
        let l4 = match self.transport {
            Transport::Udp => 8,
            Transport::Tcp if flags & SYN != 0 => 40,
            Transport::Tcp => 32,
        };
        l2 + l3 + l4 + u64::from(len)
    }

    /// Serialisation time of a frame on the bottleneck, at least 1 µs.
    fn gap(&self, frame_len: u64) -> u64 {
        (frame_len * 8 / self.link.mbps.max(1)).max(1)
    }

    /// Appends one packet at time `at` (bumped to keep the flow's times strictly rising).
    fn push(&mut self, at: u64, dir: Direction, flags: u8, chunk: u32, off: u64, len: u32) {
        let ts = match self.specs.last() {
            Some(last) => at.max(last.ts + 1),
            None => at,
        };
        let frame_len = self.frame_len(flags, len);
        let seq = *self.next_seq.get(dir);
        let ack = if flags & ACK != 0 {
            *self.next_seq.get(dir.reverse())
        } else {
            0
        };
        self.specs.push(Spec {
            ts,
            off,
            seq,
            ack,
            chunk,
            len,
            flags,
            dir,
            frag: None,
        });
        let c = self.counts.get_mut(dir);
        c.pkts += 1;
        c.wire_bytes += frame_len;
        c.payload_bytes += u64::from(len);
        if self.transport == Transport::Tcp {
            let consumed = len + u32::from(flags & (SYN | FIN) != 0);
            let next = self.next_seq.get_mut(dir);
            *next = next.wrapping_add(consumed);
        }
        self.now = ts;
    }

    /// Emits the owed ACK no later than `before`, unless `sender` is about to send at or
    /// before it is due (then its next segment carries the ACK).
    fn settle_ack(&mut self, sender: Direction, before: u64) {
        if let Some((acker, due)) = self.pending_ack.take() {
            if acker == sender && before <= due {
                return;
            }
            self.push(due.min(before), acker, ACK, 0, 0, 0);
        }
    }

    /// SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) {
        let t = self.now;
        self.push(t, Direction::ToServer, SYN, 0, 0, 0);
        let t = self.now + self.link.rtt_us;
        self.push(t, Direction::ToClient, SYN | ACK, 0, 0, 0);
        let t = self.now + 30;
        self.push(t, Direction::ToServer, ACK, 0, 0, 0);
    }

    /// SYN and SYN-ACK answered by the client's RST: a connection attempt without payload.
    pub fn handshake_then_reset(&mut self) {
        let t = self.now;
        self.push(t, Direction::ToServer, SYN, 0, 0, 0);
        let t = self.now + self.link.rtt_us;
        self.push(t, Direction::ToClient, SYN | ACK, 0, 0, 0);
        let t = self.now + 40;
        self.push(t, Direction::ToServer, RST, 0, 0, 0);
        self.end = End::Rst;
    }

    /// Sends one application message from `dir`'s sender: TCP segments it by MSS, UDP
    /// sends it as one datagram.
    pub fn send(&mut self, dir: Direction, payload: Payload) {
        let turnaround = match self.last_data_dir {
            Some(d) if d == dir => 20,
            Some(_) => self.link.rtt_us / 2 + 150,
            // A UDP request goes out at the flow's start; TCP data follows the handshake.
            None if self.specs.is_empty() => 0,
            None => 200,
        };
        let start = self.now + turnaround;
        let chunk = self.chunks.len() as u32;
        let total = payload.len();
        self.chunks.push(payload);
        self.last_data_dir = Some(dir);
        if self.transport == Transport::Udp {
            self.push(start, dir, 0, chunk, 0, total as u32);
            return;
        }
        self.settle_ack(dir, start);
        let mss = u64::from(self.mss());
        let mut at = start.max(self.now);
        let mut off = 0u64;
        let mut unacked = 0u32;
        while off < total {
            let len = (total - off).min(mss) as u32;
            let last = off + u64::from(len) == total;
            let flags = if last { ACK | PSH } else { ACK };
            let seq = *self.next_seq.get(dir);
            self.push(at, dir, flags, chunk, off, len);
            *self.last_seg.get_mut(dir) = Some(Segment {
                seq,
                chunk,
                off,
                len,
            });
            at = self.now + self.gap(self.frame_len(flags, len));
            off += u64::from(len);
            unacked += 1;
            if unacked == 2 && !last {
                self.push(self.now + 8, dir.reverse(), ACK, 0, 0, 0);
                unacked = 0;
            }
        }
        if unacked > 0 {
            self.pending_ack = Some((
                dir.reverse(),
                self.now + DELAYED_ACK_US.min(self.link.rtt_us * 4 + 200),
            ));
        }
    }

    /// Sends the last data segment of `dir` again after a retransmission timeout; the
    /// receiver answers with a duplicate ACK. Sequence space does not move.
    pub fn retransmit_last(&mut self, dir: Direction) -> Result<()> {
        let Some(seg) = *self.last_seg.get(dir) else {
            bail!("flow {}: nothing to retransmit in {dir:?}", self.id);
        };
        let rto = (self.link.rtt_us * 2).max(200_000);
        self.settle_ack(dir.reverse(), self.now + rto);
        let at = self.now + rto;
        let saved = *self.next_seq.get(dir);
        *self.next_seq.get_mut(dir) = seg.seq;
        self.push(at, dir, ACK | PSH, seg.chunk, seg.off, seg.len);
        *self.next_seq.get_mut(dir) = saved;
        let c = self.counts.get_mut(dir);
        c.payload_bytes -= u64::from(seg.len);
        c.retransmitted_bytes += u64::from(seg.len);
        c.retransmitted_pkts += 1;
        let at = self.now + self.link.rtt_us / 2 + 10;
        self.push(at, dir.reverse(), ACK, 0, 0, 0);
        Ok(())
    }

    /// A lone SYN from the client that nothing answers (a scan or a SYN flood).
    pub fn syn_only(&mut self) {
        let t = self.now;
        self.push(t, Direction::ToServer, SYN, 0, 0, 0);
    }

    /// Sends pieces of one UDP datagram carrying `payload` as IPv4 fragments, in the order
    /// given. Each piece is `(start, len)` in bytes of the IP payload (UDP header included,
    /// so `start` must be a multiple of 8); pieces may overlap and need not cover the
    /// datagram: a flood of trains that never complete. IPv4 only; every piece carries
    /// identification `ip_id`, and the pieces are `gap_us` apart.
    pub fn send_fragments(
        &mut self,
        dir: Direction,
        payload: Payload,
        ip_id: u16,
        pieces: &[(u32, u32)],
        gap_us: u64,
    ) -> Result<()> {
        if self.transport != Transport::Udp || !self.client.ip.is_ipv4() {
            bail!("flow {}: fragments are built for IPv4 UDP only", self.id);
        }
        let total = 8 + payload.len();
        let chunk = self.chunks.len() as u32;
        self.chunks.push(payload);
        let mut at = self.now;
        for &(start, len) in pieces {
            if start % 8 != 0 || u64::from(start) + u64::from(len) > total || len == 0 {
                bail!("flow {}: bad fragment ({start}, {len})", self.id);
            }
            let ts = match self.specs.last() {
                Some(last) => at.max(last.ts + 1),
                None => at,
            };
            let frag = u16::try_from(start / 8).context("fragment offset")?;
            self.specs.push(Spec {
                ts,
                off: 0,
                // A fragment has no TCP sequence number: the field keeps its IP id.
                seq: u32::from(ip_id),
                ack: 0,
                chunk,
                len,
                flags: 0,
                dir,
                frag: Some(frag),
            });
            let wire = self.frag_frame_len(len);
            let c = self.counts.get_mut(dir);
            c.pkts += 1;
            c.wire_bytes += wire;
            // UDP payload bytes carried (the first piece also carries the UDP header).
            c.payload_bytes += u64::from(if start == 0 {
                len.saturating_sub(8)
            } else {
                len
            });
            self.now = ts;
            at = ts + gap_us;
        }
        Ok(())
    }

    /// Frame length of an IPv4 fragment carrying `len` bytes of IP payload.
    fn frag_frame_len(&self, len: u32) -> u64 {
        let l2 = if self.vlan.is_some() { 18 } else { 14 };
        l2 + 20 + u64::from(len)
    }

    /// Renders a fragment spec: Ethernet, an IPv4 header with MF set unless the piece
    /// ends the datagram, and the piece's bytes (the UDP header in the first piece).
    fn render_fragment(&self, spec: &Spec, frag: u16, frame: &mut Vec<u8>) -> Result<()> {
        let payload = self
            .chunks
            .get(spec.chunk as usize)
            .context("payload chunk")?;
        let total = 8 + payload.len();
        let (src, dst) = match spec.dir {
            Direction::ToServer => (self.client, self.server),
            Direction::ToClient => (self.server, self.client),
        };
        let (IpAddr::V4(s), IpAddr::V4(d)) = (src.ip, dst.ip) else {
            bail!("fragments are IPv4 only");
        };
        let start = u64::from(frag) * 8;
        let end = start + u64::from(spec.len);
        let mut body = Vec::with_capacity(spec.len as usize);
        if start == 0 {
            let udp_len = u16::try_from(total).context("datagram too long for UDP")?;
            for v in [src.port, dst.port, udp_len, 0] {
                body.extend_from_slice(&v.to_be_bytes());
            }
            payload.fill(0, spec.len.saturating_sub(8) as usize, &mut body);
        } else {
            payload.fill(start - 8, spec.len as usize, &mut body);
        }
        let mut ip = Ipv4Header {
            identification: spec.seq as u16,
            more_fragments: end < total,
            fragment_offset: IpFragOffset::try_new(frag)?,
            time_to_live: net::ttl(src.ip),
            protocol: IpNumber::UDP,
            total_len: u16::try_from(20 + body.len()).context("fragment too long")?,
            source: s.octets(),
            destination: d.octets(),
            ..Default::default()
        };
        ip.header_checksum = ip.calc_header_checksum();
        let eth = Ethernet2Header {
            source: net::mac(src.ip),
            destination: net::mac(dst.ip),
            ether_type: EtherType::IPV4,
        };
        if self.vlan.is_some() {
            bail!("fragments are built untagged");
        }
        eth.write(frame)?;
        ip.write(frame)?;
        frame.extend_from_slice(&body);
        Ok(())
    }

    /// Orderly close: `first` sends FIN, the peer answers FIN-ACK, `first` ACKs.
    pub fn close(&mut self, first: Direction) {
        let at = self.now + 60;
        self.settle_ack(first, at);
        self.push(at.max(self.now), first, FIN | ACK, 0, 0, 0);
        let at = self.now + self.link.rtt_us / 2 + 60;
        self.push(at, first.reverse(), FIN | ACK, 0, 0, 0);
        let at = self.now + self.link.rtt_us / 2 + 20;
        self.push(at, first, ACK, 0, 0, 0);
        self.end = End::Fin;
    }

    /// Abortive close: `from` sends RST-ACK.
    pub fn reset(&mut self, from: Direction) {
        let at = self.now + 80;
        self.settle_ack(from, at);
        self.push(at.max(self.now), from, RST | ACK, 0, 0, 0);
        self.end = End::Rst;
    }

    /// The truth record for this flow (call when building is complete).
    pub fn truth(&self) -> FlowTruth {
        let ts = |us: u64| Ts(us * 1000).eve();
        let first = self.specs.first().map_or(self.now, |s| s.ts);
        let last = self.specs.last().map_or(self.now, |s| s.ts);
        let m = &self.meta;
        FlowTruth {
            id: self.id,
            transport: match self.transport {
                Transport::Tcp => "tcp",
                Transport::Udp => "udp",
            },
            ip_version: if self.client.ip.is_ipv4() { 4 } else { 6 },
            vlan: self.vlan,
            client_ip: self.client.ip.to_string(),
            client_port: self.client.port,
            server_ip: self.server.ip.to_string(),
            server_port: self.server.port,
            client_zone: net::zone(self.client.ip),
            server_zone: net::zone(self.server.ip),
            app_proto: m.app_proto.map(|p| p.as_str()),
            app_proto_ts: m.app_proto_ts.map(|p| p.as_str()),
            app_proto_tc: m.app_proto_tc.map(|p| p.as_str()),
            app_proto_orig: m.app_proto_orig.map(|p| p.as_str()),
            linked: m.linked.clone(),
            expected_verdict: m.verdict,
            first_ts: ts(first),
            last_ts: ts(last),
            end: match self.end {
                End::Open => "none",
                End::Fin => "fin",
                End::Rst => "rst",
            },
            toserver: self.counts.ts,
            toclient: self.counts.tc,
            files: m.files.clone(),
            note: m.note.clone(),
        }
    }

    /// Time of the next packet to write, `None` when all are written.
    pub fn peek_ts(&self) -> Option<u64> {
        self.specs.get(self.cursor).map(|s| s.ts)
    }

    /// True before the first packet has been written.
    pub fn unstarted(&self) -> bool {
        self.cursor == 0
    }

    /// Skips the next packet without rendering it; returns its frame length.
    pub fn skip_next(&mut self) -> Option<u64> {
        let spec = *self.specs.get(self.cursor)?;
        self.cursor += 1;
        Some(match spec.frag {
            Some(_) => self.frag_frame_len(spec.len),
            None => self.frame_len(spec.flags, spec.len),
        })
    }

    /// Renders the next packet into `frame` (cleared first); `scratch` holds its payload.
    /// Returns its timestamp, or `None` when the flow is exhausted.
    pub fn render_next(
        &mut self,
        frame: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Result<Option<u64>> {
        let Some(spec) = self.specs.get(self.cursor).copied() else {
            return Ok(None);
        };
        self.cursor += 1;
        frame.clear();
        scratch.clear();
        if let Some(frag) = spec.frag {
            self.render_fragment(&spec, frag, frame)?;
            return Ok(Some(spec.ts));
        }
        if spec.len > 0 {
            let chunk = self
                .chunks
                .get(spec.chunk as usize)
                .context("payload chunk")?;
            chunk.fill(spec.off, spec.len as usize, scratch);
        }
        let (src, dst) = match spec.dir {
            Direction::ToServer => (self.client, self.server),
            Direction::ToClient => (self.server, self.client),
        };
        let id = self.ip_id.get_mut(spec.dir);
        *id = id.wrapping_add(1);
        let ip = ip_headers(src.ip, dst.ip, *id)?;
        let builder = PacketBuilder::ethernet2(net::mac(src.ip), net::mac(dst.ip));
        match self.transport {
            Transport::Tcp => {
                let tcp = self.tcp_header(&spec, src.port, dst.port)?;
                match self.vlan {
                    Some(v) => builder
                        .single_vlan(VlanId::try_new(v)?)
                        .ip(ip)
                        .tcp_header(tcp)
                        .write(frame, scratch)?,
                    None => builder.ip(ip).tcp_header(tcp).write(frame, scratch)?,
                }
            }
            Transport::Udp => match self.vlan {
                Some(v) => builder
                    .single_vlan(VlanId::try_new(v)?)
                    .ip(ip)
                    .udp(src.port, dst.port)
                    .write(frame, scratch)?,
                None => builder
                    .ip(ip)
                    .udp(src.port, dst.port)
                    .write(frame, scratch)?,
            },
        }
        Ok(Some(spec.ts))
    }

    fn tcp_header(&mut self, spec: &Spec, sport: u16, dport: u16) -> Result<TcpHeader> {
        let window = match spec.dir {
            Direction::ToServer => 502,
            Direction::ToClient => 509,
        };
        let mut h = TcpHeader::new(sport, dport, spec.seq, window);
        h.acknowledgment_number = spec.ack;
        h.fin = spec.flags & FIN != 0;
        h.syn = spec.flags & SYN != 0;
        h.rst = spec.flags & RST != 0;
        h.psh = spec.flags & PSH != 0;
        h.ack = spec.flags & ACK != 0;
        // RFC 7323 timestamps: a millisecond clock per host, echoing the peer's last value.
        let tsval = self
            .ts_base
            .get(spec.dir)
            .wrapping_add((spec.ts / 1000) as u32);
        let tsecr = if h.syn && !h.ack {
            0
        } else {
            *self.last_tsval.get(spec.dir.reverse())
        };
        *self.last_tsval.get_mut(spec.dir) = tsval;
        if h.syn {
            h.window_size = 64_240;
            let mss = self.mss() as u16 + 12;
            h.set_options(&[
                TcpOptionElement::MaximumSegmentSize(mss),
                TcpOptionElement::SelectiveAcknowledgementPermitted,
                TcpOptionElement::Timestamp(tsval, tsecr),
                TcpOptionElement::Noop,
                TcpOptionElement::WindowScale(WSCALE),
            ])?;
        } else if h.rst && !h.ack {
            h.set_options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(tsval, tsecr),
            ])?;
            h.window_size = 0;
        } else {
            h.set_options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(tsval, tsecr),
            ])?;
        }
        Ok(h)
    }
}

/// IPv4 (DF set, given identification) or IPv6 headers; lengths are filled in on write.
fn ip_headers(src: IpAddr, dst: IpAddr, id: u16) -> Result<IpHeaders> {
    Ok(match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => IpHeaders::Ipv4(
            Ipv4Header {
                identification: id,
                dont_fragment: true,
                time_to_live: net::ttl(src),
                source: s.octets(),
                destination: d.octets(),
                ..Default::default()
            },
            Default::default(),
        ),
        (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
            Ipv6Header {
                flow_label: Ipv6FlowLabel::try_new(u32::from(id) << 4)?,
                hop_limit: net::ttl(src),
                source: s.octets(),
                destination: d.octets(),
                ..Default::default()
            },
            Default::default(),
        ),
        _ => bail!("mixed IPv4/IPv6 endpoints {src} -> {dst}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::v4;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    fn flow() -> Conv {
        let mut rng = Rng::new(1);
        Conv::tcp(
            1,
            Endpoint::new(v4(10, 0, 0, 1), 40_000),
            Endpoint::new(v4(203, 0, 113, 9), 21),
            1_000_000,
            Link::WAN,
            &mut rng,
        )
    }

    /// Renders every packet and decodes it back: (dir is to-server, tcp header, payload).
    fn decode(conv: &mut Conv) -> Vec<(bool, TcpHeader, Vec<u8>, usize)> {
        let (mut frame, mut scratch) = (Vec::new(), Vec::new());
        let mut out = Vec::new();
        while conv
            .render_next(&mut frame, &mut scratch)
            .unwrap()
            .is_some()
        {
            let p = SlicedPacket::from_ethernet(&frame).unwrap();
            let Some(NetSlice::Ipv4(ip)) = &p.net else {
                panic!("not ipv4")
            };
            let to_server = ip.header().destination() == [203, 0, 113, 9];
            let Some(TransportSlice::Tcp(t)) = &p.transport else {
                panic!("not tcp")
            };
            out.push((to_server, t.to_header(), t.payload().to_vec(), frame.len()));
        }
        out
    }

    #[test]
    fn seq_ack_arithmetic_and_counts() {
        let mut c = flow();
        c.handshake();
        c.send(
            Direction::ToClient,
            Payload::bytes(b"220 ready\r\n".to_vec()),
        );
        c.send(
            Direction::ToServer,
            Payload::generated(crate::payload::Fill::Random, 1, 5000),
        );
        c.close(Direction::ToServer);
        let truth = c.truth();
        let pkts = decode(&mut c);
        let (syn, synack) = (&pkts[0].1, &pkts[1].1);
        assert!(syn.syn && !syn.ack);
        assert!(synack.syn && synack.ack);
        assert_eq!(
            synack.acknowledgment_number,
            syn.sequence_number.wrapping_add(1)
        );
        // Every segment's ack equals the peer's next expected sequence number, and data
        // segments follow on without gaps.
        let mut next = [
            syn.sequence_number.wrapping_add(1),
            synack.sequence_number.wrapping_add(1),
        ];
        for (to_server, h, payload, _) in pkts.iter().skip(2) {
            let (me, peer) = if *to_server { (0, 1) } else { (1, 0) };
            assert_eq!(h.sequence_number, next[me]);
            assert!(h.ack);
            assert_eq!(h.acknowledgment_number, next[peer]);
            assert!(payload.len() <= 1448);
            next[me] = next[me].wrapping_add(payload.len() as u32 + u32::from(h.fin));
        }
        // 5000 bytes = 1448 * 3 + 656: four segments from the client.
        let client_data = pkts.iter().filter(|p| p.0 && !p.2.is_empty()).count();
        assert_eq!(client_data, 4);
        assert_eq!(truth.toserver.payload_bytes, 5000);
        assert_eq!(truth.toclient.payload_bytes, 11);
        assert_eq!(truth.toserver.pkts + truth.toclient.pkts, pkts.len() as u64);
        let wire: usize = pkts.iter().map(|p| p.3).sum();
        assert_eq!(
            truth.toserver.wire_bytes + truth.toclient.wire_bytes,
            wire as u64
        );
        assert_eq!(truth.end, "fin");
    }

    #[test]
    fn retransmission_is_counted_once() {
        let mut c = flow();
        c.handshake();
        c.send(
            Direction::ToServer,
            Payload::generated(crate::payload::Fill::Random, 2, 3000),
        );
        c.retransmit_last(Direction::ToServer).unwrap();
        c.close(Direction::ToServer);
        let t = c.truth();
        assert_eq!(t.toserver.payload_bytes, 3000);
        assert_eq!(t.toserver.retransmitted_bytes, 3000 - 2 * 1448);
        assert_eq!(t.toserver.retransmitted_pkts, 1);
        let pkts = decode(&mut c);
        let data: Vec<_> = pkts.iter().filter(|p| p.0 && !p.2.is_empty()).collect();
        assert_eq!(data.len(), 4);
        assert_eq!(data[2].1.sequence_number, data[3].1.sequence_number);
        assert_eq!(
            data[2].2, data[3].2,
            "retransmission carries the same bytes"
        );
        let on_wire: usize = data.iter().map(|p| p.2.len()).sum();
        assert_eq!(
            on_wire as u64,
            t.toserver.payload_bytes + t.toserver.retransmitted_bytes
        );
    }

    #[test]
    fn vlan_and_ipv6_frames_match_computed_lengths() {
        let mut rng = Rng::new(3);
        let a = crate::net::v6([0xfd00, 0, 0, 0, 0, 0, 0, 1]);
        let b = crate::net::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 2]);
        let mut c = Conv::tcp(
            2,
            Endpoint::new(a, 5555),
            Endpoint::new(b, 21),
            0,
            Link::LAN,
            &mut rng,
        )
        .with_vlan(Some(20));
        c.handshake();
        c.send(
            Direction::ToServer,
            Payload::generated(crate::payload::Fill::Text, 3, 4000),
        );
        c.reset(Direction::ToClient);
        let t = c.truth();
        let (mut frame, mut scratch) = (Vec::new(), Vec::new());
        let mut total = 0u64;
        let mut max_payload = 0;
        while c.render_next(&mut frame, &mut scratch).unwrap().is_some() {
            let p = SlicedPacket::from_ethernet(&frame).unwrap();
            assert_eq!(p.vlan_ids().first().map(|v| v.value()), Some(20));
            assert!(matches!(p.net, Some(NetSlice::Ipv6(_))));
            max_payload = max_payload.max(scratch.len());
            total += frame.len() as u64;
            assert!(frame.len() <= 1518);
        }
        assert_eq!(max_payload, 1428);
        assert_eq!(total, t.toserver.wire_bytes + t.toclient.wire_bytes);
        assert_eq!(t.end, "rst");
    }
}
