//! Fixed-memory windows on packet time: a bucketed sliding sum, and small rings of the
//! session ids behind a figure.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::time::Ts;

/// Buckets per window. A window of `w` is kept as 60 buckets of `w / 60`, so the sum covers
/// between `w − w/60` and `w` of packet time (59 to 60 minutes for the default hour).
pub(crate) const BUCKETS: usize = 60;

/// Sum of values added within the last [`BUCKETS`] buckets of packet time.
#[derive(Debug, Clone)]
pub(crate) struct SlidingSum {
    buckets: [u64; BUCKETS],
    /// Bucket number (`ts / width`) of the newest bucket.
    head: u64,
    total: u64,
}

impl SlidingSum {
    /// An empty window.
    pub(crate) fn new() -> SlidingSum {
        SlidingSum {
            buckets: [0; BUCKETS],
            head: 0,
            total: 0,
        }
    }

    /// Adds `value` at `now` (buckets `width_ns` wide) and returns the sum of the window
    /// ending at `now`. A time older than the newest bucket counts in the newest bucket: the
    /// detector's clock never runs backwards, so that only happens after a clock jump.
    pub(crate) fn add(&mut self, now: Ts, width_ns: u64, value: u64) -> u64 {
        self.advance(now, width_ns);
        if let Some(b) = self.buckets.get_mut(slot(self.head)) {
            *b = b.saturating_add(value);
        }
        self.total = self.total.saturating_add(value);
        self.total
    }

    /// Drops buckets that fell out of the window ending at `now`; returns the sum.
    pub(crate) fn advance(&mut self, now: Ts, width_ns: u64) -> u64 {
        let idx = now.0 / width_ns.max(1);
        if idx > self.head {
            let steps = (idx - self.head).min(BUCKETS as u64);
            for k in 1..=steps {
                if let Some(b) = self.buckets.get_mut(slot(self.head + k)) {
                    self.total = self.total.saturating_sub(*b);
                    *b = 0;
                }
            }
            self.head = idx;
        }
        self.total
    }

    /// The sum as of the last `add` or `advance`.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Start of the time the sum covers (the oldest bucket's start).
    pub(crate) fn start(&self, width_ns: u64) -> Ts {
        let first = self.head.saturating_sub(BUCKETS as u64 - 1);
        Ts(first.saturating_mul(width_ns))
    }
}

/// Ring position of bucket number `idx`.
fn slot(idx: u64) -> usize {
    (idx % BUCKETS as u64) as usize
}

/// The last `N` distinct session ids added, oldest first. Adding the id that is already the
/// newest is free (no reference-count change), so it can run per packet.
#[derive(Debug, Clone)]
pub(crate) struct RecentIds<const N: usize> {
    ids: [Option<Arc<str>>; N],
    /// Where the next id goes.
    next: usize,
}

impl<const N: usize> RecentIds<N> {
    /// An empty ring.
    pub(crate) fn new() -> RecentIds<N> {
        RecentIds {
            ids: std::array::from_fn(|_| None),
            next: 0,
        }
    }

    /// True when `id` is the newest entry.
    pub(crate) fn is_newest(&self, id: &str) -> bool {
        let newest = (self.next + N - 1) % N.max(1);
        matches!(self.ids.get(newest), Some(Some(last)) if &**last == id)
    }

    /// Adds `id` unless it is already held.
    pub(crate) fn push(&mut self, id: &Arc<str>) {
        if self.ids.iter().flatten().any(|x| x == id) {
            return;
        }
        if let Some(cell) = self.ids.get_mut(self.next) {
            *cell = Some(Arc::clone(id));
        }
        self.next = (self.next + 1) % N.max(1);
    }

    /// The ids, oldest first.
    pub(crate) fn to_vec(&self) -> Vec<String> {
        (0..N)
            .filter_map(|k| self.ids.get((self.next + k) % N.max(1)))
            .flatten()
            .map(|id| id.to_string())
            .collect()
    }
}

/// Start times and ids of the last sessions on one host → address:port, enough to tell
/// whether more than `max` fall within a window.
#[derive(Debug, Clone)]
pub(crate) struct SessionTimes {
    /// (session start, id), oldest first; at most `max + 1`.
    entries: VecDeque<(Ts, Arc<str>)>,
    cap: usize,
}

impl SessionTimes {
    /// An empty record for a rule allowing `max` sessions per window.
    pub(crate) fn new(max: usize) -> SessionTimes {
        let cap = max.saturating_add(1);
        SessionTimes {
            entries: VecDeque::with_capacity(cap),
            cap,
        }
    }

    /// Records a session started at `start` and returns how many recorded sessions started
    /// within `window_ns` before it (itself included), at most `max + 1`.
    pub(crate) fn record(&mut self, start: Ts, id: &Arc<str>, window_ns: u64) -> usize {
        if self.entries.len() >= self.cap {
            self.entries.pop_front();
        }
        // Keep start order even if a session reports its payload late.
        let at = self
            .entries
            .iter()
            .rposition(|(t, _)| *t <= start)
            .map_or(0, |i| i + 1);
        self.entries.insert(at, (start, Arc::clone(id)));
        let newest = self.entries.back().map_or(start, |(t, _)| *t);
        while let Some((t, _)) = self.entries.front() {
            if newest.since(*t) > window_ns {
                self.entries.pop_front();
            } else {
                break;
            }
        }
        self.entries.len()
    }

    /// The oldest start time held.
    pub(crate) fn oldest(&self) -> Option<Ts> {
        self.entries.front().map(|(t, _)| *t)
    }

    /// The ids held, oldest first.
    pub(crate) fn ids(&self) -> Vec<String> {
        self.entries.iter().map(|(_, id)| id.to_string()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60 * Ts::NANOS_PER_SEC;

    #[test]
    fn sum_slides_out_after_the_window() {
        let mut w = SlidingSum::new();
        let t0 = Ts::from_secs(1_700_000_000);
        assert_eq!(w.add(t0, MIN, 10), 10);
        assert_eq!(w.add(t0.plus_secs(30 * 60), MIN, 5), 15);
        // 59 minutes later the first bucket is still inside.
        assert_eq!(w.advance(t0.plus_secs(59 * 60), MIN), 15);
        // An hour (60 buckets) later it has left; the 30-minute one is still there.
        assert_eq!(w.advance(t0.plus_secs(60 * 60), MIN), 5);
        assert_eq!(w.advance(t0.plus_secs(90 * 60), MIN), 0);
        // A jump far ahead clears everything at once.
        w.add(t0.plus_secs(91 * 60), MIN, 7);
        assert_eq!(w.advance(t0.plus_secs(10_000 * 60), MIN), 0);
    }

    #[test]
    fn window_start_is_the_oldest_bucket() {
        let mut w = SlidingSum::new();
        let t = Ts::from_secs(3600 * 10 + 30);
        w.add(t, MIN, 1);
        assert_eq!(w.start(MIN), Ts::from_secs(3600 * 9 + 60));
    }

    #[test]
    fn recent_ids_keep_the_last_distinct() {
        let mut r: RecentIds<3> = RecentIds::new();
        let ids: Vec<Arc<str>> = ["a", "b", "c", "d"].iter().map(|s| Arc::from(*s)).collect();
        for id in &ids {
            r.push(id);
            r.push(id);
        }
        assert!(r.is_newest("d"));
        assert!(!r.is_newest("c"));
        assert_eq!(r.to_vec(), ["b", "c", "d"]);
        r.push(&ids[1]);
        assert_eq!(r.to_vec(), ["b", "c", "d"]);
    }

    #[test]
    fn session_times_count_within_window() {
        let mut s = SessionTimes::new(3);
        let id: Arc<str> = Arc::from("x");
        let day = 86_400 * Ts::NANOS_PER_SEC;
        let t0 = Ts::from_secs(1_000_000);
        assert_eq!(s.record(t0, &id, day), 1);
        assert_eq!(s.record(t0.plus_secs(3600), &id, day), 2);
        assert_eq!(s.record(t0.plus_secs(7200), &id, day), 3);
        assert_eq!(s.record(t0.plus_secs(86_400), &id, day), 4);
        // One second past a day after the first: it slides out.
        assert_eq!(s.record(t0.plus_secs(86_401), &id, day), 4);
        assert_eq!(s.oldest(), Some(t0.plus_secs(3600)));
        // Capacity stays max + 1.
        assert_eq!(s.ids().len(), 4);
        assert_eq!(s.record(t0.plus_secs(400_000), &id, day), 1);
    }
}
