//! Message payloads: explicit protocol bytes followed by an optional generated body.
//!
//! A body is described, not stored: any byte range of it can be produced on demand from
//! its seed. That keeps a multi-megabyte file transfer at a few dozen bytes of memory until
//! the packet that carries each slice is written.

use crate::rng::mix;

/// What a generated body looks like on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fill {
    /// Uniform random bytes (compressed archives, encrypted blobs).
    Random,
    /// Printable lines of words ending in LF (documents, HTML, CSV).
    Text,
    /// The same lines ending in CR LF, as TFTP netascii mode requires.
    Netascii,
    /// TLS 1.2/1.3 application-data records (`17 03 03 len`) with random contents.
    TlsRecords,
}

/// Largest TLS record body: 2^14 plaintext + content type + 16-byte AEAD tag.
pub const TLS_MAX_BODY: u64 = 16_384 + 17;
/// A full TLS record on the wire.
const TLS_FULL_RECORD: u64 = 5 + TLS_MAX_BODY;

/// A generated body of `len` bytes.
#[derive(Debug, Clone, Copy)]
pub struct Body {
    kind: Fill,
    seed: u64,
    len: u64,
}

/// One application message (or bulk transfer) handed to a flow.
#[derive(Debug, Clone, Default)]
pub struct Payload {
    head: Vec<u8>,
    body: Option<Body>,
}

impl Payload {
    /// Exactly these bytes.
    pub fn bytes(head: impl Into<Vec<u8>>) -> Payload {
        Payload {
            head: head.into(),
            body: None,
        }
    }

    /// A generated body with no header bytes.
    pub fn generated(kind: Fill, seed: u64, len: u64) -> Payload {
        Payload {
            head: Vec::new(),
            body: Some(Body { kind, seed, len }),
        }
    }

    /// Header bytes followed by a generated body (an SMB2 WRITE, an HTTP response).
    pub fn with_body(head: impl Into<Vec<u8>>, kind: Fill, seed: u64, len: u64) -> Payload {
        Payload {
            head: head.into(),
            body: Some(Body { kind, seed, len }),
        }
    }

    /// TLS application-data records carrying `plain` bytes of (pretend) plaintext.
    pub fn tls_app_data(seed: u64, plain: u64) -> Payload {
        Payload::generated(Fill::TlsRecords, seed, tls_wire_len(plain))
    }

    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.head.len() as u64 + self.body.map_or(0, |b| b.len)
    }

    /// Appends bytes `off..off + len` of this payload to `out` (clamped to the payload).
    pub fn fill(&self, off: u64, len: usize, out: &mut Vec<u8>) {
        let end = (off + len as u64).min(self.len());
        let head_len = self.head.len() as u64;
        if off < head_len {
            let stop = end.min(head_len);
            out.extend_from_slice(self.head.get(off as usize..stop as usize).unwrap_or(&[]));
        }
        if let Some(body) = self.body {
            let (from, to) = (off.max(head_len) - head_len, end.max(head_len) - head_len);
            if from < to {
                body.fill(from, to, out);
            }
        }
    }
}

/// Bytes on the wire for `plain` bytes sent as TLS records of at most 2^14 each.
pub fn tls_wire_len(plain: u64) -> u64 {
    let records = plain.div_ceil(16_384).max(1);
    plain + records * (5 + 17)
}

/// The vocabulary of generated text bodies.
const WORDS: [&str; 32] = [
    "quarterly",
    "revenue",
    "forecast",
    "budget",
    "invoice",
    "customer",
    "account",
    "region",
    "total",
    "margin",
    "payroll",
    "vendor",
    "contract",
    "balance",
    "ledger",
    "audit",
    "asset",
    "report",
    "summary",
    "north",
    "south",
    "q1",
    "q2",
    "q3",
    "q4",
    "net",
    "gross",
    "cost",
    "plan",
    "draft",
    "final",
    "review",
];
/// Text bodies are made of lines of this many bytes, the last one a newline.
const LINE: u64 = 64;

impl Body {
    fn fill(self, from: u64, to: u64, out: &mut Vec<u8>) {
        match self.kind {
            Fill::Random => fill_random(self.seed, from, to, out),
            Fill::Text | Fill::Netascii => {
                let mut line = [b' '; LINE as usize];
                let mut pos = from;
                while pos < to {
                    let idx = pos / LINE;
                    text_line(self.seed, idx, &mut line);
                    if self.kind == Fill::Netascii
                        && let Some(cr) = line.get_mut(LINE as usize - 2)
                    {
                        *cr = b'\r';
                    }
                    let (a, b) = (
                        (pos % LINE) as usize,
                        ((to - idx * LINE).min(LINE)) as usize,
                    );
                    out.extend_from_slice(line.get(a..b).unwrap_or(&[]));
                    pos = (idx + 1) * LINE;
                }
            }
            Fill::TlsRecords => {
                let mut pos = from;
                while pos < to {
                    let rec = pos / TLS_FULL_RECORD;
                    let rec_start = rec * TLS_FULL_RECORD;
                    let rec_end = (rec_start + TLS_FULL_RECORD).min(self.len);
                    let body_len = rec_end.saturating_sub(rec_start + 5) as u16;
                    let [hi, lo] = body_len.to_be_bytes();
                    let header = [0x17, 0x03, 0x03, hi, lo];
                    let stop = to.min(rec_end);
                    let in_rec = pos - rec_start;
                    if in_rec < 5 {
                        let h_end = (stop - rec_start).min(5) as usize;
                        out.extend_from_slice(header.get(in_rec as usize..h_end).unwrap_or(&[]));
                        pos = rec_start + h_end as u64;
                    }
                    if pos < stop {
                        fill_random(self.seed ^ rec, pos, stop, out);
                        pos = stop;
                    }
                }
            }
        }
    }
}

/// Counter-mode random bytes: byte `i` is byte `i % 8` of `mix(seed + i / 8)`.
fn fill_random(seed: u64, from: u64, to: u64, out: &mut Vec<u8>) {
    let mut pos = from;
    while pos < to {
        let word = mix(seed.wrapping_mul(0x9E37_79B9).wrapping_add(pos / 8)).to_le_bytes();
        let a = (pos % 8) as usize;
        let b = ((to - (pos - pos % 8)).min(8)) as usize;
        out.extend_from_slice(word.get(a..b).unwrap_or(&[]));
        pos = pos - pos % 8 + 8;
    }
}

/// Line `idx` of a text body: words separated by spaces, padded, ending in `\n`.
fn text_line(seed: u64, idx: u64, line: &mut [u8; LINE as usize]) {
    line.fill(b' ');
    let mut state = mix(seed ^ idx.wrapping_mul(0xA24B_AED4_963E_E407));
    let mut at = 0usize;
    loop {
        state = mix(state);
        let word = WORDS
            .get((state % WORDS.len() as u64) as usize)
            .copied()
            .unwrap_or("x");
        if at + word.len() + 1 >= LINE as usize {
            break;
        }
        if let Some(dst) = line.get_mut(at..at + word.len()) {
            dst.copy_from_slice(word.as_bytes());
        }
        at += word.len() + 1;
    }
    if let Some(last) = line.last_mut() {
        *last = b'\n';
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(p: &Payload) -> Vec<u8> {
        let mut v = Vec::new();
        p.fill(0, p.len() as usize, &mut v);
        v
    }

    #[test]
    fn slices_agree_with_the_whole() {
        for kind in [Fill::Random, Fill::Text, Fill::Netascii, Fill::TlsRecords] {
            let p = Payload::with_body(b"HEAD".to_vec(), kind, 9, 40_000);
            let whole = all(&p);
            assert_eq!(whole.len() as u64, p.len());
            let mut pieced = Vec::new();
            let mut off = 0u64;
            for step in [1u64, 7, 1448, 3, 16_389, 100_000].iter().cycle() {
                if off >= p.len() {
                    break;
                }
                p.fill(off, *step as usize, &mut pieced);
                off += step;
            }
            assert_eq!(pieced, whole, "{kind:?}");
        }
    }

    #[test]
    fn tls_records_are_framed() {
        let p = Payload::tls_app_data(3, 40_000);
        let bytes = all(&p);
        assert_eq!(bytes.len() as u64, tls_wire_len(40_000));
        let mut at = 0usize;
        let mut records = 0;
        while at < bytes.len() {
            assert_eq!(&bytes[at..at + 3], &[0x17, 0x03, 0x03]);
            let len = u16::from_be_bytes([bytes[at + 3], bytes[at + 4]]) as usize;
            assert!(len as u64 <= TLS_MAX_BODY);
            at += 5 + len;
            records += 1;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(records, 3);
    }

    #[test]
    fn text_is_printable() {
        let bytes = all(&Payload::generated(Fill::Text, 1, 1000));
        assert!(
            bytes
                .iter()
                .all(|b| b.is_ascii_graphic() || *b == b' ' || *b == b'\n')
        );
    }
}
