//! Integration tests: every test goes through the real broker and the real
//! Postgres, with its own topics and database (see `harness`).

mod agent;
mod broker_outage;
mod concurrency;
mod flow;
mod handover;
mod harness;
mod head_of_line;

mod dead_letters;
mod end_to_end;
mod lifecycle;
mod lock_budget;
mod memory;
mod outage;
mod replay;
mod rules;
mod siblings;
mod stop_at_end;
mod supervision;
