//! Fuzz target: the config loader on arbitrary text (lossily decoded from the bytes).
//!
//! Checks: no panic; a rejection is one line naming a position inside the text; an
//! accepted config builds the engine's runtime settings, an engine and the pipeline's
//! start-up buffers, and serialises to TOML that loads back to the same config.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xferwatch::capture::Batch;
use xferwatch::config::Config;
use xferwatch::engine::{Engine, EngineSettings};
use xferwatch::output::queue::queues;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Config::from_toml_str(&text, "fuzz.toml") {
        Ok(cfg) => {
            let settings = EngineSettings::from_config(&cfg, true);
            let (tx, _rx) = queues(
                cfg.output.queue_records.as_usize(),
                cfg.output.queue_alerts.as_usize(),
            );
            // One worker's share of the caps, as the pipeline hands them out.
            let workers = usize::from(cfg.capture.workers).max(1);
            drop(Engine::new(settings.shared_by(workers), tx));
            // What the pipeline allocates from the config before reading a packet.
            let cap = &cfg.capture;
            drop(Batch::with_capacity(cap.batch_packets.as_usize()));
            drop(crossbeam_channel::bounded::<Batch>(
                cap.queue_batches.as_usize() + 2,
            ));
            drop(Vec::<u8>::with_capacity(
                cap.max_record_bytes.as_usize() + 65_536,
            ));
            let again = toml::to_string(&cfg).expect("a loaded config serialises");
            let back = Config::from_toml_str(&again, "again.toml").expect("round trip loads");
            assert_eq!(back, cfg, "round trip changed the config");
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "multi-line config error: {msg:?}");
            if let Some((line, col)) = e.position() {
                let lines = text.split('\n').count().max(1);
                assert!(line >= 1 && line <= lines, "line {line} of {lines}: {msg}");
                assert!(col >= 1, "{msg}");
            }
        }
    }
});
