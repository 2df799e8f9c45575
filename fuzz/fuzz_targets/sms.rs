//! The SMS decoders: Infobip JSON and Twilio form bodies, picked by the
//! input's first byte.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let content_type: &[u8] = match data.first() {
        Some(b) if b % 2 == 0 => b"application/json",
        _ => b"application/x-www-form-urlencoded",
    };
    common::decode_binary("sms.received", content_type, &[], data);
});
