//! Session stage: links data flows (FTP data channels, FTPS data, TFTP transfers) to the
//! control session or request that announced them, rolls their bytes up into one session,
//! and follows the files each session moves.
//!
//! A session is created when identification names a flow FTP, FTPS, SMB or TFTP; that flow
//! is the session's *main* flow and owns the protocol parser. Announced data flows wait in
//! the bounded [`expect::ExpectationTable`]; FTPS data channels, whose announcements are
//! encrypted, are linked by host pair while the control session lives. A session ends when
//! its main flow and every linked flow have ended.
//!
//! Bounds: at most `max_sessions` sessions (further ones are counted, not tracked), at most
//! `max_files` files and data channels listed per session, at most 8 transfers waiting for
//! their data channel. Sessions live in a `BTreeMap` keyed by a counter, so draining at the
//! end of input is in creation order and output is deterministic.

pub mod expect;

use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;

use hashbrown::HashMap;
use serde::Serialize;

use crate::app_proto::AppProto;
use crate::detect::{FileDirection, FileView, SessionView};
use crate::proto::TransferDirection;
use crate::proto::ftp::{FtpControl, TransferCmd};
use crate::proto::smb::{FileKind, SmbConnection};
use crate::proto::tftp::{RequestKind, TftpTransfer};
use crate::time::Ts;
use crate::zones::{Zone, ZoneMatch};
use expect::ExpectationTable;

/// Internal session number (creation order).
pub type SessionId = u64;

/// Transfers (STOR/RETR …) that may wait for their data channel at once.
const MAX_PENDING_TRANSFERS: usize = 8;

/// Caps and lifetimes from `[sessions]`.
#[derive(Debug, Clone)]
pub struct SessionLimits {
    /// Sessions tracked at once.
    pub max_sessions: usize,
    /// Expectations held at once.
    pub max_expectations: usize,
    /// Expectation lifetime, seconds of packet time.
    pub expectation_ttl: u64,
    /// Files and data channels listed per session.
    pub max_files: usize,
}

impl Default for SessionLimits {
    fn default() -> SessionLimits {
        SessionLimits {
            max_sessions: 65_536,
            max_expectations: 16_384,
            expectation_ttl: 120,
            max_files: 256,
        }
    }
}

/// A flow's part in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowRole {
    /// The control connection / request flow / SMB connection.
    Main,
    /// A linked data flow.
    Data,
}

/// The protocol parser of a session's main flow.
#[derive(Debug)]
pub enum Parser {
    /// Nothing to parse (FTPS: encrypted).
    None,
    /// FTP control channel.
    Ftp(Box<FtpControl>),
    /// SMB connection.
    Smb(Box<SmbConnection>),
    /// TFTP request and its transfer.
    Tftp(Box<TftpTransfer>),
}

/// One file a session moved (or tried to).
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    /// Name as the protocol carried it (empty when unknown, e.g. STOU without a name).
    pub name: String,
    /// Upload (client → server), download, or listing.
    pub direction: TransferDirection,
    /// Command or request that moved it (`STOR`, `RETR`, `WRQ`, `WRITE` …).
    pub command: &'static str,
    /// Bytes of the file seen.
    pub bytes: u64,
    /// The transfer finished successfully.
    pub complete: bool,
    /// SMB: `file`, `pipe` or `directory`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    /// Flow id of the data channel that carried it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flow_id: Option<u64>,
    /// The detector has seen this file's name.
    #[serde(skip)]
    pub judged: bool,
}

/// A data flow linked to the session.
#[derive(Debug, Clone)]
struct DataChannel {
    flow_id: u64,
    file: Option<usize>,
    open: bool,
    bytes: u64,
}

/// What identifies the main flow in records written after it ended.
#[derive(Debug, Clone, Copy)]
pub struct MainFlow {
    /// Flow id of the main flow.
    pub flow_id: u64,
    /// IP protocol number.
    pub proto: u8,
    /// VLAN ids.
    pub vlan: [u16; 2],
}

/// One transfer session.
#[derive(Debug)]
pub struct Session {
    /// Internal number.
    pub id: SessionId,
    /// EVE `session_id` (`ftp-1a2b…`, from the main flow's id).
    pub name: String,
    /// Session protocol: ftp, ftps, smb or tftp.
    pub proto: AppProto,
    /// Client of the main flow.
    pub client: (IpAddr, u16),
    /// Server of the main flow.
    pub server: (IpAddr, u16),
    /// Zone of the client.
    pub client_zone: ZoneMatch,
    /// Zone of the server.
    pub server_zone: ZoneMatch,
    /// The main flow.
    pub main: MainFlow,
    /// First packet time.
    pub first_ts: Ts,
    /// Latest packet time.
    pub last_ts: Ts,
    /// Payload bytes internal → external over all linked flows.
    pub outbound: u64,
    /// Payload bytes external → internal over all linked flows.
    pub inbound: u64,
    /// Any payload at all, either way, on any flow.
    pub carried_payload: bool,
    /// Files, in the order they appeared.
    pub files: Vec<FileEntry>,
    /// Files not listed because of `max_files`.
    pub files_omitted: u64,
    data: Vec<DataChannel>,
    data_omitted: u64,
    pending: VecDeque<(TransferCmd, Option<String>)>,
    /// The main flow's parser.
    pub parser: Parser,
    /// Flows linked so far, the main flow included.
    pub flows_total: u32,
    /// Linked flows still open, the main flow included.
    pub open_flows: u32,
    /// The main flow is still open.
    pub main_open: bool,
    /// FTP user name, when seen.
    pub user: Option<String>,
    /// The control channel is (or became) TLS.
    pub tls: bool,
    /// Outbound bytes when the detector last looked.
    pub checked_outbound: u64,
    /// The detector has been told about the session.
    pub detector_started: bool,
    /// Some file has a name the detector has not judged yet.
    pub unjudged: bool,
    /// An alert was raised on the session.
    pub alerted: bool,
    max_files: usize,
}

impl Session {
    /// The internal endpoint, when the session crosses the boundary.
    pub fn internal(&self) -> Option<IpAddr> {
        match (self.client_zone.zone, self.server_zone.zone) {
            (Zone::Internal, Zone::External) => Some(self.client.0),
            (Zone::External, Zone::Internal) => Some(self.server.0),
            _ => None,
        }
    }

    /// The external endpoint (address and port), when the session crosses the boundary.
    pub fn external(&self) -> Option<(IpAddr, u16)> {
        match (self.client_zone.zone, self.server_zone.zone) {
            (Zone::Internal, Zone::External) => Some(self.server),
            (Zone::External, Zone::Internal) => Some(self.client),
            _ => None,
        }
    }

    /// Adds a linked data flow; a transfer waiting for a channel is assigned to it.
    pub fn add_data_channel(&mut self, flow_id: u64) {
        self.flows_total += 1;
        self.open_flows += 1;
        if self.data.len() >= 4 * self.files_cap() {
            self.data_omitted += 1;
            return;
        }
        let file = self
            .pending
            .pop_front()
            .and_then(|(cmd, name)| self.push_file(cmd, name, Some(flow_id)));
        self.data.push(DataChannel {
            flow_id,
            file,
            open: true,
            bytes: 0,
        });
    }

    fn files_cap(&self) -> usize {
        self.max_files.max(1)
    }

    fn push_file(
        &mut self,
        cmd: TransferCmd,
        name: Option<String>,
        flow_id: Option<u64>,
    ) -> Option<usize> {
        if self.files.len() >= self.files_cap() {
            self.files_omitted += 1;
            return None;
        }
        self.files.push(FileEntry {
            name: name.unwrap_or_default(),
            direction: cmd.direction(),
            command: cmd.as_str(),
            bytes: 0,
            complete: false,
            kind: None,
            flow_id,
            judged: false,
        });
        self.unjudged = true;
        Some(self.files.len() - 1)
    }

    /// An FTP transfer command: it goes to the newest open data channel without a file, or
    /// waits for the next channel. Returns the file's index when it has one.
    pub fn on_transfer(&mut self, cmd: TransferCmd, name: Option<String>) -> Option<usize> {
        let free = self.data.iter().rposition(|c| c.open && c.file.is_none());
        match free {
            Some(i) => {
                let flow_id = self.data.get(i).map(|c| c.flow_id);
                let bytes = self.data.get(i).map_or(0, |c| c.bytes);
                let f = self.push_file(cmd, name, flow_id)?;
                if let Some(c) = self.data.get_mut(i) {
                    c.file = Some(f);
                }
                if let Some(e) = self.files.get_mut(f) {
                    e.bytes = bytes;
                }
                Some(f)
            }
            None => {
                if self.pending.len() >= MAX_PENDING_TRANSFERS {
                    self.pending.pop_front();
                }
                self.pending.push_back((cmd, name));
                None
            }
        }
    }

    /// The 226/426… reply ending a transfer: the oldest unfinished file of that command.
    pub fn on_transfer_end(&mut self, cmd: TransferCmd, ok: bool) {
        if let Some(f) = self
            .files
            .iter_mut()
            .find(|f| !f.complete && f.command == cmd.as_str())
        {
            f.complete = ok;
            if !ok {
                // Failed transfers are kept, marked incomplete; stop matching them again.
                f.command = cmd.as_str();
            }
        }
    }

    /// Payload of a data channel grew by `n`.
    pub fn data_bytes(&mut self, flow_id: u64, n: u64) {
        if let Some(c) = self.data.iter_mut().find(|c| c.flow_id == flow_id) {
            c.bytes += n;
            if let Some(f) = c.file.and_then(|i| self.files.get_mut(i)) {
                f.bytes = c.bytes;
            }
        }
    }

    /// A data channel ended.
    pub fn close_data_channel(&mut self, flow_id: u64) {
        if let Some(c) = self
            .data
            .iter_mut()
            .find(|c| c.flow_id == flow_id && c.open)
        {
            c.open = false;
        }
    }

    /// The file a data channel carried: (command, name).
    pub fn channel_file(&self, flow_id: u64) -> Option<&FileEntry> {
        let c = self.data.iter().find(|c| c.flow_id == flow_id)?;
        self.files.get(c.file?)
    }

    /// Rebuilds the file list of an SMB session from its parser's totals.
    pub fn sync_smb_files(&mut self) {
        let Parser::Smb(p) = &self.parser else {
            return;
        };
        let cap = self.files_cap();
        let mut files = Vec::new();
        let mut omitted = 0;
        for f in p.files() {
            let Some(name) = f.name.as_deref() else {
                continue;
            };
            let kind = match f.kind {
                FileKind::File => "file",
                FileKind::Directory => "directory",
                FileKind::Pipe => "pipe",
                FileKind::Unknown => "unknown",
            };
            // Directories moved no data; list files and pipes that did I/O or were created.
            if f.kind == FileKind::Directory {
                continue;
            }
            let (direction, command, bytes) =
                if f.bytes_written >= f.bytes_read && f.bytes_written > 0 {
                    (TransferDirection::Upload, "WRITE", f.bytes_written)
                } else if f.bytes_read > 0 {
                    (TransferDirection::Download, "READ", f.bytes_read)
                } else if f.created {
                    (TransferDirection::Upload, "CREATE", 0)
                } else {
                    continue;
                };
            if files.len() >= cap {
                omitted += 1;
                continue;
            }
            let judged = self.files.iter().any(|e| e.judged && e.name == name);
            files.push(FileEntry {
                name: name.to_string(),
                direction,
                command,
                bytes,
                complete: false,
                kind: Some(kind),
                flow_id: None,
                judged,
            });
        }
        self.unjudged |= files.iter().any(|f| !f.judged);
        self.files = files;
        self.files_omitted = omitted;
    }

    /// Files with a name the detector has not judged yet.
    pub fn unjudged_files(&self) -> Vec<usize> {
        (0..self.files.len())
            .filter(|&i| {
                self.files.get(i).is_some_and(|f| {
                    !f.judged && !f.name.is_empty() && f.direction != TransferDirection::Listing
                })
            })
            .collect()
    }

    /// The files as the detector sees them (listings and pipes are not files).
    pub fn file_views(&self) -> Vec<FileView<'_>> {
        self.files
            .iter()
            .filter(|f| f.kind.is_none_or(|k| k == "file"))
            .filter_map(|f| {
                let direction = match f.direction {
                    TransferDirection::Upload => FileDirection::Upload,
                    TransferDirection::Download => FileDirection::Download,
                    TransferDirection::Listing => return None,
                };
                Some(FileView {
                    name: &f.name,
                    direction,
                    bytes: f.bytes,
                    complete: f.complete,
                })
            })
            .collect()
    }

    /// The detector's view of the session at `now`.
    pub fn view<'a>(&'a self, files: &'a [FileView<'a>], now: Ts) -> SessionView<'a> {
        SessionView {
            session_id: &self.name,
            proto: self.proto,
            client: self.client,
            server: self.server,
            internal: self.internal(),
            external: self.external(),
            src_zone: self.client_zone,
            dest_zone: self.server_zone,
            outbound: self.outbound,
            inbound: self.inbound,
            files,
            first_ts: self.first_ts,
            now,
            carried_payload: self.carried_payload,
        }
    }

    /// The `session` object of the EVE session record.
    pub fn record(&self) -> SessionObj<'_> {
        let total = self.outbound + self.inbound;
        let (smb_dialect, smb_encrypted) = match &self.parser {
            Parser::Smb(p) => (p.dialect(), Some(p.encrypted())),
            _ => (None, None),
        };
        let tftp = match &self.parser {
            Parser::Tftp(t) => Some(TftpSummary {
                file: t.file(),
                packet: match t.kind() {
                    RequestKind::Read => "read",
                    RequestKind::Write => "write",
                },
                bytes: t.bytes(),
                blocks: t.blocks(),
                blksize: t.blksize(),
                completed: t.completed(),
                error: t.error().map(|e| e.code),
            }),
            _ => None,
        };
        SessionObj {
            id: &self.name,
            protocol: self.proto.as_str(),
            start: self.first_ts.eve(),
            end: self.last_ts.eve(),
            flows: self.flows_total,
            data_channels: self.data.len() as u64 + self.data_omitted,
            outbound_bytes: self.outbound,
            inbound_bytes: self.inbound,
            outbound_share: (total > 0)
                .then(|| ((self.outbound as f64 / total as f64) * 1e4).round() / 1e4),
            internal_ip: self.internal(),
            external_ip: self.external().map(|e| e.0),
            external_port: self.external().map(|e| e.1),
            user: self.user.as_deref(),
            tls: self.tls,
            smb_dialect,
            smb_encrypted,
            tftp,
            files: &self.files,
            files_omitted: self.files_omitted,
            alerted: self.alerted,
        }
    }
}

/// TFTP details in a session record.
#[derive(Debug, Clone, Serialize)]
pub struct TftpSummary<'a> {
    /// Requested file.
    pub file: &'a str,
    /// `read` or `write`.
    pub packet: &'static str,
    /// Unique file bytes.
    pub bytes: u64,
    /// Unique DATA blocks.
    pub blocks: u64,
    /// Block size in effect.
    pub blksize: u16,
    /// The final block was acknowledged.
    pub completed: bool,
    /// ERROR code that ended it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<u16>,
}

/// The `session` object of an EVE `session` record (DESIGN §5).
#[derive(Debug, Clone, Serialize)]
pub struct SessionObj<'a> {
    /// Session id (same as `xfer.session_id`).
    pub id: &'a str,
    /// ftp, ftps, smb or tftp.
    pub protocol: &'static str,
    /// First packet of any linked flow.
    pub start: String,
    /// Last packet of any linked flow.
    pub end: String,
    /// Flows in the session, the main flow included.
    pub flows: u32,
    /// Linked data flows.
    pub data_channels: u64,
    /// Payload internal → external.
    pub outbound_bytes: u64,
    /// Payload external → internal.
    pub inbound_bytes: u64,
    /// outbound / (outbound + inbound), when anything moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbound_share: Option<f64>,
    /// The internal endpoint when the session crosses the boundary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub internal_ip: Option<IpAddr>,
    /// The external endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_ip: Option<IpAddr>,
    /// The external endpoint's port.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_port: Option<u16>,
    /// FTP user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    /// Control channel protected by TLS.
    pub tls: bool,
    /// SMB dialect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smb_dialect: Option<&'a str>,
    /// SMB3 encryption seen: contents are hidden, only sizes are known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smb_encrypted: Option<bool>,
    /// TFTP transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tftp: Option<TftpSummary<'a>>,
    /// Files with direction and size.
    pub files: &'a [FileEntry],
    /// Files not listed (cap).
    pub files_omitted: u64,
    /// An alert was raised on the session.
    pub alerted: bool,
}

/// Session-stage counters (`stats.sessions`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SessionStats {
    /// Sessions created.
    pub created: u64,
    /// Sessions ended (record written).
    pub ended: u64,
    /// Sessions tracked now.
    pub active: u64,
    /// Sessions not tracked because the table was full.
    pub shed: u64,
    /// Data flows linked by an expectation.
    pub linked_by_expectation: u64,
    /// FTPS data flows linked by host pair.
    pub linked_by_host_pair: u64,
    /// Expectation table counters.
    pub expectations: expect::ExpectCounters,
}

/// All sessions of one worker, plus the expectations that link flows to them.
pub struct SessionTable {
    sessions: BTreeMap<SessionId, Session>,
    /// FTPS control sessions by host pair (client, server), for data-channel linking.
    ftps: HashMap<(IpAddr, IpAddr), SessionId>,
    next: SessionId,
    limits: SessionLimits,
    /// Announced data flows.
    pub expect: ExpectationTable,
    /// Counters.
    pub stats: SessionStats,
}

impl SessionTable {
    /// An empty table.
    pub fn new(limits: SessionLimits) -> SessionTable {
        SessionTable {
            sessions: BTreeMap::new(),
            ftps: HashMap::new(),
            next: 1,
            expect: ExpectationTable::new(limits.max_expectations, limits.expectation_ttl),
            limits,
            stats: SessionStats::default(),
        }
    }

    /// Creates a session for a main flow; `None` when the table is full (counted).
    #[allow(clippy::too_many_arguments)] // a session is defined by all of these at once
    pub fn create(
        &mut self,
        proto: AppProto,
        client: (IpAddr, u16),
        server: (IpAddr, u16),
        zones: (ZoneMatch, ZoneMatch),
        main: MainFlow,
        parser: Parser,
        ts: Ts,
    ) -> Option<SessionId> {
        if self.sessions.len() >= self.limits.max_sessions {
            self.stats.shed += 1;
            return None;
        }
        let id = self.next;
        self.next += 1;
        let session = Session {
            id,
            name: format!("{}-{:x}", proto.as_str(), main.flow_id),
            proto,
            client,
            server,
            client_zone: zones.0,
            server_zone: zones.1,
            main,
            first_ts: ts,
            last_ts: ts,
            outbound: 0,
            inbound: 0,
            carried_payload: false,
            files: Vec::new(),
            files_omitted: 0,
            data: Vec::new(),
            data_omitted: 0,
            pending: VecDeque::new(),
            parser,
            flows_total: 1,
            open_flows: 1,
            main_open: true,
            user: None,
            tls: proto == AppProto::Ftps,
            checked_outbound: 0,
            detector_started: false,
            unjudged: false,
            alerted: false,
            max_files: self.limits.max_files,
        };
        if session.tls {
            self.ftps.insert((client.0, server.0), id);
        }
        self.sessions.insert(id, session);
        self.stats.created += 1;
        self.stats.active = self.sessions.len() as u64;
        Some(id)
    }

    /// A session by id.
    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// A session by id, mutably.
    pub fn get_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.sessions.get_mut(&id)
    }

    /// The control channel of `id` became TLS: its data channels are linked by host pair.
    pub fn mark_tls(&mut self, id: SessionId) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.tls = true;
            s.proto = AppProto::Ftps;
            self.ftps.insert((s.client.0, s.server.0), id);
        }
    }

    /// A live FTPS control session between these two hosts (either way round).
    pub fn ftps_between(&self, a: IpAddr, b: IpAddr) -> Option<SessionId> {
        let id = self.ftps.get(&(a, b)).or_else(|| self.ftps.get(&(b, a)))?;
        self.sessions.get(id).filter(|s| s.main_open).map(|s| s.id)
    }

    /// Removes a session that ended at packet time `ended`; its pending expectations are
    /// cancelled (or counted expired, when their ttl had already passed by then).
    pub fn remove(&mut self, id: SessionId, ended: Ts) -> Option<Session> {
        let s = self.sessions.remove(&id)?;
        self.expect.remove_session(id, ended);
        if self.ftps.get(&(s.client.0, s.server.0)) == Some(&id) {
            self.ftps.remove(&(s.client.0, s.server.0));
        }
        self.stats.ended += 1;
        self.stats.active = self.sessions.len() as u64;
        Some(s)
    }

    /// Ids of every session, in creation order.
    pub fn ids(&self) -> Vec<SessionId> {
        self.sessions.keys().copied().collect()
    }

    /// Counters with the expectation table's folded in.
    pub fn counters(&self) -> SessionStats {
        SessionStats {
            expectations: self.expect.counters(),
            ..self.stats.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zones::Zones;

    fn table() -> (SessionTable, SessionId) {
        let zones = Zones::default();
        let c: IpAddr = "10.0.0.5".parse().unwrap();
        let s: IpAddr = "8.8.4.4".parse().unwrap();
        let mut t = SessionTable::new(SessionLimits {
            max_files: 4,
            ..SessionLimits::default()
        });
        let id = t
            .create(
                AppProto::Ftp,
                (c, 40000),
                (s, 21),
                (zones.classify(c), zones.classify(s)),
                MainFlow {
                    flow_id: 0xabc,
                    proto: 6,
                    vlan: [0, 0],
                },
                Parser::None,
                Ts(0),
            )
            .unwrap();
        (t, id)
    }

    #[test]
    fn transfer_before_and_after_the_data_channel() {
        let (mut t, id) = table();
        let s = t.get_mut(id).unwrap();
        assert_eq!(s.name, "ftp-abc");
        assert_eq!(s.internal(), Some("10.0.0.5".parse().unwrap()));
        // Passive: channel first, then STOR.
        s.add_data_channel(1);
        s.data_bytes(1, 100);
        assert_eq!(
            s.on_transfer(TransferCmd::Stor, Some("a.zip".into())),
            Some(0)
        );
        s.data_bytes(1, 50);
        assert_eq!(s.files[0].bytes, 150);
        // Active: STOR first, then the channel.
        assert_eq!(s.on_transfer(TransferCmd::Retr, Some("b.txt".into())), None);
        s.close_data_channel(1);
        s.add_data_channel(2);
        s.data_bytes(2, 7);
        assert_eq!(s.channel_file(2).unwrap().name, "b.txt");
        assert_eq!(s.files[1].bytes, 7);
        s.on_transfer_end(TransferCmd::Stor, true);
        assert!(s.files[0].complete);
        assert_eq!(s.flows_total, 3);
        assert_eq!(s.file_views().len(), 2);
    }

    #[test]
    fn files_are_capped_and_counted() {
        let (mut t, id) = table();
        let s = t.get_mut(id).unwrap();
        for i in 0..10u64 {
            s.add_data_channel(i);
            s.on_transfer(TransferCmd::Stor, Some(format!("f{i}")));
        }
        assert_eq!(s.files.len(), 4);
        assert_eq!(s.files_omitted, 6);
    }

    #[test]
    fn sessions_are_capped() {
        let zones = Zones::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let mut t = SessionTable::new(SessionLimits {
            max_sessions: 2,
            ..SessionLimits::default()
        });
        for i in 0..5u64 {
            t.create(
                AppProto::Smb,
                (ip, 1000),
                (ip, 445),
                (zones.classify(ip), zones.classify(ip)),
                MainFlow {
                    flow_id: i,
                    proto: 6,
                    vlan: [0, 0],
                },
                Parser::None,
                Ts(0),
            );
        }
        assert_eq!(t.counters().created, 2);
        assert_eq!(t.counters().shed, 3);
        assert_eq!(t.ids(), vec![1, 2]);
        t.remove(1, Ts(0));
        assert_eq!(t.counters().active, 1);
    }

    #[test]
    fn ftps_sessions_are_found_by_host_pair_while_open() {
        let (mut t, id) = table();
        t.mark_tls(id);
        let (a, b) = ("10.0.0.5".parse().unwrap(), "8.8.4.4".parse().unwrap());
        assert_eq!(t.ftps_between(b, a), Some(id));
        t.get_mut(id).unwrap().main_open = false;
        assert_eq!(t.ftps_between(a, b), None);
    }
}
