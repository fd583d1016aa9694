//! The sidecar `<out>.truth.json`: what the generator wrote, flow by flow and session by
//! session, so replay tests can check the sensor against it.
//!
//! Conventions (also in `pcaps/README.md`): a flow's `client` is the endpoint that sent its
//! first packet (the SYN for TCP, the first datagram for UDP), as the sensor sees it; byte
//! figures are per direction relative to that client; `payload_bytes` counts TCP payload
//! once in sequence space, and `retransmitted_bytes` what was sent again on top.

use serde::Serialize;
use xferwatch::app_proto::AppProto;

/// Per-direction counters of one flow.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct DirTruth {
    /// Packets, retransmissions included.
    pub pkts: u64,
    /// Frame bytes (Ethernet header onwards), as EVE `flow.bytes_to*` counts them.
    pub wire_bytes: u64,
    /// Unique L4 payload bytes (TCP: sequence space, each byte once).
    pub payload_bytes: u64,
    /// Packets that re-sent bytes already sent.
    pub retransmitted_pkts: u64,
    /// Payload bytes in those packets (not included in `payload_bytes`).
    pub retransmitted_bytes: u64,
}

/// Which way a file moved, relative to the session's client (the user).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FileDir {
    /// Client to server (STOR, WRQ, SMB WRITE).
    Upload,
    /// Server to client (RETR, LIST, RRQ, SMB READ).
    Download,
}

/// One file (or listing, or named pipe) a session moved.
#[derive(Debug, Clone, Serialize)]
pub struct FileTruth {
    /// The name as it appears on the wire (FTP argument, TFTP file, SMB CREATE name).
    pub name: String,
    /// Content bytes moved (plaintext size for FTPS); for SMB the file's final size.
    pub size: u64,
    /// Direction relative to the session client.
    pub direction: FileDir,
    /// The command that moved it: STOR/RETR/LIST/APPE/STOU, RRQ/WRQ, READ/WRITE.
    pub command: &'static str,
    /// The flow that carried the content.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow: Option<u32>,
    /// SMB: the share path the file was opened on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    /// SMB: true for a named pipe on IPC$.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub pipe: bool,
    /// SMB: bytes carried by READ responses for this open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_bytes: Option<u64>,
    /// SMB: bytes carried by WRITE requests for this open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_bytes: Option<u64>,
}

impl FileTruth {
    /// A file moved by `command`.
    pub fn new(name: &str, size: u64, direction: FileDir, command: &'static str) -> FileTruth {
        FileTruth {
            name: name.to_owned(),
            size,
            direction,
            command,
            flow: None,
            share: None,
            pipe: false,
            read_bytes: None,
            written_bytes: None,
        }
    }
}

/// The mismatch verdict DESIGN §4 expects on a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A file-transfer protocol on a port not listed for it.
    PortMismatch,
    /// A file-transfer port carrying something else.
    ExpectedProtocolAbsent,
    /// The two directions identify as different protocols.
    DirectionDisagreement,
}

impl Verdict {
    /// The `xfer.rule` name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::PortMismatch => "port-mismatch",
            Verdict::ExpectedProtocolAbsent => "expected-protocol-absent",
            Verdict::DirectionDisagreement => "direction-disagreement",
        }
    }
}

/// Where a linked data flow came from.
#[derive(Debug, Clone, Serialize)]
pub struct LinkTruth {
    /// The control (FTP) or request (TFTP) flow.
    pub control_flow: u32,
    /// The command that announced it: `PASV` + `STOR name`, `RRQ name` …
    pub request: String,
    /// Which session role opened this flow (`ftp-client`, `ftp-server`, `tftp-server`).
    pub opened_by: &'static str,
}

/// What the generator intends a flow to be identified as.
#[derive(Debug, Clone, Default)]
pub struct FlowMeta {
    /// Expected final `app_proto` (`None`: no payload, so no label).
    pub app_proto: Option<AppProto>,
    /// Expected `app_proto_ts` when the directions disagree.
    pub app_proto_ts: Option<AppProto>,
    /// Expected `app_proto_tc` when the directions disagree.
    pub app_proto_tc: Option<AppProto>,
    /// Expected `app_proto_orig` when the label changed (ftp → ftps).
    pub app_proto_orig: Option<AppProto>,
    /// Set on data flows linked to a control or request flow.
    pub linked: Option<LinkTruth>,
    /// Expected mismatch verdict.
    pub verdict: Option<Verdict>,
    /// Files whose content this flow carried.
    pub files: Vec<FileTruth>,
    /// One line for humans.
    pub note: String,
}

/// One flow as written.
#[derive(Debug, Clone, Serialize)]
pub struct FlowTruth {
    /// Creation order, 1-based; sessions refer to flows by it.
    pub id: u32,
    /// `tcp` or `udp`.
    pub transport: &'static str,
    /// 4 or 6.
    pub ip_version: u8,
    /// 802.1Q VLAN id, when tagged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vlan: Option<u16>,
    /// Sender of the first packet.
    pub client_ip: String,
    /// Its port.
    pub client_port: u16,
    /// The other endpoint.
    pub server_ip: String,
    /// Its port.
    pub server_port: u16,
    /// Zone of the client per the address plan.
    pub client_zone: crate::net::Zone,
    /// Zone of the server per the address plan.
    pub server_zone: crate::net::Zone,
    /// Expected `app_proto`.
    pub app_proto: Option<&'static str>,
    /// Expected `app_proto_ts` (only when the directions disagree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto_ts: Option<&'static str>,
    /// Expected `app_proto_tc` (only when the directions disagree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto_tc: Option<&'static str>,
    /// Expected `app_proto_orig` (only when the label changes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_proto_orig: Option<&'static str>,
    /// Control/request flow this data flow belongs to.
    pub linked: Option<LinkTruth>,
    /// Expected mismatch verdict, `None` for no alert.
    pub expected_verdict: Option<Verdict>,
    /// First packet time (EVE format).
    pub first_ts: String,
    /// Last packet time (EVE format).
    pub last_ts: String,
    /// How the flow ends: `fin`, `rst`, `none` (UDP, or left open).
    pub end: &'static str,
    /// Client → server counters.
    pub toserver: DirTruth,
    /// Server → client counters.
    pub toclient: DirTruth,
    /// Files carried by this flow.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileTruth>,
    /// What the flow is, for humans.
    pub note: String,
}

/// Session details by protocol.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SessionKind {
    /// One FTP/FTPS control session and its data flows.
    Ftp {
        /// USER argument (not visible on the wire for FTPS).
        user: String,
        /// `none`, `explicit` (AUTH TLS) or `implicit` (port 990).
        tls: &'static str,
    },
    /// One SMB connection.
    Smb {
        /// Negotiated dialect, e.g. `3.1.1`, or `NT LM 0.12` for SMB1.
        dialect: String,
        /// True when PDUs after session setup travel in TRANSFORM headers.
        encrypted: bool,
        /// Tree connect paths, in order.
        trees: Vec<String>,
    },
    /// One TFTP request and its transfer.
    Tftp {
        /// `read` (RRQ) or `write` (WRQ).
        op: &'static str,
        /// Requested file.
        file: String,
        /// `octet` or `netascii`.
        mode: &'static str,
        /// RFC 2347 options as acknowledged by OACK (name, value).
        options: Vec<(String, String)>,
        /// DATA blocks sent, the final short (possibly empty) block included.
        blocks: u64,
        /// File bytes carried in DATA.
        bytes: u64,
        /// `complete` or `error <code>`.
        outcome: String,
    },
}

/// One session: a control/request flow plus every flow linked to it.
#[derive(Debug, Clone, Serialize)]
pub struct SessionTruth {
    /// Protocol and its details.
    #[serde(flatten)]
    pub kind: SessionKind,
    /// Flow ids, control/request flow first.
    pub flows: Vec<u32>,
    /// The user side (FTP/TFTP/SMB client).
    pub client_ip: String,
    /// The server side.
    pub server_ip: String,
    /// Payload bytes sent by an internal endpoint to an external one (documentation ranges
    /// counted as external), summed over the session's flows.
    pub outbound_payload_bytes: u64,
    /// Payload bytes sent by an external endpoint to an internal one.
    pub inbound_payload_bytes: u64,
    /// Files moved.
    pub files: Vec<FileTruth>,
}
