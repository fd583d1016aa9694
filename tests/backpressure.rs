//! Back-pressure on the EVE output (issue 7): a disk that fills up, a pipe whose reader
//! pauses or leaves, a rotation during a stall, and live-mode accounting.
//!
//! Replay must lose nothing: the output is compared line by line with an unhindered run of
//! the same input. The tmpfs tests mount a tiny tmpfs and need root; without it they print a
//! skip line and pass. The live-mode test drives the engine in-process and needs nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)] // test code

mod common;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Scratch;
use serde_json::Value;

/// Times `pcaps/demo.pcap` is replayed: about 400 KB of EVE in ~670 records.
const REPEATS: usize = 20;

/// A tmpfs of a few hundred KiB, unmounted on drop (even when the test panics).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(parent: &Path, size_kib: u64) -> Tmpfs {
        let dir = parent.join("tmpfs");
        fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_kib}k"), "tmpfs"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs on {}", dir.display());
        Tmpfs { dir }
    }

    /// Fills the file system with `filler`, then frees `leave` bytes of it.
    fn fill(&self, leave: u64) -> PathBuf {
        let path = self.dir.join("filler");
        let mut f = File::create(&path).unwrap();
        let chunk = vec![0u8; 4096];
        let mut len = 0u64;
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(n) => len += n as u64,
                Err(_) => break,
            }
        }
        f.set_len(len.saturating_sub(leave)).unwrap();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

/// A config with tiny queues and backlog, so a stalled output reaches the reader quickly.
fn tight_config(dir: &Path) -> PathBuf {
    let demo = fs::read_to_string(common::root().join("pcaps/demo.toml")).unwrap();
    let path = dir.join("tight.toml");
    fs::write(
        &path,
        format!(
            "{demo}\n[output]\nqueue_records = 16\nqueue_alerts = 16\nmax_backlog_bytes = 8192\n"
        ),
    )
    .unwrap();
    path
}

fn sensor(config: &Path, eve: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_xferwatch"));
    c.current_dir(common::root()).env("XFERWATCH_LOG", "info");
    for _ in 0..REPEATS {
        c.args(["-r", "pcaps/demo.pcap"]);
    }
    c.arg("-c").arg(config).args(["-o", eve]);
    c
}

/// The unhindered run's output.
fn reference(config: &Path) -> Vec<u8> {
    let out = sensor(config, "-").stderr(Stdio::null()).output().unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Every line parsed (panics on a bad or unfinished one): the non-stats lines as text, in
/// order, and the last stats record.
fn parse(data: &[u8]) -> (Vec<String>, Value) {
    let text = std::str::from_utf8(data).unwrap();
    assert!(text.ends_with('\n'), "output ends on a whole line");
    let mut records = Vec::new();
    let mut stats = Value::Null;
    for line in text.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"));
        if v["event_type"] == "stats" {
            stats = v;
        } else {
            records.push(line.to_owned());
        }
    }
    assert!(!stats.is_null(), "a final stats record");
    (records, stats)
}

fn per_type(lines: &[String]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(l).unwrap();
        *m.entry(v["event_type"].as_str().unwrap().to_owned())
            .or_insert(0) += 1;
    }
    m
}

/// Waits for the child to exit; kills it (and fails) after `limit`.
fn wait(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("xferwatch did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`wait`], then everything the child wrote to its (piped) stderr.
fn wait_with_stderr(child: &mut Child, limit: Duration) -> (i32, String) {
    let code = wait(child, limit);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (code, stderr)
}

/// Sends `SIG<name>` to the child.
fn signal(child: &Child, name: &str) {
    let st = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Waits until `path` stops growing for a second while the child keeps running (it is
/// stalled on the full disk), and returns the size.
fn wait_for_stall(child: &mut Child, path: &Path) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut last = (u64::MAX, Instant::now());
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "xferwatch ended although its output is full"
        );
        let size = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if size != last.0 {
            last = (size, Instant::now());
        } else if size > 0 && last.1.elapsed() >= Duration::from_secs(1) {
            return size;
        }
        assert!(Instant::now() < deadline, "the output never stalled");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts the sensor writing `eve.json` on the (already filled) tmpfs and waits until it
/// stalls there; returns the output path, the running child and the size it stalled at.
fn run_until_stalled(fs_: &Tmpfs, config: &Path) -> (PathBuf, Child, u64) {
    let eve = fs_.dir.join("eve.json");
    let mut child = sensor(config, eve.to_str().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stalled_at = wait_for_stall(&mut child, &eve);
    (eve, child, stalled_at)
}

fn check_complete(got: &[u8], want: &[u8]) -> Value {
    let (want_lines, want_stats) = parse(want);
    let (got_lines, stats) = parse(got);
    assert_eq!(got_lines.len(), want_lines.len(), "records lost or doubled");
    // With several workers (the default is cores − 1) their lines interleave in another
    // order from run to run; the set of records may not change.
    let sorted = |v: &[String]| {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    assert!(
        sorted(&got_lines) == sorted(&want_lines),
        "records differ from the unhindered run"
    );
    let out = &stats["stats"]["output"];
    assert_eq!(
        out["written"], want_stats["stats"]["output"]["written"],
        "written counters"
    );
    for kind in ["alert", "flow", "session", "ftp", "smb", "tftp", "stats"] {
        assert_eq!(out["queue_dropped"][kind], 0, "replay drops nothing");
        assert_eq!(out["write_failed"][kind], 0, "replay loses nothing");
    }
    stats
}

#[test]
fn replay_into_a_full_tmpfs_loses_nothing_once_space_frees() {
    if !is_root() {
        eprintln!("replay_into_a_full_tmpfs_loses_nothing_once_space_frees: skipped: not root");
        return;
    }
    let tmp = Scratch::new("bp-tmpfs");
    let config = tight_config(tmp.dir());
    let want = reference(&config);
    let fs_ = Tmpfs::mount(tmp.dir(), 512);
    // Room for about a quarter of the output: the sensor writes, then stalls mid-run.
    let filler = fs_.fill(96 * 1024);
    let (eve, mut child, stalled_at) = run_until_stalled(&fs_, &config);
    assert!(
        stalled_at < want.len() as u64,
        "stalled at {stalled_at} of {} bytes",
        want.len()
    );
    eprintln!("stalled at {stalled_at} of {} bytes", want.len());
    fs::remove_file(&filler).unwrap();
    let (code, stderr) = wait_with_stderr(&mut child, Duration::from_secs(120));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("EVE output stalled"), "{stderr}");
    assert!(stderr.contains("writing resumed"), "{stderr}");
    let stats = check_complete(&fs::read(&eve).unwrap(), &want);
    let out = &stats["stats"]["output"];
    assert_eq!(out["stalls"], 1, "{out}");
    assert!(out["write_errors"].as_u64().unwrap() >= 1, "{out}");
}

#[test]
fn sighup_during_a_stall_moves_output_to_the_new_file_whole() {
    if !is_root() {
        eprintln!("sighup_during_a_stall_moves_output_to_the_new_file_whole: skipped: not root");
        return;
    }
    let tmp = Scratch::new("bp-sighup");
    let config = tight_config(tmp.dir());
    let want = reference(&config);
    let fs_ = Tmpfs::mount(tmp.dir(), 512);
    // Rotation target: `next` on the full tmpfs points at a file on a disk with room, so
    // only the reopen can get the sensor going again (the filler stays).
    let roomy = tmp.path("eve.json.new");
    std::os::unix::fs::symlink(&roomy, fs_.dir.join("next")).unwrap();
    let _filler = fs_.fill(64 * 1024);
    let (eve, mut child, stalled_at) = run_until_stalled(&fs_, &config);
    eprintln!("stalled at {stalled_at} of {} bytes", want.len());
    let rotated = fs_.dir.join("eve.json.1");
    fs::rename(&eve, &rotated).unwrap();
    fs::rename(fs_.dir.join("next"), &eve).unwrap();
    signal(&child, "HUP");
    let (code, stderr) = wait_with_stderr(&mut child, Duration::from_secs(120));
    assert_eq!(code, 0, "{stderr}");
    let old = fs::read(&rotated).unwrap();
    assert_eq!(
        old.last(),
        Some(&b'\n'),
        "the rotated file ends on a whole line"
    );
    for line in std::str::from_utf8(&old).unwrap().lines() {
        serde_json::from_str::<Value>(line).unwrap();
    }
    let new = fs::read(&roomy).unwrap();
    eprintln!(
        "rotated file {} bytes, new file {} bytes",
        old.len(),
        new.len()
    );
    assert!(!new.is_empty());
    let mut both = old;
    both.extend_from_slice(&new);
    let stats = check_complete(&both, &want);
    assert_eq!(stats["stats"]["output"]["reopens"], 1);
}

#[test]
fn sigterm_while_the_disk_stays_full_gives_up_on_a_whole_line() {
    if !is_root() {
        eprintln!("sigterm_while_the_disk_stays_full_gives_up_on_a_whole_line: skipped: not root");
        return;
    }
    let tmp = Scratch::new("bp-giveup");
    let config = tight_config(tmp.dir());
    let want = reference(&config);
    let fs_ = Tmpfs::mount(tmp.dir(), 512);
    let _filler = fs_.fill(64 * 1024);
    let (eve, mut child, stalled_at) = run_until_stalled(&fs_, &config);
    signal(&child, "TERM");
    let (code, stderr) = wait_with_stderr(&mut child, Duration::from_secs(30));
    assert_eq!(code, 2, "records were lost: {stderr}");
    assert!(stderr.contains("held records are lost"), "{stderr}");
    let got = fs::read(&eve).unwrap();
    eprintln!("stalled at {stalled_at}, kept {} bytes", got.len());
    assert_eq!(got.last(), Some(&b'\n'), "the file ends on a whole line");
    assert!(got.len() as u64 <= stalled_at && !got.is_empty());
    // What was kept is the start of the full output, line for line.
    assert!(want.starts_with(&got));
}

#[test]
fn replay_into_a_pipe_whose_reader_pauses_loses_nothing() {
    let tmp = Scratch::new("bp-pipe");
    let config = tight_config(tmp.dir());
    let want = reference(&config);
    let mut child = sensor(&config, "-")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut paused = false;
    loop {
        let n = stdout.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&chunk[..n]);
        if !paused && got.len() >= 16 * 1024 {
            // A reader that stops for a while: the pipe fills, then the queues.
            std::thread::sleep(Duration::from_millis(1500));
            paused = true;
        } else {
            std::thread::sleep(Duration::from_millis(3));
        }
    }
    assert_eq!(wait(&mut child, Duration::from_secs(60)), 0);
    eprintln!("read {} bytes", got.len());
    check_complete(&got, &want);
}

#[test]
fn a_reader_that_leaves_ends_the_run_quietly() {
    let tmp = Scratch::new("bp-epipe");
    let config = tight_config(tmp.dir());
    let mut cmd = sensor(&config, "-");
    // Long enough that the run would take far longer than the check below without a stop.
    for _ in 0..200 {
        cmd.args(["-r", "pcaps/demo.pcap"]);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1024];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let (code, stderr) = wait_with_stderr(&mut child, Duration::from_secs(60));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("broken pipe"), "{stderr}");
    assert!(!stderr.contains("records were lost"), "{stderr}");
}

/// Live mode, in-process: a writer that starts late (a blocked output) makes the engine
/// drop records; every record is either written or counted as dropped, per event type.
#[test]
fn live_mode_counts_every_dropped_record_per_type() {
    use xferwatch::capture::{Batch, Input, ReadStats, read_input};
    use xferwatch::config::Config;
    use xferwatch::engine::{Engine, EngineSettings};
    use xferwatch::flow::EndReason;
    use xferwatch::output::queue::queues;
    use xferwatch::output::{Target, Writer};
    use xferwatch::pipeline::{Signals, writer_loop};

    let tmp = Scratch::new("bp-live");
    let config = Config::load(&common::root().join("pcaps/demo.toml")).unwrap();
    // Live settings (no pcap_cnt), same in both runs.
    let settings = EngineSettings::from_config(&config, false);
    let mut batches = Vec::new();
    let mut stats = ReadStats::default();
    let mut next_cnt = 0u64;
    for _ in 0..REPEATS {
        let mut batch = Batch::with_capacity(16);
        read_input(
            &Input::File(common::root().join("pcaps/demo.pcap")),
            1 << 18,
            &mut next_cnt,
            &mut stats,
            &|| false,
            &mut |_| {},
            &mut |_, f| {
                batch.push(f.ts, f.linktype, f.wire_len, f.pcap_cnt, f.data);
                if batch.len() == 16 {
                    batches.push(std::mem::replace(&mut batch, Batch::with_capacity(16)));
                }
            },
        )
        .unwrap();
        if !batch.is_empty() {
            batches.push(batch);
        }
    }

    // Runs the engine over every batch; the writer starts after `writer_after` batches.
    let run = |name: &str, live: bool, records: usize, writer_after: usize| -> Vec<u8> {
        let path = tmp.path(name);
        let (tx, rx) = queues(records, records);
        let mut engine = Engine::new(settings.clone(), tx);
        if live {
            engine.drop_when_full();
        }
        let mut rx = Some(rx);
        let mut handle = None;
        let start_writer = |rx: xferwatch::output::queue::OutReceiver| {
            let writer = Writer::open(Target::File(path.clone())).unwrap();
            std::thread::spawn(move || writer_loop(writer, rx, &Signals::new(), 1))
        };
        for (i, b) in batches.iter().enumerate() {
            if i == writer_after {
                handle = Some(start_writer(rx.take().unwrap()));
            }
            engine.process_batch(b, &stats);
        }
        if let Some(rx) = rx.take() {
            handle = Some(start_writer(rx));
        }
        engine.finish(EndReason::EndOfInput, &stats);
        drop(engine);
        assert!(handle.unwrap().join().unwrap().is_none());
        fs::read(&path).unwrap()
    };

    let generated = run("replay.json", false, 1 << 16, 0);
    let (gen_lines, _) = parse(&generated);
    let generated = per_type(&gen_lines);
    assert!(generated.len() >= 5, "{generated:?}");

    let live = run("live.json", true, 8, batches.len() / 2);
    let (live_lines, stats) = parse(&live);
    let emitted = per_type(&live_lines);
    let out = &stats["stats"]["output"];
    let mut dropped_total = 0;
    for (kind, &made) in &generated {
        let written = emitted.get(kind).copied().unwrap_or(0);
        let dropped = out["queue_dropped"][kind].as_u64().unwrap();
        assert_eq!(
            written + dropped,
            made,
            "{kind}: {written} written + {dropped} dropped != {made} made; {out}"
        );
        assert_eq!(out["written"][kind].as_u64().unwrap(), written, "{kind}");
        assert_eq!(out["write_failed"][kind], 0);
        dropped_total += dropped;
    }
    eprintln!(
        "made {generated:?}, written {emitted:?}, dropped {}",
        out["queue_dropped"]
    );
    assert!(dropped_total > 0, "the blocked writer made the engine drop");
    assert!(!live_lines.is_empty());
    // Alerts have their own lane: none is pushed out by the flood of other records here.
    assert_eq!(out["queue_dropped"]["alert"], 0, "{out}");
}
