//! Protocol identification: per flow and per direction, bounded probes over the first payload
//! bytes decide what application protocol a flow carries (DESIGN §4).
//!
//! Each protocol file holds a pure probe, `probe(&[u8]) -> ProbeResult`, over the first bytes
//! of ONE direction's stream. Probes are written to be mutually exclusive and monotone (a
//! `NoMatch` stays a `NoMatch` when more bytes arrive), so the order they are tried in cannot
//! change the answer: ports only order the probes to find the likely one first. The single
//! written exception is TLS on the implicit-FTPS ports 990/989, labelled `ftps`.
//!
//! [`Classifier`] is the per-flow state. It is 16 bytes until the first payload arrives, then
//! holds one boxed evidence record; a direction buffers bytes only while a probe needs more
//! and never beyond [`Budget::max_bytes`]. After a match it keeps two cheap watchers: FTP
//! control lines for `AUTH TLS` → `234` → TLS (explicit FTPS), and NBSS framing for the SMB
//! dialect, encryption and compression.
//!
//! Direction results are merged by [`Classifier::labels`]: some evidence needs the peer's
//! corroboration (FTP commands need 3-digit replies); evidence whose peer stayed silent is
//! kept but marked `tentative`, which suppresses mismatch verdicts (see [`verdict`]).

pub mod cursor;
pub mod dns;
pub mod ftp;
pub mod http;
pub mod smb;
pub mod smtp;
pub mod ssh;
pub mod tftp;
pub mod tls;
pub mod verdict;

use crate::app_proto::AppProto;
use crate::direction::Direction;
use cursor::Short;
use smb::{NbssTrack, SmbSeen};

/// Which endpoint role the matched bytes prove their sender plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The sender is the client (it sent a request, command or ClientHello).
    Client,
    /// The sender is the server (banner, reply, ServerHello, response).
    Server,
    /// Both sides send these bytes (SSH identification, SMB3 transform headers).
    Either,
}

/// What a probe recognised, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    /// The protocol recognised.
    pub proto: AppProto,
    /// Stable signature name for alerts and tests, e.g. `ftp-banner-220`, `smb2-header`.
    pub name: &'static str,
    /// Byte offset in the direction's stream where the signature starts.
    pub offset: usize,
    /// Which side the bytes prove the sender is.
    pub role: Role,
    /// True when the bytes alone are not proof and the other direction must corroborate
    /// them (FTP commands need replies; an NBSS positive response needs a request).
    pub needs_peer: bool,
}

/// A probe's answer on the bytes seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeResult {
    /// The bytes carry this protocol.
    Match(Signature),
    /// Consistent so far; more bytes are needed to decide.
    NeedMore,
    /// Not this protocol, whatever follows.
    NoMatch,
}

/// Why a probe did not match; `?` on cursor reads turns truncation into [`Miss::NeedMore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    NeedMore,
    NoMatch,
}

impl From<Short> for Miss {
    fn from(_: Short) -> Miss {
        Miss::NeedMore
    }
}

/// Converts a probe's internal result, treating truncation as final when `at_end`.
pub(crate) fn conclude(r: Result<Signature, Miss>, at_end: bool) -> ProbeResult {
    match r {
        Ok(sig) => ProbeResult::Match(sig),
        Err(Miss::NeedMore) if !at_end => ProbeResult::NeedMore,
        Err(_) => ProbeResult::NoMatch,
    }
}

/// Shorthand used by the probes to build a signature.
pub(crate) const fn sig(
    proto: AppProto,
    name: &'static str,
    offset: usize,
    role: Role,
    needs_peer: bool,
) -> Signature {
    Signature {
        proto,
        name,
        offset,
        role,
        needs_peer,
    }
}

/// Per-direction probe budget (DESIGN §4: e.g. 4 KiB or 8 packets per direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Payload bytes probed per direction; also the bound on the accumulation buffer.
    pub max_bytes: usize,
    /// Payload-carrying packets probed per direction.
    pub max_packets: u32,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget {
            max_bytes: 4096,
            max_packets: 8,
        }
    }
}

/// Transport of the flow: selects which probes apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L4 {
    /// TCP: the direction is a byte stream, probes see the accumulated bytes.
    Tcp,
    /// UDP: each datagram is probed on its own.
    Udp,
    /// Anything else: no probes, payload ends as `unknown`.
    Other,
}

/// Stable identifier of a probe in [`PROBES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProbeId {
    /// FTP control (banner, commands, replies).
    Ftp,
    /// SMTP/LMTP (banner with SMTP markers, EHLO/HELO/LHLO, MAIL FROM).
    Smtp,
    /// SMB over NBSS / direct TCP.
    Smb,
    /// HTTP/1.x and the HTTP/2 prior-knowledge preface.
    Http,
    /// TLS handshake records.
    Tls,
    /// SSH identification string.
    Ssh,
    /// DNS over TCP (length-prefixed).
    DnsTcp,
    /// DNS over UDP.
    DnsUdp,
    /// TFTP RRQ/WRQ/OACK.
    Tftp,
}

impl ProbeId {
    /// This probe's row in [`PROBES`] (checked by a test), so probing does not search the
    /// table for it.
    pub const fn row(self) -> usize {
        match self {
            ProbeId::Smb => 0,
            ProbeId::Tls => 1,
            ProbeId::Http => 2,
            ProbeId::Ssh => 3,
            ProbeId::Ftp => 4,
            ProbeId::Smtp => 5,
            ProbeId::DnsTcp => 6,
            ProbeId::Tftp => 7,
            ProbeId::DnsUdp => 8,
        }
    }

    /// This probe's bit in a direction's mask of probes that said no.
    const fn bit(self) -> u16 {
        1 << self.row()
    }
}

/// One row of the probe table.
#[derive(Debug, Clone, Copy)]
pub struct ProbeDef {
    /// Which probe this is.
    pub id: ProbeId,
    /// The transport it applies to.
    pub l4: L4,
    /// Probe on a prefix of the stream (may answer need-more).
    pub probe: fn(&[u8]) -> ProbeResult,
    /// Probe on everything there will be (budget spent, flow ended, or a whole datagram):
    /// never answers need-more.
    pub finish: fn(&[u8]) -> ProbeResult,
}

/// Every probe, in the default order for each transport. A new protocol is one file plus
/// one row here (and, if it has a well-known port, one arm in [`preferred_probe`]).
pub static PROBES: [ProbeDef; 9] = [
    ProbeDef {
        id: ProbeId::Smb,
        l4: L4::Tcp,
        probe: smb::probe,
        finish: smb::probe_final,
    },
    ProbeDef {
        id: ProbeId::Tls,
        l4: L4::Tcp,
        probe: tls::probe,
        finish: tls::probe_final,
    },
    ProbeDef {
        id: ProbeId::Http,
        l4: L4::Tcp,
        probe: http::probe,
        finish: http::probe_final,
    },
    ProbeDef {
        id: ProbeId::Ssh,
        l4: L4::Tcp,
        probe: ssh::probe,
        finish: ssh::probe_final,
    },
    ProbeDef {
        id: ProbeId::Ftp,
        l4: L4::Tcp,
        probe: ftp::probe,
        finish: ftp::probe_final,
    },
    ProbeDef {
        id: ProbeId::Smtp,
        l4: L4::Tcp,
        probe: smtp::probe,
        finish: smtp::probe_final,
    },
    ProbeDef {
        id: ProbeId::DnsTcp,
        l4: L4::Tcp,
        probe: dns::probe_tcp,
        finish: dns::probe_tcp_final,
    },
    ProbeDef {
        id: ProbeId::Tftp,
        l4: L4::Udp,
        probe: tftp::probe,
        finish: tftp::probe,
    },
    ProbeDef {
        id: ProbeId::DnsUdp,
        l4: L4::Udp,
        probe: dns::probe,
        finish: dns::probe,
    },
];

/// The probe worth trying first for a server port. Only an ordering hint: it never decides.
pub const fn preferred_probe(l4: L4, server_port: u16) -> Option<ProbeId> {
    match server_port {
        53 | 5353 if matches!(l4, L4::Tcp) => Some(ProbeId::DnsTcp),
        20 | 21 | 2121 => Some(ProbeId::Ftp),
        139 | 445 => Some(ProbeId::Smb),
        69 => Some(ProbeId::Tftp),
        80 | 8000 | 8080 | 3128 => Some(ProbeId::Http),
        443 | 465 | 636 | 853 | 989 | 990 | 993 | 995 | 8443 => Some(ProbeId::Tls),
        22 => Some(ProbeId::Ssh),
        53 | 5353 => Some(ProbeId::DnsUdp),
        25 | 587 | 24 => Some(ProbeId::Smtp),
        _ => None,
    }
}

/// The implicit-FTPS ports where TLS is labelled `ftps` (the one port rule of DESIGN §4).
pub const IMPLICIT_FTPS_PORTS: [u16; 2] = [990, 989];

/// How many control packets (both directions) are watched for `AUTH TLS` after FTP is
/// identified. RFC 4217 clients negotiate before logging in, so 64 covers real sessions
/// while a long plain-FTP session stops costing anything.
pub const FTPS_WATCH_PACKETS: u16 = 64;

/// How many NBSS messages per direction the SMB watcher reads for dialect and encryption.
pub const SMB_WATCH_MESSAGES: u16 = 64;

/// Bytes of each direction's stream kept as evidence for alerts.
pub const HEAD_LEN: usize = 64;

/// Progress of probing in one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProbeState {
    /// No payload seen yet.
    #[default]
    Idle,
    /// Some probe still needs more bytes.
    Probing,
    /// A probe matched; see [`DirEvidence::signature`].
    Matched,
    /// Nothing matched within the budget (or every probe said no).
    Unknown,
}

/// What identification saw in one direction: enough to explain an alert without the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEvidence {
    /// The signature that matched, if any.
    pub signature: Option<Signature>,
    /// `pcap_cnt` of the packet that completed the match.
    pub pcap_cnt: Option<u64>,
    /// Payload bytes given to the probes (at most the budget).
    pub bytes_probed: u32,
    /// Payload packets given to the probes (at most the budget).
    pub packets_probed: u32,
    /// Probing progress.
    pub state: ProbeState,
    head: [u8; HEAD_LEN],
    head_len: u8,
}

impl Default for DirEvidence {
    fn default() -> DirEvidence {
        DirEvidence::EMPTY
    }
}

impl DirEvidence {
    const EMPTY: DirEvidence = DirEvidence {
        signature: None,
        pcap_cnt: None,
        bytes_probed: 0,
        packets_probed: 0,
        state: ProbeState::Idle,
        head: [0; HEAD_LEN],
        head_len: 0,
    };

    /// The first bytes of the direction's stream (up to [`HEAD_LEN`]).
    pub fn head(&self) -> &[u8] {
        self.head
            .get(..usize::from(self.head_len))
            .unwrap_or_default()
    }

    fn push_head(&mut self, payload: &[u8]) {
        let have = usize::from(self.head_len);
        if have >= HEAD_LEN {
            return;
        }
        let Some(free) = self.head.get_mut(have..) else {
            return;
        };
        let n = free.len().min(payload.len());
        if let (Some(dst), Some(src)) = (free.get_mut(..n), payload.get(..n)) {
            dst.copy_from_slice(src);
            // have + n <= HEAD_LEN = 64, so it fits in a u8.
            self.head_len = u8::try_from(have + n).unwrap_or(u8::MAX);
        }
    }
}

/// SMB dialect family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SmbFamily {
    /// SMB1 / CIFS (`\xffSMB`).
    Smb1,
    /// SMB 2.0.2 / 2.1 (`\xfeSMB`, dialect below 0x0300).
    Smb2,
    /// SMB 3.x (dialect 0x0300 and later, or transform headers `\xfd`/`\xfc`).
    Smb3,
}

impl SmbFamily {
    /// Name for EVE output.
    pub const fn as_str(self) -> &'static str {
        match self {
            SmbFamily::Smb1 => "smb1",
            SmbFamily::Smb2 => "smb2",
            SmbFamily::Smb3 => "smb3",
        }
    }
}

/// What the SMB watcher learnt about an SMB flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SmbInfo {
    /// Highest dialect family seen.
    pub family: SmbFamily,
    /// Dialect chosen in the SMB2 NEGOTIATE response (0x0202 … 0x0311, 0x02FF), if seen.
    pub dialect: Option<u16>,
    /// An SMB3 transform header (`\xfdSMB`) was seen: the session encrypts.
    pub encrypted: bool,
    /// An SMB3 compression transform header (`\xfcSMB`) was seen.
    pub compressed: bool,
}

/// The final labels of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels {
    /// EVE `app_proto`.
    pub app_proto: AppProto,
    /// EVE `app_proto_ts`: set only when the directions disagree.
    pub ts: Option<AppProto>,
    /// EVE `app_proto_tc`: set only when the directions disagree.
    pub tc: Option<AppProto>,
    /// EVE `app_proto_orig`: `ftp` when the control channel became `ftps`.
    pub orig: Option<AppProto>,
    /// The label rests on evidence the other direction never corroborated (its peer was
    /// silent, or the evidence is shared with another protocol). Mismatch verdicts are not
    /// raised on tentative labels.
    pub tentative: bool,
}

impl Labels {
    /// True when the two directions identified as different protocols.
    pub const fn disagree(&self) -> bool {
        self.ts.is_some() && self.tc.is_some()
    }
}

/// Explicit-FTPS watcher state (RFC 4217: `AUTH TLS` → `234` → TLS ClientHello).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum FtpsWatch {
    #[default]
    Idle,
    /// An `AUTH TLS|SSL` line was sent in this direction.
    AuthSent(Direction),
    /// The peer answered `234`; the next bytes from the AUTH sender should be TLS.
    Accepted(Direction),
    /// TLS followed the accepted AUTH: the control channel is now FTPS.
    Upgraded,
}

/// Probing state of one direction; lives inside the boxed part of the classifier.
#[derive(Debug, Clone, Default)]
struct DirProbe {
    ev: DirEvidence,
    /// Accumulated stream while a probe needs more (TCP only), never over the byte budget.
    buf: Vec<u8>,
    /// Bit per [`PROBES`] row that already said `NoMatch` (TCP): never asked again.
    dead: u16,
    /// Stream offset of the next datagram (UDP signature offsets).
    stream_off: usize,
    last_pcap_cnt: u64,
    nbss: NbssTrack,
}

#[derive(Debug, Clone, Default)]
struct Inner {
    ts: DirProbe,
    tc: DirProbe,
    ftps: FtpsWatch,
    ftps_pcap_cnt: Option<u64>,
    ftps_watched: u16,
    smb: SmbSeen,
}

impl Inner {
    fn dir(&self, d: Direction) -> &DirProbe {
        match d {
            Direction::ToServer => &self.ts,
            Direction::ToClient => &self.tc,
        }
    }

    fn dir_mut(&mut self, d: Direction) -> &mut DirProbe {
        match d {
            Direction::ToServer => &mut self.ts,
            Direction::ToClient => &mut self.tc,
        }
    }
}

/// Per-flow protocol classifier. See the module docs for the contract.
#[derive(Debug, Clone)]
pub struct Classifier {
    l4: L4,
    client_port: u16,
    server_port: u16,
    /// [`Classifier::wants_more`], kept up to date by every call that changes the state:
    /// the engine asks twice per packet, and recomputing it walked both directions and
    /// both watchers each time.
    wants: bool,
    inner: Option<Box<Inner>>,
}

/// The outcome of one direction, as used by the label merge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Silent,
    Unknown,
    Sig(Signature),
}

/// How far the peer backs a direction's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backing {
    Confirmed,
    Tentative,
    Rejected,
}

impl Classifier {
    /// A classifier for a new flow. Ports only order the probes (and select `ftps` for TLS on
    /// 990/989); `client_port` is kept for callers' evidence.
    pub fn new(l4: L4, client_port: u16, server_port: u16) -> Classifier {
        Classifier {
            l4,
            client_port,
            server_port,
            wants: true,
            inner: None,
        }
    }

    /// The flow's client port as given to [`Classifier::new`].
    pub const fn client_port(&self) -> u16 {
        self.client_port
    }

    /// The flow's server port as given to [`Classifier::new`].
    pub const fn server_port(&self) -> u16 {
        self.server_port
    }

    /// Feeds one in-order chunk of L4 payload seen in `dir` (TCP already in sequence order;
    /// UDP one datagram). Work per call is bounded by the chunk and the budget.
    pub fn feed(&mut self, dir: Direction, payload: &[u8], pcap_cnt: u64, budget: &Budget) {
        if payload.is_empty() {
            return;
        }
        let (l4, server_port) = (self.l4, self.server_port);
        let inner = self.inner.get_or_insert_with(Box::default);
        {
            let probing = awaits_bytes(inner.dir(dir), inner.dir(dir.reverse()));
            let d = inner.dir_mut(dir);
            d.ev.push_head(payload);
            d.last_pcap_cnt = pcap_cnt;
            if !probing {
                // Decided: only a watcher may still read this direction (most such chunks
                // are SMB message bodies the NBSS watcher skips).
                if l4 == L4::Tcp && watch_decided(inner, dir, payload, pcap_cnt) {
                    self.wants = inner_wants_more(inner);
                }
                return;
            }
        }
        // The FTPS watcher judges this chunk by the state before probing, but runs after the
        // probe: most flows are not FTP, and once the probe rules FTP out, only a pending
        // upgrade can still change anything (see `watch_ftps`).
        let ftps_open = l4 == L4::Tcp && ftps_watch_open(inner);
        if l4 == L4::Tcp {
            watch_smb(inner, dir, payload);
        }
        let d = inner.dir_mut(dir);
        if matches!(d.ev.state, ProbeState::Idle | ProbeState::Probing) {
            probe_step(l4, server_port, d, payload, pcap_cnt, budget);
        }
        if ftps_open {
            watch_ftps(inner, dir, payload, pcap_cnt);
        }
        self.wants = inner_wants_more(inner);
    }

    /// False once both directions are decided and no watcher needs more bytes, so the flow
    /// can stop feeding.
    pub const fn wants_more(&self) -> bool {
        self.wants
    }

    /// Decides directions still waiting for bytes as if their stream had ended (call at flow
    /// end so [`Classifier::evidence`] shows the final state).
    pub fn finish(&mut self) {
        // Nothing is probing once the classifier stopped wanting bytes.
        if !self.wants {
            return;
        }
        let (l4, server_port) = (self.l4, self.server_port);
        let Some(inner) = &mut self.inner else { return };
        let mut changed = false;
        for d in [&mut inner.ts, &mut inner.tc] {
            if d.ev.state == ProbeState::Probing {
                let out = pending_outcome(l4, server_port, d);
                apply_outcome(d, out);
                changed = true;
            }
        }
        if changed {
            self.wants = inner_wants_more(inner);
        }
    }

    /// The flow's labels from what has been seen so far; directions still probing are judged
    /// as if their stream had ended.
    pub fn labels(&self) -> Labels {
        let ts = self.outcome(Direction::ToServer);
        let tc = self.outcome(Direction::ToClient);
        let upgraded = self
            .inner
            .as_ref()
            .is_some_and(|i| i.ftps == FtpsWatch::Upgraded);
        merge(ts, tc, upgraded)
    }

    /// A cheap test to run before [`Classifier::labels`] when only a file-transfer control
    /// protocol is of interest: false when neither direction matched ftp, ftps, smb or tftp,
    /// neither is still probing (its pending outcome would need the probes run again) and
    /// no explicit FTPS upgrade happened. Then neither the labels nor the evidence can name
    /// such a protocol.
    pub fn may_name_control(&self) -> bool {
        let Some(inner) = &self.inner else {
            return false;
        };
        let open = |d: &DirProbe| {
            d.ev.state == ProbeState::Probing
                || d.ev.signature.is_some_and(|s| {
                    matches!(
                        s.proto,
                        AppProto::Ftp | AppProto::Ftps | AppProto::Smb | AppProto::Tftp
                    )
                })
        };
        inner.ftps == FtpsWatch::Upgraded || open(&inner.ts) || open(&inner.tc)
    }

    /// Evidence of one direction (an all-empty record before any payload).
    pub fn evidence(&self, dir: Direction) -> &DirEvidence {
        static EMPTY: DirEvidence = DirEvidence::EMPTY;
        self.inner.as_ref().map_or(&EMPTY, |i| &i.dir(dir).ev)
    }

    /// `pcap_cnt` of the packet that completed the explicit FTPS upgrade, if it happened.
    pub fn ftps_upgrade_pcap_cnt(&self) -> Option<u64> {
        self.inner.as_ref().and_then(|i| i.ftps_pcap_cnt)
    }

    /// Re-labels everything for the opposite orientation: the caller found that the flow's
    /// client is really its server (see [`Classifier::sides_swapped`]).
    pub fn swap_sides(&mut self) {
        std::mem::swap(&mut self.client_port, &mut self.server_port);
        if let Some(inner) = self.inner.as_mut() {
            std::mem::swap(&mut inner.ts, &mut inner.tc);
            inner.ftps = match inner.ftps {
                FtpsWatch::AuthSent(d) => FtpsWatch::AuthSent(d.reverse()),
                FtpsWatch::Accepted(d) => FtpsWatch::Accepted(d.reverse()),
                other => other,
            };
        }
    }

    /// What the matched bytes say about the flow's orientation: `Some(true)` when they prove
    /// the flow's client is really the server (a midstream pickup or a missed SYN, e.g. an
    /// SMB response or an FTP banner travelling to-server), `Some(false)` when they confirm
    /// it, `None` when they say nothing or contradict each other. Callers that judge ports
    /// should swap the ends first when this is `Some(true)`.
    pub fn sides_swapped(&self) -> Option<bool> {
        let inner = self.inner.as_ref()?;
        let vote = |d: &DirProbe, dir: Direction| {
            let role = d.ev.signature?.role;
            match (dir, role) {
                (_, Role::Either) => None,
                (Direction::ToServer, Role::Client) | (Direction::ToClient, Role::Server) => {
                    Some(false)
                }
                (Direction::ToServer, Role::Server) | (Direction::ToClient, Role::Client) => {
                    Some(true)
                }
            }
        };
        match (
            vote(&inner.ts, Direction::ToServer),
            vote(&inner.tc, Direction::ToClient),
        ) {
            (Some(a), Some(b)) if a != b => None,
            (Some(a), _) | (None, Some(a)) => Some(a),
            (None, None) => None,
        }
    }

    /// SMB details, when a direction was identified as SMB and an SMB header was read.
    pub fn smb_info(&self) -> Option<SmbInfo> {
        let inner = self.inner.as_ref()?;
        let is_smb = |d: &DirProbe| d.ev.signature.is_some_and(|s| s.proto == AppProto::Smb);
        if !is_smb(&inner.ts) && !is_smb(&inner.tc) {
            return None;
        }
        let s = inner.smb;
        let family = if s.encrypted || s.compressed || s.dialect.is_some_and(smb::is_smb3_dialect) {
            SmbFamily::Smb3
        } else if s.smb2 {
            SmbFamily::Smb2
        } else if s.smb1 {
            SmbFamily::Smb1
        } else {
            return None;
        };
        Some(SmbInfo {
            family,
            dialect: s.dialect,
            encrypted: s.encrypted,
            compressed: s.compressed,
        })
    }

    fn outcome(&self, dir: Direction) -> Outcome {
        let Some(inner) = &self.inner else {
            return Outcome::Silent;
        };
        let d = inner.dir(dir);
        match d.ev.state {
            ProbeState::Idle => Outcome::Silent,
            ProbeState::Unknown => Outcome::Unknown,
            ProbeState::Matched => d.ev.signature.map_or(Outcome::Unknown, Outcome::Sig),
            ProbeState::Probing => match pending_outcome(self.l4, self.server_port, d) {
                ProbeResult::Match(s) => Outcome::Sig(s),
                _ => Outcome::Unknown,
            },
        }
    }
}

/// Applies the implicit-FTPS port rule to a fresh match.
fn port_rule(mut s: Signature, server_port: u16) -> Signature {
    if s.proto == AppProto::Tls && IMPLICIT_FTPS_PORTS.contains(&server_port) {
        s.proto = AppProto::Ftps;
    }
    s
}

/// Runs the applicable probes over `data`, the preferred one first, skipping dead ones.
/// Returns the result and the updated dead mask.
fn run_probes(
    l4: L4,
    server_port: u16,
    data: &[u8],
    dead: u16,
    at_end: bool,
) -> (ProbeResult, u16) {
    let pref = preferred_probe(l4, server_port).map(ProbeId::row);
    let order = pref
        .into_iter()
        .chain((0..PROBES.len()).filter(|&i| Some(i) != pref));
    let mut dead = dead;
    let mut need_more = false;
    for i in order {
        let bit = 1u16 << i;
        let Some(p) = PROBES.get(i) else { continue };
        if p.l4 != l4 || dead & bit != 0 {
            continue;
        }
        let r = if at_end {
            (p.finish)(data)
        } else {
            (p.probe)(data)
        };
        match r {
            // Probes are mutually exclusive, so the first match is the only one possible.
            ProbeResult::Match(s) => return (ProbeResult::Match(port_rule(s, server_port)), dead),
            ProbeResult::NeedMore => need_more = true,
            ProbeResult::NoMatch => dead |= bit,
        }
    }
    let r = if need_more {
        ProbeResult::NeedMore
    } else {
        ProbeResult::NoMatch
    };
    (r, dead)
}

/// What a direction still probing would be if its stream ended now.
fn pending_outcome(l4: L4, server_port: u16, d: &DirProbe) -> ProbeResult {
    if l4 != L4::Tcp || d.buf.is_empty() {
        return ProbeResult::NoMatch;
    }
    run_probes(l4, server_port, &d.buf, d.dead, true).0
}

fn apply_outcome(d: &mut DirProbe, r: ProbeResult) {
    match r {
        ProbeResult::Match(s) => {
            d.ev.signature = Some(s);
            d.ev.pcap_cnt = Some(d.last_pcap_cnt);
            d.ev.state = ProbeState::Matched;
        }
        _ => d.ev.state = ProbeState::Unknown,
    }
    d.buf = Vec::new();
}

/// One probing step for a direction that is still undecided.
fn probe_step(
    l4: L4,
    server_port: u16,
    d: &mut DirProbe,
    payload: &[u8],
    pcap_cnt: u64,
    budget: &Budget,
) {
    let probed = usize::try_from(d.ev.bytes_probed).unwrap_or(usize::MAX);
    let room = budget.max_bytes.saturating_sub(probed);
    let chunk = payload.get(..room.min(payload.len())).unwrap_or_default();
    d.ev.packets_probed = d.ev.packets_probed.saturating_add(1);
    d.ev.bytes_probed =
        d.ev.bytes_probed
            .saturating_add(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
    let spent = usize::try_from(d.ev.bytes_probed).unwrap_or(usize::MAX) >= budget.max_bytes
        || d.ev.packets_probed >= budget.max_packets;
    d.ev.state = ProbeState::Probing;
    d.last_pcap_cnt = pcap_cnt;

    if l4 != L4::Tcp {
        // A datagram is complete: probe it alone, with `finish` semantics.
        let (r, _) = run_probes(l4, server_port, chunk, 0, true);
        let base = d.stream_off;
        d.stream_off = d.stream_off.saturating_add(payload.len());
        match r {
            ProbeResult::Match(mut s) => {
                s.offset = s.offset.saturating_add(base);
                apply_outcome(d, ProbeResult::Match(s));
            }
            _ if spent => apply_outcome(d, ProbeResult::NoMatch),
            _ => {}
        }
        return;
    }

    let r = if d.buf.is_empty() && d.ev.packets_probed == 1 {
        // Fast path: most first segments decide on their own, without copying.
        let (r, dead) = run_probes(l4, server_port, chunk, d.dead, spent);
        d.dead = dead;
        if r == ProbeResult::NeedMore {
            append_bounded(&mut d.buf, chunk, budget.max_bytes);
        }
        r
    } else {
        append_bounded(&mut d.buf, chunk, budget.max_bytes);
        let (r, dead) = run_probes(l4, server_port, &d.buf, d.dead, spent);
        d.dead = dead;
        r
    };
    if r != ProbeResult::NeedMore {
        apply_outcome(d, r);
    }
}

/// Appends to the accumulation buffer without letting its length or capacity pass `max`.
fn append_bounded(buf: &mut Vec<u8>, chunk: &[u8], max: usize) {
    let take = max.saturating_sub(buf.len()).min(chunk.len());
    let Some(part) = chunk.get(..take) else {
        return;
    };
    if buf.capacity() < buf.len() + take {
        let want = (buf.len() + take)
            .max(buf.capacity().saturating_mul(2))
            .max(256)
            .min(max);
        buf.reserve_exact(want.saturating_sub(buf.len()));
    }
    buf.extend_from_slice(part);
}

fn is_ftp_sig(d: &DirProbe) -> bool {
    d.ev.signature.is_some_and(|s| s.proto == AppProto::Ftp)
}

fn ftp_possible(d: &DirProbe) -> bool {
    let ftp_bit = ProbeId::Ftp.bit();
    match d.ev.state {
        ProbeState::Idle => true,
        ProbeState::Probing => d.dead & ftp_bit == 0,
        ProbeState::Matched => is_ftp_sig(d),
        ProbeState::Unknown => false,
    }
}

/// See [`Classifier::wants_more`]. Symmetric in the two directions, so swapping sides
/// leaves it unchanged.
fn inner_wants_more(inner: &Inner) -> bool {
    awaits_bytes(&inner.ts, &inner.tc)
        || awaits_bytes(&inner.tc, &inner.ts)
        || ftps_watch_active(inner)
        || smb_watch_active(inner)
}

/// Whether direction `d` still has probing to do. An idle direction whose `peer` sent a TFTP
/// read or write request has none: the server answers from a new port (RFC 1350 transfer
/// identifiers), so nothing is expected back on the request's own flow, and waiting for it
/// would keep the probe state for the flow's whole life (a flood of unanswered requests is
/// a table of such flows). Bytes that come anyway are not probed, so once this is false it
/// stays false.
fn awaits_bytes(d: &DirProbe, peer: &DirProbe) -> bool {
    match d.ev.state {
        ProbeState::Probing => true,
        ProbeState::Idle => !peer
            .ev
            .signature
            .is_some_and(|s| s.proto == AppProto::Tftp && s.name != tftp::SIG_OACK),
        _ => false,
    }
}

fn ftps_watch_active(inner: &Inner) -> bool {
    inner.ftps != FtpsWatch::Upgraded
        && inner.ftps_watched < FTPS_WATCH_PACKETS
        && (is_ftp_sig(&inner.ts) || is_ftp_sig(&inner.tc))
        && ftp_possible(&inner.ts)
        && ftp_possible(&inner.tc)
}

/// Whether the FTPS watcher reads the next chunk: not upgraded yet, within its packet
/// budget, and both directions may still be FTP.
fn ftps_watch_open(inner: &Inner) -> bool {
    inner.ftps != FtpsWatch::Upgraded
        && inner.ftps_watched < FTPS_WATCH_PACKETS
        && ftp_possible(&inner.ts)
        && ftp_possible(&inner.tc)
}

/// Explicit FTPS: `AUTH TLS|SSL` in one direction, `234` from the other, then a TLS record
/// from the AUTH sender. Called for a chunk that [`ftps_watch_open`] admitted before the
/// chunk was probed.
///
/// If probing that chunk ruled FTP out, the watcher never reads again (FTP stays ruled
/// out), so a new `AuthSent`/`Accepted` state or the packet count could no longer matter:
/// only an upgrade completed by this very chunk can. That saves scanning the first lines of
/// every non-FTP flow for `AUTH`.
fn watch_ftps(inner: &mut Inner, dir: Direction, payload: &[u8], pcap_cnt: u64) {
    if !(ftp_possible(&inner.ts) && ftp_possible(&inner.tc)) {
        if inner.ftps == FtpsWatch::Accepted(dir) && tls::is_handshake_record_start(payload) {
            inner.ftps_pcap_cnt = Some(pcap_cnt);
            inner.ftps = FtpsWatch::Upgraded;
        }
        return;
    }
    inner.ftps_watched = inner.ftps_watched.saturating_add(1);
    inner.ftps = match inner.ftps {
        FtpsWatch::Accepted(d) if d == dir => {
            if tls::is_handshake_record_start(payload) {
                inner.ftps_pcap_cnt = Some(pcap_cnt);
                FtpsWatch::Upgraded
            } else {
                FtpsWatch::Idle
            }
        }
        FtpsWatch::AuthSent(d) if d != dir => match ftp::reply_code(payload) {
            Some(234) => FtpsWatch::Accepted(d),
            Some(_) => FtpsWatch::Idle,
            None => FtpsWatch::AuthSent(d),
        },
        state => {
            if ftp::has_auth_tls_line(payload) {
                FtpsWatch::AuthSent(dir)
            } else {
                state
            }
        }
    };
}

/// The watchers' part of [`Classifier::feed`] for a direction already decided (matched or
/// unknown), where "may still be FTP/SMB" reduces to "matched FTP/SMB". Returns true when
/// something [`inner_wants_more`] reads may have changed.
fn watch_decided(inner: &mut Inner, dir: Direction, payload: &[u8], pcap_cnt: u64) -> bool {
    let mut changed = false;
    let (d, seen) = match dir {
        Direction::ToServer => (&mut inner.ts, &mut inner.smb),
        Direction::ToClient => (&mut inner.tc, &mut inner.smb),
    };
    if !d.nbss.done && is_smb_sig(d) {
        smb::track(&mut d.nbss, seen, payload);
        changed |= d.nbss.done;
    }
    if is_ftp_sig(inner.dir(dir)) && ftps_watch_open(inner) {
        watch_ftps(inner, dir, payload, pcap_cnt);
        changed = true;
    }
    changed
}

fn is_smb_sig(d: &DirProbe) -> bool {
    d.ev.signature.is_some_and(|s| s.proto == AppProto::Smb)
}

fn smb_watch_active(inner: &Inner) -> bool {
    (is_smb_sig(&inner.ts) || is_smb_sig(&inner.tc))
        && [&inner.ts, &inner.tc]
            .iter()
            .any(|d| !d.nbss.done && (is_smb_sig(d) || matches!(d.ev.state, ProbeState::Idle)))
}

/// Follows NBSS framing in `dir` while the direction is SMB or may still become SMB.
fn watch_smb(inner: &mut Inner, dir: Direction, payload: &[u8]) {
    let smb_bit = ProbeId::Smb.bit();
    let (d, seen) = match dir {
        Direction::ToServer => (&mut inner.ts, &mut inner.smb),
        Direction::ToClient => (&mut inner.tc, &mut inner.smb),
    };
    let eligible = match d.ev.state {
        ProbeState::Idle => true,
        ProbeState::Probing => d.dead & smb_bit == 0,
        ProbeState::Matched => is_smb_sig(d),
        ProbeState::Unknown => false,
    };
    if eligible && !d.nbss.done {
        smb::track(&mut d.nbss, seen, payload);
    }
}

/// How the peer's outcome backs a signature that may need corroboration.
fn backing(s: &Signature, peer: Outcome) -> Backing {
    let peer_sig = match peer {
        Outcome::Sig(p) => Some(p),
        _ => None,
    };
    let silent = peer == Outcome::Silent;
    let unknown = peer == Outcome::Unknown;
    // Only FTP signatures have special rules: skip comparing names for the rest.
    let name = if s.proto == AppProto::Ftp { s.name } else { "" };
    match name {
        ftp::SIG_COMMAND => match peer_sig.map(|p| p.name) {
            Some(ftp::SIG_BANNER | ftp::SIG_BANNER_GENERIC | ftp::SIG_REPLY) => Backing::Confirmed,
            None if silent => Backing::Tentative,
            _ => Backing::Rejected,
        },
        ftp::SIG_COMMAND_SHARED => match peer_sig.map(|p| p.name) {
            Some(ftp::SIG_BANNER | ftp::SIG_BANNER_GENERIC) => Backing::Confirmed,
            Some(ftp::SIG_REPLY) => Backing::Tentative,
            None if silent => Backing::Tentative,
            _ => Backing::Rejected,
        },
        ftp::SIG_REPLY => match peer_sig.map(|p| p.name) {
            Some(ftp::SIG_COMMAND) => Backing::Confirmed,
            Some(ftp::SIG_COMMAND_SHARED) => Backing::Tentative,
            None if silent => Backing::Tentative,
            _ => Backing::Rejected,
        },
        // A 220 banner with neither FTP nor SMTP markers: FTP unless the client speaks SMTP.
        ftp::SIG_BANNER_GENERIC => match peer_sig {
            Some(p) if p.proto == AppProto::Ftp => Backing::Confirmed,
            Some(_) => Backing::Rejected,
            None if silent || unknown => Backing::Tentative,
            None => Backing::Rejected,
        },
        _ if !s.needs_peer => Backing::Confirmed,
        // Remaining peer-dependent evidence (NBSS responses): same protocol from the peer.
        _ => match peer_sig {
            Some(p) if p.proto == s.proto => Backing::Confirmed,
            None if silent => Backing::Tentative,
            _ => Backing::Rejected,
        },
    }
}

/// A direction's label after corroboration: (protocol, tentative).
fn direction_label(own: Outcome, peer: Outcome) -> Option<(AppProto, bool)> {
    match own {
        Outcome::Sig(s) => match backing(&s, peer) {
            Backing::Confirmed => Some((s.proto, false)),
            Backing::Tentative => Some((s.proto, true)),
            Backing::Rejected => None,
        },
        _ => None,
    }
}

/// Two labels that name the same flow from either side.
fn compatible(a: AppProto, b: AppProto) -> Option<AppProto> {
    use AppProto::{Ftps, Tftp, TftpData, Tls};
    match (a, b) {
        _ if a == b => Some(a),
        (Tls, Ftps) | (Ftps, Tls) => Some(Ftps),
        (Tftp, TftpData) | (TftpData, Tftp) => Some(Tftp),
        _ => None,
    }
}

/// Merges the two directions into the flow's labels (see the module docs).
fn merge(ts: Outcome, tc: Outcome, ftps_upgraded: bool) -> Labels {
    // Most flows: a self-sufficient signature on one side, and on the other the same
    // protocol the same way, or nothing. FTP is left to the full rules (corroboration,
    // the FTPS upgrade).
    let plain = |o: Outcome| match o {
        Outcome::Sig(s) if !s.needs_peer && s.proto != AppProto::Ftp => Some(s.proto),
        _ => None,
    };
    let quiet = |o: Outcome| matches!(o, Outcome::Silent | Outcome::Unknown);
    let agreed = match (plain(ts), plain(tc)) {
        (Some(a), Some(b)) if a == b => Some(a),
        (Some(a), None) if quiet(tc) => Some(a),
        (None, Some(b)) if quiet(ts) => Some(b),
        _ => None,
    };
    match agreed {
        Some(app_proto) => Labels {
            app_proto,
            ts: None,
            tc: None,
            orig: None,
            tentative: false,
        },
        None => merge_rules(ts, tc, ftps_upgraded),
    }
}

/// [`merge`] without its shortcut: corroboration, disagreement and the FTPS upgrade.
fn merge_rules(ts: Outcome, tc: Outcome, ftps_upgraded: bool) -> Labels {
    let l_ts = direction_label(ts, tc);
    let l_tc = direction_label(tc, ts);
    let mut labels = Labels {
        app_proto: AppProto::Unknown,
        ts: None,
        tc: None,
        orig: None,
        tentative: false,
    };
    match (l_ts, l_tc) {
        (None, None) => {}
        (Some((p, t)), None) | (None, Some((p, t))) => {
            labels.app_proto = p;
            labels.tentative = t;
        }
        (Some((a, ta)), Some((b, tb))) => match compatible(a, b) {
            Some(p) => {
                labels.app_proto = p;
                labels.tentative = ta && tb;
            }
            None => {
                // Disagreement: name the file-transfer side if there is exactly one (that is
                // what this sensor watches), else the client's side.
                labels.app_proto = if b.is_file_transfer() && !a.is_file_transfer() {
                    b
                } else {
                    a
                };
                labels.ts = Some(a);
                labels.tc = Some(b);
                labels.tentative = ta || tb;
            }
        },
    }
    if ftps_upgraded && labels.app_proto == AppProto::Ftp && !labels.disagree() {
        labels.app_proto = AppProto::Ftps;
        labels.orig = Some(AppProto::Ftp);
    }
    labels
}

#[cfg(test)]
mod tests;
