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
/// The largest picture [`PlotOptions::size`] accepts, per side.
const MAX_SIDE: u32 = 16_384;
const VAL_COLOR: RGBColor = RGBColor(255, 127, 14);

/// What [`History::plot_with`] draws: which metrics, how big, which scale.
///
/// ```
/// use strata::visualization::PlotOptions;
/// let options = PlotOptions::new().metrics(["loss"]).size(900, 500).log_y(true);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PlotOptions {
    metrics: Option<Vec<String>>,
    size: Option<(u32, u32)>,
    log_y: bool,
}

impl PlotOptions {
    /// Every metric, 560 × 400 pixels per panel, a linear y axis.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only these metrics, in this order, each with its `val_` curve
    /// (`["loss", "accuracy"]`); an unknown name is an error listing the
    /// history's keys.
    pub fn metrics<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.metrics = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The whole picture's size in pixels (Matplotlib's `figsize`), shared
    /// evenly by the panels; each side from 100 to 16,384.
    pub fn size(mut self, width: u32, height: u32) -> Self {
        self.size = Some((width, height));
        self
    }

    /// A logarithmic y axis (a loss falling over decades); values that are
    /// not positive are left out of the curves.
    pub fn log_y(mut self, on: bool) -> Self {
        self.log_y = on;
        self
    }
}

impl History {
    /// Writes the loss and metric curves per epoch to `path`: a PNG for
    /// `.png`, an SVG for `.svg`. [`plot_with`](Self::plot_with) chooses
    /// the metrics, the size and a log scale.
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
        self.plot_with(path, &PlotOptions::default())
    }

    /// [`plot`](Self::plot) with [`PlotOptions`]: which metrics, the
    /// picture's size, a log-scale y axis.
    ///
    /// ```
    /// # use strata::History;
    /// use strata::visualization::PlotOptions;
    /// let mut h = History::default();
    /// for (epoch, (loss, acc)) in [(2.0, 0.5), (0.2, 0.8), (0.02, 0.9)].into_iter().enumerate() {
    ///     h.record(epoch, &[("loss".to_string(), loss), ("accuracy".to_string(), acc)].into_iter().collect());
    /// }
    /// let path = std::env::temp_dir().join("strata_doc_history_log.svg");
    /// h.plot_with(&path, &PlotOptions::new().metrics(["loss"]).size(640, 360).log_y(true))?;
    /// let svg = std::fs::read_to_string(&path)?;
    /// assert!(svg.contains("width=\"640\"") && !svg.contains("accuracy"));
    /// let err = h.plot_with(&path, &PlotOptions::new().metrics(["acc"])).unwrap_err();
    /// assert!(err.to_string().contains("accuracy"));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn plot_with(&self, path: impl AsRef<Path>, options: &PlotOptions) -> Result<()> {
        let path = path.as_ref();
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let mut panels = self.panels(options.log_y);
        if panels.is_empty() {
            return Err(Error::invalid("History::plot", "the history is empty: nothing to plot"));
        }
        if let Some(wanted) = &options.metrics {
            let mut chosen = Vec::with_capacity(wanted.len());
            for name in wanted {
                let Some(i) = panels.iter().position(|p| p.metric == name) else {
                    let keys: Vec<&str> = panels.iter().map(|p| p.metric).collect();
                    return Err(Error::invalid(
                        "History::plot",
                        format!("no metric `{name}` in the history; it has [{}]", keys.join(", ")),
                    ));
                };
                chosen.push(panels.remove(i));
            }
            if chosen.is_empty() {
                return Err(Error::invalid("History::plot", "`metrics` is empty: nothing to plot"));
            }
            panels = chosen;
        }
        let cols = panels.len().min(3) as u32;
        let rows = panels.len().div_ceil(3) as u32;
        let size = match options.size {
            Some((w, h)) => {
                if !(100..=MAX_SIDE).contains(&w) || !(100..=MAX_SIDE).contains(&h) {
                    return Err(Error::invalid(
                        "History::plot",
                        format!("size must be 100 to {MAX_SIDE} pixels per side, received {w} x {h}"),
                    ));
                }
                (w, h)
            }
            None => (PANEL_W * cols, PANEL_H * rows + TITLE_H),
        };
        let log_y = options.log_y;
        let fail = |e: String| Error::msg(format!("History::plot: cannot write {}: {e}", path.display()));
        // Text is measured with the bundled font for SVG too.
        register_font();
        match ext.as_deref() {
            Some("png") => {
                let root = BitMapBackend::new(path, size).into_drawing_area();
                draw(&root, &panels, cols as usize, self.len(), log_y).map_err(|e| fail(e.to_string()))?;
                root.present().map_err(|e| fail(e.to_string()))
            }
            Some("svg") => {
                let root = SVGBackend::new(path, size).into_drawing_area();
                draw(&root, &panels, cols as usize, self.len(), log_y).map_err(|e| fail(e.to_string()))?;
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
    /// With `log_y` the values are `log10` of the positive ones.
    fn panels(&self, log_y: bool) -> Vec<Panel<'_>> {
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
                        let mut points = self.points(values);
                        if log_y {
                            points = points.into_iter().filter(|p| p.1 > 0.0).map(|(x, y)| (x, y.log10())).collect();
                        }
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
    log_y: bool,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let title = format!("Training history ({epochs} epoch{})", if epochs == 1 { "" } else { "s" });
    let (title_area, body) = root.split_vertically(TITLE_H);
    title_area.titled(&title, ("sans-serif", 26).into_font().color(&BLACK))?;
    let rows = panels.len().div_ceil(cols);
    let areas = body.split_evenly((rows, cols));
    for (panel, area) in panels.iter().zip(areas) {
        draw_panel(&area, panel, log_y)?;
    }
    Ok(())
}

/// One panel; with `log_y` the points are `log10` values and the ticks
/// are labelled with the values themselves.
fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel<'_>,
    log_y: bool,
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
    let y_label = |y: &f64| {
        if log_y {
            let v = 10f64.powf(*y);
            if (1e-3..1e4).contains(&v) {
                format!("{v:.prec$}", prec = (-v.log10().floor()).clamp(0.0, 4.0) as usize + 1)
            } else {
                format!("{v:.1e}")
            }
        } else {
            format!("{y:.decimals$}")
        }
    };
    let y_desc = if log_y { format!("{} (log scale)", panel.metric) } else { panel.metric.to_string() };
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(x_labels)
        .y_labels(6)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&y_label)
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
