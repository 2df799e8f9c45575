//! Realistic sample traffic: CloudEvents records of every type and mode, for
//! the demo (`switchboard-load sample`, used by `scripts/demo.sh`) and the tests.

use switchboard::config::TopicSettings;
use switchboard::domain::Channel;
use switchboard::record::Header;

/// A record to publish: its topic is chosen by channel name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleRecord {
    /// `email`, `sms` or `messenger`: which input topic it goes to.
    pub channel: &'static str,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
    pub headers: Vec<Header>,
}

impl SampleRecord {
    /// The input topic of its channel (messenger's for a name no channel
    /// has, as the generator only ever names the three).
    pub fn topic<'a>(&self, topics: &'a TopicSettings) -> &'a str {
        Channel::parse(self.channel).map_or(topics.messenger.as_str(), |c| topics.for_channel(c))
    }
}

fn header(key: &str, value: &str) -> Header {
    Header { key: key.to_owned(), value: Some(value.as_bytes().to_vec()) }
}

/// A binary-mode CloudEvent.
pub fn binary(
    channel: &'static str,
    ce_type: &str,
    id: &str,
    content_type: &str,
    extensions: &[(&str, &str)],
    payload: &[u8],
) -> SampleRecord {
    let mut headers = vec![
        header("ce_specversion", "1.0"),
        header("ce_id", id),
        header("ce_source", &format!("/gateways/{channel}")),
        header("ce_type", ce_type),
        header("ce_time", "2026-11-25T09:00:00Z"),
        header("content-type", content_type),
    ];
    for (k, v) in extensions {
        headers.push(header(&format!("ce_{k}"), v));
    }
    SampleRecord { channel, key: None, value: payload.to_vec(), headers }
}

/// A structured-mode CloudEvent; `data` is a JSON value or, for non-JSON
/// payloads, carried as `data_base64`.
pub fn structured(
    channel: &'static str,
    ce_type: &str,
    id: &str,
    content_type: &str,
    extensions: &[(&str, &str)],
    payload: &[u8],
) -> SampleRecord {
    use base64::Engine as _;
    let mut event = serde_json::json!({
        "specversion": "1.0",
        "id": id,
        "source": format!("/gateways/{channel}"),
        "type": ce_type,
        "time": "2026-11-25T09:00:00Z",
        "datacontenttype": content_type,
    });
    match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(json) if content_type.starts_with("application/json") => event["data"] = json,
        _ => event["data_base64"] = base64::engine::general_purpose::STANDARD.encode(payload).into(),
    }
    for (k, v) in extensions {
        event[*k] = (*v).into();
    }
    SampleRecord {
        channel,
        key: None,
        value: event.to_string().into_bytes(),
        headers: vec![header("content-type", "application/cloudevents+json; charset=UTF-8")],
    }
}

/// An email as its inbox received it.
pub fn email(recipient: &str, id: &str, raw: &str) -> SampleRecord {
    binary("email", "email.received", id, "message/rfc822", &[("recipient", recipient)], raw.as_bytes())
}

/// The demo's traffic: a customer emails support, two inboxes get one mail,
/// a reply threads, SMS in both provider formats, Messenger with noise.
pub fn demo_traffic() -> Vec<SampleRecord> {
    let first = "From: Ana Horvat <Ana.Horvat@example.com>\r\nTo: support@acme.example\r\nSubject: Order 1182 arrived damaged\r\nMessage-ID: <order-1182-a@mail.example.com>\r\nDate: Tue, 24 Nov 2026 18:02:11 +0100\r\n\r\nHello, the box was crushed and the lamp is broken. Can you help?\r\n";
    let reply = "From: Ana Horvat <ana.horvat@example.com>\r\nTo: support@acme.example\r\nSubject: Re: Order 1182 arrived damaged\r\nMessage-ID: <order-1182-b@mail.example.com>\r\nIn-Reply-To: <order-1182-a@mail.example.com>\r\nReferences: <order-1182-a@mail.example.com>\r\nDate: Tue, 24 Nov 2026 19:40:00 +0100\r\n\r\nPhotos are attached to my first mail. Thanks!\r\n";
    let both = "From: Marko Babic <marko@example.net>\r\nTo: sales@acme.example\r\nCc: support@acme.example\r\nSubject: Invoice address\r\nMessage-ID: <inv-77@example.net>\r\nDate: Wed, 25 Nov 2026 08:15:00 +0100\r\n\r\nPlease change the invoice address to Ilica 1, Zagreb.\r\n";
    let ooo = "From: Petra Kos <petra@example.org>\r\nTo: support@acme.example\r\nSubject: Automatic reply: your ticket\r\nMessage-ID: <ooo-1@example.org>\r\nAuto-Submitted: auto-replied\r\nDate: Wed, 25 Nov 2026 08:20:00 +0100\r\n\r\nI am out of office until Monday.\r\n";
    let infobip = r#"{"results":[{"messageId":"ib-5001","from":"385916242493","to":"(800) 100-20000","text":"Where is my parcel?","cleanText":"Where is my parcel?","keyword":"","receivedAt":"2026-11-25T07:00:00.000+0000","smsCount":1},{"messageId":"ib-5002","from":"+385 91 624 2493","to":"800-100-20000","text":"Tracking number is 99812","cleanText":"Tracking number is 99812","keyword":"","receivedAt":"2026-11-25T07:01:00.000+0000","smsCount":1}],"messageCount":2,"pendingMessageCount":0}"#;
    let twilio = "MessageSid=SM0a1b2c3d4e5f&AccountSid=AC123&From=%2B14155550123&To=%2B18005550199&Body=Is+the+store+open+on+Sunday%3F&NumMedia=0";
    let messenger = r#"{"object":"page","entry":[{"id":"104729","time":1764054000000,"messaging":[{"sender":{"id":"6178123"},"recipient":{"id":"104729"},"timestamp":1764054000000,"message":{"mid":"m_demo_1","text":"Hi, do you ship to Slovenia?"}},{"sender":{"id":"104729"},"recipient":{"id":"6178123"},"timestamp":1764054001000,"message":{"mid":"m_demo_echo","text":"Thanks for your message!","is_echo":true}},{"sender":{"id":6178123},"recipient":{"id":104729},"timestamp":1764054002000,"delivery":{"mids":["m_demo_echo"],"watermark":1764054001000}},{"sender":{"id":"6178123"},"recipient":{"id":"104729"},"timestamp":1764054005000,"message":{"mid":"m_demo_2","text":"And how long does it take?","reply_to":{"mid":"m_demo_1"}}}]}]}"#;
    vec![
        email("support@acme.example", "evt-mail-1", first),
        structured(
            "email",
            "email.received",
            "evt-mail-2",
            "message/rfc822",
            &[("recipient", "support@acme.example")],
            reply.as_bytes(),
        ),
        email("sales@acme.example", "evt-mail-3a", both),
        email("support@acme.example", "evt-mail-3b", both),
        email("support@acme.example", "evt-mail-4", ooo),
        // The gateway retried: the same event again.
        email("support@acme.example", "evt-mail-1", first),
        binary("sms", "sms.received", "evt-sms-1", "application/json", &[], infobip.as_bytes()),
        binary("sms", "sms.received", "evt-sms-2", "application/x-www-form-urlencoded", &[], twilio.as_bytes()),
        structured("messenger", "messenger.received", "evt-fb-1", "application/json", &[], messenger.as_bytes()),
        // Not a CloudEvent at all: dead-lettered, never lost.
        SampleRecord { channel: "sms", key: None, value: b"hello?".to_vec(), headers: vec![] },
    ]
}
