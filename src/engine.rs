//! Worker stage: drives decode → flow → (identify → session → detect) for one shard of
//! traffic and turns ended flows into EVE records.
//!
//! The engine owns all per-flow state, so the hot path takes no locks. Records are
//! serialised here and sent to the writer thread as owned lines.

use crossbeam_channel::Sender;

use crate::app_proto::AppProto;
use crate::capture::{Batch, FrameMeta, ReadStats};
use crate::decode::Decoder;
use crate::detect::{Alert, DetectSettings, Detector, MismatchRule, MismatchView};
use crate::direction::Direction;
use crate::flow::{EndReason, Flow, FlowLimits, FlowTable};
use crate::identify::verdict::{self, PortException, PortPolicy, Verdict};
use crate::identify::{Budget, Classifier, L4, Labels};
use crate::output::eve::{
    self, AlertRecord, AppProtoFields, DirIdentification, FlowObj, FlowRecord, Header,
    Identification, StatsBody, StatsRecord, XferFlow,
};
use crate::output::{EventKind, OutMsg};
use crate::time::Ts;
use crate::zones::{Zone, Zones};

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
        }
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
}

/// If the matched bytes prove the heuristic picked the wrong client (a midstream pickup),
/// swap the ends before anything is judged or written. A seen SYN always wins.
fn settle_orientation(flow: &mut Flow<FlowApp>) {
    let saw_syn = flow.dirs.iter().any(|d| d.syn);
    let swapped = flow
        .app
        .classifier
        .as_ref()
        .and_then(Classifier::sides_swapped);
    if !saw_syn && swapped == Some(true) {
        flow.swap_sides();
        if let Some(cls) = flow.app.classifier.as_mut() {
            cls.swap_sides();
        }
    }
}

/// The labels of a flow that carried payload (None for attempts).
fn flow_labels(flow: &Flow<FlowApp>) -> Option<Labels> {
    flow.app.classifier.as_ref().map(Classifier::labels)
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
    use std::fmt::Write as _;
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
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
    out: Sender<OutMsg>,
}

impl Reporter {
    fn send(&self, msg: OutMsg) {
        // The writer outlives the workers; a send fails only if it died, and then there is
        // nowhere left to report to.
        let _ = self.out.send(msg);
    }

    /// The header for records about `flow`, stamped at `ts`.
    fn header(
        settings: &EngineSettings,
        flow: &Flow<FlowApp>,
        event_type: &'static str,
        ts: Ts,
        pcap_cnt: u64,
    ) -> Header {
        let (cip, cport) = flow.client_endpoint();
        let (sip, sport) = flow.server_endpoint();
        let icmp = matches!(flow.key.proto, 1 | 58);
        let (cid_sport, cid_dport) = if icmp {
            (u16::from(flow.icmp.0), u16::from(flow.icmp.1))
        } else {
            (cport, sport)
        };
        Header {
            timestamp: ts.eve(),
            flow_id: flow.flow_id,
            pcap_cnt: settings.replay.then_some(pcap_cnt),
            event_type,
            src_ip: cip,
            src_port: (!icmp).then_some(cport),
            dest_ip: sip,
            dest_port: (!icmp).then_some(sport),
            proto: eve::proto_name(flow.key.proto),
            icmp_type: icmp.then_some(flow.icmp.0),
            icmp_code: icmp.then_some(flow.icmp.1),
            vlan: flow.key.vlan.iter().copied().filter(|v| *v != 0).collect(),
            community_id: crate::community_id::community_id(
                0,
                cip,
                sip,
                flow.key.proto,
                cid_sport,
                cid_dport,
            ),
        }
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
        let (outbound, inbound) = match (cz.zone, sz.zone) {
            (Zone::Internal, Zone::External) => (ts.payload, tc.payload),
            (Zone::External, Zone::Internal) => (tc.payload, ts.payload),
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
            },
        }
    }

    /// Runs the mismatch verdict of `flow` through the detector (allowlist, suppression)
    /// and writes the alerts it returns. Returns true if any was written.
    fn mismatch(&mut self, flow: &Flow<FlowApp>, pcap_cnt: u64, reason: &'static str) -> bool {
        let Some(cls) = flow.app.classifier.as_ref() else {
            return false;
        };
        let labels = cls.labels();
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
        let (rule, expected_here, expected_ports) = match &v {
            Verdict::PortMismatch {
                expected_here,
                expected_ports,
                ..
            } => (MismatchRule::PortMismatch, expected_here, expected_ports),
            Verdict::ExpectedProtocolAbsent {
                expected_here,
                expected_ports,
                ..
            } => (
                MismatchRule::ExpectedProtocolAbsent,
                expected_here,
                expected_ports,
            ),
            Verdict::DirectionDisagreement {
                expected_here,
                expected_ports,
                ..
            } => (
                MismatchRule::DirectionDisagreement,
                expected_here,
                expected_ports,
            ),
        };
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

/// One worker's state.
pub struct Engine {
    rep: Reporter,
    decoder: Decoder,
    flows: FlowTable<FlowApp>,
    ended: Vec<(Flow<FlowApp>, EndReason)>,
    capture: ReadStats,
    first_ts: Option<Ts>,
    now: Ts,
    last_stats: Ts,
}

impl Engine {
    /// A worker that sends its records to `out`.
    pub fn new(settings: EngineSettings, out: Sender<OutMsg>) -> Engine {
        Engine {
            decoder: Decoder::new(settings.max_fragments),
            flows: FlowTable::new(settings.flow_limits.clone()),
            ended: Vec::with_capacity(64),
            capture: ReadStats::default(),
            first_ts: None,
            now: Ts(0),
            last_stats: Ts(0),
            rep: Reporter {
                detector: Detector::new(settings.detect.clone()),
                alerts: Vec::new(),
                out,
                settings,
            },
        }
    }

    /// Processes every frame of a batch; `capture` is the reader's counters at send time.
    pub fn process_batch(&mut self, batch: &Batch, capture: &ReadStats) {
        self.capture.clone_from(capture);
        for (meta, data) in batch.iter() {
            self.packet(meta, data);
        }
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
        let now = self.now;
        self.flows.sweep(now, &mut self.ended);
        if let Some(pkt) = self.decoder.decode(meta.linktype, data, meta.wire_len, ts) {
            let hit = self.flows.lookup(&pkt, ts, meta.pcap_cnt, &mut self.ended);
            let mut judge_now = false;
            if let Some(flow) = self.flows.get_mut(hit.slot)
                && let Some(chunk) = flow.update(hit.dir, &pkt, ts, meta.pcap_cnt)
            {
                let data = pkt.payload.get(chunk.start..chunk.end).unwrap_or_default();
                let udp = pkt.proto == 17;
                let (_, cport) = flow.client_endpoint();
                let (_, sport) = flow.server_endpoint();
                let app = &mut flow.app;
                let cls = app.classifier.get_or_insert_with(|| {
                    let l4 = match pkt.proto {
                        6 => L4::Tcp,
                        17 => L4::Udp,
                        _ => L4::Other,
                    };
                    Classifier::new(l4, cport, sport)
                });
                // A hole breaks a TCP stream for the probes; a UDP datagram stands alone.
                if cls.wants_more() && (udp || !chunk.gap) {
                    cls.feed(hit.dir, data, meta.pcap_cnt, &self.rep.settings.budget);
                }
                judge_now = !cls.wants_more() && !app.judged;
            }
            if judge_now {
                self.judge(hit.slot, meta.pcap_cnt);
            }
        }
        self.flush_ended();
        if self.rep.settings.stats_interval > 0
            && now.since(self.last_stats)
                >= self
                    .rep
                    .settings
                    .stats_interval
                    .saturating_mul(Ts::NANOS_PER_SEC)
        {
            self.last_stats = now;
            self.send_stats();
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

    /// Decides the mismatch verdict of the flow in `slot` once identification is done.
    fn judge(&mut self, slot: u32, pcap_cnt: u64) {
        let Some(flow) = self.flows.get_mut(slot) else {
            return;
        };
        settle_orientation(flow);
        flow.app.judged = true;
        if self.rep.mismatch(flow, pcap_cnt, "active") {
            flow.app.alerted = true;
        }
    }

    fn finish_flow(&mut self, flow: &mut Flow<FlowApp>, reason: EndReason) {
        if let Some(cls) = flow.app.classifier.as_mut() {
            cls.finish();
        }
        if !flow.app.judged {
            settle_orientation(flow);
            flow.app.judged = true;
            if self.rep.mismatch(flow, flow.last_pcap_cnt, reason.as_str()) {
                flow.app.alerted = true;
            }
        }
        let rec = Reporter::flow_record(&self.rep.settings, flow, reason);
        if let Ok(line) = serde_json::to_vec(&rec) {
            self.rep.send(OutMsg::Line(EventKind::Flow, line));
        }
    }

    fn stats_record(&self) -> StatsRecord {
        StatsRecord {
            timestamp: self.now.eve(),
            event_type: "stats",
            stats: StatsBody {
                uptime: self
                    .first_ts
                    .map_or(0, |f| self.now.since(f) / Ts::NANOS_PER_SEC),
                capture: self.capture.clone(),
                decoder: self.decoder.stats.clone(),
                flow: self.flows.stats.clone(),
                detect: self.rep.detector.stats().clone(),
                output: Default::default(),
            },
        }
    }

    fn send_stats(&self) {
        self.rep.send(OutMsg::Stats(Box::new(self.stats_record())));
    }

    /// Ends every flow with `reason`, then writes the final stats record.
    pub fn finish(&mut self, reason: EndReason, capture: &ReadStats) {
        self.capture.clone_from(capture);
        self.flows.drain(reason, &mut self.ended);
        self.flush_ended();
        self.send_stats();
        self.rep.send(OutMsg::Flush);
    }
}
