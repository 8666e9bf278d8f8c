//! [`ModelCheckpoint`].

use std::path::PathBuf;

use strata_core::{Error, Result};

use super::monitor::{Mode, Monitor};
use super::Logs;
use super::{Callback, CallbackContext};
use crate::SaveDType;

/// Saves the model after every epoch, or only when a monitored metric
/// improves (Keras' `ModelCheckpoint`; defaults: `val_loss`, every epoch,
/// whole model).
///
/// The path may contain placeholders filled from the epoch (1-based, as in
/// Keras' file names) and the logs: `{epoch}`, `{epoch:02d}`, `{val_loss}`,
/// `{val_loss:.4f}`.
///
/// ```
/// use strata::callbacks::ModelCheckpoint;
/// let best = ModelCheckpoint::new("best.safetensors").monitor("val_accuracy").save_best_only(true);
/// let every = ModelCheckpoint::new("ckpt-{epoch:02d}-{val_loss:.3f}.safetensors").save_weights_only(true);
/// ```
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    path: String,
    monitor: Monitor,
    save_best_only: bool,
    save_weights_only: bool,
    verbose: bool,
    best: Option<f64>,
    saved: Vec<PathBuf>,
}

impl ModelCheckpoint {
    /// Saves to `path` (placeholders allowed, see above).
    pub fn new(path: impl Into<String>) -> Self {
        ModelCheckpoint {
            path: path.into(),
            monitor: Monitor::new("val_loss"),
            save_best_only: false,
            save_weights_only: false,
            verbose: false,
            best: None,
            saved: Vec::new(),
        }
    }

    /// The metric that decides "best" (default `val_loss`).
    pub fn monitor(mut self, key: &str) -> Self {
        self.monitor = Monitor { key: key.to_string(), ..self.monitor };
        self
    }

    /// Whether lower or higher is better (default from the name).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// Saves only when the monitored metric improves on the best so far.
    pub fn save_best_only(mut self, best_only: bool) -> Self {
        self.save_best_only = best_only;
        self
    }

    /// Saves the weights only ([`Model::save_weights`](crate::Model::save_weights))
    /// instead of the whole model ([`Model::save`](crate::Model::save)).
    pub fn save_weights_only(mut self, weights_only: bool) -> Self {
        self.save_weights_only = weights_only;
        self
    }

    /// Only saves when the metric beats this value too (Keras'
    /// `initial_value_threshold`).
    pub fn initial_value_threshold(mut self, value: f64) -> Self {
        self.best = Some(value);
        self
    }

    /// Prints a line for every save.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// The files written so far, in order.
    pub fn saved_paths(&self) -> &[PathBuf] {
        &self.saved
    }
}

/// Fills `{epoch}`, `{epoch:02d}`, `{key}` and `{key:.Nf}` placeholders.
/// With `logs` `None` only the template itself is checked (log values
/// stand in as 0), so a bad template fails before the first epoch.
fn fill_path(template: &str, epoch: usize, logs: Option<&Logs>) -> Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..]
            .find('}')
            .map(|c| open + c)
            .ok_or_else(|| Error::invalid("ModelCheckpoint", format!("unclosed `{{` in the path `{template}`")))?;
        let field = &rest[open + 1..close];
        let (key, spec) = field.split_once(':').unwrap_or((field, ""));
        let bad_spec = || Error::invalid("ModelCheckpoint", format!("unsupported format `{field}` in `{template}`"));
        if key == "epoch" {
            let e = epoch + 1;
            match spec {
                "" | "d" => out.push_str(&e.to_string()),
                s => {
                    let width: usize =
                        s.trim_end_matches('d').trim_start_matches('0').parse().map_err(|_| bad_spec())?;
                    out.push_str(&format!("{e:0width$}"));
                }
            }
        } else {
            let v = match logs {
                None => 0.0,
                Some(logs) => logs.get(key).ok_or_else(|| {
                    let have: Vec<&str> = logs.keys().collect();
                    Error::invalid(
                        "ModelCheckpoint",
                        format!("the path uses `{key}`, which is not logged; available: epoch, {}", have.join(", ")),
                    )
                })?,
            };
            match spec {
                "" => out.push_str(&v.to_string()),
                s => {
                    let prec: usize = s
                        .strip_prefix('.')
                        .and_then(|p| p.strip_suffix('f'))
                        .and_then(|p| p.parse().ok())
                        .ok_or_else(bad_spec)?;
                    out.push_str(&format!("{v:.prec$}"));
                }
            }
        }
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Callback for ModelCheckpoint {
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        // Check the template before spending an epoch on training.
        fill_path(&self.path, 0, None).map(|_| ())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if self.save_best_only {
            let current = self.monitor.value("ModelCheckpoint", logs)?;
            let best = self.best.unwrap_or_else(|| self.monitor.worst());
            // Keras: a strict improvement (no min_delta).
            if !self.monitor.improved(current, best) {
                if self.verbose {
                    println!("\nEpoch {}: {} did not improve from {best:.5}", epoch + 1, self.monitor.key);
                }
                return Ok(());
            }
            if self.verbose {
                println!("\nEpoch {}: {} improved from {best:.5} to {current:.5}", epoch + 1, self.monitor.key);
            }
            self.best = Some(current);
        }
        let path = PathBuf::from(fill_path(&self.path, epoch, Some(logs))?);
        if self.save_weights_only {
            ctx.model().save_weights(&path)?;
        } else {
            ctx.model().save_parts(&path, Some(ctx.compile_config()), Some(ctx.optimizer()), SaveDType::F32)?;
        }
        if self.verbose {
            println!("Epoch {}: saving model to {}", epoch + 1, path.display());
        }
        self.saved.push(path);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_like_python_format() {
        let logs: Logs = [("val_loss".to_string(), 0.123456)].into();
        assert_eq!(fill_path("m-{epoch:02d}-{val_loss:.3f}.st", 4, Some(&logs)).unwrap(), "m-05-0.123.st");
        assert_eq!(fill_path("m{epoch}.st", 0, Some(&logs)).unwrap(), "m1.st");
        assert!(fill_path("m-{accuracy}.st", 0, Some(&logs)).unwrap_err().to_string().contains("val_loss"));
        assert!(fill_path("m-{epoch.st", 0, Some(&logs)).is_err());
        assert!(fill_path("m-{val_loss:x}.st", 0, Some(&logs)).is_err());
    }
}
