//! Keras' `model.summary()` table.

use super::model::{layer_weights, Model};

/// Formats `n` with thousands separators (`200,960`).
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `795.04 KB`, as Keras prints parameter memory (f32, 1024-based).
fn bytes(params: usize) -> String {
    let b = params as f64 * 4.0;
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut v = b;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.2} {}", units[u])
}

/// A table with box-drawing borders; a cell may hold several lines.
/// Columns are at least `min_width` wide (Keras' default widths) and grow
/// to fit their longest line instead of wrapping it.
fn table(header: &[&str], rows: &[Vec<Vec<String>>], right: &[bool], min_width: &[usize]) -> String {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().zip(min_width).map(|(h, &m)| h.chars().count().max(m)).collect();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            for line in cell {
                width[c] = width[c].max(line.chars().count());
            }
        }
    }
    let pad = |s: &str, w: usize, r: bool| {
        let n = s.chars().count();
        if r {
            format!("{}{s}", " ".repeat(w - n))
        } else {
            format!("{s}{}", " ".repeat(w - n))
        }
    };
    let rule = |l: &str, m: &str, r: &str, f: &str| {
        let parts: Vec<String> = width.iter().map(|w| f.repeat(w + 2)).collect();
        format!("{l}{}{r}\n", parts.join(m))
    };
    let mut out = rule("┏", "┳", "┓", "━");
    let cells: Vec<String> = (0..cols).map(|c| format!(" {} ", pad(header[c], width[c], right[c]))).collect();
    out += &format!("┃{}┃\n", cells.join("┃"));
    out += &rule("┡", "╇", "┩", "━");
    for (i, row) in rows.iter().enumerate() {
        let height = row.iter().map(Vec::len).max().unwrap_or(1).max(1);
        for line in 0..height {
            let cells: Vec<String> = (0..cols)
                .map(|c| format!(" {} ", pad(row[c].get(line).map_or("", String::as_str), width[c], right[c])))
                .collect();
            out += &format!("│{}│\n", cells.join("│"));
        }
        if i + 1 < rows.len() {
            out += &rule("├", "┼", "┤", "─");
        }
    }
    out += &rule("└", "┴", "┘", "─");
    out
}

impl Model {
    /// Keras' summary table as a `String`: Layer (type) | Output Shape |
    /// Param # (and Connected to, for Functional models), then the total,
    /// trainable and non-trainable parameter counts.
    pub fn summary_string(&self) -> String {
        self.summary_string_with(false)
    }

    /// [`summary_string`](Self::summary_string), with Keras'
    /// `show_trainable=True` column when `show_trainable`: `Y` for a
    /// trainable layer with weights, `N` for a frozen one, `-` for a layer
    /// without weights.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let model = Sequential::new().add(Input::new([4])).add(Dense::new(2).name("head")).build()?;
    /// model.get_layer("head")?.set_trainable(false);
    /// let s = model.summary_string_with(true);
    /// assert!(s.contains("Trainable") && s.contains(" N "));
    /// assert!(s.contains("Non-trainable params: 10 (40.00 B)"));
    /// # Ok(()) }
    /// ```
    pub fn summary_string_with(&self, show_trainable: bool) -> String {
        let functional = !self.sequential;
        let mut rows: Vec<Vec<Vec<String>>> = Vec::new();
        let value_label = |v: usize| -> String {
            let (name, call, tensor) = self.value_source(v);
            format!("{name}[{call}][{tensor}]")
        };
        if functional {
            for i in &self.inputs {
                rows.push(vec![
                    vec![format!("{} (InputLayer)", i.name)],
                    vec![i.spec.to_string()],
                    vec!["0".into()],
                    vec!["-".into()],
                ]);
                if show_trainable {
                    rows.last_mut().expect("just pushed").push(vec!["-".into()]);
                }
            }
        }
        let mut seen = vec![false; self.layers.len()];
        for node in &self.nodes {
            let entry = &self.layers[node.layer];
            let class = entry.cell.layer.read().map(|l| l.class_name().to_string()).unwrap_or_default();
            let first = !seen[node.layer];
            seen[node.layer] = true;
            let own = layer_weights(&entry.cell);
            let params = if first { own.iter().map(|w| w.value.numel()).sum() } else { 0 };
            let mut row = vec![
                vec![format!("{} ({class})", entry.name)],
                vec![self.outputs_label(&node.outputs)],
                vec![thousands(params)],
            ];
            if functional {
                let sources: Vec<String> = node.inputs.iter().map(|&v| value_label(v)).collect();
                row.push(vec![sources.join(", ")]);
            }
            if show_trainable {
                let flag = match (own.is_empty(), entry.cell.is_trainable()) {
                    (true, _) => "-",
                    (false, true) => "Y",
                    (false, false) => "N",
                };
                row.push(vec![flag.into()]);
            }
            rows.push(row);
        }
        // Keras' line lengths: 88 for Sequential, 108 for Functional.
        let (mut header, mut min_width): (Vec<&str>, Vec<usize>) = if functional {
            (vec!["Layer (type)", "Output Shape", "Param #", "Connected to"], vec![29, 25, 15, 26])
        } else {
            (vec!["Layer (type)", "Output Shape", "Param #"], vec![36, 27, 15])
        };
        let mut right = vec![false, false, true];
        right.resize(header.len(), false);
        if show_trainable {
            header.push("Trainable");
            min_width.push(9);
            right.push(false);
        }
        let weights = self.weights();
        let total: usize = weights.iter().map(|w| w.value.numel()).sum();
        let trainable: usize = weights.iter().filter(|w| w.trainable).map(|w| w.value.numel()).sum();
        let mut out = format!("Model: \"{}\"\n", self.name);
        out += &table(&header, &rows, &right, &min_width);
        out += &format!(" Total params: {} ({})\n", thousands(total), bytes(total));
        out += &format!(" Trainable params: {} ({})\n", thousands(trainable), bytes(trainable));
        out += &format!(" Non-trainable params: {} ({})\n", thousands(total - trainable), bytes(total - trainable));
        out
    }

    /// One output's spec, or `[spec, spec, ...]` for a layer with several.
    pub(crate) fn outputs_label(&self, outputs: &[usize]) -> String {
        match outputs {
            [one] => self.value_specs[*one].to_string(),
            many => {
                let specs: Vec<String> = many.iter().map(|&v| self.value_specs[v].to_string()).collect();
                format!("[{}]", specs.join(", "))
            }
        }
    }

    /// Prints [`summary_string`](Self::summary_string) to standard output.
    pub fn summary(&self) {
        print!("{}", self.summary_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_formatted_like_keras() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(200_960), "200,960");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(bytes(203_530), "795.04 KB");
        assert_eq!(bytes(0), "0.00 B");
        assert_eq!(bytes(100), "400.00 B");
    }
}
