//! Detection stage (DESIGN §6): turns session byte counts, file names and protocol
//! mismatches into explainable alerts.
//!
//! The [`Detector`] is pure and deterministic: it reads no clock (every window runs on the
//! packet time the caller passes in), never iterates a hash map into its output, and gives
//! byte-identical alerts for the same sequence of calls. The engine calls it as sessions
//! start, grow, name files and end; each call appends the alerts it raised to `out`.
//!
//! Every alert goes through the same path: the allowlist drops known-good traffic, then
//! suppression collapses repeats of one rule and key inside a window into a count carried
//! by the next record written for that key.
//!
//! [`Detector::on_progress`] runs for every packet that grows a session, so its common path
//! is O(1) and allocation-free: one hash probe for the session, arithmetic on its counters
//! and, when outbound bytes grew, one probe each into the host and host → destination
//! windows. Everything that allocates is in separate functions it calls only when a rule
//! fires, or once per session (the first payload is counted for `repeated-connections`, and
//! a host enters a window table).
//!
//! Memory is bounded: sessions, hosts, host → destination pairs, host → service triples and
//! suppression keys each live in a table of configured size that forgets the least recently
//! active entry when full and counts it ([`DetectStats`]).

mod filename;
mod lru;
mod rules;
mod settings;
mod window;

use std::net::IpAddr;
use std::sync::Arc;

use serde::Serialize;

use crate::app_proto::AppProto;
use crate::output::eve::{AlertFile, AlertObj, Criterion, CriterionValue, Evidence, XferAlert};
use crate::time::Ts;
use crate::zones::{Zone, ZoneMatch};

pub use filename::{FilenameFinding, FilenamePatterns, FilenameVerdict};
pub use rules::{Rule, RuleCounts, SIGNATURE_ID_BASE};
pub use settings::{Allow, DetectSettings};

use lru::Lru;
use settings::Subject;
use window::{RecentIds, SessionTimes, SlidingSum};

/// Files listed in one alert; the rest are counted in `evidence.files_omitted`.
const MAX_ALERT_FILES: usize = 32;

/// Session ids listed in one alert's evidence.
const MAX_LISTED_SESSIONS: usize = 16;

/// Recent contributing sessions remembered per volume window.
const RECENT_SESSIONS: usize = 8;

/// Which way a file's bytes went, relative to the session's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileDirection {
    /// Client → server (FTP STOR/APPE/STOU, TFTP WRQ, SMB WRITE).
    Upload,
    /// Server → client (FTP RETR, TFTP RRQ, SMB READ).
    Download,
}

impl FileDirection {
    /// The EVE string.
    pub const fn as_str(self) -> &'static str {
        match self {
            FileDirection::Upload => "upload",
            FileDirection::Download => "download",
        }
    }
}

/// A file of a session as the session stage knows it so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileView<'a> {
    /// File name as the protocol carried it (a path is fine).
    pub name: &'a str,
    /// Upload or download.
    pub direction: FileDirection,
    /// Bytes of the file transferred so far.
    pub bytes: u64,
    /// The transfer completed.
    pub complete: bool,
}

/// A transfer session as the detector sees it: identity, endpoints, zones and the byte
/// rollup so far. Built by the caller on each call; the detector keeps only what it needs.
#[derive(Debug, Clone, Copy)]
pub struct SessionView<'a> {
    /// Session id as written in EVE (`ftp-1a2b3c`).
    pub session_id: &'a str,
    /// The session's protocol family: `ftp`, `ftps`, `smb` or `tftp`.
    pub proto: AppProto,
    /// Client of the session's main (control or request) flow.
    pub client: (IpAddr, u16),
    /// Server of the session's main flow.
    pub server: (IpAddr, u16),
    /// The internal endpoint, set only when one side is internal and the other external.
    pub internal: Option<IpAddr>,
    /// The external endpoint, set only when one side is internal and the other external.
    pub external: Option<(IpAddr, u16)>,
    /// Zone of the client.
    pub src_zone: ZoneMatch,
    /// Zone of the server.
    pub dest_zone: ZoneMatch,
    /// Session payload internal → external so far (all linked flows).
    pub outbound: u64,
    /// Session payload external → internal so far.
    pub inbound: u64,
    /// Files of the session so far.
    pub files: &'a [FileView<'a>],
    /// First packet of the session.
    pub first_ts: Ts,
    /// Packet time of this call.
    pub now: Ts,
    /// Any payload in either direction so far (bare connection attempts never count).
    pub carried_payload: bool,
}

/// The three identification verdicts of DESIGN §4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MismatchRule {
    /// A file-transfer protocol on a port not listed for it.
    PortMismatch,
    /// A file-transfer port carrying something else.
    ExpectedProtocolAbsent,
    /// The two directions identified as different protocols.
    DirectionDisagreement,
}

impl MismatchRule {
    /// The detection rule.
    pub const fn rule(self) -> Rule {
        match self {
            MismatchRule::PortMismatch => Rule::PortMismatch,
            MismatchRule::ExpectedProtocolAbsent => Rule::ExpectedProtocolAbsent,
            MismatchRule::DirectionDisagreement => Rule::DirectionDisagreement,
        }
    }
}

/// A mismatch verdict on one flow, with what is needed to explain it.
#[derive(Debug, Clone, Copy)]
pub struct MismatchView<'a> {
    /// Which verdict.
    pub rule: MismatchRule,
    /// The session the flow belongs to, if any.
    pub session_id: Option<&'a str>,
    /// Client address and port.
    pub client: (IpAddr, u16),
    /// Server address and port.
    pub server: (IpAddr, u16),
    /// Zone of the client.
    pub src_zone: ZoneMatch,
    /// Zone of the server.
    pub dest_zone: ZoneMatch,
    /// The flow's final `app_proto` (`unknown` when nothing matched).
    pub found: AppProto,
    /// To-server label, when the directions disagree.
    pub app_proto_ts: Option<AppProto>,
    /// To-client label, when the directions disagree.
    pub app_proto_tc: Option<AppProto>,
    /// Protocols the port policy lists for the server port.
    pub expected_protocols: &'a [AppProto],
    /// Ports the port policy lists for the protocol found.
    pub expected_ports: &'a [u16],
    /// One sentence explaining the verdict.
    pub detail: &'a str,
    /// Packet time of the verdict.
    pub now: Ts,
}

/// An alert ready for the engine, which adds the EVE header (from `src`/`dest` and the flow)
/// and the `flow` object, then writes an [`crate::output::eve::AlertRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Packet time of the event.
    pub ts: Ts,
    /// Client of the flow the alert is about (`src_ip`, `src_port`).
    pub src: (IpAddr, u16),
    /// Server of that flow (`dest_ip`, `dest_port`).
    pub dest: (IpAddr, u16),
    /// The EVE `alert` object.
    pub alert: AlertObj,
    /// The EVE `xfer` object.
    pub xfer: XferAlert,
}

/// Counters of the detection stage (`stats.detect`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DetectStats {
    /// Alert records written, by rule (closing records not included).
    pub alerts: RuleCounts,
    /// Closing records written at the end of sessions that alerted.
    pub session_end_records: u64,
    /// Alerts not written because a record for the same rule and key was written within the
    /// suppression window; carried as `suppressed_count` by the next record for that key.
    pub suppressed: RuleCounts,
    /// Alerts dropped by an allowlist entry.
    pub allowlisted: RuleCounts,
    /// Sessions whose bytes were left out of the outbound-volume windows by an allowlist entry.
    pub volume_sessions_allowlisted: u64,
    /// Sessions with detection state now.
    pub sessions_tracked: u64,
    /// Sessions forgotten because the table was full (their state restarts if they go on).
    pub sessions_evicted: u64,
    /// Internal hosts with an outbound-volume window now.
    pub hosts_tracked: u64,
    /// Host windows forgotten because the table was full.
    pub hosts_evicted: u64,
    /// Host → destination windows now.
    pub destinations_tracked: u64,
    /// Host → destination windows forgotten because the table was full.
    pub destinations_evicted: u64,
    /// Host → address:port session records now (repeated-connections).
    pub connections_tracked: u64,
    /// Those forgotten because the table was full.
    pub connections_evicted: u64,
    /// Suppression keys remembered now.
    pub suppression_keys: u64,
    /// Suppression keys forgotten because the table was full (pending counts are lost).
    pub suppression_evicted: u64,
    /// Repeats dropped with a forgotten suppression key before any record carried them.
    pub suppressed_lost: u64,
}

/// What repeats are collapsed on, per rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// An internal host (outbound-volume over all destinations).
    Host(IpAddr),
    /// Internal host and external address.
    Pair(IpAddr, IpAddr),
    /// Internal host, external address and port.
    Service(IpAddr, IpAddr, u16),
    /// Client, server, server port and protocol found (mismatch rules).
    Flow(IpAddr, IpAddr, u16, AppProto),
}

/// One suppression series.
#[derive(Debug, Clone, Copy)]
struct Series {
    first_seen: Ts,
    last_seen: Ts,
    last_written: Ts,
    suppressed: u64,
}

/// What suppression lets through: the figures the record carries.
#[derive(Debug, Clone, Copy)]
struct Admitted {
    suppressed_count: u64,
    first_seen: Ts,
}

/// Per-session detection state.
#[derive(Debug)]
struct SessionState {
    id: Arc<str>,
    /// `outbound` at the previous call, to add only the growth to the windows.
    prev_outbound: u64,
    /// Session rules whose threshold was crossed (each is evaluated once per session).
    crossed: RuleBits,
    /// Session rules whose crossing alert was written: they get a closing record.
    written: RuleBits,
    ratio_at: Ts,
    size_at: Ts,
    connection_counted: bool,
    /// An allowlist entry for outbound-volume covers this session: its bytes do not count.
    volume_excluded: bool,
    /// FNV-1a of the last file name judged, so a file reported twice is judged once.
    last_file: u64,
}

/// A set of rules as bits of [`Rule::index`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RuleBits(u8);

impl RuleBits {
    fn has(self, r: Rule) -> bool {
        self.0 & (1 << r.index()) != 0
    }
    fn set(&mut self, r: Rule) {
        self.0 |= 1 << r.index();
    }
}

/// A sliding outbound-volume window.
#[derive(Debug, Clone)]
struct VolumeState {
    window: SlidingSum,
    /// The sum was above the threshold at the last check.
    above: bool,
    last_fire: Ts,
    recent: RecentIds<RECENT_SESSIONS>,
}

impl VolumeState {
    fn new() -> VolumeState {
        VolumeState {
            window: SlidingSum::new(),
            above: false,
            last_fire: Ts(0),
            recent: RecentIds::new(),
        }
    }
}

/// Result of adding bytes to a volume window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tally {
    /// Below the threshold, or above and already reported within the window.
    Quiet,
    /// Crossed (or still above a full window after the last report): the sum.
    Fire(u64),
    /// No window for this key yet.
    Missing,
}

/// The trust-boundary view of a session: set only for a file-transfer session between an
/// internal and an external endpoint.
#[derive(Debug, Clone, Copy)]
struct Boundary {
    internal: IpAddr,
    external: IpAddr,
    external_port: u16,
    internal_is_client: bool,
}

impl Boundary {
    fn of(s: &SessionView<'_>) -> Option<Boundary> {
        if !s.proto.is_file_transfer() {
            return None;
        }
        let internal = s.internal?;
        let (external, external_port) = s.external?;
        let internal_is_client = match (s.src_zone.zone, s.dest_zone.zone) {
            (Zone::Internal, Zone::External) => true,
            (Zone::External, Zone::Internal) => false,
            _ => return None,
        };
        Some(Boundary {
            internal,
            external,
            external_port,
            internal_is_client,
        })
    }

    /// True when the file's bytes went from the internal to the external endpoint.
    fn outbound(&self, f: &FileView<'_>) -> bool {
        (f.direction == FileDirection::Upload) == self.internal_is_client
    }

    fn subject(&self, rule: Rule, s: &SessionView<'_>) -> Subject {
        Subject {
            rule,
            source: self.internal,
            destination: self.external,
            port: s.server.1,
            protocol: s.proto,
        }
    }
}

/// The detection engine of one worker.
pub struct Detector {
    cfg: DetectSettings,
    /// Latest packet time seen; never runs backwards.
    clock: Ts,
    sessions: Lru<Arc<str>, SessionState>,
    hosts: Lru<IpAddr, VolumeState>,
    destinations: Lru<(IpAddr, IpAddr), VolumeState>,
    connections: Lru<(IpAddr, IpAddr, u16), SessionTimes>,
    series: Lru<(Rule, Key), Series>,
    stats: DetectStats,
}

impl Detector {
    /// A detector with empty tables.
    pub fn new(settings: DetectSettings) -> Detector {
        Detector {
            sessions: Lru::new(settings.max_sessions),
            hosts: Lru::new(settings.max_hosts),
            destinations: Lru::new(settings.max_destinations),
            connections: Lru::new(settings.max_connections),
            series: Lru::new(settings.max_suppression_keys),
            cfg: settings,
            clock: Ts(0),
            stats: DetectStats::default(),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &DetectSettings {
        &self.cfg
    }

    /// The counters.
    pub fn stats(&self) -> &DetectStats {
        &self.stats
    }

    /// A session was created. Its state is set up here (the only allocation a session costs
    /// the detector); thresholds are checked as for [`Detector::on_progress`], so a session
    /// that starts with payload is counted at once.
    pub fn on_session_start(&mut self, s: &SessionView<'_>, out: &mut Vec<Alert>) {
        self.tick(s.now);
        self.track(s);
        self.on_progress(s, out);
    }

    /// A session grew. Checks outbound-ratio and transfer-size at their first crossing,
    /// adds the outbound growth to the host windows (outbound-volume), and counts the session
    /// for repeated-connections the first time it carries payload.
    ///
    /// O(1); allocates nothing unless an alert fires, the session was not tracked, or (once
    /// per session) its first payload or first outbound bytes enter a table.
    pub fn on_progress(&mut self, s: &SessionView<'_>, out: &mut Vec<Alert>) {
        self.tick(s.now);
        let now = self.clock;
        let cfg = &self.cfg;
        let Some(st) = self.sessions.get_mut(s.session_id) else {
            return self.progress_untracked(s, out);
        };
        let delta = s.outbound.saturating_sub(st.prev_outbound);
        st.prev_outbound = st.prev_outbound.max(s.outbound);
        let first_payload = s.carried_payload && !st.connection_counted;
        st.connection_counted |= s.carried_payload;
        let Some(b) = Boundary::of(s) else {
            return;
        };

        let ratio = !st.crossed.has(Rule::OutboundRatio) && ratio_holds(cfg, s);
        if ratio {
            st.crossed.set(Rule::OutboundRatio);
            st.ratio_at = s.now;
        }
        let size = !st.crossed.has(Rule::TransferSize) && s.outbound >= cfg.transfer_size_bytes;
        if size {
            st.crossed.set(Rule::TransferSize);
            st.size_at = s.now;
        }

        let (mut host, mut dest) = (Tally::Quiet, Tally::Quiet);
        if delta > 0 && !st.volume_excluded {
            let width = window_width(cfg.volume_window_secs);
            let window = cfg.volume_window_secs.saturating_mul(Ts::NANOS_PER_SEC);
            host = tally(
                self.hosts.get_mut(&b.internal),
                now,
                width,
                window,
                delta,
                cfg.volume_host_bytes,
                &st.id,
            );
            dest = tally(
                self.destinations.get_mut(&(b.internal, b.external)),
                now,
                width,
                window,
                delta,
                cfg.volume_destination_bytes,
                &st.id,
            );
        }

        // Everything below allocates, and runs only when something happened.
        if first_payload {
            self.count_connection(s, b, out);
        }
        if ratio {
            self.fire_session_rule(Rule::OutboundRatio, s, b, out);
        }
        if size {
            self.fire_session_rule(Rule::TransferSize, s, b, out);
        }
        if host == Tally::Missing || dest == Tally::Missing {
            (host, dest) = self.add_windows(s, b, delta, host, dest);
        }
        if matches!(host, Tally::Fire(_)) || matches!(dest, Tally::Fire(_)) {
            self.fire_volume(s, b, host, dest, out);
        }
    }

    /// The session stage learnt a file name (or a file grew to completion). An outbound file
    /// is judged by the filename patterns once, and its size counts for transfer-size.
    pub fn on_file(&mut self, s: &SessionView<'_>, file: &FileView<'_>, out: &mut Vec<Alert>) {
        self.tick(s.now);
        self.track(s);
        let Some(b) = Boundary::of(s) else {
            return;
        };
        if !b.outbound(file) {
            return;
        }
        self.check_file_size(s, b, file, out);
        let hash = fnv1a(file.name);
        let Some(st) = self.sessions.get_mut(s.session_id) else {
            return;
        };
        if st.last_file == hash {
            return;
        }
        st.last_file = hash;
        if let Some(verdict) = self.cfg.filenames.judge(file.name) {
            self.fire_filename(s, b, file, &verdict, out);
        }
    }

    /// The session ended: final checks, a closing record for each session rule that wrote
    /// an alert, and the session's state is forgotten. Host windows and connection counts
    /// stay: they span sessions.
    pub fn on_session_end(&mut self, s: &SessionView<'_>, out: &mut Vec<Alert>) {
        self.tick(s.now);
        // Rules that cross in this last call get their crossing record only.
        let written_before = self
            .sessions
            .peek(s.session_id)
            .map_or(RuleBits::default(), |st| st.written);
        self.on_progress(s, out);
        if let Some(b) = Boundary::of(s) {
            // Files reported only in the final view still count for transfer-size.
            if let Some(f) = largest_outbound_file(s, b) {
                self.check_file_size(s, b, f, out);
            }
        }
        let Some(st) = self.sessions.remove(s.session_id) else {
            return;
        };
        self.stats.sessions_tracked = self.sessions.len() as u64;
        let Some(b) = Boundary::of(s) else {
            return;
        };
        for (rule, at) in [
            (Rule::OutboundRatio, st.ratio_at),
            (Rule::TransferSize, st.size_at),
        ] {
            if written_before.has(rule) {
                let admitted = Admitted {
                    suppressed_count: 0,
                    first_seen: at,
                };
                let mut alert = self.session_alert(rule, s, b, admitted, "session-end");
                alert.xfer.evidence.crossed_at = Some(at.eve());
                out.push(alert);
                self.stats.session_end_records += 1;
            }
        }
    }

    /// A mismatch verdict on a flow (port-mismatch, expected-protocol-absent,
    /// direction-disagreement), through the same allowlist and suppression path.
    pub fn on_mismatch(&mut self, m: &MismatchView<'_>, out: &mut Vec<Alert>) {
        self.tick(m.now);
        let rule = m.rule.rule();
        let subject = Subject {
            rule,
            source: m.client.0,
            destination: m.server.0,
            port: m.server.1,
            protocol: m.found,
        };
        let key = Key::Flow(m.client.0, m.server.0, m.server.1, m.found);
        let Some(admitted) = self.admit(&subject, key, m.now) else {
            return;
        };
        let list = |ps: &[AppProto]| ps.iter().map(|p| p.as_str()).collect::<Vec<_>>();
        let join = |ps: &[AppProto]| {
            if ps.is_empty() {
                "none".to_owned()
            } else {
                list(ps).join(",")
            }
        };
        let ports = if m.expected_ports.is_empty() {
            "none".to_owned()
        } else {
            m.expected_ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        let text = |p: AppProto| CriterionValue::Text(p.as_str().to_owned());
        let criteria = match m.rule {
            MismatchRule::PortMismatch => vec![Criterion {
                name: "server_port",
                observed: CriterionValue::Int(u64::from(m.server.1)),
                threshold: CriterionValue::Text(ports),
            }],
            MismatchRule::ExpectedProtocolAbsent => vec![Criterion {
                name: "app_proto",
                observed: text(m.found),
                threshold: CriterionValue::Text(join(m.expected_protocols)),
            }],
            MismatchRule::DirectionDisagreement => vec![Criterion {
                name: "app_proto_tc",
                observed: text(m.app_proto_tc.unwrap_or(m.found)),
                threshold: text(m.app_proto_ts.unwrap_or(m.found)),
            }],
        };
        let evidence = Evidence {
            summary: m.detail.to_owned(),
            scope: "flow",
            observed_at: Some(m.now.eve()),
            found_protocol: Some(m.found.as_str()),
            app_proto_ts: m.app_proto_ts.map(AppProto::as_str),
            app_proto_tc: m.app_proto_tc.map(AppProto::as_str),
            expected_protocols: Some(list(m.expected_protocols)),
            expected_ports: Some(m.expected_ports.to_vec()),
            server_port: Some(m.server.1),
            ..Evidence::default()
        };
        out.push(Alert {
            ts: m.now,
            src: m.client,
            dest: m.server,
            alert: rule.alert_obj(),
            xfer: XferAlert {
                rule: rule.as_str(),
                phase: "crossing",
                session_id: m.session_id.map(str::to_owned),
                criteria,
                evidence,
                files: Vec::new(),
                src_zone: m.src_zone.zone.as_str(),
                dest_zone: m.dest_zone.zone.as_str(),
                src_zone_source: m.src_zone.source,
                dest_zone_source: m.dest_zone.source,
                suppressed_count: admitted.suppressed_count,
                first_seen: admitted.first_seen.eve(),
                last_seen: m.now.eve(),
            },
        });
        self.stats.alerts.bump(rule);
    }

    // --- state ---------------------------------------------------------------------------

    fn tick(&mut self, now: Ts) {
        if now > self.clock {
            self.clock = now;
        }
    }

    /// Creates the session's state if it has none.
    fn track(&mut self, s: &SessionView<'_>) {
        if self.sessions.peek(s.session_id).is_some() {
            return;
        }
        let volume_excluded = Boundary::of(s).is_some_and(|b| {
            self.cfg
                .allowed(&b.subject(Rule::OutboundVolume, s))
                .is_some()
        });
        if volume_excluded {
            self.stats.volume_sessions_allowlisted += 1;
        }
        let st = SessionState {
            id: Arc::from(s.session_id),
            prev_outbound: 0,
            crossed: RuleBits::default(),
            written: RuleBits::default(),
            ratio_at: Ts(0),
            size_at: Ts(0),
            connection_counted: false,
            volume_excluded,
            last_file: 0,
        };
        if self.sessions.insert(Arc::clone(&st.id), st).is_some() {
            self.stats.sessions_evicted += 1;
        }
        self.stats.sessions_tracked = self.sessions.len() as u64;
    }

    /// `on_progress` for a session without state (never started, or evicted).
    #[cold]
    fn progress_untracked(&mut self, s: &SessionView<'_>, out: &mut Vec<Alert>) {
        self.track(s);
        if self.sessions.peek(s.session_id).is_some() {
            self.on_progress(s, out);
        }
    }

    /// Creates the missing host / destination windows and adds `delta` to them.
    #[cold]
    fn add_windows(
        &mut self,
        s: &SessionView<'_>,
        b: Boundary,
        delta: u64,
        host: Tally,
        dest: Tally,
    ) -> (Tally, Tally) {
        let width = window_width(self.cfg.volume_window_secs);
        let window = self
            .cfg
            .volume_window_secs
            .saturating_mul(Ts::NANOS_PER_SEC);
        let Some(id) = self
            .sessions
            .peek(s.session_id)
            .map(|st| Arc::clone(&st.id))
        else {
            return (host, dest);
        };
        let now = self.clock;
        let host = if host == Tally::Missing {
            if self.hosts.insert(b.internal, VolumeState::new()).is_some() {
                self.stats.hosts_evicted += 1;
            }
            self.stats.hosts_tracked = self.hosts.len() as u64;
            tally(
                self.hosts.get_mut(&b.internal),
                now,
                width,
                window,
                delta,
                self.cfg.volume_host_bytes,
                &id,
            )
        } else {
            host
        };
        let dest = if dest == Tally::Missing {
            let key = (b.internal, b.external);
            if self.destinations.insert(key, VolumeState::new()).is_some() {
                self.stats.destinations_evicted += 1;
            }
            self.stats.destinations_tracked = self.destinations.len() as u64;
            tally(
                self.destinations.get_mut(&key),
                now,
                width,
                window,
                delta,
                self.cfg.volume_destination_bytes,
                &id,
            )
        } else {
            dest
        };
        (host, dest)
    }

    /// Allowlist, then suppression, for an event at packet time `now`. `None` when the
    /// alert is dropped (and counted).
    fn admit(&mut self, subject: &Subject, key: Key, now: Ts) -> Option<Admitted> {
        let rule = subject.rule;
        if self.cfg.allowed(subject).is_some() {
            self.stats.allowlisted.bump(rule);
            return None;
        }
        let window = self.cfg.suppression_ns(rule);
        if window == 0 {
            return Some(Admitted {
                suppressed_count: 0,
                first_seen: now,
            });
        }
        if let Some(series) = self.series.get_mut(&(rule, key)) {
            if now.since(series.last_written) < window {
                series.suppressed += 1;
                series.last_seen = now;
                self.stats.suppressed.bump(rule);
                return None;
            }
            let pending = series.suppressed;
            // A series goes on while repeats keep coming within a window of each other.
            let first_seen = if pending > 0 || now.since(series.last_seen) <= window {
                series.first_seen
            } else {
                now
            };
            *series = Series {
                first_seen,
                last_seen: now,
                last_written: now,
                suppressed: 0,
            };
            return Some(Admitted {
                suppressed_count: pending,
                first_seen,
            });
        }
        let fresh = Series {
            first_seen: now,
            last_seen: now,
            last_written: now,
            suppressed: 0,
        };
        if let Some((_, old)) = self.series.insert((rule, key), fresh) {
            self.stats.suppression_evicted += 1;
            self.stats.suppressed_lost += old.suppressed;
        }
        self.stats.suppression_keys = self.series.len() as u64;
        Some(Admitted {
            suppressed_count: 0,
            first_seen: now,
        })
    }

    // --- rules ---------------------------------------------------------------------------

    /// repeated-connections: the session carried payload for the first time.
    #[cold]
    fn count_connection(&mut self, s: &SessionView<'_>, b: Boundary, out: &mut Vec<Alert>) {
        if !b.internal_is_client {
            return;
        }
        let Some(id) = self
            .sessions
            .peek(s.session_id)
            .map(|st| Arc::clone(&st.id))
        else {
            return;
        };
        let key = (b.internal, b.external, b.external_port);
        let max = self.cfg.repeat_max as usize;
        let window = self
            .cfg
            .repeat_window_secs
            .saturating_mul(Ts::NANOS_PER_SEC);
        if self.connections.peek(&key).is_none() {
            if self
                .connections
                .insert(key, SessionTimes::new(max))
                .is_some()
            {
                self.stats.connections_evicted += 1;
            }
            self.stats.connections_tracked = self.connections.len() as u64;
        }
        let Some(times) = self.connections.get_mut(&key) else {
            return;
        };
        let count = times.record(s.first_ts, &id, window);
        if count <= max {
            return;
        }
        let oldest = times.oldest().unwrap_or(s.first_ts);
        let mut sessions = times.ids();
        let subject = b.subject(Rule::RepeatedConnections, s);
        let Some(admitted) = self.admit(&subject, Key::Service(key.0, key.1, key.2), s.now) else {
            return;
        };
        trim_front(&mut sessions, MAX_LISTED_SESSIONS);
        let secs = self.cfg.repeat_window_secs;
        let mut alert = self.session_alert(Rule::RepeatedConnections, s, b, admitted, "crossing");
        alert.xfer.criteria = vec![Criterion {
            name: "sessions_in_window",
            observed: CriterionValue::Int(count as u64),
            threshold: CriterionValue::Int(u64::from(self.cfg.repeat_max)),
        }];
        let e = &mut alert.xfer.evidence;
        e.scope = "connections";
        e.summary = format!(
            "{} opened {count} {} sessions with payload to {}:{} within {} (more than {} allowed); \
             repeats of this alert count further sessions",
            b.internal,
            s.proto,
            b.external,
            b.external_port,
            human_secs(secs),
            self.cfg.repeat_max
        );
        e.session_count = Some(count as u64);
        e.sessions = sessions;
        e.window_secs = Some(secs);
        e.window_start = Some(oldest.eve());
        e.window_end = Some(s.first_ts.eve());
        out.push(alert);
        self.stats.alerts.bump(Rule::RepeatedConnections);
    }

    /// transfer-size from a single outbound file.
    fn check_file_size(
        &mut self,
        s: &SessionView<'_>,
        b: Boundary,
        file: &FileView<'_>,
        out: &mut Vec<Alert>,
    ) {
        if file.bytes < self.cfg.transfer_size_bytes {
            return;
        }
        let Some(st) = self.sessions.get_mut(s.session_id) else {
            return;
        };
        if st.crossed.has(Rule::TransferSize) {
            return;
        }
        st.crossed.set(Rule::TransferSize);
        st.size_at = s.now;
        self.fire_session_rule(Rule::TransferSize, s, b, out);
    }

    /// outbound-ratio or transfer-size crossed in this session.
    #[cold]
    fn fire_session_rule(
        &mut self,
        rule: Rule,
        s: &SessionView<'_>,
        b: Boundary,
        out: &mut Vec<Alert>,
    ) {
        let subject = b.subject(rule, s);
        let Some(admitted) = self.admit(&subject, Key::Pair(b.internal, b.external), s.now) else {
            return;
        };
        out.push(self.session_alert(rule, s, b, admitted, "crossing"));
        self.stats.alerts.bump(rule);
        if let Some(st) = self.sessions.get_mut(s.session_id) {
            st.written.set(rule);
        }
    }

    /// outbound-volume crossed for the host, the host → destination pair, or both (one
    /// record, scoped to the destination, carrying both criteria).
    #[cold]
    fn fire_volume(
        &mut self,
        s: &SessionView<'_>,
        b: Boundary,
        host: Tally,
        dest: Tally,
        out: &mut Vec<Alert>,
    ) {
        let per_dest = matches!(dest, Tally::Fire(_));
        let key = if per_dest {
            Key::Pair(b.internal, b.external)
        } else {
            Key::Host(b.internal)
        };
        let subject = b.subject(Rule::OutboundVolume, s);
        let Some(admitted) = self.admit(&subject, key, s.now) else {
            return;
        };
        let width = window_width(self.cfg.volume_window_secs);
        let now = self.clock;
        let host_state = self.hosts.peek(&b.internal);
        let dest_state = self.destinations.peek(&(b.internal, b.external));
        let host_total = host_state.map(|h| h.window.total());
        let dest_total = dest_state.map(|d| d.window.total());
        let scoped = if per_dest { dest_state } else { host_state };
        let window_start = scoped.map_or(now, |v| v.window.start(width));
        let mut sessions = scoped.map(|v| v.recent.to_vec()).unwrap_or_default();
        trim_front(&mut sessions, MAX_LISTED_SESSIONS);

        let mut criteria = Vec::with_capacity(2);
        if let Tally::Fire(total) = host {
            criteria.push(Criterion {
                name: "host_outbound_bytes_in_window",
                observed: CriterionValue::Int(total),
                threshold: CriterionValue::Int(self.cfg.volume_host_bytes),
            });
        }
        if let Tally::Fire(total) = dest {
            criteria.push(Criterion {
                name: "destination_outbound_bytes_in_window",
                observed: CriterionValue::Int(total),
                threshold: CriterionValue::Int(self.cfg.volume_destination_bytes),
            });
        }
        let secs = self.cfg.volume_window_secs;
        let mut alert = self.session_alert(Rule::OutboundVolume, s, b, admitted, "crossing");
        alert.xfer.criteria = criteria;
        let e = &mut alert.xfer.evidence;
        e.summary = if per_dest {
            format!(
                "{} sent {} to {} over file-transfer protocols within {} (more than {} allowed \
                 per destination; {} to all external peers)",
                b.internal,
                human_decimal(dest_total.unwrap_or(0)),
                b.external,
                human_secs(secs),
                human_decimal(self.cfg.volume_destination_bytes),
                human_decimal(host_total.unwrap_or(0)),
            )
        } else {
            format!(
                "{} sent {} to external peers over file-transfer protocols within {} (more than \
                 {} allowed); this session's peer is {}",
                b.internal,
                human_decimal(host_total.unwrap_or(0)),
                human_secs(secs),
                human_decimal(self.cfg.volume_host_bytes),
                b.external,
            )
        };
        e.scope = if per_dest { "destination" } else { "host" };
        e.window_secs = Some(secs);
        e.window_start = Some(window_start.eve());
        e.window_end = Some(now.eve());
        e.host_window_bytes = host_total;
        e.destination_window_bytes = dest_total;
        e.sessions = sessions;
        out.push(alert);
        self.stats.alerts.bump(Rule::OutboundVolume);
    }

    /// suspicious-filename on one outbound file.
    #[cold]
    fn fire_filename(
        &mut self,
        s: &SessionView<'_>,
        b: Boundary,
        file: &FileView<'_>,
        verdict: &FilenameVerdict,
        out: &mut Vec<Alert>,
    ) {
        let subject = b.subject(Rule::SuspiciousFilename, s);
        let Some(admitted) = self.admit(&subject, Key::Pair(b.internal, b.external), s.now) else {
            return;
        };
        let mut alert = self.session_alert(Rule::SuspiciousFilename, s, b, admitted, "crossing");
        alert.xfer.criteria = verdict
            .findings
            .iter()
            .map(|f| Criterion {
                name: match f.pattern {
                    "archive-extension" => "archive_extension",
                    "double-extension" => "double_extension",
                    "bidi-override" => "bidi_override",
                    _ => "random_stem",
                },
                observed: CriterionValue::Text(f.detail.clone()),
                threshold: CriterionValue::Text(f.threshold.clone()),
            })
            .collect();
        let patterns: Vec<String> = verdict
            .findings
            .iter()
            .map(|f| format!("{}:{}", f.pattern, f.detail))
            .collect();
        let e = &mut alert.xfer.evidence;
        e.scope = "filename";
        e.summary = format!(
            "{} sent file \"{}\" ({} so far) to {}:{} over {}: {}",
            b.internal,
            file.name.escape_debug(),
            human_binary(file.bytes),
            b.external,
            b.external_port,
            s.proto,
            patterns.join(", ")
        );
        e.file_name = Some(file.name.to_owned());
        e.filename_patterns = patterns;
        e.stem_entropy = Some(round_to(verdict.stem_entropy, 1000.0));
        out.push(alert);
        self.stats.alerts.bump(Rule::SuspiciousFilename);
    }

    /// An alert about session `s` with the session's figures, files and zones; the rule's
    /// own criteria and evidence are filled in for outbound-ratio and transfer-size, and by
    /// the caller for the others.
    fn session_alert(
        &self,
        rule: Rule,
        s: &SessionView<'_>,
        b: Boundary,
        admitted: Admitted,
        phase: &'static str,
    ) -> Alert {
        let total = s.outbound.saturating_add(s.inbound);
        let share = if total == 0 {
            0.0
        } else {
            s.outbound as f64 / total as f64
        };
        let mut evidence = Evidence {
            scope: "session",
            protocol: Some(s.proto.as_str()),
            internal_ip: Some(b.internal),
            external_ip: Some(b.external),
            external_port: Some(b.external_port),
            outbound_bytes: Some(s.outbound),
            inbound_bytes: Some(s.inbound),
            outbound_share: Some(round_to(share, 10_000.0)),
            session_start: Some(s.first_ts.eve()),
            observed_at: Some(s.now.eve()),
            ..Evidence::default()
        };
        let (files, omitted) = alert_files(s, b);
        if omitted > 0 {
            evidence.files_omitted = Some(omitted);
        }
        let mut criteria = Vec::new();
        let peer = format!("{}:{}", b.external, b.external_port);
        match rule {
            Rule::OutboundRatio => {
                criteria.push(Criterion {
                    name: "outbound_share",
                    observed: CriterionValue::Float(round_to(share, 10_000.0)),
                    threshold: CriterionValue::Float(self.cfg.outbound_ratio),
                });
                criteria.push(Criterion {
                    name: "outbound_bytes",
                    observed: CriterionValue::Int(s.outbound),
                    threshold: CriterionValue::Int(self.cfg.outbound_ratio_min_bytes),
                });
                evidence.summary = format!(
                    "{} sent {} to {peer} over {}, {:.2}% of the session's payload ({} came \
                     back); fires at {:.2}% and {}",
                    b.internal,
                    human_binary(s.outbound),
                    s.proto,
                    share * 100.0,
                    human_binary(s.inbound),
                    self.cfg.outbound_ratio * 100.0,
                    human_binary(self.cfg.outbound_ratio_min_bytes),
                );
            }
            Rule::TransferSize => {
                let threshold = self.cfg.transfer_size_bytes;
                criteria.push(Criterion {
                    name: "session_outbound_bytes",
                    observed: CriterionValue::Int(s.outbound),
                    threshold: CriterionValue::Int(threshold),
                });
                let big = largest_outbound_file(s, b).filter(|f| f.bytes >= threshold);
                if let Some(f) = big {
                    criteria.push(Criterion {
                        name: "file_outbound_bytes",
                        observed: CriterionValue::Int(f.bytes),
                        threshold: CriterionValue::Int(threshold),
                    });
                    evidence.file_name = Some(f.name.to_owned());
                }
                evidence.summary = match big {
                    Some(f) => format!(
                        "{} sent {} to {peer} over {}; file \"{}\" alone is {} (fires at {})",
                        b.internal,
                        human_binary(s.outbound),
                        s.proto,
                        f.name.escape_debug(),
                        human_binary(f.bytes),
                        human_binary(threshold),
                    ),
                    None => format!(
                        "{} sent {} to {peer} over {} in one session (fires at {})",
                        b.internal,
                        human_binary(s.outbound),
                        s.proto,
                        human_binary(threshold),
                    ),
                };
            }
            _ => {}
        }
        Alert {
            ts: s.now,
            src: s.client,
            dest: s.server,
            alert: rule.alert_obj(),
            xfer: XferAlert {
                rule: rule.as_str(),
                phase,
                session_id: Some(s.session_id.to_owned()),
                criteria,
                evidence,
                files,
                src_zone: s.src_zone.zone.as_str(),
                dest_zone: s.dest_zone.zone.as_str(),
                src_zone_source: s.src_zone.source,
                dest_zone_source: s.dest_zone.source,
                suppressed_count: admitted.suppressed_count,
                first_seen: admitted.first_seen.eve(),
                last_seen: s.now.eve(),
            },
        }
    }
}

/// outbound-ratio: share and minimum both hold.
fn ratio_holds(cfg: &DetectSettings, s: &SessionView<'_>) -> bool {
    let total = s.outbound.saturating_add(s.inbound);
    s.outbound >= cfg.outbound_ratio_min_bytes
        && s.outbound as f64 >= cfg.outbound_ratio * total as f64
}

/// Adds `delta` to a volume window and says whether it fires. Runs per packet: no
/// allocation (the session id is only cloned, a reference-count increment, when another
/// session contributed last).
fn tally(
    entry: Option<&mut VolumeState>,
    now: Ts,
    width: u64,
    window_ns: u64,
    delta: u64,
    threshold: u64,
    id: &Arc<str>,
) -> Tally {
    let Some(v) = entry else {
        return Tally::Missing;
    };
    let total = v.window.add(now, width, delta);
    if !v.recent.is_newest(id) {
        v.recent.push(id);
    }
    if total <= threshold {
        v.above = false;
        return Tally::Quiet;
    }
    // Still above a full window after the last report: report again (suppression decides
    // whether it is written).
    if !v.above || now.since(v.last_fire) >= window_ns {
        v.above = true;
        v.last_fire = now;
        return Tally::Fire(total);
    }
    Tally::Quiet
}

/// Bucket width of a window of `secs`, nanoseconds.
fn window_width(secs: u64) -> u64 {
    (secs.saturating_mul(Ts::NANOS_PER_SEC) / window::BUCKETS as u64).max(1)
}

/// The session's largest outbound file.
fn largest_outbound_file<'a>(s: &SessionView<'a>, b: Boundary) -> Option<&'a FileView<'a>> {
    s.files
        .iter()
        .filter(|f| b.outbound(f))
        .max_by_key(|f| f.bytes)
}

/// The session's files for `xfer.files` (the first [`MAX_ALERT_FILES`]) and how many were
/// left out.
fn alert_files(s: &SessionView<'_>, b: Boundary) -> (Vec<AlertFile>, u64) {
    let files = s
        .files
        .iter()
        .take(MAX_ALERT_FILES)
        .map(|f| AlertFile {
            name: f.name.to_owned(),
            direction: f.direction.as_str(),
            outbound: b.outbound(f),
            bytes: f.bytes,
            complete: f.complete,
        })
        .collect();
    let omitted = s.files.len().saturating_sub(MAX_ALERT_FILES) as u64;
    (files, omitted)
}

/// Keeps the last `n` entries.
fn trim_front(v: &mut Vec<String>, n: usize) {
    let extra = v.len().saturating_sub(n);
    v.drain(..extra);
}

/// Rounds to `1/scale`, so shares and entropies print short and stable.
fn round_to(v: f64, scale: f64) -> f64 {
    (v * scale).round() / scale
}

/// FNV-1a, 64-bit: a stable, seedless hash for the per-session file dedup.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// `52.0 MiB`: binary units, as the byte thresholds in MiB are written.
fn human_binary(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = "KiB";
    for u in UNITS.iter().skip(1) {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `104.9 MB`: decimal units, as the volume thresholds are written.
fn human_decimal(n: u64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n < 1000 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1000.0;
    let mut unit = "kB";
    for u in UNITS.iter().skip(1) {
        if v < 1000.0 {
            break;
        }
        v /= 1000.0;
        unit = u;
    }
    format!("{v:.1} {unit}")
}

/// `1 h`, `24 h`, `90 min`, `45 s`.
fn human_secs(secs: u64) -> String {
    if secs >= 3600 && secs.is_multiple_of(3600) {
        format!("{} h", secs / 3600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests;
