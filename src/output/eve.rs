//! EVE JSON schema: the records of DESIGN §7, serialised from borrowed data.
//!
//! Field names follow Suricata's EVE so Filebeat's Suricata module, Logstash, Splunk and
//! Vector ingest the output unchanged. Our own fields live under `xfer`. Field order is the
//! struct order (timestamp first), and nothing here reads a clock: every time comes from
//! packets.

use std::net::IpAddr;

use serde::Serialize;

use crate::capture::ReadStats;
use crate::decode::DecodeStats;
use crate::flow::FlowStats;
use crate::output::OutputStats;

/// Fields every flow-bound record starts with.
#[derive(Debug, Clone, Serialize)]
pub struct Header {
    /// Packet time of the event, EVE format.
    pub timestamp: String,
    /// Flow id shared by every record of the flow.
    pub flow_id: u64,
    /// Frame number when replaying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap_cnt: Option<u64>,
    /// `flow`, `alert`, `ftp`, …
    pub event_type: &'static str,
    /// Client address.
    pub src_ip: IpAddr,
    /// Client port (absent for ICMP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub src_port: Option<u16>,
    /// Server address.
    pub dest_ip: IpAddr,
    /// Server port (absent for ICMP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dest_port: Option<u16>,
    /// `TCP`, `UDP`, `ICMP`, `IPv6-ICMP` or the protocol number.
    pub proto: String,
    /// ICMP type of the first packet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_type: Option<u8>,
    /// ICMP code of the first packet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_code: Option<u8>,
    /// VLAN ids, outer first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vlan: Vec<u16>,
    /// Community ID v1, seed 0.
    pub community_id: String,
}

/// The application-protocol fields of DESIGN §4 (flattened into flow and alert records).
#[derive(Debug, Clone, Serialize)]
pub struct AppProtoFields {
    /// Final label; absent for attempts (no payload either way), as in Suricata.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto: Option<&'static str>,
    /// To-server label when the directions disagree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto_ts: Option<&'static str>,
    /// To-client label when the directions disagree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto_tc: Option<&'static str>,
    /// The label before a change (ftp → ftps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto_orig: Option<&'static str>,
    /// The label an expectation predicted for this flow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto_expected: Option<&'static str>,
}

/// Suricata's `flow` object.
#[derive(Debug, Clone, Serialize)]
pub struct FlowObj {
    /// Packets client → server.
    pub pkts_toserver: u64,
    /// Packets server → client.
    pub pkts_toclient: u64,
    /// Wire bytes client → server.
    pub bytes_toserver: u64,
    /// Wire bytes server → client.
    pub bytes_toclient: u64,
    /// First packet time.
    pub start: String,
    /// Last packet time.
    pub end: String,
    /// Whole seconds between first and last packet.
    pub age: u64,
    /// `new`, `established` or `closed`.
    pub state: &'static str,
    /// Why the flow ended (or `active` on an alert while it runs).
    pub reason: &'static str,
    /// An alert was raised on this flow.
    pub alerted: bool,
}

/// Our per-flow byte accounting (`xfer` on flow records).
#[derive(Debug, Clone, Serialize)]
pub struct XferFlow {
    /// Unique L4 payload bytes client → server.
    pub payload_toserver: u64,
    /// Unique L4 payload bytes server → client.
    pub payload_toclient: u64,
    /// TCP payload seen more than once, client → server.
    pub retransmitted_toserver: u64,
    /// TCP payload seen more than once, server → client.
    pub retransmitted_toclient: u64,
    /// TCP payload never seen (holes), client → server.
    pub missing_toserver: u64,
    /// TCP payload never seen (holes), server → client.
    pub missing_toclient: u64,
    /// Payload sent by an internal endpoint to an external one.
    pub outbound_bytes: u64,
    /// Payload sent by an external endpoint to an internal one.
    pub inbound_bytes: u64,
    /// Zone of the client (`internal`, `external`, `special`).
    pub src_zone: &'static str,
    /// Zone of the server.
    pub dest_zone: &'static str,
    /// Which list put the client in its zone.
    pub src_zone_source: &'static str,
    /// Which list put the server in its zone.
    pub dest_zone_source: &'static str,
    /// Transfer session this flow belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
}

/// A `flow` record.
#[derive(Debug, Clone, Serialize)]
pub struct FlowRecord {
    /// Common header.
    #[serde(flatten)]
    pub header: Header,
    /// Application protocol labels.
    #[serde(flatten)]
    pub app: AppProtoFields,
    /// Suricata flow object.
    pub flow: FlowObj,
    /// Byte accounting and zones.
    pub xfer: XferFlow,
}

/// The body of a `stats` record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StatsBody {
    /// Packet-time seconds since the first packet.
    pub uptime: u64,
    /// Capture/reader counters.
    pub capture: ReadStats,
    /// Decoder counters.
    pub decoder: DecodeStats,
    /// Flow-table counters.
    pub flow: FlowStats,
    /// Writer counters (filled in by the writer thread).
    pub output: OutputStats,
}

/// A `stats` record.
#[derive(Debug, Clone, Serialize)]
pub struct StatsRecord {
    /// Packet time of the snapshot.
    pub timestamp: String,
    /// Always `stats`.
    pub event_type: &'static str,
    /// The counters.
    pub stats: StatsBody,
}

/// The EVE `proto` string for an IP protocol number.
pub fn proto_name(proto: u8) -> String {
    match proto {
        6 => "TCP".to_string(),
        17 => "UDP".to_string(),
        1 => "ICMP".to_string(),
        58 => "IPv6-ICMP".to_string(),
        n => n.to_string(),
    }
}
