//! A Prometheus histogram with fixed buckets: cumulative counts per upper
//! bound, a sum and a count. Hand-rolled because the worker needs a few of
//! them and the exposition format is a few lines; an exporter crate would
//! bring a registry and a global state we do not want.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// One histogram. Observations are cheap (a short lock); the lock is never
/// held across an await.
#[derive(Debug)]
pub(crate) struct Histogram {
    /// Upper bounds, ascending; `+Inf` is implicit.
    bounds: &'static [f64],
    inner: Mutex<Counts>,
}

#[derive(Debug, Default, Clone)]
struct Counts {
    /// Non-cumulative count per bucket; one more than `bounds` for `+Inf`.
    per_bucket: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [f64]) -> Histogram {
        let counts = Counts { per_bucket: vec![0; bounds.len() + 1], ..Counts::default() };
        Histogram { bounds, inner: Mutex::new(counts) }
    }

    pub(crate) fn observe(&self, value: f64) {
        self.observe_all([value]);
    }

    /// Observes every value under one lock: a batch's records at once.
    pub(crate) fn observe_all(&self, values: impl IntoIterator<Item = f64>) {
        let Ok(mut c) = self.inner.lock() else { return };
        for value in values {
            self.add(&mut c, value, 1);
        }
    }

    /// Observes `value` `times` times: the same wait for each record of a
    /// batch, with one bucket search.
    pub(crate) fn observe_repeated(&self, value: f64, times: usize) {
        let Ok(mut c) = self.inner.lock() else { return };
        self.add(&mut c, value, times as u64);
    }

    fn add(&self, c: &mut Counts, value: f64, times: u64) {
        // A NaN would poison the sum forever; it never comes from a clock.
        if value.is_nan() || times == 0 {
            return;
        }
        let slot = self.bounds.iter().position(|b| value <= *b).unwrap_or(self.bounds.len());
        c.per_bucket[slot] += times;
        c.sum += value * times as f64;
        c.count += times;
    }

    /// Appends the `_bucket`, `_sum` and `_count` series of `name`.
    pub(crate) fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        self.render_series(out, name, "");
    }

    /// The series alone, each with `labels` (`name="value"`, or empty)
    /// before `le`.
    fn render_series(&self, out: &mut String, name: &str, labels: &str) {
        let c = self.inner.lock().map(|c| c.clone()).unwrap_or_default();
        let (bucket, plain) = if labels.is_empty() {
            (String::new(), String::new())
        } else {
            (format!("{labels},"), format!("{{{labels}}}"))
        };
        let mut cumulative = 0;
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += c.per_bucket.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{bucket}le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{{bucket}le=\"+Inf\"}} {}", c.count);
        let _ = writeln!(out, "{name}_sum{plain} {}", c.sum);
        let _ = writeln!(out, "{name}_count{plain} {}", c.count);
    }
}

/// One histogram per value of a label, made on first use. For labels whose
/// values the operator bounds (the input topics), never for values that
/// come from records.
#[derive(Debug)]
pub(crate) struct ByLabel {
    label: &'static str,
    bounds: &'static [f64],
    each: Mutex<BTreeMap<String, Arc<Histogram>>>,
}

impl ByLabel {
    pub(crate) fn new(label: &'static str, bounds: &'static [f64]) -> ByLabel {
        ByLabel { label, bounds, each: Mutex::default() }
    }

    pub(crate) fn observe_all(&self, value: &str, values: impl IntoIterator<Item = f64>) {
        if let Some(histogram) = self.histogram(value) {
            histogram.observe_all(values);
        }
    }

    /// [`Histogram::observe_repeated`] on `value`'s histogram.
    pub(crate) fn observe_repeated(&self, value: &str, observed: f64, times: usize) {
        if let Some(histogram) = self.histogram(value) {
            histogram.observe_repeated(observed, times);
        }
    }

    /// `value`'s histogram, made on first use; the map's lock is not held
    /// while observing.
    fn histogram(&self, value: &str) -> Option<Arc<Histogram>> {
        let mut each = self.each.lock().ok()?;
        // Looked up before a key is made: after the first batch of a
        // topic, every batch finds its histogram.
        Some(match each.get(value) {
            Some(h) => h.clone(),
            None => each.entry(value.to_owned()).or_insert_with(|| Arc::new(Histogram::new(self.bounds))).clone(),
        })
    }

    /// Appends every label value's series of `name`, in label order.
    pub(crate) fn render(&self, out: &mut String, name: &str, help: &str) {
        let each: Vec<(String, Arc<Histogram>)> =
            self.each.lock().map(|e| e.iter().map(|(k, h)| (k.clone(), h.clone())).collect()).unwrap_or_default();
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (value, histogram) in each {
            histogram.render_series(out, name, &format!("{}=\"{}\"", self.label, escaped(&value)));
        }
    }
}

/// A label value as the exposition format writes it.
fn escaped(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inf_equals_the_count() {
        let h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 1.0, 3.0, 20.0, f64::NAN] {
            h.observe(v);
        }
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "test");
        has_lines(
            &out,
            &[
                "x_seconds_bucket{le=\"1\"} 2",
                "x_seconds_bucket{le=\"10\"} 3",
                "x_seconds_bucket{le=\"+Inf\"} 4",
                "x_seconds_sum 24.5",
                "x_seconds_count 4",
            ],
        );
    }

    fn has_lines(out: &str, lines: &[&str]) {
        for line in lines {
            assert!(out.lines().any(|l| l == *line), "no line {line:?} in:\n{out}");
        }
    }

    #[test]
    fn each_label_value_has_its_own_series_and_values_are_escaped() {
        let h = ByLabel::new("topic", &[1.0]);
        h.observe_all("in.sms", [0.5, 2.0]);
        h.observe_all("in.email", [3.0]);
        h.observe_all("a\"b", [0.1]);
        let mut out = String::new();
        h.render(&mut out, "x_seconds", "test");
        has_lines(
            &out,
            &[
                "x_seconds_bucket{topic=\"in.sms\",le=\"1\"} 1",
                "x_seconds_bucket{topic=\"in.sms\",le=\"+Inf\"} 2",
                "x_seconds_count{topic=\"in.sms\"} 2",
                "x_seconds_bucket{topic=\"in.email\",le=\"1\"} 0",
                "x_seconds_sum{topic=\"in.email\"} 3",
                "x_seconds_count{topic=\"a\\\"b\"} 1",
            ],
        );
        assert_eq!(out.matches("# TYPE x_seconds histogram").count(), 1, "{out}");
    }
}
