//! Integration tests: every test goes through the real broker and the real
//! Postgres, with its own topics and database (see `harness`).

mod support;
// The shared helpers, at the paths the tests name them by.
use support::{agent, flow, harness};

mod agent_race;
mod automatic_mail;
mod bounds;
mod broker;
mod broker_outage;
mod clock;
mod concurrency;
mod dead_letters;
mod email_ids;
mod end_to_end;
mod events;
mod faults;
mod handover;
mod head_of_line;
mod hostile;
mod isolation;
mod late_parent;
mod lifecycle;
mod load;
mod lock_budget;
mod logs;
mod memory;
mod metrics;
mod nul_bytes;
mod outage;
mod partial_batches;
mod plans;
mod provider_payloads;
mod redrive;
mod replay;
mod replay_tool;
mod replies_first;
mod report;
mod rules;
mod sdk_records;
mod secure;
mod security;
mod sender_policy;
mod shared;
mod siblings;
mod statements;
mod stop_at_end;
mod supervision;
mod upgrade;
mod windows;
