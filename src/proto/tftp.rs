//! TFTP packet parser and per-request transfer state (RFC 1350, option extension RFC 2347,
//! blksize RFC 2348, timeout/tsize RFC 2349, windowsize RFC 7440).
//!
//! [`parse`] reads one UDP payload into a borrowed [`TftpPacket`]; it accepts only opcodes
//! 1–6 and the modes netascii/octet/mail, and never trusts anything it has not checked.
//!
//! A [`TftpTransfer`] is created from a RRQ/WRQ and then fed every packet of the linked
//! transfer flow (the server answers from a new port, RFC 1350 §4), each tagged with the
//! [`Endpoint`] that sent it. It follows the negotiated block size, counts file bytes once
//! (retransmitted DATA blocks are recognised, also across the 16-bit block-number wrap),
//! and records completion and ERROR packets. Its [`TftpTransfer::record`] is the EVE `tftp`
//! object: Suricata's `packet`/`file`/`mode` plus our transfer figures.

use serde::Serialize;

use super::{Endpoint, TransferDirection, be16, text};

/// Default block size (RFC 1350).
pub const DEFAULT_BLKSIZE: u16 = 512;
/// Largest block size RFC 2348 allows.
pub const MAX_BLKSIZE: u16 = 65464;
/// Longest file name, mode or error message kept, in bytes.
pub const MAX_TEXT: usize = 512;

/// RRQ or WRQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestKind {
    /// Read request (opcode 1): the server sends the file.
    Read,
    /// Write request (opcode 2): the client sends the file.
    Write,
}

impl RequestKind {
    /// Suricata's `packet` value.
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestKind::Read => "read",
            RequestKind::Write => "write",
        }
    }

    /// Which way the file moves.
    pub const fn direction(self) -> TransferDirection {
        match self {
            RequestKind::Read => TransferDirection::Download,
            RequestKind::Write => TransferDirection::Upload,
        }
    }
}

/// Transfer mode (RFC 1350 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TftpMode {
    /// `netascii`.
    Netascii,
    /// `octet`.
    Octet,
    /// `mail` (obsolete).
    Mail,
}

impl TftpMode {
    fn from_bytes(b: &[u8]) -> Option<TftpMode> {
        if b.eq_ignore_ascii_case(b"netascii") {
            Some(TftpMode::Netascii)
        } else if b.eq_ignore_ascii_case(b"octet") {
            Some(TftpMode::Octet)
        } else if b.eq_ignore_ascii_case(b"mail") {
            Some(TftpMode::Mail)
        } else {
            None
        }
    }
}

/// The option values this sensor understands, when present and in range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KnownOptions {
    /// RFC 2348 block size (8–65464).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blksize: Option<u16>,
    /// RFC 2349 transfer size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsize: Option<u64>,
    /// RFC 2349 retransmission timeout in seconds (1–255).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u8>,
    /// RFC 7440 window size in blocks (1–65535).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub windowsize: Option<u16>,
}

impl KnownOptions {
    fn is_empty(&self) -> bool {
        *self == KnownOptions::default()
    }
}

/// The option area of a request or OACK (RFC 2347): NUL-terminated name/value pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TftpOptions<'a> {
    /// The raw option bytes.
    pub raw: &'a [u8],
    /// Recognised values.
    pub known: KnownOptions,
    /// Name/value pairs present.
    pub count: usize,
    /// An unterminated string, a name without value, or an out-of-range known value.
    pub malformed: bool,
}

impl<'a> TftpOptions<'a> {
    fn parse(raw: &'a [u8]) -> TftpOptions<'a> {
        let mut o = TftpOptions {
            raw,
            known: KnownOptions::default(),
            count: 0,
            malformed: !raw.is_empty() && !raw.ends_with(&[0]),
        };
        let mut fields = raw.split(|&b| b == 0);
        // `split` yields one empty piece after the final NUL.
        while let Some(name) = fields.next() {
            if name.is_empty() {
                // Only legal as the piece after the final NUL.
                o.malformed |= fields.next().is_some();
                break;
            }
            let Some(value) = fields.next() else {
                o.malformed = true;
                break;
            };
            o.count += 1;
            let n = decimal(value);
            let k = &mut o.known;
            let ok = if name.eq_ignore_ascii_case(b"blksize") {
                k.blksize = n
                    .and_then(|v| u16::try_from(v).ok())
                    .filter(|v| (8..=MAX_BLKSIZE).contains(v));
                k.blksize.is_some()
            } else if name.eq_ignore_ascii_case(b"tsize") {
                k.tsize = n;
                n.is_some()
            } else if name.eq_ignore_ascii_case(b"timeout") {
                k.timeout = n.and_then(|v| u8::try_from(v).ok()).filter(|v| *v > 0);
                k.timeout.is_some()
            } else if name.eq_ignore_ascii_case(b"windowsize") {
                k.windowsize = n.and_then(|v| u16::try_from(v).ok()).filter(|v| *v > 0);
                k.windowsize.is_some()
            } else {
                true
            };
            o.malformed |= !ok;
        }
        o
    }

    /// Name/value pairs in order (unterminated trailing bytes are left out).
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + 'a {
        let mut fields = self.raw.split(|&b| b == 0);
        std::iter::from_fn(move || {
            let name = fields.next().filter(|n| !n.is_empty())?;
            Some((name, fields.next()?))
        })
    }
}

/// 1–20 ASCII digits as a number.
fn decimal(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    b.iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// One TFTP packet, borrowing the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TftpPacket<'a> {
    /// RRQ (opcode 1) or WRQ (opcode 2).
    Request {
        /// Read or write.
        kind: RequestKind,
        /// File name bytes (may be empty).
        file: &'a [u8],
        /// Mode bytes as sent (any case).
        mode_raw: &'a [u8],
        /// Parsed mode.
        mode: TftpMode,
        /// Options (RFC 2347).
        options: TftpOptions<'a>,
    },
    /// DATA (opcode 3).
    Data {
        /// Block number on the wire.
        block: u16,
        /// File bytes.
        data: &'a [u8],
    },
    /// ACK (opcode 4).
    Ack {
        /// Block number on the wire.
        block: u16,
    },
    /// ERROR (opcode 5).
    Error {
        /// Error code.
        code: u16,
        /// Message bytes (NUL terminator removed; missing terminator tolerated).
        message: &'a [u8],
    },
    /// OACK (opcode 6, RFC 2347).
    Oack {
        /// Acknowledged options.
        options: TftpOptions<'a>,
    },
}

/// Parses one UDP payload as TFTP; `None` when it is not a well-formed TFTP packet.
pub fn parse(b: &[u8]) -> Option<TftpPacket<'_>> {
    let opcode = be16(b, 0)?;
    let body = b.get(2..)?;
    match opcode {
        1 | 2 => {
            let (file, rest) = split_nul(body)?;
            let (mode_raw, options) = split_nul(rest)?;
            let mode = TftpMode::from_bytes(mode_raw)?;
            Some(TftpPacket::Request {
                kind: if opcode == 1 {
                    RequestKind::Read
                } else {
                    RequestKind::Write
                },
                file,
                mode_raw,
                mode,
                options: TftpOptions::parse(options),
            })
        }
        3 => Some(TftpPacket::Data {
            block: be16(b, 2)?,
            data: b.get(4..)?,
        }),
        // Some stacks pad short packets; anything after the block number is ignored.
        4 => Some(TftpPacket::Ack { block: be16(b, 2)? }),
        5 => {
            let code = be16(b, 2)?;
            let msg = b.get(4..)?;
            let message = split_nul(msg).map_or(msg, |(m, _)| m);
            Some(TftpPacket::Error { code, message })
        }
        6 => Some(TftpPacket::Oack {
            options: TftpOptions::parse(body),
        }),
        _ => None,
    }
}

/// Bytes up to the first NUL, and the bytes after it.
fn split_nul(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|&c| c == 0)?;
    let (head, tail) = b.split_at(i);
    Some((head, tail.get(1..).unwrap_or_default()))
}

/// RFC 1350 / RFC 2347 error-code names.
pub const fn error_name(code: u16) -> &'static str {
    match code {
        0 => "not defined",
        1 => "file not found",
        2 => "access violation",
        3 => "disk full",
        4 => "illegal operation",
        5 => "unknown transfer id",
        6 => "file already exists",
        7 => "no such user",
        8 => "option negotiation refused",
        _ => "unknown",
    }
}

/// What one packet did to a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TftpStep {
    /// A DATA block with new file bytes.
    Data {
        /// File bytes in the block.
        bytes: usize,
    },
    /// A DATA block seen before (retransmission): not counted again.
    DuplicateData {
        /// File bytes in the block.
        bytes: usize,
    },
    /// The receiver acknowledged the final block: the transfer completed.
    Completed,
    /// Any other valid packet (ACK, OACK, a repeated request).
    Control,
    /// An ERROR packet: the transfer ended.
    Error {
        /// Error code.
        code: u16,
    },
    /// Not TFTP, or not what this transfer expects.
    Anomaly(&'static str),
}

/// An ERROR packet as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TftpError {
    /// Error code.
    pub code: u16,
    /// Code name.
    pub name: &'static str,
    /// Message (bounded).
    pub message: String,
    /// Who sent it.
    pub from: Endpoint,
}

/// One RRQ/WRQ and the transfer that follows it.
#[derive(Debug, Clone)]
pub struct TftpTransfer {
    kind: RequestKind,
    file: String,
    mode: String,
    requested: KnownOptions,
    negotiated: Option<KnownOptions>,
    blksize: u16,
    windowsize: u16,
    bytes: u64,
    blocks: u64,
    dup_blocks: u64,
    dup_bytes: u64,
    /// Highest absolute DATA block seen (block 1 is the first; wraps continue upward).
    highest: Option<u64>,
    /// Bit `i` set: block `highest - i` was seen.
    window: u128,
    last_block: Option<u64>,
    final_ack: bool,
    acks: u64,
    error: Option<TftpError>,
    data_sender: Option<Endpoint>,
    anomalies: u64,
    repeated_requests: u64,
}

impl TftpTransfer {
    /// Starts a transfer from a request payload; `None` if it is not a RRQ/WRQ.
    pub fn new(request: &[u8]) -> Option<TftpTransfer> {
        match parse(request)? {
            TftpPacket::Request {
                kind,
                file,
                mode_raw,
                options,
                ..
            } => Some(TftpTransfer {
                kind,
                file: text(file, MAX_TEXT),
                mode: text(mode_raw, MAX_TEXT),
                requested: options.known,
                negotiated: None,
                blksize: DEFAULT_BLKSIZE,
                windowsize: 1,
                bytes: 0,
                blocks: 0,
                dup_blocks: 0,
                dup_bytes: 0,
                highest: None,
                window: 0,
                last_block: None,
                final_ack: false,
                acks: 0,
                error: None,
                data_sender: None,
                anomalies: 0,
                repeated_requests: 0,
            }),
            _ => None,
        }
    }

    /// Feeds one packet of the transfer, sent by `from`.
    pub fn feed(&mut self, from: Endpoint, payload: &[u8]) -> TftpStep {
        let step = match parse(payload) {
            None => TftpStep::Anomaly("tftp.malformed"),
            Some(TftpPacket::Request { kind, .. }) => {
                if kind == self.kind && from == Endpoint::Client {
                    self.repeated_requests += 1;
                    TftpStep::Control
                } else {
                    TftpStep::Anomaly("tftp.unexpected_request")
                }
            }
            Some(TftpPacket::Oack { options }) => self.oack(from, &options),
            Some(TftpPacket::Data { block, data }) => self.data(from, block, data),
            Some(TftpPacket::Ack { block }) => self.ack(from, block),
            Some(TftpPacket::Error { code, message }) => {
                self.error = Some(TftpError {
                    code,
                    name: error_name(code),
                    message: text(message, MAX_TEXT),
                    from,
                });
                TftpStep::Error { code }
            }
        };
        if matches!(step, TftpStep::Anomaly(_)) {
            self.anomalies += 1;
        }
        step
    }

    fn oack(&mut self, from: Endpoint, options: &TftpOptions<'_>) -> TftpStep {
        if from != Endpoint::Server {
            return TftpStep::Anomaly("tftp.oack_from_client");
        }
        let k = options.known;
        self.negotiated = Some(k);
        if let Some(b) = k.blksize {
            self.blksize = b;
        }
        if let Some(w) = k.windowsize {
            self.windowsize = w;
        }
        let r = self.requested;
        // RFC 2347: the server may only acknowledge options the client asked for.
        let unrequested = (k.blksize.is_some() && r.blksize.is_none())
            || (k.tsize.is_some() && r.tsize.is_none())
            || (k.timeout.is_some() && r.timeout.is_none())
            || (k.windowsize.is_some() && r.windowsize.is_none());
        if unrequested {
            TftpStep::Anomaly("tftp.oack_unrequested_option")
        } else if options.malformed {
            TftpStep::Anomaly("tftp.oack_malformed")
        } else {
            TftpStep::Control
        }
    }

    /// Maps a wire block number to the absolute block nearest to the highest seen.
    fn absolute(&self, wire: u16) -> u64 {
        let reference = self.highest.unwrap_or(1);
        let cand = (reference & !0xffff) | u64::from(wire);
        if cand.saturating_add(0x8000) < reference {
            cand.saturating_add(0x1_0000)
        } else if cand > reference.saturating_add(0x8000) && cand >= 0x1_0000 {
            cand - 0x1_0000
        } else {
            cand
        }
    }

    fn data(&mut self, from: Endpoint, wire: u16, data: &[u8]) -> TftpStep {
        let len = data.len();
        let mut anomaly = None;
        if from != self.kind.direction().sender() {
            anomaly = Some("tftp.data_from_receiver");
        }
        if self.data_sender.is_none() {
            self.data_sender = Some(from);
        }
        if len > usize::from(self.blksize) {
            // The OACK was not seen (or a peer ignores it): learn the size from the data.
            let requested = self.requested.blksize.map(usize::from);
            if requested != Some(len) {
                anomaly = anomaly.or(Some("tftp.data_exceeds_blksize"));
            }
            self.blksize = u16::try_from(len).unwrap_or(MAX_BLKSIZE).min(MAX_BLKSIZE);
        }
        let abs = self.absolute(wire);
        let new = match self.highest {
            None => {
                self.highest = Some(abs);
                self.window = 1;
                true
            }
            Some(h) if abs > h => {
                let shift = abs - h;
                self.window = if shift >= 128 {
                    0
                } else {
                    self.window << shift
                };
                self.window |= 1;
                self.highest = Some(abs);
                true
            }
            Some(h) => {
                let back = h - abs;
                let bit = 1u128.checked_shl(u32::try_from(back).unwrap_or(u32::MAX));
                match bit {
                    Some(bit) if self.window & bit == 0 => {
                        self.window |= bit;
                        true
                    }
                    _ => false,
                }
            }
        };
        if !new {
            self.dup_blocks += 1;
            self.dup_bytes += len as u64;
            return match anomaly {
                Some(a) => TftpStep::Anomaly(a),
                None => TftpStep::DuplicateData { bytes: len },
            };
        }
        self.blocks += 1;
        self.bytes += len as u64;
        if len < usize::from(self.blksize) {
            self.last_block = Some(abs);
        } else if self.last_block.is_some_and(|l| abs > l) {
            // A full block after the "last" one: that short block was not the end.
            self.last_block = None;
        }
        match anomaly {
            Some(a) => TftpStep::Anomaly(a),
            None => TftpStep::Data { bytes: len },
        }
    }

    fn ack(&mut self, from: Endpoint, wire: u16) -> TftpStep {
        self.acks += 1;
        if from == self.kind.direction().sender() && !(wire == 0 && self.kind == RequestKind::Write)
        {
            return TftpStep::Anomaly("tftp.ack_from_sender");
        }
        let abs = self.absolute(wire);
        if !self.final_ack && self.last_block == Some(abs) {
            self.final_ack = true;
            return TftpStep::Completed;
        }
        TftpStep::Control
    }

    /// Read or write.
    pub fn kind(&self) -> RequestKind {
        self.kind
    }

    /// The requested file name (bounded).
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Unique file bytes carried so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Unique DATA blocks so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Retransmitted DATA blocks.
    pub fn duplicate_blocks(&self) -> u64 {
        self.dup_blocks
    }

    /// Block size in effect.
    pub fn blksize(&self) -> u16 {
        self.blksize
    }

    /// The final (short) DATA block was seen.
    pub fn last_block_seen(&self) -> bool {
        self.last_block.is_some()
    }

    /// The final block was acknowledged.
    pub fn completed(&self) -> bool {
        self.final_ack
    }

    /// The ERROR packet that ended the transfer, if any.
    pub fn error(&self) -> Option<&TftpError> {
        self.error.as_ref()
    }

    /// The EVE `tftp` object.
    pub fn record(&self) -> TftpRecord<'_> {
        TftpRecord {
            packet: self.kind.as_str(),
            file: &self.file,
            mode: &self.mode,
            direction: self.kind.direction().as_str(),
            options: self.requested,
            negotiated: self.negotiated,
            blksize: self.blksize,
            windowsize: self.windowsize,
            tsize: self
                .negotiated
                .and_then(|n| n.tsize)
                .or(self.requested.tsize)
                .filter(|t| *t > 0),
            bytes: self.bytes,
            blocks: self.blocks,
            duplicate_blocks: self.dup_blocks,
            duplicate_bytes: self.dup_bytes,
            last_block_seen: self.last_block.is_some(),
            completed: self.final_ack,
            data_sender: self.data_sender,
            error: self.error.as_ref(),
            anomalies: self.anomalies,
            repeated_requests: self.repeated_requests,
        }
    }
}

/// The EVE `tftp` object for one request: Suricata's keys first, then ours.
#[derive(Debug, Clone, Serialize)]
pub struct TftpRecord<'a> {
    /// `read` / `write` (Suricata).
    pub packet: &'static str,
    /// Requested file name (Suricata).
    pub file: &'a str,
    /// Mode as sent (Suricata).
    pub mode: &'a str,
    /// `download` / `upload`.
    pub direction: &'static str,
    /// Options the client asked for.
    #[serde(skip_serializing_if = "KnownOptions::is_empty")]
    pub options: KnownOptions,
    /// Options the server acknowledged (OACK).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negotiated: Option<KnownOptions>,
    /// Block size in effect.
    pub blksize: u16,
    /// Window size in effect.
    pub windowsize: u16,
    /// Announced transfer size (OACK, else the request).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tsize: Option<u64>,
    /// Unique file bytes.
    pub bytes: u64,
    /// Unique DATA blocks.
    pub blocks: u64,
    /// Retransmitted DATA blocks.
    pub duplicate_blocks: u64,
    /// Bytes in retransmitted DATA blocks.
    pub duplicate_bytes: u64,
    /// The short final block was seen.
    pub last_block_seen: bool,
    /// The final block was acknowledged.
    pub completed: bool,
    /// Who sent DATA.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_sender: Option<Endpoint>,
    /// ERROR packet, if one ended the transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a TftpError>,
    /// Packets that did not fit the transfer.
    pub anomalies: u64,
    /// Retransmitted requests.
    pub repeated_requests: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CL: Endpoint = Endpoint::Client;
    const SV: Endpoint = Endpoint::Server;

    fn req(op: u16, file: &str, mode: &str, opts: &[(&str, &str)]) -> Vec<u8> {
        let mut v = op.to_be_bytes().to_vec();
        for s in [file, mode] {
            v.extend_from_slice(s.as_bytes());
            v.push(0);
        }
        for (n, val) in opts {
            v.extend_from_slice(n.as_bytes());
            v.push(0);
            v.extend_from_slice(val.as_bytes());
            v.push(0);
        }
        v
    }

    fn oack(opts: &[(&str, &str)]) -> Vec<u8> {
        let mut v = req(6, "", "", opts);
        // `req` wrote two empty strings (file, mode); OACK has none.
        v.drain(2..4);
        v
    }

    fn data(block: u16, len: usize) -> Vec<u8> {
        let mut v = vec![0, 3];
        v.extend_from_slice(&block.to_be_bytes());
        v.extend(std::iter::repeat_n(b'x', len));
        v
    }

    fn ack(block: u16) -> Vec<u8> {
        let mut v = vec![0, 4];
        v.extend_from_slice(&block.to_be_bytes());
        v
    }

    #[test]
    fn parses_requests_and_options() {
        let p = req(
            1,
            "rfc1350.txt",
            "OCTET",
            &[("blksize", "1428"), ("tsize", "0"), ("x-ext", "1")],
        );
        match parse(&p).unwrap() {
            TftpPacket::Request {
                kind,
                file,
                mode,
                mode_raw,
                options,
            } => {
                assert_eq!(kind, RequestKind::Read);
                assert_eq!(file, b"rfc1350.txt");
                assert_eq!((mode, mode_raw), (TftpMode::Octet, &b"OCTET"[..]));
                assert_eq!(options.known.blksize, Some(1428));
                assert_eq!(options.known.tsize, Some(0));
                assert_eq!(options.count, 3);
                assert!(!options.malformed);
                let pairs: Vec<_> = options.iter().collect();
                assert_eq!(pairs[2], (&b"x-ext"[..], &b"1"[..]));
            }
            other => panic!("{other:?}"),
        }
        let w = req(2, "zz.bin", "netascii", &[]);
        assert!(matches!(
            parse(&w),
            Some(TftpPacket::Request {
                kind: RequestKind::Write,
                mode: TftpMode::Netascii,
                ..
            })
        ));
        // Empty file name is a (strange) valid request; an empty or unknown mode is not.
        assert!(parse(&req(1, "", "octet", &[])).is_some());
        assert!(parse(&req(1, "a", "", &[])).is_none());
        assert!(parse(&req(1, "a", "binary", &[])).is_none());
        assert!(parse(b"\x00\x01name-without-nul").is_none());
        assert!(parse(b"\x00\x07junk").is_none());
        assert!(parse(b"\x00").is_none());
        // Out-of-range and dangling options are flagged, not trusted.
        let p = req(1, "f", "octet", &[("blksize", "7"), ("windowsize", "0")]);
        let Some(TftpPacket::Request { options, .. }) = parse(&p) else {
            panic!()
        };
        assert!(options.malformed);
        assert_eq!(options.known, KnownOptions::default());
        let mut p = req(1, "f", "octet", &[]);
        p.extend_from_slice(b"blksize\0");
        let Some(TftpPacket::Request { options, .. }) = parse(&p) else {
            panic!()
        };
        assert!(options.malformed);
    }

    #[test]
    fn parses_data_ack_error_oack() {
        assert_eq!(
            parse(&data(7, 3)),
            Some(TftpPacket::Data {
                block: 7,
                data: b"xxx"
            })
        );
        assert_eq!(parse(&ack(65535)), Some(TftpPacket::Ack { block: 65535 }));
        assert_eq!(parse(b"\x00\x04\x00"), None);
        assert_eq!(
            parse(b"\x00\x05\x00\x01File not found\x00"),
            Some(TftpPacket::Error {
                code: 1,
                message: b"File not found"
            })
        );
        assert_eq!(
            parse(b"\x00\x05\x00\x02no nul"),
            Some(TftpPacket::Error {
                code: 2,
                message: b"no nul"
            })
        );
        let o = oack(&[("blksize", "256")]);
        let Some(TftpPacket::Oack { options }) = parse(&o) else {
            panic!()
        };
        assert_eq!(options.known.blksize, Some(256));
    }

    #[test]
    fn download_with_default_blksize() {
        let mut t = TftpTransfer::new(&req(1, "rfc1350.txt", "octet", &[])).unwrap();
        for b in 1..=48u16 {
            assert_eq!(t.feed(SV, &data(b, 512)), TftpStep::Data { bytes: 512 });
            assert_eq!(t.feed(CL, &ack(b)), TftpStep::Control);
        }
        assert_eq!(t.feed(SV, &data(49, 200)), TftpStep::Data { bytes: 200 });
        assert!(t.last_block_seen() && !t.completed());
        assert_eq!(t.feed(CL, &ack(49)), TftpStep::Completed);
        assert_eq!(t.bytes(), 48 * 512 + 200);
        assert_eq!(t.blocks(), 49);
        let j = serde_json::to_value(t.record()).unwrap();
        assert_eq!(j["packet"], "read");
        assert_eq!(j["file"], "rfc1350.txt");
        assert_eq!(j["mode"], "octet");
        assert_eq!(j["direction"], "download");
        assert_eq!(j["data_sender"], "server");
        assert_eq!(j["completed"], true);
        assert_eq!(j["bytes"], 48 * 512 + 200);
        assert!(j.get("error").is_none());
    }

    #[test]
    fn upload_with_oack_blksize_and_windowsize() {
        let mut t = TftpTransfer::new(&req(
            2,
            "empty100KB",
            "octet",
            &[
                ("blksize", "1024"),
                ("windowsize", "4"),
                ("tsize", "102400"),
            ],
        ))
        .unwrap();
        assert_eq!(
            t.feed(
                SV,
                &oack(&[
                    ("blksize", "1024"),
                    ("windowsize", "4"),
                    ("tsize", "102400")
                ])
            ),
            TftpStep::Control
        );
        assert_eq!(t.blksize(), 1024);
        for b in 1..=100u16 {
            assert_eq!(t.feed(CL, &data(b, 1024)), TftpStep::Data { bytes: 1024 });
            if b % 4 == 0 {
                t.feed(SV, &ack(b));
            }
        }
        // 102400 is a multiple of the block size: a zero-length block ends the transfer.
        assert_eq!(t.feed(CL, &data(101, 0)), TftpStep::Data { bytes: 0 });
        assert_eq!(t.feed(SV, &ack(101)), TftpStep::Completed);
        let r = t.record();
        assert_eq!((r.packet, r.direction), ("write", "upload"));
        assert_eq!(r.bytes, 102_400);
        assert_eq!(r.tsize, Some(102_400));
        assert_eq!(r.windowsize, 4);
        assert_eq!(r.data_sender, Some(Endpoint::Client));
        assert!(r.completed);
        assert_eq!(r.anomalies, 0);
    }

    #[test]
    fn non_default_blksize_without_seen_oack() {
        let mut t = TftpTransfer::new(&req(1, "f", "octet", &[("blksize", "1428")])).unwrap();
        assert_eq!(t.feed(SV, &data(1, 1428)), TftpStep::Data { bytes: 1428 });
        assert_eq!(t.blksize(), 1428);
        assert!(!t.last_block_seen());
        assert_eq!(t.feed(SV, &data(2, 700)), TftpStep::Data { bytes: 700 });
        assert!(t.last_block_seen());
        // Unrequested oversize data is flagged, still counted.
        let mut t = TftpTransfer::new(&req(1, "f", "octet", &[])).unwrap();
        assert_eq!(
            t.feed(SV, &data(1, 600)),
            TftpStep::Anomaly("tftp.data_exceeds_blksize")
        );
        assert_eq!(t.bytes(), 600);
    }

    #[test]
    fn duplicate_data_counted_once() {
        let mut t = TftpTransfer::new(&req(1, "f", "octet", &[])).unwrap();
        t.feed(SV, &data(1, 512));
        t.feed(SV, &data(2, 512));
        assert_eq!(
            t.feed(SV, &data(2, 512)),
            TftpStep::DuplicateData { bytes: 512 }
        );
        assert_eq!(
            t.feed(SV, &data(1, 512)),
            TftpStep::DuplicateData { bytes: 512 }
        );
        // A late (reordered) block is new, then a duplicate.
        t.feed(SV, &data(4, 512));
        assert_eq!(t.feed(SV, &data(3, 512)), TftpStep::Data { bytes: 512 });
        assert_eq!(
            t.feed(SV, &data(3, 512)),
            TftpStep::DuplicateData { bytes: 512 }
        );
        assert_eq!(
            (t.bytes(), t.blocks(), t.duplicate_blocks()),
            (4 * 512, 4, 3)
        );
    }

    #[test]
    fn block_numbers_wrap_past_65535() {
        let mut t = TftpTransfer::new(&req(1, "big.iso", "octet", &[])).unwrap();
        let total = 70_000u32;
        for i in 1..=total {
            let wire = (i % 65536) as u16;
            assert_eq!(
                t.feed(SV, &data(wire, 512)),
                TftpStep::Data { bytes: 512 },
                "block {i}"
            );
            if i == 65_537 {
                // A retransmission of the block just before the wrap is still a duplicate.
                assert_eq!(
                    t.feed(SV, &data(65535, 512)),
                    TftpStep::DuplicateData { bytes: 512 }
                );
            }
        }
        let last = ((total + 1) % 65536) as u16;
        assert_eq!(t.feed(SV, &data(last, 10)), TftpStep::Data { bytes: 10 });
        assert_eq!(t.feed(CL, &ack(last)), TftpStep::Completed);
        assert_eq!(t.blocks(), u64::from(total) + 1);
        assert_eq!(t.bytes(), u64::from(total) * 512 + 10);
        assert_eq!(t.duplicate_blocks(), 1);
    }

    #[test]
    fn error_ends_transfer() {
        let mut t = TftpTransfer::new(&req(1, "nope", "octet", &[])).unwrap();
        assert_eq!(
            t.feed(SV, b"\x00\x05\x00\x01File not found\x00"),
            TftpStep::Error { code: 1 }
        );
        let e = t.error().unwrap();
        assert_eq!(
            (e.code, e.name, e.message.as_str(), e.from),
            (1, "file not found", "File not found", SV)
        );
        let j = serde_json::to_value(t.record()).unwrap();
        assert_eq!(j["error"]["code"], 1);
        assert_eq!(j["error"]["from"], "server");
        assert_eq!(j["completed"], false);
    }

    #[test]
    fn misdirected_packets_are_anomalies() {
        let mut t = TftpTransfer::new(&req(1, "f", "octet", &[])).unwrap();
        assert_eq!(
            t.feed(CL, &data(1, 10)),
            TftpStep::Anomaly("tftp.data_from_receiver")
        );
        assert_eq!(
            t.feed(CL, &oack(&[])),
            TftpStep::Anomaly("tftp.oack_from_client")
        );
        assert_eq!(t.feed(SV, b"\x00\x09"), TftpStep::Anomaly("tftp.malformed"));
        assert_eq!(t.feed(CL, &req(1, "f", "octet", &[])), TftpStep::Control);
        assert_eq!(
            t.feed(SV, &oack(&[("blksize", "1024")])),
            TftpStep::Anomaly("tftp.oack_unrequested_option")
        );
        assert_eq!(t.record().anomalies, 4);
        assert_eq!(t.record().repeated_requests, 1);
        // WRQ: ACK 0 from the server is the go-ahead, not an ACK from the sender.
        let mut w = TftpTransfer::new(&req(2, "f", "octet", &[])).unwrap();
        assert_eq!(w.feed(SV, &ack(0)), TftpStep::Control);
        assert_eq!(
            w.feed(CL, &ack(1)),
            TftpStep::Anomaly("tftp.ack_from_sender")
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(b in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = parse(&b);
        }

        #[test]
        fn transfer_never_panics(pkts in proptest::collection::vec(
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..64)) {
            let mut t = TftpTransfer::new(&req(1, "f", "octet", &[("blksize", "16")])).unwrap();
            for (server, p) in &pkts {
                let _ = t.feed(if *server { SV } else { CL }, p);
            }
            prop_assert!(t.bytes() <= pkts.iter().map(|(_, p)| p.len() as u64).sum::<u64>());
        }

        #[test]
        fn random_block_order_counts_each_block_once(order in Just((1u16..=60).collect::<Vec<_>>()).prop_shuffle(),
                                                      dups in proptest::collection::vec(1u16..=60, 0..30)) {
            let mut t = TftpTransfer::new(&req(1, "f", "octet", &[])).unwrap();
            for b in order.iter().chain(dups.iter()) {
                t.feed(SV, &data(*b, 512));
            }
            prop_assert_eq!(t.blocks(), 60);
            prop_assert_eq!(t.bytes(), 60 * 512);
            prop_assert_eq!(t.duplicate_blocks(), dups.len() as u64);
        }
    }
}
