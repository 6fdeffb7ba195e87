//! Any bytes as what a webhook receiver answered: a status, a wait for more, or malformed;
//! never a panic, and a status only once the bytes hold a whole head.
#![no_main]

use callscope::signaling::{Answer, read_answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Answer::Status(code) = read_answer(data) {
        assert!(code <= 999, "status {code}");
        assert!(
            data.windows(2)
                .any(|pair| pair == b"\n\n" || pair == b"\r\n")
        );
    }
});
