//! Stats merge: sums the `stats` snapshots of several workers into one record.
//!
//! Each worker counts only its own share of frames, flows and sessions, so the sensor's
//! totals are sums. The capture section is the reader's and every worker carries a copy
//! taken at a different moment: those counters (and `uptime`, and the timestamp) take the
//! largest value instead. The merge works on the serialised form, so a counter added to
//! any section later is summed without touching this file.
//!
//! A periodic record is written once every worker has sent a snapshot since the previous
//! one; the final record once every worker has sent its final snapshot.

use serde_json::{Map, Value};

use super::eve::StatsRecord;

/// Collects per-worker snapshots and emits their sum.
pub struct StatsMerger {
    workers: Vec<WorkerSnapshot>,
}

/// What one worker has reported.
#[derive(Clone, Default)]
struct WorkerSnapshot {
    /// Its latest snapshot, serialised.
    latest: Option<Value>,
    /// A periodic snapshot arrived since the last periodic record.
    fresh: bool,
    /// Its final snapshot arrived.
    last: bool,
}

impl StatsMerger {
    /// A merger for `workers` workers (numbered from 0).
    pub fn new(workers: usize) -> StatsMerger {
        StatsMerger {
            workers: vec![WorkerSnapshot::default(); workers.max(1)],
        }
    }

    /// Takes one worker's snapshot. Returns the summed record (without the writer's own
    /// `output` counters) when a round is complete. Snapshots from an unknown worker index
    /// or that cannot be serialised are ignored.
    pub fn add(&mut self, rec: &StatsRecord) -> Option<Value> {
        let value = serde_json::to_value(rec).ok()?;
        let w = self.workers.get_mut(usize::from(rec.worker))?;
        w.latest = Some(value);
        // A final snapshot waits for every worker's final; a periodic one for a periodic
        // snapshot from every worker since the last record.
        if rec.last {
            w.last = true;
        } else {
            w.fresh = true;
        }
        let done = self
            .workers
            .iter()
            .all(|w| if rec.last { w.last } else { w.fresh });
        if !done {
            return None;
        }
        for w in &mut self.workers {
            w.fresh = false;
            if rec.last {
                w.last = false;
            }
        }
        Some(self.sum())
    }

    fn sum(&self) -> Value {
        let mut acc = Value::Object(Map::new());
        for v in self.workers.iter().filter_map(|w| w.latest.as_ref()) {
            merge(&mut acc, v, Rule::Sum);
        }
        acc
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    Sum,
    Max,
}

/// Folds `v` into `acc`: numbers add (or take the larger under [`Rule::Max`]), objects merge
/// key by key, anything else keeps the larger value when both are strings (timestamps in
/// one format sort by time), else the first.
fn merge(acc: &mut Value, v: &Value, rule: Rule) {
    match (acc, v) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, bv) in b {
                // The reader's counters are copies, not shares; so is elapsed time.
                let rule = if k == "capture" || k == "uptime" {
                    Rule::Max
                } else {
                    rule
                };
                match a.get_mut(k) {
                    Some(av) => merge(av, bv, rule),
                    None => {
                        a.insert(k.clone(), bv.clone());
                    }
                }
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
                let n = match rule {
                    Rule::Sum => x.saturating_add(y),
                    Rule::Max => x.max(y),
                };
                *a = n.into();
            } else if let (Some(x), Some(y)) = (a.as_f64(), b.as_f64())
                && let Some(n) = serde_json::Number::from_f64(match rule {
                    Rule::Sum => x + y,
                    Rule::Max => x.max(y),
                })
            {
                *a = n;
            }
        }
        (Value::String(a), Value::String(b)) if b.as_str() > a.as_str() => a.clone_from(b),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::eve::StatsBody;

    fn snap(
        worker: u16,
        last: bool,
        ts: &str,
        frames: u64,
        flows: u64,
        uptime: u64,
    ) -> StatsRecord {
        let mut body = StatsBody {
            uptime,
            ..StatsBody::default()
        };
        body.capture.frames = frames;
        body.decoder.pkts = flows * 10;
        body.flow.created = flows;
        StatsRecord {
            timestamp: ts.to_string(),
            event_type: "stats",
            stats: body,
            worker,
            last,
        }
    }

    #[test]
    fn a_round_sums_shares_and_keeps_the_readers_copies_at_their_largest() {
        let mut m = StatsMerger::new(2);
        assert!(
            m.add(&snap(
                0,
                false,
                "2026-01-01T00:00:10.000000+0000",
                100,
                3,
                10
            ))
            .is_none()
        );
        let v = m
            .add(&snap(
                1,
                false,
                "2026-01-01T00:00:11.000000+0000",
                120,
                4,
                11,
            ))
            .unwrap();
        assert_eq!(v["event_type"], "stats");
        assert_eq!(v["timestamp"], "2026-01-01T00:00:11.000000+0000");
        assert_eq!(v["stats"]["capture"]["frames"], 120);
        assert_eq!(v["stats"]["uptime"], 11);
        assert_eq!(v["stats"]["decoder"]["pkts"], 70);
        assert_eq!(v["stats"]["flow"]["created"], 7);
    }

    #[test]
    fn a_round_waits_for_every_worker_and_finals_wait_for_all_finals() {
        let mut m = StatsMerger::new(3);
        let t = "2026-01-01T00:00:01.000000+0000";
        assert!(m.add(&snap(0, false, t, 1, 1, 1)).is_none());
        assert!(m.add(&snap(0, false, t, 2, 2, 2)).is_none());
        assert!(m.add(&snap(2, false, t, 2, 1, 2)).is_none());
        let v = m.add(&snap(1, false, t, 3, 1, 3)).unwrap();
        // Worker 0's newer snapshot replaced its older one.
        assert_eq!(v["stats"]["flow"]["created"], 4);
        assert!(m.add(&snap(1, true, t, 9, 5, 9)).is_none());
        assert!(m.add(&snap(0, true, t, 9, 6, 9)).is_none());
        let v = m.add(&snap(2, true, t, 9, 7, 9)).unwrap();
        assert_eq!(v["stats"]["flow"]["created"], 18);
        assert_eq!(v["stats"]["capture"]["frames"], 9);
    }

    #[test]
    fn one_worker_passes_every_snapshot_through() {
        let mut m = StatsMerger::new(1);
        let t = "2026-01-01T00:00:01.000000+0000";
        let v = m.add(&snap(0, false, t, 5, 2, 1)).unwrap();
        assert_eq!(v["stats"]["flow"]["created"], 2);
        let v = m.add(&snap(0, true, t, 6, 3, 1)).unwrap();
        assert_eq!(v["stats"]["flow"]["created"], 3);
    }

    #[test]
    fn an_unknown_worker_is_ignored() {
        let mut m = StatsMerger::new(2);
        let t = "2026-01-01T00:00:01.000000+0000";
        assert!(m.add(&snap(7, false, t, 5, 2, 1)).is_none());
        assert!(m.add(&snap(7, true, t, 5, 2, 1)).is_none());
    }
}
