//! [`Model::to_dot`] and [`Model::plot`]: the layer graph as Graphviz DOT
//! text, or as a picture drawn by Graphviz' `dot` program — Keras'
//! `keras.utils.plot_model(model, show_shapes=True)`.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use strata_core::{Error, Result};

use crate::models::{Model, Producer};

/// The extensions [`Model::plot`] accepts, for its error message.
const ACCEPTED: &str = ".dot (or .gv), .svg or .png";

/// `s` as a DOT quoted string: `"` and `\` escaped, a line break as `\n`,
/// other control characters as spaces.
fn quote(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

/// The inside of [`quote`].
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// `items` without repeats, in order of first appearance.
fn distinct(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

impl Model {
    /// The layer graph as Graphviz DOT text (Keras'
    /// `plot_model(model, show_shapes=True)`), to render with
    /// `dot -Tsvg model.dot -o model.svg` or [`plot`](Self::plot).
    ///
    /// One box per input and per layer, labelled `name (ClassName)` with its
    /// input and output shapes written as [`summary`](Self::summary) writes
    /// them (`(None, 256)`; a layer with several inputs lists them,
    /// `[(None, 32), (None, 8)]`). Edges follow the graph from each value's
    /// producer to the layers that read it; a shared layer is one box with
    /// an edge from each of its callers (distinct shapes of its calls are
    /// separated by ` | `), and an edge between two boxes is drawn once even
    /// when it is used several times. Names are quoted and escaped, so any
    /// layer name is valid DOT.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let model = Sequential::new()
    ///     .add(Input::new([784]))
    ///     .add(Dense::new(10).activation("softmax"))
    ///     .build()?;
    /// assert_eq!(
    ///     model.to_dot(),
    ///     r#"digraph "sequential" {
    ///   graph [rankdir=TB];
    ///   node [shape=box, fontname="Helvetica"];
    ///   "input_layer" [label="input_layer (InputLayer)\nInput shape: (None, 784)\nOutput shape: (None, 784)"];
    ///   "dense" [label="dense (Dense)\nInput shape: (None, 784)\nOutput shape: (None, 10)"];
    ///   "input_layer" -> "dense";
    /// }
    /// "#
    /// );
    /// # Ok(()) }
    /// ```
    pub fn to_dot(&self) -> String {
        let mut out = format!("digraph {} {{\n", quote(&self.name));
        out += "  graph [rankdir=TB];\n";
        out += "  node [shape=box, fontname=\"Helvetica\"];\n";
        let node = |name: &str, class: &str, input: &str, output: &str| {
            let label = format!("{name} ({class})\nInput shape: {input}\nOutput shape: {output}");
            format!("  {} [label={}];\n", quote(name), escape_label(&label))
        };
        for input in &self.inputs {
            let shape = input.spec.to_string();
            out += &node(&input.name, "InputLayer", &shape, &shape);
        }
        for (li, entry) in self.layers.iter().enumerate() {
            let class = entry.cell.layer.read().map(|l| l.class_name().to_string()).unwrap_or_default();
            let calls: Vec<_> = self.nodes.iter().filter(|n| n.layer == li).collect();
            let inputs = distinct(calls.iter().map(|n| {
                let specs: Vec<String> = n.inputs.iter().map(|&v| self.value_specs[v].to_string()).collect();
                if specs.len() == 1 {
                    specs[0].clone()
                } else {
                    format!("[{}]", specs.join(", "))
                }
            }));
            let outputs = distinct(calls.iter().map(|n| self.outputs_label(&n.outputs)));
            out += &node(&entry.name, &class, &inputs.join(" | "), &outputs.join(" | "));
        }
        let edges = distinct(self.nodes.iter().flat_map(|n| {
            let target = &self.layers[n.layer].name;
            n.inputs.iter().map(move |&v| {
                let source = match &self.producers[v] {
                    Producer::Input(i) => &self.inputs[*i].name,
                    Producer::Node(m, _) => &self.layers[self.nodes[*m].layer].name,
                };
                format!("  {} -> {};\n", quote(source), quote(target))
            })
        }));
        for edge in edges {
            out += &edge;
        }
        out += "}\n";
        out
    }

    /// Draws the layer graph ([`to_dot`](Self::to_dot)) to `path`, chosen by
    /// its extension: `.dot` or `.gv` writes the DOT text itself; `.svg` and
    /// `.png` run Graphviz' `dot` program (`dot -Tsvg`), which must be
    /// installed and on `PATH`. The file appears only once it is complete
    /// (written to a temporary file beside it and renamed), so a failure
    /// leaves an earlier file in place.
    ///
    /// # Errors
    /// Another extension (the error names the accepted ones); `dot` not
    /// installed (the error says so and suggests a `.dot` path), or `dot`
    /// failing (with what it printed); a file that cannot be written.
    pub fn plot(&self, path: impl AsRef<Path>) -> Result<()> {
        render(&self.to_dot(), path.as_ref(), &[OsStr::new("dot")])
    }
}

/// A label is a DOT quoted string in which `\n` breaks the line, so it is
/// quoted like a name, except that its own line breaks stay line breaks.
fn escape_label(label: &str) -> String {
    let lines: Vec<String> = label.split('\n').map(escape).collect();
    format!("\"{}\"", lines.join("\\n"))
}

/// Writes `dot` to `path` as its extension asks; `command` is the program
/// (and leading arguments) that renders DOT, `dot` outside tests.
fn render(dot: &str, path: &Path, command: &[&OsStr]) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let format = match ext.as_deref() {
        Some("dot" | "gv") => {
            return crate::saving::write_atomic(path, dot.as_bytes())
                .map_err(|e| Error::msg(format!("Model::plot: {e}")))
        }
        Some("svg") => "svg",
        Some("png") => "png",
        _ => {
            return Err(Error::invalid(
                "Model::plot",
                format!("cannot tell the output format of {}: expected a {ACCEPTED} path", path.display()),
            ))
        }
    };
    let fail = |what: String| Error::msg(format!("Model::plot: cannot write {}: {what}", path.display()));
    let (program, args) = command.split_first().ok_or_else(|| fail("no program to run".into()))?;
    let tmp = temp_path(path).ok_or_else(|| fail("not a file name".into()))?;
    let child = Command::new(program)
        .args(args)
        .arg(format!("-T{format}"))
        .arg("-o")
        .arg(&tmp)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(fail(format!(
                "the Graphviz program `{}` was not found; install Graphviz (it draws the .{format} file), or \
                 write the DOT text with a `.dot` path and render it elsewhere",
                program.to_string_lossy()
            )))
        }
        Err(e) => return Err(fail(format!("cannot run `{}`: {e}", program.to_string_lossy()))),
    };
    // Feed the graph on another thread while this one collects what the
    // program prints, so neither side can block the other.
    let stdin = child.stdin.take();
    let output = std::thread::scope(|s| {
        let writer = s.spawn(move || match stdin {
            Some(mut pipe) => pipe.write_all(dot.as_bytes()),
            None => Ok(()),
        });
        let output = child.wait_with_output();
        let written = writer.join().unwrap_or_else(|_| Err(std::io::Error::other("writer thread panicked")));
        output.map(|o| (o, written))
    });
    let result = match output {
        Err(e) => Err(fail(format!("`{}` failed: {e}", program.to_string_lossy()))),
        Ok((out, _)) if !out.status.success() => {
            let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
            Err(fail(format!("`{}` exited with {}: {said}", program.to_string_lossy(), out.status)))
        }
        Ok((_, Err(e))) => Err(fail(format!("cannot send the graph to `{}`: {e}", program.to_string_lossy()))),
        Ok(_) if !tmp.is_file() => Err(fail(format!("`{}` wrote no file", program.to_string_lossy()))),
        Ok(_) => std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string())),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// A temporary path beside `path`, unique within this process.
fn temp_path(path: &Path) -> Option<PathBuf> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let name = path.file_name()?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = format!(".{}.tmp-{}-{n}", name.to_string_lossy(), std::process::id());
    Some(match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(tmp),
        _ => PathBuf::from(tmp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_escapes_what_dot_reads_specially() {
        assert_eq!(quote("dense"), "\"dense\"");
        assert_eq!(quote(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(quote("two\nlines\tx"), r#""two\nlines x""#);
        assert_eq!(escape_label("a\"\nb\\"), r#""a\"\nb\\""#);
    }

    #[test]
    fn distinct_keeps_first_appearances_in_order() {
        let v = distinct(["b", "a", "b", "c", "a"].map(String::from));
        assert_eq!(v, ["b", "a", "c"]);
    }

    /// A directory of its own under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!("strata_plot_model_{tag}_{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    /// A stand-in for Graphviz run through `sh` (so no freshly written file
    /// is executed): it writes `<svg>`, the DOT it read, `</svg>` to the
    /// path after `-o`, and checks that it got `-Tsvg`.
    const FAKE_DOT: &str = r#"
        fmt=""; out=""
        while [ $# -gt 0 ]; do
          case "$1" in -T*) fmt="$1";; -o) out="$2"; shift;; esac
          shift
        done
        [ "$fmt" = "-Tsvg" ] || { echo "unexpected format $fmt" >&2; exit 3; }
        { echo "<svg>"; cat; echo "</svg>"; } > "$out"
    "#;

    #[cfg(unix)]
    #[test]
    fn a_renderer_writes_through_a_temporary_file() {
        let dir = TempDir::new("ok");
        let script = dir.0.join("fake_dot.sh");
        std::fs::write(&script, FAKE_DOT).unwrap();
        let target = dir.0.join("model.svg");
        render("digraph \"m\" {}\n", &target, &[OsStr::new("sh"), script.as_os_str()]).unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "<svg>\ndigraph \"m\" {}\n</svg>\n");
        assert_eq!(files(&dir.0), ["fake_dot.sh", "model.svg"]); // no temporary file left
    }

    #[cfg(unix)]
    #[test]
    fn a_failing_renderer_is_an_error_with_its_message_and_keeps_the_earlier_file() {
        let dir = TempDir::new("fail");
        let script = dir.0.join("bad_dot.sh");
        std::fs::write(&script, "echo 'Error: syntax error in line 1' >&2; touch \"$3\"; exit 1\n").unwrap();
        let target = dir.0.join("model.svg");
        std::fs::write(&target, "earlier").unwrap();
        let err = render("digraph {", &target, &[OsStr::new("sh"), script.as_os_str()]).unwrap_err().to_string();
        assert!(err.contains("syntax error in line 1") && err.contains("model.svg"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "earlier");
        assert_eq!(files(&dir.0), ["bad_dot.sh", "model.svg"]);

        // Exits 0 but writes nothing.
        std::fs::write(&script, "cat > /dev/null\n").unwrap();
        let err = render("digraph {}", &target, &[OsStr::new("sh"), script.as_os_str()]).unwrap_err().to_string();
        assert!(err.contains("wrote no file"), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "earlier");
    }

    #[test]
    fn a_missing_renderer_says_so_and_suggests_a_dot_path() {
        let dir = TempDir::new("missing");
        let target = dir.0.join("model.png");
        let program = OsStr::new("strata-no-such-graphviz-program");
        let err = render("digraph {}", &target, &[program]).unwrap_err().to_string();
        assert!(err.contains("`strata-no-such-graphviz-program` was not found"), "{err}");
        assert!(err.contains("install Graphviz") && err.contains("`.dot` path"), "{err}");
        assert!(files(&dir.0).is_empty());
    }
}
