//! Any bytes as what a webhook receiver answered: a status, a wait for more, or malformed;
//! never a panic, and a status only once the bytes hold a whole head (ended by an empty line).
#![no_main]

use callscope::signaling::{Answer, read_answer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Answer::Status(_) = read_answer(data) {
        assert!(
            data.windows(3).any(|end| end == b"\n\r\n")
                || data.windows(2).any(|end| end == b"\n\n"),
            "a status before the head ended"
        );
    }
});
