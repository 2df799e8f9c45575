//! Integration tests: every test goes through the real broker and the real
//! Postgres, with its own topics and database (see `harness`).

mod agent;
mod agent_race;
mod automatic_mail;
mod broker;
mod broker_outage;
mod clock;
mod concurrency;
mod dead_letters;
mod email_ids;
mod end_to_end;
mod faults;
mod flow;
mod handover;
mod harness;
mod head_of_line;
mod hostile;
mod lifecycle;
mod lock_budget;
mod memory;
mod nul_bytes;
mod outage;
mod partial_batches;
mod provider_payloads;
mod replay;
mod replies_first;
mod report;
mod rules;
mod sdk_records;
mod security;
mod siblings;
mod stop_at_end;
mod supervision;
mod windows;
