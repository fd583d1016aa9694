//! Tests of the writer against a sink that fills up, breaks or comes back.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};

use super::*;

/// A sink that takes at most `room` more bytes, then fails with `error`.
#[derive(Clone)]
pub(super) struct MockSink(Arc<Mutex<MockState>>);

pub(super) struct MockState {
    data: Vec<u8>,
    room: usize,
    error: io::ErrorKind,
}

impl MockSink {
    fn new(room: usize, error: io::ErrorKind) -> MockSink {
        MockSink(Arc::new(Mutex::new(MockState {
            data: Vec::new(),
            room,
            error,
        })))
    }

    pub(super) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut st = self.0.lock().unwrap();
        if st.room == 0 {
            return Err(st.error.into());
        }
        // Short writes, as a filling disk gives them.
        let n = data.len().min(st.room).min(1000);
        st.data.extend_from_slice(&data[..n]);
        st.room -= n;
        Ok(n)
    }

    pub(super) fn cut(&mut self, torn: usize) -> io::Result<bool> {
        let mut st = self.0.lock().unwrap();
        let keep = st.data.len() - torn;
        st.data.truncate(keep);
        Ok(true)
    }

    fn set_room(&self, room: usize) {
        self.0.lock().unwrap().room = room;
    }

    fn data(&self) -> Vec<u8> {
        self.0.lock().unwrap().data.clone()
    }
}

fn writer(target: Target, sink: &MockSink) -> Writer {
    Writer::with_sink(target, Sink::Test(sink.clone()))
}

fn file_target() -> Target {
    Target::File(PathBuf::from("/nonexistent/xferwatch-test/eve.json"))
}

/// `n` flow records of about 60 bytes, as one block.
fn flow_block(first: usize, n: usize) -> (Vec<u8>, KindCounts) {
    let mut data = Vec::new();
    let mut c = KindCounts::default();
    for i in first..first + n {
        data.extend_from_slice(
            format!("{{\"timestamp\":\"t\",\"flow_id\":{i},\"event_type\":\"flow\",\"x\":1}}\n")
                .as_bytes(),
        );
        c.add(EventKind::Flow);
    }
    (data, c)
}

fn lines(data: &[u8]) -> Vec<&[u8]> {
    data.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn event_types_are_read_back_from_lines() {
    let (data, c) = flow_block(0, 3);
    let mut alert = b"{\"timestamp\":\"t\",\"event_type\":\"alert\"}\n".to_vec();
    alert.extend_from_slice(&data);
    let got = KindCounts::of_lines(&alert);
    assert_eq!(got.flow, c.flow);
    assert_eq!(got.alert, 1);
    assert_eq!(got.total(), 4);
}

#[test]
fn a_full_sink_stalls_and_writing_resumes_where_it_stopped() {
    let sink = MockSink::new(2500, io::ErrorKind::StorageFull);
    let mut w = writer(file_target(), &sink);
    let (data, c) = flow_block(0, 200);
    w.write_block(&data, &c);
    w.flush();
    assert!(w.stalled());
    assert_eq!(w.stats.stalls, 1);
    assert!(w.stats.write_errors >= 1);
    // The sink holds 2500 bytes: a line is cut short for now.
    assert_eq!(sink.data().len(), 2500);
    assert_ne!(sink.data().last(), Some(&b'\n'));
    assert_eq!(w.backlog(), data.len() - 2500);

    // More records arrive while stalled: they are held, not written and not lost.
    let (more, c2) = flow_block(200, 10);
    w.write_block(&more, &c2);
    w.flush();
    assert_eq!(sink.data().len(), 2500);

    sink.set_room(usize::MAX);
    w.write_out();
    assert!(!w.stalled());
    let mut all = data.clone();
    all.extend_from_slice(&more);
    assert_eq!(sink.data(), all, "every line, whole and in order");
    assert_eq!(w.stats.written.flow, 210);
    assert_eq!(w.stats.write_failed.total(), 0);
    assert_eq!(w.backlog(), 0);
}

#[test]
fn the_backlog_is_bounded_while_the_sink_fails() {
    let sink = MockSink::new(0, io::ErrorKind::StorageFull);
    let mut w = writer(file_target(), &sink);
    let mut taken = 0usize;
    // The writer loop stops taking messages once `has_room` says no.
    while w.has_room() {
        let (data, c) = flow_block(taken, 100);
        w.write_block(&data, &c);
        w.flush();
        taken += 100;
    }
    assert!(w.stalled());
    assert!(w.backlog() >= DEFAULT_MAX_BACKLOG && w.backlog() < DEFAULT_MAX_BACKLOG + 10_000);
    sink.set_room(usize::MAX);
    w.write_out();
    assert_eq!(lines(&sink.data()).len(), taken);
}

#[test]
fn giving_up_cuts_the_half_line_and_counts_the_loss_per_type() {
    let sink = MockSink::new(1500, io::ErrorKind::StorageFull);
    let mut w = writer(file_target(), &sink);
    let (data, c) = flow_block(0, 50);
    w.write_block(&data, &c);
    w.write(EventKind::Alert, b"{\"event_type\":\"alert\"}");
    w.flush();
    assert!(w.stalled());
    w.give_up();
    let out = sink.data();
    assert_eq!(out.last(), Some(&b'\n'), "the file ends on a whole line");
    let whole = lines(&out).len() as u64;
    assert!(whole > 0 && whole < 50);
    assert_eq!(w.stats.written.flow, whole);
    assert_eq!(w.stats.write_failed.flow, 50 - whole);
    assert_eq!(w.stats.write_failed.alert, 1);
    assert_eq!(w.stats.written.alert, 0);
    assert!(w.error.is_some(), "records were lost");
    // Later records are counted as lost too.
    let (more, c2) = flow_block(50, 5);
    w.write_block(&more, &c2);
    assert_eq!(w.stats.write_failed.flow, 55 - whole);
}

#[test]
fn a_broken_pipe_on_stdout_closes_the_output_without_an_error() {
    let sink = MockSink::new(130, io::ErrorKind::BrokenPipe);
    let mut w = writer(Target::Stdout, &sink);
    let (data, c) = flow_block(0, 20);
    w.write_block(&data, &c);
    w.flush();
    assert!(w.closed());
    assert!(!w.stalled());
    assert!(w.error.is_none(), "the reader leaving is not a failure");
    assert_eq!(w.stats.written.flow + w.stats.write_failed.flow, 20);
    assert_eq!(w.stats.written.flow, 2);
}

#[test]
fn another_error_on_stdout_stalls_like_a_file() {
    let sink = MockSink::new(0, io::ErrorKind::StorageFull);
    let mut w = writer(Target::Stdout, &sink);
    let (data, c) = flow_block(0, 2);
    w.write_block(&data, &c);
    w.flush();
    assert!(w.stalled() && !w.closed());
}

#[test]
fn reopen_moves_a_cut_short_line_whole_into_the_new_file() {
    let dir = std::env::temp_dir().join(format!("xferwatch-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("eve.json");
    let _ = std::fs::remove_file(&path);
    let sink = MockSink::new(1030, io::ErrorKind::StorageFull);
    let mut w = writer(Target::File(path.clone()), &sink);
    let (data, c) = flow_block(0, 40);
    w.write_block(&data, &c);
    w.flush();
    assert!(w.stalled());
    w.reopen().unwrap();
    assert_eq!(w.stats.reopens, 1);
    assert!(!w.stalled());
    let old = sink.data();
    assert_eq!(
        old.last(),
        Some(&b'\n'),
        "the old file ends on a whole line"
    );
    let new = std::fs::read(&path).unwrap();
    let mut both = old.clone();
    both.extend_from_slice(&new);
    assert_eq!(both, data, "nothing lost, nothing doubled");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_stats_record_counts_itself_and_the_backlog() {
    let sink = MockSink::new(usize::MAX, io::ErrorKind::StorageFull);
    let mut w = writer(file_target(), &sink);
    let (data, c) = flow_block(0, 3);
    w.write_block(&data, &c);
    w.stats.queue_dropped.add(EventKind::Smb);
    w.write_stats(eve::StatsRecord {
        timestamp: "t".into(),
        event_type: "stats",
        stats: eve::StatsBody::default(),
        worker: 0,
        last: false,
    });
    w.flush();
    let out = sink.data();
    let last: serde_json::Value = serde_json::from_slice(lines(&out)[3]).unwrap();
    let o = &last["stats"]["output"];
    assert_eq!(o["written"]["flow"], 3);
    assert_eq!(o["written"]["stats"], 1);
    assert_eq!(o["queue_dropped"]["smb"], 1);
    assert_eq!(o["backlog_bytes"], data.len() as u64);
}
