//! SMB over NBSS / direct TCP: framing, SMB2/3 (MS-SMB2) and the useful part of SMB1
//! (MS-SMB, MS-CIFS), with the per-connection state a file-transfer sensor needs.
//!
//! [`SmbConnection`] is fed the in-order bytes of one TCP connection per direction. Framing
//! is NBSS (RFC 1002 §4.3: type byte, 24-bit length). Of each PDU only the first
//! [`SmbConfig::header_keep`] bytes are kept — enough for every header and fixed request or
//! response part this module reads — and the rest (WRITE and READ payloads) is skipped by
//! count, so a multi-megabyte WRITE costs no buffering. A gap of unknown size
//! (`feed(…, gap = true)`) loses the framing; the parser then scans for the next plausible
//! NBSS + SMB header. A hole of known size ([`SmbConnection::skip`]) inside a PDU body keeps
//! the framing.
//!
//! READ/WRITE bytes are credited to a file as the data bytes pass (or fall in a sized hole
//! inside the PDU), never from the length field alone: a cut-off or crafted PDU cannot make
//! a file bigger than the bytes the sensor was given. [`SmbEvent::Io`] fires when the PDU
//! ends (or is cut by a gap or [`SmbConnection::finish`]).
//!
//! What it understands:
//! * SMB2/3: NEGOTIATE (dialect, signing, encryption capability incl. 3.1.1 contexts),
//!   SESSION_SETUP (session flags, NTLMSSP user), TREE_CONNECT (`\\server\share`, share
//!   type, encrypt flag), CREATE (UTF-16LE name, FileId, file/directory/pipe), READ, WRITE,
//!   CLOSE, compounded requests and responses (NextCommand, related FileIds), async
//!   interim responses;
//! * `\xfdSMB` TRANSFORM (encrypted) and `\xfcSMB` (compressed) PDUs: reported and counted,
//!   contents opaque;
//! * SMB1: NEGOTIATE, SESSION_SETUP_ANDX (NTLMSSP user), TREE_CONNECT_ANDX, NT_CREATE_ANDX,
//!   READ_ANDX, WRITE_ANDX, CLOSE, following AndX chains.
//!
//! Every length and offset from the wire is checked against the bytes present, and byte
//! counts are clamped to the PDU that carried them. Tables (pending requests, open files,
//! files, trees) are capped and count what they shed.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use serde::Serialize;

use super::{le16, le32, le64, slice, text, utf16le};
use crate::direction::Direction;

/// Limits for one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmbConfig {
    /// Bytes kept from the start of each PDU for parsing; the rest is skipped by count.
    pub header_keep: usize,
    /// Distinct files remembered for the summary.
    pub max_files: usize,
    /// Open handles tracked at once.
    pub max_open: usize,
    /// Distinct shares remembered (and tree ids tracked at once).
    pub max_trees: usize,
    /// Requests awaiting their response.
    pub max_pending: usize,
    /// Longest name kept, in characters.
    pub max_name: usize,
}

impl Default for SmbConfig {
    fn default() -> SmbConfig {
        SmbConfig {
            header_keep: 1024,
            max_files: 1024,
            max_open: 4096,
            max_trees: 256,
            max_pending: 1024,
            max_name: 512,
        }
    }
}

/// Share type from a tree connect response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ShareKind {
    /// A disk share.
    #[serde(rename = "FILE")]
    Disk,
    /// IPC$: named pipes.
    #[serde(rename = "PIPE")]
    Pipe,
    /// A printer.
    #[serde(rename = "PRINT")]
    Print,
    /// Not known (response not seen).
    #[serde(rename = "unknown")]
    Unknown,
}

impl ShareKind {
    /// Suricata's `share_type` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ShareKind::Disk => "FILE",
            ShareKind::Pipe => "PIPE",
            ShareKind::Print => "PRINT",
            ShareKind::Unknown => "unknown",
        }
    }
}

/// What a CREATE opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A named pipe (IPC$).
    Pipe,
    /// I/O on a handle whose open was not seen.
    Unknown,
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IoOp {
    /// Bytes from server to client.
    Read,
    /// Bytes from client to server.
    Write,
}

/// NTLMSSP identity from an AUTHENTICATE message (Suricata's `ntlmssp`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Ntlmssp {
    /// Domain.
    pub domain: String,
    /// User.
    pub user: String,
    /// Workstation.
    pub host: String,
}

/// What the connection said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmbEvent {
    /// The dialect was negotiated.
    Negotiated {
        /// Dialect name (`3.11`, `2.??`, `NT LM 0.12` …).
        dialect: String,
        /// Signing required by either side.
        signing_required: bool,
        /// The server offers encryption (SMB 3.x).
        encryption_capable: bool,
    },
    /// A session setup finished.
    SessionSetup {
        /// Session id (SMB1: UID).
        session_id: u64,
        /// Succeeded.
        ok: bool,
        /// The server requires encryption for this session.
        encrypt_data: bool,
        /// NTLMSSP user, if the request carried one.
        user: Option<String>,
    },
    /// A share was connected.
    TreeConnected {
        /// `\\server\share`.
        share: String,
        /// Disk, pipe, print.
        kind: ShareKind,
        /// The share requires encryption.
        encrypt_data: bool,
    },
    /// A file, directory or pipe was opened; `file` indexes [`SmbConnection::files`].
    FileOpened {
        /// Index into the file list.
        file: usize,
    },
    /// Bytes read or written; `file` indexes [`SmbConnection::files`] when known.
    Io {
        /// Read or write.
        op: IoOp,
        /// Payload bytes (clamped to the PDU).
        bytes: u64,
        /// Index into the file list.
        file: Option<usize>,
    },
    /// A handle was closed.
    FileClosed {
        /// Index into the file list.
        file: usize,
    },
    /// An encrypted (TRANSFORM) PDU of a session not reported before: contents are hidden.
    Encrypted {
        /// Session id from the transform header.
        session_id: u64,
    },
    /// The first compressed PDU.
    Compressed,
    /// A finished request/response pair (boxed: it is much larger than the other events).
    Transaction(Box<SmbTransaction>),
    /// Malformed or unexpected input.
    Anomaly(&'static str),
}

/// Suricata's EVE `smb` object (for the commands this module logs) plus our file totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SmbTransaction {
    /// Per-connection transaction number.
    pub id: u64,
    /// Negotiated dialect, or `unknown`.
    pub dialect: String,
    /// `SMB2_COMMAND_CREATE`, `SMB1_COMMAND_NT_CREATE_ANDX` …
    pub command: &'static str,
    /// Status name (`STATUS_SUCCESS` …) or the hex code when unnamed.
    pub status: String,
    /// Status as hex (`0x0`).
    pub status_code: String,
    /// SMB2 session id / SMB1 UID.
    pub session_id: u64,
    /// Tree id.
    pub tree_id: u32,
    /// CREATE/CLOSE file name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// CREATE disposition (`FILE_OPEN` …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disposition: Option<&'static str>,
    /// `normal` or `delete on close`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access: Option<&'static str>,
    /// File size from the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// SMB2 FileId as a GUID string, SMB1 FID as hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuid: Option<String>,
    /// Share name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    /// `FILE`, `PIPE`, `PRINT`, `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share_type: Option<&'static str>,
    /// Dialects the client offered.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub client_dialects: Vec<String>,
    /// NTLMSSP identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ntlmssp: Option<Ntlmssp>,
    /// File, directory or pipe (CREATE/CLOSE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<FileKind>,
    /// Bytes read through this handle's file so far (CLOSE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_read: Option<u64>,
    /// Bytes written to this handle's file so far (CLOSE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_written: Option<u64>,
}

/// A share seen on the connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmbTree {
    /// `\\server\share`.
    pub share: String,
    /// Share type.
    pub kind: ShareKind,
    /// Encryption required on this share.
    pub encrypt_data: bool,
    /// Successful connects.
    pub connects: u64,
}

/// A file, directory or pipe seen on the connection, with its byte totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SmbFile {
    /// Name as sent in CREATE (`None` when only I/O on an unknown handle was seen).
    pub name: Option<String>,
    /// Share it lives on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub share: Option<String>,
    /// File, directory, pipe.
    pub kind: FileKind,
    /// Handle id of the first open (GUID / FID hex).
    pub fuid: String,
    /// Successful opens.
    pub opens: u64,
    /// Some open created or overwrote it.
    pub created: bool,
    /// Some open asked for delete-on-close.
    pub delete_on_close: bool,
    /// Latest size the server reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// READ operations.
    pub reads: u64,
    /// Bytes read.
    pub bytes_read: u64,
    /// WRITE operations.
    pub writes: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

/// Per-connection counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SmbCounters {
    /// NBSS PDUs framed.
    pub pdus: u64,
    /// SMB2 messages (each compounded command counts).
    pub smb2_messages: u64,
    /// SMB1 messages (each AndX command counts).
    pub smb1_messages: u64,
    /// TRANSFORM (encrypted) PDUs.
    pub encrypted_pdus: u64,
    /// Encrypted bytes client → server (flow direction).
    pub encrypted_bytes_toserver: u64,
    /// Encrypted bytes server → client (flow direction).
    pub encrypted_bytes_toclient: u64,
    /// Compressed PDUs.
    pub compressed_pdus: u64,
    /// PDU bytes skipped by count (not kept for parsing).
    pub skipped_bytes: u64,
    /// Gaps in the byte stream (unknown or known size).
    pub gaps: u64,
    /// Bytes reported missing through [`SmbConnection::skip`].
    pub hole_bytes: u64,
    /// Times the framing was lost and a header searched for.
    pub resyncs: u64,
    /// Bytes discarded while searching for a header.
    pub resync_bytes: u64,
    /// Anomaly events raised.
    pub anomalies: u64,
    /// Requests dropped from the pending table when it was full.
    pub pending_evicted: u64,
    /// Responses with no matching request.
    pub unmatched_responses: u64,
    /// Compound chains cut by the kept-bytes limit.
    pub compound_truncated: u64,
    /// Files not remembered because the file list was full.
    pub files_dropped: u64,
    /// Opens not tracked because the open-handle table was full.
    pub opens_dropped: u64,
    /// Shares not remembered because the tree table was full.
    pub trees_dropped: u64,
    /// I/O bytes not attributable to any file (handle unknown and not trackable).
    pub unattributed_bytes: u64,
}

/// Per-connection summary for the `session` record.
#[derive(Debug, Clone, Serialize)]
pub struct SmbSummary<'a> {
    /// Negotiated dialect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dialect: Option<&'a str>,
    /// SMB1 messages were seen.
    pub smb1: bool,
    /// SMB2/3 messages were seen.
    pub smb2: bool,
    /// Signing required by either side.
    pub signing_required: bool,
    /// The server offered encryption.
    pub encryption_capable: bool,
    /// A session or share required encryption.
    pub encryption_required: bool,
    /// Encrypted PDUs were seen: contents are hidden from the sensor.
    pub encrypted: bool,
    /// Compressed PDUs were seen.
    pub compressed: bool,
    /// NTLMSSP users that authenticated.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub users: &'a [String],
    /// Shares connected.
    pub trees: &'a [SmbTree],
    /// Files, directories and pipes opened, with byte totals.
    pub files: &'a [SmbFile],
    /// Bytes read from files (pipes excluded).
    pub file_bytes_read: u64,
    /// Bytes written to files (pipes excluded).
    pub file_bytes_written: u64,
    /// Counters.
    pub counters: &'a SmbCounters,
}

const NT_STATUS_SUCCESS: u32 = 0;
const STATUS_PENDING: u32 = 0x0000_0103;
const STATUS_BUFFER_OVERFLOW: u32 = 0x8000_0005;
const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;

/// Names for the statuses file transfer commonly meets.
fn status_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x0000_0000 => "STATUS_SUCCESS",
        0x0000_0103 => "STATUS_PENDING",
        0x0000_010C => "STATUS_NOTIFY_ENUM_DIR",
        0x8000_0005 => "STATUS_BUFFER_OVERFLOW",
        0x8000_0006 => "STATUS_NO_MORE_FILES",
        0xC000_000D => "STATUS_INVALID_PARAMETER",
        0xC000_000F => "STATUS_NO_SUCH_FILE",
        0xC000_0010 => "STATUS_INVALID_DEVICE_REQUEST",
        0xC000_0011 => "STATUS_END_OF_FILE",
        0xC000_0016 => "STATUS_MORE_PROCESSING_REQUIRED",
        0xC000_0022 => "STATUS_ACCESS_DENIED",
        0xC000_0034 => "STATUS_OBJECT_NAME_NOT_FOUND",
        0xC000_0035 => "STATUS_OBJECT_NAME_COLLISION",
        0xC000_003A => "STATUS_OBJECT_PATH_NOT_FOUND",
        0xC000_0043 => "STATUS_SHARING_VIOLATION",
        0xC000_0056 => "STATUS_DELETE_PENDING",
        0xC000_006D => "STATUS_LOGON_FAILURE",
        0xC000_00BA => "STATUS_FILE_IS_A_DIRECTORY",
        0xC000_00BB => "STATUS_NOT_SUPPORTED",
        0xC000_00CC => "STATUS_BAD_NETWORK_NAME",
        0xC000_0103 => "STATUS_NOT_A_DIRECTORY",
        0xC000_0120 => "STATUS_CANCELLED",
        0xC000_0203 => "STATUS_USER_SESSION_DELETED",
        0xC000_0225 => "STATUS_NOT_FOUND",
        0xC000_035C => "STATUS_NETWORK_SESSION_EXPIRED",
        _ => return None,
    })
}

/// SMB2 dialect revision to Suricata's name.
fn smb2_dialect_name(d: u16) -> &'static str {
    match d {
        0x0202 => "2.02",
        0x0210 => "2.10",
        0x0222 => "2.22",
        0x0224 => "2.24",
        0x0300 => "3.00",
        0x0302 => "3.02",
        0x0310 => "3.10",
        0x0311 => "3.11",
        0x02ff => "2.??",
        _ => "unknown",
    }
}

fn disposition_name(d: u32) -> Option<&'static str> {
    Some(match d {
        0 => "FILE_SUPERSEDE",
        1 => "FILE_OPEN",
        2 => "FILE_CREATE",
        3 => "FILE_OPEN_IF",
        4 => "FILE_OVERWRITE",
        5 => "FILE_OVERWRITE_IF",
        _ => return None,
    })
}

/// SMB2 commands (MS-SMB2 2.2.1).
mod cmd2 {
    pub const NEGOTIATE: u16 = 0;
    pub const SESSION_SETUP: u16 = 1;
    pub const LOGOFF: u16 = 2;
    pub const TREE_CONNECT: u16 = 3;
    pub const TREE_DISCONNECT: u16 = 4;
    pub const CREATE: u16 = 5;
    pub const CLOSE: u16 = 6;
    pub const READ: u16 = 8;
    pub const WRITE: u16 = 9;

    pub fn name(c: u16) -> &'static str {
        match c {
            NEGOTIATE => "SMB2_COMMAND_NEGOTIATE_PROTOCOL",
            SESSION_SETUP => "SMB2_COMMAND_SESSION_SETUP",
            LOGOFF => "SMB2_COMMAND_SESSION_LOGOFF",
            TREE_CONNECT => "SMB2_COMMAND_TREE_CONNECT",
            TREE_DISCONNECT => "SMB2_COMMAND_TREE_DISCONNECT",
            CREATE => "SMB2_COMMAND_CREATE",
            CLOSE => "SMB2_COMMAND_CLOSE",
            READ => "SMB2_COMMAND_READ",
            WRITE => "SMB2_COMMAND_WRITE",
            _ => "SMB2_COMMAND_UNKNOWN",
        }
    }
}

/// SMB1 commands (MS-CIFS 2.2.2.1).
mod cmd1 {
    pub const CLOSE: u8 = 0x04;
    pub const READ_ANDX: u8 = 0x2e;
    pub const WRITE_ANDX: u8 = 0x2f;
    pub const TREE_DISCONNECT: u8 = 0x71;
    pub const NEGOTIATE: u8 = 0x72;
    pub const SESSION_SETUP_ANDX: u8 = 0x73;
    pub const LOGOFF_ANDX: u8 = 0x74;
    pub const TREE_CONNECT_ANDX: u8 = 0x75;
    pub const NT_CREATE_ANDX: u8 = 0xa2;
    /// No further AndX command.
    pub const NONE: u8 = 0xff;

    pub fn name(c: u8) -> &'static str {
        match c {
            CLOSE => "SMB1_COMMAND_CLOSE",
            READ_ANDX => "SMB1_COMMAND_READ_ANDX",
            WRITE_ANDX => "SMB1_COMMAND_WRITE_ANDX",
            TREE_DISCONNECT => "SMB1_COMMAND_TREE_DISCONNECT",
            NEGOTIATE => "SMB1_COMMAND_NEGOTIATE_PROTOCOL",
            SESSION_SETUP_ANDX => "SMB1_COMMAND_SESSION_SETUP_ANDX",
            LOGOFF_ANDX => "SMB1_COMMAND_LOGOFF_ANDX",
            TREE_CONNECT_ANDX => "SMB1_COMMAND_TREE_CONNECT_ANDX",
            NT_CREATE_ANDX => "SMB1_COMMAND_NT_CREATE_ANDX",
            _ => "SMB1_COMMAND_UNKNOWN",
        }
    }

    /// Commands whose parameter block starts with an AndX header.
    pub fn is_andx(c: u8) -> bool {
        matches!(
            c,
            READ_ANDX
                | WRITE_ANDX
                | SESSION_SETUP_ANDX
                | LOGOFF_ANDX
                | TREE_CONNECT_ANDX
                | NT_CREATE_ANDX
        )
    }
}

/// SMB2 header size.
const SMB2_HDR: usize = 64;
/// SMB1 header size.
const SMB1_HDR: usize = 32;
/// A FileId of all ones: "the file opened by the previous command of this compound".
const RELATED_FID: [u8; 16] = [0xff; 16];

/// A handle: SMB2 FileId or SMB1 FID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FileKey {
    V2([u8; 16]),
    V1(u16),
}

impl FileKey {
    /// GUID-style for SMB2 (as Windows prints GUIDs), 4 hex digits for SMB1.
    fn fuid(&self) -> String {
        let mut s = String::with_capacity(36);
        match self {
            FileKey::V1(fid) => {
                let _ = write!(s, "{fid:04x}");
            }
            FileKey::V2(b) => {
                let d1 = le32(b, 0).unwrap_or(0);
                let d2 = le16(b, 4).unwrap_or(0);
                let d3 = le16(b, 6).unwrap_or(0);
                let _ = write!(s, "{d1:08x}-{d2:04x}-{d3:04x}-");
                for (i, x) in b.iter().enumerate().skip(8) {
                    if i == 10 {
                        s.push('-');
                    }
                    let _ = write!(s, "{x:02x}");
                }
            }
        }
        s
    }
}

/// What a pending request needs when its response arrives.
#[derive(Debug, Clone)]
enum Req {
    Plain,
    Negotiate {
        dialects: Vec<String>,
    },
    SessionSetup {
        ntlm: Option<Ntlmssp>,
    },
    TreeConnect {
        path: String,
    },
    Create {
        name: String,
        disposition: u32,
        options: u32,
    },
    Close {
        fid: Option<FileKey>,
    },
    Read {
        fid: Option<FileKey>,
    },
    Write {
        fid: Option<FileKey>,
        deferred: u64,
    },
}

#[derive(Debug, Clone)]
struct Pending {
    command: u16,
    tree_id: u32,
    req: Req,
}

/// NBSS framing state for one direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading the 4-byte NBSS header.
    Header,
    /// Inside a PDU.
    Body,
    /// Framing lost: scanning for a plausible header.
    Resync,
}

/// The data bytes of one READ/WRITE inside a PDU, counted as they pass through the framer
/// so a file is credited only with bytes actually seen (or known to lie in a sized hole).
#[derive(Debug, Clone, Copy)]
struct IoPlan {
    op: IoOp,
    file: Option<usize>,
    /// Offset of the data from the start of the PDU (after the NBSS header).
    start: u64,
    /// Data length, clamped to the PDU.
    len: u64,
    seen: u64,
    /// A compound WRITE whose file only the CREATE response will name: its request key.
    defer: Option<(u8, u64)>,
}

impl IoPlan {
    /// Credits the part of PDU bytes `[from, to)` that falls in the data.
    fn pass(&mut self, from: u64, to: u64) {
        let a = from.max(self.start);
        let b = to.min(self.start.saturating_add(self.len));
        if b > a {
            self.seen += b - a;
        }
    }
}

/// Bytes of a possible header start carried between chunks while resynchronising.
const TAIL: usize = 9;
/// Bytes needed to judge a header candidate: NBSS (4) + protocol id (4) + 2.
const PROBE: usize = 10;

#[derive(Debug, Clone)]
struct Framer {
    phase: Phase,
    hdr: [u8; 4],
    hdr_len: usize,
    ty: u8,
    pdu_len: u32,
    consumed: u32,
    kept: Vec<u8>,
    processed: bool,
    plans: Vec<IoPlan>,
    tail: [u8; TAIL],
    tail_len: usize,
}

/// Where a resync scan found a header.
enum Hit {
    /// At this offset of the carried tail.
    Tail(usize),
    /// At this offset of the new data.
    Data(usize),
}

/// A plausible NBSS session message carrying an SMB PDU.
fn plausible_header(h: &[u8; PROBE]) -> bool {
    let [0, l1, l2, l3, p0, b'S', b'M', b'B', s0, s1] = *h else {
        return false;
    };
    let len = u32::from_be_bytes([0, l1, l2, l3]);
    match p0 {
        0xfe => len >= 64 && [s0, s1] == [64, 0],
        0xff => len >= 35,
        0xfd => len >= 52,
        0xfc => len >= 16,
        _ => false,
    }
}

impl Framer {
    fn new() -> Framer {
        Framer {
            phase: Phase::Header,
            hdr: [0; 4],
            hdr_len: 0,
            ty: 0,
            pdu_len: 0,
            consumed: 0,
            kept: Vec::new(),
            processed: false,
            plans: Vec::new(),
            tail: [0; TAIL],
            tail_len: 0,
        }
    }

    fn lose_sync(&mut self, st: &mut State, tail: &[u8], out: &mut Vec<SmbEvent>) {
        self.settle(st, out);
        self.phase = Phase::Resync;
        self.hdr_len = 0;
        self.kept.clear();
        self.tail_len = 0;
        self.push_tail(tail);
    }

    /// Takes over the I/O plans the parser just made for this PDU, crediting the bytes
    /// already consumed.
    fn adopt(&mut self, st: &mut State) {
        let now = u64::from(self.consumed);
        for mut p in st.plans.drain(..) {
            p.pass(0, now);
            self.plans.push(p);
        }
    }

    /// Books every plan of the current PDU with what it saw.
    fn settle(&mut self, st: &mut State, out: &mut Vec<SmbEvent>) {
        for p in self.plans.drain(..) {
            st.book(p, out);
        }
    }

    /// Parses the kept prefix now (once per PDU).
    fn process(&mut self, st: &mut State, dir: Direction, out: &mut Vec<SmbEvent>) {
        if !self.processed {
            self.processed = true;
            st.pdu(dir, self.ty, &self.kept, self.pdu_len, out);
            self.adopt(st);
        }
    }

    /// Ends the current PDU when all its bytes are accounted for.
    fn end_if_complete(&mut self, st: &mut State, out: &mut Vec<SmbEvent>) {
        if self.phase == Phase::Body && self.consumed >= self.pdu_len {
            self.settle(st, out);
            self.phase = Phase::Header;
            self.hdr_len = 0;
        }
    }

    /// Appends to the carried tail, keeping only its last `TAIL` bytes.
    fn push_tail(&mut self, data: &[u8]) {
        for &b in data.iter().rev().take(TAIL).rev() {
            if self.tail_len == TAIL {
                self.tail.copy_within(1.., 0);
                self.tail_len -= 1;
            }
            if let Some(slot) = self.tail.get_mut(self.tail_len) {
                *slot = b;
                self.tail_len += 1;
            }
        }
    }

    fn find(&self, data: &[u8]) -> Option<Hit> {
        let tail = self.tail.get(..self.tail_len).unwrap_or_default();
        let joined = tail.iter().chain(data.iter());
        for p in 0..tail.len() {
            let mut h = [0u8; PROBE];
            let mut n = 0;
            for (slot, b) in h.iter_mut().zip(joined.clone().skip(p)) {
                *slot = *b;
                n += 1;
            }
            if n < PROBE {
                return None;
            }
            if plausible_header(&h) {
                return Some(Hit::Tail(p));
            }
        }
        data.windows(PROBE)
            .position(|w| {
                let h: &[u8; PROBE] = w.try_into().unwrap_or(&[1; PROBE]);
                plausible_header(h)
            })
            .map(Hit::Data)
    }

    /// Frames as much of `data` as possible; returns what is left when framing is lost.
    fn pump<'d>(
        &mut self,
        st: &mut State,
        dir: Direction,
        mut data: &'d [u8],
        out: &mut Vec<SmbEvent>,
    ) -> &'d [u8] {
        loop {
            match self.phase {
                Phase::Resync => return data,
                Phase::Header => {
                    let need = 4usize.saturating_sub(self.hdr_len);
                    let (head, rest) = data.split_at(need.min(data.len()));
                    for &b in head {
                        if let Some(slot) = self.hdr.get_mut(self.hdr_len) {
                            *slot = b;
                            self.hdr_len += 1;
                        }
                    }
                    data = rest;
                    if self.hdr_len < 4 {
                        return data;
                    }
                    let [ty, l1, l2, l3] = self.hdr;
                    let len = u32::from_be_bytes([0, l1, l2, l3]);
                    // 0x81–0x85 are session request/responses and keepalive: all short.
                    let ok = ty == 0x00 || ((0x81..=0x85).contains(&ty) && len <= 0xffff);
                    if !ok {
                        st.anomaly("smb.nbss_invalid_header", out);
                        st.counters.resyncs += 1;
                        let hdr = self.hdr;
                        self.lose_sync(st, hdr.get(1..).unwrap_or_default(), out);
                        return data;
                    }
                    st.counters.pdus += 1;
                    self.ty = ty;
                    self.pdu_len = len;
                    self.consumed = 0;
                    self.kept.clear();
                    self.processed = false;
                    self.phase = Phase::Body;
                    if len == 0 {
                        st.pdu(dir, ty, &[], 0, out);
                        self.phase = Phase::Header;
                        self.hdr_len = 0;
                    }
                }
                Phase::Body => {
                    if data.is_empty() {
                        return data;
                    }
                    let remaining = self.pdu_len.saturating_sub(self.consumed) as usize;
                    let (chunk, rest) = data.split_at(remaining.min(data.len()));
                    let before = u64::from(self.consumed);
                    if !self.processed {
                        let room = st.cfg.header_keep.saturating_sub(self.kept.len());
                        let keep = chunk.get(..room).unwrap_or(chunk);
                        self.kept.extend_from_slice(keep);
                        st.counters.skipped_bytes += (chunk.len() - keep.len()) as u64;
                    } else {
                        st.counters.skipped_bytes += chunk.len() as u64;
                    }
                    self.consumed = self
                        .consumed
                        .saturating_add(u32::try_from(chunk.len()).unwrap_or(u32::MAX));
                    data = rest;
                    let now = u64::from(self.consumed);
                    for p in &mut self.plans {
                        p.pass(before, now);
                    }
                    let complete = self.consumed >= self.pdu_len;
                    if complete || self.kept.len() >= st.cfg.header_keep {
                        // Enough to parse: headers and fixed parts are all within the kept
                        // prefix, so a large WRITE is understood before its data arrives.
                        self.process(st, dir, out);
                    }
                    if complete {
                        self.settle(st, out);
                        self.phase = Phase::Header;
                        self.hdr_len = 0;
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
struct TreeRef {
    share: String,
    kind: ShareKind,
}

/// Connection state shared by both directions.
#[derive(Debug, Clone)]
struct State {
    cfg: SmbConfig,
    dialect: Option<String>,
    smb1: bool,
    smb2: bool,
    signing_required: bool,
    encryption_capable: bool,
    encryption_required: bool,
    encrypted: bool,
    last_encrypted_session: Option<u64>,
    compressed: bool,
    pending: BTreeMap<(u8, u64), Pending>,
    trees: HashMap<(u64, u32), TreeRef>,
    tree_list: Vec<SmbTree>,
    open: HashMap<FileKey, usize>,
    files: Vec<SmbFile>,
    file_index: HashMap<(String, String), usize>,
    users: Vec<String>,
    file_bytes_read: u64,
    file_bytes_written: u64,
    next_tx: u64,
    /// I/O plans made while parsing the current PDU, handed to its framer.
    plans: Vec<IoPlan>,
    /// Offset of the SMB2 message being parsed within its PDU.
    base: usize,
    counters: SmbCounters,
}

/// State of one SMB connection.
#[derive(Debug, Clone)]
pub struct SmbConnection {
    ts: Framer,
    tc: Framer,
    st: State,
}

impl SmbConnection {
    /// A new connection.
    pub fn new(cfg: SmbConfig) -> SmbConnection {
        SmbConnection {
            ts: Framer::new(),
            tc: Framer::new(),
            st: State {
                cfg,
                dialect: None,
                smb1: false,
                smb2: false,
                signing_required: false,
                encryption_capable: false,
                encryption_required: false,
                encrypted: false,
                last_encrypted_session: None,
                compressed: false,
                pending: BTreeMap::new(),
                trees: HashMap::new(),
                tree_list: Vec::new(),
                open: HashMap::new(),
                files: Vec::new(),
                file_index: HashMap::new(),
                users: Vec::new(),
                file_bytes_read: 0,
                file_bytes_written: 0,
                next_tx: 0,
                plans: Vec::new(),
                base: 0,
                counters: SmbCounters::default(),
            },
        }
    }

    /// Feeds new in-order bytes of one direction; `gap` says bytes are missing before them.
    pub fn feed(&mut self, dir: Direction, data: &[u8], gap: bool, out: &mut Vec<SmbEvent>) {
        let st = &mut self.st;
        let framer = match dir {
            Direction::ToServer => &mut self.ts,
            Direction::ToClient => &mut self.tc,
        };
        if gap {
            st.counters.gaps += 1;
            // A gap inside a PDU body that is being skipped anyway loses nothing we parse,
            // but its size is unknown, so the framing cannot be trusted: rescan.
            if framer.phase != Phase::Resync {
                st.counters.resyncs += 1;
            }
            framer.lose_sync(st, &[], out);
        }
        let mut data = data;
        // Each pass consumes bytes or turns a carried-tail hit into framing; the bound
        // only guards against a logic error turning into a hang.
        let mut passes = data.len().saturating_mul(2).saturating_add(16);
        while !data.is_empty() && passes > 0 {
            passes -= 1;
            if framer.phase == Phase::Resync {
                match framer.find(data) {
                    None => {
                        st.counters.resync_bytes += data.len() as u64;
                        framer.push_tail(data);
                        return;
                    }
                    Some(Hit::Data(p)) => {
                        st.counters.resync_bytes += p as u64;
                        framer.phase = Phase::Header;
                        framer.hdr_len = 0;
                        framer.tail_len = 0;
                        data = data.get(p..).unwrap_or_default();
                    }
                    Some(Hit::Tail(p)) => {
                        let tail = framer.tail;
                        let n = framer.tail_len;
                        framer.phase = Phase::Header;
                        framer.hdr_len = 0;
                        framer.tail_len = 0;
                        let carried = tail.get(p..n).unwrap_or_default();
                        let _ = framer.pump(st, dir, carried, out);
                    }
                }
                continue;
            }
            data = framer.pump(st, dir, data, out);
        }
    }

    /// Exactly `len` bytes of one direction are missing at this point (a TCP hole of known
    /// size, or the tail of a segment cut by the snap length). Inside a PDU body the framing
    /// survives: the hole is skipped by count, and hole bytes that fall in READ/WRITE data
    /// are credited to the file, since the PDU proves where they belong. Anywhere else the
    /// framing is lost and resynchronised as for `feed(…, gap = true)`.
    pub fn skip(&mut self, dir: Direction, len: u64, out: &mut Vec<SmbEvent>) {
        if len == 0 {
            return;
        }
        let st = &mut self.st;
        let framer = match dir {
            Direction::ToServer => &mut self.ts,
            Direction::ToClient => &mut self.tc,
        };
        st.counters.gaps += 1;
        st.counters.hole_bytes += len;
        let remaining = u64::from(framer.pdu_len.saturating_sub(framer.consumed));
        if framer.phase == Phase::Body && len <= remaining {
            // Parse what is kept before the hole breaks the prefix.
            framer.process(st, dir, out);
            let before = u64::from(framer.consumed);
            framer.consumed = framer
                .consumed
                .saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
            let now = u64::from(framer.consumed);
            for p in &mut framer.plans {
                p.pass(before, now);
            }
            framer.end_if_complete(st, out);
            return;
        }
        if framer.phase != Phase::Resync {
            st.counters.resyncs += 1;
        }
        framer.lose_sync(st, &[], out);
    }

    /// Books the I/O of PDUs cut off by the end of the connection.
    pub fn finish(&mut self, out: &mut Vec<SmbEvent>) {
        self.ts.settle(&mut self.st, out);
        self.tc.settle(&mut self.st, out);
    }

    /// Files, directories and pipes seen, in first-seen order.
    pub fn files(&self) -> &[SmbFile] {
        &self.st.files
    }

    /// One file by the index an event carried.
    pub fn file(&self, index: usize) -> Option<&SmbFile> {
        self.st.files.get(index)
    }

    /// Shares seen.
    pub fn trees(&self) -> &[SmbTree] {
        &self.st.tree_list
    }

    /// Negotiated dialect.
    pub fn dialect(&self) -> Option<&str> {
        self.st.dialect.as_deref()
    }

    /// Encrypted PDUs were seen.
    pub fn encrypted(&self) -> bool {
        self.st.encrypted
    }

    /// Counters so far.
    pub fn counters(&self) -> &SmbCounters {
        &self.st.counters
    }

    /// The per-connection summary.
    pub fn summary(&self) -> SmbSummary<'_> {
        let s = &self.st;
        SmbSummary {
            dialect: s.dialect.as_deref(),
            smb1: s.smb1,
            smb2: s.smb2,
            signing_required: s.signing_required,
            encryption_capable: s.encryption_capable,
            encryption_required: s.encryption_required,
            encrypted: s.encrypted,
            compressed: s.compressed,
            users: &s.users,
            trees: &s.tree_list,
            files: &s.files,
            file_bytes_read: s.file_bytes_read,
            file_bytes_written: s.file_bytes_written,
            counters: &s.counters,
        }
    }
}

/// The parsed fixed part of an SMB2 header.
#[derive(Debug, Clone, Copy)]
struct Smb2Hdr {
    command: u16,
    status: u32,
    flags: u32,
    next: u32,
    message_id: u64,
    tree_id: u32,
    session_id: u64,
}

impl Smb2Hdr {
    const RESPONSE: u32 = 0x1;
    const ASYNC: u32 = 0x2;
    const RELATED: u32 = 0x4;

    fn parse(m: &[u8]) -> Option<Smb2Hdr> {
        if m.get(..4)? != b"\xfeSMB" || le16(m, 4)? != 64 {
            return None;
        }
        let flags = le32(m, 16)?;
        Some(Smb2Hdr {
            command: le16(m, 12)?,
            status: le32(m, 8)?,
            flags,
            next: le32(m, 20)?,
            message_id: le64(m, 24)?,
            // Async messages carry an AsyncId where the TreeId would be.
            tree_id: if flags & Smb2Hdr::ASYNC != 0 {
                0
            } else {
                le32(m, 36)?
            },
            session_id: le64(m, 40)?,
        })
    }

    fn is_response(&self) -> bool {
        self.flags & Smb2Hdr::RESPONSE != 0
    }
}

/// A UTF-16LE string at `off`/`len` measured from the message start.
fn utf16_at(m: &[u8], off: usize, len: usize, max: usize) -> Option<String> {
    // A cut-off name (beyond the kept bytes) still yields its first characters.
    let s = m.get(off..)?;
    Some(utf16le(s.get(..len).unwrap_or(s), max))
}

/// Finds an NTLMSSP AUTHENTICATE message in a security blob and reads its identity.
fn ntlmssp_auth(blob: &[u8], max: usize) -> Option<Ntlmssp> {
    const SIG: &[u8] = b"NTLMSSP\0";
    let start = blob.windows(SIG.len()).position(|w| w == SIG)?;
    let msg = blob.get(start..)?;
    if le32(msg, 8)? != 3 {
        return None;
    }
    let unicode = le32(msg, 60).is_some_and(|f| f & 1 != 0);
    let field = |at: usize| -> String {
        let len = le16(msg, at).map_or(0, usize::from);
        let off = le32(msg, at + 4).map_or(0, |o| o as usize);
        match slice(msg, off, len) {
            Some(b) if unicode => utf16le(b, max),
            Some(b) => text(b, max),
            None => String::new(),
        }
    };
    Some(Ntlmssp {
        domain: field(28),
        user: field(36),
        host: field(44),
    })
}

/// A NUL-terminated string at `off` (UTF-16LE when `unicode`), bounded.
fn smb1_string(m: &[u8], off: usize, unicode: bool, max: usize) -> Option<String> {
    let s = m.get(off..)?;
    if unicode {
        let end = s
            .chunks_exact(2)
            .position(|c| c == [0, 0])
            .map_or(s.len(), |i| i * 2);
        Some(utf16le(s.get(..end).unwrap_or(s), max))
    } else {
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        Some(text(s.get(..end).unwrap_or(s), max))
    }
}

impl State {
    fn anomaly(&mut self, what: &'static str, out: &mut Vec<SmbEvent>) {
        self.counters.anomalies += 1;
        out.push(SmbEvent::Anomaly(what));
    }

    fn pdu(&mut self, dir: Direction, ty: u8, kept: &[u8], len: u32, out: &mut Vec<SmbEvent>) {
        if ty != 0x00 {
            // Session request/response and keepalive carry no SMB.
            return;
        }
        match kept.get(..4) {
            Some(b"\xfeSMB") => self.smb2_chain(kept, len as usize, out),
            Some(b"\xffSMB") => self.smb1(kept, len as usize, out),
            Some(b"\xfdSMB") => {
                self.counters.encrypted_pdus += 1;
                match dir {
                    Direction::ToServer => self.counters.encrypted_bytes_toserver += u64::from(len),
                    Direction::ToClient => self.counters.encrypted_bytes_toclient += u64::from(len),
                }
                self.encrypted = true;
                let session_id = le64(kept, 44).unwrap_or(0);
                if self.last_encrypted_session != Some(session_id) {
                    self.last_encrypted_session = Some(session_id);
                    out.push(SmbEvent::Encrypted { session_id });
                }
            }
            Some(b"\xfcSMB") => {
                self.counters.compressed_pdus += 1;
                if !self.compressed {
                    self.compressed = true;
                    out.push(SmbEvent::Compressed);
                }
            }
            _ => self.anomaly("smb.unknown_protocol", out),
        }
    }

    fn next_tx(&mut self) -> u64 {
        self.next_tx += 1;
        self.next_tx
    }

    fn tx(
        &mut self,
        command: &'static str,
        status: u32,
        session_id: u64,
        tree_id: u32,
    ) -> SmbTransaction {
        SmbTransaction {
            id: self.next_tx(),
            dialect: self.dialect.clone().unwrap_or_else(|| "unknown".to_owned()),
            command,
            status: status_name(status).map_or_else(|| format!("0x{status:x}"), str::to_owned),
            status_code: format!("0x{status:x}"),
            session_id,
            tree_id,
            ..SmbTransaction::default()
        }
    }

    fn add_pending(&mut self, key: (u8, u64), p: Pending) {
        if self.pending.len() >= self.cfg.max_pending.max(1) && !self.pending.contains_key(&key) {
            // Oldest first: message ids grow, so the smallest key waited longest.
            self.pending.pop_first();
            self.counters.pending_evicted += 1;
        }
        self.pending.insert(key, p);
    }

    fn smb2_chain(&mut self, kept: &[u8], total: usize, out: &mut Vec<SmbEvent>) {
        self.smb2 = true;
        let mut off = 0usize;
        let mut related: Option<FileKey> = None;
        while let Some(m) = kept.get(off..) {
            let Some(h) = Smb2Hdr::parse(m) else {
                self.anomaly("smb.smb2_header_malformed", out);
                return;
            };
            self.counters.smb2_messages += 1;
            let next = h.next as usize;
            let (msg, declared) = if next == 0 {
                (m, total.saturating_sub(off))
            } else {
                (m.get(..next).unwrap_or(m), next)
            };
            self.base = off;
            if h.is_response() {
                self.smb2_response(&h, msg, declared, &mut related, out);
            } else {
                self.smb2_request(&h, msg, declared, &mut related, out);
            }
            if next == 0 {
                return;
            }
            if next < SMB2_HDR || !next.is_multiple_of(8) {
                self.anomaly("smb.smb2_bad_next_command", out);
                return;
            }
            off = off.saturating_add(next);
            if off >= kept.len() {
                if off < total {
                    self.counters.compound_truncated += 1;
                }
                return;
            }
        }
    }

    /// The FileId at `off`, resolving the compound "related" placeholder.
    fn fid2(m: &[u8], off: usize, h: &Smb2Hdr, related: Option<FileKey>) -> Option<FileKey> {
        let b: [u8; 16] = slice(m, off, 16)?.try_into().ok()?;
        if b == RELATED_FID && h.flags & Smb2Hdr::RELATED != 0 {
            related
        } else {
            Some(FileKey::V2(b))
        }
    }

    fn smb2_request(
        &mut self,
        h: &Smb2Hdr,
        m: &[u8],
        declared: usize,
        related: &mut Option<FileKey>,
        out: &mut Vec<SmbEvent>,
    ) {
        let body = m.get(SMB2_HDR..).unwrap_or_default();
        let max = self.cfg.max_name;
        let req = match h.command {
            cmd2::NEGOTIATE => {
                let count = le16(body, 2).map_or(0, usize::from);
                if le16(body, 4).is_some_and(|s| s & 0x2 != 0) {
                    self.signing_required = true;
                }
                let dialects = (0..count.min(16))
                    .filter_map(|i| le16(body, 36 + 2 * i))
                    .map(|d| smb2_dialect_name(d).to_owned())
                    .collect();
                Req::Negotiate { dialects }
            }
            cmd2::SESSION_SETUP => Req::SessionSetup {
                ntlm: ntlmssp_auth(body, max),
            },
            cmd2::TREE_CONNECT => {
                let off = le16(body, 4).map_or(0, usize::from);
                let len = le16(body, 6).map_or(0, usize::from);
                Req::TreeConnect {
                    path: utf16_at(m, off, len, max).unwrap_or_default(),
                }
            }
            cmd2::CREATE => {
                let off = le16(body, 44).map_or(0, usize::from);
                let len = le16(body, 46).map_or(0, usize::from);
                Req::Create {
                    name: utf16_at(m, off, len, max).unwrap_or_default(),
                    disposition: le32(body, 36).unwrap_or(u32::MAX),
                    options: le32(body, 40).unwrap_or(0),
                }
            }
            cmd2::CLOSE => Req::Close {
                fid: State::fid2(body, 8, h, *related),
            },
            cmd2::READ => Req::Read {
                fid: State::fid2(body, 16, h, *related),
            },
            cmd2::WRITE => {
                let data_off = le16(body, 2).map_or(0, usize::from);
                let length = le32(body, 4).map_or(0, u64::from);
                // Never more than the message actually carries after its data offset.
                let start = data_off.max(SMB2_HDR + 48);
                let bytes = length.min(declared.saturating_sub(start) as u64);
                let fid = State::fid2(body, 16, h, *related);
                let placeholder = slice(body, 16, 16) == Some(&RELATED_FID[..]);
                // Related to a CREATE whose FileId only its response will tell: the bytes
                // wait in the pending request.
                let defer = (fid.is_none() && placeholder).then_some((2, h.message_id));
                self.plan(IoOp::Write, fid, start, bytes, defer, out);
                Req::Write { fid, deferred: 0 }
            }
            cmd2::LOGOFF | cmd2::TREE_DISCONNECT => Req::Plain,
            _ => return,
        };
        self.add_pending(
            (2, h.message_id),
            Pending {
                command: h.command,
                tree_id: h.tree_id,
                req,
            },
        );
    }

    fn smb2_response(
        &mut self,
        h: &Smb2Hdr,
        m: &[u8],
        declared: usize,
        related: &mut Option<FileKey>,
        out: &mut Vec<SmbEvent>,
    ) {
        if h.status == STATUS_PENDING && h.flags & Smb2Hdr::ASYNC != 0 {
            // Interim response: the final one follows with the same MessageId.
            return;
        }
        let body = m.get(SMB2_HDR..).unwrap_or_default();
        let key = (2u8, h.message_id);
        let mut pending = self.pending.remove(&key);
        if pending.as_ref().is_some_and(|p| p.command != h.command) {
            // Same MessageId, different command: not the request we kept.
            self.anomaly("smb.response_command_mismatch", out);
            pending = None;
        }
        let matched = pending.is_some();
        let ok = h.status == NT_STATUS_SUCCESS;
        let session_id = h.session_id;
        let tree_id = pending.as_ref().map_or(h.tree_id, |p| {
            if h.tree_id != 0 { h.tree_id } else { p.tree_id }
        });
        match h.command {
            cmd2::NEGOTIATE => {
                let mut tx = self.tx(cmd2::name(h.command), h.status, session_id, tree_id);
                if let Some(Pending {
                    req: Req::Negotiate { dialects },
                    ..
                }) = pending
                {
                    tx.client_dialects = dialects;
                }
                if ok && let Some(d) = le16(body, 4) {
                    let name = smb2_dialect_name(d).to_owned();
                    if le16(body, 2).is_some_and(|s| s & 0x2 != 0) {
                        self.signing_required = true;
                    }
                    let caps = le32(body, 24).unwrap_or(0);
                    let mut enc = d >= 0x0300 && d != 0x02ff && caps & 0x40 != 0;
                    if d == 0x0311 {
                        enc |= negotiate_contexts_offer_encryption(m, body);
                    }
                    self.encryption_capable |= enc;
                    self.dialect = Some(name.clone());
                    tx.dialect.clone_from(&name);
                    out.push(SmbEvent::Negotiated {
                        dialect: name,
                        signing_required: self.signing_required,
                        encryption_capable: self.encryption_capable,
                    });
                }
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd2::SESSION_SETUP => {
                if h.status == STATUS_MORE_PROCESSING_REQUIRED {
                    return;
                }
                let ntlm = match pending {
                    Some(Pending {
                        req: Req::SessionSetup { ntlm },
                        ..
                    }) => ntlm,
                    _ => None,
                };
                let flags = if ok { le16(body, 2).unwrap_or(0) } else { 0 };
                let encrypt_data = flags & 0x4 != 0;
                self.encryption_required |= encrypt_data;
                let user = ntlm
                    .as_ref()
                    .map(|n| n.user.clone())
                    .filter(|u| !u.is_empty());
                if ok && let Some(u) = &user {
                    self.note_user(u);
                }
                out.push(SmbEvent::SessionSetup {
                    session_id,
                    ok,
                    encrypt_data,
                    user,
                });
                let mut tx = self.tx(cmd2::name(h.command), h.status, session_id, tree_id);
                tx.ntlmssp = ntlm;
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd2::TREE_CONNECT => {
                let path = match pending {
                    Some(Pending {
                        req: Req::TreeConnect { path },
                        ..
                    }) => Some(path),
                    _ => None,
                };
                let mut tx = self.tx(cmd2::name(h.command), h.status, session_id, h.tree_id);
                if ok {
                    let kind = match body.get(2) {
                        Some(1) => ShareKind::Disk,
                        Some(2) => ShareKind::Pipe,
                        Some(3) => ShareKind::Print,
                        _ => ShareKind::Unknown,
                    };
                    let encrypt = le32(body, 4).is_some_and(|f| f & 0x8000 != 0);
                    let share = path.clone().unwrap_or_default();
                    self.connect_tree((session_id, h.tree_id), share, kind, encrypt, out);
                    tx.share_type = Some(kind.as_str());
                }
                tx.share = path;
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd2::TREE_DISCONNECT => {
                let t = self.trees.remove(&(session_id, tree_id));
                let mut tx = self.tx(cmd2::name(h.command), h.status, session_id, tree_id);
                tx.share = t.map(|t| t.share);
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd2::LOGOFF => {
                let tx = self.tx(cmd2::name(h.command), h.status, session_id, tree_id);
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd2::CREATE => {
                let (name, disposition, options) = match pending {
                    Some(Pending {
                        req:
                            Req::Create {
                                name,
                                disposition,
                                options,
                            },
                        ..
                    }) => (Some(name), disposition, options),
                    _ => (None, u32::MAX, 0),
                };
                let mut tx = self.tx(cmd2::name(h.command), h.status, session_id, tree_id);
                let tree = self.trees.get(&(session_id, tree_id)).cloned();
                let delete_on_close =
                    create_fields(&mut tx, tree.as_ref(), &name, disposition, options);
                if ok
                    && let Some(fid) =
                        slice(body, 64, 16).and_then(|b| <[u8; 16]>::try_from(b).ok())
                {
                    let key = FileKey::V2(fid);
                    *related = Some(key);
                    let attrs = le32(body, 56).unwrap_or(0);
                    let action = le32(body, 4).unwrap_or(0);
                    let size = le64(body, 48);
                    let kind = if tree.as_ref().map_or_else(
                        || name.as_deref().is_some_and(well_known_pipe),
                        |t| t.kind == ShareKind::Pipe,
                    ) {
                        FileKind::Pipe
                    } else if attrs & 0x10 != 0 {
                        FileKind::Directory
                    } else {
                        FileKind::File
                    };
                    let open = Open {
                        key,
                        name: name.clone(),
                        share: tree.map(|t| t.share),
                        kind,
                        created: matches!(action, 2 | 3),
                        delete_on_close,
                        size,
                    };
                    self.record_open(&mut tx, open, out);
                }
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd2::CLOSE => {
                let fid = match pending {
                    Some(Pending {
                        req: Req::Close { fid },
                        ..
                    }) => fid.or(*related),
                    _ => None,
                };
                let mut tx = self.tx(cmd2::name(h.command), h.status, session_id, tree_id);
                if let Some(key) = fid {
                    tx.fuid = Some(key.fuid());
                    let size = (ok && le16(body, 2).is_some_and(|f| f & 1 != 0))
                        .then(|| le64(body, 48))
                        .flatten();
                    if let Some(i) = self.close_file(key, size, out)
                        && let Some(f) = self.files.get(i)
                    {
                        tx.filename.clone_from(&f.name);
                        tx.share.clone_from(&f.share);
                        tx.kind = Some(f.kind);
                        tx.size = f.size;
                        tx.bytes_read = Some(f.bytes_read);
                        tx.bytes_written = Some(f.bytes_written);
                    }
                }
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd2::READ => {
                let fid = match pending {
                    Some(Pending {
                        req: Req::Read { fid },
                        ..
                    }) => fid.or(*related),
                    _ => None,
                };
                if h.status == NT_STATUS_SUCCESS || h.status == STATUS_BUFFER_OVERFLOW {
                    let data_off = body.get(2).map_or(0, |o| usize::from(*o));
                    let length = le32(body, 4).map_or(0, u64::from);
                    let start = data_off.max(SMB2_HDR + 16);
                    let bytes = length.min(declared.saturating_sub(start) as u64);
                    self.plan(IoOp::Read, fid, start, bytes, None, out);
                }
            }
            cmd2::WRITE => {
                if let Some(Pending {
                    req:
                        Req::Write {
                            fid: None,
                            deferred,
                        },
                    ..
                }) = pending
                    && deferred > 0
                {
                    let file = self.resolve(*related, out);
                    self.account(IoOp::Write, file, deferred, out);
                }
            }
            _ => {}
        }
        if !matched
            && matches!(
                h.command,
                cmd2::CREATE | cmd2::READ | cmd2::CLOSE | cmd2::TREE_CONNECT
            )
        {
            self.counters.unmatched_responses += 1;
        }
    }

    fn note_user(&mut self, u: &str) {
        if self.users.len() < 16 && !self.users.iter().any(|x| x == u) {
            self.users.push(u.to_owned());
        }
    }

    fn connect_tree(
        &mut self,
        key: (u64, u32),
        share: String,
        kind: ShareKind,
        encrypt: bool,
        out: &mut Vec<SmbEvent>,
    ) {
        self.encryption_required |= encrypt;
        let index = match self.tree_list.iter().position(|t| t.share == share) {
            Some(i) => Some(i),
            None if self.tree_list.len() < self.cfg.max_trees => {
                self.tree_list.push(SmbTree {
                    share: share.clone(),
                    kind,
                    encrypt_data: encrypt,
                    connects: 0,
                });
                Some(self.tree_list.len() - 1)
            }
            None => {
                self.counters.trees_dropped += 1;
                None
            }
        };
        if let Some(t) = index.and_then(|i| self.tree_list.get_mut(i)) {
            t.connects += 1;
            t.kind = kind;
            t.encrypt_data |= encrypt;
        }
        if self.trees.len() < self.cfg.max_trees || self.trees.contains_key(&key) {
            self.trees.insert(
                key,
                TreeRef {
                    share: share.clone(),
                    kind,
                },
            );
        } else {
            self.counters.trees_dropped += 1;
        }
        out.push(SmbEvent::TreeConnected {
            share,
            kind,
            encrypt_data: encrypt,
        });
    }

    /// Registers an open handle, merging files by (share, name).
    /// A successful CREATE (SMB2) or NT_CREATE_ANDX (SMB1): its handle goes on the
    /// transaction record and into the file table.
    fn record_open(&mut self, tx: &mut SmbTransaction, open: Open, out: &mut Vec<SmbEvent>) {
        tx.size = open.size;
        tx.fuid = Some(open.key.fuid());
        tx.kind = Some(open.kind);
        self.open_file(open, out);
    }

    fn open_file(&mut self, o: Open, out: &mut Vec<SmbEvent>) -> Option<usize> {
        let merge_key = (
            o.share.clone().unwrap_or_default(),
            o.name.clone().unwrap_or_default(),
        );
        let existing = o
            .name
            .as_ref()
            .and_then(|_| self.file_index.get(&merge_key).copied());
        let index = match existing {
            Some(i) => i,
            None if self.files.len() < self.cfg.max_files => {
                self.files.push(SmbFile {
                    name: o.name.clone(),
                    share: o.share.clone(),
                    kind: o.kind,
                    fuid: o.key.fuid(),
                    opens: 0,
                    created: false,
                    delete_on_close: false,
                    size: None,
                    reads: 0,
                    bytes_read: 0,
                    writes: 0,
                    bytes_written: 0,
                });
                let i = self.files.len() - 1;
                if o.name.is_some() {
                    self.file_index.insert(merge_key, i);
                }
                i
            }
            None => {
                self.counters.files_dropped += 1;
                return None;
            }
        };
        if let Some(f) = self.files.get_mut(index) {
            f.opens += u64::from(o.name.is_some());
            f.created |= o.created;
            f.delete_on_close |= o.delete_on_close;
            if o.size.is_some() {
                f.size = o.size;
            }
            if f.kind == FileKind::Unknown {
                f.kind = o.kind;
            }
        }
        if self.open.len() < self.cfg.max_open || self.open.contains_key(&o.key) {
            self.open.insert(o.key, index);
        } else {
            self.counters.opens_dropped += 1;
        }
        if o.name.is_some() {
            out.push(SmbEvent::FileOpened { file: index });
        }
        Some(index)
    }

    fn close_file(
        &mut self,
        key: FileKey,
        size: Option<u64>,
        out: &mut Vec<SmbEvent>,
    ) -> Option<usize> {
        let i = self.open.remove(&key)?;
        if let Some(f) = self.files.get_mut(i)
            && size.is_some()
        {
            f.size = size;
        }
        out.push(SmbEvent::FileClosed { file: i });
        Some(i)
    }

    /// The file behind `key`; an unknown handle (open not seen, e.g. a capture picked up
    /// midstream) gets a nameless entry so its bytes still count.
    fn resolve(&mut self, key: Option<FileKey>, out: &mut Vec<SmbEvent>) -> Option<usize> {
        let k = key?;
        if let Some(i) = self.open.get(&k) {
            return Some(*i);
        }
        self.open_file(
            Open {
                key: k,
                name: None,
                share: None,
                kind: FileKind::Unknown,
                created: false,
                delete_on_close: false,
                size: None,
            },
            out,
        )
    }

    /// Plans the accounting of `len` data bytes at `start` of the current message.
    fn plan(
        &mut self,
        op: IoOp,
        key: Option<FileKey>,
        start: usize,
        len: u64,
        defer: Option<(u8, u64)>,
        out: &mut Vec<SmbEvent>,
    ) {
        let file = if defer.is_some() {
            None
        } else {
            self.resolve(key, out)
        };
        self.plans.push(IoPlan {
            op,
            file,
            start: self.base.saturating_add(start) as u64,
            len,
            seen: 0,
            defer,
        });
    }

    /// Books a finished plan: deferred bytes wait in their pending request, the rest count.
    fn book(&mut self, p: IoPlan, out: &mut Vec<SmbEvent>) {
        if let Some(key) = p.defer
            && let Some(Pending {
                req: Req::Write { deferred, .. },
                ..
            }) = self.pending.get_mut(&key)
        {
            *deferred += p.seen;
            return;
        }
        self.account(p.op, p.file, p.seen, out);
    }

    /// Credits `bytes` of I/O to file `index` (or to the unattributed counter).
    fn account(&mut self, op: IoOp, index: Option<usize>, bytes: u64, out: &mut Vec<SmbEvent>) {
        if bytes == 0 {
            return;
        }
        match index.and_then(|i| self.files.get_mut(i)) {
            Some(f) => {
                let counts_as_file = f.kind != FileKind::Pipe;
                match op {
                    IoOp::Read => {
                        f.reads += 1;
                        f.bytes_read += bytes;
                        if counts_as_file {
                            self.file_bytes_read += bytes;
                        }
                    }
                    IoOp::Write => {
                        f.writes += 1;
                        f.bytes_written += bytes;
                        if counts_as_file {
                            self.file_bytes_written += bytes;
                        }
                    }
                }
            }
            None => self.counters.unattributed_bytes += bytes,
        }
        out.push(SmbEvent::Io {
            op,
            bytes,
            file: index,
        });
    }

    fn smb1(&mut self, m: &[u8], total: usize, out: &mut Vec<SmbEvent>) {
        self.smb1 = true;
        // SMB1 data offsets count from the one header every AndX command shares.
        self.base = 0;
        let (Some(command), Some(flags), Some(flags2)) = (m.get(4), m.get(9), le16(m, 10)) else {
            self.anomaly("smb.smb1_header_malformed", out);
            return;
        };
        let response = flags & 0x80 != 0;
        let unicode = flags2 & 0x8000 != 0;
        // NT status when flagged; otherwise a DOS error class/code, nonzero on failure.
        let status = le32(m, 5).unwrap_or(0);
        let tid = le16(m, 24).unwrap_or(0);
        let pid = le16(m, 26).unwrap_or(0);
        let uid = le16(m, 28).unwrap_or(0);
        let mid = le16(m, 30).unwrap_or(0);
        let ctx = Smb1Ctx {
            unicode,
            status,
            tid,
            uid,
            id: u64::from(mid) | u64::from(pid) << 16,
            total,
        };
        let mut cmd = *command;
        let mut off = SMB1_HDR;
        // AndX chains move forward only; the bound stops a crafted loop.
        for _ in 0..8 {
            self.counters.smb1_messages += 1;
            let Some(&wc) = m.get(off) else {
                self.anomaly("smb.smb1_truncated", out);
                return;
            };
            let words_at = off + 1;
            let words_len = usize::from(wc) * 2;
            let bytes_at = words_at + words_len + 2;
            let words = m.get(words_at..).unwrap_or_default();
            let words = words.get(..words_len).unwrap_or(words);
            if response {
                self.smb1_response(&ctx, cmd, m, words, bytes_at, out);
            } else {
                self.smb1_request(&ctx, cmd, m, words, bytes_at, out);
            }
            if !cmd1::is_andx(cmd) || wc < 2 {
                return;
            }
            let next = words.first().copied().unwrap_or(cmd1::NONE);
            let next_off = le16(words, 2).map_or(0, usize::from);
            if next == cmd1::NONE || next_off <= off {
                return;
            }
            cmd = next;
            off = next_off;
        }
    }

    fn smb1_request(
        &mut self,
        c: &Smb1Ctx,
        cmd: u8,
        m: &[u8],
        words: &[u8],
        bytes_at: usize,
        out: &mut Vec<SmbEvent>,
    ) {
        let max = self.cfg.max_name;
        let req = match cmd {
            cmd1::NEGOTIATE => {
                let bytes = m.get(bytes_at..).unwrap_or_default();
                let dialects = bytes
                    .split(|&b| b == 0)
                    .filter_map(|d| d.strip_prefix(&[0x02]))
                    .take(16)
                    .map(|d| text(d, 64))
                    .collect();
                Req::Negotiate { dialects }
            }
            cmd1::SESSION_SETUP_ANDX => Req::SessionSetup {
                ntlm: ntlmssp_auth(m.get(bytes_at..).unwrap_or_default(), max),
            },
            cmd1::TREE_CONNECT_ANDX => {
                let pw_len = le16(words, 6).map_or(0, usize::from);
                let mut at = bytes_at.saturating_add(pw_len);
                if c.unicode && at % 2 == 1 {
                    at += 1;
                }
                Req::TreeConnect {
                    path: smb1_string(m, at, c.unicode, max).unwrap_or_default(),
                }
            }
            cmd1::NT_CREATE_ANDX => {
                let name_len = le16(words, 5).map_or(0, usize::from);
                let mut at = bytes_at;
                if c.unicode && at % 2 == 1 {
                    at += 1;
                }
                let raw = m.get(at..).unwrap_or_default();
                let raw = raw.get(..name_len).unwrap_or(raw);
                let name = if c.unicode {
                    utf16le(raw, max)
                } else {
                    text(raw.strip_suffix(&[0]).unwrap_or(raw), max)
                };
                Req::Create {
                    name,
                    disposition: le32(words, 35).unwrap_or(u32::MAX),
                    options: le32(words, 39).unwrap_or(0),
                }
            }
            cmd1::CLOSE => Req::Close {
                fid: le16(words, 0).map(FileKey::V1),
            },
            cmd1::READ_ANDX => Req::Read {
                fid: le16(words, 4).map(FileKey::V1),
            },
            cmd1::WRITE_ANDX => {
                let fid = le16(words, 4).map(FileKey::V1);
                let high = le16(words, 18).map_or(0, u64::from);
                let low = le16(words, 20).map_or(0, u64::from);
                let data_off = le16(words, 22).map_or(0, usize::from);
                let start = data_off.max(SMB1_HDR);
                // DataLengthHigh is only meaningful for large writes; clamp to the PDU
                // either way.
                let length = (low | high << 16).min(c.total.saturating_sub(start) as u64);
                self.plan(IoOp::Write, fid, start, length, None, out);
                Req::Write { fid, deferred: 0 }
            }
            cmd1::LOGOFF_ANDX | cmd1::TREE_DISCONNECT => Req::Plain,
            _ => return,
        };
        self.add_pending(
            (1, c.id | u64::from(cmd) << 32),
            Pending {
                command: u16::from(cmd),
                tree_id: u32::from(c.tid),
                req,
            },
        );
    }

    fn smb1_response(
        &mut self,
        c: &Smb1Ctx,
        cmd: u8,
        m: &[u8],
        words: &[u8],
        bytes_at: usize,
        out: &mut Vec<SmbEvent>,
    ) {
        let pending = self.pending.remove(&(1, c.id | u64::from(cmd) << 32));
        let ok = c.status == 0;
        let session_id = u64::from(c.uid);
        let tree_id = u32::from(c.tid);
        let name = cmd1::name(cmd);
        match cmd {
            cmd1::NEGOTIATE => {
                let dialects = match pending {
                    Some(Pending {
                        req: Req::Negotiate { dialects },
                        ..
                    }) => dialects,
                    _ => Vec::new(),
                };
                let mut tx = self.tx(name, c.status, session_id, tree_id);
                if ok
                    && let Some(i) = le16(words, 0)
                    && let Some(d) = dialects.get(usize::from(i))
                {
                    self.dialect = Some(d.clone());
                    tx.dialect.clone_from(d);
                    if words.get(2).is_some_and(|s| s & 0x08 != 0) {
                        self.signing_required = true;
                    }
                    out.push(SmbEvent::Negotiated {
                        dialect: d.clone(),
                        signing_required: self.signing_required,
                        encryption_capable: false,
                    });
                }
                tx.client_dialects = dialects;
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd1::SESSION_SETUP_ANDX => {
                if c.status == STATUS_MORE_PROCESSING_REQUIRED {
                    return;
                }
                let ntlm = match pending {
                    Some(Pending {
                        req: Req::SessionSetup { ntlm },
                        ..
                    }) => ntlm,
                    _ => None,
                };
                let user = ntlm
                    .as_ref()
                    .map(|n| n.user.clone())
                    .filter(|u| !u.is_empty());
                if ok && let Some(u) = &user {
                    self.note_user(u);
                }
                out.push(SmbEvent::SessionSetup {
                    session_id,
                    ok,
                    encrypt_data: false,
                    user,
                });
                let mut tx = self.tx(name, c.status, session_id, tree_id);
                tx.ntlmssp = ntlm;
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd1::TREE_CONNECT_ANDX => {
                let path = match pending {
                    Some(Pending {
                        req: Req::TreeConnect { path },
                        ..
                    }) => Some(path),
                    _ => None,
                };
                let mut tx = self.tx(name, c.status, session_id, tree_id);
                if ok {
                    let service = smb1_string(m, bytes_at, false, 16).unwrap_or_default();
                    let kind = match service.as_str() {
                        "A:" => ShareKind::Disk,
                        "IPC" => ShareKind::Pipe,
                        s if s.starts_with("LPT") => ShareKind::Print,
                        _ => ShareKind::Unknown,
                    };
                    let share = path.clone().unwrap_or_default();
                    // SMB1 tree ids are per connection.
                    self.connect_tree((0, tree_id), share, kind, false, out);
                    tx.share_type = Some(kind.as_str());
                }
                tx.share = path;
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd1::TREE_DISCONNECT => {
                let t = self.trees.remove(&(0, tree_id));
                let mut tx = self.tx(name, c.status, session_id, tree_id);
                tx.share = t.map(|t| t.share);
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd1::LOGOFF_ANDX => {
                let tx = self.tx(name, c.status, session_id, tree_id);
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd1::NT_CREATE_ANDX => {
                let (fname, disposition, options) = match pending {
                    Some(Pending {
                        req:
                            Req::Create {
                                name,
                                disposition,
                                options,
                            },
                        ..
                    }) => (Some(name), disposition, options),
                    _ => (None, u32::MAX, 0),
                };
                let mut tx = self.tx(name, c.status, session_id, tree_id);
                let tree = self.trees.get(&(0, tree_id)).cloned();
                let delete_on_close =
                    create_fields(&mut tx, tree.as_ref(), &fname, disposition, options);
                if ok && let Some(fid) = le16(words, 5) {
                    let key = FileKey::V1(fid);
                    let action = le32(words, 7).unwrap_or(0);
                    let size = le64(words, 55);
                    let resource = le16(words, 63).unwrap_or(0);
                    let is_dir = words.get(67).is_some_and(|d| *d != 0);
                    let kind = if matches!(resource, 1 | 2)
                        || tree.as_ref().map_or_else(
                            || fname.as_deref().is_some_and(well_known_pipe),
                            |t| t.kind == ShareKind::Pipe,
                        ) {
                        FileKind::Pipe
                    } else if is_dir {
                        FileKind::Directory
                    } else {
                        FileKind::File
                    };
                    let open = Open {
                        key,
                        name: fname,
                        share: tree.map(|t| t.share),
                        kind,
                        created: matches!(action, 2 | 3),
                        delete_on_close,
                        size,
                    };
                    self.record_open(&mut tx, open, out);
                }
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd1::CLOSE => {
                let fid = match pending {
                    Some(Pending {
                        req: Req::Close { fid },
                        ..
                    }) => fid,
                    _ => None,
                };
                let mut tx = self.tx(name, c.status, session_id, tree_id);
                if let Some(key) = fid {
                    tx.fuid = Some(key.fuid());
                    if let Some(i) = self.close_file(key, None, out)
                        && let Some(f) = self.files.get(i)
                    {
                        tx.filename.clone_from(&f.name);
                        tx.share.clone_from(&f.share);
                        tx.kind = Some(f.kind);
                        tx.size = f.size;
                        tx.bytes_read = Some(f.bytes_read);
                        tx.bytes_written = Some(f.bytes_written);
                    }
                }
                out.push(SmbEvent::Transaction(Box::new(tx)));
            }
            cmd1::READ_ANDX if ok => {
                let fid = match pending {
                    Some(Pending {
                        req: Req::Read { fid },
                        ..
                    }) => fid,
                    _ => None,
                };
                let low = le16(words, 10).map_or(0, u64::from);
                let data_off = le16(words, 12).map_or(0, usize::from);
                let high = le16(words, 14).map_or(0, u64::from);
                let start = data_off.max(SMB1_HDR);
                let length = (low | high << 16).min(c.total.saturating_sub(start) as u64);
                self.plan(IoOp::Read, fid, start, length, None, out);
            }
            _ => {}
        }
    }
}

/// SMB1 header fields every command of an AndX chain shares.
#[derive(Debug, Clone, Copy)]
struct Smb1Ctx {
    unicode: bool,
    status: u32,
    tid: u16,
    uid: u16,
    /// MID | PID << 16.
    id: u64,
    /// Declared PDU length.
    total: usize,
}

/// Fills the CREATE request fields both dialects log; returns whether the open asked for
/// delete-on-close.
fn create_fields(
    tx: &mut SmbTransaction,
    tree: Option<&TreeRef>,
    name: &Option<String>,
    disposition: u32,
    options: u32,
) -> bool {
    tx.share = tree.map(|t| t.share.clone());
    tx.filename.clone_from(name);
    tx.disposition = disposition_name(disposition);
    let delete_on_close = options & 0x1000 != 0;
    tx.access = Some(if delete_on_close {
        "delete on close"
    } else {
        "normal"
    });
    delete_on_close
}

/// A successful open, before it is filed.
#[derive(Debug, Clone)]
struct Open {
    key: FileKey,
    name: Option<String>,
    share: Option<String>,
    kind: FileKind,
    created: bool,
    delete_on_close: bool,
    size: Option<u64>,
}

/// Named pipes of common RPC services: when the tree connect was not seen (capture picked
/// up midstream), an open of one of these names is still a pipe, not a file.
fn well_known_pipe(name: &str) -> bool {
    const PIPES: &[&str] = &[
        "atsvc",
        "browser",
        "epmapper",
        "eventlog",
        "initshutdown",
        "lsarpc",
        "lsass",
        "netdfs",
        "netlogon",
        "ntsvcs",
        "samr",
        "spoolss",
        "srvsvc",
        "svcctl",
        "winreg",
        "wkssvc",
    ];
    let n = name.trim_start_matches('\\');
    let n = n
        .get(..5)
        .filter(|p| p.eq_ignore_ascii_case("pipe\\"))
        .map_or(n, |_| n.get(5..).unwrap_or_default());
    PIPES.iter().any(|p| p.eq_ignore_ascii_case(n))
}

/// SMB 3.1.1: whether the negotiate contexts carry an encryption cipher.
fn negotiate_contexts_offer_encryption(m: &[u8], body: &[u8]) -> bool {
    let count = le16(body, 6).map_or(0, usize::from);
    let mut off = le32(body, 60).map_or(0, |o| o as usize);
    for _ in 0..count.min(32) {
        let (Some(ty), Some(len)) = (le16(m, off), le16(m, off + 2)) else {
            return false;
        };
        let data = off + 8;
        if ty == 0x0002 {
            let ciphers = le16(m, data).map_or(0, usize::from);
            return (0..ciphers.min(8)).any(|i| le16(m, data + 2 + 2 * i).is_some_and(|c| c != 0));
        }
        // Contexts are 8-byte aligned.
        off = (data + usize::from(len) + 7) & !7;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const C: Direction = Direction::ToServer;
    const S: Direction = Direction::ToClient;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    /// Builds SMB2 messages: header fields plus a body.
    #[derive(Clone)]
    struct M2 {
        cmd: u16,
        response: bool,
        status: u32,
        mid: u64,
        tree: u32,
        session: u64,
        flags: u32,
        body: Vec<u8>,
    }

    impl M2 {
        fn req(cmd: u16, mid: u64) -> M2 {
            M2 {
                cmd,
                response: false,
                status: 0,
                mid,
                tree: 1,
                session: 0x77,
                flags: 0,
                body: Vec::new(),
            }
        }

        fn resp(cmd: u16, mid: u64) -> M2 {
            M2 {
                response: true,
                ..M2::req(cmd, mid)
            }
        }

        fn body(mut self, b: Vec<u8>) -> M2 {
            self.body = b;
            self
        }

        fn status(mut self, s: u32) -> M2 {
            self.status = s;
            self
        }

        fn bytes(&self, next: u32) -> Vec<u8> {
            let mut h = vec![0u8; 64];
            h[..4].copy_from_slice(b"\xfeSMB");
            h[4] = 64;
            h[8..12].copy_from_slice(&self.status.to_le_bytes());
            h[12..14].copy_from_slice(&self.cmd.to_le_bytes());
            let flags = self.flags | u32::from(self.response);
            h[16..20].copy_from_slice(&flags.to_le_bytes());
            h[20..24].copy_from_slice(&next.to_le_bytes());
            h[24..32].copy_from_slice(&self.mid.to_le_bytes());
            h[36..40].copy_from_slice(&self.tree.to_le_bytes());
            h[40..48].copy_from_slice(&self.session.to_le_bytes());
            h.extend_from_slice(&self.body);
            h
        }
    }

    /// One NBSS PDU holding a compound of messages.
    fn pdu(msgs: &[M2]) -> Vec<u8> {
        let mut payload = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let mut b = m.bytes(0);
            if i + 1 < msgs.len() {
                while b.len() % 8 != 0 {
                    b.push(0);
                }
                let next = b.len() as u32;
                b[20..24].copy_from_slice(&next.to_le_bytes());
            }
            payload.extend_from_slice(&b);
        }
        nbss(&payload)
    }

    fn nbss(payload: &[u8]) -> Vec<u8> {
        let len = payload.len() as u32;
        let mut v = vec![0, (len >> 16) as u8, (len >> 8) as u8, len as u8];
        v.extend_from_slice(payload);
        v
    }

    fn negotiate_req(dialects: &[u16]) -> Vec<u8> {
        let mut b = vec![0u8; 36];
        b[0] = 36;
        b[2..4].copy_from_slice(&(dialects.len() as u16).to_le_bytes());
        b[4] = 1;
        for d in dialects {
            b.extend_from_slice(&d.to_le_bytes());
        }
        b
    }

    fn negotiate_resp(dialect: u16, security_mode: u16, caps: u32) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[0] = 65;
        b[2..4].copy_from_slice(&security_mode.to_le_bytes());
        b[4..6].copy_from_slice(&dialect.to_le_bytes());
        b[24..28].copy_from_slice(&caps.to_le_bytes());
        b
    }

    fn tree_req(path: &str) -> Vec<u8> {
        let p = utf16(path);
        let mut b = vec![0u8; 8];
        b[0] = 9;
        b[4..6].copy_from_slice(&(64u16 + 8).to_le_bytes());
        b[6..8].copy_from_slice(&(p.len() as u16).to_le_bytes());
        b.extend_from_slice(&p);
        b
    }

    fn tree_resp(share_type: u8, flags: u32) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        b[0] = 16;
        b[2] = share_type;
        b[4..8].copy_from_slice(&flags.to_le_bytes());
        b
    }

    fn create_req(name: &str, disposition: u32, options: u32) -> Vec<u8> {
        let n = utf16(name);
        let mut b = vec![0u8; 56];
        b[0] = 57;
        b[36..40].copy_from_slice(&disposition.to_le_bytes());
        b[40..44].copy_from_slice(&options.to_le_bytes());
        b[44..46].copy_from_slice(&(64u16 + 56).to_le_bytes());
        b[46..48].copy_from_slice(&(n.len() as u16).to_le_bytes());
        b.extend_from_slice(&n);
        b
    }

    fn fid(n: u8) -> [u8; 16] {
        let mut f = [0u8; 16];
        f[0] = n;
        f[8] = n;
        f
    }

    fn create_resp(fid: [u8; 16], action: u32, attrs: u32, size: u64) -> Vec<u8> {
        let mut b = vec![0u8; 88];
        b[0] = 89;
        b[4..8].copy_from_slice(&action.to_le_bytes());
        b[48..56].copy_from_slice(&size.to_le_bytes());
        b[56..60].copy_from_slice(&attrs.to_le_bytes());
        b[64..80].copy_from_slice(&fid);
        b
    }

    fn write_req(fid: [u8; 16], data_len: usize) -> Vec<u8> {
        let mut b = vec![0u8; 48];
        b[0] = 49;
        b[2..4].copy_from_slice(&(64u16 + 48).to_le_bytes());
        b[4..8].copy_from_slice(&(data_len as u32).to_le_bytes());
        b[16..32].copy_from_slice(&fid);
        b.extend(std::iter::repeat_n(0xab, data_len));
        b
    }

    fn read_req(fid: [u8; 16], len: u32) -> Vec<u8> {
        let mut b = vec![0u8; 48];
        b[0] = 49;
        b[4..8].copy_from_slice(&len.to_le_bytes());
        b[16..32].copy_from_slice(&fid);
        b
    }

    fn read_resp(data_len: usize) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        b[0] = 17;
        b[2] = 64 + 16;
        b[4..8].copy_from_slice(&(data_len as u32).to_le_bytes());
        b.extend(std::iter::repeat_n(0xcd, data_len));
        b
    }

    fn close_req(fid: [u8; 16]) -> Vec<u8> {
        let mut b = vec![0u8; 24];
        b[0] = 24;
        b[8..24].copy_from_slice(&fid);
        b
    }

    fn close_resp(size: Option<u64>) -> Vec<u8> {
        let mut b = vec![0u8; 60];
        b[0] = 60;
        if let Some(s) = size {
            b[2] = 1;
            b[48..56].copy_from_slice(&s.to_le_bytes());
        }
        b
    }

    fn feed_all(c: &mut SmbConnection, script: &[(Direction, Vec<u8>)]) -> Vec<SmbEvent> {
        let mut out = Vec::new();
        for (d, b) in script {
            c.feed(*d, b, false, &mut out);
        }
        out
    }

    fn txs(ev: &[SmbEvent]) -> Vec<SmbTransaction> {
        ev.iter()
            .filter_map(|e| match e {
                SmbEvent::Transaction(t) => Some((**t).clone()),
                _ => None,
            })
            .collect()
    }

    /// A full SMB2 session: negotiate, tree connect, create, write, read, close.
    fn session_script() -> Vec<(Direction, Vec<u8>)> {
        vec![
            (
                C,
                pdu(&[M2::req(0, 0).body(negotiate_req(&[0x0202, 0x0210, 0x0300, 0x0311]))]),
            ),
            (
                S,
                pdu(&[M2::resp(0, 0).body(negotiate_resp(0x0300, 0x3, 0x40))]),
            ),
            (C, pdu(&[M2::req(3, 2).body(tree_req("\\\\fs01\\loot"))])),
            (S, pdu(&[M2::resp(3, 2).body(tree_resp(1, 0))])),
            (
                C,
                pdu(&[M2::req(5, 3).body(create_req("dump\\db.7z", 5, 0))]),
            ),
            (
                S,
                pdu(&[M2::resp(5, 3).body(create_resp(fid(1), 2, 0x20, 0))]),
            ),
            (C, pdu(&[M2::req(9, 4).body(write_req(fid(1), 3000))])),
            (
                S,
                pdu(&[M2::resp(9, 4).body(vec![17, 0, 0, 0, 0xb8, 0x0b, 0, 0])]),
            ),
            (C, pdu(&[M2::req(8, 5).body(read_req(fid(1), 1000))])),
            (S, pdu(&[M2::resp(8, 5).body(read_resp(1000))])),
            (C, pdu(&[M2::req(6, 6).body(close_req(fid(1)))])),
            (S, pdu(&[M2::resp(6, 6).body(close_resp(Some(3000)))])),
        ]
    }

    #[test]
    fn smb2_session_end_to_end() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let ev = feed_all(&mut c, &session_script());
        assert!(
            !ev.iter().any(|e| matches!(e, SmbEvent::Anomaly(_))),
            "{ev:?}"
        );
        assert!(ev.contains(&SmbEvent::Negotiated {
            dialect: "3.00".into(),
            signing_required: true,
            encryption_capable: true
        }));
        assert!(ev.contains(&SmbEvent::TreeConnected {
            share: "\\\\fs01\\loot".into(),
            kind: ShareKind::Disk,
            encrypt_data: false
        }));
        assert!(ev.contains(&SmbEvent::Io {
            op: IoOp::Write,
            bytes: 3000,
            file: Some(0)
        }));
        assert!(ev.contains(&SmbEvent::Io {
            op: IoOp::Read,
            bytes: 1000,
            file: Some(0)
        }));
        let f = &c.files()[0];
        assert_eq!(f.name.as_deref(), Some("dump\\db.7z"));
        assert_eq!(f.share.as_deref(), Some("\\\\fs01\\loot"));
        assert_eq!(
            (f.kind, f.created, f.size),
            (FileKind::File, true, Some(3000))
        );
        assert_eq!(
            (f.writes, f.bytes_written, f.reads, f.bytes_read),
            (1, 3000, 1, 1000)
        );
        let t = txs(&ev);
        let cmds: Vec<_> = t.iter().map(|t| t.command).collect();
        assert_eq!(
            cmds,
            [
                "SMB2_COMMAND_NEGOTIATE_PROTOCOL",
                "SMB2_COMMAND_TREE_CONNECT",
                "SMB2_COMMAND_CREATE",
                "SMB2_COMMAND_CLOSE"
            ]
        );
        assert_eq!(t[0].client_dialects, ["2.02", "2.10", "3.00", "3.11"]);
        assert_eq!(t[1].share_type, Some("FILE"));
        assert_eq!(t[2].disposition, Some("FILE_OVERWRITE_IF"));
        assert_eq!(t[2].dialect, "3.00");
        assert_eq!(
            t[2].fuid.as_deref(),
            Some("00000001-0000-0000-0100-000000000000")
        );
        assert_eq!(t[3].bytes_written, Some(3000));
        assert_eq!(t[3].filename.as_deref(), Some("dump\\db.7z"));
        let j = serde_json::to_value(&t[2]).unwrap();
        assert_eq!(j["status"], "STATUS_SUCCESS");
        assert_eq!(j["status_code"], "0x0");
        assert_eq!(j["filename"], "dump\\db.7z");
        let s = serde_json::to_value(c.summary()).unwrap();
        assert_eq!(s["dialect"], "3.00");
        assert_eq!(s["file_bytes_written"], 3000);
        assert_eq!(s["file_bytes_read"], 1000);
        assert_eq!(s["trees"][0]["kind"], "FILE");
        assert_eq!(s["files"][0]["kind"], "file");
    }

    #[test]
    fn pdu_split_across_many_chunks() {
        let whole = {
            let mut c = SmbConnection::new(SmbConfig::default());
            feed_all(&mut c, &session_script())
        };
        for size in [1usize, 2, 3, 7, 63, 100] {
            let mut c = SmbConnection::new(SmbConfig::default());
            let mut out = Vec::new();
            for (d, b) in session_script() {
                for part in b.chunks(size) {
                    c.feed(d, part, false, &mut out);
                }
            }
            assert_eq!(out, whole, "chunk size {size}");
        }
    }

    #[test]
    fn one_megabyte_write_is_skipped_not_buffered() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let mut out = Vec::new();
        for (d, b) in session_script().into_iter().take(6) {
            c.feed(d, &b, false, &mut out);
        }
        out.clear();
        let big = pdu(&[M2::req(9, 10).body(write_req(fid(1), 1 << 20))]);
        // The header is understood as soon as it is in; the bytes count once they pass.
        c.feed(C, &big[..1100], false, &mut out);
        assert!(out.is_empty());
        assert_eq!(c.ts.plans.len(), 1);
        for part in big[1100..].chunks(1460) {
            c.feed(C, part, false, &mut out);
        }
        assert_eq!(
            out,
            [SmbEvent::Io {
                op: IoOp::Write,
                bytes: 1 << 20,
                file: Some(0)
            }]
        );
        assert!(
            c.ts.kept.capacity() <= 4096,
            "kept {}",
            c.ts.kept.capacity()
        );
        assert_eq!(c.counters().skipped_bytes, (big.len() - 4 - 1024) as u64);
        // Framing continues after the skipped body.
        c.feed(
            C,
            &pdu(&[M2::req(6, 11).body(close_req(fid(1)))]),
            false,
            &mut out,
        );
        c.feed(
            S,
            &pdu(&[M2::resp(6, 11).body(close_resp(None))]),
            false,
            &mut out,
        );
        assert_eq!(c.files()[0].bytes_written, 1 << 20);
        assert!(
            out.iter()
                .any(|e| matches!(e, SmbEvent::FileClosed { file: 0 }))
        );
    }

    #[test]
    fn write_length_is_clamped_to_the_pdu() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let mut body = write_req(fid(9), 100);
        body[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        let mut out = Vec::new();
        c.feed(C, &pdu(&[M2::req(9, 1).body(body)]), false, &mut out);
        assert_eq!(
            out,
            [SmbEvent::Io {
                op: IoOp::Write,
                bytes: 100,
                file: Some(0)
            }]
        );
        // Unknown handle: a nameless entry carries the bytes.
        assert_eq!(c.files()[0].name, None);
        assert_eq!(c.files()[0].kind, FileKind::Unknown);
    }

    #[test]
    fn transform_header_is_reported_and_counted() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let mut t = vec![0u8; 52];
        t[..4].copy_from_slice(b"\xfdSMB");
        t[44..52].copy_from_slice(&0x1234u64.to_le_bytes());
        t.extend(std::iter::repeat_n(0x55, 500));
        let p = nbss(&t);
        let mut out = Vec::new();
        c.feed(C, &p, false, &mut out);
        c.feed(S, &p, false, &mut out);
        assert_eq!(out, [SmbEvent::Encrypted { session_id: 0x1234 }]);
        assert!(c.encrypted());
        assert_eq!(c.counters().encrypted_pdus, 2);
        assert_eq!(c.counters().encrypted_bytes_toserver, 552);
        assert_eq!(c.counters().encrypted_bytes_toclient, 552);
        let mut z = vec![0u8; 16];
        z[..4].copy_from_slice(b"\xfcSMB");
        c.feed(C, &nbss(&z), false, &mut out);
        assert_eq!(out.last(), Some(&SmbEvent::Compressed));
        assert!(c.summary().compressed);
    }

    #[test]
    fn gap_resynchronises_on_next_header() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let mut out = Vec::new();
        let script = session_script();
        for (d, b) in &script[..6] {
            c.feed(*d, b, false, &mut out);
        }
        // A write whose middle is lost, then a close whose header straddles two chunks.
        let big = pdu(&[M2::req(9, 7).body(write_req(fid(1), 5000))]);
        c.feed(C, &big[..2000], false, &mut out);
        let close = pdu(&[M2::req(6, 8).body(close_req(fid(1)))]);
        let mut after_gap = big[3000..].to_vec();
        after_gap.extend_from_slice(&close[..6]);
        c.feed(C, &after_gap, true, &mut out);
        c.feed(C, &close[6..], false, &mut out);
        c.feed(
            S,
            &pdu(&[M2::resp(6, 8).body(close_resp(None))]),
            false,
            &mut out,
        );
        assert_eq!(c.counters().gaps, 1);
        assert_eq!(c.counters().resyncs, 1);
        assert!(
            out.iter()
                .any(|e| matches!(e, SmbEvent::FileClosed { file: 0 }))
        );
        // Only the data seen before the gap counts: 1996 PDU bytes, minus the 112-byte
        // header and fixed part.
        assert_eq!(c.files()[0].bytes_written, 1996 - 112);
    }

    #[test]
    fn sized_hole_inside_a_body_keeps_framing() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let mut out = Vec::new();
        for (d, b) in &session_script()[..6] {
            c.feed(*d, b, false, &mut out);
        }
        let big = pdu(&[M2::req(9, 7).body(write_req(fid(1), 5000))]);
        c.feed(C, &big[..2000], false, &mut out);
        c.skip(C, 1000, &mut out);
        c.feed(C, &big[3000..], false, &mut out);
        c.feed(
            C,
            &pdu(&[M2::req(6, 8).body(close_req(fid(1)))]),
            false,
            &mut out,
        );
        assert_eq!(c.counters().resyncs, 0);
        assert_eq!(c.counters().hole_bytes, 1000);
        assert_eq!(c.files()[0].bytes_written, 5000);
        assert_eq!(c.st.pending.len(), 2, "write and close requests parsed");
        // A hole that crosses the PDU end loses the framing.
        c.feed(C, &big[..500], false, &mut out);
        c.skip(C, 10_000, &mut out);
        assert_eq!(c.counters().resyncs, 1);
        c.feed(
            C,
            &pdu(&[M2::req(6, 9).body(close_req(fid(1)))]),
            false,
            &mut out,
        );
        assert_eq!(
            c.st.pending.len(),
            3,
            "the cut write was never parsed; the close was"
        );
    }

    #[test]
    fn write_cut_by_connection_end_counts_what_was_seen() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let mut out = Vec::new();
        let big = pdu(&[M2::req(9, 7).body(write_req(fid(1), 5000))]);
        c.feed(C, &big[..1116], false, &mut out);
        assert!(out.is_empty());
        c.finish(&mut out);
        assert_eq!(
            out,
            [SmbEvent::Io {
                op: IoOp::Write,
                bytes: 1000,
                file: Some(0)
            }]
        );
    }

    #[test]
    fn garbage_header_resyncs() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let mut out = Vec::new();
        let mut data = b"\x69garbage that is not nbss".to_vec();
        data.extend_from_slice(&session_script()[0].1);
        c.feed(C, &data, false, &mut out);
        assert_eq!(out[0], SmbEvent::Anomaly("smb.nbss_invalid_header"));
        assert_eq!(c.counters().resyncs, 1);
        assert_eq!(
            c.st.pending.len(),
            1,
            "negotiate request parsed after resync"
        );
    }

    #[test]
    fn compound_create_read_close_with_related_ids() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let mut out = Vec::new();
        let related = |mut m: M2| {
            m.flags = Smb2Hdr::RELATED;
            m
        };
        c.feed(
            C,
            &pdu(&[
                M2::req(5, 20).body(create_req("a.txt", 1, 0)),
                related(M2::req(8, 21).body(read_req(RELATED_FID, 4096))),
                related(M2::req(6, 22).body(close_req(RELATED_FID))),
            ]),
            false,
            &mut out,
        );
        c.feed(
            S,
            &pdu(&[
                M2::resp(5, 20).body(create_resp(fid(4), 1, 0x20, 50)),
                related(M2::resp(8, 21).body(read_resp(50))),
                related(M2::resp(6, 22).body(close_resp(None))),
            ]),
            false,
            &mut out,
        );
        let f = &c.files()[0];
        assert_eq!(f.name.as_deref(), Some("a.txt"));
        assert_eq!(f.bytes_read, 50);
        assert_eq!(c.files().len(), 1);
        assert!(
            out.iter()
                .any(|e| matches!(e, SmbEvent::FileClosed { file: 0 }))
        );
    }

    #[test]
    fn compound_create_write_close_defers_until_the_file_id_is_known() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let mut out = Vec::new();
        let related = |mut m: M2| {
            m.flags = Smb2Hdr::RELATED;
            m
        };
        c.feed(
            C,
            &pdu(&[
                M2::req(5, 30).body(create_req("out.bin", 2, 0)),
                related(M2::req(9, 31).body(write_req(RELATED_FID, 700))),
                related(M2::req(6, 32).body(close_req(RELATED_FID))),
            ]),
            false,
            &mut out,
        );
        assert!(c.files().is_empty());
        c.feed(
            S,
            &pdu(&[
                M2::resp(5, 30).body(create_resp(fid(5), 2, 0x20, 0)),
                related(M2::resp(9, 31).body(vec![17, 0, 0, 0, 0xbc, 0x02, 0, 0])),
                related(M2::resp(6, 32).body(close_resp(Some(700)))),
            ]),
            false,
            &mut out,
        );
        let f = &c.files()[0];
        assert_eq!(f.name.as_deref(), Some("out.bin"));
        assert_eq!((f.bytes_written, f.size, f.created), (700, Some(700), true));
        assert_eq!(c.summary().file_bytes_written, 700);
    }

    #[test]
    fn pipes_and_encryption_flags() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let ev = feed_all(
            &mut c,
            &[
                (C, pdu(&[M2::req(1, 1)])),
                (S, pdu(&[M2::resp(1, 1).body(vec![9, 0, 4, 0, 0, 0, 0, 0])])),
                (C, pdu(&[M2::req(3, 2).body(tree_req("\\\\dc\\IPC$"))])),
                (S, pdu(&[M2::resp(3, 2).body(tree_resp(2, 0x8000))])),
                (C, pdu(&[M2::req(5, 3).body(create_req("lsarpc", 1, 0))])),
                (
                    S,
                    pdu(&[M2::resp(5, 3).body(create_resp(fid(2), 1, 0x80, 0))]),
                ),
                (C, pdu(&[M2::req(9, 4).body(write_req(fid(2), 72))])),
            ],
        );
        assert!(ev.iter().any(|e| matches!(
            e,
            SmbEvent::SessionSetup {
                encrypt_data: true,
                ok: true,
                ..
            }
        )));
        assert_eq!(c.files()[0].kind, FileKind::Pipe);
        let s = c.summary();
        assert!(s.encryption_required);
        // Pipe traffic is not file traffic.
        assert_eq!((s.file_bytes_written, c.files()[0].bytes_written), (0, 72));
        assert_eq!(s.trees[0].kind, ShareKind::Pipe);
    }

    #[test]
    fn midstream_pipe_open_is_a_pipe() {
        // No tree connect seen: a well-known RPC pipe name still opens a pipe.
        let mut c = SmbConnection::new(SmbConfig::default());
        feed_all(
            &mut c,
            &[
                (C, pdu(&[M2::req(5, 3).body(create_req("atsvc", 1, 0))])),
                (
                    S,
                    pdu(&[M2::resp(5, 3).body(create_resp(fid(2), 1, 0x80, 0))]),
                ),
                (
                    C,
                    pdu(&[M2::req(5, 4).body(create_req("report.atsvc", 1, 0))]),
                ),
                (
                    S,
                    pdu(&[M2::resp(5, 4).body(create_resp(fid(3), 1, 0x80, 0))]),
                ),
            ],
        );
        assert_eq!(c.files()[0].kind, FileKind::Pipe);
        assert_eq!(c.files()[1].kind, FileKind::File);
        assert!(well_known_pipe("\\PIPE\\srvsvc") && well_known_pipe("\\lsarpc"));
        assert!(!well_known_pipe("pipe") && !well_known_pipe(""));
    }

    #[test]
    fn async_interim_and_failed_create() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let mut interim = M2::resp(5, 3).status(STATUS_PENDING);
        interim.flags = Smb2Hdr::ASYNC;
        let ev = feed_all(
            &mut c,
            &[
                (
                    C,
                    pdu(&[M2::req(5, 3).body(create_req("secret.docx", 1, 0))]),
                ),
                (S, pdu(&[interim])),
                (
                    S,
                    pdu(&[M2::resp(5, 3)
                        .status(0xC000_0022)
                        .body(vec![9, 0, 0, 0, 0, 0, 0, 0, 0])]),
                ),
            ],
        );
        let t = txs(&ev);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].status, "STATUS_ACCESS_DENIED");
        assert_eq!(t[0].status_code, "0xc0000022");
        assert_eq!(t[0].filename.as_deref(), Some("secret.docx"));
        assert!(c.files().is_empty());
    }

    #[test]
    fn tables_are_capped() {
        let cfg = SmbConfig {
            max_files: 3,
            max_open: 5,
            max_pending: 4,
            ..SmbConfig::default()
        };
        let mut c = SmbConnection::new(cfg);
        let mut out = Vec::new();
        for i in 0..10u8 {
            let name = format!("f{i}");
            c.feed(
                C,
                &pdu(&[M2::req(5, u64::from(i)).body(create_req(&name, 1, 0))]),
                false,
                &mut out,
            );
        }
        assert_eq!(c.st.pending.len(), 4);
        assert_eq!(c.counters().pending_evicted, 6);
        for i in 6..10u8 {
            c.feed(
                S,
                &pdu(&[M2::resp(5, u64::from(i)).body(create_resp(fid(i), 1, 0, 0))]),
                false,
                &mut out,
            );
        }
        assert_eq!(c.files().len(), 3);
        assert_eq!(c.counters().files_dropped, 1);
        // Writes on handles never opened: nameless entries are capped too.
        for i in 20..30u8 {
            c.feed(
                C,
                &pdu(&[M2::req(9, u64::from(i)).body(write_req(fid(i), 10))]),
                false,
                &mut out,
            );
        }
        assert_eq!(c.files().len(), 3);
        assert_eq!(c.counters().unattributed_bytes, 100);
    }

    /// SMB1 message builder: command, flags, words, bytes.
    fn smb1(cmd: u8, response: bool, mid: u16, tid: u16, words: &[u8], bytes: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 32];
        h[..4].copy_from_slice(b"\xffSMB");
        h[4] = cmd;
        h[9] = if response { 0x98 } else { 0x18 };
        h[10..12].copy_from_slice(&0xc807u16.to_le_bytes());
        h[24..26].copy_from_slice(&tid.to_le_bytes());
        h[28..30].copy_from_slice(&100u16.to_le_bytes());
        h[30..32].copy_from_slice(&mid.to_le_bytes());
        h.push((words.len() / 2) as u8);
        h.extend_from_slice(words);
        h.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        h.extend_from_slice(bytes);
        nbss(&h)
    }

    #[test]
    fn smb1_tree_create_write_read_close() {
        let mut c = SmbConnection::new(SmbConfig::default());
        // NEGOTIATE offering two dialects; the server picks index 1.
        let neg = smb1(
            0x72,
            false,
            1,
            0,
            &[],
            b"\x02PC NETWORK PROGRAM 1.0\0\x02NT LM 0.12\0",
        );
        let mut neg_words = vec![0u8; 34];
        neg_words[0] = 1;
        neg_words[2] = 0x0f;
        let neg_r = smb1(0x72, true, 1, 0, &neg_words, &[]);
        // TREE_CONNECT_ANDX: no AndX, password length 1, unicode path after alignment.
        let tc_words = [0xff, 0, 0, 0, 0, 0, 1, 0];
        let mut tc_bytes = vec![0u8];
        // Bytes start at 32+1+8+2 = 43; +1 password = 44 (even): no pad.
        tc_bytes.extend(utf16("\\\\192.168.1.3\\PUBLIC\0"));
        tc_bytes.extend_from_slice(b"?????\0");
        let tc = smb1(0x75, false, 2, 0, &tc_words, &tc_bytes);
        let tc_r = smb1(0x75, true, 2, 7, &[0xff, 0, 0, 0, 0, 0], b"A:\0");
        // NT_CREATE_ANDX: 24 words, name length at word byte 5.
        let name = utf16("\\eicar\0");
        let mut cr_words = vec![0u8; 48];
        cr_words[0] = 0xff;
        cr_words[5..7].copy_from_slice(&(name.len() as u16).to_le_bytes());
        cr_words[35..39].copy_from_slice(&5u32.to_le_bytes());
        // Bytes start at 32+1+48+2 = 83 (odd): one pad byte before the unicode name.
        let mut cr_bytes = vec![0u8];
        cr_bytes.extend_from_slice(&name);
        let cr = smb1(0xa2, false, 3, 7, &cr_words, &cr_bytes);
        let mut crr_words = vec![0u8; 68];
        crr_words[0] = 0xff;
        crr_words[5..7].copy_from_slice(&0x4001u16.to_le_bytes());
        crr_words[7..11].copy_from_slice(&2u32.to_le_bytes());
        let cr_r = smb1(0xa2, true, 3, 7, &crr_words, &[]);
        // WRITE_ANDX of 68 bytes at data offset 32+1+24+2+1 = 60.
        let mut w_words = vec![0u8; 24];
        w_words[0] = 0xff;
        w_words[4..6].copy_from_slice(&0x4001u16.to_le_bytes());
        w_words[20..22].copy_from_slice(&68u16.to_le_bytes());
        w_words[22..24].copy_from_slice(&60u16.to_le_bytes());
        let mut w_bytes = vec![0u8];
        w_bytes.extend(std::iter::repeat_n(b'X', 68));
        let w = smb1(0x2f, false, 4, 7, &w_words, &w_bytes);
        // READ_ANDX request and a 10-byte response.
        let mut r_words = vec![0u8; 20];
        r_words[0] = 0xff;
        r_words[4..6].copy_from_slice(&0x4001u16.to_le_bytes());
        let r = smb1(0x2e, false, 5, 7, &r_words, &[]);
        let mut rr_words = vec![0u8; 24];
        rr_words[0] = 0xff;
        rr_words[10..12].copy_from_slice(&10u16.to_le_bytes());
        rr_words[12..14].copy_from_slice(&60u16.to_le_bytes());
        let rr = smb1(0x2e, true, 5, 7, &rr_words, &[0; 11]);
        let cl = smb1(0x04, false, 6, 7, &[0x01, 0x40, 0, 0, 0, 0], &[]);
        let cl_r = smb1(0x04, true, 6, 7, &[], &[]);
        let ev = feed_all(
            &mut c,
            &[
                (C, neg),
                (S, neg_r),
                (C, tc),
                (S, tc_r),
                (C, cr),
                (S, cr_r),
                (C, w),
                (C, r),
                (S, rr),
                (C, cl),
                (S, cl_r),
            ],
        );
        assert!(
            !ev.iter().any(|e| matches!(e, SmbEvent::Anomaly(_))),
            "{ev:?}"
        );
        assert_eq!(c.dialect(), Some("NT LM 0.12"));
        assert_eq!(c.trees()[0].share, "\\\\192.168.1.3\\PUBLIC");
        assert_eq!(c.trees()[0].kind, ShareKind::Disk);
        let f = &c.files()[0];
        assert_eq!(f.name.as_deref(), Some("\\eicar"));
        assert_eq!(f.share.as_deref(), Some("\\\\192.168.1.3\\PUBLIC"));
        assert_eq!((f.bytes_written, f.bytes_read, f.created), (68, 10, true));
        let t = txs(&ev);
        assert_eq!(t[0].command, "SMB1_COMMAND_NEGOTIATE_PROTOCOL");
        assert_eq!(
            t[0].client_dialects,
            ["PC NETWORK PROGRAM 1.0", "NT LM 0.12"]
        );
        assert_eq!(t[2].fuid.as_deref(), Some("4001"));
        assert_eq!(t.last().unwrap().bytes_written, Some(68));
        assert!(c.summary().signing_required);
    }

    #[test]
    fn ntlmssp_user_is_read() {
        let mut m = b"NTLMSSP\0".to_vec();
        m.extend_from_slice(&3u32.to_le_bytes());
        m.resize(64, 0);
        m[60] = 1;
        let dom = utf16("CORP");
        let user = utf16("alice");
        let host = utf16("WS1");
        let mut off = 64u32;
        for (at, s) in [(28usize, &dom), (36, &user), (44, &host)] {
            m[at..at + 2].copy_from_slice(&(s.len() as u16).to_le_bytes());
            m[at + 4..at + 8].copy_from_slice(&off.to_le_bytes());
            off += s.len() as u32;
        }
        m.extend_from_slice(&dom);
        m.extend_from_slice(&user);
        m.extend_from_slice(&host);
        let mut blob = vec![0xa1, 0x82, 0x01, 0x00];
        blob.extend_from_slice(&m);
        assert_eq!(
            ntlmssp_auth(&blob, 64),
            Some(Ntlmssp {
                domain: "CORP".into(),
                user: "alice".into(),
                host: "WS1".into()
            })
        );
        // A bogus offset yields empty fields, never a panic.
        m[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(ntlmssp_auth(&m, 64).unwrap().user, "");
    }

    #[test]
    fn smb311_contexts_announce_encryption() {
        let mut body = negotiate_resp(0x0311, 1, 0);
        body[6..8].copy_from_slice(&2u16.to_le_bytes());
        let ctx_off = 64 + body.len() as u32;
        body[60..64].copy_from_slice(&ctx_off.to_le_bytes());
        // Preauth context (8 data bytes), then encryption with AES-128-GCM.
        body.extend_from_slice(&[1, 0, 8, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]);
        body.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 1, 0, 2, 0]);
        let mut c = SmbConnection::new(SmbConfig::default());
        let ev = feed_all(&mut c, &[(S, pdu(&[M2::resp(0, 0).body(body)]))]);
        assert!(ev.contains(&SmbEvent::Negotiated {
            dialect: "3.11".into(),
            signing_required: false,
            encryption_capable: true
        }));
    }

    #[test]
    fn nbss_session_messages_and_keepalive() {
        let mut c = SmbConnection::new(SmbConfig::default());
        let mut out = Vec::new();
        let mut req = vec![0x81, 0, 0, 68];
        req.extend(std::iter::repeat_n(b'A', 68));
        c.feed(C, &req, false, &mut out);
        c.feed(S, &[0x82, 0, 0, 0], false, &mut out);
        c.feed(C, &[0x85, 0, 0, 0], false, &mut out);
        c.feed(C, &session_script()[0].1, false, &mut out);
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(c.counters().pdus, 4);
        assert_eq!(c.st.pending.len(), 1);
    }

    proptest! {
        #[test]
        fn never_panics_on_garbage(chunks in proptest::collection::vec(
            (any::<bool>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..400)), 0..24)) {
            let cfg = SmbConfig { header_keep: 128, max_files: 4, max_open: 4, max_trees: 2, max_pending: 4, max_name: 16 };
            let mut c = SmbConnection::new(cfg);
            let mut out = Vec::new();
            for (to_server, gap, data) in &chunks {
                let dir = if *to_server { C } else { S };
                if *gap && data.len() % 3 == 0 {
                    c.skip(dir, data.len() as u64 * 97, &mut out);
                } else {
                    c.feed(dir, data, *gap, &mut out);
                }
            }
            c.finish(&mut out);
            prop_assert!(c.files().len() <= 4 && c.st.pending.len() <= 4 && c.trees().len() <= 2);
            let _ = serde_json::to_string(&c.summary());
        }

        #[test]
        fn never_panics_on_mutated_sessions(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..40),
                                            split in 1usize..200) {
            let mut script = session_script();
            script.push((C, smb1(0xa2, false, 3, 7, &[0xff; 48], &[0x41; 30])));
            let n = script.len();
            for (i, v) in &flips {
                let (_, b) = &mut script[i % n];
                let len = b.len();
                b[(i / n) % len] = *v;
            }
            let mut c = SmbConnection::new(SmbConfig::default());
            let mut out = Vec::new();
            for (d, b) in &script {
                for part in b.chunks(split) {
                    c.feed(*d, part, false, &mut out);
                }
            }
            c.finish(&mut out);
            // Byte counts can never exceed the bytes fed.
            let fed: usize = script.iter().map(|(_, b)| b.len()).sum();
            let s = c.summary();
            prop_assert!(s.file_bytes_read + s.file_bytes_written <= fed as u64);
        }
    }
}
