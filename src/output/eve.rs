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
    /// Linked data channel: the command that opened the transfer (`STOR`, `RETR` …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<&'static str>,
    /// Linked data channel: the file it carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// How sure the link is (FTPS data channels are linked by host pair, not by an
    /// announcement the sensor could read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_confidence: Option<f64>,
    /// The tunnel the flow arrived in (`gre`, `erspan-i`/`-ii`/`-iii`, `vxlan`, `geneve`),
    /// outermost first seen; absent when it was not tunnelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel: Option<&'static str>,
    /// `one-sided` when only one direction of a TCP flow was captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visibility: Option<&'static str>,
    /// One-sided flow: client → server payload estimated from the server's ACKs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_payload_toserver: Option<u64>,
    /// One-sided flow: server → client payload estimated from the client's ACKs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_payload_toclient: Option<u64>,
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
    /// Session counters (sessions, links, expectations).
    pub sessions: crate::session::SessionStats,
    /// Detection counters.
    pub detect: crate::detect::DetectStats,
    /// Writer counters (filled in by the writer thread).
    pub output: OutputStats,
}

/// An `anomaly` record: one malformed frame (rate-limited).
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyRecord {
    /// Packet time of the frame.
    pub timestamp: String,
    /// Frame number when replaying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pcap_cnt: Option<u64>,
    /// Always `anomaly`.
    pub event_type: &'static str,
    /// What was wrong.
    pub anomaly: AnomalyBody,
}

/// The `anomaly` object, after Suricata's (`type`, `event`) with the frame's sizes.
#[derive(Debug, Clone, Serialize)]
pub struct AnomalyBody {
    /// Always `decode`: the frame failed to decode.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The `stats.decoder` counter the frame was counted in, e.g. `invalid_tcp`.
    pub event: &'static str,
    /// LINKTYPE_* of the frame.
    pub linktype: u32,
    /// Length on the wire.
    pub wire_len: u32,
    /// Captured length.
    pub caplen: u32,
    /// Malformed frames not written as records since the previous one (rate limit).
    #[serde(skip_serializing_if = "is_zero")]
    pub suppressed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
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
    /// The worker that took the snapshot (several workers' snapshots are summed).
    #[serde(skip)]
    pub worker: u16,
    /// The worker's final snapshot (end of the run).
    #[serde(skip)]
    pub last: bool,
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

/// Suricata's `alert` object (DESIGN §7).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertObj {
    /// Always `allowed`: the sensor watches, it never blocks.
    pub action: &'static str,
    /// Generator id, always 1 (rule-based, as Suricata's own signatures).
    pub gid: u32,
    /// Signature id in the local range (9100001 …), one per rule (docs/detections.md).
    pub signature_id: u32,
    /// Revision of the rule's meaning.
    pub rev: u32,
    /// Fixed human-readable name of the rule.
    pub signature: &'static str,
    /// Category, such as "Potential exfiltration over file-transfer protocol".
    pub category: &'static str,
    /// 1 (high) to 3 (low), as Suricata.
    pub severity: u8,
    /// MITRE ATT&CK mapping and the rule name, each an array as Suricata writes metadata.
    pub metadata: AlertMetadata,
}

/// `alert.metadata`: arrays of strings, as in Suricata's EVE.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertMetadata {
    /// `["TA0011"]` (Command and Control).
    pub mitre_tactic_id: [&'static str; 1],
    /// `["T1071"]` (Application Layer Protocol).
    pub mitre_technique_id: [&'static str; 1],
    /// `["T1071.002"]` (File Transfer Protocols).
    pub mitre_subtechnique_id: [&'static str; 1],
    /// `["DET0416"]`.
    pub detection_strategy: [&'static str; 1],
    /// `["AN1173"]`.
    pub analytic: [&'static str; 1],
    /// The `xfer.rule` name, for consumers that only read `alert.*`.
    pub rule: [&'static str; 1],
}

/// A criterion's observed value or threshold: a JSON number or string.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CriterionValue {
    /// A count of bytes, sessions, seconds or a port.
    Int(u64),
    /// A share or an entropy.
    Float(f64),
    /// A protocol, a list, a pattern.
    Text(String),
}

/// One condition of a rule: what was measured against what it was compared with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Criterion {
    /// What was measured, such as `outbound_share` or `host_outbound_bytes_in_window`.
    pub name: &'static str,
    /// The measured value.
    pub observed: CriterionValue,
    /// The configured threshold or the expected value.
    pub threshold: CriterionValue,
}

/// A file of the session as listed in an alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertFile {
    /// File name as the protocol carried it.
    pub name: String,
    /// `upload` (client → server) or `download` (server → client).
    pub direction: &'static str,
    /// True when the file's bytes went from the internal to the external endpoint.
    pub outbound: bool,
    /// Bytes transferred so far.
    pub bytes: u64,
    /// The transfer completed.
    pub complete: bool,
}

/// `xfer.evidence`: everything a reader needs to see why the rule fired. Fields that do not
/// apply to a rule are left out; a field has the same type and meaning under every rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Evidence {
    /// One sentence saying what happened, with the figures.
    pub summary: String,
    /// What the figures cover: `session`, `file`, `host`, `destination`, `connections`,
    /// `filename` or `flow`.
    pub scope: &'static str,
    /// Session protocol (`ftp`, `ftps`, `smb`, `tftp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<&'static str>,
    /// The internal endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_ip: Option<std::net::IpAddr>,
    /// The external endpoint's address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_ip: Option<std::net::IpAddr>,
    /// The external endpoint's port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_port: Option<u16>,
    /// Session payload internal → external so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_bytes: Option<u64>,
    /// Session payload external → internal so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbound_bytes: Option<u64>,
    /// outbound / (outbound + inbound), rounded to 4 decimals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_share: Option<f64>,
    /// First packet of the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_start: Option<String>,
    /// Packet time the figures were taken at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
    /// For a closing record: when the rule first fired in this session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crossed_at: Option<String>,
    /// Sliding window length, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_secs: Option<u64>,
    /// Start of the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_start: Option<String>,
    /// End of the window (the packet time of the check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_end: Option<String>,
    /// The internal host's outbound bytes to all external peers in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_window_bytes: Option<u64>,
    /// The internal host's outbound bytes to this external address in the window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_window_bytes: Option<u64>,
    /// Sessions counted in the window (repeated-connections).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_count: Option<u64>,
    /// Sessions involved, most recent last (bounded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// The file the rule is about (suspicious-filename, or the file that alone crossed
    /// transfer-size).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Which filename patterns matched, e.g. `archive-extension:zip`, `random-stem:hex`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filename_patterns: Vec<String>,
    /// Shannon entropy of the file-name stem, bits per character, rounded to 3 decimals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stem_entropy: Option<f64>,
    /// Files of the session not listed in `xfer.files` (the list is bounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files_omitted: Option<u64>,
    /// Mismatch rules: the protocol identified (`unknown` when nothing matched).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_protocol: Option<&'static str>,
    /// Mismatch rules: to-server label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto_ts: Option<&'static str>,
    /// Mismatch rules: to-client label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto_tc: Option<&'static str>,
    /// Mismatch rules: protocols the port policy lists for the server port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_protocols: Option<Vec<&'static str>>,
    /// Mismatch rules: ports the port policy lists for the protocol found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_ports: Option<Vec<u16>>,
    /// Mismatch rules: the server port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_port: Option<u16>,
    /// Mismatch rules: what identification saw in each direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identification: Option<Identification>,
}

/// What the probes saw in both directions of a flow, so a mismatch alert explains itself
/// without the capture.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Identification {
    /// Client → server.
    pub toserver: DirIdentification,
    /// Server → client.
    pub toclient: DirIdentification,
    /// Payload bytes probed per direction at most.
    pub budget_bytes: usize,
    /// Payload packets probed per direction at most.
    pub budget_packets: u32,
}

/// One direction's identification evidence.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DirIdentification {
    /// Signature that matched (e.g. `smb2-header`), if any.
    pub signature: Option<&'static str>,
    /// Protocol the signature proves.
    pub protocol: Option<&'static str>,
    /// Offset of the match in the direction's stream.
    pub offset: Option<usize>,
    /// Frame number of the packet that completed the match (replay).
    pub pcap_cnt: Option<u64>,
    /// Payload bytes given to the probes.
    pub bytes_probed: u32,
    /// Payload packets given to the probes.
    pub packets_probed: u32,
    /// The first bytes of the direction, hex.
    pub first_bytes_hex: String,
    /// The same bytes as text, unprintable bytes as `.`.
    pub first_bytes_text: String,
}

/// `xfer` on an alert record (DESIGN §7).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct XferAlert {
    /// Rule name (DESIGN §6); never changes meaning.
    pub rule: &'static str,
    /// `crossing` when a threshold was first crossed, `session-end` for the closing record of
    /// a session that alerted.
    pub phase: &'static str,
    /// The transfer session the alert is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Each condition that held, with the observed value and the threshold.
    pub criteria: Vec<Criterion>,
    /// The facts behind the alert.
    pub evidence: Evidence,
    /// Files of the session (bounded; see `evidence.files_omitted`).
    pub files: Vec<AlertFile>,
    /// Zone of the client (`src_ip`).
    pub src_zone: &'static str,
    /// Zone of the server (`dest_ip`).
    pub dest_zone: &'static str,
    /// Which list put the client in its zone.
    pub src_zone_source: &'static str,
    /// Which list put the server in its zone.
    pub dest_zone_source: &'static str,
    /// Repeats of this rule and key that were suppressed since the last record for it.
    pub suppressed_count: u64,
    /// First occurrence of this series (rule and key) or, on a closing record, the crossing.
    pub first_seen: String,
    /// This occurrence.
    pub last_seen: String,
}

/// An `alert` record: the header, the flow's labels and counters, and the detection.
#[derive(Debug, Clone, Serialize)]
pub struct AlertRecord {
    /// Common header (`event_type` = `alert`).
    #[serde(flatten)]
    pub header: Header,
    /// Application protocol labels of the flow.
    #[serde(flatten)]
    pub app: AppProtoFields,
    /// Suricata alert object.
    pub alert: AlertObj,
    /// Suricata flow object (the flow so far; `reason` is `active` while it runs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<FlowObj>,
    /// The detection.
    pub xfer: XferAlert,
}

/// `xfer` on session and transaction records.
#[derive(Debug, Clone, Serialize)]
pub struct XferRef<'a> {
    /// Transfer session.
    pub session_id: &'a str,
}

/// An `ftp`, `smb` or `tftp` transaction record (one of the three bodies is set).
#[derive(Debug, Clone, Serialize)]
pub struct TxRecord<'a> {
    /// Common header.
    #[serde(flatten)]
    pub header: Header,
    /// Suricata's `ftp` object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ftp: Option<&'a crate::proto::ftp::FtpTransaction>,
    /// Suricata's `smb` object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smb: Option<&'a crate::proto::smb::SmbTransaction>,
    /// Suricata's `tftp` object plus transfer totals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tftp: Option<crate::proto::tftp::TftpRecord<'a>>,
    /// Session link.
    pub xfer: XferRef<'a>,
}

/// A `session` record: one per FTP control session, TFTP request or SMB connection.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRecord<'a> {
    /// Header of the session's main flow.
    #[serde(flatten)]
    pub header: Header,
    /// Session protocol.
    pub app_proto: &'static str,
    /// The rollup.
    pub session: crate::session::SessionObj<'a>,
    /// Session id and zones.
    pub xfer: SessionXfer<'a>,
}

/// `xfer` on a session record.
#[derive(Debug, Clone, Serialize)]
pub struct SessionXfer<'a> {
    /// Session id.
    pub session_id: &'a str,
    /// Zone of the client.
    pub src_zone: &'static str,
    /// Zone of the server.
    pub dest_zone: &'static str,
    /// Which list classified the client.
    pub src_zone_source: &'static str,
    /// Which list classified the server.
    pub dest_zone_source: &'static str,
}
