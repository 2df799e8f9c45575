//! Every real provider payload in `../shared/fixtures/webhooks/` (webhook
//! bodies from public SDKs' test data) decodes to what a person reading it
//! would expect: the customer's content kept, notices skipped under their
//! own name, what cannot be read dead-lettered.
//!
//! The folder is the shared one beside the repository (CI lays a copy of
//! `shared/` next to its clone); a missing folder fails the test rather
//! than passing it with nothing checked.

use super::test_support::binary;
use super::{decode, DecodeError, Decoded};
use crate::decode::test_support::MAX_RECORD_BYTES;
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/webhooks")
}

/// Wraps a payload file as the gateway would publish it.
fn decode_file(relative: &str) -> Result<Decoded, DecodeError> {
    let path = fixtures_dir().join(relative);
    let payload = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (ce_type, content_type) = if relative.starts_with("messenger/") {
        ("messenger.received", "application/json")
    } else if relative.ends_with(".form") {
        ("sms.received", "application/x-www-form-urlencoded")
    } else {
        ("sms.received", "application/json")
    };
    decode(&binary(ce_type, Some(content_type), &[], payload.trim_ascii_end()), MAX_RECORD_BYTES)
}

/// Every payload file under the fixtures folder, relative, sorted.
fn all_files() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![fixtures_dir()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} (the shared fixtures sit beside the repository)", dir.display()));
        for entry in entries.map(|e| e.expect("a directory entry")) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json" || x == "form") && !path.ends_with("ORIGINS.json") {
                let relative = path.strip_prefix(fixtures_dir()).expect("under the folder");
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// What a decode came to, in the words of [`EXPECTED`].
fn outcome(result: &Result<Decoded, DecodeError>) -> String {
    let d = match result {
        Err(e) => return format!("dead {}", e.reason),
        Ok(d) => d,
    };
    let mut parts = Vec::new();
    match d.messages.len() {
        0 => {}
        1 => parts.push("1 message".to_owned()),
        n => parts.push(format!("{n} messages")),
    }
    parts.extend(d.skipped.iter().map(|s| format!("skip {}", s.as_str())));
    parts.extend(d.invalid.iter().map(|e| format!("invalid {}", e.reason)));
    parts.join(", ")
}

/// Every file and what it must decode to: `N message(s)`, `skip KIND` per
/// skipped item, `invalid REASON` per invalid item, or `dead REASON`.
const EXPECTED: [(&str, &str); 113] = [
    ("messenger/courier/attachment.json", "1 message"),
    ("messenger/courier/different_page.json", "1 message"),
    ("messenger/courier/dlr.json", "skip delivery"),
    ("messenger/courier/duplicate_msg.json", "2 messages"),
    ("messenger/courier/echo.json", "skip echo"),
    ("messenger/courier/fallback.json", "1 message"),
    ("messenger/courier/hello_msg.json", "1 message"),
    ("messenger/courier/invalid_urn.json", "1 message"),
    ("messenger/courier/location_attachment.json", "1 message"),
    ("messenger/courier/no_entries.json", "skip empty_batch"),
    ("messenger/courier/no_messaging_entries.json", "skip empty_batch"),
    ("messenger/courier/not_page.json", "dead bad_payload"),
    ("messenger/courier/notification_messages_optin.json", "skip optin"),
    ("messenger/courier/postback.json", "1 message"),
    ("messenger/courier/postback_get_started.json", "1 message"),
    ("messenger/courier/postback_referral.json", "1 message"),
    ("messenger/courier/reel.json", "1 message"),
    ("messenger/courier/referral.json", "skip referral"),
    ("messenger/courier/referral_optin.json", "skip optin"),
    ("messenger/courier/referral_optin_user_ref.json", "skip optin"),
    ("messenger/courier/referral_seconds.json", "skip referral"),
    ("messenger/courier/thumbs_up.json", "1 message"),
    ("messenger/courier/unknown_messaging_entry.json", "skip other"),
    ("messenger/restfb/messaging-accountlinking-linked.json", "skip account_linking"),
    ("messenger/restfb/messaging-accountlinking-unlinked.json", "skip account_linking"),
    ("messenger/restfb/messaging-airline-itinerary-template.json", "1 message"),
    ("messenger/restfb/messaging-approles.json", "skip app_roles"),
    ("messenger/restfb/messaging-button-template.json", "1 message"),
    ("messenger/restfb/messaging-checkoutupdate-shipping.json", "skip checkout_update"),
    ("messenger/restfb/messaging-delivery-basic.json", "skip delivery"),
    ("messenger/restfb/messaging-message-basic-echo.json", "skip echo"),
    ("messenger/restfb/messaging-message-basic.json", "1 message"),
    ("messenger/restfb/messaging-message-edits.json", "skip message_edit"),
    ("messenger/restfb/messaging-message-fallback-attachment.json", "1 message"),
    ("messenger/restfb/messaging-message-isdeleted.json", "skip deleted"),
    ("messenger/restfb/messaging-message-isunsupported.json", "1 message"),
    ("messenger/restfb/messaging-message-location-attachment.json", "1 message"),
    ("messenger/restfb/messaging-message-media-attachment.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-1.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-2.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-3.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-4.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-5.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-6.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-7.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-8.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-distance.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-duration-2.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-duration.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-email-2.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-email.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-error.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-location.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-money.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-phone.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-quantity.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-temperature.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-url-2.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-url.json", "1 message"),
    ("messenger/restfb/messaging-message-nlp-volume.json", "1 message"),
    ("messenger/restfb/messaging-message-prior.json", "1 message"),
    ("messenger/restfb/messaging-message-product-template-2.json", "1 message"),
    ("messenger/restfb/messaging-message-product-template.json", "1 message"),
    ("messenger/restfb/messaging-message-quickreply.json", "1 message"),
    ("messenger/restfb/messaging-message-reply-1.json", "1 message"),
    ("messenger/restfb/messaging-message-reply-2.json", "1 message"),
    ("messenger/restfb/messaging-message-sticker-thumbup.json", "1 message"),
    ("messenger/restfb/messaging-message-sticker.json", "1 message"),
    ("messenger/restfb/messaging-optin-basic.json", "skip optin"),
    ("messenger/restfb/messaging-optin-userref.json", "skip optin"),
    ("messenger/restfb/messaging-pass-thread-control.json", "skip pass_thread_control"),
    ("messenger/restfb/messaging-payment.json", "skip payment"),
    ("messenger/restfb/messaging-policy-callback-block.json", "skip policy-enforcement"),
    ("messenger/restfb/messaging-policy-callback-unblock.json", "skip policy-enforcement"),
    ("messenger/restfb/messaging-postback-basic.json", "1 message"),
    ("messenger/restfb/messaging-postback-chat.json", "1 message"),
    ("messenger/restfb/messaging-postback-referral.json", "1 message"),
    ("messenger/restfb/messaging-reaction-1.json", "skip reaction"),
    ("messenger/restfb/messaging-reaction-2.json", "skip reaction"),
    ("messenger/restfb/messaging-read-basic.json", "skip read"),
    ("messenger/restfb/messaging-referral-basic.json", "skip referral"),
    ("messenger/restfb/messaging-request-thread-control.json", "skip request_thread_control"),
    ("messenger/restfb/messaging-take-thread-control.json", "skip take_thread_control"),
    ("messenger/restfb/standby-message-basic-echo.json", "skip standby"),
    ("sms/infobip/courier-helloMsg.json", "1 message"),
    ("sms/infobip/courier-invalidStatus.json", "skip status_report"),
    ("sms/infobip/courier-invalidURN.json", "invalid bad_address"),
    ("sms/infobip/courier-missingResults.json", "dead bad_payload"),
    ("sms/infobip/courier-missingText.json", "1 message"),
    ("sms/infobip/courier-validStatusDelivered.json", "skip status_report"),
    ("sms/infobip/courier-validStatusExpired.json", "skip status_report"),
    ("sms/infobip/courier-validStatusPending.json", "skip status_report, skip status_report"),
    ("sms/infobip/courier-validStatusRejected.json", "skip status_report"),
    ("sms/infobip/courier-validStatusUndeliverable.json", "skip status_report"),
    ("sms/infobip/java-shouldGetReceivedSmsMessages.json", "1 message"),
    ("sms/infobip/java-shouldParseInboundSmsMessages.json", "1 message"),
    ("sms/twilio/botbuilder-whatsapp-imageonly.form", "1 message"),
    ("sms/twilio/cogcov-readme.form", "1 message"),
    ("sms/twilio/courier-receiveBase64.form", "1 message"),
    ("sms/twilio/courier-receiveButtonIgnored.form", "1 message"),
    ("sms/twilio/courier-receiveMedia.form", "1 message"),
    ("sms/twilio/courier-receiveMediaWithMsg.form", "1 message"),
    ("sms/twilio/courier-receiveValid.form", "1 message"),
    ("sms/twilio/courier-statusRateLimit.form", "skip status_report"),
    ("sms/twilio/courier-statusRead.form", "skip status_report"),
    ("sms/twilio/courier-statusValid.form", "skip status_report"),
    ("sms/twilio/courier-tmsReceiveExtra.form", "1 message"),
    ("sms/twilio/courier-waReceivePrefixlessURN.form", "1 message"),
    ("sms/twilio/courier-waReceiveValid.form", "1 message"),
    ("sms/twilio/lambda-twilioGatewayEvent.form", "1 message"),
    ("sms/twilio/photogallery-mms.form", "1 message"),
    ("sms/twilio/safegorge-spec.form", "1 message"),
    ("sms/twilio/songrec-mms-imageonly.form", "1 message"),
];

#[test]
fn every_real_provider_payload_decodes_to_its_expected_outcome() {
    let files = all_files();
    let listed: Vec<&str> = EXPECTED.iter().map(|(f, _)| *f).collect();
    assert_eq!(files, listed, "every file has an expectation, and every expectation a file");
    let wrong: Vec<String> = EXPECTED
        .iter()
        .filter_map(|(file, expected)| {
            let got = outcome(&decode_file(file));
            (got != *expected).then(|| format!("{file}: expected {expected:?}, got {got:?}"))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The one message of a file that must decode to exactly one.
fn only_message(file: &str) -> crate::domain::InboundMessage {
    let decoded = decode_file(file).unwrap_or_else(|e| panic!("{file}: {e}"));
    assert_eq!(decoded.messages.len(), 1, "{file}");
    decoded.messages.into_iter().next().expect("one message")
}

#[test]
fn a_shared_location_keeps_its_coordinates() {
    let m = only_message("messenger/restfb/messaging-message-location-attachment.json");
    let at = m.details.attachments[0].coordinates.as_ref().expect("coordinates");
    assert_eq!((at.lat.to_string().as_str(), at.long.to_string().as_str()), ("12.34", "43.21"));
    let m = only_message("messenger/courier/location_attachment.json");
    let at = m.details.attachments[0].coordinates.as_ref().expect("coordinates");
    assert_eq!((at.lat.to_string().as_str(), at.long.to_string().as_str()), ("1.2", "-1.3"));
}

#[test]
fn a_fallback_attachment_keeps_its_url_and_title_wherever_they_sit() {
    let beside = only_message("messenger/restfb/messaging-message-fallback-attachment.json");
    let a = &beside.details.attachments[0];
    assert_eq!((a.url.as_deref(), a.title.as_deref()), (Some("https://www.messenger.com/"), Some("Legacy Attachment")));
    let inside = only_message("messenger/courier/fallback.json");
    let a = &inside.details.attachments[0];
    assert_eq!((a.url.as_deref(), a.title.as_deref()), (Some("My Documents/foo.doc"), Some("Foo")));
}

#[test]
fn an_unsent_messenger_message_is_skipped_as_deleted() {
    let decoded = decode_file("messenger/restfb/messaging-message-isdeleted.json").expect("decodes");
    assert!(decoded.messages.is_empty());
    assert_eq!(decoded.skipped, [super::SkipKind::Deleted]);
}

#[test]
fn an_infobip_message_list_gives_its_text_and_its_image() {
    let m = only_message("sms/infobip/courier-helloMsg.json");
    assert_eq!(m.body_text, "This is message text");
    let a = &m.details.attachments[0];
    assert_eq!(
        (a.content_type.as_deref(), a.url.as_deref()),
        (Some("image/jpeg"), Some("https://examplelink.com/123456"))
    );
}

#[test]
fn an_empty_infobip_text_falls_back_to_clean_text() {
    assert_eq!(only_message("sms/infobip/courier-missingText.json").body_text, "Correct answer is Paris");
}

#[test]
fn a_standby_entry_is_counted_under_its_own_name() {
    let decoded = decode_file("messenger/restfb/standby-message-basic-echo.json").expect("decodes");
    assert_eq!(decoded.skipped, [super::SkipKind::named("standby")]);
}

#[test]
fn a_chat_plugin_guest_is_named_by_user_ref() {
    assert_eq!(only_message("messenger/restfb/messaging-postback-chat.json").contact.as_str(), "987654321432");
}
