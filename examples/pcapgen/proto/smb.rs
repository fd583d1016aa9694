//! SMB over NBSS: SMB2/3 messages per MS-SMB2 §2.2, the SMB3 TRANSFORM header (§2.2.41),
//! SMB1 NEGOTIATE per MS-CIFS/MS-SMB, and the RFC 1002 session request used on port 139.
//!
//! Every SMB2 message is a 64-byte header followed by a fixed-size body whose first two
//! bytes are its StructureSize (which counts one byte of the variable buffer when there is
//! one); buffer offsets are measured from the start of the SMB2 header.

use super::{le16, le32, le64, patch_le16, patch_le32, utf16le};
use crate::rng::Rng;

/// NEGOTIATE.
pub const NEGOTIATE: u16 = 0x0000;
/// SESSION_SETUP.
pub const SESSION_SETUP: u16 = 0x0001;
/// LOGOFF.
pub const LOGOFF: u16 = 0x0002;
/// TREE_CONNECT.
pub const TREE_CONNECT: u16 = 0x0003;
/// TREE_DISCONNECT.
pub const TREE_DISCONNECT: u16 = 0x0004;
/// CREATE.
pub const CREATE: u16 = 0x0005;
/// CLOSE.
pub const CLOSE: u16 = 0x0006;
/// READ.
pub const READ: u16 = 0x0008;
/// WRITE.
pub const WRITE: u16 = 0x0009;

/// STATUS_MORE_PROCESSING_REQUIRED: the first SESSION_SETUP round trip.
pub const STATUS_MORE_PROCESSING_REQUIRED: u32 = 0xC000_0016;

/// SMB2 header size.
pub const HEADER_LEN: usize = 64;
/// TRANSFORM header size.
pub const TRANSFORM_LEN: usize = 52;
/// WRITE request bytes before the data (header + 48-byte fixed body).
pub const WRITE_HEAD_LEN: usize = 112;
/// READ response bytes before the data (header + 16-byte fixed body).
pub const READ_RESP_HEAD_LEN: usize = 80;

/// 2026-11-02T09:00:00Z as a Windows FILETIME (100 ns since 1601).
const FILETIME_EPOCH: u64 = (1_793_610_000 + 11_644_473_600) * 10_000_000;

/// The fields of an SMB2 sync header that vary between messages.
#[derive(Debug, Clone, Copy)]
pub struct Hdr {
    /// Command code.
    pub command: u16,
    /// MessageId.
    pub mid: u64,
    /// SessionId (0 until SESSION_SETUP assigns one).
    pub sid: u64,
    /// TreeId.
    pub tid: u32,
    /// NTSTATUS (responses).
    pub status: u32,
    /// Server-to-client (SMB2_FLAGS_SERVER_TO_REDIR).
    pub response: bool,
}

/// The 64-byte SMB2 header.
fn header(h: &Hdr) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(&[0xFE, b'S', b'M', b'B']);
    le16(&mut out, HEADER_LEN as u16);
    le16(&mut out, 1); // CreditCharge
    le32(&mut out, if h.response { h.status } else { 0 });
    le16(&mut out, h.command);
    le16(&mut out, if h.response { 32 } else { 64 }); // credits granted / requested
    le32(&mut out, u32::from(h.response));
    le32(&mut out, 0); // NextCommand
    le64(&mut out, h.mid);
    le32(&mut out, 0xFEFF); // Reserved (ProcessId)
    le32(&mut out, h.tid);
    le64(&mut out, h.sid);
    out.extend_from_slice(&[0; 16]); // Signature: unsigned
    out
}

/// The 4-byte NBSS session-message header (type 0, 24-bit length) for a message of `len`.
pub fn nbss(len: usize) -> [u8; 4] {
    let [_, a, b, c] = (len as u32).to_be_bytes();
    [0x00, a, b, c]
}

/// `msg` behind its NBSS header.
pub fn framed(msg: &[u8]) -> Vec<u8> {
    let mut out = nbss(msg.len()).to_vec();
    out.extend_from_slice(msg);
    out
}

/// A dialect revision as MS-SMB2 spells it (`3.1.1`).
pub fn dialect_name(d: u16) -> String {
    match d {
        0x0202 => "2.0.2".into(),
        0x0210 => "2.1".into(),
        0x0300 => "3.0".into(),
        0x0302 => "3.0.2".into(),
        0x0311 => "3.1.1".into(),
        other => format!("0x{other:04x}"),
    }
}

/// Pads `out` with zeros to a multiple of 8 bytes (negotiate contexts are 8-aligned).
fn pad8(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(8) {
        out.push(0);
    }
}

/// Appends the SMB 3.1.1 negotiate contexts: pre-auth integrity (SHA-512 + 32-byte salt)
/// and encryption capabilities (`ciphers`).
fn negotiate_contexts(out: &mut Vec<u8>, rng: &mut Rng, ciphers: &[u16]) {
    pad8(out);
    le16(out, 0x0001);
    le16(out, 38);
    le32(out, 0);
    le16(out, 1); // HashAlgorithmCount
    le16(out, 32); // SaltLength
    le16(out, 0x0001); // SHA-512
    out.extend_from_slice(&rng.bytes(32));
    pad8(out);
    le16(out, 0x0002);
    le16(out, 2 + 2 * ciphers.len() as u16);
    le32(out, 0);
    le16(out, ciphers.len() as u16);
    for c in ciphers {
        le16(out, *c);
    }
}

/// NEGOTIATE request offering `dialects`; with 0x0311 it carries negotiate contexts.
pub fn negotiate_request(rng: &mut Rng, dialects: &[u16]) -> Vec<u8> {
    let h = Hdr {
        command: NEGOTIATE,
        mid: 0,
        sid: 0,
        tid: 0,
        status: 0,
        response: false,
    };
    let mut out = header(&h);
    le16(&mut out, 36);
    le16(&mut out, dialects.len() as u16);
    le16(&mut out, 0x0001); // SecurityMode: signing enabled
    le16(&mut out, 0);
    le32(&mut out, 0x0000_007F); // Capabilities: DFS … ENCRYPTION
    out.extend_from_slice(&rng.bytes(16)); // ClientGuid
    let with_contexts = dialects.contains(&0x0311);
    let ctx_field = out.len();
    le64(&mut out, 0); // NegotiateContextOffset/Count/Reserved2, or ClientStartTime
    for d in dialects {
        le16(&mut out, *d);
    }
    if with_contexts {
        pad8(&mut out);
        let offset = out.len() as u32;
        patch_le32(&mut out, ctx_field, offset);
        patch_le16(&mut out, ctx_field + 4, 2);
        negotiate_contexts(&mut out, rng, &[0x0002, 0x0001]);
    }
    out
}

/// NEGOTIATE response selecting `dialect`, with a SPNEGO token of `blob_len` bytes.
pub fn negotiate_response(rng: &mut Rng, dialect: u16, blob_len: usize) -> Vec<u8> {
    let h = Hdr {
        command: NEGOTIATE,
        mid: 0,
        sid: 0,
        tid: 0,
        status: 0,
        response: true,
    };
    let mut out = header(&h);
    le16(&mut out, 65);
    le16(&mut out, 0x0001);
    le16(&mut out, dialect);
    le16(&mut out, if dialect == 0x0311 { 2 } else { 0 });
    out.extend_from_slice(&rng.bytes(16)); // ServerGuid
    le32(&mut out, 0x0000_002F);
    le32(&mut out, 8 << 20); // MaxTransactSize
    le32(&mut out, 8 << 20); // MaxReadSize
    le32(&mut out, 8 << 20); // MaxWriteSize
    le64(&mut out, FILETIME_EPOCH);
    le64(&mut out, 0);
    le16(&mut out, 128);
    le16(&mut out, blob_len as u16);
    let ctx_field = out.len();
    le32(&mut out, 0);
    out.extend_from_slice(&spnego_blob(rng, blob_len));
    if dialect == 0x0311 {
        pad8(&mut out);
        let offset = out.len() as u32;
        patch_le32(&mut out, ctx_field, offset);
        negotiate_contexts(&mut out, rng, &[0x0002]);
    }
    out
}

/// An opaque security token: a GSS-API/SPNEGO wrapper followed by random bytes.
fn spnego_blob(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut b = vec![
        0x60, 0x82, 0x00, 0x00, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02,
    ];
    b.extend_from_slice(b"NTLMSSP\0");
    b.extend(rng.bytes(len.saturating_sub(b.len())));
    b.truncate(len);
    b
}

/// SESSION_SETUP request carrying a `blob_len`-byte security token.
pub fn session_setup_request(rng: &mut Rng, mid: u64, sid: u64, blob_len: usize) -> Vec<u8> {
    let h = Hdr {
        command: SESSION_SETUP,
        mid,
        sid,
        tid: 0,
        status: 0,
        response: false,
    };
    let mut out = header(&h);
    le16(&mut out, 25);
    out.push(0); // Flags
    out.push(0x01); // SecurityMode
    le32(&mut out, 0x0000_0001);
    le32(&mut out, 0); // Channel
    le16(&mut out, 88);
    le16(&mut out, blob_len as u16);
    le64(&mut out, 0);
    out.extend_from_slice(&spnego_blob(rng, blob_len));
    out
}

/// The final SPNEGO token of a successful session setup.
const ACCEPT_COMPLETED: [u8; 9] = [0xa1, 0x07, 0x30, 0x05, 0xa0, 0x03, 0x0a, 0x01, 0x00];

/// SESSION_SETUP response; `encrypt` sets SMB2_SESSION_FLAG_ENCRYPT_DATA. A success status
/// carries the final accept-completed token instead of `blob_len` opaque bytes.
pub fn session_setup_response(
    rng: &mut Rng,
    mid: u64,
    sid: u64,
    status: u32,
    blob_len: usize,
    encrypt: bool,
) -> Vec<u8> {
    let h = Hdr {
        command: SESSION_SETUP,
        mid,
        sid,
        tid: 0,
        status,
        response: true,
    };
    let mut out = header(&h);
    // The last round carries SPNEGO's negTokenResp { negState accept-completed }.
    let blob = if status == 0 {
        ACCEPT_COMPLETED.to_vec()
    } else {
        spnego_blob(rng, blob_len)
    };
    le16(&mut out, 9);
    le16(&mut out, if encrypt { 0x0004 } else { 0 });
    le16(&mut out, 72);
    le16(&mut out, blob.len() as u16);
    out.extend_from_slice(&blob);
    out
}

/// TREE_CONNECT request for a UNC `path` such as `\\fs01\finance`.
pub fn tree_connect_request(mid: u64, sid: u64, path: &str) -> Vec<u8> {
    let h = Hdr {
        command: TREE_CONNECT,
        mid,
        sid,
        tid: 0,
        status: 0,
        response: false,
    };
    let mut out = header(&h);
    let name = utf16le(path);
    le16(&mut out, 9);
    le16(&mut out, 0);
    le16(&mut out, 72);
    le16(&mut out, name.len() as u16);
    out.extend_from_slice(&name);
    out
}

/// TREE_CONNECT response; `pipe` marks the IPC$ share (share type 2).
pub fn tree_connect_response(mid: u64, sid: u64, tid: u32, pipe: bool) -> Vec<u8> {
    let h = Hdr {
        command: TREE_CONNECT,
        mid,
        sid,
        tid,
        status: 0,
        response: true,
    };
    let mut out = header(&h);
    le16(&mut out, 16);
    out.push(if pipe { 0x02 } else { 0x01 });
    out.push(0);
    le32(&mut out, if pipe { 0x0000_0030 } else { 0x0000_0800 });
    le32(&mut out, 0);
    le32(&mut out, 0x001F_01FF); // MaximalAccess
    out
}

/// How a CREATE opens its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// FILE_OPEN for reading.
    Read,
    /// FILE_OVERWRITE_IF for writing.
    Write,
    /// FILE_OPEN of a named pipe, read/write.
    Pipe,
}

/// CREATE request for `name` (relative to the share, UTF-16LE in the buffer at offset 120).
pub fn create_request(mid: u64, sid: u64, tid: u32, name: &str, open: Open) -> Vec<u8> {
    let h = Hdr {
        command: CREATE,
        mid,
        sid,
        tid,
        status: 0,
        response: false,
    };
    let mut out = header(&h);
    let name16 = utf16le(name);
    let (access, disposition, options) = match open {
        Open::Read => (0x0012_0089, 1, 0x0000_0040),
        Open::Write => (0x0012_0196, 5, 0x0000_0040),
        Open::Pipe => (0x0012_019F, 1, 0x0000_0000),
    };
    le16(&mut out, 57);
    out.push(0); // SecurityFlags
    out.push(0); // RequestedOplockLevel: none
    le32(&mut out, 2); // ImpersonationLevel: Impersonation
    le64(&mut out, 0);
    le64(&mut out, 0);
    le32(&mut out, access);
    le32(&mut out, 0x80); // FILE_ATTRIBUTE_NORMAL
    le32(&mut out, 0x07); // share read/write/delete
    le32(&mut out, disposition);
    le32(&mut out, options);
    le16(&mut out, 120);
    le16(&mut out, name16.len() as u16);
    le32(&mut out, 0);
    le32(&mut out, 0);
    if name16.is_empty() {
        out.push(0);
    } else {
        out.extend_from_slice(&name16);
    }
    out
}

/// CREATE response with `file_id` and end-of-file `size`.
pub fn create_response(
    mid: u64,
    sid: u64,
    tid: u32,
    file_id: &[u8; 16],
    size: u64,
    created: bool,
) -> Vec<u8> {
    let h = Hdr {
        command: CREATE,
        mid,
        sid,
        tid,
        status: 0,
        response: true,
    };
    let mut out = header(&h);
    le16(&mut out, 89);
    out.push(0);
    out.push(0);
    le32(&mut out, if created { 2 } else { 1 });
    for _ in 0..4 {
        le64(&mut out, FILETIME_EPOCH);
    }
    le64(&mut out, size.div_ceil(4096) * 4096);
    le64(&mut out, size);
    le32(&mut out, 0x80);
    le32(&mut out, 0);
    out.extend_from_slice(file_id);
    le32(&mut out, 0);
    le32(&mut out, 0);
    out
}

/// WRITE request header and fixed part; `len` data bytes follow at offset 112.
pub fn write_request_head(
    mid: u64,
    sid: u64,
    tid: u32,
    file_id: &[u8; 16],
    offset: u64,
    len: u32,
) -> Vec<u8> {
    let h = Hdr {
        command: WRITE,
        mid,
        sid,
        tid,
        status: 0,
        response: false,
    };
    let mut out = header(&h);
    le16(&mut out, 49);
    le16(&mut out, WRITE_HEAD_LEN as u16);
    le32(&mut out, len);
    le64(&mut out, offset);
    out.extend_from_slice(file_id);
    le32(&mut out, 0);
    le32(&mut out, 0);
    le16(&mut out, 0);
    le16(&mut out, 0);
    le32(&mut out, 0);
    out
}

/// WRITE response acknowledging `count` bytes.
pub fn write_response(mid: u64, sid: u64, tid: u32, count: u32) -> Vec<u8> {
    let h = Hdr {
        command: WRITE,
        mid,
        sid,
        tid,
        status: 0,
        response: true,
    };
    let mut out = header(&h);
    le16(&mut out, 17);
    le16(&mut out, 0);
    le32(&mut out, count);
    le32(&mut out, 0);
    le16(&mut out, 0);
    le16(&mut out, 0);
    out
}

/// READ request for `len` bytes at `offset`.
pub fn read_request(
    mid: u64,
    sid: u64,
    tid: u32,
    file_id: &[u8; 16],
    offset: u64,
    len: u32,
) -> Vec<u8> {
    let h = Hdr {
        command: READ,
        mid,
        sid,
        tid,
        status: 0,
        response: false,
    };
    let mut out = header(&h);
    le16(&mut out, 49);
    out.push(0x50); // Padding: data wanted at offset 80 of the response
    out.push(0);
    le32(&mut out, len);
    le64(&mut out, offset);
    out.extend_from_slice(file_id);
    le32(&mut out, 1); // MinimumCount
    le32(&mut out, 0);
    le32(&mut out, 0);
    le16(&mut out, 0);
    le16(&mut out, 0);
    out.push(0); // the one-byte Buffer StructureSize 49 counts
    out
}

/// READ response header and fixed part; `len` data bytes follow at offset 80.
pub fn read_response_head(mid: u64, sid: u64, tid: u32, len: u32) -> Vec<u8> {
    let h = Hdr {
        command: READ,
        mid,
        sid,
        tid,
        status: 0,
        response: true,
    };
    let mut out = header(&h);
    le16(&mut out, 17);
    out.push(READ_RESP_HEAD_LEN as u8);
    out.push(0);
    le32(&mut out, len);
    le32(&mut out, 0);
    le32(&mut out, 0);
    out
}

/// CLOSE request.
pub fn close_request(mid: u64, sid: u64, tid: u32, file_id: &[u8; 16]) -> Vec<u8> {
    let h = Hdr {
        command: CLOSE,
        mid,
        sid,
        tid,
        status: 0,
        response: false,
    };
    let mut out = header(&h);
    le16(&mut out, 24);
    le16(&mut out, 0x0001); // POSTQUERY_ATTRIB
    le32(&mut out, 0);
    out.extend_from_slice(file_id);
    out
}

/// CLOSE response reporting the final `size`.
pub fn close_response(mid: u64, sid: u64, tid: u32, size: u64) -> Vec<u8> {
    let h = Hdr {
        command: CLOSE,
        mid,
        sid,
        tid,
        status: 0,
        response: true,
    };
    let mut out = header(&h);
    le16(&mut out, 60);
    le16(&mut out, 0x0001);
    le32(&mut out, 0);
    for _ in 0..4 {
        le64(&mut out, FILETIME_EPOCH);
    }
    le64(&mut out, size.div_ceil(4096) * 4096);
    le64(&mut out, size);
    le32(&mut out, 0x80);
    out
}

/// A 4-byte-body message (TREE_DISCONNECT, LOGOFF), request or response.
pub fn simple(command: u16, mid: u64, sid: u64, tid: u32, response: bool) -> Vec<u8> {
    let h = Hdr {
        command,
        mid,
        sid,
        tid,
        status: 0,
        response,
    };
    let mut out = header(&h);
    le16(&mut out, 4);
    le16(&mut out, 0);
    out
}

/// The 52-byte TRANSFORM header for an encrypted message of `original_len` bytes.
pub fn transform_header(rng: &mut Rng, sid: u64, original_len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(TRANSFORM_LEN);
    out.extend_from_slice(&[0xFD, b'S', b'M', b'B']);
    out.extend_from_slice(&rng.bytes(16)); // Signature (AEAD tag)
    out.extend_from_slice(&rng.bytes(12)); // AES-GCM nonce …
    out.extend_from_slice(&[0; 4]); // … padded to 16
    le32(&mut out, original_len as u32);
    le16(&mut out, 0);
    le16(&mut out, 0x0001); // Flags: encrypted
    le64(&mut out, sid);
    out
}

/// A DCE/RPC bind (ptype 11) to the srvsvc interface, as written to the `srvsvc` pipe.
pub fn dcerpc_bind() -> Vec<u8> {
    let mut out = vec![5, 0, 11, 0x03, 0x10, 0, 0, 0];
    le16(&mut out, 72); // frag_length
    le16(&mut out, 0); // auth_length
    le32(&mut out, 2); // call_id
    le16(&mut out, 4280);
    le16(&mut out, 4280);
    le32(&mut out, 0); // assoc_group
    out.extend_from_slice(&[1, 0, 0, 0]); // one context item
    le16(&mut out, 0); // context id
    out.extend_from_slice(&[1, 0]); // one transfer syntax
    // srvsvc 4b324fc8-1670-01d3-1278-5a47bf6ee188 v3.0
    out.extend_from_slice(&[
        0xc8, 0x4f, 0x32, 0x4b, 0x70, 0x16, 0xd3, 0x01, 0x12, 0x78, 0x5a, 0x47, 0xbf, 0x6e, 0xe1,
        0x88,
    ]);
    le32(&mut out, 3);
    // NDR 8a885d04-1ceb-11c9-9fe8-08002b104860 v2
    out.extend_from_slice(&[
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48,
        0x60,
    ]);
    le32(&mut out, 2);
    out
}

/// The matching bind_ack (ptype 12) as read back from the pipe.
pub fn dcerpc_bind_ack() -> Vec<u8> {
    let mut out = vec![5, 0, 12, 0x03, 0x10, 0, 0, 0];
    le16(&mut out, 68);
    le16(&mut out, 0);
    le32(&mut out, 2);
    le16(&mut out, 4280);
    le16(&mut out, 4280);
    le32(&mut out, 0x0000_53f0);
    le16(&mut out, 13); // secondary address length, "\PIPE\srvsvc\0"
    out.extend_from_slice(b"\\PIPE\\srvsvc\0");
    out.push(0); // align to 4
    out.extend_from_slice(&[1, 0, 0, 0]);
    le16(&mut out, 0); // result: acceptance
    le16(&mut out, 0);
    out.extend_from_slice(&[
        0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11, 0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48,
        0x60,
    ]);
    le32(&mut out, 2);
    out
}

/// The SMB1 dialect strings a legacy client offers.
pub const SMB1_DIALECTS: [&str; 6] = [
    "PC NETWORK PROGRAM 1.0",
    "LANMAN1.0",
    "Windows for Workgroups 3.1a",
    "LM1.2X002",
    "LANMAN2.1",
    "NT LM 0.12",
];

/// The 32-byte SMB1 header for `command`.
fn smb1_header(command: u8, reply: bool, mid: u16) -> Vec<u8> {
    let mut out = vec![0xFF, b'S', b'M', b'B', command];
    le32(&mut out, 0); // Status
    out.push(if reply { 0x98 } else { 0x18 });
    le16(&mut out, 0xC853); // Flags2: unicode, NT status, extended security, long names
    le16(&mut out, 0); // PIDHigh
    out.extend_from_slice(&[0; 8]); // SecurityFeatures
    le16(&mut out, 0);
    le16(&mut out, 0xFFFF); // TID
    le16(&mut out, 0xFEFF); // PIDLow
    le16(&mut out, 0); // UID
    le16(&mut out, mid);
    out
}

/// SMB1 NEGOTIATE (0x72) request offering [`SMB1_DIALECTS`].
pub fn smb1_negotiate_request() -> Vec<u8> {
    let mut out = smb1_header(0x72, false, 0);
    out.push(0); // WordCount
    let mut bytes = Vec::new();
    for d in SMB1_DIALECTS {
        bytes.push(0x02); // buffer format: dialect
        bytes.extend_from_slice(d.as_bytes());
        bytes.push(0);
    }
    le16(&mut out, bytes.len() as u16);
    out.extend_from_slice(&bytes);
    out
}

/// SMB1 NEGOTIATE response choosing `NT LM 0.12` with extended security.
pub fn smb1_negotiate_response(rng: &mut Rng) -> Vec<u8> {
    let mut out = smb1_header(0x72, true, 0);
    out.push(17); // WordCount
    le16(&mut out, (SMB1_DIALECTS.len() - 1) as u16); // DialectIndex
    out.push(0x03); // SecurityMode: user level, challenge/response
    le16(&mut out, 50); // MaxMpxCount
    le16(&mut out, 1); // MaxNumberVcs
    le32(&mut out, 16_644); // MaxBufferSize
    le32(&mut out, 65_536); // MaxRawSize
    le32(&mut out, 0); // SessionKey
    le32(&mut out, 0x8000_E3FD); // Capabilities, CAP_EXTENDED_SECURITY included
    le64(&mut out, FILETIME_EPOCH);
    le16(&mut out, 0); // ServerTimeZone
    out.push(0); // ChallengeLength
    let blob = spnego_blob(rng, 74);
    le16(&mut out, (16 + blob.len()) as u16);
    out.extend_from_slice(&rng.bytes(16)); // ServerGUID
    out.extend_from_slice(&blob);
    out
}

/// A NetBIOS name in RFC 1001 first-level encoding: length 32, 32 letters, empty scope.
fn netbios_name(name: &str, suffix: u8) -> Vec<u8> {
    let mut raw = [b' '; 16];
    for (dst, src) in raw
        .iter_mut()
        .zip(name.to_ascii_uppercase().bytes().take(15))
    {
        *dst = src;
    }
    raw[15] = suffix;
    let mut out = vec![0x20];
    for b in raw {
        out.push(b'A' + (b >> 4));
        out.push(b'A' + (b & 0x0F));
    }
    out.push(0);
    out
}

/// NBSS SESSION REQUEST (type 0x81) from `calling` to `called`, as sent first on port 139.
pub fn nbss_session_request(called: &str, calling: &str) -> Vec<u8> {
    let mut body = netbios_name(called, 0x20);
    body.extend_from_slice(&netbios_name(calling, 0x00));
    let mut out = nbss(body.len()).to_vec();
    if let Some(kind) = out.first_mut() {
        *kind = 0x81;
    }
    out.extend_from_slice(&body);
    out
}

/// NBSS POSITIVE SESSION RESPONSE (type 0x82, no body).
pub fn nbss_positive_response() -> Vec<u8> {
    vec![0x82, 0, 0, 0]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16le(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    #[test]
    fn structure_sizes_and_offsets() {
        let mut rng = Rng::new(1);
        let fid = [7u8; 16];
        let neg = negotiate_request(&mut rng, &[0x0202, 0x0210, 0x0300, 0x0302, 0x0311]);
        assert_eq!(&neg[..4], b"\xfeSMB");
        assert_eq!(u16le(&neg, 4), 64);
        assert_eq!(u16le(&neg, 64), 36);
        let ctx_off = u32::from_le_bytes(neg[92..96].try_into().unwrap()) as usize;
        assert_eq!(ctx_off % 8, 0);
        assert_eq!(u16le(&neg, ctx_off), 1); // preauth context first
        assert_eq!(u16le(&neg, ctx_off + 2), 38);

        let resp = negotiate_response(&mut rng, 0x0311, 74);
        assert_eq!(u16le(&resp, 64), 65);
        assert_eq!(u16le(&resp, 68), 0x0311);
        assert_eq!(u16le(&resp, 120), 128);

        let create = create_request(1, 2, 3, "reports\\q3.xlsx", Open::Read);
        assert_eq!(u16le(&create, 64), 57);
        assert_eq!(u16le(&create, 108), 120);
        let name_len = u16le(&create, 110) as usize;
        assert_eq!(
            &create[120..120 + name_len],
            utf16le("reports\\q3.xlsx").as_slice()
        );
        assert_eq!(create.len(), 120 + name_len);

        assert_eq!(create_response(1, 2, 3, &fid, 10, false).len(), 64 + 88);
        assert_eq!(
            write_request_head(1, 2, 3, &fid, 0, 10).len(),
            WRITE_HEAD_LEN
        );
        assert_eq!(read_request(1, 2, 3, &fid, 0, 10).len(), 64 + 49);
        assert_eq!(read_response_head(1, 2, 3, 10).len(), READ_RESP_HEAD_LEN);
        assert_eq!(write_response(1, 2, 3, 10).len(), 64 + 16);
        assert_eq!(close_request(1, 2, 3, &fid).len(), 64 + 24);
        assert_eq!(close_response(1, 2, 3, 9).len(), 64 + 60);
        assert_eq!(tree_connect_response(1, 2, 3, false).len(), 64 + 16);
        assert_eq!(session_setup_request(&mut rng, 1, 0, 74).len(), 88 + 74);
        assert_eq!(transform_header(&mut rng, 5, 100).len(), TRANSFORM_LEN);
        assert_eq!(dcerpc_bind().len(), 72);
        assert_eq!(dcerpc_bind_ack().len(), 68);
    }

    #[test]
    fn nbss_and_smb1() {
        assert_eq!(nbss(0x01_2345), [0, 0x01, 0x23, 0x45]);
        let req = nbss_session_request("FS01", "WS-0042");
        assert_eq!(req[0], 0x81);
        assert_eq!(req.len(), 4 + 68);
        assert_eq!(req[4], 0x20);
        // "F" = 0x46 encodes as 'E' 'G'.
        assert_eq!(&req[5..7], b"EG");
        let neg = smb1_negotiate_request();
        assert_eq!(&neg[..5], b"\xffSMB\x72");
        assert!(neg.windows(11).any(|w| w == b"NT LM 0.12\0"));
        let mut rng = Rng::new(2);
        let resp = smb1_negotiate_response(&mut rng);
        assert_eq!(resp[32], 17);
    }
}
