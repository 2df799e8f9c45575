//! The Messenger webhook decoder.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::decode_binary("messenger.received", b"application/json", &[], data);
});
