//! Session composers: each builds every flow of one conversation or session, labels it
//! with what the sensor should conclude, and commits it to the context.

pub mod ftp;
pub mod smb;
pub mod tftp;
pub mod web;
