//! SMB over the NetBIOS session service (RFC 1002) or direct TCP (MS-SMB2 §2.1).
//!
//! Evidence, strongest first:
//! * an NBSS message (type 0x00, 24-bit length) whose body starts with `\xffSMB` (SMB1),
//!   `\xfeSMB` (SMB2/3, with the fixed header StructureSize 64), `\xfdSMB` (SMB3 transform:
//!   encrypted) or `\xfcSMB` (SMB3 compression transform), with a length that fits the header;
//! * an NBSS session request (0x81) whose two NetBIOS names are valid first-level encodings
//!   (length byte 32, then 32 letters `A`–`P`): 64 constrained bytes is strong structure, and
//!   the NetBIOS session service on TCP carries SMB in practice, so it stands alone;
//! * an NBSS positive (0x82) or negative (0x83) response is only 4–5 bytes: it needs the peer
//!   to be SMB too.
//!
//! Session-service messages and keep-alives before the first SMB header are skipped, so a
//! 139 connection is labelled by its SMB header when one follows. Random bytes match none of
//! this. After the match a watcher follows NBSS framing to read the dialect and to see
//! encryption or compression, bounded by [`super::SMB_WATCH_MESSAGES`].

use super::cursor::Cursor;
use super::{Miss, ProbeResult, Role, SMB_WATCH_MESSAGES, Signature, conclude, sig};
use crate::app_proto::AppProto;

/// NBSS message carrying an SMB1 header.
pub const SIG_SMB1: &str = "smb1-header";
/// NBSS message carrying an SMB2/3 header.
pub const SIG_SMB2: &str = "smb2-header";
/// SMB3 transform header (encrypted message).
pub const SIG_SMB3_ENCRYPTED: &str = "smb3-transform";
/// SMB3 compression transform header.
pub const SIG_SMB3_COMPRESSED: &str = "smb3-compression";
/// NBSS session request with valid NetBIOS names.
pub const SIG_SESSION_REQUEST: &str = "nbss-session-request";
/// NBSS positive session response.
pub const SIG_POSITIVE: &str = "nbss-positive-response";
/// NBSS negative session response.
pub const SIG_NEGATIVE: &str = "nbss-negative-response";

const NBSS_MESSAGE: u8 = 0x00;
const NBSS_REQUEST: u8 = 0x81;
const NBSS_POSITIVE: u8 = 0x82;
const NBSS_NEGATIVE: u8 = 0x83;
const NBSS_RETARGET: u8 = 0x84;
const NBSS_KEEPALIVE: u8 = 0x85;

/// Session-service messages skipped before giving up on finding an SMB header.
const MAX_PRELUDE: usize = 4;

/// Bytes the watcher gathers per message: NBSS header (4) + SMB2 header (64) + the
/// NEGOTIATE response's StructureSize, SecurityMode and DialectRevision (6).
pub(crate) const WATCH_HEADER_LEN: usize = 4 + 64 + 6;

/// SMB protocol identifiers.
const SMB1: [u8; 4] = *b"\xffSMB";
const SMB2: [u8; 4] = *b"\xfeSMB";
const SMB3_TRANSFORM: [u8; 4] = *b"\xfdSMB";
const SMB3_COMPRESSION: [u8; 4] = *b"\xfcSMB";

/// NBSS framing tracker for one direction (SMB watcher).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NbssTrack {
    /// Body bytes still to skip in the current message.
    pub(crate) skip: u32,
    /// Header bytes of the current message gathered so far.
    pub(crate) hdr: [u8; WATCH_HEADER_LEN],
    pub(crate) hdr_len: u8,
    pub(crate) messages: u16,
    /// Framing lost (gap, garbage) or budget spent: stop reading.
    pub(crate) done: bool,
}

impl Default for NbssTrack {
    fn default() -> NbssTrack {
        NbssTrack {
            skip: 0,
            hdr: [0; WATCH_HEADER_LEN],
            hdr_len: 0,
            messages: 0,
            done: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SmbSeen {
    pub(crate) smb1: bool,
    pub(crate) smb2: bool,
    pub(crate) dialect: Option<u16>,
    pub(crate) encrypted: bool,
    pub(crate) compressed: bool,
}

/// Probes one direction's first bytes for SMB.
pub fn probe(data: &[u8]) -> ProbeResult {
    conclude(scan(data, false), false)
}

/// Like [`probe`], treating `data` as all there is.
pub fn probe_final(data: &[u8]) -> ProbeResult {
    conclude(scan(data, true), true)
}

/// True for dialects of the SMB 3.x family (0x0300 and later; 0x02FF is the SMB2 wildcard).
pub const fn is_smb3_dialect(d: u16) -> bool {
    d >= 0x0300 && d != 0x02FF
}

fn scan(data: &[u8], at_end: bool) -> Result<Signature, Miss> {
    let mut c = Cursor::new(data);
    // The strongest session-service evidence seen so far, used if no SMB header follows.
    let mut fallback: Option<Signature> = None;
    for _ in 0..=MAX_PRELUDE {
        let start = c.pos();
        let kind = match c.u8() {
            Ok(k) => k,
            Err(_) => return fallback.filter(|_| at_end).ok_or(Miss::NeedMore),
        };
        let step = match kind {
            NBSS_MESSAGE => return smb_message(&mut c, at_end),
            NBSS_REQUEST => session_request(&mut c).map(|()| {
                Some(sig(
                    AppProto::Smb,
                    SIG_SESSION_REQUEST,
                    start,
                    Role::Client,
                    false,
                ))
            }),
            NBSS_POSITIVE | NBSS_RETARGET => {
                let want = if kind == NBSS_POSITIVE { 0 } else { 6 };
                fixed_len(&mut c, want)
                    .map(|()| Some(sig(AppProto::Smb, SIG_POSITIVE, start, Role::Server, true)))
            }
            NBSS_NEGATIVE => {
                fixed_len(&mut c, 1)?;
                return match c.u8()? {
                    0x80..=0x83 | 0x8f => {
                        Ok(sig(AppProto::Smb, SIG_NEGATIVE, start, Role::Server, true))
                    }
                    _ => Err(Miss::NoMatch),
                };
            }
            NBSS_KEEPALIVE => fixed_len(&mut c, 0).map(|()| None),
            _ => return Err(Miss::NoMatch),
        };
        match step {
            Ok(Some(s)) => {
                if fallback.is_none_or(|f| f.needs_peer && !s.needs_peer) {
                    fallback = Some(s);
                }
            }
            Ok(None) => {}
            Err(Miss::NeedMore) => return fallback.filter(|_| at_end).ok_or(Miss::NeedMore),
            Err(Miss::NoMatch) => return Err(Miss::NoMatch),
        }
    }
    fallback.ok_or(Miss::NoMatch)
}

/// Reads an NBSS length that must equal `want`.
fn fixed_len(c: &mut Cursor<'_>, want: u32) -> Result<(), Miss> {
    if c.u24_be()? == want {
        Ok(())
    } else {
        Err(Miss::NoMatch)
    }
}

/// NBSS session request body: called name then calling name, both first-level encoded.
fn session_request(c: &mut Cursor<'_>) -> Result<(), Miss> {
    let len = c.u24_be()?;
    // Two names of 34 bytes (length, 32 letters, root label), plus optional scope labels.
    if !(68..=512).contains(&len) {
        return Err(Miss::NoMatch);
    }
    let mut body = Cursor::new(c.rest());
    for _ in 0..2 {
        netbios_name(&mut body)?;
    }
    if body.pos() != usize::try_from(len).map_err(|_| Miss::NoMatch)? {
        // Either the body is still arriving or the names do not fill the declared length.
        return if body.any_left() {
            Err(Miss::NoMatch)
        } else {
            Err(Miss::NeedMore)
        };
    }
    c.skip(body.pos())?;
    Ok(())
}

/// One encoded NetBIOS name (RFC 1001 §14.1) with its scope labels.
fn netbios_name(c: &mut Cursor<'_>) -> Result<(), Miss> {
    if c.u8()? != 32 {
        return Err(Miss::NoMatch);
    }
    if !c.take(32)?.iter().all(|b| (b'A'..=b'P').contains(b)) {
        return Err(Miss::NoMatch);
    }
    // Scope: DNS-style labels up to the root.
    for _ in 0..16 {
        match c.u8()? {
            0 => return Ok(()),
            n @ 1..=63 => c.skip(usize::from(n))?,
            _ => return Err(Miss::NoMatch),
        }
    }
    Err(Miss::NoMatch)
}

/// An NBSS session message (type byte already read): the SMB header inside. Once the
/// NBSS header and the 4-byte protocol identifier are in, later header fields refine the
/// check; when the stream ends before them, the identifier alone decides.
fn smb_message(c: &mut Cursor<'_>, at_end: bool) -> Result<Signature, Miss> {
    let len = c.u24_be()?;
    let at = c.pos();
    let magic: [u8; 4] = c.array()?;
    let (name, min_len) = match magic {
        SMB1 => (SIG_SMB1, 32),
        SMB2 => (SIG_SMB2, 64),
        // The transform header is 52 bytes and must carry something.
        SMB3_TRANSFORM => (SIG_SMB3_ENCRYPTED, 53),
        SMB3_COMPRESSION => (SIG_SMB3_COMPRESSED, 16),
        _ => return Err(Miss::NoMatch),
    };
    if len < min_len {
        return Err(Miss::NoMatch);
    }
    match header_role(c, magic) {
        Ok(role) => Ok(sig(AppProto::Smb, name, at, role, false)),
        Err(Miss::NeedMore) if at_end => Ok(sig(AppProto::Smb, name, at, Role::Either, false)),
        Err(e) => Err(e),
    }
}

/// Checks the fixed header fields after the protocol identifier and reads the sender role.
fn header_role(c: &mut Cursor<'_>, magic: [u8; 4]) -> Result<Role, Miss> {
    match magic {
        SMB1 => {
            // Command (1), status (4), flags (1); FLAGS_REPLY = 0x80.
            c.skip(5)?;
            Ok(if c.u8()? & 0x80 != 0 {
                Role::Server
            } else {
                Role::Client
            })
        }
        SMB2 => {
            if c.u16_le()? != 64 {
                return Err(Miss::NoMatch);
            }
            // CreditCharge (2), Status (4), Command (2), Credit (2), then Flags (4).
            c.skip(10)?;
            Ok(if c.u32_le()? & 1 != 0 {
                Role::Server
            } else {
                Role::Client
            })
        }
        SMB3_COMPRESSION => {
            // OriginalCompressedSegmentSize (4), then CompressionAlgorithm (MS-SMB2 2.2.42).
            c.skip(4)?;
            match c.u16_le()? {
                0..=5 => Ok(Role::Either),
                _ => Err(Miss::NoMatch),
            }
        }
        _ => Ok(Role::Either),
    }
}

/// Follows NBSS framing over one more chunk of a direction, noting dialect family, the
/// negotiated dialect, encryption and compression. Stops for good on anything that is not
/// NBSS (lost framing after a gap) or after [`SMB_WATCH_MESSAGES`] messages.
pub(crate) fn track(t: &mut NbssTrack, seen: &mut SmbSeen, chunk: &[u8]) {
    let mut c = Cursor::new(chunk);
    while c.any_left() && !t.done {
        if t.skip > 0 {
            let n = usize::try_from(t.skip)
                .unwrap_or(usize::MAX)
                .min(c.remaining());
            c.take_up_to(n);
            t.skip = t.skip.saturating_sub(u32::try_from(n).unwrap_or(u32::MAX));
            continue;
        }
        // A message start that is whole in this chunk and not NBSS ends the watch without
        // gathering it (the first bytes of every TCP flow pass through here).
        if t.hdr_len == 0
            && let Some(&start) = c.rest().first_chunk::<4>()
            && !valid_nbss_start(start)
        {
            t.done = true;
            break;
        }
        // Gather the 4-byte NBSS header, then as much of the SMB header as the message
        // holds (up to WATCH_HEADER_LEN); the first chunk may end anywhere in between.
        let want = header_want(t);
        let have = usize::from(t.hdr_len);
        let part = c.take_up_to(want.saturating_sub(have));
        if let Some(dst) = t.hdr.get_mut(have..have + part.len()) {
            dst.copy_from_slice(part);
        }
        t.hdr_len = u8::try_from(have + part.len()).unwrap_or(u8::MAX);
        let have = usize::from(t.hdr_len);
        if have < 4 {
            continue;
        }
        if !valid_nbss_header(&t.hdr) {
            t.done = true;
            break;
        }
        if have == header_want(t) {
            let [kind, a, b, d] = first4(&t.hdr);
            let len = u32::from_be_bytes([0, a, b, d]);
            inspect(
                t.hdr.get(4..have).unwrap_or_default(),
                kind,
                seen,
                &mut t.done,
            );
            t.skip = len.saturating_sub(u32::try_from(have - 4).unwrap_or(u32::MAX));
            t.hdr_len = 0;
            t.messages = t.messages.saturating_add(1);
            if t.messages >= SMB_WATCH_MESSAGES {
                t.done = true;
            }
        }
    }
}

/// Header bytes to gather for the current message.
fn header_want(t: &NbssTrack) -> usize {
    if t.hdr_len < 4 {
        return 4;
    }
    let [_, a, b, d] = first4(&t.hdr);
    let len = u32::from_be_bytes([0, a, b, d]);
    4 + usize::try_from(len)
        .unwrap_or(usize::MAX)
        .min(WATCH_HEADER_LEN - 4)
}

fn first4(h: &[u8; WATCH_HEADER_LEN]) -> [u8; 4] {
    let mut c = Cursor::new(h);
    c.array().unwrap_or([0; 4])
}

fn valid_nbss_header(h: &[u8; WATCH_HEADER_LEN]) -> bool {
    valid_nbss_start(first4(h))
}

fn valid_nbss_start(first4: [u8; 4]) -> bool {
    matches!(
        first4,
        [NBSS_MESSAGE, ..]
            | [
                NBSS_REQUEST | NBSS_POSITIVE | NBSS_NEGATIVE | NBSS_RETARGET | NBSS_KEEPALIVE,
                0,
                ..
            ]
    )
}

/// Looks at the start of one NBSS message body.
fn inspect(body: &[u8], kind: u8, seen: &mut SmbSeen, done: &mut bool) {
    if kind != NBSS_MESSAGE {
        return;
    }
    let mut c = Cursor::new(body);
    let Ok(magic) = c.array::<4>() else { return };
    match magic {
        SMB1 => seen.smb1 = true,
        SMB2 => {
            seen.smb2 = true;
            // NEGOTIATE (command 0) response (flags bit 0): DialectRevision at body + 4.
            let mut h = Cursor::new(body);
            let command = h.skip(12).and_then(|()| h.u16_le());
            let flags = h.skip(2).and_then(|()| h.u32_le());
            let dialect = h.skip(64 - 20 + 4).and_then(|()| h.u16_le());
            if let (Ok(0), Ok(f), Ok(d)) = (command, flags, dialect)
                && f & 1 != 0
                && (0x0200..=0x03ff).contains(&d)
            {
                seen.dialect = Some(d);
            }
        }
        SMB3_TRANSFORM => seen.encrypted = true,
        SMB3_COMPRESSION => seen.compressed = true,
        // A message without an SMB header: framing is lost or this is not SMB.
        _ => *done = true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NBSS header for a session message of `len` bytes.
    fn nbss(len: u32) -> Vec<u8> {
        let b = len.to_be_bytes();
        vec![0x00, b[1], b[2], b[3]]
    }

    /// An SMB2 header (64 bytes) with `command` and `flags`, plus `body`.
    fn smb2(command: u16, flags: u32, body: &[u8]) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend_from_slice(b"\xfeSMB");
        h.extend_from_slice(&64u16.to_le_bytes()); // StructureSize
        h.extend_from_slice(&[0; 2]); // CreditCharge
        h.extend_from_slice(&[0; 4]); // Status
        h.extend_from_slice(&command.to_le_bytes());
        h.extend_from_slice(&[1, 0]); // Credits
        h.extend_from_slice(&flags.to_le_bytes());
        h.resize(64, 0); // NextCommand, MessageId, Reserved, TreeId, SessionId, Signature
        h.extend_from_slice(body);
        let mut m = nbss(h.len() as u32);
        m.extend(h);
        m
    }

    fn negotiate_response(dialect: u16) -> Vec<u8> {
        let mut body = vec![65, 0, 1, 0]; // StructureSize 65, SecurityMode
        body.extend_from_slice(&dialect.to_le_bytes());
        body.resize(65, 0);
        smb2(0, 1, &body)
    }

    /// Encoded NetBIOS name `name` (padded with spaces), first-level encoding.
    fn nb_name(name: &str) -> Vec<u8> {
        let mut raw = name.as_bytes().to_vec();
        raw.resize(16, b' ');
        let mut out = vec![32];
        for b in raw {
            out.push(b'A' + (b >> 4));
            out.push(b'A' + (b & 0x0f));
        }
        out.push(0);
        out
    }

    fn session_request() -> Vec<u8> {
        let mut body = nb_name("SERVER");
        body.extend(nb_name("CLIENT"));
        let mut m = vec![0x81, 0, 0, body.len() as u8];
        m.extend(body);
        m
    }

    fn matched(r: ProbeResult) -> Signature {
        match r {
            ProbeResult::Match(s) => s,
            other => panic!("expected a match, got {other:?}"),
        }
    }

    #[test]
    fn smb2_request_and_response() {
        let s = matched(probe(&smb2(0, 0, &[36, 0, 1, 0])));
        assert_eq!(
            (s.proto, s.name, s.offset, s.role),
            (AppProto::Smb, SIG_SMB2, 4, Role::Client)
        );
        let s = matched(probe(&negotiate_response(0x0311)));
        assert_eq!(s.role, Role::Server);
    }

    #[test]
    fn smb1_and_transforms() {
        let mut m = nbss(35);
        m.extend_from_slice(b"\xffSMB\x72\0\0\0\0\x18");
        m.resize(39, 0);
        assert_eq!(matched(probe(&m)).name, SIG_SMB1);
        let mut t = nbss(100);
        t.extend_from_slice(b"\xfdSMB");
        t.resize(104, 0xaa);
        let s = matched(probe(&t));
        assert_eq!((s.name, s.role), (SIG_SMB3_ENCRYPTED, Role::Either));
        let mut z = nbss(40);
        z.extend_from_slice(b"\xfcSMB\x10\0\0\0\x01\0\0\0");
        assert_eq!(matched(probe(&z)).name, SIG_SMB3_COMPRESSED);
    }

    #[test]
    fn split_nbss_header_needs_more() {
        let m = smb2(0, 0, &[36, 0]);
        for cut in 1..10 {
            assert_eq!(probe(&m[..cut]), ProbeResult::NeedMore, "cut {cut}");
        }
        assert_eq!(probe(&[]), ProbeResult::NeedMore);
        assert_eq!(probe_final(&m[..6]), ProbeResult::NoMatch);
        // At the end, NBSS header plus protocol identifier is enough.
        let s = matched(probe_final(&m[..8]));
        assert_eq!((s.name, s.role), (SIG_SMB2, Role::Either));
    }

    #[test]
    fn session_request_then_smb() {
        let req = session_request();
        // Alone, the request waits for the SMB header that follows; at the end it stands.
        assert_eq!(probe(&req), ProbeResult::NeedMore);
        let s = matched(probe_final(&req));
        assert_eq!(
            (s.name, s.role, s.needs_peer),
            (SIG_SESSION_REQUEST, Role::Client, false)
        );
        let mut both = req.clone();
        both.extend(smb2(0, 0, &[36, 0]));
        let s = matched(probe(&both));
        assert_eq!((s.name, s.offset), (SIG_SMB2, req.len() + 4));
    }

    #[test]
    fn positive_response_needs_peer() {
        let s = matched(probe_final(&[0x82, 0, 0, 0]));
        assert_eq!((s.name, s.needs_peer), (SIG_POSITIVE, true));
        let mut both = vec![0x82, 0, 0, 0];
        both.extend(negotiate_response(0x0202));
        assert_eq!(matched(probe(&both)).name, SIG_SMB2);
        assert_eq!(matched(probe(&[0x83, 0, 0, 1, 0x82])).name, SIG_NEGATIVE);
    }

    #[test]
    fn near_misses() {
        // Wrong magic, SMB2 with a bad StructureSize, a too-short SMB1, bad names.
        let mut m = smb2(0, 0, &[]);
        m[7] = b'C';
        assert_eq!(probe(&m), ProbeResult::NoMatch);
        let mut m = smb2(0, 0, &[]);
        m[8] = 63;
        assert_eq!(probe(&m), ProbeResult::NoMatch);
        let mut m = nbss(8);
        m.extend_from_slice(b"\xffSMB\x72\0\0\0");
        assert_eq!(probe(&m), ProbeResult::NoMatch);
        let mut req = session_request();
        req[10] = b'Z';
        assert_eq!(probe(&req), ProbeResult::NoMatch);
        assert_eq!(probe(&[0x82, 0, 0, 4]), ProbeResult::NoMatch);
    }

    #[test]
    fn garbage() {
        assert_eq!(probe(b"GET / HTTP/1.1\r\n"), ProbeResult::NoMatch);
        assert_eq!(
            probe(b"\xb3x\xfd*\xae-J\xee\x19Y\x89\x19o"),
            ProbeResult::NoMatch
        );
        assert_eq!(
            probe(&[0x85, 0, 0, 0, 0x85, 0, 0, 0]),
            ProbeResult::NeedMore
        );
        assert_eq!(probe_final(&[0x85, 0, 0, 0]), ProbeResult::NoMatch);
    }

    #[test]
    fn tracker_reads_dialect_encryption_across_splits() {
        let mut stream = negotiate_response(0x0311);
        stream.extend(smb2(1, 1, &[9, 0, 0, 0])); // SESSION_SETUP response
        let mut enc = nbss(80);
        enc.extend_from_slice(b"\xfdSMB");
        enc.resize(84, 0x55);
        stream.extend(enc);
        for step in [1usize, 3, 7, 1000] {
            let (mut t, mut seen) = (NbssTrack::default(), SmbSeen::default());
            for chunk in stream.chunks(step) {
                track(&mut t, &mut seen, chunk);
            }
            assert_eq!(seen.dialect, Some(0x0311), "step {step}");
            assert!(
                seen.smb2 && seen.encrypted && !seen.compressed,
                "step {step}"
            );
            assert_eq!(t.messages, 3);
            assert!(!t.done);
        }
    }

    #[test]
    fn tracker_stops_on_lost_framing() {
        let (mut t, mut seen) = (NbssTrack::default(), SmbSeen::default());
        track(&mut t, &mut seen, b"\x42\x00\x00\x10garbage.........");
        assert!(t.done);
        track(&mut t, &mut seen, &negotiate_response(0x0300));
        assert_eq!(seen.dialect, None);
    }
}
