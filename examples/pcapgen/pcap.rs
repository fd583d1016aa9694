//! A minimal classic-pcap writer (magic a1b2c3d4, microsecond stamps, LINKTYPE_ETHERNET).
//!
//! Hand-written because the format is 24 + 16 bytes of header and the generator must control
//! every byte of its output for reproducibility.

use std::io::{self, Write};

/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u32 = 1;
/// Largest frame the captures claim to keep (frames here never exceed 1518 bytes).
const SNAPLEN: u32 = 65_535;

/// Writes pcap records to any byte sink (wrap files in a `BufWriter`).
pub struct PcapWriter<W: Write> {
    out: W,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header.
    pub fn new(mut out: W) -> io::Result<PcapWriter<W>> {
        let mut hdr = Vec::with_capacity(24);
        hdr.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        hdr.extend_from_slice(&2u16.to_le_bytes());
        hdr.extend_from_slice(&4u16.to_le_bytes());
        hdr.extend_from_slice(&0i32.to_le_bytes()); // thiszone: UTC
        hdr.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
        hdr.extend_from_slice(&SNAPLEN.to_le_bytes());
        hdr.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
        out.write_all(&hdr)?;
        Ok(PcapWriter { out })
    }

    /// Appends one frame captured at `ts_us` microseconds since the Unix epoch.
    pub fn write_frame(&mut self, ts_us: u64, frame: &[u8]) -> io::Result<()> {
        let len = u32::try_from(frame.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too long"))?;
        let secs = u32::try_from(ts_us / 1_000_000)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "timestamp past 2106"))?;
        let mut rec = [0u8; 16];
        for (dst, src) in
            rec.chunks_exact_mut(4)
                .zip([secs, (ts_us % 1_000_000) as u32, len.min(SNAPLEN), len])
        {
            dst.copy_from_slice(&src.to_le_bytes());
        }
        self.out.write_all(&rec)?;
        self.out
            .write_all(frame.get(..SNAPLEN as usize).unwrap_or(frame))?;
        Ok(())
    }

    /// Flushes and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_record_layout() {
        let mut w = PcapWriter::new(Vec::new()).unwrap();
        w.write_frame(1_793_610_000_123_456, &[0xaa; 60]).unwrap();
        let buf = w.finish().unwrap();
        assert_eq!(buf.len(), 24 + 16 + 60);
        assert_eq!(&buf[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes(buf[20..24].try_into().unwrap()), 1);
        assert_eq!(
            u32::from_le_bytes(buf[24..28].try_into().unwrap()),
            1_793_610_000
        );
        assert_eq!(u32::from_le_bytes(buf[28..32].try_into().unwrap()), 123_456);
        assert_eq!(u32::from_le_bytes(buf[32..36].try_into().unwrap()), 60);
    }
}
