//! Everything the integration tests share, in one place: the harness (a
//! test's own database and topics, the worker in process or as the real
//! binary), waiting for conditions and reading what a run left (`flow`),
//! and the desk's side (`agent`: records as gateways publish them, and the
//! agent desktop's statements from the contract). A helper is defined here
//! once; test files only hold tests.

pub mod agent;
pub mod flow;
pub mod harness;
