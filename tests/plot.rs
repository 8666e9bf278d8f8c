//! `History::plot`: the picture is written, is a real PNG or SVG, names
//! every series, and an unknown extension is an error.
#![cfg(feature = "plot")]

use std::path::PathBuf;

use strata::History;

fn history() -> History {
    let mut h = History::default();
    for epoch in 0..6 {
        let e = epoch as f64;
        let logs = [
            ("loss".to_string(), 1.0 / (1.0 + e)),
            ("val_loss".to_string(), 1.2 / (1.0 + e) + 0.05),
            ("accuracy".to_string(), 0.5 + 0.08 * e),
            ("val_accuracy".to_string(), 0.45 + 0.07 * e),
        ];
        h.record(epoch, &logs.into_iter().collect());
    }
    h
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("strata_plot_{}_{name}", std::process::id()))
}

#[test]
fn svg_names_every_series_and_panel() -> anyhow::Result<()> {
    let path = temp("history.svg");
    history().plot(&path)?;
    let svg = std::fs::read_to_string(&path)?;
    std::fs::remove_file(&path)?;
    assert!(svg.starts_with("<svg") || svg.starts_with("<?xml"), "{}", &svg[..40]);
    assert!(svg.trim_end().ends_with("</svg>"));
    for text in ["loss", "val_loss", "accuracy", "val_accuracy", "epoch", "Training history (6 epochs)"] {
        assert!(
            svg.contains(&format!(">{text}<")) || svg.contains(&format!(">\n{text}\n<")),
            "no text {text:?} in the SVG"
        );
    }
    Ok(())
}

#[test]
fn png_is_a_png_of_the_expected_size() -> anyhow::Result<()> {
    let path = temp("history.png");
    history().plot(&path)?;
    let bytes = std::fs::read(&path)?;
    std::fs::remove_file(&path)?;
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // IHDR: width and height, big-endian, right after the chunk header.
    let width = u32::from_be_bytes(bytes[16..20].try_into()?);
    let height = u32::from_be_bytes(bytes[20..24].try_into()?);
    assert_eq!((width, height), (2 * 560, 400 + 44), "two panels side by side under a title");
    Ok(())
}

#[test]
fn unknown_extension_and_empty_history_are_errors() {
    let err = history().plot(temp("history.jpg")).unwrap_err().to_string();
    assert!(err.contains(".png or .svg"), "{err}");
    assert!(history().plot(temp("history")).is_err());
    let err = History::default().plot(temp("empty.svg")).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
}

#[test]
fn unwritable_path_is_an_error() {
    let path = temp("no/such/dir/history.svg");
    assert!(history().plot(&path).is_err());
}

/// `PlotOptions`: only the metrics asked for, the size asked for, and a
/// log scale whose ticks are labelled with the values (powers of ten
/// spaced evenly); bad options are errors naming what is accepted.
#[test]
fn plot_options_choose_metrics_size_and_log_scale() -> anyhow::Result<()> {
    use strata::visualization::PlotOptions;
    let path = temp("options.png");
    history().plot_with(&path, &PlotOptions::new().metrics(["accuracy"]).size(700, 300))?;
    let bytes = std::fs::read(&path)?;
    std::fs::remove_file(&path)?;
    let size = (u32::from_be_bytes(bytes[16..20].try_into()?), u32::from_be_bytes(bytes[20..24].try_into()?));
    assert_eq!(size, (700, 300));
    // A loss over three decades, on a log axis.
    let mut h = History::default();
    for (epoch, loss) in [10.0, 1.0, 0.1, 0.01].into_iter().enumerate() {
        h.record(epoch, &[("loss".to_string(), loss), ("accuracy".to_string(), 0.5)].into_iter().collect());
    }
    let path = temp("log.svg");
    h.plot_with(&path, &PlotOptions::new().metrics(["loss"]).log_y(true))?;
    let svg = std::fs::read_to_string(&path)?;
    std::fs::remove_file(&path)?;
    assert!(svg.contains("loss (log scale)"), "the axis says it is logarithmic");
    assert!(!svg.contains(">accuracy<"), "only the metric asked for");
    // On a log axis the four points (a decade apart) are evenly spaced.
    let ys: Vec<f64> =
        svg.split("<circle").skip(1).filter_map(|c| c.split("cy=\"").nth(1)?.split('"').next()?.parse().ok()).collect();
    assert_eq!(ys.len(), 4, "{ys:?}");
    let gaps: Vec<f64> = ys.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps.iter().all(|g| (g - gaps[0]).abs() <= 1.0 && *g > 0.0), "uneven on a log axis: {gaps:?}");
    let err = h.plot_with(&path, &PlotOptions::new().metrics(["val_loss"])).unwrap_err().to_string();
    assert!(err.contains("no metric `val_loss`") && err.contains("[loss, accuracy]"), "{err}");
    let err = h.plot_with(&path, &PlotOptions::new().size(50, 20_000)).unwrap_err().to_string();
    assert!(err.contains("100 to 16384") && err.contains("50 x 20000"), "{err}");
    assert!(!path.exists());
    Ok(())
}
