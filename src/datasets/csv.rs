//! Tables from CSV files: a header row naming the columns, one example per
//! row, numeric features and one label column chosen by name, read as
//! classes or as numeric targets ([`LabelKind`]).
//!
//! ```
//! # fn main() -> strata::Result<()> {
//! use strata::datasets::csv::{self, CsvOptions};
//!
//! let text = "sepal_length,sepal_width,species\n5.1,3.5,setosa\n7.0,3.2,versicolor\n4.9,3.0,setosa\n";
//! let table = csv::load_reader(text.as_bytes(), &CsvOptions::new().label("species"))?;
//! assert_eq!(table.data.x.dims(), &[3, 2]);
//! assert_eq!(table.data.y.to_vec::<i64>()?, vec![0, 1, 0]);
//! assert_eq!(table.class_names, vec!["setosa", "versicolor"]);
//! assert_eq!(table.feature_names, vec!["sepal_length", "sepal_width"]);
//!
//! // A numeric label column is a regression target (LabelKind forces either).
//! let text = "sepal_length,petal_width\n5.1,0.2\n7.0,1.4\n";
//! let table = csv::load_reader(text.as_bytes(), &CsvOptions::new().label("petal_width"))?;
//! assert_eq!(table.data.y.to_vec::<f32>()?, vec![0.2, 1.4]);
//! assert_eq!(table.label_kind, csv::LabelKind::Numeric);
//!
//! // A malformed row is an error naming its line.
//! let bad = "a,label\n1,x\n2,y,3\n";
//! let msg = csv::load_reader(bad.as_bytes(), &CsvOptions::new().label("label")).unwrap_err().to_string();
//! assert!(msg.contains("line 3"), "{msg}");
//! # Ok(()) }
//! ```
//!
//! The tables shipped inside the crate (`digits`, `iris`) are read by a
//! private helper of this module: a header row, numeric features, the integer
//! label last.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use strata_core::{Device, Error, Result, Tensor};

use super::Dataset;
use crate::data::{Batch, Bytes, Source};

/// What the label column holds, and so what [`CsvTable::data`]'s `y` is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LabelKind {
    /// Decided from the values (the default): text labels, and labels that
    /// are all non-negative integers, are classes; any other numbers
    /// (`0.2`, `-1`, `3.5e2`) are numeric regression targets.
    #[default]
    Auto,
    /// Class labels: `i64` ids, with their names in
    /// [`CsvTable::class_names`] (integers are their own ids, other labels
    /// get ids in order of first appearance).
    Classes,
    /// Numeric regression targets: `f32` values (a label that is not a
    /// number is an error naming its line).
    Numeric,
}

/// How [`load`] reads a table. Built with [`CsvOptions::new`] and its
/// setters.
#[derive(Clone, Debug)]
pub struct CsvOptions {
    label: Option<String>,
    delimiter: char,
    kind: LabelKind,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions::new()
    }
}

impl CsvOptions {
    /// The defaults: comma-separated, the label in the last column.
    pub fn new() -> CsvOptions {
        CsvOptions { label: None, delimiter: ',', kind: LabelKind::Auto }
    }

    /// The header name of the label column (default: the last column).
    pub fn label(mut self, column: impl Into<String>) -> CsvOptions {
        self.label = Some(column.into());
        self
    }

    /// Whether the label column holds classes or numeric targets (default
    /// [`LabelKind::Auto`]: decided from the values).
    pub fn label_kind(mut self, kind: LabelKind) -> CsvOptions {
        self.kind = kind;
        self
    }

    /// The field separator (default `,`; `;` or `\t` for other exports).
    pub fn delimiter(mut self, delimiter: char) -> CsvOptions {
        self.delimiter = delimiter;
        self
    }
}

/// A table read by [`load`]: the examples, and the names that go with
/// their columns and labels.
#[derive(Clone, Debug)]
pub struct CsvTable {
    /// Features `f32` `[rows, features]` and labels `[rows]` — `i64` class
    /// ids, or `f32` values for a numeric target (see [`label_kind`](Self::label_kind))
    /// — on the default device ([`backend::from_env`](crate::backend::from_env)).
    pub data: Dataset,
    /// What the labels turned out to be: [`LabelKind::Classes`] or
    /// [`LabelKind::Numeric`] (never `Auto`).
    pub label_kind: LabelKind,
    /// The header names of the feature columns, in order.
    pub feature_names: Vec<String>,
    /// The name of each class id: `class_names[k]` is the label text that
    /// became id `k`. String labels get ids in order of first appearance;
    /// when every label is a non-negative integer, the integers are the ids
    /// and the names are `"0"`, `"1"`, ... up to the largest. Empty for a
    /// numeric target.
    pub class_names: Vec<String>,
}

/// Reads the CSV file at `path` ([`load_reader`] on its contents).
///
/// ```no_run
/// # fn main() -> strata::Result<()> {
/// use strata::datasets::csv::{self, CsvOptions};
/// let table = csv::load("iris.csv", &CsvOptions::new().label("species"))?;
/// let split = table.data.train_test_split_stratified(0.2, 42)?;
/// # let _ = split;
/// # Ok(()) }
/// ```
pub fn load(path: impl AsRef<Path>, options: &CsvOptions) -> Result<CsvTable> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
    load_named(&path.display().to_string(), file, options)
}

/// Reads a CSV table from `reader`: a header row, then one example per row.
/// Every column but the label must hold numbers (parsed as `f32`); fields
/// may be wrapped in double quotes (`""` inside quotes is one `"`); blank
/// lines are skipped.
///
/// A missing label column, a row with too few or too many fields, an empty
/// or non-numeric feature, or text that is not UTF-8 is an error naming the
/// line (counted from 1, the header being line 1).
pub fn load_reader(reader: impl Read, options: &CsvOptions) -> Result<CsvTable> {
    load_named("csv", reader, options)
}

fn load_named(name: &str, mut reader: impl Read, options: &CsvOptions) -> Result<CsvTable> {
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).map_err(|e| Error::io(name, "read", e))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
        Error::msg(format!("{name}, line {line}: not UTF-8 text"))
    })?;
    let table = parse_table(name, text, options)?;
    let dev = crate::backend::from_env()?;
    let rows = table.rows;
    let width = table.feature_names.len();
    let x = Tensor::new(table.features, [rows, width], &dev)?;
    let (y, label_kind, class_names) = match table.labels {
        Labels::Classes { ids, names } => (Tensor::new(ids, [rows], &dev)?, LabelKind::Classes, names),
        Labels::Numeric(values) => (Tensor::new(values, [rows], &dev)?, LabelKind::Numeric, Vec::new()),
    };
    Ok(CsvTable { data: Dataset::new(x, y)?, label_kind, feature_names: table.feature_names, class_names })
}

/// A CSV file as a streaming [`Source`] for files larger than memory:
/// [`stream`] reads the file once to check every row and resolve the
/// labels exactly as [`load`] does, keeping only each row's byte offset and
/// label; batches then read and parse their rows (positional reads).
///
/// ```
/// # fn main() -> strata::Result<()> {
/// use strata::data::{Dataset, Source};
/// use strata::datasets::csv::{self, CsvOptions};
/// let path = std::env::temp_dir().join(format!("strata-csv-doc-{}.csv", std::process::id()));
/// std::fs::write(&path, "a,b,kind\n1,2,cat\n3,4,dog\n5,6,cat\n").map_err(|e| strata::Error::io(&path, "write", e))?;
/// let rows = csv::stream(&path, &CsvOptions::new().label("kind"))?;
/// assert_eq!((rows.len(), rows.class_names()), (3, &["cat".to_string(), "dog".to_string()][..]));
/// let batch = rows.gather(&[2, 1])?;
/// assert_eq!(batch.x[0].to_vec::<f32>()?, vec![5.0, 6.0, 3.0, 4.0]);
/// assert_eq!(batch.y[0].to_vec::<i64>()?, vec![0, 1]);
/// # std::fs::remove_file(&path).ok();
/// # Ok(()) }
/// ```
pub struct CsvSource {
    name: String,
    file: Bytes,
    offsets: Vec<u64>,
    header: Vec<String>,
    label_col: usize,
    delimiter: char,
    labels: Labels,
    feature_names: Vec<String>,
    device: Device,
}

/// Opens the CSV file at `path` as a [`CsvSource`]. Every row is checked
/// now, and a malformed one is the error [`load`] gives (naming the line).
pub fn stream(path: impl AsRef<Path>, options: &CsvOptions) -> Result<CsvSource> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let file = Bytes::file(path)?;
    let reader = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let mut lines =
        Lines { reader: std::io::BufReader::with_capacity(1 << 20, reader), offset: 0, line: 0, buf: Vec::new() };
    let (header_line, header) = loop {
        match lines.next_line().map_err(|e| Error::io(path, "read", e))? {
            None => return Err(Error::msg(format!("{name}: empty table, no header row"))),
            Some((line, _)) => {
                let t = utf8(&name, line, lines.current())?;
                if !t.trim().is_empty() {
                    break (line, t.to_string());
                }
            }
        }
    };
    let (header, label_col) = parse_header(&format!("{name}, line {header_line}"), &header, options)?;
    let feature_names: Vec<String> =
        header.iter().enumerate().filter(|&(c, _)| c != label_col).map(|(_, h)| h.clone()).collect();
    let mut labels = LabelIndex::default();
    let mut offsets = Vec::new();
    let mut scratch = Vec::new();
    while let Some((line, offset)) = lines.next_line().map_err(|e| Error::io(path, "read", e))? {
        let t = utf8(&name, line, lines.current())?;
        if t.trim().is_empty() {
            continue;
        }
        scratch.clear();
        let label =
            parse_row(&|| format!("{name}, line {line}"), t, &header, label_col, options.delimiter, &mut scratch)?;
        labels.push(label, line).map_err(|e| Error::msg(format!("{name}: {e}")))?;
        offsets.push(offset);
    }
    let labels = labels.resolve(options.kind, |line| format!("{name}, line {line}, column `{}`", header[label_col]))?;
    Ok(CsvSource {
        name,
        file,
        offsets,
        header,
        label_col,
        delimiter: options.delimiter,
        labels,
        feature_names,
        device: crate::backend::from_env()?,
    })
}

/// A label column as it is read: the distinct labels in order of first
/// appearance (with where each first appeared) and each row's index into
/// them. [`load`] and [`stream`] both resolve their labels through it.
#[derive(Default)]
struct LabelIndex {
    names: Vec<(String, usize)>,
    ids: HashMap<String, u32>,
    rows: Vec<u32>,
}

impl LabelIndex {
    /// Adds one row's label; `at` is where it is (a line) for errors.
    fn push(&mut self, label: String, at: usize) -> std::result::Result<(), &'static str> {
        let id = match self.ids.get(&label) {
            Some(&id) => id,
            None => {
                let id = u32::try_from(self.names.len()).map_err(|_| "too many distinct labels")?;
                self.ids.insert(label.clone(), id);
                self.names.push((label, at));
                id
            }
        };
        self.rows.push(id);
        Ok(())
    }

    /// The labels as `kind` says (text labels, and labels that are all
    /// non-negative integers, are classes under `Auto`), decided over the
    /// distinct labels; `at(place)` names a label's place in errors.
    fn resolve(self, kind: LabelKind, at: impl Fn(usize) -> String) -> Result<Labels> {
        let (names, appearance) = (self.names, self.rows);
        let is_class_id = |l: &str| l.parse::<i64>().is_ok_and(|v| v >= 0);
        let numeric = match kind {
            LabelKind::Classes => false,
            LabelKind::Numeric => true,
            LabelKind::Auto => {
                names.iter().all(|(l, _)| l.parse::<f32>().is_ok()) && !names.iter().all(|(l, _)| is_class_id(l))
            }
        };
        if numeric {
            let values = names
                .iter()
                .map(|(l, line)| {
                    l.parse::<f32>().map_err(|_| {
                        Error::msg(format!(
                            "{}: label `{l}` is not a number (the label is numeric: LabelKind::Numeric)",
                            at(*line)
                        ))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            return Ok(Labels::Numeric(appearance.iter().map(|&k| values[k as usize]).collect()));
        }
        let ints: Option<Vec<i64>> = names.iter().map(|(l, _)| l.parse::<i64>().ok().filter(|&v| v >= 0)).collect();
        if let Some(ints) = ints {
            let classes = ints.iter().max().map_or(0, |&m| m + 1);
            let ids = appearance.iter().map(|&k| ints[k as usize]).collect();
            return Ok(Labels::Classes { ids, names: (0..classes).map(|k| k.to_string()).collect() });
        }
        let ids = appearance.iter().map(|&k| i64::from(k)).collect();
        Ok(Labels::Classes { ids, names: names.into_iter().map(|(l, _)| l).collect() })
    }
}

/// `b` as text; `name, line N: not UTF-8 text` otherwise.
fn utf8<'a>(name: &str, line: usize, b: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| Error::msg(format!("{name}, line {line}: not UTF-8 text")))
}

/// The lines of a file, read sequentially: `(line number from 1, byte
/// offset)`, the line's bytes (without its ending) in [`current`](Self::current).
struct Lines<R> {
    reader: R,
    offset: u64,
    line: usize,
    buf: Vec<u8>,
}

impl<R: std::io::BufRead> Lines<R> {
    fn next_line(&mut self) -> std::io::Result<Option<(usize, u64)>> {
        self.buf.clear();
        let n = self.reader.read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        let start = self.offset;
        self.offset += n as u64;
        self.line += 1;
        Ok(Some((self.line, start)))
    }

    fn current(&self) -> &[u8] {
        line_of(&self.buf)
    }
}

/// A line's bytes without its `\n` or `\r\n` ending.
fn line_of(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

impl CsvSource {
    /// The batches' tensors are made on `device` (default:
    /// [`backend::from_env`](crate::backend::from_env)).
    pub fn on(mut self, device: &Device) -> CsvSource {
        self.device = device.clone();
        self
    }

    /// What the labels are: [`LabelKind::Classes`] or [`LabelKind::Numeric`].
    pub fn label_kind(&self) -> LabelKind {
        match self.labels {
            Labels::Classes { .. } => LabelKind::Classes,
            Labels::Numeric(_) => LabelKind::Numeric,
        }
    }

    /// The header names of the feature columns, in order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The name of each class id (as [`CsvTable::class_names`]).
    pub fn class_names(&self) -> &[String] {
        match &self.labels {
            Labels::Classes { names, .. } => names,
            Labels::Numeric(_) => &[],
        }
    }

    /// The line number of the row at byte `offset` (for errors: it reads
    /// the file up to there).
    fn line_of(&self, offset: u64) -> String {
        let mut buf = vec![0u8; 1 << 16];
        let (mut at, mut lines) = (0u64, 1usize);
        while at < offset {
            let n = (offset - at).min(buf.len() as u64) as usize;
            if self.file.read_at(at, &mut buf[..n]).is_err() {
                return "?".into();
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count();
            at += n as u64;
        }
        lines.to_string()
    }
}

impl Source for CsvSource {
    fn len(&self) -> usize {
        self.offsets.len()
    }

    fn gather(&self, indices: &[usize]) -> Result<Batch> {
        let n = self.offsets.len();
        let mut features = Vec::with_capacity(indices.len() * self.feature_names.len());
        let mut buf = Vec::new();
        for &i in indices {
            let Some(&offset) = self.offsets.get(i) else {
                return Err(Error::invalid("gather", format!("{}: row {i} is out of range for {n} rows", self.name)));
            };
            let at = || format!("{}, line {}", self.name, self.line_of(offset));
            // The row runs to the next row (or the end); blank lines in
            // between are cut off at the first line ending.
            let end = self.offsets.get(i + 1).copied().unwrap_or(self.file.len());
            buf.resize(end.saturating_sub(offset) as usize, 0);
            self.file
                .read_at(offset, &mut buf)
                .map_err(|e| Error::msg(format!("{}: cannot read the row ({e}); did the file change?", at())))?;
            let line = line_of(buf.split(|&b| b == b'\n').next().unwrap_or(&[]));
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let text = std::str::from_utf8(line).map_err(|_| Error::msg(format!("{}: not UTF-8 text", at())))?;
            parse_row(&at, text, &self.header, self.label_col, self.delimiter, &mut features)?;
        }
        let dev = &self.device;
        let x = Tensor::new(features, [indices.len(), self.feature_names.len()], dev)?;
        let y = match &self.labels {
            Labels::Classes { ids, .. } => {
                Tensor::new(indices.iter().map(|&i| ids[i]).collect::<Vec<_>>(), [indices.len()], dev)?
            }
            Labels::Numeric(v) => Tensor::new(indices.iter().map(|&i| v[i]).collect::<Vec<_>>(), [indices.len()], dev)?,
        };
        Ok(Batch { x: vec![x], y: vec![y], sample_weight: None })
    }
}

struct Parsed {
    features: Vec<f32>,
    rows: usize,
    labels: Labels,
    feature_names: Vec<String>,
}

/// The label column, read as classes or as numbers.
#[derive(Debug, PartialEq)]
enum Labels {
    Classes { ids: Vec<i64>, names: Vec<String> },
    Numeric(Vec<f32>),
}

/// Splits one line into fields, honouring double quotes.
fn split_fields(line: &str, delimiter: char) -> std::result::Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' && field.trim().is_empty() {
            field.clear();
            quoted = true;
        } else if c == delimiter {
            fields.push(std::mem::take(&mut field).trim().to_string());
        } else {
            field.push(c);
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(field.trim().to_string());
    Ok(fields)
}

/// One data row: its features appended to `features`, its label returned;
/// `at()` is `"name, line N"` for errors.
fn parse_row(
    at: &dyn Fn() -> String,
    line: &str,
    header: &[String],
    label_col: usize,
    delimiter: char,
    features: &mut Vec<f32>,
) -> Result<String> {
    let fields = split_fields(line, delimiter).map_err(|e| Error::msg(format!("{}: {e}", at())))?;
    if fields.len() != header.len() {
        return Err(Error::msg(format!("{}: {} fields, the header has {} columns", at(), fields.len(), header.len())));
    }
    for (c, field) in fields.iter().enumerate() {
        if c == label_col {
            continue;
        }
        let value = field
            .parse::<f32>()
            .map_err(|_| Error::msg(format!("{}, column `{}`: `{field}` is not a number", at(), header[c])))?;
        features.push(value);
    }
    let label = &fields[label_col];
    if label.is_empty() {
        return Err(Error::msg(format!("{}: empty label in column `{}`", at(), header[label_col])));
    }
    Ok(label.clone())
}

/// The header row: its column names and the label column's index.
fn parse_header(at: &str, line: &str, options: &CsvOptions) -> Result<(Vec<String>, usize)> {
    let header = split_fields(line, options.delimiter).map_err(|e| Error::msg(format!("{at}: {e}")))?;
    let label_col = match &options.label {
        Some(label) => header.iter().position(|h| h == label).ok_or_else(|| {
            Error::msg(format!("{at}: no label column `{label}` in the header (columns: {})", header.join(", ")))
        })?,
        None => header.len() - 1,
    };
    if header.len() < 2 {
        return Err(Error::msg(format!("{at}: the header names no feature column besides the label")));
    }
    Ok((header, label_col))
}

fn parse_table(name: &str, text: &str, options: &CsvOptions) -> Result<Parsed> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let at = |i: usize| format!("{name}, line {}", i + 1);
    let (hi, header) = lines.next().ok_or_else(|| Error::msg(format!("{name}: empty table, no header row")))?;
    let (header, label_col) = parse_header(&at(hi), header, options)?;
    let feature_names: Vec<String> =
        header.iter().enumerate().filter(|&(c, _)| c != label_col).map(|(_, h)| h.clone()).collect();
    let (mut features, mut labels) = (Vec::new(), LabelIndex::default());
    for (i, line) in lines {
        let label = parse_row(&|| at(i), line, &header, label_col, options.delimiter, &mut features)?;
        labels.push(label, i).map_err(|e| Error::msg(format!("{name}: {e}")))?;
    }
    let rows = labels.rows.len();
    let labels = labels.resolve(options.kind, |i| format!("{}, column `{}`", at(i), header[label_col]))?;
    Ok(Parsed { features, rows, labels, feature_names })
}

/// Parses a gzipped CSV table (shipped with `include_bytes!`) into a
/// dataset on the default device: features `f32` `[rows, columns - 1]`,
/// labels `i64` `[rows]`.
pub(crate) fn load_gz(name: &str, gz: &[u8]) -> Result<Dataset> {
    let bytes = super::idx::gunzip(gz).map_err(|e| Error::msg(format!("{name}: bundled data is corrupt: {e}")))?;
    let text =
        std::str::from_utf8(&bytes).map_err(|e| Error::msg(format!("{name}: bundled data is not UTF-8: {e}")))?;
    let (features, labels, width) = parse(name, text)?;
    let dev = crate::backend::from_env()?;
    let rows = labels.len();
    Dataset::new(Tensor::new(features, [rows, width], &dev)?, Tensor::new(labels, [rows], &dev)?)
}

/// `(features row-major, labels, features per row)`.
fn parse(name: &str, text: &str) -> Result<(Vec<f32>, Vec<i64>, usize)> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or_else(|| Error::msg(format!("{name}: empty table")))?;
    let width = header.split(',').count() - 1;
    if width == 0 {
        return Err(Error::msg(format!("{name}: the header `{header}` names no feature column")));
    }
    let (mut features, mut labels) = (Vec::new(), Vec::new());
    for (i, line) in lines {
        let at = || format!("{name}, line {}", i + 1);
        let mut fields = line.split(',').map(str::trim);
        for _ in 0..width {
            let field =
                fields.next().ok_or_else(|| Error::msg(format!("{}: fewer than {} columns", at(), width + 1)))?;
            let value = field.parse::<f32>().map_err(|e| Error::msg(format!("{}: `{field}`: {e}", at())))?;
            features.push(value);
        }
        let field = fields.next().ok_or_else(|| Error::msg(format!("{}: no label column", at())))?;
        labels.push(field.parse::<i64>().map_err(|e| Error::msg(format!("{}: label `{field}`: {e}", at())))?);
        if fields.next().is_some() {
            return Err(Error::msg(format!("{}: more than {} columns", at(), width + 1)));
        }
    }
    Ok((features, labels, width))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_and_reports_bad_ones_by_line() {
        let (x, y, w) = parse("t", "a,b,label\n1,2.5,0\n3,4,1\n").unwrap();
        assert_eq!((x, y, w), (vec![1.0, 2.5, 3.0, 4.0], vec![0, 1], 2));
        let msg = parse("t", "a,b,label\n1,2,0\n1,x,1\n").unwrap_err().to_string();
        assert!(msg.contains("t, line 3: `x`"), "{msg}");
        assert!(parse("t", "a,b,label\n1,2\n").unwrap_err().to_string().contains("no label"));
        assert!(parse("t", "a,b,label\n1,2,3,4\n").unwrap_err().to_string().contains("more than 3"));
        assert!(parse("t", "").is_err());
    }

    fn table(text: &str, label: &str) -> Result<Parsed> {
        parse_table("t.csv", text, &CsvOptions::new().label(label))
    }

    fn classes(ids: &[i64], names: &[&str]) -> Labels {
        Labels::Classes { ids: ids.to_vec(), names: names.iter().map(|n| n.to_string()).collect() }
    }

    #[test]
    fn string_labels_get_ids_in_order_of_first_appearance() {
        let t = table("x,kind,y\n1,b,2\n3,a,4\n5,b,6\n", "kind").unwrap();
        assert_eq!(t.features, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(t.labels, classes(&[0, 1, 0], &["b", "a"]));
        assert_eq!(t.feature_names, vec!["x", "y"]);
        let t = table("x,y\n1,2\n3,0\n", "y").unwrap();
        assert_eq!(t.labels, classes(&[2, 0], &["0", "1", "2"]));
    }

    #[test]
    fn numeric_labels_are_regression_targets_and_the_kind_can_be_forced() {
        // Iris' petal width as the label: numbers, not 22 classes.
        let text = "sepal,petal_width_cm\n5.1,0.2\n7.0,1.4\n6.3,2.5\n4.9,0.2\n";
        let t = table(text, "petal_width_cm").unwrap();
        assert_eq!((t.rows, t.labels), (4, Labels::Numeric(vec![0.2, 1.4, 2.5, 0.2])));
        assert_eq!(table("x,y\n1,-1\n2,3\n", "y").unwrap().labels, Labels::Numeric(vec![-1.0, 3.0]));
        let read = |text: &str, kind| parse_table("t.csv", text, &CsvOptions::new().label("y").label_kind(kind));
        // Integer labels are classes unless told otherwise...
        assert_eq!(read("x,y\n1,2\n2,3\n", LabelKind::Numeric).unwrap().labels, Labels::Numeric(vec![2.0, 3.0]));
        // ...and numbers are targets unless told otherwise.
        assert_eq!(read("x,y\n1,0.5\n2,1.5\n", LabelKind::Classes).unwrap().labels, classes(&[0, 1], &["0.5", "1.5"]));
        let msg = read("x,y\n1,0.5\n2,big\n", LabelKind::Numeric).map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("t.csv, line 3, column `y`: label `big` is not a number"), "{msg}");
        // Mixed numbers and text are classes.
        assert_eq!(table("x,y\n1,0.5\n2,n/a\n", "y").unwrap().labels, classes(&[0, 1], &["0.5", "n/a"]));
    }

    #[test]
    fn quoted_fields_and_other_delimiters() {
        let t = parse_table(
            "t",
            "\"a\";\"the label\"\n\"1.5\";\"x;y\"\n",
            &CsvOptions::new().delimiter(';').label("the label"),
        )
        .unwrap();
        assert_eq!((t.features, t.labels), (vec![1.5], classes(&[0], &["x;y"])));
    }

    #[test]
    fn streaming_reads_what_load_reads_and_fails_the_same_way() {
        let dir = std::env::temp_dir().join(format!("strata-csv-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dev = crate::backend::native();
        let tables = [
            ("x,kind,y\r\n1,b,2\r\n\r\n3,a,4\n5,b,6", "kind"),
            ("x,y\n1,2\n3,0\n", "y"),
            ("sepal,w\n5.1,0.2\n7.0,1.4\n6.3,2.5\n", "w"),
            ("x,y\n1,0.5\n2,n/a\n", "y"),
        ];
        for (text, label) in tables {
            let path = dir.join("t.csv");
            std::fs::write(&path, text).unwrap();
            let options = CsvOptions::new().label(label);
            let table = load(&path, &options).unwrap();
            let rows = stream(&path, &options).unwrap().on(&dev);
            assert_eq!(rows.len(), table.data.len(), "{text:?}");
            assert_eq!((rows.label_kind(), rows.class_names()), (table.label_kind, &table.class_names[..]));
            let all: Vec<usize> = (0..rows.len()).collect();
            let b = rows.gather(&all).unwrap();
            assert_eq!(b.x[0].to_vec::<f32>().unwrap(), table.data.x.to_vec::<f32>().unwrap());
            match table.label_kind {
                LabelKind::Numeric => {
                    assert_eq!(b.y[0].to_vec::<f32>().unwrap(), table.data.y.to_vec::<f32>().unwrap())
                }
                _ => assert_eq!(b.y[0].to_vec::<i64>().unwrap(), table.data.y.to_vec::<i64>().unwrap()),
            }
        }
        let cases: [(&[u8], &str, &str); 7] = [
            (b"a,b,c\n1,2,x\n\n1,2\n", "c", "t.csv, line 4: 2 fields, the header has 3 columns"),
            (b"a,b,c\n1,2,x\nfoo,2,x\n", "c", "t.csv, line 3, column `a`: `foo` is not a number"),
            (b"a,b,c\n1,2,x\n", "label", "t.csv, line 1: no label column `label`"),
            (b"a,b\n1,\"2\n", "a", "line 2: unterminated quoted field"),
            (b"a,b\n1,\n", "b", "line 2: empty label"),
            (&b""[..], "a", "empty table"),
            (b"a,b\n1,\xff\n", "b", "line 2: not UTF-8 text"),
        ];
        for (text, label, want) in cases {
            let path = dir.join("t.csv");
            std::fs::write(&path, text).unwrap();
            let msg = stream(&path, &CsvOptions::new().label(label)).map(|_| ()).unwrap_err().to_string();
            assert!(msg.contains(want), "{text:?}: {msg}");
        }
        let path = dir.join("t.csv");
        std::fs::write(&path, "x,y\n1,0.5\n2,big\n").unwrap();
        let msg = stream(&path, &CsvOptions::new().label("y").label_kind(LabelKind::Numeric)).map(|_| ()).unwrap_err();
        assert!(msg.to_string().contains("t.csv, line 3, column `y`: label `big` is not a number"), "{msg}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn malformed_tables_are_errors_with_the_line() {
        let cases = [
            ("a,b,c\n1,2,x\n\n1,2\n", "c", "t.csv, line 4: 2 fields, the header has 3 columns"),
            ("a,b,c\n1,2,x\n1,2,x,4\n", "c", "t.csv, line 3: 4 fields"),
            ("a,b,c\n1,2,x\nfoo,2,x\n", "c", "t.csv, line 3, column `a`: `foo` is not a number"),
            ("a,b,c\n1,,x\n", "c", "line 2, column `b`: `` is not a number"),
            ("a,b,c\n1,2,x\n", "label", "t.csv, line 1: no label column `label`"),
            ("a,b\n1,\"2\n", "a", "line 2: unterminated quoted field"),
            ("a,b\n1,\n", "b", "line 2: empty label"),
            ("label\n1\n", "label", "names no feature column"),
            ("", "a", "empty table"),
        ];
        for (text, label, want) in cases {
            let msg = table(text, label).map(|_| ()).unwrap_err().to_string();
            assert!(msg.contains(want), "{text:?}: {msg}");
        }
    }
}
