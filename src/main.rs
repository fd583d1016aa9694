//! The `xferwatch` command: parses the command line and runs the pipeline.

fn main() {}
