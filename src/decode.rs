//! Decode stage: one captured frame → a borrowed [`Packet`] view, or a counter bump.
//!
//! Link layers (Ethernet with stacked VLAN tags, raw IP, Linux cooked v1/v2, BSD
//! null/loopback, PPP, NFLOG) are stripped by hand; they are a few spec-pinned bytes each.
//! IPv4/IPv6 headers and IPv6 extension chains go through etherparse's lax slices, so a
//! snap-length cut still yields what was captured. TCP/UDP/ICMP headers are read with
//! checked accessors here because the flow stage needs the *claimed* payload length (from
//! the IP header) as well as the captured bytes.
//!
//! Tunnels that remote-SPAN and routed-segment sensors receive are opened here: GRE (RFC
//! 2784/2890, with checksum, key and sequence fields) carrying IPv4, IPv6, MPLS or Ethernet
//! (transparent bridging), ERSPAN types I, II and III inside GRE, VXLAN (UDP 4789, RFC 7348)
//! and Geneve (UDP 6081, RFC 8926, options skipped). The inner packet is what the flow
//! stage tracks; [`Packet::tunnel`] names the outermost tunnel. Nesting is bounded by
//! [`MAX_TUNNEL_DEPTH`]. A header that does not parse as its tunnel (VXLAN without the I
//! flag, GRE with routing) leaves the outer packet to be tracked as it is.
//!
//! Invariant: [`Decoder::decode`] never panics and never allocates per packet (the IPv4
//! fragment table allocates only when a new fragment train starts, and is capped).
//! Every packet that yields no [`Packet`] bumps exactly one `DecodeStats` counter.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{Ipv4HeaderSlice, LaxIpv6Slice};
use hashbrown::HashMap;
use serde::Serialize;

use crate::time::Ts;

/// LINKTYPE_* values (tcpdump.org link-layer header types) the decoder understands.
pub mod linktype {
    /// BSD loopback: 4-byte address family in the writer's byte order.
    pub const NULL: u32 = 0;
    /// Ethernet II, with optional 802.1Q/802.1ad tags.
    pub const ETHERNET: u32 = 1;
    /// PPP (RFC 1661), optionally with HDLC address/control bytes.
    pub const PPP: u32 = 9;
    /// Raw IP on OpenBSD's old numbering.
    pub const RAW_OPENBSD: u32 = 12;
    /// Raw IP on BSD/OS's old numbering.
    pub const RAW_BSDOS: u32 = 14;
    /// PPP in HDLC-like framing.
    pub const PPP_HDLC: u32 = 50;
    /// Raw IPv4 or IPv6, version from the first nibble.
    pub const RAW: u32 = 101;
    /// OpenBSD loopback: 4-byte address family, big-endian.
    pub const LOOP: u32 = 108;
    /// Linux cooked capture v1.
    pub const LINUX_SLL: u32 = 113;
    /// Raw IPv4.
    pub const IPV4: u32 = 228;
    /// Raw IPv6.
    pub const IPV6: u32 = 229;
    /// Linux netfilter NFLOG.
    pub const NFLOG: u32 = 239;
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: u32 = 276;
}

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_MPLS: u16 = 0x8847;
const ETHERTYPE_MPLS_MCAST: u16 = 0x8848;

const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_ERSPAN_2: u16 = 0x88be;
const ETHERTYPE_ERSPAN_3: u16 = 0x22eb;

const PROTO_GRE: u8 = 47;
const PORT_VXLAN: u16 = 4789;
const PORT_GENEVE: u16 = 6081;

/// Tunnels opened inside one frame at most; deeper nesting is counted and dropped.
pub const MAX_TUNNEL_DEPTH: u8 = 4;

const PROTO_ICMP: u8 = 1;
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;
const PROTO_ICMPV6: u8 = 58;

/// How long an IPv4 fragment train may take to complete before its entry is reclaimed.
const FRAG_TTL_SECS: u64 = 30;

/// TCP header fields the flow stage uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpMeta {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flag bits (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20).
    pub flags: u8,
    /// Receive window (unscaled).
    pub window: u16,
}

impl TcpMeta {
    /// FIN flag.
    pub const FIN: u8 = 0x01;
    /// SYN flag.
    pub const SYN: u8 = 0x02;
    /// RST flag.
    pub const RST: u8 = 0x04;
    /// ACK flag.
    pub const ACK: u8 = 0x10;

    /// True when every bit of `mask` is set.
    pub const fn has(self, mask: u8) -> bool {
        self.flags & mask == mask
    }
}

/// Where a packet sits in an IP fragment train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fragment {
    /// Not fragmented.
    None,
    /// The first fragment: carries the transport header.
    First,
    /// A later fragment attributed to its train's ports; `payload` is raw continuation
    /// bytes, not a transport segment.
    Continuation,
}

/// The encapsulation a packet arrived in (outermost when nested).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tunnel {
    /// GRE carrying IP, MPLS or Ethernet.
    Gre,
    /// ERSPAN type I (GRE 0x88BE without sequence number).
    ErspanI,
    /// ERSPAN type II (GRE 0x88BE with sequence number, 8-byte header).
    ErspanII,
    /// ERSPAN type III (GRE 0x22EB, 12-byte header and optional subheader).
    ErspanIII,
    /// VXLAN (UDP 4789).
    Vxlan,
    /// Geneve (UDP 6081).
    Geneve,
}

impl Tunnel {
    /// The label on flow records (`xfer.tunnel`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Tunnel::Gre => "gre",
            Tunnel::ErspanI => "erspan-i",
            Tunnel::ErspanII => "erspan-ii",
            Tunnel::ErspanIII => "erspan-iii",
            Tunnel::Vxlan => "vxlan",
            Tunnel::Geneve => "geneve",
        }
    }
}

/// A decoded packet: addresses, ports, transport metadata and the captured payload,
/// borrowed from the frame.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port (ICMP: type).
    pub sport: u16,
    /// Destination port (ICMP: code).
    pub dport: u16,
    /// IP protocol number of the transport.
    pub proto: u8,
    /// Outer and inner 802.1Q VLAN ids (0 where absent).
    pub vlan: [u16; 2],
    /// TCP header fields, for TCP.
    pub tcp: Option<TcpMeta>,
    /// Captured L4 payload (may be shorter than `payload_len` under a snap length).
    pub payload: &'a [u8],
    /// L4 payload length the headers claim.
    pub payload_len: u32,
    /// Original frame length on the wire.
    pub wire_len: u32,
    /// Fragment position.
    pub fragment: Fragment,
    /// The tunnel it was decapsulated from, if any.
    pub tunnel: Option<Tunnel>,
}

/// Decoder counters (`stats.decoder.*`): one per way a frame can fail or be skipped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DecodeStats {
    /// Frames handed to the decoder.
    pub pkts: u64,
    /// Original bytes of those frames.
    pub bytes: u64,
    /// IPv4 packets.
    pub ipv4: u64,
    /// IPv6 packets.
    pub ipv6: u64,
    /// TCP segments.
    pub tcp: u64,
    /// UDP datagrams.
    pub udp: u64,
    /// ICMP / ICMPv6 messages.
    pub icmp: u64,
    /// Other IP protocols (tracked as flows without ports).
    pub other_ip_proto: u64,
    /// Frames carrying 802.1Q/802.1ad tags.
    pub vlan: u64,
    /// Frames that are not IP (ARP, LLC/NetBEUI, IPX …): not an error, just not ours.
    pub non_ip: u64,
    /// Frames of a link type this build does not decode.
    pub unsupported_linktype: u64,
    /// Link-layer header cut short.
    pub truncated_link: u64,
    /// IP header cut short or inconsistent.
    pub invalid_ip: u64,
    /// IPv6 extension chain unreadable (the packet is still tracked without ports).
    pub invalid_ipv6_ext: u64,
    /// TCP header cut short or with a bad data offset.
    pub invalid_tcp: u64,
    /// UDP header cut short.
    pub invalid_udp: u64,
    /// ICMP header cut short.
    pub invalid_icmp: u64,
    /// Packets whose IP payload was cut by the snap length.
    pub truncated_payload: u64,
    /// First fragments of fragmented datagrams.
    pub frag_first: u64,
    /// Later fragments attributed to a known train.
    pub frag_attributed: u64,
    /// Later fragments whose first fragment was never seen (counted, dropped).
    pub frag_orphan: u64,
    /// Fragment trains not tracked because the table was full.
    pub frag_table_full: u64,
    /// Packets decapsulated from GRE (IP, MPLS or Ethernet inside).
    pub tunnel_gre: u64,
    /// Packets decapsulated from ERSPAN (types I, II, III).
    pub tunnel_erspan: u64,
    /// Packets decapsulated from VXLAN.
    pub tunnel_vxlan: u64,
    /// Packets decapsulated from Geneve.
    pub tunnel_geneve: u64,
    /// Frames with tunnels nested deeper than the decoder opens (dropped).
    pub tunnel_too_deep: u64,
    /// Malformed frames beyond the `anomaly` record rate (counted above, no record written).
    pub anomaly_suppressed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FragKey {
    src: IpAddr,
    dst: IpAddr,
    id: u32,
    proto: u8,
}

#[derive(Debug, Clone, Copy)]
struct FragPorts {
    sport: u16,
    dport: u16,
    seen: Ts,
}

/// Stateful decoder: counters, a bounded fragment table, and the link types already
/// reported as unsupported.
pub struct Decoder {
    /// Counters.
    pub stats: DecodeStats,
    frags: HashMap<FragKey, FragPorts>,
    max_frags: usize,
    last_frag_sweep: Ts,
    warned_linktypes: Vec<u32>,
    /// Tunnels opened so far in the current frame.
    depth: u8,
    /// Address of the current frame's first byte, to size inner frames.
    frame_addr: usize,
}

/// Result of peeling the link layer.
enum Net<'a> {
    V4(&'a [u8]),
    V6(&'a [u8]),
    NonIp,
}

impl Decoder {
    /// A decoder tracking at most `max_frags` IPv4/IPv6 fragment trains.
    pub fn new(max_frags: usize) -> Decoder {
        Decoder {
            stats: DecodeStats::default(),
            frags: HashMap::new(),
            max_frags,
            last_frag_sweep: Ts(0),
            warned_linktypes: Vec::new(),
            depth: 0,
            frame_addr: 0,
        }
    }

    /// Changes the fragment-train cap (config reload); a fuller table shrinks as trains
    /// expire.
    pub fn set_max_fragments(&mut self, max_frags: usize) {
        self.max_frags = max_frags;
    }

    /// Link types seen so far that this decoder cannot read (reported once each).
    pub fn unsupported_linktypes(&self) -> &[u32] {
        &self.warned_linktypes
    }

    /// Decodes one frame of `linktype`. Returns `None` (after counting why) when the frame
    /// carries nothing a flow can use.
    pub fn decode<'a>(
        &mut self,
        linktype: u32,
        frame: &'a [u8],
        wire_len: u32,
        ts: Ts,
    ) -> Option<Packet<'a>> {
        self.stats.pkts += 1;
        self.stats.bytes += u64::from(wire_len);
        self.depth = 0;
        self.frame_addr = frame.as_ptr() as usize;
        let mut vlan = [0u16; 2];
        let net = match self.link(linktype, frame, &mut vlan)? {
            Net::NonIp => {
                self.stats.non_ip += 1;
                return None;
            }
            n => n,
        };
        if vlan != [0, 0] {
            self.stats.vlan += 1;
        }
        match net {
            Net::V4(ip) => self.ipv4(ip, vlan, wire_len, ts),
            Net::V6(ip) => self.ipv6(ip, vlan, wire_len, ts),
            Net::NonIp => None,
        }
    }

    fn link<'a>(&mut self, linktype: u32, frame: &'a [u8], vlan: &mut [u16; 2]) -> Option<Net<'a>> {
        let net = match linktype {
            linktype::ETHERNET => {
                let Some((ethertype, rest)) = ethernet(frame, vlan) else {
                    self.stats.truncated_link += 1;
                    return None;
                };
                by_ethertype(ethertype, rest)
            }
            linktype::RAW | linktype::RAW_OPENBSD | linktype::RAW_BSDOS => by_version(frame),
            linktype::IPV4 => Net::V4(frame),
            linktype::IPV6 => Net::V6(frame),
            linktype::NULL | linktype::LOOP => {
                let Some((fam, rest)) = frame.split_first_chunk::<4>() else {
                    self.stats.truncated_link += 1;
                    return None;
                };
                // DLT_NULL stores the family in the writer's byte order: accept either.
                let le = u32::from_le_bytes(*fam);
                let be = u32::from_be_bytes(*fam);
                let family = if linktype == linktype::LOOP {
                    be
                } else {
                    le.min(be)
                };
                match family {
                    2 => Net::V4(rest),
                    24 | 28 | 30 => Net::V6(rest),
                    _ => Net::NonIp,
                }
            }
            linktype::LINUX_SLL => {
                let Some((hdr, rest)) = frame.split_at_checked(16) else {
                    self.stats.truncated_link += 1;
                    return None;
                };
                let proto = be16(hdr, 14)?;
                by_ethertype(proto, rest)
            }
            linktype::LINUX_SLL2 => {
                let Some((hdr, rest)) = frame.split_at_checked(20) else {
                    self.stats.truncated_link += 1;
                    return None;
                };
                let proto = be16(hdr, 0)?;
                by_ethertype(proto, rest)
            }
            linktype::PPP | linktype::PPP_HDLC => {
                let body = frame.strip_prefix(&[0xff, 0x03]).unwrap_or(frame);
                let Some((proto, rest)) = body.split_first_chunk::<2>() else {
                    self.stats.truncated_link += 1;
                    return None;
                };
                match u16::from_be_bytes(*proto) {
                    0x0021 => Net::V4(rest),
                    0x0057 => Net::V6(rest),
                    _ => Net::NonIp,
                }
            }
            linktype::NFLOG => match nflog_payload(frame) {
                Some((2, p)) => Net::V4(p),
                Some((10, p)) => Net::V6(p),
                Some(_) => Net::NonIp,
                None => {
                    self.stats.truncated_link += 1;
                    return None;
                }
            },
            other => {
                self.stats.unsupported_linktype += 1;
                if !self.warned_linktypes.contains(&other) && self.warned_linktypes.len() < 64 {
                    self.warned_linktypes.push(other);
                    tracing::warn!(
                        linktype = other,
                        "Unsupported link type; its frames are counted and skipped."
                    );
                }
                return None;
            }
        };
        Some(net)
    }

    fn ipv4<'a>(
        &mut self,
        ip: &'a [u8],
        vlan: [u16; 2],
        wire_len: u32,
        ts: Ts,
    ) -> Option<Packet<'a>> {
        let Ok(hdr) = Ipv4HeaderSlice::from_slice(ip) else {
            self.stats.invalid_ip += 1;
            return None;
        };
        self.stats.ipv4 += 1;
        let hdr_len = usize::from(hdr.ihl()) * 4;
        let total = usize::from(hdr.total_len());
        if total < hdr_len {
            self.stats.invalid_ip += 1;
            return None;
        }
        let claimed = total - hdr_len;
        let body = ip.get(hdr_len..total.min(ip.len())).unwrap_or(&[]);
        if body.len() < claimed {
            self.stats.truncated_payload += 1;
        }
        let src = IpAddr::V4(Ipv4Addr::from(hdr.source()));
        let dst = IpAddr::V4(Ipv4Addr::from(hdr.destination()));
        let proto = hdr.protocol().0;
        let offset = hdr.fragments_offset().value();
        let frag = if offset != 0 {
            Fragment::Continuation
        } else if hdr.more_fragments() {
            Fragment::First
        } else {
            Fragment::None
        };
        let id = u32::from(hdr.identification());
        self.transport(src, dst, proto, body, claimed, vlan, wire_len, frag, id, ts)
    }

    fn ipv6<'a>(
        &mut self,
        ip: &'a [u8],
        vlan: [u16; 2],
        wire_len: u32,
        ts: Ts,
    ) -> Option<Packet<'a>> {
        let Ok((slice, ext_err)) = LaxIpv6Slice::from_slice(ip) else {
            self.stats.invalid_ip += 1;
            return None;
        };
        self.stats.ipv6 += 1;
        let hdr = slice.header();
        let src = IpAddr::V6(Ipv6Addr::from(hdr.source()));
        let dst = IpAddr::V6(Ipv6Addr::from(hdr.destination()));
        let payload = slice.payload();
        let ext_len = slice.extensions().slice().len();
        if ext_err.is_some() {
            self.stats.invalid_ipv6_ext += 1;
        }
        let claimed = match usize::from(hdr.payload_length()) {
            // Zero means a jumbogram or a writer that left it unset: trust the capture.
            0 => payload.payload.len(),
            n => n.saturating_sub(ext_len),
        };
        if payload.incomplete {
            self.stats.truncated_payload += 1;
        }
        // etherparse's extension iterator reads past the parsed headers when the lax parse
        // stopped early (a truncated chain, a second hop-by-hop header): undefined
        // behaviour found by the decode fuzz target. Walk the parsed bytes here instead.
        let (frag, id) = ipv6_fragment(hdr.next_header().0, slice.extensions().slice());
        let proto = payload.ip_number.0;
        self.transport(
            src,
            dst,
            proto,
            payload.payload,
            claimed,
            vlan,
            wire_len,
            frag,
            id,
            ts,
        )
    }

    #[allow(clippy::too_many_arguments)] // one call site each for v4/v6; a struct would only rename them
    fn transport<'a>(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        proto: u8,
        body: &'a [u8],
        claimed: usize,
        vlan: [u16; 2],
        wire_len: u32,
        fragment: Fragment,
        frag_id: u32,
        ts: Ts,
    ) -> Option<Packet<'a>> {
        let mut pkt = Packet {
            src,
            dst,
            sport: 0,
            dport: 0,
            proto,
            vlan,
            tcp: None,
            payload: body,
            payload_len: u32::try_from(claimed).unwrap_or(u32::MAX),
            wire_len,
            fragment,
            tunnel: None,
        };
        if fragment == Fragment::Continuation {
            let key = FragKey {
                src,
                dst,
                id: frag_id,
                proto,
            };
            return match self.frags.get_mut(&key) {
                Some(ports) => {
                    ports.seen = ts;
                    self.stats.frag_attributed += 1;
                    pkt.sport = ports.sport;
                    pkt.dport = ports.dport;
                    Some(pkt)
                }
                None => {
                    self.stats.frag_orphan += 1;
                    None
                }
            };
        }
        match proto {
            PROTO_TCP => {
                let Some(t) = tcp_header(body) else {
                    self.stats.invalid_tcp += 1;
                    return None;
                };
                self.stats.tcp += 1;
                pkt.sport = t.sport;
                pkt.dport = t.dport;
                pkt.tcp = Some(t.meta);
                pkt.payload = body.get(t.hdr_len..).unwrap_or(&[]);
                pkt.payload_len =
                    u32::try_from(claimed.saturating_sub(t.hdr_len)).unwrap_or(u32::MAX);
            }
            PROTO_UDP => {
                let (Some(sport), Some(dport)) = (be16(body, 0), be16(body, 2)) else {
                    self.stats.invalid_udp += 1;
                    return None;
                };
                if body.len() < 8 {
                    self.stats.invalid_udp += 1;
                    return None;
                }
                self.stats.udp += 1;
                pkt.sport = sport;
                pkt.dport = dport;
                pkt.payload = body.get(8..).unwrap_or(&[]);
                // A first fragment's UDP length covers the whole datagram; count what this
                // packet carries, the continuations add the rest.
                pkt.payload_len = u32::try_from(claimed.saturating_sub(8)).unwrap_or(u32::MAX);
            }
            PROTO_ICMP | PROTO_ICMPV6 => {
                let (Some(&ty), Some(&code)) = (body.first(), body.get(1)) else {
                    self.stats.invalid_icmp += 1;
                    return None;
                };
                self.stats.icmp += 1;
                pkt.sport = u16::from(ty);
                pkt.dport = u16::from(code);
                pkt.payload = body.get(4..).unwrap_or(&[]);
                pkt.payload_len = u32::try_from(claimed.saturating_sub(4)).unwrap_or(u32::MAX);
            }
            _ => {
                self.stats.other_ip_proto += 1;
            }
        }
        // A fragmented tunnel packet cannot be opened without reassembly: it stays an outer
        // flow.
        if fragment == Fragment::None
            && let Some(inner) = self.decapsulate(&pkt, ts)
        {
            return inner;
        }
        if fragment == Fragment::First {
            self.stats.frag_first += 1;
            self.remember_fragment(
                FragKey {
                    src,
                    dst,
                    id: frag_id,
                    proto,
                },
                pkt.sport,
                pkt.dport,
                ts,
            );
        }
        Some(pkt)
    }

    fn remember_fragment(&mut self, key: FragKey, sport: u16, dport: u16, ts: Ts) {
        if self.frags.len() >= self.max_frags && !self.frags.contains_key(&key) {
            // Reclaim expired trains at most once per packet-time second.
            if ts.since(self.last_frag_sweep) >= Ts::NANOS_PER_SEC {
                self.last_frag_sweep = ts;
                self.frags
                    .retain(|_, v| ts.since(v.seen) < FRAG_TTL_SECS * Ts::NANOS_PER_SEC);
            }
            if self.frags.len() >= self.max_frags {
                self.stats.frag_table_full += 1;
                return;
            }
        }
        self.frags.insert(
            key,
            FragPorts {
                sport,
                dport,
                seen: ts,
            },
        );
    }

    /// Opens a tunnel packet. `None`: not a tunnel (track the outer packet); `Some(inner)`:
    /// it was one, and `inner` is what it carried (`None` after counting why, when that
    /// carries nothing a flow can use).
    fn decapsulate<'a>(&mut self, outer: &Packet<'a>, ts: Ts) -> Option<Option<Packet<'a>>> {
        let (kind, inner) = match outer.proto {
            PROTO_GRE => gre(outer.payload)?,
            PROTO_UDP if outer.dport == PORT_VXLAN => (Tunnel::Vxlan, vxlan(outer.payload)?),
            PROTO_UDP if outer.dport == PORT_GENEVE => (Tunnel::Geneve, geneve(outer.payload)?),
            _ => return None,
        };
        if self.depth >= MAX_TUNNEL_DEPTH {
            self.stats.tunnel_too_deep += 1;
            return Some(None);
        }
        match kind {
            Tunnel::Gre => self.stats.tunnel_gre += 1,
            Tunnel::ErspanI | Tunnel::ErspanII | Tunnel::ErspanIII => self.stats.tunnel_erspan += 1,
            Tunnel::Vxlan => self.stats.tunnel_vxlan += 1,
            Tunnel::Geneve => self.stats.tunnel_geneve += 1,
        }
        // The inner frame's own tags replace the transport's: they belong to the
        // conversation, the outer ones to the path the copy took.
        let mut vlan = [0u16; 2];
        let (net, start) = match inner {
            Inner::Ethernet(f) => {
                let Some((ethertype, rest)) = ethernet(f, &mut vlan) else {
                    self.stats.truncated_link += 1;
                    return Some(None);
                };
                (by_ethertype(ethertype, rest), f)
            }
            Inner::Net(n, at) => (n, at),
        };
        let consumed = (start.as_ptr() as usize).saturating_sub(self.frame_addr);
        let wire = outer
            .wire_len
            .saturating_sub(u32::try_from(consumed).unwrap_or(u32::MAX));
        self.depth += 1;
        let pkt = match net {
            Net::V4(ip) => self.ipv4(ip, vlan, wire, ts),
            Net::V6(ip) => self.ipv6(ip, vlan, wire, ts),
            Net::NonIp => {
                self.stats.non_ip += 1;
                None
            }
        };
        self.depth -= 1;
        Some(pkt.map(|mut p| {
            p.tunnel = Some(kind);
            p
        }))
    }

    /// Number of fragment trains currently tracked.
    pub fn fragment_trains(&self) -> usize {
        self.frags.len()
    }
}

struct TcpHeader {
    sport: u16,
    dport: u16,
    hdr_len: usize,
    meta: TcpMeta,
}

fn tcp_header(b: &[u8]) -> Option<TcpHeader> {
    let fixed = b.get(..20)?;
    let sport = be16(fixed, 0)?;
    let dport = be16(fixed, 2)?;
    let seq = be32(fixed, 4)?;
    let ack = be32(fixed, 8)?;
    let off = usize::from(*fixed.get(12)? >> 4) * 4;
    let flags = *fixed.get(13)?;
    let window = be16(fixed, 14)?;
    if off < 20 {
        return None;
    }
    Some(TcpHeader {
        sport,
        dport,
        hdr_len: off,
        meta: TcpMeta {
            seq,
            ack,
            flags,
            window,
        },
    })
}

/// Strips an Ethernet II header and any stacked VLAN tags, recording up to two VLAN ids.
fn ethernet<'a>(frame: &'a [u8], vlan: &mut [u16; 2]) -> Option<(u16, &'a [u8])> {
    let mut ethertype = be16(frame, 12)?;
    let mut rest = frame.get(14..)?;
    let mut depth = 0;
    while matches!(
        ethertype,
        ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD
    ) {
        let tci = be16(rest, 0)?;
        ethertype = be16(rest, 2)?;
        rest = rest.get(4..)?;
        if let Some(slot) = vlan.get_mut(depth) {
            *slot = tci & 0x0fff;
        }
        depth += 1;
        if depth > 8 {
            return None;
        }
    }
    Some((ethertype, rest))
}

fn by_ethertype(ethertype: u16, rest: &[u8]) -> Net<'_> {
    match ethertype {
        ETHERTYPE_IPV4 => Net::V4(rest),
        ETHERTYPE_IPV6 => Net::V6(rest),
        ETHERTYPE_PPPOE_SESSION => pppoe(rest),
        ETHERTYPE_MPLS | ETHERTYPE_MPLS_MCAST => mpls(rest),
        _ => Net::NonIp,
    }
}

/// PPPoE session stage (RFC 2516): 6-byte header, then a PPP protocol field.
fn pppoe(b: &[u8]) -> Net<'_> {
    let Some(ppp) = b.get(6..) else {
        return Net::NonIp;
    };
    match be16(ppp, 0) {
        Some(0x0021) => Net::V4(ppp.get(2..).unwrap_or_default()),
        Some(0x0057) => Net::V6(ppp.get(2..).unwrap_or_default()),
        _ => Net::NonIp,
    }
}

/// MPLS label stack (RFC 3032): pop labels up to bottom-of-stack, then the payload's IP
/// version nibble says what follows (no pseudowire control word is assumed).
fn mpls(mut b: &[u8]) -> Net<'_> {
    for _ in 0..16 {
        let Some(entry) = b.get(..4) else {
            return Net::NonIp;
        };
        let bottom = entry.get(2).is_some_and(|x| x & 0x01 != 0);
        b = b.get(4..).unwrap_or_default();
        if bottom {
            return by_version(b);
        }
    }
    Net::NonIp
}

/// What a tunnel header wraps.
enum Inner<'a> {
    /// An Ethernet frame.
    Ethernet(&'a [u8]),
    /// A network-layer packet, and the bytes it starts at (for the inner frame's size).
    Net(Net<'a>, &'a [u8]),
}

/// GRE (RFC 2784, key and sequence from RFC 2890), including the ERSPAN types it carries.
/// Version 1 (PPTP) and source routing (RFC 1701) are not opened.
fn gre(b: &[u8]) -> Option<(Tunnel, Inner<'_>)> {
    let flags = *b.first()?;
    let ver = *b.get(1)? & 0x07;
    let proto = be16(b, 2)?;
    let (csum, routing, key, seq) = (
        flags & 0x80 != 0,
        flags & 0x40 != 0,
        flags & 0x20 != 0,
        flags & 0x10 != 0,
    );
    if ver != 0 || routing {
        return None;
    }
    let len = 4 + 4 * (usize::from(csum) + usize::from(key) + usize::from(seq));
    let body = b.get(len..)?;
    let inner = match proto {
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 | ETHERTYPE_MPLS | ETHERTYPE_MPLS_MCAST => {
            (Tunnel::Gre, Inner::Net(by_ethertype(proto, body), body))
        }
        ETHERTYPE_TEB => (Tunnel::Gre, Inner::Ethernet(body)),
        // Type I has no sequence number and no ERSPAN header; type II has both.
        ETHERTYPE_ERSPAN_2 if !seq => (Tunnel::ErspanI, Inner::Ethernet(body)),
        ETHERTYPE_ERSPAN_2 => {
            let hdr = body.get(..8)?;
            // Version 1 is type II.
            if hdr.first()? >> 4 != 1 {
                return None;
            }
            (Tunnel::ErspanII, Inner::Ethernet(body.get(8..)?))
        }
        ETHERTYPE_ERSPAN_3 => {
            let hdr = body.get(..12)?;
            if hdr.first()? >> 4 != 2 {
                return None;
            }
            let last = be16(hdr, 10)?;
            // O flag: an 8-byte platform-specific subheader follows.
            let sub = if last & 0x0001 != 0 { 8 } else { 0 };
            let frame = body.get(12 + sub..)?;
            // Frame type 0 is Ethernet, 2 an IP packet without its link header.
            match (last >> 10) & 0x1f {
                0 => (Tunnel::ErspanIII, Inner::Ethernet(frame)),
                2 => (Tunnel::ErspanIII, Inner::Net(by_version(frame), frame)),
                _ => return None,
            }
        }
        _ => return None,
    };
    Some(inner)
}

/// VXLAN (RFC 7348): 8-byte header with the I flag set, then an Ethernet frame.
fn vxlan(b: &[u8]) -> Option<Inner<'_>> {
    let flags = *b.first()?;
    if flags & 0x08 == 0 {
        return None;
    }
    Some(Inner::Ethernet(b.get(8..)?))
}

/// Geneve (RFC 8926): version 0, options skipped by their declared length, then Ethernet
/// or IP by the protocol type.
fn geneve(b: &[u8]) -> Option<Inner<'_>> {
    let first = *b.first()?;
    if first >> 6 != 0 {
        return None;
    }
    let opt_len = usize::from(first & 0x3f) * 4;
    let proto = be16(b, 2)?;
    let body = b.get(8 + opt_len..)?;
    match proto {
        ETHERTYPE_TEB => Some(Inner::Ethernet(body)),
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Some(Inner::Net(by_ethertype(proto, body), body)),
        _ => None,
    }
}

fn by_version(ip: &[u8]) -> Net<'_> {
    match ip.first().map(|b| b >> 4) {
        Some(4) => Net::V4(ip),
        Some(6) => Net::V6(ip),
        _ => Net::NonIp,
    }
}

/// Finds the packet TLV (type 9) in an NFLOG record; returns (address family, payload).
fn nflog_payload(frame: &[u8]) -> Option<(u8, &[u8])> {
    let family = *frame.first()?;
    let mut tlvs = frame.get(4..)?;
    while tlvs.len() >= 4 {
        let len = usize::from(u16::from_le_bytes([*tlvs.first()?, *tlvs.get(1)?]));
        let ty = u16::from_le_bytes([*tlvs.get(2)?, *tlvs.get(3)?]) & 0x7fff;
        if len < 4 {
            return None;
        }
        let value = tlvs.get(4..len.min(tlvs.len()))?;
        if ty == 9 {
            return Some((family, value));
        }
        let padded = len.div_ceil(4) * 4;
        tlvs = tlvs.get(padded..)?;
    }
    None
}

/// The fragment state and identification of an IPv6 packet, from the extension headers
/// the lax parse accepted (`exts`, starting with header type `first`). Stops at the first
/// header that is not an extension or does not fit in `exts`.
fn ipv6_fragment(first: u8, mut exts: &[u8]) -> (Fragment, u32) {
    const HOP_BY_HOP: u8 = 0;
    const ROUTING: u8 = 43;
    const FRAGMENT: u8 = 44;
    const AUTH: u8 = 51;
    const DEST_OPTIONS: u8 = 60;
    let mut next = first;
    // The accepted chain is finite, but bound the walk like every other loop here.
    for _ in 0..16 {
        let (Some(&following), Some(&len_field)) = (exts.first(), exts.get(1)) else {
            break;
        };
        let len = match next {
            HOP_BY_HOP | ROUTING | DEST_OPTIONS => (usize::from(len_field) + 1) * 8,
            AUTH => (usize::from(len_field) + 2) * 4,
            FRAGMENT => {
                let (Some(off), Some(id)) = (be16(exts, 2), be32(exts, 4)) else {
                    break;
                };
                let frag = if off >> 3 != 0 {
                    Fragment::Continuation
                } else if off & 1 != 0 {
                    Fragment::First
                } else {
                    Fragment::None
                };
                return (frag, id);
            }
            _ => break,
        };
        let Some(rest) = exts.get(len..) else {
            break;
        };
        next = following;
        exts = rest;
    }
    (Fragment::None, 0)
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    let s = b.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*s.first()?, *s.get(1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    let s: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;
    use proptest::prelude::*;

    fn tcp_frame(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [203, 0, 113, 5], 64)
            .tcp(40000, 21, 1000, 65535)
            .ack(77)
            .psh();
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let f = tcp_frame(b"USER anonymous\r\n");
        let mut d = Decoder::new(16);
        let p = d
            .decode(linktype::ETHERNET, &f, f.len() as u32, Ts(0))
            .unwrap();
        assert_eq!(p.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!((p.sport, p.dport, p.proto), (40000, 21, 6));
        assert_eq!(p.payload, b"USER anonymous\r\n");
        assert_eq!(p.payload_len, 16);
        let t = p.tcp.unwrap();
        assert_eq!((t.seq, t.ack), (1000, 77));
        assert!(t.has(TcpMeta::ACK));
        assert_eq!(d.stats.tcp, 1);
    }

    #[test]
    fn qinq_vlan_ids_are_kept() {
        let b = PacketBuilder::ethernet2([1; 6], [2; 6])
            .double_vlan(
                etherparse::VlanId::try_new(201).unwrap(),
                etherparse::VlanId::try_new(200).unwrap(),
            )
            .ipv6([0xfd; 16], [0xfe; 16], 64)
            .udp(5353, 53);
        let mut f = Vec::new();
        b.write(&mut f, b"abc").unwrap();
        let mut d = Decoder::new(16);
        let p = d
            .decode(linktype::ETHERNET, &f, f.len() as u32, Ts(0))
            .unwrap();
        assert_eq!(p.vlan, [201, 200]);
        assert_eq!(p.payload, b"abc");
        assert_eq!(d.stats.vlan, 1);
    }

    #[test]
    fn snaplen_cut_keeps_claimed_length() {
        let f = tcp_frame(&[0x41; 1000]);
        let cut = &f[..14 + 20 + 20 + 100];
        let mut d = Decoder::new(16);
        let p = d
            .decode(linktype::ETHERNET, cut, f.len() as u32, Ts(0))
            .unwrap();
        assert_eq!(p.payload.len(), 100);
        assert_eq!(p.payload_len, 1000);
        assert_eq!(d.stats.truncated_payload, 1);
    }

    #[test]
    fn truncated_and_non_ip_frames_are_counted() {
        let mut d = Decoder::new(16);
        assert!(d.decode(linktype::ETHERNET, &[0u8; 8], 8, Ts(0)).is_none());
        assert_eq!(d.stats.truncated_link, 1);
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0u8; 28]);
        assert!(d.decode(linktype::ETHERNET, &arp, 42, Ts(0)).is_none());
        assert_eq!(d.stats.non_ip, 1);
        assert!(d.decode(147, &[0u8; 40], 40, Ts(0)).is_none());
        assert!(d.decode(147, &[0u8; 40], 40, Ts(0)).is_none());
        assert_eq!(d.stats.unsupported_linktype, 2);
        assert_eq!(d.unsupported_linktypes(), &[147]);
    }

    #[test]
    fn null_sll_sll2_and_raw() {
        let f = tcp_frame(b"x");
        let ip = &f[14..];
        let mut d = Decoder::new(16);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(ip);
        assert!(d.decode(linktype::NULL, &null, 0, Ts(0)).is_some());
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(ip);
        assert!(d.decode(linktype::LINUX_SLL, &sll, 0, Ts(0)).is_some());
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(ip);
        assert!(d.decode(linktype::LINUX_SLL2, &sll2, 0, Ts(0)).is_some());
        assert!(d.decode(linktype::RAW, ip, 0, Ts(0)).is_some());
        let mut ppp = vec![0xff, 0x03, 0x00, 0x21];
        ppp.extend_from_slice(ip);
        assert!(d.decode(linktype::PPP, &ppp, 0, Ts(0)).is_some());
        assert_eq!(d.stats.tcp, 5);
    }

    #[test]
    fn pppoe_and_mpls_carry_ip() {
        let f = tcp_frame(b"x");
        let ip = &f[14..];
        let mut d = Decoder::new(16);
        let mut pppoe = vec![0u8; 12];
        pppoe.extend_from_slice(&[0x88, 0x64, 0x11, 0x00, 0x55, 0x6a, 0x00, 0x2b, 0x00, 0x21]);
        pppoe.extend_from_slice(ip);
        assert!(d.decode(linktype::ETHERNET, &pppoe, 0, Ts(0)).is_some());
        let mut mpls = vec![0u8; 12];
        // Two labels, the second with bottom-of-stack set.
        mpls.extend_from_slice(&[0x88, 0x47, 0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40]);
        mpls.extend_from_slice(ip);
        assert!(d.decode(linktype::ETHERNET, &mpls, 0, Ts(0)).is_some());
        // PPPoE carrying LCP is not IP.
        let mut lcp = vec![0u8; 12];
        lcp.extend_from_slice(&[
            0x88, 0x64, 0x11, 0x00, 0x55, 0x6a, 0x00, 0x08, 0xc0, 0x21, 1, 2, 3, 4,
        ]);
        assert!(d.decode(linktype::ETHERNET, &lcp, 0, Ts(0)).is_none());
        assert_eq!((d.stats.tcp, d.stats.non_ip), (2, 1));
    }

    #[test]
    fn ipv4_fragments_are_attributed_then_orphaned() {
        // First fragment: UDP header + 16 bytes, MF set, id 0x1234.
        let mut first = vec![
            0x45, 0, 0, 44, 0x12, 0x34, 0x20, 0x00, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        first.extend_from_slice(&[0x00, 0x7b, 0x00, 0x89, 0x00, 40, 0, 0]);
        first.extend_from_slice(&[0xaa; 16]);
        // Second fragment: offset 3 (24 bytes), no MF, 16 bytes.
        let mut second = vec![
            0x45, 0, 0, 36, 0x12, 0x34, 0x00, 0x03, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        second.extend_from_slice(&[0xbb; 16]);
        let mut d = Decoder::new(4);
        let p1 = d.decode(linktype::RAW, &first, 44, Ts(0)).unwrap();
        assert_eq!(
            (p1.sport, p1.dport, p1.fragment),
            (123, 137, Fragment::First)
        );
        let p2 = d.decode(linktype::RAW, &second, 36, Ts(1)).unwrap();
        assert_eq!(
            (p2.sport, p2.dport, p2.fragment),
            (123, 137, Fragment::Continuation)
        );
        assert_eq!(p2.payload.len(), 16);
        let mut orphan = second.clone();
        orphan[5] = 0x99;
        assert!(d.decode(linktype::RAW, &orphan, 36, Ts(2)).is_none());
        assert_eq!(
            (
                d.stats.frag_first,
                d.stats.frag_attributed,
                d.stats.frag_orphan
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn fragment_table_is_capped() {
        let mut d = Decoder::new(2);
        for id in 0..10u8 {
            let mut first = vec![
                0x45, 0, 0, 28, 0, id, 0x20, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
            ];
            first.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
            d.decode(linktype::RAW, &first, 28, Ts(0));
        }
        assert_eq!(d.fragment_trains(), 2);
        assert_eq!(d.stats.frag_table_full, 8);
    }

    /// A raw IPv6 packet, fd00::1 → fd00::2, whose header names `next` and whose payload
    /// length covers `body` (extension headers and transport).
    fn ipv6_packet(next: u8, body: &[u8]) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0];
        p.extend_from_slice(&(body.len() as u16).to_be_bytes());
        p.extend_from_slice(&[next, 64]);
        p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p.extend_from_slice(body);
        p
    }

    /// Regression (decode fuzz target): when etherparse's lax parse stopped inside the
    /// extension chain, iterating its extensions read past the parsed bytes (undefined
    /// behaviour; with debug assertions the process aborted). Both ways of stopping early
    /// must decode, count the bad chain, and still deliver the packet.
    #[test]
    fn ipv6_extension_chain_cut_short_regression() {
        // Hop-by-hop (next: hop-by-hop again, not allowed after the first), 8 bytes, then
        // a UDP header.
        let mut body = vec![0, 0, 1, 4, 0, 0, 0, 0];
        body.extend_from_slice(&[0x00, 0x35, 0x00, 0x35, 0, 8, 0, 0]);
        let twice = ipv6_packet(0, &body);
        // Hop-by-hop (next: destination options), then a destination-options header that
        // claims 16 bytes of which 4 were captured.
        let mut cut = ipv6_packet(0, &[60, 0, 1, 4, 0, 0, 0, 0, 17, 1, 0, 0]);
        cut[5] = 24;
        let mut d = Decoder::new(4);
        for (i, f) in [&twice, &cut].into_iter().enumerate() {
            let p = d.decode(linktype::RAW, f, f.len() as u32, Ts(0));
            let p = p.unwrap_or_else(|| panic!("frame {i} decodes"));
            assert_eq!(p.fragment, Fragment::None);
        }
        assert_eq!((d.stats.ipv6, d.stats.invalid_ipv6_ext), (2, 2));
    }

    #[test]
    fn ipv6_fragment_header_behind_hop_by_hop() {
        let frag = |offset_flags: u16| {
            let mut b = vec![44, 0, 1, 4, 0, 0, 0, 0];
            b.extend_from_slice(&[17, 0]);
            b.extend_from_slice(&offset_flags.to_be_bytes());
            b.extend_from_slice(&0xdead_beef_u32.to_be_bytes());
            b
        };
        // First fragment (offset 0, M set) carrying the UDP header.
        let mut first = frag(1);
        first.extend_from_slice(&[0x00, 0x45, 0x00, 0x45, 0, 24, 0, 0]);
        first.extend_from_slice(&[0xaa; 8]);
        // Continuation at offset 2 (16 bytes), last.
        let mut second = frag(2 << 3);
        second.extend_from_slice(&[0xbb; 8]);
        let (first, second) = (ipv6_packet(0, &first), ipv6_packet(0, &second));
        let mut d = Decoder::new(4);
        let p1 = d.decode(linktype::RAW, &first, 0, Ts(0)).unwrap();
        assert_eq!((p1.sport, p1.dport, p1.fragment), (69, 69, Fragment::First));
        let p2 = d.decode(linktype::RAW, &second, 0, Ts(1)).unwrap();
        assert_eq!(
            (p2.sport, p2.dport, p2.fragment, p2.payload.len()),
            (69, 69, Fragment::Continuation, 8)
        );
        assert_eq!((d.stats.frag_first, d.stats.frag_attributed), (1, 1));
    }

    /// An Ethernet/IPv4 frame from 192.0.2.1 to 192.0.2.2 carrying `payload` as IP
    /// protocol 47 (GRE).
    fn outer_gre(gre_header: &[u8], inner: &[u8]) -> Vec<u8> {
        let mut payload = gre_header.to_vec();
        payload.extend_from_slice(inner);
        let b = PacketBuilder::ethernet2([3; 6], [4; 6]).ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64);
        let mut out = Vec::new();
        b.write(&mut out, etherparse::IpNumber(47), &payload)
            .unwrap();
        out
    }

    fn outer_udp(dport: u16, header: &[u8], inner: &[u8]) -> Vec<u8> {
        let mut payload = header.to_vec();
        payload.extend_from_slice(inner);
        let b = PacketBuilder::ethernet2([3; 6], [4; 6])
            .ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(50000, dport);
        let mut out = Vec::new();
        b.write(&mut out, &payload).unwrap();
        out
    }

    /// Decodes `f` and checks that the inner FTP segment came out, tagged with `tunnel`.
    fn assert_inner(f: &[u8], tunnel: Tunnel) -> DecodeStats {
        let mut d = Decoder::new(16);
        let p = d
            .decode(linktype::ETHERNET, f, f.len() as u32, Ts(0))
            .unwrap();
        assert_eq!(p.tunnel, Some(tunnel));
        assert_eq!(p.src, "10.0.0.1".parse::<IpAddr>().unwrap());
        assert_eq!(p.dst, "203.0.113.5".parse::<IpAddr>().unwrap());
        assert_eq!((p.sport, p.dport, p.proto), (40000, 21, 6));
        assert_eq!(p.payload, b"STOR x.zip\r\n");
        // The inner frame's size, not the outer one.
        assert!(p.wire_len < f.len() as u32);
        d.stats
    }

    #[test]
    fn gre_carries_ip_with_optional_fields() {
        let inner = tcp_frame(b"STOR x.zip\r\n");
        let ip = &inner[14..];
        let f = outer_gre(&[0x00, 0x00, 0x08, 0x00], ip);
        let st = assert_inner(&f, Tunnel::Gre);
        assert_eq!((st.tunnel_gre, st.ipv4, st.tcp), (1, 2, 1));
        // Checksum, key and sequence present: 12 more header bytes.
        let mut hdr = vec![0xb0, 0x00, 0x08, 0x00];
        hdr.extend_from_slice(&[0xaa; 12]);
        assert_inner(&outer_gre(&hdr, ip), Tunnel::Gre);
        // Transparent Ethernet bridging.
        assert_inner(
            &outer_gre(&[0x20, 0x00, 0x65, 0x58, 0, 0, 0, 7], &inner),
            Tunnel::Gre,
        );
    }

    #[test]
    fn erspan_types_one_two_three() {
        let inner = tcp_frame(b"STOR x.zip\r\n");
        // Type I: GRE 0x88BE without a sequence number, the mirrored frame right after.
        let st = assert_inner(
            &outer_gre(&[0x00, 0x00, 0x88, 0xbe], &inner),
            Tunnel::ErspanI,
        );
        assert_eq!(st.tunnel_erspan, 1);
        // Type II: sequence number, then the 8-byte ERSPAN header (version 1, session 5).
        let mut hdr = vec![0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1];
        hdr.extend_from_slice(&[0x10, 0x64, 0x00, 0x05, 0, 0, 0, 0]);
        assert_inner(&outer_gre(&hdr, &inner), Tunnel::ErspanII);
        // Type III: 12-byte header (version 2) with the O flag and its 8-byte subheader.
        let mut hdr = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1];
        hdr.extend_from_slice(&[0x20, 0x64, 0x00, 0x05, 1, 2, 3, 4, 0, 0, 0x00, 0x01]);
        hdr.extend_from_slice(&[0xee; 8]);
        assert_inner(&outer_gre(&hdr, &inner), Tunnel::ErspanIII);
        // Type III without the subheader, frame type 2: an IP packet, no Ethernet header.
        let mut hdr = vec![0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1];
        hdr.extend_from_slice(&[0x20, 0x64, 0x00, 0x05, 1, 2, 3, 4, 0, 0, 0x08, 0x00]);
        assert_inner(&outer_gre(&hdr, &inner[14..]), Tunnel::ErspanIII);
    }

    #[test]
    fn vxlan_and_geneve() {
        let inner = tcp_frame(b"STOR x.zip\r\n");
        let st = assert_inner(
            &outer_udp(4789, &[0x08, 0, 0, 0, 0, 0x10, 0x00, 0], &inner),
            Tunnel::Vxlan,
        );
        assert_eq!((st.tunnel_vxlan, st.udp, st.tcp), (1, 1, 1));
        // Geneve with one 4-byte option word.
        let st = assert_inner(
            &outer_udp(
                6081,
                &[0x01, 0x00, 0x65, 0x58, 0, 0, 0x2a, 0, 1, 2, 3, 4],
                &inner,
            ),
            Tunnel::Geneve,
        );
        assert_eq!(st.tunnel_geneve, 1);
    }

    #[test]
    fn not_a_tunnel_leaves_the_outer_packet() {
        let inner = tcp_frame(b"STOR x.zip\r\n");
        // VXLAN port without the I flag: plain UDP.
        let f = outer_udp(4789, &[0x00, 0, 0, 0, 0, 0, 0, 0], &inner);
        let mut d = Decoder::new(16);
        let p = d
            .decode(linktype::ETHERNET, &f, f.len() as u32, Ts(0))
            .unwrap();
        assert_eq!((p.proto, p.dport, p.tunnel), (17, 4789, None));
        // GRE with the routing bit (RFC 1701) or version 1 (PPTP) is not opened.
        for hdr in [[0x40, 0x00, 0x08, 0x00], [0x00, 0x01, 0x08, 0x00]] {
            let f = outer_gre(&hdr, &inner[14..]);
            let p = d
                .decode(linktype::ETHERNET, &f, f.len() as u32, Ts(0))
                .unwrap();
            assert_eq!((p.proto, p.tunnel), (47, None));
        }
        // A truncated ERSPAN II header.
        let f = outer_gre(&[0x10, 0x00, 0x88, 0xbe, 0, 0, 0, 1, 0x10, 0x64], &[]);
        let p = d
            .decode(linktype::ETHERNET, &f, f.len() as u32, Ts(0))
            .unwrap();
        assert_eq!(p.tunnel, None);
        assert_eq!(d.stats.tunnel_erspan, 0);
    }

    #[test]
    fn nesting_is_bounded() {
        let mut f = tcp_frame(b"STOR x.zip\r\n");
        for _ in 0..MAX_TUNNEL_DEPTH {
            f = outer_udp(4789, &[0x08, 0, 0, 0, 0, 0, 1, 0], &f);
        }
        let mut d = Decoder::new(16);
        let p = d
            .decode(linktype::ETHERNET, &f, f.len() as u32, Ts(0))
            .unwrap();
        assert_eq!(p.tunnel, Some(Tunnel::Vxlan));
        assert_eq!(p.payload, b"STOR x.zip\r\n");
        let f = outer_udp(4789, &[0x08, 0, 0, 0, 0, 0, 1, 0], &f);
        assert!(
            d.decode(linktype::ETHERNET, &f, f.len() as u32, Ts(0))
                .is_none()
        );
        assert_eq!(d.stats.tunnel_too_deep, 1);
    }

    #[test]
    fn tunnel_carrying_non_ip_counts_once() {
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0u8; 28]);
        let f = outer_udp(4789, &[0x08, 0, 0, 0, 0, 0, 1, 0], &arp);
        let mut d = Decoder::new(16);
        assert!(
            d.decode(linktype::ETHERNET, &f, f.len() as u32, Ts(0))
                .is_none()
        );
        assert_eq!((d.stats.non_ip, d.stats.tunnel_vxlan), (1, 1));
    }

    proptest! {
        #[test]
        fn decode_never_panics(lt in prop::sample::select(vec![0u32, 1, 9, 12, 101, 108, 113, 228, 229, 239, 276, 999]),
                               bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let mut d = Decoder::new(8);
            let _ = d.decode(lt, &bytes, bytes.len() as u32, Ts(0));
            prop_assert_eq!(d.stats.pkts, 1);
        }

        #[test]
        fn mutated_tunnel_frames_never_panic(flips in prop::collection::vec((0usize..140, any::<u8>()), 0..12),
                                             kind in 0usize..4) {
            let inner = tcp_frame(&[7u8; 40]);
            let mut f = match kind {
                0 => outer_gre(&[0xb0, 0x00, 0x08, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], &inner[14..]),
                1 => outer_gre(&[0x10, 0x00, 0x22, 0xeb, 0, 0, 0, 1, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], &inner),
                2 => outer_udp(4789, &[0x08, 0, 0, 0, 0, 0, 1, 0], &inner),
                _ => outer_udp(6081, &[0x02, 0, 0x65, 0x58, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0], &inner),
            };
            for (i, v) in flips {
                if let Some(b) = f.get_mut(i) { *b = v; }
            }
            let mut d = Decoder::new(8);
            let _ = d.decode(linktype::ETHERNET, &f, f.len() as u32, Ts(0));
        }

        #[test]
        fn mutated_tcp_frames_never_panic(flips in prop::collection::vec((0usize..120, any::<u8>()), 0..12)) {
            let mut f = tcp_frame(&[7u8; 60]);
            for (i, v) in flips {
                if let Some(b) = f.get_mut(i) { *b = v; }
            }
            let mut d = Decoder::new(8);
            let _ = d.decode(linktype::ETHERNET, &f, f.len() as u32, Ts(0));
        }
    }
}
