//! Faults on demand, for the integration tests only (`worker.test_panic_*`
//! settings, empty in every real configuration): a panic at a chosen
//! record, to show what the worker does with one.

use crate::store::Item;

/// Parses `topic/partition/offset` (the topic may hold slashes).
pub(super) fn record_at(text: &str) -> Option<(String, i32, i64)> {
    let (rest, offset) = text.rsplit_once('/')?;
    let (topic, partition) = rest.rsplit_once('/')?;
    Some((topic.to_owned(), partition.parse().ok()?, offset.parse().ok()?))
}

/// Makes every attempt to place a batch that holds one given record panic.
#[derive(Debug)]
pub(super) struct PanicPlacing {
    topic: String,
    partition: i32,
    offset: i64,
}

impl PanicPlacing {
    /// Parses `topic/partition/offset`; `None` when empty or malformed.
    pub(super) fn parse(text: &str) -> Option<PanicPlacing> {
        let (topic, partition, offset) = record_at(text)?;
        Some(PanicPlacing { topic, partition, offset })
    }

    /// Whether `items` hold the record.
    pub(super) fn holds<'a>(&self, mut items: impl Iterator<Item = &'a Item>) -> bool {
        items.any(|i| {
            i.source.topic == self.topic && i.source.partition == self.partition && i.source.offset == self.offset
        })
    }

    /// Panics when `items` hold the record.
    pub(super) fn check(&self, items: &[&Item]) {
        if self.holds(items.iter().copied()) {
            panic!("injected test panic placing {}/{}/{}", self.topic, self.partition, self.offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_reads_topic_partition_offset() {
        let hook = PanicPlacing::parse("t.sms/2/17").unwrap();
        assert_eq!((hook.topic.as_str(), hook.partition, hook.offset), ("t.sms", 2, 17));
        assert!(PanicPlacing::parse("").is_none());
        assert!(PanicPlacing::parse("t.sms/x/1").is_none());
    }
}
