//! The queues from the workers to the writer thread: two lanes, bounded in records.
//!
//! Alerts travel in their own, larger lane so a flood of flow records cannot push them out,
//! and in live capture the writer always takes an alert before anything else. A worker hands
//! over its alerts before the records it produced after them, so an alert is never written
//! after a record its worker produced later (in particular, never after the `flow` or
//! `session` record of the flow it is about); live, alerts may overtake older records.
//! Replay drops nothing, so there the writer takes messages in the order they were sent
//! ([`OutReceiver::take_in_send_order`]) and one worker's output is the same on every run.
//!
//! The bound counts records, not messages: a message is a block of a whole batch's lines,
//! so a channel bounded in messages would let a stalled writer hold a thousand times more
//! than configured. One mutex guards both lanes; it is taken once per block (once per input
//! batch), never per packet. Senders either wait for room (replay: nothing is lost) or drop
//! and count per event type (live: capture never waits on the output).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{KindCounts, OutMsg};

/// Which lane a message takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// `alert` records.
    Alerts,
    /// Everything else, in order.
    Records,
}

#[derive(Debug)]
struct LaneQueue {
    /// Message, weight, send sequence number.
    msgs: VecDeque<(OutMsg, u64, u64)>,
    /// Records queued (a message without records weighs one).
    held: u64,
    cap: u64,
}

impl LaneQueue {
    fn new(cap: usize) -> LaneQueue {
        LaneQueue {
            msgs: VecDeque::new(),
            held: 0,
            cap: (cap as u64).max(1),
        }
    }

    /// A message larger than the whole lane still passes when the lane is empty, so a big
    /// block cannot wedge a waiting sender.
    fn has_room(&self, weight: u64) -> bool {
        self.held == 0 || self.held.saturating_add(weight) <= self.cap
    }

    fn pop(&mut self) -> Option<OutMsg> {
        let (msg, weight, _) = self.msgs.pop_front()?;
        self.held = self.held.saturating_sub(weight);
        Some(msg)
    }

    /// Send sequence number of the oldest message.
    fn front_seq(&self) -> Option<u64> {
        self.msgs.front().map(|m| m.2)
    }
}

#[derive(Debug)]
struct State {
    alerts: LaneQueue,
    records: LaneQueue,
    senders: usize,
    receiver: bool,
    dropped: KindCounts,
    /// Messages sent so far (numbers them for `in_order`).
    sent: u64,
    /// Take messages in send order rather than alerts first.
    in_order: bool,
}

impl State {
    /// The next message for the writer.
    fn pop(&mut self) -> Option<OutMsg> {
        match (self.alerts.front_seq(), self.records.front_seq()) {
            (Some(a), Some(r)) if self.in_order && r < a => self.records.pop(),
            (Some(_), _) => self.alerts.pop(),
            _ => self.records.pop(),
        }
    }
}

impl State {
    fn lane(&mut self, lane: Lane) -> &mut LaneQueue {
        match lane {
            Lane::Alerts => &mut self.alerts,
            Lane::Records => &mut self.records,
        }
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Signalled when a message arrives or the last sender leaves.
    filled: Condvar,
    /// Signalled when the writer takes a message or goes away.
    drained: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // The critical sections only move messages and add counters; a panic inside one
        // cannot leave the state half-updated, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The workers' end. Clones share the queues; the writer sees the end of input when the
/// last clone is dropped.
#[derive(Debug)]
pub struct OutSender {
    shared: Arc<Shared>,
    drop_when_full: bool,
}

/// The writer's end.
#[derive(Debug)]
pub struct OutReceiver {
    shared: Arc<Shared>,
}

/// Why [`OutReceiver::recv_timeout`] returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// Nothing arrived in time.
    Timeout,
    /// Both lanes are empty and every sender is gone.
    Disconnected,
}

/// Two lanes holding at most `records` and `alerts` records; senders wait when full.
pub fn queues(records: usize, alerts: usize) -> (OutSender, OutReceiver) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            alerts: LaneQueue::new(alerts),
            records: LaneQueue::new(records),
            senders: 1,
            receiver: true,
            dropped: KindCounts::default(),
            sent: 0,
            in_order: false,
        }),
        filled: Condvar::new(),
        drained: Condvar::new(),
    });
    (
        OutSender {
            shared: Arc::clone(&shared),
            drop_when_full: false,
        },
        OutReceiver { shared },
    )
}

impl Clone for OutSender {
    fn clone(&self) -> OutSender {
        self.shared.lock().senders += 1;
        OutSender {
            shared: Arc::clone(&self.shared),
            drop_when_full: self.drop_when_full,
        }
    }
}

impl Drop for OutSender {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.senders = st.senders.saturating_sub(1);
        if st.senders == 0 {
            self.shared.filled.notify_all();
        }
    }
}

impl Drop for OutReceiver {
    fn drop(&mut self) {
        self.shared.lock().receiver = false;
        self.shared.drained.notify_all();
    }
}

impl OutSender {
    /// Live mode (`true`): a message that finds its lane full is dropped and its records
    /// are counted per event type. Replay (`false`): the sender waits for room.
    pub fn set_drop_when_full(&mut self, drop: bool) {
        self.drop_when_full = drop;
    }

    /// Whether a full lane drops (live) rather than waits (replay).
    pub fn drops_when_full(&self) -> bool {
        self.drop_when_full
    }

    /// Queues `msg`, which carries the records counted in `counts`. Returns false when it
    /// was dropped (lane full in live mode, or the writer is gone); its records are then
    /// counted in the drop counters.
    pub fn send(&self, lane: Lane, msg: OutMsg, counts: &KindCounts) -> bool {
        let weight = counts.total().max(1);
        let mut st = self.shared.lock();
        loop {
            if !st.receiver {
                // The writer is gone: nowhere left to write, but the loss is still counted.
                st.dropped.add_all(counts);
                return false;
            }
            if st.lane(lane).has_room(weight) {
                st.sent += 1;
                let seq = st.sent;
                let q = st.lane(lane);
                q.held = q.held.saturating_add(weight);
                q.msgs.push_back((msg, weight, seq));
                drop(st);
                self.shared.filled.notify_one();
                return true;
            }
            if self.drop_when_full {
                st.dropped.add_all(counts);
                return false;
            }
            st = self
                .shared
                .drained
                .wait(st)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

impl OutReceiver {
    /// Replay: take messages in the order they were sent instead of alerts first. Nothing
    /// is dropped then, so an alert gains nothing by overtaking, and the output of one
    /// worker no longer depends on when the writer happened to wake up.
    pub fn take_in_send_order(&self) {
        self.shared.lock().in_order = true;
    }

    /// The next message, alerts first; waits at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<OutMsg, RecvError> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if let Some(m) = st.pop() {
                drop(st);
                // Several senders may wait on different lanes: wake them all to re-check.
                self.shared.drained.notify_all();
                return Ok(m);
            }
            if st.senders == 0 {
                return Err(RecvError::Disconnected);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RecvError::Timeout);
            }
            st = self
                .shared
                .filled
                .wait_timeout(st, left)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Records dropped so far because a lane was full, per event type.
    pub fn dropped(&self) -> KindCounts {
        self.shared.lock().dropped
    }

    /// Records waiting in the (alerts, records) lanes.
    pub fn held(&self) -> (u64, u64) {
        let st = self.shared.lock();
        (st.alerts.held, st.records.held)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::output::EventKind;

    fn block(kind: EventKind, n: u64) -> (OutMsg, KindCounts) {
        let mut c = KindCounts::default();
        let mut data = Vec::new();
        for _ in 0..n {
            c.add(kind);
            data.extend_from_slice(b"{}\n");
        }
        (OutMsg::Block(data, c), c)
    }

    fn kind_of(msg: &OutMsg) -> Option<EventKind> {
        match msg {
            OutMsg::Block(_, c) if c.alert > 0 => Some(EventKind::Alert),
            OutMsg::Block(_, c) if c.flow > 0 => Some(EventKind::Flow),
            _ => None,
        }
    }

    #[test]
    fn replay_takes_messages_in_send_order() {
        let (tx, rx) = queues(100, 100);
        rx.take_in_send_order();
        let (m, c) = block(EventKind::Flow, 3);
        assert!(tx.send(Lane::Records, m, &c));
        let (m, c) = block(EventKind::Alert, 1);
        assert!(tx.send(Lane::Alerts, m, &c));
        let (m, c) = block(EventKind::Flow, 2);
        assert!(tx.send(Lane::Records, m, &c));
        let kinds: Vec<_> = (0..3)
            .map(|_| kind_of(&rx.recv_timeout(Duration::from_millis(10)).unwrap()))
            .collect();
        assert_eq!(
            kinds,
            [
                Some(EventKind::Flow),
                Some(EventKind::Alert),
                Some(EventKind::Flow)
            ]
        );
    }

    #[test]
    fn alerts_are_taken_before_older_records() {
        let (tx, rx) = queues(100, 100);
        let (m, c) = block(EventKind::Flow, 3);
        assert!(tx.send(Lane::Records, m, &c));
        let (m, c) = block(EventKind::Alert, 1);
        assert!(tx.send(Lane::Alerts, m, &c));
        let first = rx.recv_timeout(Duration::from_millis(10)).unwrap();
        assert_eq!(kind_of(&first), Some(EventKind::Alert));
        let second = rx.recv_timeout(Duration::from_millis(10)).unwrap();
        assert_eq!(kind_of(&second), Some(EventKind::Flow));
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(10)).unwrap_err(),
            RecvError::Timeout
        );
        drop(tx);
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(10)).unwrap_err(),
            RecvError::Disconnected
        );
    }

    #[test]
    fn live_sender_drops_and_counts_per_type_when_the_lane_is_full() {
        let (mut tx, rx) = queues(5, 2);
        tx.set_drop_when_full(true);
        let (m, c) = block(EventKind::Flow, 4);
        assert!(tx.send(Lane::Records, m, &c));
        // 4 + 2 > 5: dropped, counted as two flow records.
        let (m, c) = block(EventKind::Flow, 2);
        assert!(!tx.send(Lane::Records, m, &c));
        // The alert lane is separate and still has room.
        let (m, c) = block(EventKind::Alert, 2);
        assert!(tx.send(Lane::Alerts, m, &c));
        let (m, c) = block(EventKind::Alert, 1);
        assert!(!tx.send(Lane::Alerts, m, &c));
        let d = rx.dropped();
        assert_eq!((d.flow, d.alert, d.total()), (2, 1, 3));
        assert_eq!(rx.held(), (2, 4));
    }

    #[test]
    fn a_block_larger_than_the_lane_passes_when_it_is_empty() {
        let (mut tx, rx) = queues(2, 2);
        tx.set_drop_when_full(true);
        let (m, c) = block(EventKind::Flow, 10);
        assert!(tx.send(Lane::Records, m, &c));
        let (m, c) = block(EventKind::Flow, 1);
        assert!(!tx.send(Lane::Records, m, &c));
        assert!(rx.recv_timeout(Duration::from_millis(10)).is_ok());
        let (m, c) = block(EventKind::Flow, 1);
        assert!(tx.send(Lane::Records, m, &c));
    }

    #[test]
    fn replay_sender_waits_for_room_and_loses_nothing() {
        let (tx, rx) = queues(3, 3);
        let senders: Vec<_> = (0..3)
            .map(|_| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let (m, c) = block(EventKind::Flow, 2);
                        assert!(tx.send(Lane::Records, m, &c));
                    }
                })
            })
            .collect();
        drop(tx);
        let mut got = 0u64;
        loop {
            match rx.recv_timeout(Duration::from_secs(5)) {
                Ok(OutMsg::Block(_, c)) => {
                    got += c.total();
                    let (a, r) = rx.held();
                    assert!(a == 0 && r <= 3, "lane over its bound: {r}");
                }
                Ok(_) => panic!("unexpected message"),
                Err(RecvError::Disconnected) => break,
                Err(RecvError::Timeout) => panic!("senders stalled"),
            }
        }
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(got, 300);
        assert_eq!(rx.dropped().total(), 0);
    }

    #[test]
    fn senders_do_not_wait_on_a_writer_that_is_gone() {
        let (tx, rx) = queues(1, 1);
        let (m, c) = block(EventKind::Flow, 1);
        assert!(tx.send(Lane::Records, m, &c));
        drop(rx);
        let (m, c) = block(EventKind::Flow, 1);
        assert!(!tx.send(Lane::Records, m, &c));
    }
}
