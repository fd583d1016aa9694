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

use std::io::Read as _;
use std::path::Path;

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::app_proto::AppProto;

pub use error::ConfigError;
use error::Seg;
pub use types::{
    Cidr, Count, NonEmptyPortList, PORT_POLICY_PROTOS, PolicyProto, Port, PortList, ProtoName,
    RULE_NAMES, Ratio, RuleName, Seconds,
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
    /// `[output]`: where and how records are written.
    pub output: OutputConfig,
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
            batch_packets: Count::lit(256),
            queue_batches: Count::lit(64),
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
    /// Depth of the bounded channel to the output writer, in records.
    pub queue_records: Count,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            eve: "eve.json".to_owned(),
            stats_interval: 60,
            anomaly_rate: 10,
            queue_records: Count::lit(65_536),
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

    /// Checks that relate several values; each failure points at one of them.
    fn cross_check(&self) -> Result<(), CrossFieldError> {
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
