//! The scenario context: random stream, flow ids, the mux, and the truth being collected.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::conv::{Conv, Link};
use crate::mux::{Mux, MuxStats};
use crate::net::{Endpoint, Zone};
use crate::rng::Rng;
use crate::truth::{FileTruth, FlowTruth, SessionKind, SessionTruth};

/// 2026-11-02T09:00:00Z in microseconds: every capture starts here.
pub const EPOCH_US: u64 = 1_793_610_000 * 1_000_000;

/// Counts that stay small however big the capture is.
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    /// Flows written.
    pub flows: u64,
    /// TCP flows.
    pub tcp_flows: u64,
    /// UDP flows.
    pub udp_flows: u64,
    /// Flows by expected `app_proto` (`none` for flows without payload).
    pub flows_by_app_proto: BTreeMap<&'static str, u64>,
    /// Data flows linked to a control or request flow.
    pub linked_data_flows: u64,
    /// Sessions by kind (`ftp`, `smb`, `tftp`).
    pub sessions: BTreeMap<&'static str, u64>,
    /// Flows by expected mismatch verdict.
    pub verdicts: BTreeMap<&'static str, u64>,
    /// Files moved by file-transfer sessions.
    pub files: u64,
    /// Outbound payload bytes of file-transfer sessions toward external peers.
    pub session_outbound_payload_bytes: u64,
    /// Inbound payload bytes of file-transfer sessions from external peers.
    pub session_inbound_payload_bytes: u64,
    /// Frame bytes of every flow.
    pub wire_bytes: u64,
    /// Packets of every flow.
    pub packets: u64,
}

/// Builds flows and collects their truth.
pub struct Ctx<W: Write> {
    /// The scenario's random stream.
    pub rng: Rng,
    mux: Mux<W>,
    next_id: u32,
    keep_flows: bool,
    keep_sessions: bool,
    flows: Vec<FlowTruth>,
    mismatches: Vec<FlowTruth>,
    sessions: Vec<SessionTruth>,
    summary: Summary,
}

/// Everything collected, for the truth file.
pub struct Collected<W> {
    /// The pcap sink, flushed (`None` when planning only).
    pub sink: Option<W>,
    /// Mux totals.
    pub stats: MuxStats,
    /// Summary counts.
    pub summary: Summary,
    /// Every flow (detailed scenarios only), by id.
    pub flows: Vec<FlowTruth>,
    /// Flows with a verdict (kept in every mode).
    pub mismatches: Vec<FlowTruth>,
    /// Sessions (detailed scenarios, or bench with `--detail`).
    pub sessions: Vec<SessionTruth>,
}

impl<W: Write> Ctx<W> {
    /// A context writing through `mux`; `keep_flows` records every flow in the truth file.
    pub fn new(seed: u64, mux: Mux<W>, keep_flows: bool, keep_sessions: bool) -> Ctx<W> {
        Ctx {
            rng: Rng::new(seed),
            mux,
            next_id: 1,
            keep_flows,
            keep_sessions,
            flows: Vec::new(),
            mismatches: Vec::new(),
            sessions: Vec::new(),
            summary: Summary::default(),
        }
    }

    fn id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// A new TCP flow starting at `start`.
    pub fn tcp(&mut self, client: Endpoint, server: Endpoint, start: u64, link: Link) -> Conv {
        let id = self.id();
        Conv::tcp(id, client, server, start, link, &mut self.rng)
    }

    /// A new UDP flow starting at `start`.
    pub fn udp(&mut self, client: Endpoint, server: Endpoint, start: u64, link: Link) -> Conv {
        let id = self.id();
        Conv::udp(id, client, server, start, link, &mut self.rng)
    }

    /// Hands a finished flow to the mux and records its truth, which is returned.
    pub fn commit(&mut self, conv: Conv) -> FlowTruth {
        let t = conv.truth();
        let s = &mut self.summary;
        s.flows += 1;
        if t.transport == "tcp" {
            s.tcp_flows += 1;
        } else {
            s.udp_flows += 1;
        }
        *s.flows_by_app_proto
            .entry(t.app_proto.unwrap_or("none"))
            .or_default() += 1;
        if t.linked.is_some() {
            s.linked_data_flows += 1;
        }
        s.packets += t.toserver.pkts + t.toclient.pkts;
        s.wire_bytes += t.toserver.wire_bytes + t.toclient.wire_bytes;
        if let Some(v) = t.expected_verdict {
            *s.verdicts.entry(v.as_str()).or_default() += 1;
            if !self.keep_flows {
                self.mismatches.push(t.clone());
            }
        }
        if self.keep_flows {
            self.flows.push(t.clone());
        }
        self.mux.add(conv);
        t
    }

    /// Records a session over already committed flows (control/request flow first).
    pub fn session(&mut self, kind: SessionKind, flows: &[&FlowTruth], files: Vec<FileTruth>) {
        let (mut outbound, mut inbound) = (0, 0);
        for f in flows {
            match (f.client_zone, f.server_zone) {
                (Zone::Internal, Zone::External) => {
                    outbound += f.toserver.payload_bytes;
                    inbound += f.toclient.payload_bytes;
                }
                (Zone::External, Zone::Internal) => {
                    outbound += f.toclient.payload_bytes;
                    inbound += f.toserver.payload_bytes;
                }
                _ => {}
            }
        }
        let label = match kind {
            SessionKind::Ftp { .. } => "ftp",
            SessionKind::Smb { .. } => "smb",
            SessionKind::Tftp { .. } => "tftp",
        };
        let s = &mut self.summary;
        *s.sessions.entry(label).or_default() += 1;
        s.files += files.len() as u64;
        s.session_outbound_payload_bytes += outbound;
        s.session_inbound_payload_bytes += inbound;
        if self.keep_sessions {
            let (client_ip, server_ip) = flows
                .first()
                .map(|f| (f.client_ip.clone(), f.server_ip.clone()))
                .unwrap_or_default();
            self.sessions.push(SessionTruth {
                kind,
                flows: flows.iter().map(|f| f.id).collect(),
                client_ip,
                server_ip,
                outbound_payload_bytes: outbound,
                inbound_payload_bytes: inbound,
                files,
            });
        }
    }

    /// Size of the pcap file once everything committed so far is written.
    pub fn planned_pcap_bytes(&self) -> u64 {
        24 + self.summary.wire_bytes + 16 * self.summary.packets
    }

    /// Writes every packet due at or before `t` (call before adding flows that start at `t`).
    pub fn run_until(&mut self, t: u64) -> Result<()> {
        self.mux.run_until(t)
    }

    /// Writes the rest and returns what was collected.
    pub fn finish(self) -> Result<Collected<W>> {
        let (stats, sink) = self.mux.finish()?;
        let mut flows = self.flows;
        flows.sort_by_key(|f| f.id);
        Ok(Collected {
            sink,
            stats,
            summary: self.summary,
            flows,
            mismatches: self.mismatches,
            sessions: self.sessions,
        })
    }
}
