//! Conversation events out (contract section 6) on the real broker and
//! Postgres: a consumer reads the events topic and compares it with the
//! store, decision by decision. Every decision is published once (after
//! dropping repeated ids), keyed by its conversation, in commit order per
//! conversation; a replay publishes nothing new; a broker outage delays
//! events without stopping placement, and `/readyz` says so past the
//! outbox's bounds. The crash test (`faults.rs`) checks the same after
//! SIGKILLs.

use crate::agent::*;
use crate::harness::{free_port, TestEnv};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use switchboard::config::KafkaSettings;
use switchboard::events::{CloudEvent, EventType};
use switchboard::http::fetch;
use switchboard::kafka::read_topic;
use uuid::Uuid;

const LIST: &str = "list@acme.example";

/// (type, conversation, message, other conversation): one decision.
type Decision = (String, Uuid, Uuid, Option<Uuid>);

/// The published description of an event (docs/schemas), which every event
/// the tests see must match.
fn schema() -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schemas/conversation-event.schema.json");
    let schema: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("the event schema")).expect("JSON");
    jsonschema::options().should_validate_formats(true).build(&schema).expect("a valid JSON Schema")
}

/// The events on the topic, in topic order per partition, with their
/// record keys; repeats (a resend after a crash) included. Each matches the
/// published schema.
pub fn events_on(kafka: &KafkaSettings, topic: &str) -> Vec<(String, CloudEvent, i32, i64)> {
    let schema = schema();
    read_topic(kafka, topic, usize::MAX, Duration::from_secs(3))
        .expect("read the events topic")
        .into_iter()
        .map(|r| {
            let value = r.value.as_deref().expect("an event has a value");
            let json: serde_json::Value = serde_json::from_slice(value).expect("JSON");
            let errors: Vec<String> =
                schema.iter_errors(&json).map(|e| format!("{e} at {}", e.instance_path())).collect();
            assert!(errors.is_empty(), "an event the schema refuses: {errors:?}\n{json:#}");
            let event: CloudEvent = serde_json::from_value(json)
                .unwrap_or_else(|e| panic!("not an event ({e}): {}", String::from_utf8_lossy(value)));
            let key = String::from_utf8(r.key.clone().expect("an event has a key")).expect("a text key");
            (key, event, r.partition, r.offset)
        })
        .collect()
}

/// Every decision the store holds: one per audit row and one per message.
async fn decisions_in_store(env: &TestEnv) -> BTreeSet<Decision> {
    let audit: Vec<(String, Uuid, Uuid, Option<Uuid>)> =
        sqlx::query_as("SELECT kind, conversation_id, message_id, related_conversation_id FROM conversation_events")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let messages: Vec<(Uuid, Uuid)> =
        sqlx::query_as("SELECT conversation_id, id FROM messages WHERE direction = 'inbound'")
            .fetch_all(&env.pool)
            .await
            .unwrap();
    audit
        .into_iter()
        .map(|(kind, c, m, r)| (format!("conversation.{kind}"), c, m, r))
        .chain(messages.into_iter().map(|(c, m)| ("message.placed".to_owned(), c, m, None)))
        .collect()
}

/// Waits for the outbox to empty, then checks the topic against the store:
/// the same decisions, each once after dropping repeated ids, each record
/// keyed by its event's subject, and per key a conversation's creation
/// before its messages. Returns the events, first copies only.
pub async fn check_events(env: &TestEnv, kafka: &KafkaSettings) -> Vec<CloudEvent> {
    crate::flow::wait_until("the events outbox is empty", Duration::from_secs(120), || async {
        env.count("SELECT count(*) FROM event_outbox").await == 0
    })
    .await;
    let on_topic = events_on(kafka, &env.settings.kafka.topics.events);
    let mut seen = BTreeSet::new();
    let mut first = Vec::new();
    let mut by_key: BTreeMap<String, Vec<&CloudEvent>> = BTreeMap::new();
    for (key, event, _, _) in &on_topic {
        assert_eq!(key, &event.subject.to_string(), "the record key is the event's subject");
        assert_eq!((event.specversion.as_str(), event.source.as_str()), ("1.0", "switchboard"));
        assert!(EventType::parse(&event.kind).is_some(), "a known type: {}", event.kind);
        if seen.insert(event.id) {
            first.push(event.clone());
            by_key.entry(key.clone()).or_default().push(event);
        }
    }
    let published: BTreeSet<Decision> = first
        .iter()
        .map(|e| (e.kind.clone(), e.data.conversation_id, e.data.message_id, e.data.related_conversation_id))
        .collect();
    assert_eq!(published.len(), first.len(), "one event per decision");
    let stored = decisions_in_store(env).await;
    let missing: Vec<_> = stored.difference(&published).take(10).collect();
    let extra: Vec<_> = published.difference(&stored).take(10).collect();
    assert!(missing.is_empty(), "decisions never published: {missing:?}");
    assert!(extra.is_empty(), "events for decisions the store does not hold (rolled back?): {extra:?}");
    // Keyed by the conversation after merges: the subject is on the merge
    // chain from the conversation the event is about (a later merge moves
    // the chain's end on, not the events already published).
    let chains: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "WITH RECURSIVE up (start, id, hops) AS (
             SELECT id, id, 0 FROM conversations
           UNION ALL
             SELECT up.start, c.merged_into, up.hops + 1 FROM up JOIN conversations c ON c.id = up.id
             WHERE c.merged_into IS NOT NULL AND up.hops < 64)
         SELECT start, id FROM up",
    )
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let chains: BTreeSet<(Uuid, Uuid)> = chains.into_iter().collect();
    for e in &first {
        assert!(
            chains.contains(&(e.data.conversation_id, e.subject)),
            "{} about {} keyed by {}, which is not on its merge chain",
            e.kind,
            e.data.conversation_id,
            e.subject
        );
    }
    for (key, events) in &by_key {
        let created =
            events.iter().position(|e| e.kind == "conversation.created" && e.data.conversation_id.to_string() == *key);
        let placed =
            events.iter().position(|e| e.kind == "message.placed" && e.data.conversation_id.to_string() == *key);
        if let (Some(c), Some(p)) = (created, placed) {
            assert!(c < p, "conversation {key}: a message placed before the conversation was created");
        }
    }
    first
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_decision_is_published_once_keyed_by_its_conversation_and_a_replay_publishes_nothing() {
    let env = TestEnv::with(3, |s| s.threading.reply_senders = "any".into()).await;
    for r in switchboard_load::sample::demo_traffic() {
        env.publish(&r).await;
    }
    // A reply that came before its parent, who answers a thread of its own (R8).
    env.publish_to(&mail(LIST, "b1@x", "bob@example.com", Some("p@x"), &["p@x"], ""), Some("k")).await;
    env.publish_to(&mail(LIST, "z@x", "ana@example.com", None, &[], ""), Some("k")).await;
    env.publish_to(&mail(LIST, "p@x", "ana@example.com", Some("z@x"), &["z@x"], ""), Some("k")).await;
    let first = env.run_to_end().await;
    // A customer writes to a solved conversation (R5), and replies to a
    // closed one (R2, a follow-up).
    let ana = conversation_of(&env.pool, "z@x", LIST).await;
    sqlx::query("UPDATE conversations SET status = 'solved' WHERE id = $1").bind(ana).execute(&env.pool).await.unwrap();
    env.publish_to(&mail(LIST, "z2@x", "ana@example.com", None, &[], ""), Some("k")).await;
    let order = conversation_of(&env.pool, "order-1182-a@mail.example.com", "support@acme.example").await;
    sqlx::query("UPDATE conversations SET status = 'closed', closed_at = now() WHERE id = $1")
        .bind(order)
        .execute(&env.pool)
        .await
        .unwrap();
    env.publish(&mail(
        "support@acme.example",
        "order-1182-c@mail.example.com",
        "ana.horvat@example.com",
        Some("order-1182-b@mail.example.com"),
        &[],
        "",
    ))
    .await;
    let second = env.run_to_end().await;

    let events = check_events(&env, &env.settings.kafka).await;
    let count = |t: &str| events.iter().filter(|e| e.kind == t).count();
    for t in EventType::ALL {
        assert!(count(t.as_str()) > 0, "the traffic makes a {} event: {events:#?}", t.as_str());
    }
    // message.placed carries the rule, as the run counted them.
    let mut rules: BTreeMap<String, u64> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "message.placed") {
        *rules.entry(e.data.rule.clone().expect("a placed message's rule")).or_default() += 1;
    }
    let mut counted: BTreeMap<String, u64> = BTreeMap::new();
    for (rule, n) in first.messages_by_rule.iter().chain(second.messages_by_rule.iter()) {
        if *rule != "r0_duplicate" {
            *counted.entry((*rule).to_owned()).or_default() += n;
        }
    }
    assert_eq!(rules, counted, "one message.placed per placed message, with its rule");
    let merged = events.iter().find(|e| e.kind == "conversation.merged").expect("R8 merged");
    assert_eq!(merged.subject, ana, "keyed by the conversation it went into");
    let reopened = events.iter().find(|e| e.kind == "conversation.reopened").expect("R5");
    assert_eq!(
        (reopened.data.status_before.as_deref(), reopened.data.status_after.as_deref()),
        (Some("solved"), Some("open"))
    );
    assert_eq!(reopened.data.source.topic, env.topic("email"));
    // The message that reopened it carries the same change; one that
    // started a conversation has no status before it.
    let placed = |message_id| {
        events.iter().find(|e| e.kind == "message.placed" && e.data.message_id == message_id).expect("placed")
    };
    let statuses = |e: &CloudEvent| (e.data.status_before.clone(), e.data.status_after.clone());
    assert_eq!(statuses(placed(reopened.data.message_id)), (Some("solved".into()), Some("open".into())));
    let created = events.iter().find(|e| e.kind == "conversation.created").expect("R4");
    assert_eq!(statuses(placed(created.data.message_id)), (None, Some("open".into())));
    for e in events.iter().filter(|e| e.kind == "message.placed") {
        assert!(e.data.status_after.is_some(), "every placed message says where it left its conversation: {e:?}");
    }

    // A replay with a new group is all duplicates: nothing new is published.
    let before = events_on(&env.settings.kafka, &env.topic("events")).len();
    env.run_to_end_with(&env.with_new_group()).await;
    assert_eq!(env.count("SELECT count(*) FROM event_outbox").await, 0);
    assert_eq!(events_on(&env.settings.kafka, &env.topic("events")).len(), before, "a replay publishes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_off_writes_no_outbox_rows() {
    let env = TestEnv::with(1, |s| s.events.enabled = false).await;
    env.publish(&sms("s-1", "385911111111", "800", "hi")).await;
    env.run_to_end().await;
    assert_eq!(env.count("SELECT count(*) FROM messages").await, 1);
    assert_eq!(env.count("SELECT count(*) FROM event_outbox").await, 0);
    assert!(events_on(&env.settings.kafka, &env.topic("events")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_outage_delays_events_without_stopping_placement_and_the_outbox_drains_after() {
    // The events go to a broker of the test's own, down while placing runs.
    let broker = crate::broker::OwnBroker::start(9394);
    let port = free_port();
    let env = TestEnv::with(2, |s| {
        s.events.bootstrap_servers = broker.address();
        s.events.outbox_alarm_rows = 10;
        s.http.addr = format!("127.0.0.1:{port}");
        s.http.poll_interval = Duration::from_millis(200);
    })
    .await;
    let events_kafka = env.settings.events_kafka();
    switchboard::kafka::ensure_topics(&events_kafka, &[&env.settings.kafka.topics.events], 2).await.expect("topic");
    broker.stop();

    for n in 0..40 {
        env.publish(&sms(&format!("o-{n}"), &format!("3859100000{n:02}"), "800", "hello")).await;
    }
    let running = env.start_worker(&env.settings);
    env.wait_for_messages(40, Duration::from_secs(120)).await;
    let addr = format!("127.0.0.1:{port}");
    crate::flow::wait_until("/readyz names the outbox", Duration::from_secs(60), || async {
        matches!(fetch(&addr, "/readyz").await, Ok((503, body)) if body.contains("events outbox holds"))
    })
    .await;
    assert!(
        env.count("SELECT COALESCE(sum(events), 0)::bigint FROM event_outbox").await >= 80,
        "two events per message wait"
    );

    broker.restart();
    let events = check_events(&env, &events_kafka).await;
    assert_eq!(events.iter().filter(|e| e.kind == "message.placed").count(), 40);
    crate::flow::wait_until("/readyz is ready again", Duration::from_secs(60), || async {
        matches!(fetch(&addr, "/readyz").await, Ok((200, _)))
    })
    .await;
    running.stop().await;
}

/// The schema is a real check: an event it would let through unchanged is
/// refused once a field the contract needs is gone or wrong.
#[test]
fn the_schema_refuses_events_that_break_the_contract() {
    let schema = schema();
    let good = serde_json::json!({
        "specversion": "1.0", "id": Uuid::nil(), "source": "switchboard", "type": "message.placed",
        "time": "2026-12-07T00:00:00Z", "subject": Uuid::nil(), "datacontenttype": "application/json",
        "data": {
            "conversation_id": Uuid::nil(), "message_id": Uuid::nil(), "channel": "sms", "endpoint": "800",
            "contact": "385911111111", "status_before": null, "status_after": "open", "rule": "r4_new",
            "related_conversation_id": null, "link_kind": null,
            "source": { "topic": "inbound.sms", "partition": 0, "offset": 3 }
        }
    });
    assert!(schema.is_valid(&good), "{:?}", schema.iter_errors(&good).map(|e| e.to_string()).collect::<Vec<_>>());
    let mut no_rule = good.clone();
    no_rule["data"]["rule"] = serde_json::Value::Null;
    assert!(!schema.is_valid(&no_rule), "message.placed without its rule");
    let mut no_status = good.clone();
    no_status["data"]["status_after"] = serde_json::Value::Null;
    assert!(!schema.is_valid(&no_status), "message.placed without the status it left");
    let mut unknown = good.clone();
    unknown["type"] = "conversation.deleted".into();
    assert!(!schema.is_valid(&unknown), "an unknown type");
    let mut linked_without_kind = good.clone();
    linked_without_kind["type"] = "conversation.linked".into();
    linked_without_kind["data"]["rule"] = serde_json::Value::Null;
    assert!(!schema.is_valid(&linked_without_kind), "a link without its kind");
}

/// docs/asyncapi.yaml describes every topic Switchboard reads and writes,
/// and points at the event schema the tests check events against.
#[test]
fn the_asyncapi_description_names_every_topic_and_event() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("docs/asyncapi.yaml")).expect("docs/asyncapi.yaml");
    assert!(text.starts_with("asyncapi: 3."), "an AsyncAPI 3 document");
    let settings = switchboard::config::Settings::load(&Default::default(), &[]).expect("defaults");
    let t = &settings.kafka.topics;
    for topic in [&t.email, &t.sms, &t.messenger, &t.dlq, &t.events] {
        assert!(text.contains(&format!("address: {topic}")), "the topic {topic}");
    }
    assert!(text.contains("schemas/conversation-event.schema.json"), "the event schema");
    for kind in EventType::ALL {
        assert!(text.contains(kind.as_str()), "the event {}", kind.as_str());
    }
}
