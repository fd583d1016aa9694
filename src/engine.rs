//! Worker stage: drives decode → flow → (identify → session → detect) for one shard of
//! traffic and turns ended flows into EVE records.
//!
//! The engine owns all per-flow state, so the hot path takes no locks. Records are
//! serialised here and sent to the writer thread as owned lines.

use crossbeam_channel::Sender;

use crate::capture::{Batch, FrameMeta, ReadStats};
use crate::decode::Decoder;
use crate::flow::{EndReason, Flow, FlowLimits, FlowTable};
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
        }
    }
}

/// Application-layer state the engine keeps on every flow.
#[derive(Debug, Default)]
pub struct FlowApp {}

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
            if let Some(flow) = self.flows.get_mut(hit.slot) {
                let _chunk = flow.update(hit.dir, &pkt, ts, meta.pcap_cnt);
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
        for (flow, reason) in ended.drain(..) {
            self.finish_flow(&flow, reason);
        }
        self.ended = ended;
    }

    fn finish_flow(&mut self, flow: &Flow<FlowApp>, reason: EndReason) {
        let rec = self.flow_record(flow, reason);
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
        &self,
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
            pcap_cnt: self.settings.replay.then_some(pcap_cnt),
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

    fn flow_record(&self, flow: &Flow<FlowApp>, reason: EndReason) -> FlowRecord {
        let (cip, _) = flow.client_endpoint();
        let (sip, _) = flow.server_endpoint();
        let cz = self.settings.zones.classify(cip);
        let sz = self.settings.zones.classify(sip);
        let [ts, tc] = flow.dirs;
        let (outbound, inbound) = match (cz.zone, sz.zone) {
            (Zone::Internal, Zone::External) => (ts.payload, tc.payload),
            (Zone::External, Zone::Internal) => (tc.payload, ts.payload),
            _ => (0, 0),
        };
        FlowRecord {
            header: self.header(flow, "flow", flow.last, flow.last_pcap_cnt),
            app: AppProtoFields {
                app_proto: if ts.payload + tc.payload > 0 {
                    "unknown"
                } else {
                    "failed"
                },
                app_proto_ts: None,
                app_proto_tc: None,
                app_proto_orig: None,
                app_proto_expected: None,
            },
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
                alerted: false,
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
