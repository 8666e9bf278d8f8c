//! [`History::plot`]: loss and metric curves per epoch as a PNG or SVG
//! picture (the `plot` feature, on by default).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use strata_core::{Error, Result};

use crate::callbacks::History;

/// DejaVu Sans (Bitstream Vera licence, `assets/fonts/LICENSE-DejaVu.txt`),
/// so that PNG text needs no font installed on the machine.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

const PANEL_W: u32 = 560;
const PANEL_H: u32 = 400;
const TITLE_H: u32 = 44;
const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const VAL_COLOR: RGBColor = RGBColor(255, 127, 14);

impl History {
    /// Writes the loss and metric curves per epoch to `path`: a PNG for
    /// `.png`, an SVG for `.svg`.
    ///
    /// One panel per metric (`loss`, `accuracy`, ...), with the training
    /// curve and its `val_` curve together, a title, axis labels and a
    /// legend that names each series by its key. Non-finite values are left
    /// out of the curves. Needs the `plot` feature (on by default).
    ///
    /// # Errors
    /// An extension other than `.png` or `.svg`, an empty history, or a file
    /// that cannot be written.
    ///
    /// ```
    /// # use strata::History;
    /// let mut h = History::default();
    /// for (epoch, (loss, val)) in [(0.9, 1.0), (0.5, 0.7), (0.3, 0.6)].into_iter().enumerate() {
    ///     let logs = [("loss".to_string(), loss), ("val_loss".to_string(), val)];
    ///     h.record(epoch, &logs.into_iter().collect());
    /// }
    /// let path = std::env::temp_dir().join("strata_doc_history.svg");
    /// h.plot(&path)?;
    /// let svg = std::fs::read_to_string(&path)?;
    /// assert!(svg.contains("val_loss"));
    /// assert!(h.plot("history.jpg").is_err());
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plot(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let panels = self.panels();
        if panels.is_empty() {
            return Err(Error::invalid("History::plot", "the history is empty: nothing to plot"));
        }
        let cols = panels.len().min(3) as u32;
        let rows = panels.len().div_ceil(3) as u32;
        let size = (PANEL_W * cols, PANEL_H * rows + TITLE_H);
        let fail = |e: String| Error::msg(format!("History::plot: cannot write {}: {e}", path.display()));
        // Text is measured with the bundled font for SVG too.
        register_font();
        match ext.as_deref() {
            Some("png") => {
                let root = BitMapBackend::new(path, size).into_drawing_area();
                draw(&root, &panels, cols as usize, self.len()).map_err(|e| fail(e.to_string()))?;
                root.present().map_err(|e| fail(e.to_string()))
            }
            Some("svg") => {
                let root = SVGBackend::new(path, size).into_drawing_area();
                draw(&root, &panels, cols as usize, self.len()).map_err(|e| fail(e.to_string()))?;
                root.present().map_err(|e| fail(e.to_string()))
            }
            _ => Err(Error::invalid(
                "History::plot",
                format!("cannot tell the picture format of {}: expected a .png or .svg path", path.display()),
            )),
        }
    }

    /// The panels to draw: each metric with its `val_` twin, in key order
    /// with `loss` first; a `val_` key without a training twin gets its own.
    fn panels(&self) -> Vec<Panel<'_>> {
        let mut bases: Vec<&str> = self
            .keys()
            .map(|k| match k.strip_prefix("val_") {
                Some(b) if self.get(b).is_some() => b,
                _ => k,
            })
            .collect();
        bases.dedup();
        bases.sort_by_key(|b| (*b != "loss", *b));
        bases.dedup();
        bases
            .into_iter()
            .map(|base| {
                let mut series = vec![];
                let val = format!("val_{base}");
                for (key, color) in [(base.to_string(), TRAIN_COLOR), (val, VAL_COLOR)] {
                    if let Some(values) = self.get(&key) {
                        let points = self.points(values);
                        series.push(Series { key, color, points });
                    }
                }
                Panel { metric: base, series }
            })
            .collect()
    }

    /// `(epoch, value)` with 1-based epochs as the progress bar prints them;
    /// a metric logged on fewer epochs than ran is numbered 1, 2, ...
    fn points(&self, values: &[f64]) -> Vec<(f64, f64)> {
        let epochs: Vec<f64> = if values.len() == self.epochs().len() {
            self.epochs().iter().map(|&e| e as f64 + 1.0).collect()
        } else {
            (1..=values.len()).map(|e| e as f64).collect()
        };
        epochs.into_iter().zip(values.iter().copied()).filter(|(_, v)| v.is_finite()).collect()
    }
}

struct Series {
    key: String,
    color: RGBColor,
    points: Vec<(f64, f64)>,
}

struct Panel<'a> {
    metric: &'a str,
    series: Vec<Series>,
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font, checked by the plot tests.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// A range around `lo..hi` with a margin, never empty.
fn padded(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= f64::EPSILON * hi.abs().max(1.0) {
        let d = (hi.abs() * 0.1).max(0.5);
        return (lo - d, hi + d);
    }
    (lo - span * 0.06, hi + span * 0.06)
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[Panel<'_>],
    cols: usize,
    epochs: usize,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let title = format!("Training history ({epochs} epoch{})", if epochs == 1 { "" } else { "s" });
    let (title_area, body) = root.split_vertically(TITLE_H);
    title_area.titled(&title, ("sans-serif", 26).into_font().color(&BLACK))?;
    let rows = panels.len().div_ceil(cols);
    let areas = body.split_evenly((rows, cols));
    for (panel, area) in panels.iter().zip(areas) {
        draw_panel(&area, panel)?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel<'_>,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let all = panel.series.iter().flat_map(|s| s.points.iter());
    let (mut x_hi, mut y_lo, mut y_hi) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in all {
        x_hi = x_hi.max(x);
        y_lo = y_lo.min(y);
        y_hi = y_hi.max(y);
    }
    let (y_lo, y_hi) = padded(y_lo, y_hi);
    let x_range = if x_hi > 1.0 { 1.0..x_hi } else { 0.5..1.5 };
    let mut chart = ChartBuilder::on(area)
        .caption(panel.metric, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(62)
        .build_cartesian_2d(x_range, y_lo..y_hi)?;
    let x_labels = (x_hi as usize).clamp(2, 10);
    let decimals = tick_decimals(y_hi - y_lo);
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(panel.metric)
        .x_labels(x_labels)
        .y_labels(6)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.decimals$}"))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .draw()?;
    for s in &panel.series {
        let color = s.color;
        let style = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(s.points.iter().copied(), style))?
            .label(s.key.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        if s.points.len() <= 20 {
            chart.draw_series(s.points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(legend_position(panel))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(190, 190, 190))
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}

/// Out of the curves' way: bottom right for a rising metric, top right
/// for a falling one.
fn legend_position(panel: &Panel<'_>) -> SeriesLabelPosition {
    let first = panel.series.first().map(|s| &s.points);
    match first.and_then(|p| Some((p.first()?.1, p.last()?.1))) {
        Some((a, b)) if b > a => SeriesLabelPosition::LowerRight,
        _ => SeriesLabelPosition::UpperRight,
    }
}

/// Enough decimals to tell apart ticks about `span / 6` apart.
fn tick_decimals(span: f64) -> usize {
    let step = span / 6.0;
    if !(step.is_finite() && step > 0.0) {
        return 2;
    }
    (-step.log10()).ceil().clamp(0.0, 8.0) as usize
}
