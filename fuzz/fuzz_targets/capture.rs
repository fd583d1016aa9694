//! Fuzz target: pcap and pcapng bytes through the capture-file reader, from memory.
//!
//! Byte 0 picks the record-size limit and how many bytes each read after the first hands
//! over; the rest is the file. Checks: no panic or hang, every frame respects the limit and
//! a 26-bit link type, frame numbers count up from 1, and the frames delivered equal the
//! count the reader returns (or, on an error, every frame before the damage).
//!
//! The reader's first read fills its whole buffer (at least 1 MiB), so for inputs of
//! `-max_len` size the short reads never come into play: refills across the buffer's end
//! are left to the unit tests and the replay of large captures.
#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use xferwatch::capture::{CaptureError, ReadStats, read_stream};

/// An in-memory file that hands over at most `chunk` bytes per read (pipes do).
struct Chunked {
    data: Vec<u8>,
    at: usize,
    chunk: usize,
}

impl Read for Chunked {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.data.get(self.at..).unwrap_or(&[]);
        let n = rest.len().min(buf.len()).min(self.chunk);
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

const LIMITS: [usize; 4] = [64, 1514, 65_535, 262_144];

fuzz_target!(|data: &[u8]| {
    let Some((&head, file)) = data.split_first() else {
        return;
    };
    let max_record = LIMITS[usize::from(head & 3)];
    let chunk = (usize::from(head >> 2) + 1) * 97;
    let reader = Chunked {
        data: file.to_vec(),
        at: 0,
        chunk,
    };
    let mut cnt = 0u64;
    let mut stats = ReadStats::default();
    let mut seen = 0u64;
    let result = read_stream(
        Box::new(reader),
        "fuzz",
        max_record,
        &mut cnt,
        &mut stats,
        &|| false,
        &mut |_| {},
        &mut |_, f| {
            seen += 1;
            assert_eq!(f.pcap_cnt, seen);
            assert!(f.data.len() <= max_record, "frame over the record limit");
            assert!(f.linktype < 1 << 26);
            assert!(f.wire_len as usize >= f.data.len());
        },
    );
    assert_eq!(cnt, seen);
    match result {
        Ok(n) => assert_eq!(n, seen),
        Err(
            CaptureError::Truncated { frames, .. }
            | CaptureError::RecordTooLarge { frames, .. }
            | CaptureError::Corrupt { frames, .. },
        ) => assert_eq!(frames, seen),
        Err(_) => {}
    }
    assert_eq!(stats.frames, seen);
});
