use super::*;
use crate::failure::Verdict;
use std::cell::RefCell;

/// A scripted placing: any range holding a poison unit fails (each try
/// counted); otherwise each item's outcome is `(unit, index)`.
struct Script {
    sizes: Vec<usize>,
    poison: Vec<usize>,
    /// Every call: (range, limit). A failing call stands for `limit` tries
    /// (the attempts loop is tested on its own in `retry`).
    calls: RefCell<Vec<(Range<usize>, u32)>>,
    /// Units placed, in the order they committed.
    committed: RefCell<Vec<usize>>,
    failing_tries: RefCell<u32>,
}

impl Script {
    fn new(sizes: Vec<usize>, poison: Vec<usize>) -> Script {
        Script {
            sizes,
            poison,
            calls: RefCell::default(),
            committed: RefCell::default(),
            failing_tries: RefCell::default(),
        }
    }

    async fn place(&self, range: Range<usize>, limit: u32) -> Result<Result<Vec<(usize, usize)>, Failed>, Interrupted> {
        self.calls.borrow_mut().push((range.clone(), limit));
        if range.clone().any(|u| self.poison.contains(&u)) {
            *self.failing_tries.borrow_mut() += limit;
            return Ok(Err(Failed {
                verdict: Verdict::Retry,
                detail: format!("poison in {range:?}"),
                panicked: false,
            }));
        }
        self.committed.borrow_mut().extend(range.clone());
        Ok(Ok(range.flat_map(|u| (0..self.sizes[u]).map(move |i| (u, i))).collect()))
    }

    async fn settle(&self, attempts: u32) -> Settled<(usize, usize)> {
        settle(&self.sizes, attempts, |range, limit| self.place(range, limit)).await.unwrap()
    }
}

#[tokio::test]
async fn a_batch_that_places_is_placed_once_whole() {
    let script = Script::new(vec![1, 3, 0, 2], vec![]);
    let settled = script.settle(3).await;
    assert_eq!(*script.calls.borrow(), [(0..4, 3)]);
    assert_eq!(settled.splits, 0);
    let ends: Vec<Vec<(usize, usize)>> = settled.ends.into_iter().map(Result::unwrap).collect();
    assert_eq!(ends, [vec![(0, 0)], vec![(1, 0), (1, 1), (1, 2)], vec![], vec![(3, 0), (3, 1)]]);
}

#[tokio::test]
async fn one_poison_record_in_five_hundred_is_found_and_every_other_placed_in_order() {
    let script = Script::new(vec![1; 500], vec![317]);
    let settled = script.settle(3).await;
    for (unit, end) in settled.ends.iter().enumerate() {
        match end {
            Ok(outcomes) => assert_eq!(outcomes, &[(unit, 0)], "unit {unit}"),
            Err(failed) => {
                assert_eq!(unit, 317);
                assert!(failed.detail.contains("317"), "{}", failed.detail);
            }
        }
    }
    let committed = script.committed.borrow();
    assert_eq!(committed.len(), 499);
    assert!(committed.windows(2).all(|w| w[0] < w[1]), "placed in offset order");
    // log2(500) rounds up to 9 levels of halving.
    assert_eq!(settled.splits, 9);
    // Whole batch 3 tries, the lone record 3, each failing half 1: the
    // module's bound, 2 × attempts + ⌈log2 500⌉ − 1, exactly.
    assert_eq!(*script.failing_tries.borrow(), 2 * 3 + 9 - 1);
    assert!(script.calls.borrow().contains(&(317..318, 3)), "the lone record gets its attempts");
}

#[tokio::test]
async fn several_poison_records_are_each_isolated() {
    let script = Script::new(vec![2; 40], vec![0, 7, 8, 39]);
    let settled = script.settle(2).await;
    let failed: Vec<usize> = settled.ends.iter().enumerate().filter(|(_, e)| e.is_err()).map(|(u, _)| u).collect();
    assert_eq!(failed, [0, 7, 8, 39]);
    assert_eq!(script.committed.borrow().len(), 36);
    assert!(script.committed.borrow().windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn a_lone_record_is_tried_its_attempts_and_never_split() {
    let script = Script::new(vec![4], vec![0]);
    let settled = script.settle(3).await;
    assert_eq!(*script.calls.borrow(), [(0..1, 3)]);
    assert_eq!(settled.splits, 0);
    assert!(settled.ends[0].is_err());
}

#[tokio::test]
async fn a_stop_while_isolating_ends_it_without_a_result() {
    let sizes = vec![1; 8];
    let mut calls = 0;
    let result: Result<Settled<()>, _> = settle(&sizes, 3, |_, _| {
        calls += 1;
        let n = calls;
        async move {
            if n == 1 {
                Ok(Err(Failed { verdict: Verdict::Retry, detail: String::new(), panicked: false }))
            } else {
                Err(Interrupted)
            }
        }
    })
    .await;
    assert!(matches!(result, Err(Interrupted)));
    assert_eq!(calls, 2, "nothing is placed after the stop");
}
