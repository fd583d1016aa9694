//! Protocol parsers for the file-transfer family: FTP control ([`ftp`]), TFTP ([`tftp`]) and
//! SMB over NBSS ([`smb`]), each with the per-flow state the session stage needs.
//!
//! Contract for every parser here (DESIGN §9):
//! * pure functions of the bytes they are given: no clock, no I/O, no globals;
//! * nothing panics, indexes unchecked or trusts a length field from the wire; a length
//!   read from a packet is always checked against the bytes actually present;
//! * everything that can grow (line buffers, pending requests, file tables) has a cap and a
//!   counter of what was shed;
//! * malformed input becomes an anomaly event and parsing carries on.
//!
//! The helpers below (checked little/big-endian reads, bounded string conversion) are the
//! only way the parsers touch raw bytes at an offset.

pub mod ftp;
pub mod smb;
pub mod tftp;

use serde::Serialize;

/// One end of a session, named by its role in the protocol (not by who opened a flow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endpoint {
    /// The FTP/SMB client, or the TFTP host that sent the RRQ/WRQ.
    Client,
    /// The FTP/SMB server, or the TFTP host the request was sent to.
    Server,
}

impl Endpoint {
    /// The other end.
    pub const fn peer(self) -> Endpoint {
        match self {
            Endpoint::Client => Endpoint::Server,
            Endpoint::Server => Endpoint::Client,
        }
    }

    /// `client` / `server`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Endpoint::Client => "client",
            Endpoint::Server => "server",
        }
    }
}

/// Which way a file moves, seen from the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferDirection {
    /// Client to server (STOR, WRQ, SMB WRITE).
    Upload,
    /// Server to client (RETR, RRQ, SMB READ).
    Download,
    /// A directory listing (LIST, NLST, MLSD): server to client, but not a file.
    Listing,
}

impl TransferDirection {
    /// `upload` / `download` / `listing`.
    pub const fn as_str(self) -> &'static str {
        match self {
            TransferDirection::Upload => "upload",
            TransferDirection::Download => "download",
            TransferDirection::Listing => "listing",
        }
    }

    /// The endpoint that sends the file bytes.
    pub const fn sender(self) -> Endpoint {
        match self {
            TransferDirection::Upload => Endpoint::Client,
            TransferDirection::Download | TransferDirection::Listing => Endpoint::Server,
        }
    }
}

/// Little-endian `u16` at `off`, if the bytes are there.
pub(crate) fn le16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes(s.try_into().ok()?))
}

/// Little-endian `u32` at `off`, if the bytes are there.
pub(crate) fn le32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes(s.try_into().ok()?))
}

/// Little-endian `u64` at `off`, if the bytes are there.
pub(crate) fn le64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

/// Big-endian `u16` at `off`, if the bytes are there.
pub(crate) fn be16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_be_bytes(s.try_into().ok()?))
}

/// `len` bytes at `off`, if they are all there.
pub(crate) fn slice(b: &[u8], off: usize, len: usize) -> Option<&[u8]> {
    b.get(off..off.checked_add(len)?)
}

/// Text from wire bytes: at most `max` bytes, invalid UTF-8 replaced.
///
/// Cutting at `max` may split a multi-byte character; it then shows as U+FFFD, which is
/// the honest rendering of a truncated name.
pub(crate) fn text(b: &[u8], max: usize) -> String {
    String::from_utf8_lossy(b.get(..max).unwrap_or(b)).into_owned()
}

/// UTF-16LE wire bytes to text: at most `max_chars` code units, a trailing odd byte and
/// trailing NULs dropped, unpaired surrogates replaced.
pub(crate) fn utf16le(b: &[u8], max_chars: usize) -> String {
    let units = b.chunks_exact(2).take(max_chars).map(|c| {
        u16::from_le_bytes([
            c.first().copied().unwrap_or(0),
            c.get(1).copied().unwrap_or(0),
        ])
    });
    let mut s: String = char::decode_utf16(units)
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    while s.ends_with('\0') {
        s.pop();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checked_reads() {
        let b = [1u8, 2, 3, 4, 5, 6, 7, 8, 9];
        assert_eq!(le16(&b, 0), Some(0x0201));
        assert_eq!(be16(&b, 0), Some(0x0102));
        assert_eq!(le32(&b, 5), Some(0x0908_0706));
        assert_eq!(le32(&b, 6), None);
        assert_eq!(le64(&b, 1), Some(0x0908_0706_0504_0302));
        assert_eq!(le64(&b, 2), None);
        assert_eq!(le16(&b, usize::MAX), None);
        assert_eq!(slice(&b, 7, 2), Some(&b[7..9]));
        assert_eq!(slice(&b, 8, 2), None);
        assert_eq!(slice(&b, usize::MAX, 2), None);
    }

    #[test]
    fn strings_are_bounded() {
        assert_eq!(text(b"hello", 3), "hel");
        assert_eq!(text(b"h\xffi", 10), "h\u{fffd}i");
        let w: Vec<u8> = "share\0"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(utf16le(&w, 100), "share");
        assert_eq!(utf16le(&w, 2), "sh");
        // An odd trailing byte and an unpaired surrogate do not panic.
        assert_eq!(utf16le(&[0x41, 0x00, 0x42], 10), "A");
        assert_eq!(utf16le(&[0x00, 0xd8, 0x41, 0x00], 10), "\u{fffd}A");
    }
}
