//! Any text as a UserSig: refused with a reason, never a panic, and never accepted (the
//! fuzzer cannot sign with the secret).
#![no_main]

use callscope::signaling::usersig::verify;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzzing secret";

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let verdict = verify(SECRET, token, "alice", 1_400_000_001, 1_800_000_000);
    assert!(verdict.is_err(), "{token:?} was accepted");
});
