//! The Keras-style progress bar, drawn with indicatif:
//!
//! ```text
//! Epoch 3/10
//! 469/469 ━━━━━━━━━━━━━━━━━━━━ 2s 4ms/step - accuracy: 0.9731 - loss: 0.0912 - val_accuracy: 0.9702 - val_loss: 0.1003
//! ```
//!
//! While an epoch runs, the time shown is the ETA; at the end, the time the
//! epoch took. Colours and bold are Keras' ANSI codes. When standard output
//! is not a terminal, indicatif draws nothing and only each epoch's final
//! line is printed, so logs stay readable.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::callbacks::Logs;

/// Keras' bar width in characters.
const WIDTH: usize = 20;

/// One epoch's (or one evaluation's) progress display.
pub(crate) struct Progress {
    verbose: u8,
    target: Option<usize>,
    bar: Option<ProgressBar>,
    start: Instant,
    after_first_step: Option<Instant>,
}

impl Progress {
    /// Prints `Epoch 3/10` (verbose 1 and 2).
    pub(crate) fn epoch_header(verbose: u8, epoch: usize, epochs: usize) {
        if verbose > 0 {
            println!("Epoch {}/{}", epoch + 1, epochs);
        }
    }

    /// A display for `target` steps (`None`: not known in advance, shown
    /// as Keras does, `117/Unknown`); nothing is drawn for verbose 0.
    pub(crate) fn new(verbose: u8, target: Option<usize>) -> Progress {
        let bar = (verbose == 1).then(|| {
            // `{prefix}` is the bold `cur/total` counter; the bar is green
            // where done and white elsewhere, like Keras'. Without a total
            // there is no bar.
            let template = match target {
                Some(_) => format!("{{prefix}} {{bar:{WIDTH}.green/white}}{{msg}}"),
                None => "{prefix}{msg}".to_string(),
            };
            let style = ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("━━");
            let bar = ProgressBar::with_draw_target(target.map(|t| t as u64), ProgressDrawTarget::stdout_with_hz(10));
            bar.set_style(style);
            bar.set_prefix(format!("\x1b[1m{}\x1b[0m", counter(0, target)));
            bar
        });
        Progress { verbose, target, bar, start: Instant::now(), after_first_step: None }
    }

    /// Seconds per step: the average since the first step ended (the first
    /// step includes one-off setup), as Keras estimates it.
    fn step_duration(&self, current: usize, now: Instant) -> Duration {
        match self.after_first_step {
            Some(t) if current > 1 => (now - t) / (current as u32 - 1),
            _ if current > 0 => (now - self.start) / current as u32,
            _ => Duration::ZERO,
        }
    }

    /// After step `current` (1-based) with the running metrics.
    pub(crate) fn update(&mut self, current: usize, logs: &Logs) {
        let now = Instant::now();
        if current == 1 {
            self.after_first_step = Some(now);
        }
        let Some(bar) = &self.bar else { return };
        let per_step = self.step_duration(current, now);
        // The ETA while the total is known; the time so far otherwise.
        let time = match self.target {
            Some(t) => per_step.as_secs_f64() * t.saturating_sub(current) as f64,
            None => (now - self.start).as_secs_f64(),
        };
        bar.set_prefix(format!("\x1b[1m{}\x1b[0m", counter(current, self.target)));
        bar.set_message(format!(
            " \x1b[1m{}\x1b[0m{}{}",
            format_eta(time),
            format_per_step(per_step),
            format_logs(logs)
        ));
        bar.set_position(current as u64);
    }

    /// Ends the display with the final line (which includes `val_*` values).
    pub(crate) fn finish(&mut self, current: usize, logs: &Logs) {
        let now = Instant::now();
        let elapsed = (now - self.start).as_secs_f64();
        let per_step = format_per_step(self.step_duration(current, now));
        let count = counter(current, self.target);
        match (&self.bar, self.verbose) {
            (Some(bar), _) => {
                // indicatif clears its live line; the final line is printed
                // as plain output so it stays in the scrollback (and in logs).
                bar.finish_and_clear();
                let drawn = match self.target {
                    Some(t) => {
                        let filled = (WIDTH * current / t.max(1)).min(WIDTH);
                        format!(" \x1b[32m{}\x1b[0m\x1b[37m{}\x1b[0m", "━".repeat(filled), "━".repeat(WIDTH - filled))
                    }
                    None => String::new(),
                };
                let line =
                    format!("\x1b[1m{count}\x1b[0m{drawn} \x1b[1m{elapsed:.0}s\x1b[0m{per_step}{}", format_logs(logs));
                if std::io::stdout().is_terminal() {
                    println!("{line}");
                } else {
                    println!("{}", strip_ansi(&line));
                }
            }
            (None, 2) => {
                println!("{count} - {elapsed:.0}s -{per_step}{}", format_logs(logs));
            }
            _ => {}
        }
    }
}

/// The text without ANSI escape sequences (for output that is not a
/// terminal).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ params final-byte
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// ` 42/469`: the step, right-aligned to the width of the total (Keras'
/// `%{numdigits}d/%d`); `117/Unknown` without a total.
fn counter(current: usize, target: Option<usize>) -> String {
    match target {
        Some(target) => {
            let digits = target.max(1).to_string().len();
            format!("{current:>digits$}/{target}")
        }
        None => format!("{current}/Unknown"),
    }
}

/// ` 4ms/step` (Keras' `_format_time`).
fn format_per_step(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 || s == 0.0 {
        format!(" {s:.0}s/step")
    } else if s >= 1e-3 {
        format!(" {:.0}ms/step", s * 1e3)
    } else {
        format!(" {:.0}us/step", s * 1e6)
    }
}

/// `2s`, `1:05`, `1:02:03`.
fn format_eta(eta: f64) -> String {
    let e = eta as u64;
    if eta > 3600.0 {
        format!("{}:{:02}:{:02}", e / 3600, (e % 3600) / 60, e % 60)
    } else if eta > 60.0 {
        format!("{}:{:02}", e / 60, e % 60)
    } else {
        format!("{e}s")
    }
}

/// ` - accuracy: 0.9731 - loss: 0.0912`, values printed as Keras does.
pub(crate) fn format_logs(logs: &Logs) -> String {
    logs.iter().map(|(k, v)| format!(" - {k}: {}", format_value(v))).collect()
}

/// `%.4f` above 1e-3 in magnitude, else `%.4e` with Python's exponent style.
pub(crate) fn format_value(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v.abs() > 1e-3 {
        return format!("{v:.4}");
    }
    let s = format!("{v:.4e}");
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = exp.strip_prefix('-').map_or(("+", exp), |d| ("-", d));
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_formatted_like_python() {
        assert_eq!(format_value(0.09123), "0.0912");
        assert_eq!(format_value(12.5), "12.5000");
        assert_eq!(format_value(0.000123), "1.2300e-04");
        assert_eq!(format_value(0.0), "0.0000e+00");
        assert_eq!(format_value(-2e-5), "-2.0000e-05");
        assert_eq!(format_value(f64::NAN), "nan");
        assert_eq!(format_value(f64::INFINITY), "inf");
    }

    #[test]
    fn times_are_formatted_like_keras() {
        assert_eq!(format_per_step(Duration::from_micros(4200)), " 4ms/step");
        assert_eq!(format_per_step(Duration::from_micros(481)), " 481us/step");
        assert_eq!(format_per_step(Duration::from_millis(2500)), " 2s/step");
        assert_eq!(format_eta(2.7), "2s");
        assert_eq!(format_eta(65.0), "1:05");
        assert_eq!(format_eta(3723.0), "1:02:03");
    }

    #[test]
    fn the_counter_is_padded_to_the_total_width() {
        assert_eq!(counter(3, Some(469)), "  3/469");
        assert_eq!(counter(469, Some(469)), "469/469");
        assert_eq!(counter(0, Some(0)), "0/0");
        assert_eq!(counter(117, None), "117/Unknown");
    }

    #[test]
    fn ansi_codes_are_stripped_for_logs() {
        assert_eq!(strip_ansi("\x1b[1m3/3\x1b[0m \x1b[32m━━\x1b[0m - loss: 1"), "3/3 ━━ - loss: 1");
    }

    #[test]
    fn logs_print_sorted_by_name() {
        let logs: Logs =
            [("val_loss", 0.1003), ("loss", 0.0912), ("accuracy", 0.9731)].map(|(k, v)| (k.to_string(), v)).into();
        assert_eq!(format_logs(&logs), " - accuracy: 0.9731 - loss: 0.0912 - val_loss: 0.1003");
    }
}
