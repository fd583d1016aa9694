//! SMB (stub).
