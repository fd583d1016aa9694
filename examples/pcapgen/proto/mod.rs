//! Application-layer message builders: pure functions from parameters to wire bytes.
//!
//! Each follows its specification's framing (RFC 959/2428 for FTP, RFC 1350/2347/2348/7440
//! for TFTP, MS-SMB2 and MS-SMB for SMB, RFC 8446 for TLS, RFC 4253 for SSH, RFC 1035 for
//! DNS); contents that would be encrypted or opaque are random but correctly sized.

pub mod ftp;
pub mod misc;
pub mod smb;
pub mod tftp;
pub mod tls;

/// Appends `v` little-endian.
pub fn le16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` little-endian.
pub fn le32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` little-endian.
pub fn le64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// Appends `v` big-endian.
pub fn be16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Overwrites two bytes at `at` with `v` big-endian (a length patched in after the fact).
pub fn patch_be16(out: &mut [u8], at: usize, v: u16) {
    if let Some(dst) = out.get_mut(at..at + 2) {
        dst.copy_from_slice(&v.to_be_bytes());
    }
}

/// Overwrites three bytes at `at` with the low 24 bits of `v` big-endian.
pub fn patch_be24(out: &mut [u8], at: usize, v: u32) {
    if let Some(dst) = out.get_mut(at..at + 3) {
        dst.copy_from_slice(v.to_be_bytes().get(1..).unwrap_or(&[0, 0, 0]));
    }
}

/// Overwrites two bytes at `at` with `v` little-endian.
pub fn patch_le16(out: &mut [u8], at: usize, v: u16) {
    if let Some(dst) = out.get_mut(at..at + 2) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

/// Overwrites four bytes at `at` with `v` little-endian.
pub fn patch_le32(out: &mut [u8], at: usize, v: u32) {
    if let Some(dst) = out.get_mut(at..at + 4) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

/// UTF-16LE bytes of `s` (SMB names and paths).
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}
