//! Any text as a frame from a client (the server's decoder) and from the server (the client's):
//! an error, never a panic; and a frame that decodes encodes back to one that decodes the same.
#![no_main]

use callscope::signaling::{decode_client, decode_server, encode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(frame) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(message) = decode_client(frame) {
        let again = decode_client(&encode(&message)).expect("a client message encoded decodes");
        assert_eq!(format!("{message:?}"), format!("{again:?}"));
    }
    if let Ok(message) = decode_server(frame) {
        let again = decode_server(&encode(&message)).expect("a server message encoded decodes");
        assert_eq!(format!("{message:?}"), format!("{again:?}"));
    }
});
