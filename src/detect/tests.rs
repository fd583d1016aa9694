//! Tests of the detector: every rule firing and staying quiet, allowlists, suppression,
//! windows, bounds and determinism.

use super::*;
use crate::config::Config;
use crate::zones::Zones;

const MIB: u64 = 1 << 20;
const MB: u64 = 1_000_000;
const T0: u64 = 1_800_000_000;

const INSIDE: &str = "10.0.0.5";
const OUTSIDE: &str = "198.51.100.7";

const LAB_NETWORKS: &str = "[networks]\nexternal = [\"198.51.100.0/24\", \"203.0.113.0/24\"]\n";

fn lab_zones() -> Zones {
    let cfg = Config::from_toml_str(LAB_NETWORKS, "lab").unwrap();
    Zones::from_config(&cfg.networks)
}

fn at(secs: u64) -> Ts {
    Ts::from_secs(T0 + secs)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A session under test; `view` builds the borrowed view the detector takes.
#[derive(Clone)]
struct Sess {
    id: String,
    proto: AppProto,
    client: (IpAddr, u16),
    server: (IpAddr, u16),
    outbound: u64,
    inbound: u64,
    files: Vec<(String, FileDirection, u64, bool)>,
    first: Ts,
    now: Ts,
    payload: bool,
}

impl Sess {
    fn new(id: &str, client: &str, server: &str, port: u16, start: Ts) -> Sess {
        Sess {
            id: id.to_owned(),
            proto: AppProto::Ftp,
            client: (ip(client), 50_000),
            server: (ip(server), port),
            outbound: 0,
            inbound: 0,
            files: Vec::new(),
            first: start,
            now: start,
            payload: false,
        }
    }

    /// An FTP session from the internal host to the external server on port 21.
    fn out(id: &str, start: Ts) -> Sess {
        Sess::new(id, INSIDE, OUTSIDE, 21, start)
    }

    fn bytes(mut self, outbound: u64, inbound: u64, now: Ts) -> Sess {
        self.outbound = outbound;
        self.inbound = inbound;
        self.now = now;
        self.payload |= outbound + inbound > 0;
        self
    }

    fn file(mut self, name: &str, dir: FileDirection, bytes: u64) -> Sess {
        self.files.push((name.to_owned(), dir, bytes, false));
        self
    }
}

/// Calls `f` with the session's view.
fn with_view<R>(z: &Zones, s: &Sess, f: impl FnOnce(&SessionView<'_>) -> R) -> R {
    let files: Vec<FileView<'_>> = s
        .files
        .iter()
        .map(|(name, direction, bytes, complete)| FileView {
            name,
            direction: *direction,
            bytes: *bytes,
            complete: *complete,
        })
        .collect();
    let src_zone = z.classify(s.client.0);
    let dest_zone = z.classify(s.server.0);
    let (internal, external) = match (src_zone.zone, dest_zone.zone) {
        (Zone::Internal, Zone::External) => (Some(s.client.0), Some(s.server)),
        (Zone::External, Zone::Internal) => (Some(s.server.0), Some(s.client)),
        _ => (None, None),
    };
    let view = SessionView {
        session_id: &s.id,
        proto: s.proto,
        client: s.client,
        server: s.server,
        internal,
        external,
        src_zone,
        dest_zone,
        outbound: s.outbound,
        inbound: s.inbound,
        files: &files,
        first_ts: s.first,
        now: s.now,
        carried_payload: s.payload,
    };
    f(&view)
}

/// A detector and zone classifier from a config text (empty = defaults).
struct Harness {
    det: Detector,
    zones: Zones,
    out: Vec<Alert>,
}

impl Harness {
    /// The documentation ranges the tests use as Internet peers are special-purpose by
    /// default; like the lab captures, the tests configure them external.
    fn new(toml: &str) -> Harness {
        let text = format!("{LAB_NETWORKS}{toml}");
        let cfg = Config::from_toml_str(&text, "test.toml").unwrap();
        Harness {
            det: Detector::new(DetectSettings::from_config(&cfg)),
            zones: Zones::from_config(&cfg.networks),
            out: Vec::new(),
        }
    }

    fn start(&mut self, s: &Sess) {
        let (det, out) = (&mut self.det, &mut self.out);
        with_view(&self.zones, s, |v| det.on_session_start(v, out));
    }

    fn progress(&mut self, s: &Sess) {
        let (det, out) = (&mut self.det, &mut self.out);
        with_view(&self.zones, s, |v| det.on_progress(v, out));
    }

    fn file(&mut self, s: &Sess, index: usize) {
        let (det, out) = (&mut self.det, &mut self.out);
        with_view(&self.zones, s, |v| {
            let f = v.files[index];
            det.on_file(v, &f, out);
        });
    }

    fn end(&mut self, s: &Sess) {
        let (det, out) = (&mut self.det, &mut self.out);
        with_view(&self.zones, s, |v| det.on_session_end(v, out));
    }

    /// A whole session: start, growth in `steps` equal parts, end.
    fn run(&mut self, s: &Sess, steps: u64, end: Ts) {
        let begin = s.clone().bytes(0, 0, s.first);
        self.start(&begin);
        for k in 1..=steps {
            let t = Ts(s.first.0 + (end.0 - s.first.0) * k / steps);
            let step = s
                .clone()
                .bytes(s.outbound * k / steps, s.inbound * k / steps, t);
            self.progress(&step);
        }
        self.end(&s.clone().bytes(s.outbound, s.inbound, end));
    }

    fn take(&mut self) -> Vec<Alert> {
        std::mem::take(&mut self.out)
    }
}

fn rules(alerts: &[Alert]) -> Vec<(&'static str, &'static str)> {
    alerts.iter().map(|a| (a.xfer.rule, a.xfer.phase)).collect()
}

fn criterion<'a>(a: &'a Alert, name: &str) -> &'a Criterion {
    a.xfer
        .criteria
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no criterion {name} in {:?}", a.xfer.criteria))
}

fn json(alerts: &[Alert]) -> String {
    alerts
        .iter()
        .map(|a| {
            format!(
                "{} {}\n",
                serde_json::to_string(&a.alert).unwrap(),
                serde_json::to_string(&a.xfer).unwrap()
            )
        })
        .collect()
}

// --- outbound-ratio ------------------------------------------------------------------------

#[test]
fn outbound_ratio_fires_at_first_crossing_and_closes_with_a_summary() {
    let mut h = Harness::new("");
    let s = Sess::out("ftp-1", at(0));
    h.start(&s);
    h.progress(&s.clone().bytes(MIB / 2, 10_000, at(1)));
    assert!(h.out.is_empty(), "below 1 MiB");
    h.progress(&s.clone().bytes(2 * MIB, 20_000, at(2)));
    let a = h.take();
    assert_eq!(rules(&a), [("outbound-ratio", "crossing")]);
    let a = &a[0];
    assert_eq!(a.alert.signature_id, 9_100_004);
    assert_eq!(a.src, (ip(INSIDE), 50_000));
    assert_eq!(a.dest, (ip(OUTSIDE), 21));
    assert_eq!(
        criterion(a, "outbound_share").observed,
        CriterionValue::Float(0.9906)
    );
    assert_eq!(
        criterion(a, "outbound_share").threshold,
        CriterionValue::Float(0.9)
    );
    assert_eq!(
        criterion(a, "outbound_bytes").observed,
        CriterionValue::Int(2 * MIB)
    );
    let e = &a.xfer.evidence;
    assert_eq!(e.outbound_bytes, Some(2 * MIB));
    assert_eq!(e.inbound_bytes, Some(20_000));
    assert_eq!(e.internal_ip, Some(ip(INSIDE)));
    assert_eq!(e.external_ip, Some(ip(OUTSIDE)));
    assert!(e.summary.contains("2.0 MiB"), "{}", e.summary);
    assert_eq!(a.xfer.src_zone, "internal");
    assert_eq!(a.xfer.src_zone_source, "home_nets");
    assert_eq!(a.xfer.dest_zone, "external");
    assert_eq!(a.xfer.dest_zone_source, "networks.external");
    assert_eq!(a.xfer.session_id.as_deref(), Some("ftp-1"));
    assert_eq!(a.xfer.suppressed_count, 0);
    assert_eq!(a.xfer.first_seen, at(2).eve());

    // It does not fire again while the session runs.
    h.progress(&s.clone().bytes(3 * MIB, 20_000, at(3)));
    assert!(h.out.is_empty());

    // The closing record has the final figures and when it crossed.
    h.end(&s.clone().bytes(4 * MIB, 30_000, at(4)));
    let a = h.take();
    assert_eq!(rules(&a), [("outbound-ratio", "session-end")]);
    assert_eq!(a[0].xfer.evidence.outbound_bytes, Some(4 * MIB));
    assert_eq!(a[0].xfer.evidence.crossed_at, Some(at(2).eve()));
    assert_eq!(a[0].xfer.first_seen, at(2).eve());
    assert_eq!(a[0].xfer.last_seen, at(4).eve());
    assert_eq!(h.det.stats().alerts.get(Rule::OutboundRatio), 1);
    assert_eq!(h.det.stats().session_end_records, 1);
    assert_eq!(h.det.stats().sessions_tracked, 0);
}

#[test]
fn outbound_ratio_quiet_below_share_or_minimum() {
    let mut h = Harness::new("");
    // Two-thirds outbound: below 0.90.
    h.run(
        &Sess::out("a", at(0)).bytes(2 * MIB, MIB, at(10)),
        4,
        at(10),
    );
    // All outbound, but under 1 MiB.
    h.run(&Sess::out("b", at(20)).bytes(MIB - 1, 0, at(30)), 4, at(30));
    assert!(h.take().is_empty());
}

#[test]
fn internal_only_large_upload_is_silent() {
    let mut h = Harness::new("");
    let s = Sess::new("ftp-int", INSIDE, "10.9.9.9", 21, at(0))
        .bytes(110 * MB, 1000, at(60))
        .file("dump.zip", FileDirection::Upload, 110 * MB);
    h.file(&s, 0);
    h.run(&s, 20, at(60));
    assert!(h.take().is_empty());
    assert_eq!(h.det.stats().hosts_tracked, 0);
}

#[test]
fn download_from_external_is_not_outbound() {
    let mut h = Harness::new("");
    // An internal client fetches 80 MiB: the bytes are inbound.
    let s = Sess::out("dl", at(0)).bytes(4096, 80 * MIB, at(30)).file(
        "backup.zip",
        FileDirection::Download,
        80 * MIB,
    );
    h.file(&s, 0);
    h.run(&s, 10, at(30));
    assert!(h.take().is_empty());
}

#[test]
fn external_client_pulling_from_an_internal_server_is_outbound() {
    let mut h = Harness::new("");
    // An external client downloads from an internal SMB server: the download is outbound.
    let mut s = Sess::new("smb-9", OUTSIDE, INSIDE, 445, at(0))
        .bytes(60 * MIB, 200_000, at(30))
        .file("hr/salaries.xlsx", FileDirection::Download, 60 * MIB);
    s.proto = AppProto::Smb;
    h.run(&s, 3, at(30));
    let a = h.take();
    assert_eq!(
        rules(&a),
        [
            ("outbound-ratio", "crossing"),
            ("transfer-size", "crossing"),
            ("outbound-ratio", "session-end"),
            ("transfer-size", "session-end"),
        ]
    );
    let size = &a[1];
    assert_eq!(size.xfer.evidence.internal_ip, Some(ip(INSIDE)));
    assert_eq!(size.xfer.evidence.external_ip, Some(ip(OUTSIDE)));
    assert_eq!(size.xfer.evidence.protocol, Some("smb"));
    assert!(size.xfer.files[0].outbound);
    assert_eq!(size.xfer.files[0].direction, "download");
    assert_eq!(
        criterion(size, "file_outbound_bytes").observed,
        CriterionValue::Int(60 * MIB)
    );
    // Header endpoints stay client → server.
    assert_eq!(size.src.0, ip(OUTSIDE));
}

#[test]
fn other_protocols_never_alert() {
    let mut h = Harness::new("");
    for (i, proto) in [AppProto::Http, AppProto::Ssh, AppProto::Dns, AppProto::Tls]
        .into_iter()
        .enumerate()
    {
        let mut s = Sess::out(&format!("x{i}"), at(i as u64 * 100))
            .bytes(200 * MB, 1000, at(i as u64 * 100 + 50))
            .file("a.zip", FileDirection::Upload, 200 * MB);
        s.proto = proto;
        h.file(&s, 0);
        h.run(&s, 5, at(i as u64 * 100 + 50));
    }
    assert!(h.take().is_empty());
}

// --- transfer-size -------------------------------------------------------------------------

#[test]
fn transfer_size_fires_for_the_session_and_names_the_file() {
    let mut h = Harness::new("[thresholds]\noutbound_ratio = 1\n");
    let s = Sess::out("big", at(0));
    h.start(&s);
    h.progress(&s.clone().bytes(49 * MIB, 10 * MIB, at(10)));
    assert!(h.out.is_empty());
    let s =
        s.bytes(50 * MIB, 10 * MIB, at(20))
            .file("q3.csv", FileDirection::Upload, 50 * MIB - 10);
    h.progress(&s);
    let a = h.take();
    assert_eq!(rules(&a), [("transfer-size", "crossing")]);
    assert_eq!(
        criterion(&a[0], "session_outbound_bytes").threshold,
        CriterionValue::Int(52_428_800)
    );
    // The file alone is just under: no file criterion.
    assert_eq!(a[0].xfer.criteria.len(), 1);
    assert_eq!(a[0].xfer.files[0].name, "q3.csv");
}

#[test]
fn transfer_size_from_one_file_reported_by_the_session_stage() {
    let mut h = Harness::new("");
    // The file's own byte count reaches the threshold before the session rollup does (for
    // example when capture lost packets): on_file raises it.
    let s = Sess::out("f", at(0)).bytes(10 * MIB, 10 * MIB, at(5)).file(
        "db.sql",
        FileDirection::Upload,
        51 * MIB,
    );
    h.start(&s);
    h.take();
    h.file(&s, 0);
    let a = h.take();
    assert_eq!(rules(&a), [("transfer-size", "crossing")]);
    assert_eq!(a[0].xfer.evidence.file_name.as_deref(), Some("db.sql"));
    assert_eq!(
        criterion(&a[0], "file_outbound_bytes").observed,
        CriterionValue::Int(51 * MIB)
    );
}

// --- outbound-volume -----------------------------------------------------------------------

#[test]
fn outbound_volume_adds_up_one_host_over_sessions_and_protocols() {
    let mut h = Harness::new("[thresholds]\noutbound_ratio_min_bytes = 1000000000\n");
    // Three sessions to three destinations, 40 MB each, within 30 minutes.
    let dests = ["198.51.100.1", "198.51.100.2", "203.0.113.9"];
    let protos = [AppProto::Ftp, AppProto::Smb, AppProto::Tftp];
    let mut all = Vec::new();
    for (i, (dest, proto)) in dests.iter().zip(protos).enumerate() {
        let start = at(i as u64 * 600);
        let mut s = Sess::new(&format!("s{i}"), INSIDE, dest, 21, start).bytes(
            40 * MB,
            0,
            at(i as u64 * 600 + 300),
        );
        s.proto = proto;
        h.run(&s, 8, at(i as u64 * 600 + 300));
        all.extend(h.take());
    }
    let volume: Vec<&Alert> = all
        .iter()
        .filter(|a| a.xfer.rule == "outbound-volume")
        .collect();
    assert_eq!(volume.len(), 1, "{:?}", rules(&all));
    let a = volume[0];
    assert_eq!(a.xfer.evidence.scope, "host");
    assert_eq!(a.xfer.session_id.as_deref(), Some("s2"));
    let CriterionValue::Int(observed) = criterion(a, "host_outbound_bytes_in_window").observed
    else {
        panic!("not an integer");
    };
    assert!(observed > 100 * MB && observed <= 120 * MB, "{observed}");
    assert_eq!(
        criterion(a, "host_outbound_bytes_in_window").threshold,
        CriterionValue::Int(100 * MB)
    );
    assert_eq!(a.xfer.evidence.sessions, ["s0", "s1", "s2"]);
    assert_eq!(a.xfer.evidence.window_secs, Some(3600));
    assert!(a.xfer.evidence.window_start.is_some() && a.xfer.evidence.window_end.is_some());
    assert_eq!(a.alert.severity, 1);
    assert_eq!(h.det.stats().hosts_tracked, 1);
    assert_eq!(h.det.stats().destinations_tracked, 3);
}

#[test]
fn outbound_volume_to_one_destination_is_one_record_with_both_criteria() {
    let mut h = Harness::new(
        "[thresholds]\noutbound_ratio_min_bytes = 1000000000\ntransfer_size_bytes = 1000000000\n",
    );
    let s = Sess::out("one", at(0)).bytes(120 * MB, 0, at(600));
    h.run(&s, 12, at(600));
    let a = h.take();
    assert_eq!(rules(&a), [("outbound-volume", "crossing")]);
    assert_eq!(a[0].xfer.evidence.scope, "destination");
    assert!(a[0].xfer.criteria.len() == 2, "{:?}", a[0].xfer.criteria);
    criterion(&a[0], "destination_outbound_bytes_in_window");
    criterion(&a[0], "host_outbound_bytes_in_window");
    // Crossed when the window went past 100 MB (at 110 MB), not at the end.
    assert_eq!(a[0].xfer.evidence.outbound_bytes, Some(110 * MB));
    assert_eq!(a[0].xfer.evidence.destination_window_bytes, Some(110 * MB));
}

#[test]
fn outbound_volume_window_slides() {
    let cfg =
        "[thresholds]\noutbound_ratio_min_bytes = 1000000000\ntransfer_size_bytes = 1000000000\n";
    // 60 MB, then 50 MB 61 minutes later: the first slid out.
    let mut h = Harness::new(cfg);
    h.run(&Sess::out("a", at(0)).bytes(60 * MB, 0, at(60)), 6, at(60));
    h.run(
        &Sess::out("b", at(61 * 60 + 60)).bytes(50 * MB, 0, at(62 * 60 + 60)),
        5,
        at(62 * 60 + 60),
    );
    assert!(h.take().is_empty());
    // The same 50 MB 30 minutes later crosses.
    let mut h = Harness::new(cfg);
    h.run(&Sess::out("a", at(0)).bytes(60 * MB, 0, at(60)), 6, at(60));
    h.run(
        &Sess::out("b", at(30 * 60)).bytes(50 * MB, 0, at(31 * 60)),
        5,
        at(31 * 60),
    );
    assert_eq!(rules(&h.take()), [("outbound-volume", "crossing")]);
}

#[test]
fn outbound_volume_reports_again_after_a_full_window_above() {
    let mut h = Harness::new(
        "[thresholds]\noutbound_ratio_min_bytes = 1000000000\ntransfer_size_bytes = 1000000000\n\
         outbound_volume_destination_bytes = 100000000\n[suppression]\nwindow_secs = 0\n",
    );
    // 3 MB a minute for three hours: always above 100 MB per hour once the first ~34 min pass.
    let s = Sess::out("steady", at(0));
    h.start(&s);
    for m in 1..=180u64 {
        h.progress(&s.clone().bytes(m * 3 * MB, 0, at(m * 60)));
    }
    let a = h.take();
    // The first crossing, then one report per further hour.
    assert_eq!(a.len(), 3, "{:?}", rules(&a));
    assert!(a.iter().all(|a| a.xfer.rule == "outbound-volume"));
}

// --- repeated-connections ------------------------------------------------------------------

#[test]
fn repeated_connections_fire_on_the_fourth_session_with_payload() {
    let mut h = Harness::new("");
    // Attempts without payload never count.
    for i in 0..5 {
        let s = Sess::out(&format!("try{i}"), at(i * 60));
        h.start(&s);
        h.end(&s);
    }
    for i in 0..3u64 {
        let s = Sess::out(&format!("c{i}"), at(1000 + i * 3600)).bytes(
            100,
            500,
            at(1000 + i * 3600 + 5),
        );
        h.run(&s, 1, at(1000 + i * 3600 + 5));
    }
    assert!(h.take().is_empty());
    let s = Sess::out("c3", at(1000 + 20 * 3600)).bytes(100, 500, at(1000 + 20 * 3600 + 5));
    h.run(&s, 1, at(1000 + 20 * 3600 + 5));
    let a = h.take();
    assert_eq!(rules(&a), [("repeated-connections", "crossing")]);
    let a = &a[0];
    assert_eq!(
        criterion(a, "sessions_in_window").observed,
        CriterionValue::Int(4)
    );
    assert_eq!(
        criterion(a, "sessions_in_window").threshold,
        CriterionValue::Int(3)
    );
    assert_eq!(a.xfer.evidence.sessions, ["c0", "c1", "c2", "c3"]);
    assert_eq!(a.xfer.evidence.window_start, Some(at(1000).eve()));
    assert_eq!(a.xfer.evidence.scope, "connections");
}

#[test]
fn repeated_connections_outside_the_day_or_to_other_ports_do_not_count() {
    let mut h = Harness::new("");
    // Sessions 9 hours apart: never four within 24 hours.
    for i in 0..6u64 {
        let t = i * 9 * 3600;
        h.run(
            &Sess::out(&format!("d{i}"), at(t)).bytes(10, 10, at(t + 1)),
            1,
            at(t + 1),
        );
    }
    // Four sessions, each to a different port.
    for port in [21, 2121, 990, 445] {
        let t = 100_000 + u64::from(port);
        let s = Sess::new(&format!("p{port}"), INSIDE, "203.0.113.5", port, at(t)).bytes(
            10,
            10,
            at(t + 1),
        );
        h.run(&s, 1, at(t + 1));
    }
    // Internal-only and inbound (external client) sessions.
    for i in 0..5u64 {
        h.run(
            &Sess::new(&format!("i{i}"), INSIDE, "10.1.1.1", 21, at(200_000 + i)).bytes(
                10,
                10,
                at(200_001 + i),
            ),
            1,
            at(200_001 + i),
        );
        h.run(
            &Sess::new(&format!("e{i}"), OUTSIDE, INSIDE, 21, at(300_000 + i)).bytes(
                10,
                10,
                at(300_001 + i),
            ),
            1,
            at(300_001 + i),
        );
    }
    assert!(h.take().is_empty());
}

// --- suspicious-filename -------------------------------------------------------------------

#[test]
fn suspicious_filename_on_outbound_files_only() {
    let mut h = Harness::new("");
    let s = Sess::out("fn", at(0))
        .bytes(1000, 1000, at(1))
        .file("invoice.pdf.exe", FileDirection::Upload, 10)
        .file("update.zip", FileDirection::Download, 10)
        .file("notes.txt", FileDirection::Upload, 10);
    h.start(&s);
    for i in 0..3 {
        h.file(&s, i);
    }
    // Reported twice by the session stage: judged once.
    h.file(&s, 0);
    let a = h.take();
    assert_eq!(rules(&a), [("suspicious-filename", "crossing")]);
    let a = &a[0];
    assert_eq!(
        a.xfer.evidence.file_name.as_deref(),
        Some("invoice.pdf.exe")
    );
    assert_eq!(
        a.xfer.evidence.filename_patterns,
        ["double-extension:pdf.exe"]
    );
    assert_eq!(
        criterion(a, "double_extension").observed,
        CriterionValue::Text("pdf.exe".to_owned())
    );
    assert_eq!(a.xfer.files.len(), 3);
    assert!(a.xfer.files[0].outbound && !a.xfer.files[1].outbound);
}

#[test]
fn suspicious_filename_internal_only_is_silent() {
    let mut h = Harness::new("");
    let s = Sess::new("fi", INSIDE, "10.2.2.2", 445, at(0))
        .bytes(10, 10, at(1))
        .file("loot.7z", FileDirection::Upload, 10);
    h.start(&s);
    h.file(&s, 0);
    assert!(h.take().is_empty());
}

// --- allowlist -----------------------------------------------------------------------------

#[test]
fn allowlisted_partner_gives_no_alert_and_is_counted() {
    let mut h = Harness::new(
        "[[allowlist]]\ncidr = \"10.0.0.0/24\"\ndestination = \"198.51.100.0/24\"\n\
         protocol = \"ftp\"\ncomment = \"offsite backup\"\n",
    );
    let s = Sess::out("bk", at(0)).bytes(150 * MB, 1000, at(600)).file(
        "nightly.tar.gz",
        FileDirection::Upload,
        150 * MB,
    );
    h.file(&s, 0);
    h.run(&s, 30, at(600));
    for i in 0..5u64 {
        h.run(
            &Sess::out(&format!("r{i}"), at(1000 + i)).bytes(5, 5, at(1001 + i)),
            1,
            at(1001 + i),
        );
    }
    assert!(h.take().is_empty());
    let st = h.det.stats();
    assert_eq!(st.allowlisted.get(Rule::OutboundRatio), 1);
    assert_eq!(st.allowlisted.get(Rule::TransferSize), 1);
    assert_eq!(st.allowlisted.get(Rule::SuspiciousFilename), 1);
    // Six sessions to the service: the 4th, 5th and 6th would each have fired.
    assert_eq!(st.allowlisted.get(Rule::RepeatedConnections), 3);
    // Its bytes never entered the volume windows.
    assert_eq!(st.volume_sessions_allowlisted, 6);
    assert_eq!(st.hosts_tracked, 0);
    assert_eq!(st.alerts.total(), 0);

    // The same host to another destination still alerts.
    let s = Sess::new("other", INSIDE, "203.0.113.50", 21, at(5000)).bytes(2 * MIB, 0, at(5010));
    h.run(&s, 2, at(5010));
    assert_eq!(
        rules(&h.take()),
        [
            ("outbound-ratio", "crossing"),
            ("outbound-ratio", "session-end")
        ]
    );
}

#[test]
fn allowlist_by_rule_only_silences_that_rule() {
    let mut h = Harness::new("[[allowlist]]\nrule = \"outbound-ratio\"\n");
    let s = Sess::out("x", at(0)).bytes(60 * MIB, 0, at(10));
    h.run(&s, 2, at(10));
    assert_eq!(
        rules(&h.take()),
        [
            ("transfer-size", "crossing"),
            ("transfer-size", "session-end")
        ]
    );
}

// --- suppression ---------------------------------------------------------------------------

#[test]
fn repeats_are_suppressed_then_summarised() {
    let mut h = Harness::new("");
    // Three sessions from the same host to the same server cross outbound-ratio: at 0, 10
    // and 20 minutes, then one more 70 minutes after the first written record.
    for (i, t) in [0u64, 600, 1200].iter().enumerate() {
        let s = Sess::out(&format!("u{i}"), at(*t)).bytes(2 * MIB, 0, at(t + 5));
        h.run(&s, 1, at(t + 5));
    }
    let a = h.take();
    assert_eq!(
        rules(&a),
        [
            ("outbound-ratio", "crossing"),
            ("outbound-ratio", "session-end")
        ]
    );
    assert_eq!(h.det.stats().suppressed.get(Rule::OutboundRatio), 2);
    let s = Sess::out("u3", at(4200)).bytes(2 * MIB, 0, at(4205));
    h.run(&s, 1, at(4205));
    let a = h.take();
    // The fourth session to the same service also trips repeated-connections.
    assert_eq!(
        rules(&a),
        [
            ("repeated-connections", "crossing"),
            ("outbound-ratio", "crossing"),
            ("outbound-ratio", "session-end")
        ]
    );
    let x = &a[1].xfer;
    assert_eq!(x.suppressed_count, 2);
    assert_eq!(x.first_seen, at(5).eve());
    assert_eq!(x.last_seen, at(4205).eve());
    assert_eq!(x.session_id.as_deref(), Some("u3"));
}

#[test]
fn a_quiet_key_starts_a_new_series() {
    let mut h = Harness::new("");
    h.run(&Sess::out("a", at(0)).bytes(2 * MIB, 0, at(5)), 1, at(5));
    h.run(
        &Sess::out("b", at(20_000)).bytes(2 * MIB, 0, at(20_005)),
        1,
        at(20_005),
    );
    let a = h.take();
    let second = &a[2].xfer;
    assert_eq!(second.suppressed_count, 0);
    assert_eq!(second.first_seen, at(20_005).eve());
}

#[test]
fn per_rule_window_zero_writes_every_repeat() {
    let mut h = Harness::new("[suppression]\nrules = { outbound-ratio = 0 }\n");
    for i in 0..3u64 {
        let s = Sess::out(&format!("z{i}"), at(i * 10)).bytes(2 * MIB, 0, at(i * 10 + 5));
        h.run(&s, 1, at(i * 10 + 5));
    }
    let crossings = h
        .take()
        .iter()
        .filter(|a| a.xfer.phase == "crossing")
        .count();
    assert_eq!(crossings, 3);
}

#[test]
fn suppression_table_is_bounded() {
    let mut h = Harness::new("[suppression]\nmax_keys = 2\n");
    for i in 0..5u64 {
        let dest = format!("198.51.100.{}", 10 + i);
        let s = Sess::new(&format!("k{i}"), INSIDE, &dest, 21, at(i)).bytes(2 * MIB, 0, at(i + 1));
        h.run(&s, 1, at(i + 1));
    }
    let st = h.det.stats();
    assert_eq!(st.suppression_keys, 2);
    assert_eq!(st.suppression_evicted, 3);
    assert_eq!(st.alerts.get(Rule::OutboundRatio), 5);
}

// --- bounds --------------------------------------------------------------------------------

#[test]
fn host_tables_are_bounded_and_evict_the_least_recently_active() {
    let mut h = Harness::new(
        "[detect]\nmax_tracked_hosts = 4\nmax_tracked_destinations = 3\nmax_tracked_sessions = 5\n\
         max_tracked_connections = 2\n",
    );
    for i in 0..10u64 {
        let host = format!("10.0.1.{i}");
        let s = Sess::new(&format!("h{i}"), &host, OUTSIDE, 21, at(i * 10)).bytes(
            1000,
            10,
            at(i * 10 + 1),
        );
        h.start(&s.clone().bytes(0, 0, at(i * 10)));
        h.progress(&s);
    }
    let st = h.det.stats().clone();
    assert_eq!(st.hosts_tracked, 4);
    assert_eq!(st.hosts_evicted, 6);
    assert_eq!(st.destinations_tracked, 3);
    assert_eq!(st.destinations_evicted, 7);
    assert_eq!(st.sessions_tracked, 5);
    assert_eq!(st.sessions_evicted, 5);
    assert_eq!(st.connections_tracked, 2);
    assert_eq!(st.connections_evicted, 8);
    // The most recent host is still tracked; the first one was forgotten.
    assert!(h.det.hosts.peek(&ip("10.0.1.9")).is_some());
    assert!(h.det.hosts.peek(&ip("10.0.1.0")).is_none());
}

#[test]
fn untracked_sessions_are_picked_up_by_progress() {
    let mut h = Harness::new("");
    // No on_session_start (or it was evicted): progress creates the state.
    h.progress(&Sess::out("late", at(0)).bytes(2 * MIB, 0, at(1)));
    assert_eq!(rules(&h.take()), [("outbound-ratio", "crossing")]);
    assert_eq!(h.det.stats().sessions_tracked, 1);
}

// --- mismatch ------------------------------------------------------------------------------

fn mismatch_view<'a>(z: &Zones, port: u16, now: Ts, detail: &'a str) -> MismatchView<'a> {
    MismatchView {
        rule: MismatchRule::PortMismatch,
        session_id: None,
        client: (ip(INSIDE), 40_000),
        server: (ip(OUTSIDE), port),
        src_zone: z.classify(ip(INSIDE)),
        dest_zone: z.classify(ip(OUTSIDE)),
        found: AppProto::Ftp,
        app_proto_ts: None,
        app_proto_tc: None,
        expected_protocols: &[],
        expected_ports: &[21],
        detail,
        now,
    }
}

#[test]
fn mismatch_alerts_share_allowlist_and_suppression() {
    let mut h =
        Harness::new("[[allowlist]]\nport = 2121\nprotocol = \"ftp\"\nrule = \"port-mismatch\"\n");
    let detail = "ftp on server port 8080; ftp is expected on 21; port 8080 is for none";
    let z = lab_zones();
    h.det
        .on_mismatch(&mismatch_view(&z, 8080, at(0), detail), &mut h.out);
    h.det
        .on_mismatch(&mismatch_view(&z, 8080, at(10), detail), &mut h.out);
    h.det
        .on_mismatch(&mismatch_view(&z, 2121, at(20), detail), &mut h.out);
    let a = h.take();
    assert_eq!(rules(&a), [("port-mismatch", "crossing")]);
    let a = &a[0];
    assert_eq!(a.alert.signature_id, 9_100_001);
    assert_eq!(a.alert.category, "Protocol anomaly");
    assert_eq!(
        criterion(a, "server_port").observed,
        CriterionValue::Int(8080)
    );
    assert_eq!(
        criterion(a, "server_port").threshold,
        CriterionValue::Text("21".to_owned())
    );
    assert_eq!(a.xfer.evidence.summary, detail);
    assert_eq!(a.xfer.evidence.found_protocol, Some("ftp"));
    let st = h.det.stats();
    assert_eq!(st.suppressed.get(Rule::PortMismatch), 1);
    assert_eq!(st.allowlisted.get(Rule::PortMismatch), 1);
}

#[test]
fn direction_disagreement_criteria_compare_the_two_labels() {
    let mut h = Harness::new("");
    let z = lab_zones();
    let m = MismatchView {
        rule: MismatchRule::DirectionDisagreement,
        app_proto_ts: Some(AppProto::Ftp),
        app_proto_tc: Some(AppProto::Http),
        ..mismatch_view(
            &z,
            21,
            at(0),
            "client side speaks ftp but server side speaks http",
        )
    };
    h.det.on_mismatch(&m, &mut h.out);
    let a = h.take();
    let c = criterion(&a[0], "app_proto_tc");
    assert_eq!(c.observed, CriterionValue::Text("http".to_owned()));
    assert_eq!(c.threshold, CriterionValue::Text("ftp".to_owned()));
    assert_eq!(a[0].xfer.evidence.app_proto_tc, Some("http"));
}

// --- determinism ---------------------------------------------------------------------------

/// A mixed scenario touching every rule.
fn scenario() -> String {
    let mut h = Harness::new("[[allowlist]]\ndestination = \"203.0.113.77\"\n");
    let mut alerts = Vec::new();
    for i in 0..20u64 {
        let dest = ["198.51.100.7", "203.0.113.9", "203.0.113.77"][(i / 2 % 3) as usize];
        let host = ["10.0.0.5", "10.0.0.6"][(i % 2) as usize];
        let t = i * 300;
        let mut s = Sess::new(&format!("m{i}"), host, dest, 21, at(t))
            .bytes(30 * MB + i * MIB, i * 100_000, at(t + 300))
            .file(
                &format!("{:032x}.zip", i * 7919),
                FileDirection::Upload,
                30 * MB,
            );
        if i % 4 == 1 {
            s.proto = AppProto::Smb;
        }
        h.file(&s, 0);
        h.run(&s, 7, at(t + 300));
        alerts.extend(h.take());
    }
    let z = lab_zones();
    h.det.on_mismatch(
        &mismatch_view(&z, 80, at(9000), "ftp on server port 80"),
        &mut alerts,
    );
    format!(
        "{}{}",
        json(&alerts),
        serde_json::to_string(h.det.stats()).unwrap()
    )
}

#[test]
fn same_inputs_give_byte_identical_alerts() {
    let a = scenario();
    let b = scenario();
    assert_eq!(a, b);
    // The scenario really exercises the rules.
    for rule in [
        "outbound-ratio",
        "outbound-volume",
        "repeated-connections",
        "suspicious-filename",
        "port-mismatch",
    ] {
        assert!(
            a.contains(&format!("\"rule\":\"{rule}\"")),
            "{rule} missing"
        );
    }
}

#[test]
fn alert_xfer_serialises_with_the_documented_fields() {
    let mut h = Harness::new("");
    let s = Sess::out("ftp-1a2b3c", at(0))
        .bytes(2 * MIB, 1000, at(2))
        .file("out.bin", FileDirection::Upload, 2 * MIB);
    h.start(&s.clone().bytes(0, 0, at(0)));
    h.progress(&s);
    let a = h.take();
    let v: serde_json::Value = serde_json::to_value(&a[0].xfer).unwrap();
    for key in [
        "rule",
        "phase",
        "session_id",
        "criteria",
        "evidence",
        "files",
        "src_zone",
        "dest_zone",
        "src_zone_source",
        "dest_zone_source",
        "suppressed_count",
        "first_seen",
        "last_seen",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v}");
    }
    assert_eq!(v["criteria"][0]["name"], "outbound_share");
    assert_eq!(v["files"][0]["name"], "out.bin");
    assert_eq!(v["evidence"]["scope"], "session");
    // Fields that do not apply are left out, not null.
    assert!(v["evidence"].get("window_secs").is_none());
}

#[test]
fn human_units() {
    assert_eq!(human_binary(512), "512 B");
    assert_eq!(human_binary(52_428_800), "50.0 MiB");
    assert_eq!(human_decimal(100_000_001), "100.0 MB");
    assert_eq!(human_decimal(2_500_000_000), "2.5 GB");
    assert_eq!(human_secs(3600), "1 h");
    assert_eq!(human_secs(86_400), "24 h");
    assert_eq!(human_secs(5400), "90 min");
    assert_eq!(human_secs(45), "45 s");
}
