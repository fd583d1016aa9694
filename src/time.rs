//! Packet time: the only clock detection and flow ageing use (DESIGN §9, determinism).
//!
//! [`Ts`] is nanoseconds since the Unix epoch as read from the capture. [`Ts::eve`] formats
//! the EVE `timestamp` (`2026-11-23T04:10:44.532140+0000`: UTC, microseconds, no colon in
//! the offset) by hand, because the format is small and pinned by Suricata's output.

use std::fmt::{self, Write as _};

/// A packet timestamp in nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub u64);

impl Ts {
    /// Nanoseconds per second.
    pub const NANOS_PER_SEC: u64 = 1_000_000_000;

    /// Builds a timestamp from seconds and a sub-second part in nanoseconds.
    pub const fn from_parts(secs: u64, nanos: u64) -> Ts {
        Ts(secs.saturating_mul(Ts::NANOS_PER_SEC).saturating_add(nanos))
    }

    /// Builds a timestamp from whole seconds.
    pub const fn from_secs(secs: u64) -> Ts {
        Ts::from_parts(secs, 0)
    }

    /// Whole seconds since the epoch.
    pub const fn secs(self) -> u64 {
        self.0 / Ts::NANOS_PER_SEC
    }

    /// Microseconds within the second.
    pub const fn subsec_micros(self) -> u64 {
        (self.0 % Ts::NANOS_PER_SEC) / 1000
    }

    /// `self - earlier`, clamped at zero (capture files are not always in time order).
    pub const fn since(self, earlier: Ts) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Adds whole seconds, saturating.
    pub const fn plus_secs(self, secs: u64) -> Ts {
        Ts(self
            .0
            .saturating_add(secs.saturating_mul(Ts::NANOS_PER_SEC)))
    }

    /// The EVE timestamp string.
    pub fn eve(self) -> String {
        let mut s = String::with_capacity(31);
        // Writing into a String cannot fail.
        let _ = write!(s, "{}", EveTime(self));
        s
    }
}

/// `Display` adapter printing a [`Ts`] in EVE format.
pub struct EveTime(pub Ts);

impl fmt::Display for EveTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.secs();
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days as i64);
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}+0000",
            y,
            m,
            d,
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60,
            self.0.subsec_micros()
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// This is Howard Hinnant's `civil_from_days` algorithm; it is exact for every day a
/// `u64` nanosecond clock can reach.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eve_format_matches_design_example() {
        // 2026-11-23T04:10:44.532140 UTC
        let ts = Ts::from_parts(1_795_407_044, 532_140_000);
        assert_eq!(ts.eve(), "2026-11-23T04:10:44.532140+0000");
    }

    #[test]
    fn epoch_and_leap_day() {
        assert_eq!(Ts(0).eve(), "1970-01-01T00:00:00.000000+0000");
        // 2024-02-29T12:00:00Z
        assert_eq!(
            Ts::from_secs(1_709_208_000).eve(),
            "2024-02-29T12:00:00.000000+0000"
        );
        // Sub-microsecond digits are truncated, not rounded.
        assert_eq!(Ts(999).eve(), "1970-01-01T00:00:00.000000+0000");
    }
}
