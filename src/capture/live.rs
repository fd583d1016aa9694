//! Live capture: one libpcap handle on an interface, yielding the same [`RawFrame`]s as
//! file replay.
//!
//! The handle is non-blocking and [`LiveCapture::next_frame`] waits on its descriptor with
//! `poll(2)` for at most the read timeout, so it returns within that time even on a silent
//! wire; the caller checks its stop flag and sends idle ticks between calls. (libpcap's own
//! read timeout is not enough: with TPACKET_V3 it blocks until at least one packet has
//! arrived.) The read timeout also sets how long the kernel holds a partly filled block. Timestamps are nanoseconds where libpcap offers them (Linux),
//! microseconds elsewhere. libpcap's 32-bit statistics counters are widened to 64 bits
//! here, across their wrap, so a sensor that runs for weeks reports monotonic totals.

use pcap::{Active, Capture, Precision};
use serde::Serialize;
use thiserror::Error;

use super::RawFrame;
use crate::time::Ts;

/// How to open the interface (from `[capture]` and the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveOptions {
    /// Interface name (`eth1`, `any`).
    pub interface: String,
    /// Bytes captured of each frame.
    pub snaplen: u32,
    /// Promiscuous mode.
    pub promiscuous: bool,
    /// Kernel capture buffer, bytes.
    pub buffer_bytes: u64,
    /// Read timeout, milliseconds (clamped to 1..=1000 so shutdown is never slow).
    pub read_timeout_ms: u32,
    /// BPF filter compiled into the kernel, if any.
    pub bpf: Option<String>,
}

impl LiveOptions {
    /// The read timeout actually used.
    pub fn effective_timeout_ms(&self) -> u32 {
        self.read_timeout_ms.clamp(1, MAX_TIMEOUT_MS)
    }
}

/// A longer timeout would make a stop request wait for it.
const MAX_TIMEOUT_MS: u32 = 1000;

/// Why live capture could not start or went on.
#[derive(Debug, Error)]
pub enum LiveError {
    /// The interface could not be opened (missing, no permission, bad settings).
    #[error("cannot capture on {iface}: {reason}")]
    Open {
        /// Interface.
        iface: String,
        /// libpcap's message.
        reason: String,
    },
    /// The BPF filter does not compile for this interface.
    #[error("invalid BPF filter {expr:?} on {iface}: {reason}")]
    Filter {
        /// Interface.
        iface: String,
        /// The expression.
        expr: String,
        /// libpcap's message.
        reason: String,
    },
    /// Reading failed after the capture had started (interface went down, …).
    #[error("capture on {iface} failed: {reason}")]
    Read {
        /// Interface.
        iface: String,
        /// libpcap's message.
        reason: String,
    },
}

/// libpcap's counters since the capture opened, widened to 64 bits
/// (`stats.capture.pcap_*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PcapCounters {
    /// Packets the kernel passed the filter and offered to the capture.
    pub received: u64,
    /// Packets dropped because the kernel buffer was full (the sensor read too slowly).
    pub kernel_dropped: u64,
    /// Packets dropped by the interface or its driver (where the OS reports it).
    pub interface_dropped: u64,
}

/// A 32-bit counter that may wrap, followed into 64 bits.
///
/// Sound as long as it is sampled at least once per 2^32 increments; the capture samples
/// every read timeout (≤ 1 s), and no link delivers four billion frames a second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Widened {
    last: u32,
    total: u64,
}

impl Widened {
    /// Folds in a new sample of the 32-bit counter and returns the 64-bit total.
    pub fn update(&mut self, sample: u32) -> u64 {
        self.total = self
            .total
            .saturating_add(u64::from(sample.wrapping_sub(self.last)));
        self.last = sample;
        self.total
    }
}

/// An open live capture.
pub struct LiveCapture {
    cap: Capture<Active>,
    iface: String,
    linktype: u32,
    units_per_sec: u64,
    received: Widened,
    dropped: Widened,
    if_dropped: Widened,
    counters: PcapCounters,
    timeout_ms: u16,
    /// The last read found nothing: wait on the descriptor before the next.
    idle: bool,
}

impl std::fmt::Debug for LiveCapture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCapture")
            .field("iface", &self.iface)
            .field("linktype", &self.linktype)
            .field("units_per_sec", &self.units_per_sec)
            .finish()
    }
}

/// libpcap on Linux offers nanosecond timestamps on every capture (TPACKET v3 with
/// SO_TIMESTAMPNS); elsewhere asking may be refused silently, and the pcap crate does not
/// expose `pcap_get_tstamp_precision` to check, so only Linux asks for them.
const NANO_TIMESTAMPS: bool = cfg!(target_os = "linux");

impl LiveCapture {
    /// Opens `opts.interface` and installs the BPF filter.
    pub fn open(opts: &LiveOptions) -> Result<LiveCapture, LiveError> {
        let iface = opts.interface.clone();
        let open_err = |e: pcap::Error| LiveError::Open {
            iface: iface.clone(),
            reason: e.to_string(),
        };
        let precision = if NANO_TIMESTAMPS {
            Precision::Nano
        } else {
            Precision::Micro
        };
        let cap = Capture::from_device(opts.interface.as_str())
            .map_err(open_err)?
            .promisc(opts.promiscuous)
            .snaplen(i32::try_from(opts.snaplen).unwrap_or(i32::MAX))
            .buffer_size(i32::try_from(opts.buffer_bytes).unwrap_or(i32::MAX))
            .timeout(i32::try_from(opts.effective_timeout_ms()).unwrap_or(1000))
            .precision(precision)
            .open()
            .map_err(open_err)?;
        let mut cap = cap.setnonblock().map_err(open_err)?;
        if let Some(expr) = &opts.bpf {
            cap.filter(expr, true).map_err(|e| LiveError::Filter {
                iface: iface.clone(),
                expr: expr.clone(),
                reason: e.to_string(),
            })?;
        }
        let linktype = u32::try_from(cap.get_datalink().0).unwrap_or(u32::MAX);
        tracing::info!(
            iface = %iface,
            linktype,
            snaplen = opts.snaplen,
            promiscuous = opts.promiscuous,
            nanosecond = NANO_TIMESTAMPS,
            "Live capture opened."
        );
        Ok(LiveCapture {
            cap,
            iface,
            linktype,
            units_per_sec: if NANO_TIMESTAMPS {
                1_000_000_000
            } else {
                1_000_000
            },
            received: Widened::default(),
            dropped: Widened::default(),
            if_dropped: Widened::default(),
            counters: PcapCounters::default(),
            timeout_ms: u16::try_from(opts.effective_timeout_ms()).unwrap_or(1000),
            idle: false,
        })
    }

    /// LINKTYPE_* of the interface.
    pub fn linktype(&self) -> u32 {
        self.linktype
    }

    /// Timestamps carry nanoseconds.
    pub fn nanosecond(&self) -> bool {
        self.units_per_sec == 1_000_000_000
    }

    /// The read timeout in force: the longest [`LiveCapture::next_frame`] waits.
    pub fn read_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.timeout_ms))
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.iface
    }

    /// The next frame, or `None` when the read timeout passed without one.
    pub fn next_frame(&mut self) -> Result<Option<RawFrame<'_>>, LiveError> {
        if self.idle {
            if !self.wait()? {
                return Ok(None);
            }
            self.idle = false;
        }
        match self.cap.next_packet() {
            Ok(p) => {
                let h = p.header;
                let secs = u64::try_from(h.ts.tv_sec).unwrap_or(0);
                let frac = u64::try_from(h.ts.tv_usec).unwrap_or(0);
                let ts = super::make_ts(secs, frac, self.units_per_sec, 0);
                let wire = h.len.max(u32::try_from(p.data.len()).unwrap_or(u32::MAX));
                Ok(Some(RawFrame {
                    ts,
                    linktype: self.linktype,
                    wire_len: wire,
                    pcap_cnt: 0,
                    data: p.data,
                }))
            }
            // Non-blocking: nothing is ready now.
            Err(pcap::Error::TimeoutExpired) => {
                self.idle = true;
                Ok(None)
            }
            Err(e) => Err(LiveError::Read {
                iface: self.iface.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// Waits up to the read timeout for the descriptor to become readable.
    fn wait(&self) -> Result<bool, LiveError> {
        use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
        use std::os::fd::AsFd;
        let mut fds = [PollFd::new(self.cap.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(self.timeout_ms)) {
            Ok(n) => Ok(n > 0),
            // A signal (SIGHUP, SIGTERM) cut the wait short: let the caller look at its flags.
            Err(nix::errno::Errno::EINTR) => Ok(false),
            Err(e) => Err(LiveError::Read {
                iface: self.iface.clone(),
                reason: format!("poll: {e}"),
            }),
        }
    }

    /// libpcap's counters, widened; the last good sample if the query fails.
    pub fn counters(&mut self) -> PcapCounters {
        if let Ok(s) = self.cap.stats() {
            self.counters = PcapCounters {
                received: self.received.update(s.received),
                kernel_dropped: self.dropped.update(s.dropped),
                interface_dropped: self.if_dropped.update(s.if_dropped),
            };
        }
        self.counters
    }
}

/// The packet-time clock of a live capture between frames.
///
/// Idle ticks need a "now" on the capture's clock so that flows time out and periodic stats
/// are written on a silent wire. The estimate is the last frame's timestamp plus the
/// monotonic time since that frame was read (or the system clock, which is what the kernel
/// stamps frames with, before the first frame). It only advances the flow table's clock; no
/// detection threshold reads it directly, and replay never uses it.
#[derive(Debug, Clone, Copy)]
pub struct LiveClock {
    last: Option<(Ts, std::time::Instant)>,
}

impl Default for LiveClock {
    fn default() -> Self {
        LiveClock::new()
    }
}

impl LiveClock {
    /// A clock that has seen no frame yet.
    pub fn new() -> LiveClock {
        LiveClock { last: None }
    }

    /// Records a frame's timestamp as read now.
    pub fn saw(&mut self, ts: Ts) {
        let newer = self.last.is_none_or(|(t, _)| ts >= t);
        if newer {
            self.last = Some((ts, std::time::Instant::now()));
        }
    }

    /// The estimated capture time now.
    pub fn now(&self) -> Ts {
        match self.last {
            Some((ts, at)) => {
                let nanos = u64::try_from(at.elapsed().as_nanos()).unwrap_or(u64::MAX);
                Ts(ts.0.saturating_add(nanos))
            }
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(Ts(0), |d| {
                    Ts(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widened_counter_follows_the_wrap() {
        let mut w = Widened::default();
        assert_eq!(w.update(10), 10);
        assert_eq!(w.update(u32::MAX - 5), u64::from(u32::MAX) - 5);
        // Wraps: 6 to reach 2^32, then 20 more.
        assert_eq!(w.update(20), u64::from(u32::MAX) + 21);
        assert_eq!(w.update(20), u64::from(u32::MAX) + 21);
    }

    #[test]
    fn clock_never_runs_backwards() {
        let mut c = LiveClock::new();
        c.saw(Ts::from_parts(100, 0));
        let a = c.now();
        assert!(a >= Ts::from_parts(100, 0));
        c.saw(Ts::from_parts(99, 0));
        assert!(c.now() >= a);
    }

    #[test]
    fn missing_interface_is_an_open_error() {
        let opts = LiveOptions {
            interface: "xw-no-such-if0".into(),
            snaplen: 262_144,
            promiscuous: false,
            buffer_bytes: 1 << 20,
            read_timeout_ms: 100,
            bpf: None,
        };
        let e = LiveCapture::open(&opts).unwrap_err();
        assert!(matches!(e, LiveError::Open { .. }), "{e}");
        assert!(e.to_string().contains("xw-no-such-if0"));
    }

    #[test]
    fn timeout_is_clamped() {
        let mut opts = LiveOptions {
            interface: "lo".into(),
            snaplen: 100,
            promiscuous: false,
            buffer_bytes: 1 << 20,
            read_timeout_ms: 60_000,
            bpf: None,
        };
        assert_eq!(opts.effective_timeout_ms(), 1000);
        opts.read_timeout_ms = 0;
        assert_eq!(opts.effective_timeout_ms(), 1);
    }
}
