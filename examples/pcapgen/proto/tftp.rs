//! TFTP packets: RFC 1350 (RRQ/WRQ/DATA/ACK/ERROR), RFC 2347 option negotiation (OACK),
//! RFC 2348 blksize, RFC 2349 tsize and RFC 7440 windowsize.

use super::be16;

/// Read request.
pub const RRQ: u16 = 1;
/// Write request.
pub const WRQ: u16 = 2;
/// Data block.
pub const DATA: u16 = 3;
/// Acknowledgment.
pub const ACK: u16 = 4;
/// Error.
pub const ERROR: u16 = 5;
/// Option acknowledgment.
pub const OACK: u16 = 6;

/// The RFC 1350 block size when no blksize option is acknowledged.
pub const DEFAULT_BLKSIZE: u64 = 512;

/// Appends NUL-terminated `name\0value\0` pairs.
fn options(out: &mut Vec<u8>, opts: &[(String, String)]) {
    for (k, v) in opts {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
}

/// RRQ or WRQ: opcode, file name, mode, then any options.
pub fn request(opcode: u16, file: &str, mode: &str, opts: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    be16(&mut out, opcode);
    out.extend_from_slice(file.as_bytes());
    out.push(0);
    out.extend_from_slice(mode.as_bytes());
    out.push(0);
    options(&mut out, opts);
    out
}

/// The 4-byte DATA header for `block` (the data follows).
pub fn data_head(block: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    be16(&mut out, DATA);
    be16(&mut out, block);
    out
}

/// ACK of `block` (block 0 acknowledges an OACK or a WRQ).
pub fn ack(block: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(4);
    be16(&mut out, ACK);
    be16(&mut out, block);
    out
}

/// ERROR with `code` and message.
pub fn error(code: u16, msg: &str) -> Vec<u8> {
    let mut out = Vec::new();
    be16(&mut out, ERROR);
    be16(&mut out, code);
    out.extend_from_slice(msg.as_bytes());
    out.push(0);
    out
}

/// OACK listing the options the server accepted.
pub fn oack(opts: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    be16(&mut out, OACK);
    options(&mut out, opts);
    out
}

/// DATA blocks needed for `size` bytes: every block is full except the last, which is
/// short — and empty when the size is a multiple of the block size (RFC 1350 §6).
pub fn block_count(size: u64, blksize: u64) -> u64 {
    size / blksize.max(1) + 1
}

/// The 16-bit block number on the wire for the `n`th block (1-based); it wraps to 0 after
/// 65535, as most implementations do for files over 32 MiB at 512-byte blocks.
pub fn wire_block(n: u64) -> u16 {
    (n % 65_536) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_counts() {
        assert_eq!(block_count(0, 512), 1);
        assert_eq!(block_count(511, 512), 1);
        assert_eq!(block_count(512, 512), 2); // a full block then an empty one
        assert_eq!(block_count(1_000_000, 1428), 701);
        assert_eq!(wire_block(65_535), 65_535);
        assert_eq!(wire_block(65_536), 0);
    }

    #[test]
    fn request_layout() {
        let opts = vec![
            ("blksize".to_string(), "1428".to_string()),
            ("tsize".to_string(), "0".to_string()),
        ];
        let r = request(RRQ, "pxelinux.0", "octet", &opts);
        assert_eq!(
            r,
            b"\x00\x01pxelinux.0\x00octet\x00blksize\x001428\x00tsize\x000\x00"
        );
        assert_eq!(
            error(1, "File not found"),
            b"\x00\x05\x00\x01File not found\x00"
        );
        assert_eq!(oack(&opts[..1]), b"\x00\x06blksize\x001428\x00");
        assert_eq!(ack(0), [0, 4, 0, 0]);
    }
}
