//! The `callscope` command: runs calls and reads the timeline.

fn main() {}
