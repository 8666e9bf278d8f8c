//! The CSV tables shipped inside the crate: a header row, then one example
//! per row, numeric features, the integer label last.

use strata_core::{Error, Result, Tensor};

use super::Dataset;

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
}
