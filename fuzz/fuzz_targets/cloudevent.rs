//! The CloudEvents envelope: any value, with or without a content type, as
//! a structured event or with binary-mode headers taken from the input.
#![no_main]

#[path = "common.rs"]
mod common;

use common::{decode_record, header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the headers; the rest is the value.
    let Some((&mode, value)) = data.split_first() else { return };
    let headers = match mode % 4 {
        0 => vec![],
        1 => vec![header("content-type", b"application/cloudevents+json")],
        2 => vec![header("content-type", b"application/json; charset=utf-8")],
        _ => {
            // Binary mode whose attribute values come from the input itself.
            let mut parts = value.splitn(4, |b| *b == b'\n');
            let mut next = || parts.next().unwrap_or_default().to_vec();
            vec![header("ce_specversion", &next()), header("ce_id", &next()), header("ce_type", &next())]
        }
    };
    decode_record(headers, value);
});
