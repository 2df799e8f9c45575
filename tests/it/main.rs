//! Integration tests: every test goes through the real broker and the real
//! Postgres, with its own topics and database (see `harness`).

mod agent;
mod broker_outage;
mod concurrency;
mod harness;

mod dead_letters;
mod end_to_end;
mod lifecycle;
mod load;
mod logs;
mod metrics;
mod outage;
mod redrive;
mod replay;
mod replay_tool;
mod rules;
mod siblings;
