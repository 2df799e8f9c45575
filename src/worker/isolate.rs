//! Finding the record that makes a batch fail.
//!
//! A batch that fails for a reason that is not the infrastructure's, after
//! its attempts, is split in halves; each half is placed on its own, the
//! earlier half first so that a partition's records are still applied in
//! offset order; a half that fails is split again, down to one record,
//! which is tried `attempts` times alone and then handed back as failed
//! (the caller dead-letters it). Every other record is placed.
//!
//! What it costs: the whole batch and each lone record get `attempts`
//! tries, every split half one, so one poison record in a batch of `n`
//! takes at most `2 × attempts + ⌈log2 n⌉ − 1` failing attempts (14 for
//! 500 records and 3 attempts); every good half commits once. A unit is a record (all its messages go
//! together: a record is dead-lettered whole), never a message.
//!
//! No IO here: the caller passes the placing, so the procedure is tested
//! with a scripted one.

use super::retry::{Failed, Interrupted};
use std::future::Future;
use std::ops::Range;

/// How a batch settled: each unit's outcomes, or the failure that
/// isolated it.
#[derive(Debug)]
pub(super) struct Settled<T> {
    /// One entry per unit, in order.
    pub ends: Vec<Result<Vec<T>, Failed>>,
    /// How often a failing part was split in two.
    pub splits: u32,
}

/// Places units `sizes.len()` units (unit `i` has `sizes[i]` items) with
/// `place(range, limit)`, which places the items of the units in `range`
/// in one go, trying at most `limit` times, and returns one outcome per
/// item or the failure.
pub(super) async fn settle<T, F, Fut>(sizes: &[usize], attempts: u32, mut place: F) -> Result<Settled<T>, Interrupted>
where
    F: FnMut(Range<usize>, u32) -> Fut,
    Fut: Future<Output = Result<Result<Vec<T>, Failed>, Interrupted>>,
{
    let mut ends: Vec<Option<Result<Vec<T>, Failed>>> = sizes.iter().map(|_| None).collect();
    let mut splits = 0;
    // A stack: the earlier half is pushed last, so it is placed first.
    let mut todo: Vec<Range<usize>> = Vec::with_capacity(64);
    todo.push(0..sizes.len());
    while let Some(range) = todo.pop() {
        if range.is_empty() {
            continue;
        }
        let whole = range.len() == sizes.len();
        let limit = if whole || range.len() == 1 { attempts } else { 1 };
        match place(range.clone(), limit).await? {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for unit in range {
                    ends[unit] = Some(Ok(outcomes.by_ref().take(sizes[unit]).collect()));
                }
            }
            Err(failed) if range.len() == 1 => ends[range.start] = Some(Err(failed)),
            Err(_) => {
                splits += 1;
                let middle = range.start + range.len() / 2;
                todo.push(middle..range.end);
                todo.push(range.start..middle);
            }
        }
    }
    let ends = ends
        .into_iter()
        .map(|end| end.expect("each range popped settles its units or pushes two halves covering them"))
        .collect();
    Ok(Settled { ends, splits })
}

#[cfg(test)]
mod tests;
