//! SVG charts (plotters): accuracy against FPO per example, on a log FPO axis.

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
