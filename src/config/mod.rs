//! Sensor configuration: `sensor.toml` (DESIGN §8), read once at start and again on SIGHUP.
//!
//! Every table is a serde struct with `deny_unknown_fields` and `default`, so a key may be
//! left out (it takes the documented default) but never misspelt. Values are checked while
//! they are deserialised ([`Count`], [`Port`], [`Cidr`] …), which keeps the span of the bad
//! value for the error message; the few checks that relate two values run afterwards and
//! locate their value in the text again. Every failure becomes one [`ConfigError`] line that
//! names the file, line, column and key.
//!
//! The built-in defaults are the shipped `sensor.toml` ([`SHIPPED`]); a test keeps the two
//! equal, and another checks that the shipped file mentions every key.
//!
//! To add a section: a struct with the same attributes, a `Default` impl with the documented
//! values, a field in [`Config`], and a commented block in `sensor.toml`.

mod error;
mod types;

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::Path;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::app_proto::AppProto;

pub use error::ConfigError;
use error::Seg;
pub use types::{
    Bits, Bytes, Cidr, Count, Extension, MAX_EXTENSION_LEN, NonEmptyPortList, PORT_POLICY_PROTOS,
    PolicyProto, Port, PortList, ProtoName, RULE_NAMES, Ratio, RuleName, Seconds,
};

/// The shipped `sensor.toml`, which documents every key; its values are the defaults.
pub const SHIPPED: &str = include_str!("../../sensor.toml");

/// Configuration files larger than this are refused rather than read into memory.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The whole configuration, one field per `[section]`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `[capture]`: packet sources, batching and worker threads.
    pub capture: CaptureConfig,
    /// `[networks]`: the trust boundary (which addresses are internal or external).
    pub networks: NetworksConfig,
    /// `[ports]`: the port policy table behind port-mismatch verdicts.
    pub ports: PortsConfig,
    /// `[identify]`: budgets of the protocol probes.
    pub identify: IdentifyConfig,
    /// `[flows]`: flow-table size and idle timeouts.
    pub flows: FlowsConfig,
    /// `[sessions]`: transfer sessions and the expectations that link their flows.
    pub sessions: SessionsConfig,
    /// `[output]`: where and how records are written.
    pub output: OutputConfig,
    /// `[thresholds]`: the detection tunables (AN1173) and filename patterns.
    pub thresholds: ThresholdsConfig,
    /// `[suppression]`: how repeats of one alert are collapsed.
    pub suppression: SuppressionConfig,
    /// `[[allowlist]]`: known-good traffic that never alerts.
    pub allowlist: Vec<AllowlistEntry>,
    /// `[detect]`: memory bounds of the detection stage.
    pub detect: DetectConfig,
}

/// When to draw a progress bar on stderr while replaying files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Progress {
    /// Only when stderr is a terminal.
    #[default]
    Auto,
    /// Always, even when stderr is a file or pipe.
    Always,
    /// Never.
    Never,
}

/// `[capture]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureConfig {
    /// Bytes of each frame to capture on a live interface.
    pub snaplen: Count,
    /// Put the live interface into promiscuous mode.
    pub promiscuous: bool,
    /// Kernel capture buffer for a live interface, MiB.
    pub buffer_size_mib: Count,
    /// libpcap read timeout for a live interface, milliseconds.
    pub read_timeout_ms: Count,
    /// BPF filter used when none is given on the command line; empty = every packet.
    pub bpf: String,
    /// Frames per batch handed from the capture thread to a worker.
    pub batch_packets: Count,
    /// Depth of each bounded capture → worker channel, in batches.
    pub queue_batches: Count,
    /// Worker threads; 0 = one fewer than the CPU cores, at least one.
    pub workers: u16,
    /// Progress bar on stderr while replaying: auto, always or never.
    pub progress: Progress,
    /// Largest capture record accepted from a file; a bigger one marks the file corrupt.
    pub max_record_bytes: Count,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            snaplen: Count::lit(262_144),
            promiscuous: true,
            buffer_size_mib: Count::lit(32),
            read_timeout_ms: Count::lit(100),
            bpf: String::new(),
            batch_packets: Count::lit(512),
            queue_batches: Count::lit(32),
            workers: 0,
            progress: Progress::Auto,
            max_record_bytes: Count::lit(262_144),
        }
    }
}

impl CaptureConfig {
    /// The number of worker threads to start: `workers`, or cores − 1 (at least 1) for 0.
    pub fn effective_workers(&self) -> usize {
        if self.workers > 0 {
            return usize::from(self.workers);
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.saturating_sub(1).max(1)
    }
}

/// `[networks]`: the trust boundary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworksConfig {
    /// Networks whose hosts are internal.
    pub home_nets: Vec<Cidr>,
    /// Networks forced internal, ahead of `home_nets` and the special-purpose ranges.
    pub internal: Vec<Cidr>,
    /// Networks forced external, ahead of `home_nets` and the special-purpose ranges.
    pub external: Vec<Cidr>,
}

impl Default for NetworksConfig {
    fn default() -> Self {
        let nets = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"];
        NetworksConfig {
            home_nets: nets.iter().filter_map(|n| Cidr::parse(n)).collect(),
            internal: Vec::new(),
            external: Vec::new(),
        }
    }
}

/// `[ports]`: which ports each file-transfer protocol is expected on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PortsConfig {
    /// FTP control.
    pub ftp: PortList,
    /// FTP active-mode data (server side).
    pub ftp_data: PortList,
    /// Implicit FTPS control and data.
    pub ftps: PortList,
    /// SMB (direct TCP and NetBIOS session service).
    pub smb: PortList,
    /// TFTP requests.
    pub tftp: PortList,
    /// `[[ports.exception]]`: servers allowed to run a protocol on other ports.
    pub exception: Vec<PortException>,
}

impl Default for PortsConfig {
    fn default() -> Self {
        PortsConfig {
            ftp: PortList::from_ports(&[21]),
            ftp_data: PortList::from_ports(&[20]),
            ftps: PortList::from_ports(&[990, 989]),
            smb: PortList::from_ports(&[445, 139]),
            tftp: PortList::from_ports(&[69]),
            exception: Vec::new(),
        }
    }
}

/// One `[[ports.exception]]`: servers in `cidr` may run `protocol` on `ports`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortException {
    /// Server addresses the exception applies to.
    pub cidr: Cidr,
    /// The protocol they may run (one with a port policy row).
    pub protocol: PolicyProto,
    /// The extra ports allowed for it.
    pub ports: NonEmptyPortList,
}

/// `[identify]`: how much of each flow the probes may look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentifyConfig {
    /// Payload bytes per direction kept for probing.
    pub probe_bytes: Count,
    /// Payload packets per direction offered to the probes.
    pub probe_packets: Count,
    /// Cap on the memory of all probe buffers together, MiB.
    pub max_probe_memory_mib: Count,
}

impl Default for IdentifyConfig {
    fn default() -> Self {
        IdentifyConfig {
            probe_bytes: Count::lit(4096),
            probe_packets: Count::lit(8),
            max_probe_memory_mib: Count::lit(64),
        }
    }
}

/// `[flows]`: flow-table size and idle timeouts on packet time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowsConfig {
    /// Flows tracked at once; beyond it the stalest flow is evicted.
    pub max_flows: Count,
    /// Idle timeout of a TCP flow before its handshake completes.
    pub tcp_new: Seconds,
    /// Idle timeout of an established TCP flow.
    pub tcp_established: Seconds,
    /// Time a TCP flow is kept after FIN or RST, for late packets.
    pub tcp_closed: Seconds,
    /// Idle timeout of a UDP flow seen in one direction only.
    pub udp_new: Seconds,
    /// Idle timeout of a UDP flow seen in both directions.
    pub udp_established: Seconds,
    /// Idle timeout of an ICMP flow.
    pub icmp: Seconds,
    /// Idle timeout of any other IP protocol.
    pub other: Seconds,
    /// IPv4 fragment-tracking entries kept at once.
    pub max_fragments: Count,
    /// Bytes one TCP direction may hold while later segments wait for a hole to fill
    /// (0 = no reordering: a hole reaches the parsers at once).
    pub reorder_bytes: u32,
    /// Cap on the memory of all reorder buffers together, MiB.
    pub max_reorder_memory_mib: Count,
}

impl Default for FlowsConfig {
    fn default() -> Self {
        FlowsConfig {
            max_flows: Count::lit(262_144),
            tcp_new: Seconds::lit(30),
            tcp_established: Seconds::lit(600),
            tcp_closed: Seconds::lit(10),
            udp_new: Seconds::lit(30),
            udp_established: Seconds::lit(120),
            icmp: Seconds::lit(30),
            other: Seconds::lit(60),
            max_fragments: Count::lit(4096),
            reorder_bytes: 262_144,
            max_reorder_memory_mib: Count::lit(32),
        }
    }
}

/// `[sessions]`: caps and lifetimes of transfer sessions and data-flow expectations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionsConfig {
    /// Sessions (FTP control, TFTP request, SMB connection) tracked at once.
    pub max_sessions: Count,
    /// Announced data flows (PASV/PORT/EPSV/EPRT, TFTP requests) waiting to be seen.
    pub max_expectations: Count,
    /// Seconds of packet time an announced data flow may take to appear.
    pub expectation_timeout: Seconds,
    /// Files remembered per session (more are counted, not listed).
    pub max_files: Count,
}

impl Default for SessionsConfig {
    fn default() -> Self {
        SessionsConfig {
            max_sessions: Count::lit(262_144),
            max_expectations: Count::lit(16_384),
            expectation_timeout: Seconds::lit(120),
            max_files: Count::lit(256),
        }
    }
}

/// `[output]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// EVE JSON lines file; `-` is stdout. `-o` on the command line overrides it.
    #[serde(deserialize_with = "types::non_empty_string")]
    pub eve: String,
    /// Seconds of packet time between `stats` records; 0 = only the final one.
    pub stats_interval: u32,
    /// Most `anomaly` records written per second of packet time; 0 = none (still counted).
    pub anomaly_rate: u32,
    /// Records (alerts excepted) queued for the output writer at most.
    pub queue_records: Count,
    /// Alert records queued for the output writer at most (their own, larger queue).
    pub queue_alerts: Count,
    /// Unwritten output the writer holds while its sink fails, bytes.
    pub max_backlog_bytes: Count,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            eve: "eve.json".to_owned(),
            stats_interval: 60,
            anomaly_rate: 10,
            queue_records: Count::lit(65_536),
            queue_alerts: Count::lit(131_072),
            max_backlog_bytes: Count::lit(4_194_304),
        }
    }
}

/// Builds an extension list from literals (the defaults); invalid literals are skipped.
fn extensions(list: &[&str]) -> Vec<Extension> {
    list.iter()
        .filter_map(|e| Extension::parse(e).ok())
        .collect()
}

/// `[thresholds]`: the detection tunables (DESIGN §6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThresholdsConfig {
    /// `outbound-ratio`: least outbound share of a session's payload.
    pub outbound_ratio: Ratio,
    /// `outbound-ratio`: least outbound payload of the session, bytes.
    pub outbound_ratio_min_bytes: Bytes,
    /// `transfer-size`: outbound bytes of one file or one session.
    pub transfer_size_bytes: Bytes,
    /// `outbound-volume`: outbound bytes of one internal host, all destinations, per window
    /// (the rule fires when the window holds more than this).
    pub outbound_volume_bytes: Bytes,
    /// `outbound-volume`: outbound bytes from one internal host to one external address per
    /// window.
    pub outbound_volume_destination_bytes: Bytes,
    /// `outbound-volume`: the sliding window.
    pub outbound_volume_window_secs: Seconds,
    /// `repeated-connections`: sessions allowed per host → address:port and window; one more
    /// fires.
    pub repeated_connections_max: Count,
    /// `repeated-connections`: the sliding window.
    pub repeated_connections_window_secs: Seconds,
    /// `suspicious-filename`: archive and compressed-file extensions.
    pub filename_archive_extensions: Vec<Extension>,
    /// `suspicious-filename`: document and media extensions that, followed by an archive or
    /// executable extension, make a double extension (`report.pdf.exe`).
    pub filename_document_extensions: Vec<Extension>,
    /// `suspicious-filename`: executable and script extensions (outer part of a double
    /// extension).
    pub filename_executable_extensions: Vec<Extension>,
    /// `suspicious-filename`: least length of an all-hex stem.
    pub filename_hex_min_len: Count,
    /// `suspicious-filename`: least length of a base64-like stem.
    pub filename_base64_min_len: Count,
    /// `suspicious-filename`: least length of a stem judged by its entropy.
    pub filename_entropy_min_len: Count,
    /// `suspicious-filename`: least Shannon entropy of such a stem, bits per character.
    pub filename_entropy_bits: Bits,
}

impl Default for ThresholdsConfig {
    fn default() -> Self {
        ThresholdsConfig {
            outbound_ratio: Ratio::lit(0.9),
            outbound_ratio_min_bytes: Bytes::lit(1_048_576),
            transfer_size_bytes: Bytes::lit(52_428_800),
            outbound_volume_bytes: Bytes::lit(100_000_000),
            outbound_volume_destination_bytes: Bytes::lit(100_000_000),
            outbound_volume_window_secs: Seconds::lit(3600),
            repeated_connections_max: Count::lit(3),
            repeated_connections_window_secs: Seconds::lit(86_400),
            filename_archive_extensions: extensions(&DEFAULT_ARCHIVE_EXTENSIONS),
            filename_document_extensions: extensions(&DEFAULT_DOCUMENT_EXTENSIONS),
            filename_executable_extensions: extensions(&DEFAULT_EXECUTABLE_EXTENSIONS),
            filename_hex_min_len: Count::lit(16),
            filename_base64_min_len: Count::lit(16),
            filename_entropy_min_len: Count::lit(12),
            filename_entropy_bits: Bits::lit(3.3),
        }
    }
}
/// Default `filename_archive_extensions`: archives, compressed files and disk images.
pub const DEFAULT_ARCHIVE_EXTENSIONS: [&str; 32] = [
    "zip", "zipx", "rar", "7z", "tar", "gz", "tgz", "bz2", "tbz", "tbz2", "xz", "txz", "lz",
    "lzma", "tlz", "zst", "zstd", "z", "cab", "arj", "lzh", "lha", "ace", "cpio", "sit", "sitx",
    "iso", "img", "dmg", "vhd", "vhdx", "wim",
];

/// Default `filename_document_extensions`: documents, data and media.
pub const DEFAULT_DOCUMENT_EXTENSIONS: [&str; 38] = [
    "pdf", "doc", "docx", "docm", "xls", "xlsx", "xlsm", "ppt", "pptx", "pptm", "odt", "ods",
    "odp", "rtf", "txt", "csv", "tsv", "xml", "json", "sql", "db", "pst", "eml", "msg", "jpg",
    "jpeg", "png", "gif", "bmp", "tif", "tiff", "mp3", "wav", "mp4", "avi", "mov", "mkv", "html",
];

/// Default `filename_executable_extensions`: programs and scripts.
pub const DEFAULT_EXECUTABLE_EXTENSIONS: [&str; 23] = [
    "exe", "scr", "com", "pif", "bat", "cmd", "vbs", "vbe", "js", "jse", "wsf", "wsh", "hta",
    "msi", "msp", "ps1", "lnk", "jar", "dll", "cpl", "reg", "sh", "elf",
];

/// Largest accepted `repeated_connections_max`: each tracked host → address:port keeps that
/// many session start times plus one.
pub const MAX_REPEATED_CONNECTIONS: u32 = 1000;

/// Largest `[flows] reorder_bytes`: one TCP direction never holds more than this.
pub const MAX_REORDER_BYTES: u32 = 16 << 20;

/// Largest accepted `[capture] batch_packets`: a batch reserves room for this many
/// full-size frames when it is made, and a larger request would abort the allocation at
/// start-up instead of giving a message.
pub const MAX_BATCH_PACKETS: u32 = 65_536;

/// Largest accepted `[capture] queue_batches`: the channel allocates its slots up front.
pub const MAX_QUEUE_BATCHES: u32 = 4_096;

/// Largest accepted `[capture] max_record_bytes` (64 MiB): the file reader's buffer is
/// this plus 64 KiB.
pub const MAX_RECORD_BYTES: u32 = 64 << 20;

/// `[suppression]`: repeats of one alert (same rule and key) inside a window are counted
/// instead of written; the next record written for that key carries the count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SuppressionConfig {
    /// The window, seconds of packet time; 0 writes every repeat.
    #[serde(deserialize_with = "types::secs_or_zero")]
    pub window_secs: u32,
    /// Rule + key entries remembered at once; the least recently seen is forgotten first.
    pub max_keys: Count,
    /// Per-rule windows that replace `window_secs` (rule name → seconds, 0 = off).
    #[serde(deserialize_with = "types::rule_windows")]
    pub rules: BTreeMap<RuleName, u32>,
}

impl Default for SuppressionConfig {
    fn default() -> Self {
        SuppressionConfig {
            window_secs: 3600,
            max_keys: Count::lit(65_536),
            rules: BTreeMap::new(),
        }
    }
}

/// One `[[allowlist]]` entry: an alert that matches every field given here is dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowlistEntry {
    /// Source network: the internal endpoint when the alert crosses the trust boundary, else
    /// the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr: Option<Cidr>,
    /// An address (or network) matching either endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Cidr>,
    /// Destination network: the external endpoint when the alert crosses the trust boundary,
    /// else the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<Cidr>,
    /// Server port of the session's control or request flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<Port>,
    /// Session protocol (`ftp`, `smb` …), or for mismatch rules the protocol found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<ProtoName>,
    /// Rule name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleName>,
    /// Why the entry exists; not matched, kept for people and `--check-config`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub comment: String,
}

impl AllowlistEntry {
    /// True when the entry names no field to match (it would silence everything).
    pub fn is_empty(&self) -> bool {
        self.cidr.is_none()
            && self.host.is_none()
            && self.destination.is_none()
            && self.port.is_none()
            && self.protocol.is_none()
            && self.rule.is_none()
    }
}

/// `[detect]`: memory bounds of the detection stage. Every table evicts its least recently
/// active entry when full and counts it in the stats.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// Sessions with detection state at once.
    pub max_tracked_sessions: Count,
    /// Internal hosts with an `outbound-volume` window.
    pub max_tracked_hosts: Count,
    /// Internal host → external address pairs with an `outbound-volume` window.
    pub max_tracked_destinations: Count,
    /// Internal host → external address:port triples counted by `repeated-connections`.
    pub max_tracked_connections: Count,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            max_tracked_sessions: Count::lit(65_536),
            max_tracked_hosts: Count::lit(16_384),
            max_tracked_destinations: Count::lit(32_768),
            max_tracked_connections: Count::lit(32_768),
        }
    }
}

/// A failed check across values: where the value is and what is wrong with it.
struct CrossFieldError {
    path: Vec<Seg<'static>>,
    key: String,
    message: String,
}

impl Config {
    /// Parses and validates a configuration. `origin` names the text in error messages
    /// (normally the file name). An empty text gives [`Config::default`].
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let config: Config = parse_document(text, origin)?;
        config
            .cross_check()
            .map_err(|e| ConfigError::at_path(text, origin, &e.path, e.key, &e.message))?;
        Ok(config)
    }

    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let read_err = |error| ConfigError::Read {
            origin: origin.clone(),
            error,
        };
        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        if text.len() as u64 > MAX_CONFIG_BYTES {
            return Err(read_err(std::io::Error::other(format!(
                "larger than {} KiB",
                MAX_CONFIG_BYTES / 1024
            ))));
        }
        Config::from_toml_str(&text, &origin)
    }

    /// The port policy table: each file-transfer protocol with its expected ports.
    pub fn port_table(&self) -> Vec<(AppProto, Vec<u16>)> {
        let p = &self.ports;
        vec![
            (AppProto::Ftp, p.ftp.to_u16s()),
            (AppProto::FtpData, p.ftp_data.to_u16s()),
            (AppProto::Ftps, p.ftps.to_u16s()),
            (AppProto::Smb, p.smb.to_u16s()),
            (AppProto::Tftp, p.tftp.to_u16s()),
        ]
    }

    /// The per-server exceptions to the port policy: (server network, protocol, ports).
    pub fn port_exceptions(&self) -> Vec<(IpNet, AppProto, Vec<u16>)> {
        self.ports
            .exception
            .iter()
            .map(|e| (e.cidr.net(), e.protocol.get(), e.ports.list().to_u16s()))
            .collect()
    }

    /// Checks that relate several values, and the upper bounds of the sizes that start-up
    /// allocates from; each failure points at one value.
    fn cross_check(&self) -> Result<(), CrossFieldError> {
        // Seen while writing the config fuzz target: any non-zero u32 was accepted here,
        // and the pipeline sized its first allocations from it.
        let c = &self.capture;
        for (key, value, max) in [
            ("batch_packets", c.batch_packets, MAX_BATCH_PACKETS),
            ("queue_batches", c.queue_batches, MAX_QUEUE_BATCHES),
            ("max_record_bytes", c.max_record_bytes, MAX_RECORD_BYTES),
        ] {
            if value.get() > max {
                return Err(CrossFieldError {
                    path: vec![Seg::Key("capture"), Seg::Key(key)],
                    key: format!("[capture] {key}"),
                    message: format!("{value} is more than the supported {max}"),
                });
            }
        }
        if self.flows.reorder_bytes > MAX_REORDER_BYTES {
            return Err(CrossFieldError {
                path: vec![Seg::Key("flows"), Seg::Key("reorder_bytes")],
                key: "[flows] reorder_bytes".to_owned(),
                message: format!(
                    "{} is more than the supported {MAX_REORDER_BYTES}",
                    self.flows.reorder_bytes
                ),
            });
        }
        let nets = &self.networks;
        for (i, ext) in nets.external.iter().enumerate() {
            if nets.internal.contains(ext) {
                return Err(CrossFieldError {
                    path: vec![Seg::Key("networks"), Seg::Key("external"), Seg::Index(i)],
                    key: "[networks] external".to_owned(),
                    message: format!("`{ext}` is also listed in `internal`; pick one"),
                });
            }
        }
        let t = &self.thresholds;
        if t.repeated_connections_max.get() > MAX_REPEATED_CONNECTIONS {
            return Err(CrossFieldError {
                path: vec![Seg::Key("thresholds"), Seg::Key("repeated_connections_max")],
                key: "[thresholds] repeated_connections_max".to_owned(),
                message: format!(
                    "{} is more than the supported {MAX_REPEATED_CONNECTIONS}",
                    t.repeated_connections_max
                ),
            });
        }
        for (i, entry) in self.allowlist.iter().enumerate() {
            if entry.is_empty() {
                return Err(CrossFieldError {
                    path: vec![Seg::Key("allowlist"), Seg::Index(i)],
                    key: format!("[[allowlist]] #{}", i + 1),
                    message: "the entry matches everything; give at least one of cidr, host, \
                              destination, port, protocol, rule"
                        .to_owned(),
                });
            }
        }
        Ok(())
    }
}

/// Deserialises any document type with the error contract of [`Config::from_toml_str`].
pub(crate) fn parse_document<T: DeserializeOwned>(
    text: &str,
    origin: &str,
) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::from_toml(text, origin, &e))
}

#[cfg(test)]
mod tests;
