//! Session stage: links data flows (FTP data channels, TFTP transfers) to the control
//! session or request that announced them, and rolls their bytes up into one session.
//!
//! [`expect`] holds the bounded table of announced-but-not-yet-seen data flows.

pub mod expect;
