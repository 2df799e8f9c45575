//! The email decoder (mail-parser and the identifiers taken from it).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::decode_binary("email.received", b"message/rfc822", &[("recipient", b"support@acme.example")], data);
});
