//! Integration tests: every test goes through the real broker and the real
//! Postgres, with its own topics and database (see `harness`).

mod agent;
mod agent_race;
mod broker_outage;
mod clock;
mod concurrency;
mod harness;

mod dead_letters;
mod end_to_end;
mod lifecycle;
mod outage;
mod replay;
mod replies_first;
mod report;
mod rules;
mod siblings;
mod windows;
