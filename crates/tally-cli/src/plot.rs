//! SVG charts (plotters): accuracy against FPO per example, and the roofline.

use std::path::Path;

use plotters::prelude::*;
use tally::core::{Error, Result};

/// One labelled point.
pub struct Point {
    /// Label drawn beside the marker.
    pub label: String,
    /// FPO per example (x, log scale).
    pub fpo: f64,
    /// Accuracy in [0, 1] (y).
    pub accuracy: f64,
}

fn draw_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::invalid("plot", format!("{}: {e}", path.display()))
}

/// Writes an accuracy-against-FPO chart of `points` (joined in order) to `path`.
pub fn accuracy_vs_fpo(path: &Path, title: &str, points: &[Point]) -> Result<()> {
    let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.fpo), hi.max(p.fpo))
    });
    let (amin, _) = points.iter().fold((1.0f64, 0.0f64), |(lo, hi), p| {
        (lo.min(p.accuracy), hi.max(p.accuracy))
    });
    let y0 = ((amin * 10.0).floor() / 10.0).clamp(0.0, 0.9);
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((lo / 2.0..hi * 2.0).log_scale(), y0..1.0)
        .map_err(|e| draw_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("FPO per example (executed, counted by the kernels)")
        .y_desc("held-out accuracy")
        .x_label_formatter(&|v| crate::table::si(*v))
        .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
        .draw()
        .map_err(|e| draw_err(path, e))?;
    chart
        .draw_series(LineSeries::new(
            points.iter().map(|p| (p.fpo, p.accuracy)),
            &BLUE,
        ))
        .map_err(|e| draw_err(path, e))?;
    chart
        .draw_series(points.iter().map(|p| {
            EmptyElement::at((p.fpo, p.accuracy))
                + Circle::new((0, 0), 5, BLUE.filled())
                + Text::new(p.label.clone(), (8, 6), ("sans-serif", 14))
        }))
        .map_err(|e| draw_err(path, e))?;
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

/// One op class on a roofline chart.
pub struct RoofPoint {
    /// Label drawn beside the marker.
    pub label: String,
    /// Arithmetic intensity, FPO per byte (x, log scale).
    pub intensity: f64,
    /// Achieved 10⁹ FPO/s (y, log scale).
    pub gflops: f64,
}

/// Writes a log-log roofline chart to `path`: the calibrated memory roof (slope =
/// bandwidth) and compute roof (flat at the peak), and each class at its achieved GFLOP/s.
pub fn roofline(
    path: &Path,
    title: &str,
    c: &tally::hw::Ceilings,
    points: &[RoofPoint],
) -> Result<()> {
    let (mut pts, off): (Vec<&RoofPoint>, Vec<&RoofPoint>) = points
        .iter()
        .partition(|p| p.intensity > 0.0 && p.gflops > 0.0);
    // Neighbours in x alternate their labels above and below the marker so they don't collide.
    pts.sort_by(|a, b| a.intensity.total_cmp(&b.intensity));
    let ridge = c.peak_gflops / c.bandwidth_gbs;
    let (xlo, xhi) = pts.iter().fold((ridge, ridge), |(lo, hi), p| {
        (lo.min(p.intensity), hi.max(p.intensity))
    });
    let (xlo, xhi) = (xlo / 4.0, xhi * 4.0);
    let ylo = pts
        .iter()
        .fold(c.bandwidth_gbs * xlo, |lo, p| lo.min(p.gflops))
        / 4.0;
    let yhi = c.peak_gflops * 3.0;
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d((xlo..xhi).log_scale(), (ylo..yhi).log_scale())
        .map_err(|e| draw_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("arithmetic intensity (FPO per byte, executed)")
        .y_desc("achieved GFLOP/s")
        .x_label_formatter(&|v| plain(*v))
        .y_label_formatter(&|v| plain(*v))
        .draw()
        .map_err(|e| draw_err(path, e))?;
    let roof = |x: f64| (c.bandwidth_gbs * x).min(c.peak_gflops);
    let steps = 200;
    let line = (0..=steps).map(|i| {
        let x = xlo * (xhi / xlo).powf(i as f64 / steps as f64);
        (x, roof(x))
    });
    chart
        .draw_series(LineSeries::new(line, RED.stroke_width(2)))
        .map_err(|e| draw_err(path, e))?
        .label(format!(
            "calibrated roofs: {:.1} GB/s ({}), {:.1} GFLOP/s ({})",
            c.bandwidth_gbs, c.bandwidth_kernel, c.peak_gflops, c.peak_kernel
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
    chart
        .draw_series(pts.iter().enumerate().map(|(i, p)| {
            let dy = if i % 2 == 0 { -16 } else { 4 };
            EmptyElement::at((p.intensity, p.gflops))
                + Circle::new((0, 0), 5, BLUE.filled())
                + Text::new(p.label.clone(), (8, dy), ("sans-serif", 14))
        }))
        .map_err(|e| draw_err(path, e))?;
    if !off.is_empty() {
        let names: Vec<&str> = off.iter().map(|p| p.label.as_str()).collect();
        root.draw(&Text::new(
            format!(
                "not plotted (0 FPO, no intensity on a log axis): {}",
                names.join(", ")
            ),
            (100, 60),
            ("sans-serif", 13),
        ))
        .map_err(|e| draw_err(path, e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw_err(path, e))?;
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

/// One kernel call on the FPO-against-wall-clock chart.
pub struct Call {
    /// Its op class (one colour and one legend entry per class).
    pub class: &'static str,
    /// Start, seconds since the pass began.
    pub start_s: f64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Executed FPO.
    pub fpo: f64,
}

/// Writes the pass as cumulative executed FPO against wall-clock time to `path`: each
/// kernel call is a segment coloured by its class (its slope is its GFLOP/s), time
/// between calls is flat and grey, and a dashed line climbs at the calibrated peak.
pub fn fpo_timeline(path: &Path, title: &str, peak_gflops: f64, calls: &[Call]) -> Result<()> {
    let mut calls: Vec<&Call> = calls.iter().collect();
    calls.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let end_s = calls
        .iter()
        .fold(0f64, |e, c| e.max(c.start_s + c.seconds))
        .max(1e-9);
    let total: f64 = calls.iter().map(|c| c.fpo).sum::<f64>().max(1.0);
    let mut classes: Vec<&'static str> = Vec::new();
    for c in &calls {
        if !classes.contains(&c.class) {
            classes.push(c.class);
        }
    }
    let ms = 1e3;
    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw_err(path, e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(20)
        .x_label_area_size(45)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..end_s * ms * 1.02, 0.0..total * 1.05)
        .map_err(|e| draw_err(path, e))?;
    chart
        .configure_mesh()
        .x_desc("wall-clock since the pass began (ms, measured)")
        .y_desc("FPO executed so far (counted by the kernels)")
        .y_label_formatter(&|v| crate::table::si(*v))
        .draw()
        .map_err(|e| draw_err(path, e))?;
    // At the calibrated peak the same FPO would be done by total / peak.
    let at_peak = total / (peak_gflops * 1e9);
    chart
        .draw_series(DashedLineSeries::new(
            [
                (0.0, 0.0),
                (
                    at_peak.min(end_s) * ms,
                    total * at_peak.min(end_s) / at_peak,
                ),
            ],
            6,
            4,
            BLACK.stroke_width(1),
        ))
        .map_err(|e| draw_err(path, e))?
        .label(format!(
            "calibrated peak {peak_gflops:.1} GFLOP/s: all {} FPO in {}",
            crate::table::si(total),
            crate::table::time(at_peak)
        ))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    let colour = |i: usize| Palette99::pick(i).stroke_width(3);
    let mut done = 0.0;
    let mut last_end = 0.0;
    let mut gaps = Vec::new();
    let mut segments: Vec<Vec<[(f64, f64); 2]>> = vec![Vec::new(); classes.len()];
    for c in &calls {
        if c.start_s > last_end {
            gaps.push([(last_end * ms, done), (c.start_s * ms, done)]);
        }
        let k = classes.iter().position(|n| *n == c.class).unwrap_or(0);
        let after = done + c.fpo;
        segments[k].push([
            (c.start_s * ms, done),
            ((c.start_s + c.seconds) * ms, after),
        ]);
        done = after;
        last_end = last_end.max(c.start_s + c.seconds);
    }
    chart
        .draw_series(
            gaps.iter()
                .map(|g| PathElement::new(g.to_vec(), RGBColor(170, 170, 170).stroke_width(2))),
        )
        .map_err(|e| draw_err(path, e))?
        .label("between kernels (dispatch, allocation)")
        .legend(|(x, y)| {
            PathElement::new(
                vec![(x, y), (x + 20, y)],
                RGBColor(170, 170, 170).stroke_width(2),
            )
        });
    for (k, name) in classes.iter().enumerate() {
        let style = colour(k);
        chart
            .draw_series(
                segments[k]
                    .iter()
                    .map(move |s| PathElement::new(s.to_vec(), style)),
            )
            .map_err(|e| draw_err(path, e))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour(k)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| draw_err(path, e))?;
    root.present().map_err(|e| draw_err(path, e))?;
    Ok(())
}

/// A log-axis tick without trailing zeros: `0.01`, `1`, `100`.
fn plain(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}
