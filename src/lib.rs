//! xferwatch: a network sensor for command-and-control and data theft hidden in
//! file-transfer protocols (MITRE ATT&CK T1071.002, DET0416 / AN1173).
//!
//! Data flows one way through the crate:
//!
//! ```text
//! capture ─► decode ─► flow ─► identify ─► session ─► detect ─► output
//!                 config and stats at the side
//! ```
//!
//! * [`capture`] reads pcap/pcapng files (or a live interface) into owned frame batches.
//! * [`decode`] turns a frame into a borrowed [`decode::Packet`] view; malformed input is
//!   counted, never an error.
//! * [`flow`] keeps the bounded flow table, byte accounting and TCP state on packet time.
//! * [`identify`] names each flow's application protocol from its first payload bytes
//!   and judges it against the port policy (mismatch verdicts).
//! * [`proto`] parses FTP control, TFTP and SMB into events and per-flow state.
//! * [`session`] links data flows to their control session (expectation table).
//! * [`detect`] turns session byte counts, file names and protocol mismatches into
//!   explainable alerts, on packet time (docs/detections.md).
//! * [`output`] writes EVE JSON lines.
//! * [`pipeline`] runs it on threads: a reader, workers chosen by [`shard`], a writer.
//!
//! The contract for untrusted bytes: nothing here panics, indexes unchecked or trusts a
//! length field; malformed packets are counted by kind and skipped.
#![forbid(unsafe_code)]

pub mod app_proto;
pub mod capture;
pub mod community_id;
pub mod config;
pub mod decode;
pub mod detect;
pub mod direction;
pub mod engine;
pub mod flow;
pub mod identify;
pub mod notify;
pub mod output;
pub mod pipeline;
pub mod privileges;
pub mod proto;
pub mod session;
pub mod shard;
pub mod time;
pub mod zones;
