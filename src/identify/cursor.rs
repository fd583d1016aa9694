//! A checked byte cursor for probes (in the style of rustls' `Reader`).
//!
//! Every read either returns the bytes or [`Short`], which means "the input ended before the
//! field did". Probes map `Short` to need-more and keep "the bytes are wrong" as a separate
//! answer, so truncation is never mistaken for a mismatch. Nothing here indexes or panics.

/// The input ended before the requested field: more bytes might complete it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short;

/// A forward-only reader over a borrowed byte slice.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    pub const fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }

    /// Bytes consumed so far (the offset of the next read within the original slice).
    pub const fn pos(&self) -> usize {
        self.pos
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Number of unread bytes.
    pub fn remaining(&self) -> usize {
        self.rest().len()
    }

    /// True when unread bytes remain.
    pub fn any_left(&self) -> bool {
        self.remaining() > 0
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let (head, _) = self.rest().split_at_checked(n).ok_or(Short)?;
        self.pos += n;
        Ok(head)
    }

    /// Takes up to `n` bytes (fewer if the input ends first); never fails.
    pub fn take_up_to(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.remaining());
        self.take(n).unwrap_or_default()
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<(), Short> {
        self.take(n).map(|_| ())
    }

    /// Takes `n` bytes as a sub-cursor (for a length-prefixed structure).
    pub fn sub(&mut self, n: usize) -> Result<Cursor<'a>, Short> {
        self.take(n).map(Cursor::new)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, Short> {
        let b = self.rest().first().copied().ok_or(Short)?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads a big-endian (network order) `u16`.
    pub fn u16_be(&mut self) -> Result<u16, Short> {
        let b = self.array::<2>()?;
        Ok(u16::from_be_bytes(b))
    }

    /// Reads a little-endian `u16` (SMB fields).
    pub fn u16_le(&mut self) -> Result<u16, Short> {
        let b = self.array::<2>()?;
        Ok(u16::from_le_bytes(b))
    }

    /// Reads a big-endian 24-bit length (TLS handshake, NBSS).
    pub fn u24_be(&mut self) -> Result<u32, Short> {
        let [a, b, c] = self.array::<3>()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    /// Reads a little-endian `u32` (SMB fields).
    pub fn u32_le(&mut self) -> Result<u32, Short> {
        let b = self.array::<4>()?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let s = self.take(N)?;
        <[u8; N]>::try_from(s).map_err(|_| Short)
    }

    /// Takes the bytes before the next `delim` and consumes the delimiter too.
    pub fn until(&mut self, delim: u8) -> Result<&'a [u8], Short> {
        let rest = self.rest();
        let at = rest.iter().position(|&b| b == delim).ok_or(Short)?;
        let field = rest.get(..at).ok_or(Short)?;
        self.pos += at + 1;
        Ok(field)
    }

    /// Takes one line ending in `\n`, returned without its `\r\n` / `\n`.
    pub fn line(&mut self) -> Result<&'a [u8], Short> {
        let line = self.until(b'\n')?;
        Ok(line.strip_suffix(b"\r").unwrap_or(line))
    }

    /// True if the unread bytes start with `prefix` (case-sensitive).
    pub fn starts_with(&self, prefix: &[u8]) -> bool {
        self.rest().starts_with(prefix)
    }
}

/// True if `data` starts with `prefix`, ignoring ASCII case.
pub fn starts_with_ignore_case(data: &[u8], prefix: &[u8]) -> bool {
    data.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Compares what is available of `data` with `prefix`, ignoring ASCII case:
/// `Ok(true)` full match, `Err(Short)` consistent so far but shorter, `Ok(false)` differs.
pub fn prefix_state(data: &[u8], prefix: &[u8]) -> Result<bool, Short> {
    let n = data.len().min(prefix.len());
    let same = data
        .get(..n)
        .zip(prefix.get(..n))
        .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b));
    if !same {
        Ok(false)
    } else if n < prefix.len() {
        Err(Short)
    } else {
        Ok(true)
    }
}

/// True if `needle` occurs in `hay`, ignoring ASCII case.
pub fn contains_ignore_case(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_reports_short() {
        let mut c = Cursor::new(&[0x01, 0x02, 0x03, 0x04, 0x05]);
        assert_eq!(c.u8(), Ok(1));
        assert_eq!(c.u16_be(), Ok(0x0203));
        assert_eq!(c.pos(), 3);
        assert_eq!(c.u24_be(), Err(Short));
        // A failed read consumes nothing.
        assert_eq!(c.remaining(), 2);
        assert_eq!(c.u16_le(), Ok(0x0504));
        assert!(!c.any_left());
        assert_eq!(c.u8(), Err(Short));
    }

    #[test]
    fn until_and_line() {
        let mut c = Cursor::new(b"abc\x00220 hi\r\nrest");
        assert_eq!(c.until(0), Ok(&b"abc"[..]));
        assert_eq!(c.line(), Ok(&b"220 hi"[..]));
        assert_eq!(c.line(), Err(Short));
        assert_eq!(c.rest(), b"rest");
    }

    #[test]
    fn sub_cursor_is_bounded() {
        let mut c = Cursor::new(&[2, 0xaa, 0xbb, 0xcc]);
        let n = c.u8().unwrap() as usize;
        let mut s = c.sub(n).unwrap();
        assert_eq!(s.u16_be(), Ok(0xaabb));
        assert_eq!(s.u8(), Err(Short));
        assert_eq!(c.u8(), Ok(0xcc));
        assert_eq!(c.sub(1).err(), Some(Short));
    }

    #[test]
    fn case_helpers() {
        assert!(starts_with_ignore_case(b"user bob", b"USER"));
        assert!(!starts_with_ignore_case(b"US", b"USER"));
        assert_eq!(prefix_state(b"SSH-2", b"SSH-2.0-"), Err(Short));
        assert_eq!(prefix_state(b"SSH-2.0-x", b"SSH-2.0-"), Ok(true));
        assert_eq!(prefix_state(b"SSX", b"SSH-2.0-"), Ok(false));
        assert!(contains_ignore_case(b"220 (vsFTPd 3.0.3)", b"ftp"));
        assert!(!contains_ignore_case(b"220 hello", b""));
    }
}
