//! `--plot FILE.svg`: the achieved publish rate over time and, when a
//! worker's metrics were sampled, its placed messages per second and its lag.

use super::publish::Sample;
use plotters::prelude::*;
use std::path::Path;

/// Rates between consecutive samples: (time, per second).
fn rates(samples: &[Sample], value: impl Fn(&Sample) -> Option<f64>) -> Vec<(f64, f64)> {
    samples
        .windows(2)
        .filter_map(|w| {
            let dt = w[1].at_secs - w[0].at_secs;
            let dv = value(&w[1])? - value(&w[0])?;
            (dt > 0.0).then(|| (w[1].at_secs, (dv / dt).max(0.0)))
        })
        .collect()
}

/// Draws the samples into an SVG file.
pub fn draw(path: &Path, samples: &[Sample]) -> anyhow::Result<()> {
    anyhow::ensure!(
        path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg")),
        "--plot writes SVG: give a file name ending in .svg"
    );
    let publish = rates(samples, |s| Some(s.published as f64));
    let placed = rates(samples, |s| s.placed);
    let lag: Vec<(f64, f64)> = samples.iter().filter_map(|s| Some((s.at_secs, s.lag?))).collect();
    let end = samples.last().map_or(1.0, |s| s.at_secs.max(1.0));
    let top_rate = publish.iter().chain(&placed).map(|p| p.1).fold(1.0, f64::max) * 1.1;
    let top_lag = lag.iter().map(|p| p.1).fold(1.0, f64::max) * 1.1;

    let root = SVGBackend::new(path, (1000, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let (upper, lower) = root.split_vertically(400);
    let mut chart = ChartBuilder::on(&upper)
        .caption("records per second", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..end, 0f64..top_rate)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart.configure_mesh().x_desc("seconds").draw().map_err(|e| anyhow::anyhow!("{e}"))?;
    chart
        .draw_series(LineSeries::new(publish, &BLUE))
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .label("published/s")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    if !placed.is_empty() {
        chart
            .draw_series(LineSeries::new(placed, &GREEN))
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .label("placed/s (worker)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN));
    }
    chart.configure_series_labels().border_style(BLACK).draw().map_err(|e| anyhow::anyhow!("{e}"))?;

    let caption = if lag.is_empty() { "lag (no worker metrics were reachable)" } else { "worker lag (records)" };
    let mut chart = ChartBuilder::on(&lower)
        .caption(caption, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..end, 0f64..top_lag)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    chart.configure_mesh().x_desc("seconds").draw().map_err(|e| anyhow::anyhow!("{e}"))?;
    chart.draw_series(LineSeries::new(lag, &RED)).map_err(|e| anyhow::anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_differences_over_time_and_the_file_is_an_svg() {
        let samples: Vec<Sample> = (0..5)
            .map(|i| Sample {
                at_secs: i as f64,
                published: i * 100,
                lag: Some((50 * i) as f64),
                placed: Some((80 * i) as f64),
            })
            .collect();
        assert_eq!(rates(&samples, |s| Some(s.published as f64))[0], (1.0, 100.0));
        let dir = std::env::temp_dir().join(format!("sb-plot-{}.svg", std::process::id()));
        draw(&dir, &samples).unwrap();
        let svg = std::fs::read_to_string(&dir).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("published/s") && svg.contains("placed/s"));
        let _ = std::fs::remove_file(dir);
        assert!(draw(Path::new("x.png"), &samples).is_err());
    }
}
