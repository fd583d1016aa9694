//! Worker stage: drives decode → flow → (identify → session → detect) for one shard of
//! traffic and turns ended flows into EVE records.
//!
//! The engine owns all per-flow state, so the hot path takes no locks. Records are
//! serialised here and sent to the writer thread as owned lines.

use crate::app_proto::AppProto;
use crate::capture::{Batch, FrameMeta, ReadStats};
use crate::decode::{DecodeStats, Decoder};
use crate::detect::{Alert, DetectSettings, Detector, MismatchRule, MismatchView};
use crate::direction::Direction;
use crate::flow::{EndReason, Flow, FlowLimits, FlowTable};
use crate::identify::verdict::{self, PortException, PortPolicy, Verdict};
use crate::identify::{Budget, Classifier, L4, Labels};
use crate::output::eve::{
    self, AlertRecord, AnomalyBody, AnomalyRecord, AppProtoFields, DirIdentification, FlowObj,
    FlowRecord, Header, Identification, SessionRecord, SessionXfer, StatsBody, StatsRecord,
    TxRecord, XferFlow, XferRef,
};
use crate::output::queue::{Lane, OutSender};
use crate::output::{EventKind, KindCounts, OutMsg};
use crate::proto::Endpoint;
use crate::proto::ftp::{FtpConfig, FtpControl, FtpEvent};
use crate::proto::smb::{SmbConfig, SmbConnection, SmbEvent};
use crate::proto::tftp::{RequestKind, TftpTransfer};
use crate::session::expect::Expectation;
use crate::session::{FlowRole, MainFlow, Parser, SessionId, SessionLimits, SessionTable};
use crate::time::Ts;
use crate::zones::{Zone, Zones};
use std::cell::RefCell;

/// Validated settings the engine runs with.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Flow table limits.
    pub flow_limits: FlowLimits,
    /// IPv4/IPv6 fragment trains tracked at once.
    pub max_fragments: usize,
    /// Periodic stats interval in packet-time seconds (0 = only the final record).
    pub stats_interval: u64,
    /// Replaying files: records carry `pcap_cnt`.
    pub replay: bool,
    /// Trust-zone classifier.
    pub zones: Zones,
    /// Identification budget per direction.
    pub budget: Budget,
    /// Port policy for mismatch verdicts.
    pub policy: PortPolicy,
    /// Detection thresholds, suppression and allowlists.
    pub detect: DetectSettings,
    /// Session and expectation caps.
    pub session_limits: SessionLimits,
}

impl EngineSettings {
    /// Runtime settings from a validated config.
    pub fn from_config(cfg: &crate::config::Config, replay: bool) -> EngineSettings {
        let f = &cfg.flows;
        EngineSettings {
            flow_limits: FlowLimits {
                max_flows: f.max_flows.as_usize(),
                tcp_new: u64::from(f.tcp_new.get()),
                tcp_established: u64::from(f.tcp_established.get()),
                tcp_closed: u64::from(f.tcp_closed.get()),
                udp_new: u64::from(f.udp_new.get()),
                udp_established: u64::from(f.udp_established.get()),
                icmp: u64::from(f.icmp.get()),
                other: u64::from(f.other.get()),
                reorder_bytes: f.reorder_bytes as usize,
                reorder_memory: f.max_reorder_memory_mib.as_usize().saturating_mul(1 << 20),
            },
            max_fragments: f.max_fragments.as_usize(),
            stats_interval: u64::from(cfg.output.stats_interval),
            replay,
            zones: Zones::from_config(&cfg.networks),
            budget: Budget {
                max_bytes: cfg.identify.probe_bytes.as_usize(),
                max_packets: cfg.identify.probe_packets.get(),
            },
            policy: PortPolicy::new(
                &cfg.port_table(),
                cfg.port_exceptions()
                    .into_iter()
                    .map(|(net, proto, ports)| PortException { net, proto, ports })
                    .collect(),
            ),
            detect: DetectSettings::from_config(cfg),
            session_limits: SessionLimits {
                max_sessions: cfg.sessions.max_sessions.as_usize(),
                max_expectations: cfg.sessions.max_expectations.as_usize(),
                expectation_ttl: u64::from(cfg.sessions.expectation_timeout.get()),
                max_files: cfg.sessions.max_files.as_usize(),
            },
        }
    }
}

impl EngineSettings {
    /// One worker's settings when `workers` share the sensor: every table cap is split
    /// evenly (rounded up), so the configured caps bound the whole sensor's memory.
    pub fn shared_by(&self, workers: usize) -> EngineSettings {
        let mut s = self.clone();
        if workers <= 1 {
            return s;
        }
        let share = |cap: usize| cap.div_ceil(workers).max(1);
        s.flow_limits.max_flows = share(s.flow_limits.max_flows);
        s.max_fragments = share(s.max_fragments);
        s.flow_limits.reorder_memory = share(s.flow_limits.reorder_memory);
        s.session_limits.max_sessions = share(s.session_limits.max_sessions);
        s.session_limits.max_expectations = share(s.session_limits.max_expectations);
        let d = &mut s.detect;
        d.max_sessions = share(d.max_sessions);
        d.max_hosts = share(d.max_hosts);
        d.max_destinations = share(d.max_destinations);
        d.max_connections = share(d.max_connections);
        d.max_suppression_keys = share(d.max_suppression_keys);
        s
    }
}

/// Application-layer state the engine keeps on every flow.
#[derive(Debug, Default)]
pub struct FlowApp {
    /// Identification state; created at the first payload.
    classifier: Option<Classifier>,
    /// The mismatch verdict has been decided (raised or not).
    judged: bool,
    /// An alert was raised on this flow.
    alerted: bool,
    /// The label an expectation assigned (linked data channel).
    expected: Option<AppProto>,
    /// Session this flow belongs to, and its part in it.
    session: Option<(SessionId, FlowRole)>,
    /// Direction whose payload is outbound (internal → external), when the flow crosses.
    outbound_dir: Option<Direction>,
    /// Host-pair links (FTPS data) are not certain.
    link_confidence: Option<f64>,
    /// The tunnel the flow's first tunnelled packet came in. The tunnel is not part of the
    /// flow key: a remote-SPAN copy describes the path, not the conversation, so the same
    /// inner 5-tuple seen plain and tunnelled is one flow (duplicates count as
    /// retransmissions), and FTP/TFTP expectations match inner addresses whatever carried
    /// them.
    tunnel: Option<crate::decode::Tunnel>,
    /// Labels cached once identification settled (they no longer change; merging the two
    /// directions again for every consumer showed up in profiles).
    labels: Option<Labels>,
}

/// If the matched bytes prove the heuristic picked the wrong client (a midstream pickup),
/// swap the ends before anything is judged or written. A seen SYN always wins.
fn settle_orientation(flow: &mut Flow<FlowApp>) {
    if flow.dirs.iter().any(|d| d.syn) {
        return;
    }
    let swapped = flow
        .app
        .classifier
        .as_ref()
        .and_then(Classifier::sides_swapped);
    if swapped == Some(true) {
        flow.swap_sides();
        if let Some(cls) = flow.app.classifier.as_mut() {
            cls.swap_sides();
        }
    }
}

/// The labels of a flow that carried payload (None for attempts): the ones cached when
/// identification settled, else computed from the classifier as it stands.
fn flow_labels(flow: &Flow<FlowApp>) -> Option<Labels> {
    flow.app
        .labels
        .or_else(|| flow.app.classifier.as_ref().map(Classifier::labels))
}

fn app_fields(flow: &Flow<FlowApp>) -> AppProtoFields {
    let payload = flow.dirs.iter().any(|d| d.payload > 0);
    let expected = flow.app.expected.map(AppProto::as_str);
    match (flow.app.expected, flow_labels(flow)) {
        (Some(exp), _) => AppProtoFields {
            app_proto: Some(exp.as_str()),
            app_proto_ts: None,
            app_proto_tc: None,
            app_proto_orig: None,
            app_proto_expected: expected,
        },
        (None, Some(l)) => AppProtoFields {
            app_proto: Some(l.app_proto.as_str()),
            app_proto_ts: l.ts.map(AppProto::as_str),
            app_proto_tc: l.tc.map(AppProto::as_str),
            app_proto_orig: l.orig.map(AppProto::as_str),
            app_proto_expected: None,
        },
        // No classifier: an attempt (no payload) has no label; payload without one (e.g.
        // only fragments) is unknown.
        (None, None) => AppProtoFields {
            app_proto: payload.then_some("unknown"),
            app_proto_ts: None,
            app_proto_tc: None,
            app_proto_orig: None,
            app_proto_expected: None,
        },
    }
}

/// What the probes saw, per direction, for the alert's evidence.
fn identification(cls: &Classifier, budget: &Budget) -> Identification {
    let dir = |d: Direction| {
        let ev = cls.evidence(d);
        let head = ev.head();
        DirIdentification {
            signature: ev.signature.map(|s| s.name),
            protocol: ev.signature.map(|s| s.proto.as_str()),
            offset: ev.signature.map(|s| s.offset),
            pcap_cnt: ev.pcap_cnt,
            bytes_probed: ev.bytes_probed,
            packets_probed: ev.packets_probed,
            first_bytes_hex: hex(head),
            first_bytes_text: printable(head),
        }
    };
    Identification {
        toserver: dir(Direction::ToServer),
        toclient: dir(Direction::ToClient),
        budget_bytes: budget.max_bytes,
        budget_packets: budget.max_packets,
    }
}

fn hex(b: &[u8]) -> String {
    // A table, not `write!("{:02x}")`: formatting each byte cost ~100 instructions.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |n: u8| char::from(DIGITS.get(usize::from(n & 0xf)).copied().unwrap_or(b'0'));
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(digit(x >> 4));
        s.push(digit(x));
    }
    s
}

/// Bytes as text with anything unprintable shown as `.`.
fn printable(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if (0x20..0x7f).contains(&c) {
                c as char
            } else {
                '.'
            }
        })
        .collect()
}

/// The engine's output side: settings, the detector and the writer channel. Kept apart
/// from the flow table so a flow can be borrowed while alerts about it are written.
struct Reporter {
    settings: EngineSettings,
    detector: Detector,
    alerts: Vec<Alert>,
    out: OutSender,
    /// Lines not yet handed to the writer. A `RefCell` because the engine's record builders
    /// take `&self`; the engine is single-threaded, so this is never contended.
    pending: RefCell<(Vec<u8>, KindCounts)>,
    /// Alert lines not yet handed over: they take their own lane (see `output::queue`).
    pending_alerts: RefCell<(Vec<u8>, KindCounts)>,
}

/// Gathered output is handed over at least this often.
const PENDING_FLUSH_BYTES: usize = 256 * 1024;

impl Reporter {
    /// Queues a record. Lines are gathered into one block per input batch (or per 256 KiB)
    /// so the writer wakes once per batch, not once per record; anything else flushes the
    /// blocks first to keep the order. Alerts are gathered apart and always handed over
    /// before the other lines, so an alert never trails a record made after it.
    fn send(&self, msg: OutMsg) {
        match msg {
            OutMsg::Line(kind, line) => {
                let cell = if kind == EventKind::Alert {
                    &self.pending_alerts
                } else {
                    &self.pending
                };
                let full = {
                    let mut p = cell.borrow_mut();
                    p.0.extend_from_slice(&line);
                    p.0.push(b'\n');
                    p.1.add(kind);
                    p.0.len() >= PENDING_FLUSH_BYTES
                };
                if full {
                    self.flush_pending();
                }
            }
            other => {
                self.flush_pending();
                let counts = other.counts();
                self.out.send(Lane::Records, other, &counts);
            }
        }
    }

    /// Hands the gathered lines to the writer: alerts first.
    fn flush_pending(&self) {
        let alerts = std::mem::take(&mut *self.pending_alerts.borrow_mut());
        if !alerts.0.is_empty() {
            self.out
                .send(Lane::Alerts, OutMsg::Block(alerts.0, alerts.1), &alerts.1);
        }
        // Start the next block at a useful size instead of growing it from empty each batch.
        let next = (
            Vec::with_capacity(PENDING_FLUSH_BYTES / 4),
            KindCounts::default(),
        );
        let (data, counts) = std::mem::replace(&mut *self.pending.borrow_mut(), next);
        if !data.is_empty() {
            // Live: a full queue drops the block and counts its records per type (the
            // sender knows its mode); replay waits for room.
            self.out
                .send(Lane::Records, OutMsg::Block(data, counts), &counts);
        }
    }

    /// The header for records about `flow`, stamped at `ts`.
    fn header(
        settings: &EngineSettings,
        flow: &Flow<FlowApp>,
        event_type: &'static str,
        ts: Ts,
        pcap_cnt: u64,
    ) -> Header {
        let icmp = matches!(flow.key.proto, 1 | 58).then_some(flow.icmp);
        endpoint_header(
            EndpointIds {
                flow_id: flow.flow_id,
                client: flow.client_endpoint(),
                server: flow.server_endpoint(),
                proto: flow.key.proto,
                icmp,
                vlan: flow.key.vlan,
            },
            event_type,
            ts,
            settings.replay.then_some(pcap_cnt),
        )
    }

    fn flow_record(
        settings: &EngineSettings,
        flow: &Flow<FlowApp>,
        reason: EndReason,
    ) -> FlowRecord {
        let (cip, _) = flow.client_endpoint();
        let (sip, _) = flow.server_endpoint();
        let cz = settings.zones.classify(cip);
        let sz = settings.zones.classify(sip);
        let [ts, tc] = flow.dirs;
        // Only one direction captured: the other's bytes come from the seen side's ACKs
        // rather than being taken as zero (which would read as 100 % one way).
        let estimate = flow.estimated_unseen_payload();
        let est = |d: Direction| estimate.and_then(|(u, n)| (u == d).then_some(n));
        let (est_ts, est_tc) = (est(Direction::ToServer), est(Direction::ToClient));
        let (ts_pay, tc_pay) = (est_ts.unwrap_or(ts.payload), est_tc.unwrap_or(tc.payload));
        let (outbound, inbound) = match (cz.zone, sz.zone) {
            (Zone::Internal, Zone::External) => (ts_pay, tc_pay),
            (Zone::External, Zone::Internal) => (tc_pay, ts_pay),
            _ => (0, 0),
        };
        FlowRecord {
            header: Self::header(settings, flow, "flow", flow.last, flow.last_pcap_cnt),
            app: app_fields(flow),
            flow: FlowObj {
                pkts_toserver: ts.pkts,
                pkts_toclient: tc.pkts,
                bytes_toserver: ts.bytes,
                bytes_toclient: tc.bytes,
                start: flow.start.eve(),
                end: flow.last.eve(),
                age: flow.last.since(flow.start) / Ts::NANOS_PER_SEC,
                state: flow.state_str(),
                reason: reason.as_str(),
                alerted: flow.app.alerted,
            },
            xfer: XferFlow {
                payload_toserver: ts.payload,
                payload_toclient: tc.payload,
                retransmitted_toserver: ts.retransmitted,
                retransmitted_toclient: tc.retransmitted,
                missing_toserver: ts.missing,
                missing_toclient: tc.missing,
                outbound_bytes: outbound,
                inbound_bytes: inbound,
                src_zone: cz.zone.as_str(),
                dest_zone: sz.zone.as_str(),
                src_zone_source: cz.source,
                dest_zone_source: sz.source,
                session_id: None,
                command: None,
                filename: None,
                link_confidence: None,
                tunnel: flow.app.tunnel.map(crate::decode::Tunnel::as_str),
                visibility: flow.one_sided().then_some("one-sided"),
                estimated_payload_toserver: est_ts,
                estimated_payload_toclient: est_tc,
            },
        }
    }

    /// Runs the mismatch verdict of `flow` through the detector (allowlist, suppression)
    /// and writes the alerts it returns. Returns true if any was written.
    fn mismatch(&mut self, flow: &Flow<FlowApp>, pcap_cnt: u64, reason: &'static str) -> bool {
        let (Some(cls), Some(labels)) = (flow.app.classifier.as_ref(), flow_labels(flow)) else {
            return false;
        };
        let (cip, cport) = flow.client_endpoint();
        let (sip, sport) = flow.server_endpoint();
        let Some(v) = verdict::judge(
            &labels,
            flow.app.expected.is_some(),
            sip,
            sport,
            flow.dirs[0].payload,
            flow.dirs[1].payload,
            &self.settings.policy,
        ) else {
            return false;
        };
        let rule = match &v {
            Verdict::PortMismatch { .. } => MismatchRule::PortMismatch,
            Verdict::ExpectedProtocolAbsent { .. } => MismatchRule::ExpectedProtocolAbsent,
            Verdict::DirectionDisagreement { .. } => MismatchRule::DirectionDisagreement,
        };
        let (expected_here, expected_ports) = v.expected();
        let detail = v.to_string();
        let view = MismatchView {
            rule,
            session_id: None,
            client: (cip, cport),
            server: (sip, sport),
            src_zone: self.settings.zones.classify(cip),
            dest_zone: self.settings.zones.classify(sip),
            found: v.found(),
            app_proto_ts: labels.ts,
            app_proto_tc: labels.tc,
            expected_protocols: expected_here,
            expected_ports,
            detail: &detail,
            now: flow.last,
        };
        let mut alerts = std::mem::take(&mut self.alerts);
        self.detector.on_mismatch(&view, &mut alerts);
        let wrote = !alerts.is_empty();
        let ident = identification(cls, &self.settings.budget);
        for mut a in alerts.drain(..) {
            a.xfer.evidence.identification = Some(ident.clone());
            self.write_alert(flow, a, pcap_cnt, reason);
        }
        self.alerts = alerts;
        wrote
    }

    /// Wraps a detector alert about a session into an EVE alert record: the header names
    /// the session's main flow (control connection, TFTP request, SMB connection), and the
    /// `flow` object is that flow's when it is the one at hand.
    fn write_session_alert(
        &self,
        s: &crate::session::Session,
        flow: &Flow<FlowApp>,
        a: Alert,
        pcap_cnt: u64,
        reason: &'static str,
    ) {
        let mut header = session_header(s, "alert");
        header.timestamp = a.ts.eve();
        header.pcap_cnt = self.settings.replay.then_some(pcap_cnt);
        let (app, flow_obj) = if flow.flow_id == s.main.flow_id {
            let mut rec = Self::flow_record(&self.settings, flow, EndReason::Timeout);
            rec.flow.reason = reason;
            rec.flow.alerted = true;
            (rec.app, Some(rec.flow))
        } else {
            let app = AppProtoFields {
                app_proto: Some(s.proto.as_str()),
                app_proto_ts: None,
                app_proto_tc: None,
                app_proto_orig: (s.proto == AppProto::Ftps && matches!(s.parser, Parser::Ftp(_)))
                    .then_some(AppProto::Ftp.as_str()),
                app_proto_expected: None,
            };
            (app, None)
        };
        let record = AlertRecord {
            header,
            app,
            alert: a.alert,
            flow: flow_obj,
            xfer: a.xfer,
        };
        if let Ok(line) = serde_json::to_vec(&record) {
            self.send(OutMsg::Line(EventKind::Alert, line));
        }
    }

    /// Wraps a detector alert about `flow` into an EVE alert record and sends it.
    fn write_alert(&self, flow: &Flow<FlowApp>, a: Alert, pcap_cnt: u64, reason: &'static str) {
        let mut rec = Self::flow_record(&self.settings, flow, EndReason::Timeout);
        let mut header = rec.header;
        header.event_type = "alert";
        header.timestamp = a.ts.eve();
        header.pcap_cnt = self.settings.replay.then_some(pcap_cnt);
        rec.flow.reason = reason;
        rec.flow.alerted = true;
        let record = AlertRecord {
            header,
            app: rec.app,
            alert: a.alert,
            flow: Some(rec.flow),
            xfer: a.xfer,
        };
        if let Ok(line) = serde_json::to_vec(&record) {
            self.send(OutMsg::Line(EventKind::Alert, line));
        }
    }
}

/// What one chunk did to identification.
struct Identified {
    /// Identification is complete and the verdict not yet decided.
    judge_now: bool,
    /// The chunk was probed (identification was still running): only then can a session
    /// start, so settled flows never pay for the check again.
    probed: bool,
}

/// Feeds identification (not inlined: see [`conclude`]).
#[inline(never)]
fn identify(
    flow: &mut Flow<FlowApp>,
    dir: Direction,
    bytes: &[u8],
    gap: bool,
    proto: u8,
    pcap_cnt: u64,
    budget: &Budget,
) -> Identified {
    // The ports are read only for a new classifier: most calls find one.
    if flow.app.classifier.is_none() {
        let l4 = match proto {
            6 => L4::Tcp,
            17 => L4::Udp,
            _ => L4::Other,
        };
        let (_, cport) = flow.client_endpoint();
        let (_, sport) = flow.server_endpoint();
        flow.app.classifier = Some(Classifier::new(l4, cport, sport));
    }
    let app = &mut flow.app;
    let Some(cls) = app.classifier.as_mut() else {
        return Identified {
            judge_now: false,
            probed: false,
        };
    };
    // A hole breaks a TCP stream for the probes; a UDP datagram stands alone.
    let probed = cls.wants_more() && (proto == 17 || !gap);
    if probed {
        cls.feed(dir, bytes, pcap_cnt, budget);
    }
    Identified {
        judge_now: !cls.wants_more() && !app.judged,
        probed,
    }
}

/// Ends identification of `flow` (once, when it settles or the flow ends): decides directions
/// still waiting for bytes, fixes the orientation, caches the labels, links an FTPS data
/// channel and raises the mismatch verdict.
///
/// Not inlined, like [`identify`] and [`session_kind`]: these three are identification's
/// whole share of a replay, and BENCHMARKS.md reads its cost off their inclusive
/// instruction counts in a callgrind profile.
#[inline(never)]
fn conclude(
    sessions: &mut SessionTable,
    rep: &mut Reporter,
    flow: &mut Flow<FlowApp>,
    pcap_cnt: u64,
    reason: &'static str,
) {
    if let Some(cls) = flow.app.classifier.as_mut() {
        cls.finish();
    }
    if flow.app.judged {
        return;
    }
    settle_orientation(flow);
    flow.app.labels = flow.app.classifier.as_ref().map(Classifier::labels);
    link_ftps_data(sessions, &rep.settings, flow);
    flow.app.judged = true;
    if rep.mismatch(flow, pcap_cnt, reason) {
        flow.app.alerted = true;
    }
    // Everything identification had to say is in the cached labels and the verdict just
    // judged; a judged flow is never probed again. Freeing the probe state here halves the
    // memory of a long-lived flow (about 540 B of evidence and buffers per flow).
    flow.app.classifier = None;
}

/// The direction of `flow` whose payload is outbound, when it crosses the boundary.
fn outbound_dir(settings: &EngineSettings, flow: &Flow<FlowApp>) -> Option<Direction> {
    let c = settings.zones.zone(flow.client_endpoint().0);
    let s = settings.zones.zone(flow.server_endpoint().0);
    match (c, s) {
        (Zone::Internal, Zone::External) => Some(Direction::ToServer),
        (Zone::External, Zone::Internal) => Some(Direction::ToClient),
        _ => None,
    }
}

/// A flow's payload split into (outbound, inbound) by its outbound direction; `grown` bytes
/// of `dir` are left out (the caller counts them separately).
fn payload_split(flow: &Flow<FlowApp>, (dir, grown): (Direction, u64)) -> (u64, u64) {
    let (mut ts_b, mut tc_b) = (flow.dirs[0].payload, flow.dirs[1].payload);
    match dir {
        Direction::ToServer => ts_b = ts_b.saturating_sub(grown),
        Direction::ToClient => tc_b = tc_b.saturating_sub(grown),
    }
    match flow.app.outbound_dir {
        Some(Direction::ToServer) => (ts_b, tc_b),
        Some(Direction::ToClient) => (tc_b, ts_b),
        None => (0, 0),
    }
}

/// The session protocol a flow's identification evidence proves, if any (not inlined: see
/// [`conclude`]).
#[inline(never)]
fn session_kind(cls: &Classifier) -> Option<AppProto> {
    // Most flows carry no file-transfer protocol: skip merging the directions for them.
    if !cls.may_name_control() {
        return None;
    }
    let labels = cls.labels();
    if labels.orig == Some(AppProto::Ftp) || labels.app_proto == AppProto::Ftps {
        return Some(AppProto::Ftps);
    }
    let mut kind = None;
    for d in [Direction::ToServer, Direction::ToClient] {
        let Some(sig) = cls.evidence(d).signature else {
            continue;
        };
        match sig.proto {
            AppProto::Smb | AppProto::Tftp => return Some(sig.proto),
            // FTP commands alone may be another protocol's: wait for the reply.
            AppProto::Ftp if !sig.needs_peer || labels.app_proto == AppProto::Ftp => {
                kind = Some(AppProto::Ftp)
            }
            AppProto::Ftps => return Some(AppProto::Ftps),
            _ => {}
        }
    }
    kind
}

/// Starts a session when identification has just named a session protocol; `bytes` is the
/// chunk that did it, which the new parser also sees.
fn start_session(
    sessions: &mut SessionTable,
    settings: &EngineSettings,
    flow: &mut Flow<FlowApp>,
    bytes: &[u8],
    (dir, grown): (Direction, u64),
    ts: Ts,
) {
    let Some(kind) = flow.app.classifier.as_ref().and_then(session_kind) else {
        return;
    };
    let client = flow.client_endpoint();
    let server = flow.server_endpoint();
    let parser = match kind {
        AppProto::Ftp => Parser::Ftp(Box::new(FtpControl::new(
            FtpConfig::default(),
            client.0,
            server.0,
        ))),
        AppProto::Smb => Parser::Smb(Box::new(SmbConnection::new(SmbConfig::default()))),
        AppProto::Tftp => match TftpTransfer::new(bytes) {
            Some(t) => Parser::Tftp(Box::new(t)),
            None => return,
        },
        _ => Parser::None,
    };
    let zones = (
        settings.zones.classify(client.0),
        settings.zones.classify(server.0),
    );
    let main = MainFlow {
        flow_id: flow.flow_id,
        proto: flow.key.proto,
        vlan: flow.key.vlan,
    };
    let Some(sid) = sessions.create(kind, client, server, zones, main, parser, flow.start) else {
        return;
    };
    flow.app.session = Some((sid, FlowRole::Main));
    flow.app.outbound_dir = outbound_dir(settings, flow);
    let Some(s) = sessions.get_mut(sid) else {
        return;
    };
    // The bytes before this packet were probed, not parsed: count them now (this packet's
    // growth is counted by the session step that follows).
    let (out_b, in_b) = payload_split(flow, (dir, grown));
    s.outbound += out_b;
    s.inbound += in_b;
    // Whether this flow carried anything before this packet.
    s.carried_payload = flow.dirs.iter().map(|d| d.payload).sum::<u64>() > grown;
    // TFTP's request is all the main flow carries: its bytes went to the probe above.
    if let Parser::Tftp(t) = &s.parser {
        let (direction, command) = match t.kind() {
            RequestKind::Write => (crate::proto::TransferDirection::Upload, "WRQ"),
            RequestKind::Read => (crate::proto::TransferDirection::Download, "RRQ"),
        };
        let name = t.file().to_string();
        s.files.push(crate::session::FileEntry {
            name,
            direction,
            command,
            bytes: 0,
            complete: false,
            kind: None,
            flow_id: None,
            judged: false,
        });
        // Judged at the request, before any data moves (see SessionCtx::packet).
        s.unjudged = true;
        // The transfer comes from the server's new port to the client's port.
        let exp = Expectation {
            proto: AppProto::TftpData,
            l4: 17,
            listener: client.0,
            port: client.1,
            peer: Some(server.0),
            peer_port: None,
            reversible: true,
            session_id: sid,
            purpose: command,
            tag: 0,
        };
        sessions.expect.insert(exp, ts);
    }
}

/// Links a TLS flow to a live FTPS control session between the same hosts.
fn link_ftps_data(
    sessions: &mut SessionTable,
    settings: &EngineSettings,
    flow: &mut Flow<FlowApp>,
) {
    if flow.app.session.is_some() || flow.app.expected.is_some() || flow.key.proto != 6 {
        return;
    }
    let Some(labels) = flow_labels(flow) else {
        return;
    };
    if labels.app_proto != AppProto::Tls {
        return;
    }
    let (cip, cport) = flow.client_endpoint();
    let (sip, sport) = flow.server_endpoint();
    let Some(sid) = sessions.ftps_between(cip, sip) else {
        return;
    };
    let Some(s) = sessions.get(sid) else {
        return;
    };
    // The control connection itself, or another port of the control server below 1024,
    // is not a data channel.
    if (cport, sport) == (s.client.1, s.server.1) || (sport < 1024 && sport != 989 && cport < 1024)
    {
        return;
    }
    // 989 is the FTPS data port; other dynamic ports only share the host pair.
    let confidence = if sport == 989 || cport == 989 {
        0.95
    } else {
        0.8
    };
    flow.app.expected = Some(AppProto::FtpsData);
    flow.app.session = Some((sid, FlowRole::Data));
    flow.app.outbound_dir = outbound_dir(settings, flow);
    flow.app.link_confidence = Some(confidence);
    let (ts_b, tc_b) = (flow.dirs[0].payload, flow.dirs[1].payload);
    let (out_b, in_b) = payload_split(flow, (Direction::ToServer, 0));
    if let Some(s) = sessions.get_mut(sid) {
        s.add_data_channel(flow.flow_id);
        s.data_bytes(flow.flow_id, ts_b + tc_b);
        s.outbound += out_b;
        s.inbound += in_b;
        s.carried_payload |= ts_b + tc_b > 0;
    }
    sessions.stats.linked_by_host_pair += 1;
}

/// Header of records about a session, from its main flow's identity.
fn session_header(s: &crate::session::Session, event_type: &'static str) -> Header {
    let ids = EndpointIds {
        flow_id: s.main.flow_id,
        client: s.client,
        server: s.server,
        proto: s.main.proto,
        icmp: None,
        vlan: s.main.vlan,
    };
    endpoint_header(ids, event_type, s.last_ts, None)
}

/// What names a flow in a record header.
struct EndpointIds {
    flow_id: u64,
    client: (std::net::IpAddr, u16),
    server: (std::net::IpAddr, u16),
    proto: u8,
    /// ICMP type and code, for ICMP flows (they replace the ports).
    icmp: Option<(u8, u8)>,
    vlan: [u16; 2],
}

/// The EVE header for a flow identity; flow and session records share it.
fn endpoint_header(
    id: EndpointIds,
    event_type: &'static str,
    ts: Ts,
    pcap_cnt: Option<u64>,
) -> Header {
    let ((cip, cport), (sip, sport)) = (id.client, id.server);
    let (cid_sport, cid_dport) = match id.icmp {
        Some((t, c)) => (u16::from(t), u16::from(c)),
        None => (cport, sport),
    };
    let ports = id.icmp.is_none();
    Header {
        timestamp: ts.eve(),
        flow_id: id.flow_id,
        pcap_cnt,
        event_type,
        src_ip: cip,
        src_port: ports.then_some(cport),
        dest_ip: sip,
        dest_port: ports.then_some(sport),
        proto: eve::proto_name(id.proto),
        icmp_type: id.icmp.map(|(t, _)| t),
        icmp_code: id.icmp.map(|(_, c)| c),
        vlan: id.vlan.iter().copied().filter(|v| *v != 0).collect(),
        community_id: crate::community_id::community_id(
            0, cip, sip, id.proto, cid_sport, cid_dport,
        ),
    }
}

/// Adds payload a one-sided flow's ACKs say the unseen direction `unseen` carried to the
/// flow's session, so its outbound share is not a false 100 %.
fn estimated_growth(sessions: &mut SessionTable, flow: &Flow<FlowApp>, unseen: Direction, n: u64) {
    let Some((sid, _)) = flow.app.session else {
        return;
    };
    let Some(s) = sessions.get_mut(sid) else {
        return;
    };
    match flow.app.outbound_dir {
        Some(d) if d == unseen => s.outbound += n,
        Some(_) => s.inbound += n,
        None => {}
    }
}

/// Outbound growth between two detector checks of a session.
const CHECK_EVERY_BYTES: u64 = 64 * 1024;

/// The session side of the engine, borrowed alongside one flow.
struct SessionCtx<'a> {
    sessions: &'a mut SessionTable,
    rep: &'a mut Reporter,
    ftp_events: &'a mut Vec<FtpEvent>,
    smb_events: &'a mut Vec<SmbEvent>,
}

impl SessionCtx<'_> {
    /// Hands one piece of a flow's bytes to identification and the session, in stream
    /// order: `data` is `None` for a packet whose bytes wait in a reorder buffer. `grown` is
    /// the payload the packet added (0 for a piece released from the buffer, counted when it
    /// arrived); `pending` is the growth a session started here must leave to a later step.
    // Inlined into the packet loop, where this code lived before the reorder buffer: the
    // call cost 1.6 % of the worker's instructions on the replay benchmark.
    #[inline(always)]
    fn bytes(
        &mut self,
        flow: &mut Flow<FlowApp>,
        dir: Direction,
        data: Option<(&[u8], bool, u32)>,
        (grown, pending): (u64, (Direction, u64)),
        ts: Ts,
        pcap_cnt: u64,
    ) {
        let mut judge_now = false;
        // A judged flow's identification is over for good (`wants_more` never turns true
        // again), so its packets skip identification entirely.
        if let Some((bytes, gap, cut)) = data
            && flow.app.expected.is_none()
            && !flow.app.judged
        {
            let proto = flow.key.proto;
            // A cut datagram is still probed; a cut TCP segment breaks the stream.
            let gap = gap || (proto == 6 && cut > 0);
            let id = identify(
                flow,
                dir,
                bytes,
                gap,
                proto,
                pcap_cnt,
                &self.rep.settings.budget,
            );
            judge_now = id.judge_now;
            if id.probed && flow.app.session.is_none() {
                start_session(self.sessions, &self.rep.settings, flow, bytes, pending, ts);
            }
        }
        if flow.app.session.is_some() {
            self.packet(flow, dir, data, grown, ts, pcap_cnt);
        }
        if judge_now {
            conclude(self.sessions, self.rep, flow, pcap_cnt, "active");
        }
    }

    /// Hands over up to `max` pieces of `dir` that the reorder buffer released.
    #[inline(never)]
    fn ready(
        &mut self,
        flow: &mut Flow<FlowApp>,
        dir: Direction,
        max: usize,
        pending: (Direction, u64),
        scratch: &mut Vec<u8>,
        ts: Ts,
    ) {
        for _ in 0..max.min(flow.ready_len(dir)) {
            let Some(r) = flow.take_ready(dir, scratch) else {
                break;
            };
            self.bytes(
                flow,
                dir,
                Some((scratch.as_slice(), r.gap, r.cut)),
                (0, pending),
                ts,
                r.pcap_cnt,
            );
        }
    }

    /// One packet of a flow that belongs to a session.
    fn packet(
        &mut self,
        flow: &mut Flow<FlowApp>,
        dir: Direction,
        data: Option<(&[u8], bool, u32)>,
        grown: u64,
        ts: Ts,
        pcap_cnt: u64,
    ) {
        let Some((sid, role)) = flow.app.session else {
            return;
        };
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        if ts > s.last_ts {
            s.last_ts = ts;
        }
        let first_payload = grown > 0 && !s.carried_payload;
        if grown > 0 {
            s.carried_payload = true;
            match flow.app.outbound_dir {
                Some(d) if d == dir => s.outbound += grown,
                Some(_) => s.inbound += grown,
                None => {}
            }
        }
        let mut new_files: Vec<usize> = Vec::new();
        match (role, data) {
            (FlowRole::Main, Some((bytes, gap, cut))) => match &mut s.parser {
                Parser::Ftp(p) => {
                    self.ftp_events.clear();
                    p.feed(dir, bytes, gap, self.ftp_events);
                    self.ftp(flow, sid, ts, pcap_cnt);
                }
                Parser::Smb(p) => {
                    self.smb_events.clear();
                    p.feed(dir, bytes, gap, self.smb_events);
                    // SMB frames by length: a cut tail is skipped by count, not lost.
                    p.skip(dir, u64::from(cut), self.smb_events);
                    self.smb(flow, sid, ts, pcap_cnt);
                }
                Parser::Tftp(_) | Parser::None => {}
            },
            (FlowRole::Data, _) => {
                s.data_bytes(flow.flow_id, grown);
                if let (Parser::Tftp(t), Some((bytes, _, _))) = (&mut s.parser, data) {
                    let from = if dir == Direction::ToServer {
                        Endpoint::Client
                    } else {
                        Endpoint::Server
                    };
                    t.feed(from, bytes);
                    let (b, done) = (t.bytes(), t.completed());
                    if let Some(f) = s.files.first_mut() {
                        f.bytes = b;
                        f.complete = done;
                    }
                }
            }
            _ => {}
        }
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        // Every file whose name just became known (STOR, WRQ, SMB CREATE) is judged now.
        if s.unjudged {
            s.unjudged = false;
            new_files = s.unjudged_files();
        }
        let due =
            first_payload || s.outbound.saturating_sub(s.checked_outbound) >= CHECK_EVERY_BYTES;
        if due || !new_files.is_empty() {
            self.check(flow, sid, ts, pcap_cnt, &new_files);
        }
    }

    /// Handles the FTP control events just parsed.
    fn ftp(&mut self, flow: &mut Flow<FlowApp>, sid: SessionId, ts: Ts, pcap_cnt: u64) {
        let events = std::mem::take(self.ftp_events);
        for ev in &events {
            match ev {
                FtpEvent::Expect(de) => {
                    let tls = self.sessions.get(sid).is_some_and(|s| s.tls);
                    let exp = Expectation {
                        proto: if tls {
                            AppProto::FtpsData
                        } else {
                            AppProto::FtpData
                        },
                        l4: 6,
                        listener: de.listener,
                        port: de.port,
                        peer: Some(de.opener_addr),
                        peer_port: None,
                        reversible: false,
                        session_id: sid,
                        purpose: de.cmd.as_str(),
                        tag: 0,
                    };
                    self.sessions.expect.insert(exp, ts);
                }
                FtpEvent::Transfer { cmd, name, .. } => {
                    if let Some(s) = self.sessions.get_mut(sid) {
                        s.on_transfer(*cmd, name.clone());
                    }
                }
                FtpEvent::TransferEnd { cmd, ok, .. } => {
                    if let Some(s) = self.sessions.get_mut(sid) {
                        s.on_transfer_end(*cmd, *ok);
                    }
                }
                FtpEvent::Login { user, .. } => {
                    if let Some(s) = self.sessions.get_mut(sid) {
                        s.user = Some(user.clone());
                    }
                }
                FtpEvent::AuthTls { accepted: true } => self.sessions.mark_tls(sid),
                FtpEvent::Transaction(tx) => {
                    if let Some(s) = self.sessions.get(sid) {
                        let rec = TxRecord {
                            header: Reporter::header(&self.rep.settings, flow, "ftp", ts, pcap_cnt),
                            ftp: Some(tx),
                            smb: None,
                            tftp: None,
                            xfer: XferRef {
                                session_id: &s.name,
                            },
                        };
                        if let Ok(line) = serde_json::to_vec(&rec) {
                            self.rep.send(OutMsg::Line(EventKind::Ftp, line));
                        }
                    }
                }
                _ => {}
            }
        }
        *self.ftp_events = events;
    }

    /// Handles the SMB events just parsed.
    fn smb(&mut self, flow: &mut Flow<FlowApp>, sid: SessionId, ts: Ts, pcap_cnt: u64) {
        let events = std::mem::take(self.smb_events);
        let mut files_changed = false;
        for ev in &events {
            match ev {
                SmbEvent::Transaction(tx) => {
                    if let Some(s) = self.sessions.get(sid) {
                        let rec = TxRecord {
                            header: Reporter::header(&self.rep.settings, flow, "smb", ts, pcap_cnt),
                            ftp: None,
                            smb: Some(tx),
                            tftp: None,
                            xfer: XferRef {
                                session_id: &s.name,
                            },
                        };
                        if let Ok(line) = serde_json::to_vec(&rec) {
                            self.rep.send(OutMsg::Line(EventKind::Smb, line));
                        }
                    }
                }
                SmbEvent::FileOpened { .. } | SmbEvent::FileClosed { .. } => files_changed = true,
                _ => {}
            }
        }
        *self.smb_events = events;
        if files_changed && let Some(s) = self.sessions.get_mut(sid) {
            s.sync_smb_files();
        }
    }

    /// Runs the detector over the session as it stands.
    fn check(
        &mut self,
        flow: &mut Flow<FlowApp>,
        sid: SessionId,
        ts: Ts,
        pcap_cnt: u64,
        new_files: &[usize],
    ) {
        let Some(s) = self.sessions.get_mut(sid) else {
            return;
        };
        if matches!(s.parser, Parser::Smb(_)) {
            s.sync_smb_files();
        }
        s.checked_outbound = s.outbound;
        let started = s.detector_started;
        s.detector_started = true;
        let mut alerts = std::mem::take(&mut self.rep.alerts);
        {
            let views = s.file_views();
            let view = s.view(&views, ts);
            if started {
                self.rep.detector.on_progress(&view, &mut alerts);
            } else {
                self.rep.detector.on_session_start(&view, &mut alerts);
            }
            for &i in new_files {
                if let Some(f) = s.files.get(i)
                    && !f.name.is_empty()
                    && let Some(fv) = views.iter().find(|v| std::ptr::eq(v.name, f.name.as_str()))
                {
                    self.rep.detector.on_file(&view, fv, &mut alerts);
                }
            }
        }
        for &i in new_files {
            if let Some(f) = s.files.get_mut(i) {
                f.judged = true;
            }
        }
        if !alerts.is_empty() {
            s.alerted = true;
            flow.app.alerted = true;
        }
        for a in alerts.drain(..) {
            self.rep.write_session_alert(s, flow, a, pcap_cnt, "active");
        }
        self.rep.alerts = alerts;
    }

    /// Bookkeeping when a flow of a session ends; returns the session if it is now over.
    fn flow_ending(&mut self, flow: &mut Flow<FlowApp>) -> Option<SessionId> {
        let (sid, role) = flow.app.session?;
        let s = self.sessions.get_mut(sid)?;
        match role {
            FlowRole::Main => {
                s.main_open = false;
                if let Parser::Ftp(p) = &mut s.parser {
                    self.ftp_events.clear();
                    p.finish(self.ftp_events);
                    self.ftp(flow, sid, flow.last, flow.last_pcap_cnt);
                }
            }
            FlowRole::Data => s.close_data_channel(flow.flow_id),
        }
        let s = self.sessions.get_mut(sid)?;
        s.open_flows = s.open_flows.saturating_sub(1);
        (!s.main_open && s.open_flows == 0).then_some(sid)
    }

    /// Writes the closing records of a finished session (`flow` is its last flow).
    fn end_session(&mut self, sid: SessionId, flow: &mut Flow<FlowApp>, ended: Ts) {
        let Some(mut s) = self.sessions.remove(sid, ended) else {
            return;
        };
        if matches!(s.parser, Parser::Smb(_)) {
            s.sync_smb_files();
        }
        let mut alerts = std::mem::take(&mut self.rep.alerts);
        {
            let views = s.file_views();
            let view = s.view(&views, s.last_ts);
            for fv in views.iter().filter(|fv| {
                s.files
                    .iter()
                    .any(|f| !f.judged && std::ptr::eq(f.name.as_str(), fv.name))
            }) {
                if !fv.name.is_empty() {
                    self.rep.detector.on_file(&view, fv, &mut alerts);
                }
            }
            self.rep.detector.on_session_end(&view, &mut alerts);
        }
        if !alerts.is_empty() {
            s.alerted = true;
        }
        for a in alerts.drain(..) {
            self.rep
                .write_session_alert(&s, flow, a, flow.last_pcap_cnt, "session-end");
        }
        self.rep.alerts = alerts;
        self.write_session(&s);
    }

    /// A session whose flows are all gone without closing it (a cap shed them).
    fn end_orphan(&mut self, sid: SessionId, ended: Ts) {
        let Some(s) = self.sessions.remove(sid, ended) else {
            return;
        };
        self.write_session(&s);
    }

    fn write_session(&self, s: &crate::session::Session) {
        let header = session_header(s, "session");
        if let Parser::Tftp(t) = &s.parser {
            let rec = TxRecord {
                header: session_header(s, "tftp"),
                ftp: None,
                smb: None,
                tftp: Some(t.record()),
                xfer: XferRef {
                    session_id: &s.name,
                },
            };
            if let Ok(line) = serde_json::to_vec(&rec) {
                self.rep.send(OutMsg::Line(EventKind::Tftp, line));
            }
        }
        let rec = SessionRecord {
            header,
            app_proto: s.proto.as_str(),
            session: s.record(),
            xfer: SessionXfer {
                session_id: &s.name,
                src_zone: s.client_zone.zone.as_str(),
                dest_zone: s.server_zone.zone.as_str(),
                src_zone_source: s.client_zone.source,
                dest_zone_source: s.server_zone.source,
            },
        };
        if let Ok(line) = serde_json::to_vec(&rec) {
            self.rep.send(OutMsg::Line(EventKind::Session, line));
        }
    }
}

/// Reads one `stats.decoder` counter.
type Counter = fn(&DecodeStats) -> u64;

/// The `stats.decoder` counters of malformed frames: each such frame may make an `anomaly`
/// record. (Cut payloads, orphan fragments and full tables are capture or capacity events,
/// counted but not anomalies.)
const MALFORMED: [(&str, Counter); 7] = [
    ("truncated_link", |s| s.truncated_link),
    ("invalid_ip", |s| s.invalid_ip),
    ("invalid_ipv6_ext", |s| s.invalid_ipv6_ext),
    ("invalid_tcp", |s| s.invalid_tcp),
    ("invalid_udp", |s| s.invalid_udp),
    ("invalid_icmp", |s| s.invalid_icmp),
    ("tunnel_too_deep", |s| s.tunnel_too_deep),
];

/// `anomaly` records per packet-time second and worker, at most: a stream of garbage must
/// not turn into a stream of records.
const ANOMALIES_PER_SEC: u32 = 10;

/// Rate-limit state of the `anomaly` records.
#[derive(Debug, Default)]
struct Anomalies {
    /// The malformed counters as last seen.
    seen: [u64; 7],
    /// Packet-time second of the current window.
    second: u64,
    /// Records written in that second.
    written: u32,
    /// Malformed frames without a record since the last record.
    suppressed: u64,
}

/// One worker's state.
pub struct Engine {
    rep: Reporter,
    decoder: Decoder,
    flows: FlowTable<FlowApp>,
    ended: Vec<(Flow<FlowApp>, EndReason)>,
    sessions: SessionTable,
    ftp_events: Vec<FtpEvent>,
    smb_events: Vec<SmbEvent>,
    capture: ReadStats,
    first_ts: Option<Ts>,
    now: Ts,
    /// Time of the latest packet or tick, which may be behind `now` when the input went
    /// back in time (several capture files that overlap): what "now" means at the end.
    recent: Ts,
    last_stats: Ts,
    anomalies: Anomalies,
    worker: u16,
    /// Where a piece released from a reorder buffer is copied to be handed over.
    reorder_scratch: Vec<u8>,
}

impl Engine {
    /// A worker that sends its records to `out`.
    pub fn new(settings: EngineSettings, out: OutSender) -> Engine {
        Engine {
            decoder: Decoder::new(settings.max_fragments),
            flows: FlowTable::new(settings.flow_limits.clone()),
            ended: Vec::with_capacity(64),
            sessions: SessionTable::new(settings.session_limits.clone()),
            ftp_events: Vec::new(),
            smb_events: Vec::new(),
            capture: ReadStats::default(),
            first_ts: None,
            now: Ts(0),
            recent: Ts(0),
            last_stats: Ts(0),
            anomalies: Anomalies::default(),
            worker: 0,
            reorder_scratch: Vec::new(),
            rep: Reporter {
                detector: Detector::new(settings.detect.clone()),
                alerts: Vec::new(),
                out,
                pending: RefCell::new((Vec::new(), KindCounts::default())),
                pending_alerts: RefCell::new((Vec::new(), KindCounts::default())),
                settings,
            },
        }
    }

    /// Numbers this worker among several (its stats snapshots are summed by the writer).
    pub fn set_worker(&mut self, index: u16) {
        self.worker = index;
    }

    /// Live mode: records are never waited for; when their writer queue is full they are
    /// dropped and counted per event type (`stats.output.queue_dropped`).
    pub fn drop_when_full(&mut self) {
        self.rep.out.set_drop_when_full(true);
    }

    /// Applies reloaded settings at a batch boundary (SIGHUP).
    ///
    /// Timeouts, zones, the port policy, probe budgets and the stats interval apply at
    /// once. `max_flows` and `max_fragments` bound new state only: a table already larger
    /// shrinks as its entries end. Session caps keep their start-up values (the session
    /// table has no resize; restart to change them). When `new_detector` is set the
    /// detector is rebuilt with the new thresholds, allowlist and suppression: its sliding
    /// windows, suppression memory and counters start again from empty.
    pub fn reload(&mut self, settings: EngineSettings, new_detector: bool) {
        self.flows.set_limits(settings.flow_limits.clone());
        self.decoder.set_max_fragments(settings.max_fragments);
        if new_detector {
            self.rep.detector = Detector::new(settings.detect.clone());
        }
        let replay = self.rep.settings.replay;
        let session_limits = self.rep.settings.session_limits.clone();
        self.rep.settings = EngineSettings {
            replay,
            session_limits,
            ..settings
        };
    }

    /// Advances packet time without a packet (live capture on a quiet wire): flows whose
    /// timeout passed end, and a periodic stats record is written when due.
    pub fn tick(&mut self, now: Ts, capture: &ReadStats) {
        self.capture.clone_from(capture);
        if self.first_ts.is_none() {
            self.first_ts = Some(now);
            self.last_stats = now;
        }
        if now > self.now {
            self.now = now;
        }
        self.recent = now;
        self.flows.sweep(self.now, &mut self.ended);
        self.flush_ended();
        self.stats_if_due();
        // On a quiet wire no batch follows to hand over the records of flows that timed out.
        self.rep.flush_pending();
    }

    fn stats_if_due(&mut self) {
        let interval = self.rep.settings.stats_interval;
        if interval > 0
            && self.now.since(self.last_stats) >= interval.saturating_mul(Ts::NANOS_PER_SEC)
        {
            self.last_stats = self.now;
            self.send_stats(false);
        }
    }

    /// Processes every frame of a batch; `capture` is the reader's counters at send time.
    pub fn process_batch(&mut self, batch: &Batch, capture: &ReadStats) {
        self.capture.clone_from(capture);
        for (meta, data) in batch.iter() {
            self.packet(meta, data);
        }
        self.rep.flush_pending();
    }

    fn packet(&mut self, meta: &FrameMeta, data: &[u8]) {
        let ts = meta.ts;
        if self.first_ts.is_none() {
            self.first_ts = Some(ts);
            self.last_stats = ts;
        }
        // Capture files are not always in time order; the clock never runs backwards.
        if ts > self.now {
            self.now = ts;
        }
        self.recent = ts;
        let now = self.now;
        self.flows.sweep(now, &mut self.ended);
        if let Some(pkt) = self.decoder.decode(meta.linktype, data, meta.wire_len, ts) {
            let mut hit = self.flows.lookup(&pkt, ts, meta.pcap_cnt, &mut self.ended);
            // A flow the lookup ended (evicted, idle, or its 5-tuple reused) closes now, so
            // its session leaves room for one this packet may start.
            self.flush_ended();
            if hit.new && self.link_new_flow(hit.slot, ts) {
                // The link re-oriented the flow: this packet now travels the other way.
                hit.dir = hit.dir.reverse();
            }
            if let Some((flow, pool)) = self.flows.flow_and_pool(hit.slot) {
                if flow.app.tunnel.is_none() {
                    flow.app.tunnel = pkt.tunnel;
                }
                let before = flow.dir(hit.dir).payload;
                let acked_before = flow.dir(hit.dir).acked;
                let up = flow.update(hit.dir, &pkt, ts, meta.pcap_cnt, pool);
                let grown = flow.dir(hit.dir).payload.saturating_sub(before);
                // One-sided TCP: what this packet acknowledged is the unseen side's payload.
                let ack_grown = if flow.one_sided() {
                    flow.dir(hit.dir).acked.saturating_sub(acked_before)
                } else {
                    0
                };
                let mut ctx = SessionCtx {
                    sessions: &mut self.sessions,
                    rep: &mut self.rep,
                    ftp_events: &mut self.ftp_events,
                    smb_events: &mut self.smb_events,
                };
                let scratch = &mut self.reorder_scratch;
                // Held bytes this packet released come first: the other direction's (it
                // acknowledged past their hole), then this direction's that precede its own.
                // This packet's growth is counted by its own step, not by a session that
                // one of those pieces starts.
                let pending = (hit.dir, grown);
                if flow.reordering() {
                    ctx.ready(flow, hit.dir.reverse(), usize::MAX, pending, scratch, ts);
                    ctx.ready(flow, hit.dir, up.before, pending, scratch, ts);
                }
                let data = up.chunk.map(|c| {
                    (
                        pkt.payload.get(c.start..c.end).unwrap_or_default(),
                        c.gap,
                        c.cut,
                    )
                });
                ctx.bytes(flow, hit.dir, data, (grown, pending), ts, meta.pcap_cnt);
                if ack_grown > 0 {
                    estimated_growth(ctx.sessions, flow, hit.dir.reverse(), ack_grown);
                }
                if flow.reordering() {
                    ctx.ready(flow, hit.dir, usize::MAX, (hit.dir, 0), scratch, ts);
                    flow.return_buffers(pool, false);
                }
            }
        }
        self.anomaly_if_malformed(meta, data.len());
        self.flush_ended();
        self.stats_if_due();
    }

    /// Writes an `anomaly` record when the decoder just counted this frame as malformed,
    /// at most [`ANOMALIES_PER_SEC`] per packet-time second; the rest are counted in
    /// `stats.decoder.anomaly_suppressed` and the next record says how many it stands for.
    fn anomaly_if_malformed(&mut self, meta: &FrameMeta, caplen: usize) {
        let now = MALFORMED.map(|(_, count)| count(&self.decoder.stats));
        // Seven loads and a compare per frame; the rest only for a malformed one.
        if now == self.anomalies.seen {
            return;
        }
        let event = MALFORMED
            .iter()
            .zip(now.iter().zip(self.anomalies.seen.iter()))
            .find(|(_, (n, s))| n != s)
            .map_or("malformed", |((name, _), _)| *name);
        self.anomalies.seen = now;
        let second = meta.ts.secs();
        if second != self.anomalies.second {
            self.anomalies.second = second;
            self.anomalies.written = 0;
        }
        if self.anomalies.written >= ANOMALIES_PER_SEC {
            self.decoder.stats.anomaly_suppressed += 1;
            self.anomalies.suppressed += 1;
            return;
        }
        self.anomalies.written += 1;
        let rec = AnomalyRecord {
            timestamp: meta.ts.eve(),
            pcap_cnt: self.rep.settings.replay.then_some(meta.pcap_cnt),
            event_type: "anomaly",
            anomaly: AnomalyBody {
                kind: "decode",
                event,
                linktype: meta.linktype,
                wire_len: meta.wire_len,
                caplen: u32::try_from(caplen).unwrap_or(u32::MAX),
                suppressed: std::mem::take(&mut self.anomalies.suppressed),
            },
        };
        if let Ok(line) = serde_json::to_vec(&rec) {
            self.rep.send(OutMsg::Line(EventKind::Anomaly, line));
        }
    }

    fn flush_ended(&mut self) {
        if self.ended.is_empty() {
            return;
        }
        let mut ended = std::mem::take(&mut self.ended);
        for (mut flow, reason) in ended.drain(..) {
            self.finish_flow(&mut flow, reason);
        }
        self.ended = ended;
    }

    /// The session side, for flows that are not borrowed from the table.
    fn session_ctx(&mut self) -> SessionCtx<'_> {
        SessionCtx {
            sessions: &mut self.sessions,
            rep: &mut self.rep,
            ftp_events: &mut self.ftp_events,
            smb_events: &mut self.smb_events,
        }
    }

    /// A new flow that an announcement predicted joins its session. Returns true when the
    /// flow's ends were swapped to match the announcement.
    fn link_new_flow(&mut self, slot: u32, ts: Ts) -> bool {
        let Some(flow) = self.flows.get_mut(slot) else {
            return false;
        };
        if !matches!(flow.key.proto, 6 | 17) {
            return false;
        }
        let Some(m) = self.sessions.expect.take_match(
            flow.key.proto,
            flow.client_endpoint(),
            flow.server_endpoint(),
            ts,
        ) else {
            return false;
        };
        let e = m.expectation;
        // A TFTP transfer's first packet comes from the server's new port to the client's
        // port (the listener): make the TFTP client the flow's client.
        let swap = e.proto == AppProto::TftpData && !m.reversed;
        if swap {
            flow.swap_sides();
        }
        let Some(session) = self.sessions.get_mut(e.session_id) else {
            return swap;
        };
        flow.app.expected = Some(e.proto);
        flow.app.session = Some((e.session_id, FlowRole::Data));
        flow.app.outbound_dir = outbound_dir(&self.rep.settings, flow);
        flow.app.judged = true;
        session.add_data_channel(flow.flow_id);
        self.sessions.stats.linked_by_expectation += 1;
        swap
    }

    fn finish_flow(&mut self, flow: &mut Flow<FlowApp>, reason: EndReason) {
        // Bytes still waiting for a hole reach the parsers now, after the hole.
        if flow.reordering() {
            flow.release_all(&mut self.flows.reorder.stats);
            let at = flow.last;
            let mut scratch = std::mem::take(&mut self.reorder_scratch);
            let mut ctx = self.session_ctx();
            for dir in [Direction::ToServer, Direction::ToClient] {
                ctx.ready(flow, dir, usize::MAX, (dir, 0), &mut scratch, at);
            }
            self.reorder_scratch = scratch;
            flow.return_buffers(&mut self.flows.reorder, true);
        }
        let pcap_cnt = flow.last_pcap_cnt;
        conclude(
            &mut self.sessions,
            &mut self.rep,
            flow,
            pcap_cnt,
            reason.as_str(),
        );
        let ended = self.session_ctx().flow_ending(flow);
        let mut rec = Reporter::flow_record(&self.rep.settings, flow, reason);
        if let Some((sid, role)) = flow.app.session
            && let Some(s) = self.sessions.get(sid)
        {
            rec.xfer.session_id = Some(s.name.clone());
            if role == FlowRole::Data
                && let Some(f) = s.channel_file(flow.flow_id)
            {
                rec.xfer.command = Some(f.command);
                rec.xfer.filename = (!f.name.is_empty()).then(|| f.name.clone());
            }
        }
        rec.xfer.link_confidence = flow.app.link_confidence;
        if let Ok(line) = serde_json::to_vec(&rec) {
            self.rep.send(OutMsg::Line(EventKind::Flow, line));
        }
        if let Some(sid) = ended {
            let at = self.flows.ended_at(flow, self.recent);
            self.session_ctx().end_session(sid, flow, at);
        }
    }

    fn stats_record(&self, last: bool) -> StatsRecord {
        StatsRecord {
            worker: self.worker,
            last,
            timestamp: self.now.eve(),
            event_type: "stats",
            stats: StatsBody {
                uptime: self
                    .first_ts
                    .map_or(0, |f| self.now.since(f) / Ts::NANOS_PER_SEC),
                capture: self.capture.clone(),
                decoder: self.decoder.stats.clone(),
                flow: self.flows.stats(),
                sessions: self.sessions.counters(),
                detect: self.rep.detector.stats().clone(),
                output: Default::default(),
            },
        }
    }

    fn send_stats(&self, last: bool) {
        self.rep
            .send(OutMsg::Stats(Box::new(self.stats_record(last))));
    }

    /// Ends every flow with `reason`, then writes the final stats record.
    pub fn finish(&mut self, reason: EndReason, capture: &ReadStats) {
        // Capture has stopped, so nothing is left to protect from a slow writer: every
        // flow's record waits for room rather than being dropped.
        self.rep.out.set_drop_when_full(false);
        self.capture.clone_from(capture);
        // In batches: a full table moved into `ended` at once would be a second copy of
        // every flow at exit (hundreds of MB at 1 M flows).
        while self
            .flows
            .drain_some(reason, self.recent, &mut self.ended, 4096)
        {
            self.flush_ended();
        }
        self.flush_ended();
        // Every flow has ended, so every session has too; anything left was orphaned by a
        // cap and is closed here so its record is not lost.
        for sid in self.sessions.ids() {
            let now = self.recent;
            self.session_ctx().end_orphan(sid, now);
        }
        self.send_stats(true);
        self.rep.send(OutMsg::Flush);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory per tracked flow is part of the design budget (≤ 512 B with the table's index):
    /// catch accidental growth of the per-flow struct.
    #[test]
    fn flow_state_stays_small() {
        let flow = std::mem::size_of::<Option<Flow<FlowApp>>>();
        eprintln!(
            "flow slot: {flow} bytes, FlowApp {} bytes",
            std::mem::size_of::<FlowApp>()
        );
        assert!(flow <= 400, "a flow slot takes {flow} bytes");
    }
}
