//! [`CsvLogger`].

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use strata_core::{Error, Result};

use super::Logs;
use super::{Callback, CallbackContext};

/// Writes one CSV row per epoch: `epoch` then every logged value, columns
/// sorted by name (Keras' `CSVLogger`). Each row is flushed as it is
/// written, so the file is useful while training runs.
///
/// ```
/// use strata::callbacks::CsvLogger;
/// let log = CsvLogger::new("training.csv").append(true);
/// ```
pub struct CsvLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    file: Option<File>,
    columns: Option<Vec<String>>,
}

impl CsvLogger {
    /// Logs to `path` (overwritten unless [`append`](Self::append)).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CsvLogger { path: path.into(), separator: ',', append: false, file: None, columns: None }
    }

    /// The column separator (default `,`).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    /// Appends to an existing file (to resume training) instead of
    /// overwriting it; the header is written only if the file is empty.
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }

    fn io_error(&self, e: std::io::Error) -> Error {
        Error::msg(format!("CsvLogger: cannot write {}: {e}", self.path.display()))
    }
}

impl Callback for CsvLogger {
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.columns = None;
        if self.append {
            // Reuse the existing header's columns, if any.
            if let Ok(f) = File::open(&self.path) {
                let mut header = String::new();
                if BufReader::new(f).read_line(&mut header).is_ok() && !header.trim().is_empty() {
                    let cols: Vec<String> =
                        header.trim_end().split(self.separator).skip(1).map(str::to_string).collect();
                    self.columns = Some(cols);
                }
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.path)
            .map_err(|e| self.io_error(e))?;
        self.file = Some(file);
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        let sep = self.separator.to_string();
        let mut text = String::new();
        let columns = match &self.columns {
            Some(c) => c.clone(),
            None => {
                let c: Vec<String> = logs.keys().map(str::to_string).collect();
                text.push_str(&format!("epoch{sep}{}\n", c.join(&sep)));
                self.columns = Some(c.clone());
                c
            }
        };
        let values: Vec<String> =
            columns.iter().map(|k| logs.get(k).map_or_else(|| "NA".to_string(), |v| v.to_string())).collect();
        text.push_str(&format!("{epoch}{sep}{}\n", values.join(&sep)));
        let result = match &mut self.file {
            Some(f) => f.write_all(text.as_bytes()).and_then(|()| f.flush()),
            None => return Err(Error::msg("CsvLogger: on_epoch_end before on_train_begin")),
        };
        result.map_err(|e| self.io_error(e))
    }

    fn on_train_end(&mut self, _logs: &Logs, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.file = None;
        Ok(())
    }
}
