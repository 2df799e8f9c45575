//! Integration tests: every test goes through the real broker and the real
//! Postgres, with its own topics and database (see `harness`).

mod harness;

mod dead_letters;
mod end_to_end;
mod outage;
