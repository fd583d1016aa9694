//! Tests of `sensor.toml` parsing, defaults and error messages.

use super::*;
use toml::de::{DeTable, DeValue};

const ORIGIN: &str = "sensor.toml";

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml_str(text, ORIGIN)
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(c) => panic!("expected an error for {text:?}, got {c:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_text_shipped_file_and_default_are_equal() {
    let empty = parse("").unwrap();
    let shipped = parse(SHIPPED).unwrap();
    assert_eq!(empty, Config::default());
    assert_eq!(shipped, Config::default());
}

#[test]
fn defaults_have_the_documented_values() {
    let c = Config::default();
    assert_eq!(c.capture.snaplen.get(), 262_144);
    assert!(c.capture.promiscuous);
    assert_eq!(c.capture.buffer_size_mib.get(), 32);
    assert_eq!(c.capture.read_timeout_ms.get(), 100);
    assert_eq!(c.capture.bpf, "");
    assert_eq!(c.capture.batch_packets.get(), 512);
    assert_eq!(c.capture.queue_batches.get(), 32);
    assert_eq!(c.capture.workers, 0);
    assert_eq!(c.capture.progress, Progress::Auto);
    assert_eq!(c.capture.max_record_bytes.get(), 262_144);
    let home: Vec<String> = c.networks.home_nets.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        home,
        ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"]
    );
    assert!(c.networks.internal.is_empty() && c.networks.external.is_empty());
    assert_eq!(c.identify.probe_bytes.get(), 4096);
    assert_eq!(c.identify.probe_packets.get(), 8);
    assert_eq!(c.identify.max_probe_memory_mib.get(), 64);
    let f = &c.flows;
    assert_eq!(f.max_flows.get(), 262_144);
    let timeouts = [
        f.tcp_new,
        f.tcp_established,
        f.tcp_closed,
        f.udp_new,
        f.udp_established,
    ];
    assert_eq!(timeouts.map(Seconds::get), [30, 600, 10, 30, 120]);
    assert_eq!([f.icmp.get(), f.other.get()], [30, 60]);
    assert_eq!(f.max_fragments.get(), 4096);
    assert_eq!(c.output.eve, "eve.json");
    assert_eq!(c.output.stats_interval, 60);
    assert_eq!(c.output.anomaly_rate, 10);
    assert_eq!(c.output.queue_records.get(), 65_536);
    assert_eq!(c.output.queue_alerts.get(), 131_072);
    assert_eq!(c.output.max_backlog_bytes.get(), 4_194_304);
}

#[test]
fn port_table_and_exceptions() {
    let c = Config::default();
    assert_eq!(
        c.port_table(),
        vec![
            (AppProto::Ftp, vec![21]),
            (AppProto::FtpData, vec![20]),
            (AppProto::Ftps, vec![990, 989]),
            (AppProto::Smb, vec![445, 139]),
            (AppProto::Tftp, vec![69]),
        ]
    );
    assert!(c.port_exceptions().is_empty());

    let c = parse(
        "[ports]\nftp = 2121\nsmb = [445, 445, 8445]\n\
         [[ports.exception]]\ncidr = \"192.0.2.10\"\nprotocol = \"ftp\"\nports = [2121, 21]\n\
         [[ports.exception]]\ncidr = \"2001:db8::/48\"\nprotocol = \"tftp\"\nports = 6969\n",
    )
    .unwrap();
    assert_eq!(c.port_table().first(), Some(&(AppProto::Ftp, vec![2121])));
    assert_eq!(
        c.port_table().get(3),
        Some(&(AppProto::Smb, vec![445, 8445]))
    );
    assert_eq!(
        c.port_exceptions(),
        vec![
            (
                "192.0.2.10/32".parse().unwrap(),
                AppProto::Ftp,
                vec![2121, 21]
            ),
            ("2001:db8::/48".parse().unwrap(), AppProto::Tftp, vec![6969]),
        ]
    );
}

#[test]
fn the_commented_exception_example_is_valid() {
    // The example block in the shipped file, uncommented, must parse.
    let start = SHIPPED.find("# [[ports.exception]]").unwrap();
    let example: String = SHIPPED[start..]
        .lines()
        .take_while(|l| l.starts_with("# "))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    let c = parse(&example).unwrap();
    assert_eq!(c.port_exceptions().len(), 1, "{example}");
}

#[test]
fn cidrs_accept_hosts_and_clear_host_bits() {
    let c = parse(
        "[networks]\nhome_nets = [\"10.1.2.3/8\", \"192.0.2.7\", \"2001:db8::1\", \" fd00::/8 \"]\n",
    )
    .unwrap();
    let nets: Vec<String> = c.networks.home_nets.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        nets,
        ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::1/128", "fd00::/8"]
    );
}

#[test]
fn other_spellings_of_the_same_document_parse() {
    let dotted = parse("flows.max_flows = 10\ncapture = { workers = 3 }\n").unwrap();
    assert_eq!(dotted.flows.max_flows.get(), 10);
    assert_eq!(dotted.capture.workers, 3);
    assert_eq!(dotted.capture.effective_workers(), 3);
    assert!(Config::default().capture.effective_workers() >= 1);
}

#[test]
fn serialised_default_round_trips() {
    let text = toml::to_string(&Config::default()).unwrap();
    assert_eq!(parse(&text).unwrap(), Config::default());
}

/// Every key path of a serialised config, as `section.key`.
fn key_paths(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => key_paths(t, &path, out),
            _ => out.push(path),
        }
    }
}

#[test]
fn shipped_file_sets_every_key() {
    let all = toml::Table::try_from(Config::default()).unwrap();
    let mut paths = Vec::new();
    key_paths(&all, "", &mut paths);
    let shipped = DeTable::parse(SHIPPED).unwrap();
    let mut missing = Vec::new();
    for path in &paths {
        // The exceptions are an empty list by default; the file shows a commented example.
        if path == "ports.exception" || path == "allowlist" {
            continue;
        }
        let mut table = shipped.get_ref();
        let mut found = false;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            match table.get(*part).map(|v| v.get_ref()) {
                Some(DeValue::Table(t)) => table = t,
                Some(_) => found = i + 1 == parts.len(),
                None => break,
            }
        }
        if !found {
            missing.push(path.clone());
        }
    }
    assert!(paths.len() > 30, "{paths:?}");
    assert!(missing.is_empty(), "keys not in sensor.toml: {missing:?}");
}

#[test]
fn every_shipped_key_has_a_comment_above_it() {
    let lines: Vec<&str> = SHIPPED.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let is_key = line.split_once(" = ").is_some_and(|(k, _)| {
            !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        });
        if is_key {
            let above = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap();
            assert!(above.starts_with('#'), "no comment above `{line}`");
        }
    }
}

// --- error messages -----------------------------------------------------------------------

#[test]
fn zero_count_names_line_column_and_key() {
    let text = "# sensor\n\n[flows]\nmax_flows = 0\n";
    assert_eq!(
        err(text),
        "sensor.toml:4:13: [flows] max_flows: invalid value: integer `0`, expected a non-zero count"
    );
}

#[test]
fn unknown_key_points_at_the_key() {
    let e = err("[flows]\n  max_flow = 3\n");
    assert!(
        e.starts_with(
            "sensor.toml:2:3: [flows] max_flow: unknown field `max_flow`, expected one of"
        ),
        "{e}"
    );
    assert!(e.ends_with("; did you mean `max_flows`?"), "{e}");
}

#[test]
fn unknown_section_is_named_as_a_section() {
    let e = err("[capture]\nworkers = 2\n\n[flow]\nmax_flows = 3\n");
    assert!(
        e.starts_with("sensor.toml:4:2: [flow]: unknown field `flow`"),
        "{e}"
    );
    let e = err("threshold = 3\n");
    assert!(
        e.starts_with("sensor.toml:1:1: threshold: unknown field `threshold`"),
        "{e}"
    );
    assert!(e.ends_with("did you mean `thresholds`?"), "{e}");
}

#[test]
fn wrong_types() {
    assert_eq!(
        err("[capture]\npromiscuous = \"yes\"\n"),
        "sensor.toml:2:15: [capture] promiscuous: invalid type: string \"yes\", expected a boolean"
    );
    assert_eq!(
        err("[flows]\ntcp_new = 1.5\n"),
        "sensor.toml:2:11: [flows] tcp_new: invalid type: floating point `1.5`, expected a non-zero number of seconds"
    );
    let e = err("flows = 3\n");
    assert!(
        e.starts_with("sensor.toml:1:9: flows: invalid type: integer `3`"),
        "{e}"
    );
    let e = err("[ports]\nexception = 3\n");
    assert!(
        e.starts_with("sensor.toml:2:13: [ports] exception: invalid type"),
        "{e}"
    );
}

#[test]
fn bad_cidr() {
    assert_eq!(
        err("[networks]\nhome_nets = [\"10.0.0.0/8\",\n  \"10.0.0.0/33\"]\n"),
        "sensor.toml:3:3: [networks] home_nets: invalid value: string \"10.0.0.0/33\", expected \
         a network such as \"10.0.0.0/8\" or \"2001:db8::/32\", or an address"
    );
    let e = err("[networks]\nexternal = [\"intranet\"]\n");
    assert!(
        e.starts_with("sensor.toml:2:13: [networks] external: invalid value"),
        "{e}"
    );
}

#[test]
fn out_of_range_numbers() {
    assert_eq!(
        err("[ports]\nftp = [21, 70000]\n"),
        "sensor.toml:2:12: [ports] ftp: invalid value: integer `70000`, expected a port number from 1 to 65535"
    );
    assert_eq!(
        err("[ports]\ntftp = 0\n"),
        "sensor.toml:2:8: [ports] tftp: invalid value: integer `0`, expected a port number from 1 to 65535"
    );
    let e = err("[flows]\nmax_flows = -5\n");
    assert!(
        e.contains("2:13: [flows] max_flows: invalid value: integer `-5`"),
        "{e}"
    );
    let e = err("[flows]\nmax_flows = 5000000000\n");
    assert!(
        e.contains("integer `5000000000`, expected a non-zero count"),
        "{e}"
    );
    let e = err("[capture]\nworkers = 70000\n");
    assert!(
        e.starts_with("sensor.toml:2:11: [capture] workers: invalid value"),
        "{e}"
    );
}

#[test]
fn unknown_and_unsupported_protocols() {
    let text = "[[ports.exception]]\ncidr = \"192.0.2.1\"\nprotocol = \"ftp\"\nports = [2121]\n\n\
                [[ports.exception]]\ncidr = \"192.0.2.2\"\nprotocol = \"gopher\"\nports = [70]\n";
    assert_eq!(
        err(text),
        "sensor.toml:8:12: [[ports.exception]] #2 protocol: unknown protocol `gopher`, expected \
         one of `ftp`, `ftp-data`, `ftps`, `smb`, `tftp`"
    );
    let e = err("[[ports.exception]]\ncidr = \"192.0.2.1\"\nprotocol = \"http\"\nports = 80\n");
    assert!(
        e.starts_with(
            "sensor.toml:3:12: [[ports.exception]] #1 protocol: protocol `http` has no port policy"
        ),
        "{e}"
    );
}

#[test]
fn exception_entries_need_every_key_and_a_port() {
    let e = err("[[ports.exception]]\ncidr = \"192.0.2.1\"\nports = [21]\n");
    assert_eq!(
        e,
        "sensor.toml:1:1: [[ports.exception]] #1: missing field `protocol`"
    );
    let e = err("[[ports.exception]]\ncidr = \"192.0.2.1\"\nprotocol = \"smb\"\nports = []\n");
    assert_eq!(
        e,
        "sensor.toml:4:9: [[ports.exception]] #1 ports: invalid length 0, expected at least one port number"
    );
    let e = err("ports.exception = [{ cidr = \"192.0.2.1\", protocol = \"smb\", port = 1 }]\n");
    assert!(
        e.contains("[[ports.exception]] #1 port: unknown field `port`"),
        "{e}"
    );
}

#[test]
fn bad_enum_and_empty_path() {
    assert_eq!(
        err("[capture]\nprogress = \"sometimes\"\n"),
        "sensor.toml:2:12: [capture] progress: unknown variant `sometimes`, expected one of \
         `auto`, `always`, `never`"
    );
    assert_eq!(
        err("[output]\neve = \"\"\n"),
        "sensor.toml:2:7: [output] eve: invalid value: empty string, expected a non-empty string"
    );
}

#[test]
fn malformed_toml() {
    assert_eq!(
        err("[flows]\nmax_flows = 3 3\n"),
        "sensor.toml:2:13: [flows] max_flows: string values must be quoted, expected literal string"
    );
    let e = err("[capture]\nsnaplen = 1\n[flows\n");
    assert!(
        e.starts_with("sensor.toml:3:7: [flows: unclosed table"),
        "{e}"
    );
    let e = err("[flows]\nmax_flows = 3\n[flows]\n");
    assert!(
        e.starts_with("sensor.toml:3:2: [flows]: duplicate key"),
        "{e}"
    );
    let e = err("x = \"unterminated\n");
    assert!(e.starts_with("sensor.toml:1:"), "{e}");
    assert!(e.contains(": x: "), "{e}");
}

#[test]
fn internal_and_external_may_not_share_a_network() {
    let text = "[networks]\ninternal = [\"198.51.100.0/24\"]\n\
                external = [\"203.0.113.0/24\", \"198.51.100.9/24\"]\n";
    assert_eq!(
        err(text),
        "sensor.toml:3:31: [networks] external: `198.51.100.0/24` is also listed in `internal`; pick one"
    );
}

#[test]
fn errors_are_one_line() {
    for text in [
        "[flows]\nmax_flows = 0\n",
        "[flows",
        "a = [1,\n",
        "[x]\n[x]\n",
    ] {
        let e = err(text);
        assert!(!e.contains('\n'), "{e:?}");
    }
}

#[test]
fn hostile_documents_do_not_panic() {
    let deep = format!("a = {}{}\n", "[".repeat(5000), "]".repeat(5000));
    let _ = parse(&deep);
    let deep_tables = format!("a = {}1{}\n", "{b = ".repeat(2000), "}".repeat(2000));
    let _ = parse(&deep_tables);
    for text in [
        "\u{feff}[flows]\n",
        "\0",
        "[[",
        "=",
        "a.b.c.d = 1",
        "[flows]\nmax_flows = 0x",
    ] {
        let _ = parse(text);
    }
}

// --- value types that later sections use ------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Thresholds {
    outbound_share: Ratio,
    rules: Vec<RuleName>,
    protocols: Vec<ProtoName>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Doc {
    thresholds: Thresholds,
}

fn doc_err(text: &str) -> String {
    parse_document::<Doc>(text, ORIGIN).unwrap_err().to_string()
}

#[test]
fn ratios_rules_and_protocol_names() {
    let ok =
        "[thresholds]\noutbound_share = 0.9\nrules = [\"transfer-size\"]\nprotocols = [\"http\"]\n";
    let doc: Doc = parse_document(ok, ORIGIN).unwrap();
    assert_eq!(doc.thresholds.outbound_share.get(), 0.9);
    assert_eq!(
        doc.thresholds.rules.first().map(|r| r.as_str()),
        Some("transfer-size")
    );
    assert_eq!(doc.thresholds.protocols, [ProtoName(AppProto::Http)]);
    let one = "[thresholds]\noutbound_share = 1\nrules = []\nprotocols = []\n";
    assert_eq!(
        parse_document::<Doc>(one, ORIGIN)
            .unwrap()
            .thresholds
            .outbound_share
            .get(),
        1.0
    );

    assert_eq!(
        doc_err("[thresholds]\noutbound_share = 1.5\nrules = []\nprotocols = []\n"),
        "sensor.toml:2:18: [thresholds] outbound_share: invalid value: floating point `1.5`, \
         expected a ratio from 0 to 1, such as 0.9"
    );
    assert!(doc_err("[thresholds]\noutbound_share = nan\n").contains("floating point `NaN`"));
    assert!(doc_err("[thresholds]\noutbound_share = 2\n").contains("integer `2`"));
    let e =
        doc_err("[thresholds]\noutbound_share = 0.5\nrules = [\"outbound-ratio\", \"exfil\"]\n");
    assert!(
        e.starts_with(
            "sensor.toml:3:28: [thresholds] rules: unknown rule `exfil`, expected one of `port-mismatch`"
        ),
        "{e}"
    );
    let e = doc_err("[thresholds]\noutbound_share = 0.5\nrules = []\nprotocols = [\"gopher\"]\n");
    assert!(
        e.starts_with("sensor.toml:4:14: [thresholds] protocols: unknown protocol `gopher`"),
        "{e}"
    );
}

#[test]
fn value_type_constructors() {
    assert_eq!(Count::new(0), None);
    assert_eq!(Count::lit(0).get(), 1);
    assert_eq!(Seconds::lit(2).as_nanos(), 2_000_000_000);
    assert_eq!(Port::new(0), None);
    assert_eq!(Ratio::new(f64::NAN), None);
    assert_eq!(Ratio::new(-0.1), None);
    assert!(RuleName::new("outbound-volume").is_some());
    assert_eq!(RuleName::new("nope"), None);
    assert_eq!(PolicyProto::new(AppProto::Http), None);
    assert!(PortList::from_ports(&[0, 21, 21]).contains(21));
    assert_eq!(PortList::from_ports(&[0, 21, 21]).ports().len(), 1);
}

// --- detection sections -------------------------------------------------------------------

#[test]
fn detection_defaults_have_the_documented_values() {
    let c = Config::default();
    let t = &c.thresholds;
    assert_eq!(t.outbound_ratio.get(), 0.9);
    assert_eq!(t.outbound_ratio_min_bytes.get(), 1_048_576);
    assert_eq!(t.transfer_size_bytes.get(), 52_428_800);
    assert_eq!(t.outbound_volume_bytes.get(), 100_000_000);
    assert_eq!(t.outbound_volume_destination_bytes.get(), 100_000_000);
    assert_eq!(t.outbound_volume_window_secs.get(), 3600);
    assert_eq!(t.repeated_connections_max.get(), 3);
    assert_eq!(t.repeated_connections_window_secs.get(), 86_400);
    assert_eq!(
        t.filename_archive_extensions.len(),
        DEFAULT_ARCHIVE_EXTENSIONS.len()
    );
    assert_eq!(
        t.filename_document_extensions.len(),
        DEFAULT_DOCUMENT_EXTENSIONS.len()
    );
    assert_eq!(
        t.filename_executable_extensions.len(),
        DEFAULT_EXECUTABLE_EXTENSIONS.len()
    );
    assert_eq!(t.filename_hex_min_len.get(), 16);
    assert_eq!(t.filename_base64_min_len.get(), 16);
    assert_eq!(t.filename_entropy_min_len.get(), 12);
    assert_eq!(t.filename_entropy_bits.get(), 3.3);
    assert_eq!(c.suppression.window_secs, 3600);
    assert_eq!(c.suppression.max_keys.get(), 65_536);
    assert!(c.suppression.rules.is_empty());
    assert!(c.allowlist.is_empty());
    assert_eq!(c.detect.max_tracked_sessions.get(), 65_536);
    assert_eq!(c.detect.max_tracked_hosts.get(), 16_384);
    assert_eq!(c.detect.max_tracked_destinations.get(), 32_768);
    assert_eq!(c.detect.max_tracked_connections.get(), 32_768);
}

#[test]
fn the_commented_allowlist_example_is_valid() {
    let start = SHIPPED.find("# [[allowlist]]\n# cidr").unwrap();
    let example: String = SHIPPED[start..]
        .lines()
        .take_while(|l| l.starts_with("# "))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    let c = parse(&example).unwrap();
    assert_eq!(c.allowlist.len(), 1, "{example}");
    let e = &c.allowlist[0];
    assert_eq!(
        e.cidr.map(|c| c.to_string()).as_deref(),
        Some("10.20.0.15/32")
    );
    assert_eq!(e.protocol, Some(ProtoName(AppProto::Ftp)));
    assert!(!e.comment.is_empty());
}

#[test]
fn allowlist_entries_parse_every_field() {
    let c = parse(
        "[[allowlist]]\ncidr = \"10.0.0.0/8\"\nhost = \"192.0.2.1\"\ndestination = \"2001:db8::/32\"\n\
         port = 21\nprotocol = \"ftps\"\nrule = \"transfer-size\"\ncomment = \"vendor\"\n\
         [[allowlist]]\nrule = \"suspicious-filename\"\n",
    )
    .unwrap();
    assert_eq!(c.allowlist.len(), 2);
    let e = &c.allowlist[0];
    assert_eq!(e.port.map(Port::get), Some(21));
    assert_eq!(e.rule.map(RuleName::as_str), Some("transfer-size"));
    assert_eq!(
        e.destination.map(|c| c.to_string()).as_deref(),
        Some("2001:db8::/32")
    );
    // Serialised and read back, entries keep their fields.
    let text = toml::to_string(&c).unwrap();
    assert_eq!(parse(&text).unwrap(), c);
}

#[test]
fn negative_and_zero_thresholds_are_refused() {
    assert_eq!(
        err("[thresholds]\ntransfer_size_bytes = -5\n"),
        "sensor.toml:2:23: [thresholds] transfer_size_bytes: invalid value: integer `-5`, \
         expected a non-zero number of bytes"
    );
    assert_eq!(
        err("[thresholds]\noutbound_volume_bytes = 0\n"),
        "sensor.toml:2:25: [thresholds] outbound_volume_bytes: invalid value: integer `0`, \
         expected a non-zero number of bytes"
    );
    assert_eq!(
        err("[thresholds]\noutbound_ratio = -0.1\n"),
        "sensor.toml:2:18: [thresholds] outbound_ratio: invalid value: floating point `-0.1`, \
         expected a ratio from 0 to 1, such as 0.9"
    );
    let e = err("[thresholds]\nrepeated_connections_window_secs = -1\n");
    assert!(
        e.starts_with("sensor.toml:2:36: [thresholds] repeated_connections_window_secs: invalid value: integer `-1`"),
        "{e}"
    );
    let e = err("[thresholds]\nfilename_entropy_bits = 9.5\n");
    assert!(
        e.starts_with("sensor.toml:2:25: [thresholds] filename_entropy_bits: invalid value: floating point `9.5`, expected bits per character"),
        "{e}"
    );
    assert!(err("[thresholds]\nfilename_entropy_bits = 0\n").contains("integer `0`"));
    assert_eq!(
        parse("[thresholds]\nfilename_entropy_bits = 4\n")
            .unwrap()
            .thresholds
            .filename_entropy_bits
            .get(),
        4.0
    );
}

#[test]
fn unknown_rule_or_protocol_in_allowlist() {
    let text = "[[allowlist]]\nrule = \"transfer-size\"\n\n[[allowlist]]\ncidr = \"10.0.0.1\"\n\
                rule = \"exfil\"\n";
    let e = err(text);
    assert!(
        e.starts_with(
            "sensor.toml:6:8: [[allowlist]] #2 rule: unknown rule `exfil`, expected one of \
             `port-mismatch`, `expected-protocol-absent`"
        ),
        "{e}"
    );
    let e = err("[[allowlist]]\nprotocol = \"gopher\"\n");
    assert!(
        e.starts_with("sensor.toml:2:12: [[allowlist]] #1 protocol: unknown protocol `gopher`"),
        "{e}"
    );
}

#[test]
fn invalid_cidr_and_port_in_allowlist() {
    let e = err("[[allowlist]]\ndestination = \"198.51.100.0/33\"\n");
    assert!(
        e.starts_with(
            "sensor.toml:2:15: [[allowlist]] #1 destination: invalid value: string \"198.51.100.0/33\""
        ),
        "{e}"
    );
    let e = err("[[allowlist]]\ncidr = \"backup-server\"\n");
    assert!(
        e.starts_with("sensor.toml:2:8: [[allowlist]] #1 cidr: invalid value"),
        "{e}"
    );
    let e = err("[[allowlist]]\nport = 0\n");
    assert!(
        e.starts_with("sensor.toml:2:8: [[allowlist]] #1 port: invalid value: integer `0`"),
        "{e}"
    );
    let e = err("[[allowlist]]\nports = 21\n");
    assert!(
        e.contains("[[allowlist]] #1 ports: unknown field `ports`")
            && e.ends_with("did you mean `port`?"),
        "{e}"
    );
}

#[test]
fn an_allowlist_entry_must_match_something() {
    assert_eq!(
        err("[[allowlist]]\nrule = \"transfer-size\"\n\n[[allowlist]]\ncomment = \"all of it\"\n"),
        "sensor.toml:4:1: [[allowlist]] #2: the entry matches everything; give at least one of \
         cidr, host, destination, port, protocol, rule"
    );
}

#[test]
fn suppression_rules_and_bounds() {
    let e = err("[suppression]\nrules = { outbound-ratio = 60, exfil = 5 }\n");
    assert!(
        e.contains(":2:") && e.contains("unknown rule `exfil`"),
        "{e}"
    );
    let e = err("[suppression]\nwindow_secs = -1\n");
    assert!(
        e.starts_with("sensor.toml:2:15: [suppression] window_secs: invalid value"),
        "{e}"
    );
    let e = err("[detect]\nmax_tracked_hosts = 0\n");
    assert!(
        e.starts_with("sensor.toml:2:21: [detect] max_tracked_hosts: invalid value: integer `0`"),
        "{e}"
    );
    // Regression (seen while writing the config fuzz target): start-up buffers sized from
    // these aborted the allocation instead of giving a message.
    assert_eq!(
        err("[capture]\nbatch_packets = 4294967295\n"),
        "sensor.toml:2:17: [capture] batch_packets: 4294967295 is more than the supported 65536"
    );
    assert_eq!(
        err("[capture]\nqueue_batches = 4097\n"),
        "sensor.toml:2:17: [capture] queue_batches: 4097 is more than the supported 4096"
    );
    assert_eq!(
        err("[capture]\nmax_record_bytes = 67108865\n"),
        "sensor.toml:2:20: [capture] max_record_bytes: 67108865 is more than the supported 67108864"
    );
    assert!(parse("[capture]\nbatch_packets = 65536\nqueue_batches = 4096\n").is_ok());
    assert_eq!(
        err("[flows]\nreorder_bytes = 16777217\n"),
        "sensor.toml:2:17: [flows] reorder_bytes: 16777217 is more than the supported 16777216"
    );
    let e = err("[flows]\nreorder_bytes = -1\n");
    assert!(
        e.starts_with("sensor.toml:2:17: [flows] reorder_bytes: invalid value: integer `-1`"),
        "{e}"
    );
    let e = err("[flows]\nmax_reorder_memory_mib = 0\n");
    assert!(
        e.starts_with(
            "sensor.toml:2:26: [flows] max_reorder_memory_mib: invalid value: integer `0`"
        ),
        "{e}"
    );
    let c = parse("[flows]\nreorder_bytes = 0\n").unwrap();
    assert_eq!(c.flows.reorder_bytes, 0, "0 turns reordering off");
    assert_eq!(
        err("[thresholds]\nrepeated_connections_max = 5000\n"),
        "sensor.toml:2:28: [thresholds] repeated_connections_max: 5000 is more than the supported 1000"
    );
}

#[test]
fn extension_lists_are_normalised_and_checked() {
    let c = parse("[thresholds]\nfilename_archive_extensions = [\".ZIP\", \"Rar\"]\n").unwrap();
    let exts: Vec<&str> = c
        .thresholds
        .filename_archive_extensions
        .iter()
        .map(|e| e.as_str())
        .collect();
    assert_eq!(exts, ["zip", "rar"]);
    let e = err("[thresholds]\nfilename_archive_extensions = [\"zip\", \"tar.gz\"]\n");
    assert!(
        e.starts_with(
            "sensor.toml:2:39: [thresholds] filename_archive_extensions: invalid extension `tar.gz`"
        ),
        "{e}"
    );
    assert!(
        err("[thresholds]\nfilename_document_extensions = [\"\"]\n")
            .contains("invalid extension ``: empty")
    );
    assert!(
        err("[thresholds]\nfilename_executable_extensions = [\"e x e\"]\n")
            .contains("no dots, spaces")
    );
}

/// Regression (config fuzz target): a quoted key with a newline escape made a two-line
/// message; control characters in keys now print as escapes.
#[test]
fn control_characters_in_keys_stay_on_one_line() {
    let e = err("\"a\\nb\\u001b\" = 1\n");
    assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e:?}");
    assert!(e.contains(r"a\nb\u{1b}"), "{e}");
    let e = err("[flows]\n\"max\\tflows\" = 1\n");
    assert!(
        e.starts_with(r"sensor.toml:2:1: [flows] max\tflows: unknown field"),
        "{e}"
    );
}
