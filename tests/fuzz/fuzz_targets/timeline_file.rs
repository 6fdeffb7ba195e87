//! Any bytes as a timeline file, as `check`, `diff`, `replay` and `timeline --import` read it:
//! a clear error (with its line) or entries; never a panic. Entries read go through the
//! contract checker and are compared with themselves (no differences) and with their first half.
#![no_main]

use callscope::timeline::{CheckOptions, DiffOptions, check, diff, read_json_lines};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(entries) = read_json_lines(data) else {
        return;
    };
    let _findings = check(&entries, &CheckOptions::default());
    let options = DiffOptions::default();
    if let Ok(differences) = diff(&entries, &entries, &options) {
        assert!(differences.is_empty(), "a timeline differs from itself");
    }
    let _ = diff(&entries, &entries[..entries.len() / 2], &options);
});
