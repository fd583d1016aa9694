//! Expectations (stub).
