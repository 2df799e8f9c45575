//! Operators' commands beyond `run`: moving a group's offsets (`replay`),
//! reading dead letters and sending them back (`dead_letters`, `redrive`).
//! Each keeps its decisions in pure functions and its IO in a few calls to
//! the Kafka module.

pub mod commands;
pub mod dead_letters;
pub mod redrive;
pub mod replay;
pub mod summary;
