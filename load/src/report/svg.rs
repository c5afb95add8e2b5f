//! `report.svg`: for each run, calls per second and latency percentiles (p50, p99) per second.
//!
//! plotters is built without a font backend: its SVG backend writes text as `<text>` elements and the
//! browser picks the font, so rendering needs no font files on this machine.

use std::path::Path;

use plotters::prelude::*;

use crate::{Error, stats::Point};

const WIDTH: u32 = 1200;
const ROW_HEIGHT: u32 = 220;
const HEADER_HEIGHT: u32 = 50;

pub struct Panel<'a> {
    pub title: String,
    pub series: &'a [Point],
}

pub fn write(path: &Path, panels: &[Panel<'_>]) -> Result<(), Error> {
    let rows = panels.len().max(1);
    let root = SVGBackend::new(path, (WIDTH, HEADER_HEIGHT + ROW_HEIGHT * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let (header, body) = root.split_vertically(HEADER_HEIGHT);
    header.draw_text(
        "Aerobook load benchmark: calls/s (left) and latency p50 / p99 in ms (right), per second of each run",
        &("sans-serif", 20).into_font().color(&BLACK),
        (20, 15),
    )?;
    let cells = body.split_evenly((rows, 2));
    for (panel, cells) in panels.iter().zip(cells.chunks(2)) {
        throughput(&cells[0], panel)?;
        latency(&cells[1], panel)?;
    }
    root.present()?;
    Ok(())
}

fn throughput(area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, panel: &Panel<'_>) -> Result<(), Error> {
    let top = panel.series.iter().map(|p| p.calls_per_s).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{}: calls/s", panel.title), ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..seconds(panel), 0.0..top * 1.1 + 1.0)?;
    chart.configure_mesh().x_desc("s").x_labels(10).y_labels(5).max_light_lines(1).draw()?;
    let points = panel.series.iter().map(|p| (middle(p), p.calls_per_s));
    chart.draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))?;
    chart.draw_series(points.map(|point| Circle::new(point, 2, BLUE.filled())))?;
    Ok(())
}

fn latency(area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, panel: &Panel<'_>) -> Result<(), Error> {
    let top = panel.series.iter().map(|p| p.p99_ms).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{}: latency ms", panel.title), ("sans-serif", 15))
        .margin(8)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..seconds(panel), 0.0..top * 1.1 + 0.1)?;
    chart.configure_mesh().x_desc("s").x_labels(10).y_labels(5).max_light_lines(1).draw()?;
    for (label, color, value) in
        [("p50", GREEN, (|p: &Point| p.p50_ms) as fn(&Point) -> f64), ("p99", RED, |p: &Point| p.p99_ms)]
    {
        let points = panel.series.iter().map(|p| (middle(p), value(p)));
        chart.draw_series(points.clone().map(|point| Circle::new(point, 2, color.filled())))?;
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}

/// A second's figures are plotted in its middle, with a dot, so a run of one second still shows.
fn middle(point: &Point) -> f64 {
    f64::from(point.t) + 0.5
}

/// The x axis: whole seconds the run covered (at least one).
fn seconds(panel: &Panel<'_>) -> f64 {
    panel.series.last().map_or(1.0, |p| f64::from(p.t) + 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_runs_of_any_length_without_fonts() {
        let point = |t| Point { t, calls_per_s: 1000.0 + f64::from(t), p50_ms: 1.0, p99_ms: 2.5 };
        let runs: Vec<Vec<Point>> = [0, 1, 2, 37].iter().map(|&n| (0..n).map(point).collect()).collect();
        let panels: Vec<Panel<'_>> =
            runs.iter().enumerate().map(|(i, series)| Panel { title: format!("run {i}"), series }).collect();
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("chart.svg");
        write(&path, &panels).expect("drawn");
        let svg = std::fs::read_to_string(&path).expect("written");
        assert!(svg.starts_with("<svg") && svg.contains("run 3: calls/s") && svg.contains("p99"));
        write(&path, &[]).expect("an empty chart is drawn too");
    }
}
