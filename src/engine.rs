//! Worker stage: drives decode → flow → (identify → session → detect) for one shard of
//! traffic and turns ended flows into EVE records.
//!
//! The engine owns all per-flow state, so the hot path takes no locks. Records are
//! serialised here and sent to the writer thread as owned lines.

use crossbeam_channel::Sender;

use crate::app_proto::AppProto;
use crate::capture::{Batch, FrameMeta, ReadStats};
use crate::decode::Decoder;
use crate::direction::Direction;
use crate::flow::{EndReason, Flow, FlowLimits, FlowTable};
use crate::identify::verdict::{self, PortException, PortPolicy, Verdict};
use crate::identify::{Budget, Classifier, L4, Labels};
use crate::output::eve::{
    self, AppProtoFields, FlowObj, FlowRecord, Header, StatsBody, StatsRecord, XferFlow,
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

/// The Suricata-compatible `alert` object for a mismatch verdict.
fn alert_object(v: &Verdict) -> serde_json::Value {
    let (sid, severity, signature) = match v {
        Verdict::PortMismatch { .. } => (
            9_100_001,
            2,
            "XFERWATCH file-transfer protocol on an unexpected port",
        ),
        Verdict::ExpectedProtocolAbsent { .. } => (
            9_100_002,
            2,
            "XFERWATCH file-transfer port carrying another protocol",
        ),
        Verdict::DirectionDisagreement { .. } => (
            9_100_003,
            3,
            "XFERWATCH flow directions speak different protocols",
        ),
    };
    serde_json::json!({
        "action": "allowed",
        "gid": 1,
        "signature_id": sid,
        "rev": 1,
        "signature": signature,
        "category": "Protocol anomaly",
        "severity": severity,
        "metadata": {
            "mitre_tactic_id": ["TA0011"],
            "mitre_technique_id": ["T1071"],
            "mitre_subtechnique_id": ["T1071.002"],
            "detection_strategy": ["DET0416"],
            "analytic": ["AN1173"],
            "rule": [v.rule()],
        }
    })
}

/// What identification saw, per direction, so the alert explains itself.
fn mismatch_evidence(cls: &Classifier, v: &Verdict, budget: &Budget) -> serde_json::Value {
    let dir = |d: Direction| {
        let ev = cls.evidence(d);
        let head = ev.head();
        serde_json::json!({
            "signature": ev.signature.map(|s| s.name),
            "protocol": ev.signature.map(|s| s.proto.as_str()),
            "offset": ev.signature.map(|s| s.offset),
            "pcap_cnt": ev.pcap_cnt,
            "bytes_probed": ev.bytes_probed,
            "packets_probed": ev.packets_probed,
            "first_bytes_hex": hex(head),
            "first_bytes_text": printable(head),
        })
    };
    let (expected_here, expected_ports) = match v {
        Verdict::PortMismatch {
            expected_here,
            expected_ports,
            ..
        }
        | Verdict::ExpectedProtocolAbsent {
            expected_here,
            expected_ports,
            ..
        }
        | Verdict::DirectionDisagreement {
            expected_here,
            expected_ports,
            ..
        } => (expected_here, expected_ports),
    };
    serde_json::json!({
        "explanation": v.to_string(),
        "found": v.found().as_str(),
        "expected_protocols_for_port": expected_here.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        "expected_ports_for_found": expected_ports,
        "toserver": dir(Direction::ToServer),
        "toclient": dir(Direction::ToClient),
        "probe_budget": {"bytes": budget.max_bytes, "packets": budget.max_packets},
    })
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

/// Turns `{header, alert, app, flow, xfer}` into one flat EVE object in Suricata's order.
fn flatten_alert(v: serde_json::Value) -> Option<Vec<u8>> {
    let serde_json::Value::Object(mut parts) = v else {
        return None;
    };
    let mut out = String::with_capacity(2048);
    out.push('{');
    let mut first = true;
    let mut push = |k: &str, val: &serde_json::Value, out: &mut String| {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&serde_json::to_string(k).unwrap_or_default());
        out.push(':');
        out.push_str(&serde_json::to_string(val).unwrap_or_default());
    };
    for flat in ["header", "app"] {
        if let Some(serde_json::Value::Object(m)) = parts.remove(flat) {
            // `header` first, then `alert`, then the app fields, like Suricata.
            for (k, val) in &m {
                push(k, val, &mut out);
            }
        }
        if flat == "header"
            && let Some(a) = parts.remove("alert")
        {
            push("alert", &a, &mut out);
        }
    }
    for k in ["flow", "xfer"] {
        if let Some(val) = parts.remove(k) {
            push(k, &val, &mut out);
        }
    }
    out.push('}');
    Some(out.into_bytes())
}

/// One worker's state.
pub struct Engine {
    settings: EngineSettings,
    decoder: Decoder,
    flows: FlowTable<FlowApp>,
    ended: Vec<(Flow<FlowApp>, EndReason)>,
    out: Sender<OutMsg>,
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
            out,
            capture: ReadStats::default(),
            first_ts: None,
            now: Ts(0),
            last_stats: Ts(0),
            settings,
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
                    cls.feed(hit.dir, data, meta.pcap_cnt, &self.settings.budget);
                }
                judge_now = !cls.wants_more() && !app.judged;
            }
            if judge_now {
                self.judge(hit.slot, meta.pcap_cnt);
            }
        }
        self.flush_ended();
        if self.settings.stats_interval > 0
            && now.since(self.last_stats)
                >= self
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
        let Some(line) = Self::mismatch_alert(&self.settings, flow, pcap_cnt, "active") else {
            return;
        };
        if let Some(flow) = self.flows.get_mut(slot) {
            flow.app.alerted = true;
        }
        self.send(OutMsg::Line(EventKind::Alert, line));
    }

    fn finish_flow(&mut self, flow: &mut Flow<FlowApp>, reason: EndReason) {
        if let Some(cls) = flow.app.classifier.as_mut() {
            cls.finish();
        }
        if !flow.app.judged {
            settle_orientation(flow);
            flow.app.judged = true;
            if let Some(line) =
                Self::mismatch_alert(&self.settings, flow, flow.last_pcap_cnt, reason.as_str())
            {
                flow.app.alerted = true;
                self.send(OutMsg::Line(EventKind::Alert, line));
            }
        }
        let rec = Self::flow_record(&self.settings, flow, reason);
        if let Ok(line) = serde_json::to_vec(&rec) {
            self.send(OutMsg::Line(EventKind::Flow, line));
        }
    }

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

    /// Builds the EVE alert line for a mismatch verdict on `flow`, if one applies.
    fn mismatch_alert(
        settings: &EngineSettings,
        flow: &Flow<FlowApp>,
        pcap_cnt: u64,
        reason: &'static str,
    ) -> Option<Vec<u8>> {
        let cls = flow.app.classifier.as_ref()?;
        let labels = flow_labels(flow)?;
        let (sip, sport) = flow.server_endpoint();
        let v = verdict::judge(
            &labels,
            flow.app.expected.is_some(),
            sip,
            sport,
            flow.dirs[0].payload,
            flow.dirs[1].payload,
            &settings.policy,
        )?;
        let mut rec = Self::flow_record(settings, flow, EndReason::Timeout);
        rec.header.event_type = "alert";
        rec.header.pcap_cnt = settings.replay.then_some(pcap_cnt);
        rec.header.timestamp = flow.last.eve();
        rec.flow.reason = reason;
        rec.flow.alerted = true;
        let evidence = mismatch_evidence(cls, &v, &settings.budget);
        let alert = serde_json::json!({
            "header": rec.header,
            "alert": alert_object(&v),
            "app": rec.app,
            "flow": rec.flow,
            "xfer": {
                "rule": v.rule(),
                "session_id": null,
                "criteria": [{"name": "verdict", "observed": v.found().as_str(), "threshold": v.to_string()}],
                "evidence": evidence,
                "files": [],
                "src_zone": rec.xfer.src_zone,
                "dest_zone": rec.xfer.dest_zone,
                "src_zone_source": rec.xfer.src_zone_source,
                "dest_zone_source": rec.xfer.dest_zone_source,
                "suppressed_count": 0,
            }
        });
        flatten_alert(alert)
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
                output: Default::default(),
            },
        }
    }

    fn send_stats(&self) {
        self.send(OutMsg::Stats(Box::new(self.stats_record())));
    }

    /// Ends every flow with `reason`, then writes the final stats record.
    pub fn finish(&mut self, reason: EndReason, capture: &ReadStats) {
        self.capture.clone_from(capture);
        self.flows.drain(reason, &mut self.ended);
        self.flush_ended();
        self.send_stats();
        self.send(OutMsg::Flush);
    }
}
