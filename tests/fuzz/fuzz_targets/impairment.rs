//! Any text as an `--impair` rule: an error, never a panic; a rule that reads is written back
//! as text that reads as the same rule.
#![no_main]

use callscope::media::impair::LinkRule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rule) = text.parse::<LinkRule>() {
        let written = rule.to_string();
        let again: LinkRule = written.parse().expect("a rule written back reads");
        assert_eq!(rule, again, "{text:?} was written as {written:?}");
    }
});
