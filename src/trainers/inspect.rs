//! Looking inside a model: [`Model::inspect`] (one training step's
//! activations, gradients and updates, measured and undone) and
//! [`Model::intermediate_outputs`] (every layer's output on a batch).

use std::fmt;

use strata_core::{DType, Result, Tensor};

use super::data::Data;
use crate::models::NodeRun;
use crate::{Model, ModelInputs};

/// Statistics of one layer output, from [`Model::inspect`].
///
/// `mean`, `std`, `min` and `max` are over the finite values; `nan` and
/// `inf` count the others.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerStats {
    /// The layer's name, with `@2`, `@3`, ... for later calls of a shared
    /// layer and `[k]` for output `k` of a layer with several.
    pub name: String,
    /// The layer's class.
    pub class: String,
    /// The output's shape (batch axis first).
    pub shape: Vec<usize>,
    /// Mean of the finite values.
    pub mean: f64,
    /// Standard deviation of the finite values (population).
    pub std: f64,
    /// Smallest finite value.
    pub min: f64,
    /// Largest finite value.
    pub max: f64,
    /// Share of values exactly 0 (dead ReLUs show here).
    pub zeros: f64,
    /// NaN values.
    pub nan: usize,
    /// Infinite values.
    pub inf: usize,
}

/// What one training step would do to one weight, from [`Model::inspect`].
#[derive(Clone, Debug, PartialEq)]
pub struct WeightStats {
    /// The weight's full name (`dense.kernel`).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// `‖w‖₂`.
    pub norm: f64,
    /// `‖∂loss/∂w‖₂`; `None` for a weight that is not trained (frozen, or
    /// not on the loss's path).
    pub grad_norm: Option<f64>,
    /// `‖Δw‖₂ / ‖w‖₂` for the optimizer's next update (around 1e-3 is
    /// the usual healthy range; far below, the layer barely learns; far
    /// above, it is being rewritten each step). `None` when not trained or
    /// when `w` is all zeros (a bias before its first update).
    pub update_ratio: Option<f64>,
}

/// One training step looked at from inside: the loss, every layer output's
/// statistics and every weight's gradient and update. Printed (`{}`) as two
/// tables like [`Model::summary`].
#[derive(Clone, Debug, PartialEq)]
pub struct Inspection {
    /// The batch loss (with regularization penalties).
    pub loss: f64,
    /// Every layer call's outputs, in execution order.
    pub layers: Vec<LayerStats>,
    /// Every weight, in the model's weight order.
    pub weights: Vec<WeightStats>,
}

impl LayerStats {
    fn of(name: String, class: String, t: &Tensor) -> Result<LayerStats> {
        let values: Vec<f32> = match t.dtype() {
            DType::F32 => t.to_vec()?,
            _ => t.cast(DType::F32)?.to_vec()?,
        };
        let (mut n, mut sum, mut zeros, mut nan, mut inf) = (0usize, 0f64, 0usize, 0usize, 0usize);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for &v in &values {
            if v.is_nan() {
                nan += 1;
            } else if v.is_infinite() {
                inf += 1;
            } else {
                let v = f64::from(v);
                n += 1;
                sum += v;
                min = min.min(v);
                max = max.max(v);
                zeros += usize::from(v == 0.0);
            }
        }
        let mean = if n > 0 { sum / n as f64 } else { f64::NAN };
        let var = values.iter().filter(|v| v.is_finite()).map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>()
            / n.max(1) as f64;
        Ok(LayerStats {
            name,
            class,
            shape: t.dims().to_vec(),
            mean,
            std: var.sqrt(),
            min: if n > 0 { min } else { f64::NAN },
            max: if n > 0 { max } else { f64::NAN },
            zeros: if values.is_empty() { 0.0 } else { zeros as f64 / values.len() as f64 },
            nan,
            inf,
        })
    }
}

fn norm(t: &Tensor) -> Result<f64> {
    Ok(t.to_vec::<f32>()?.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt())
}

fn shape_text(dims: &[usize]) -> String {
    crate::utils::shape_tuple(dims)
}

/// A box-drawn table: header, then rows; columns after the first two are
/// right-aligned.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).chain([header[c].chars().count()]).max().unwrap_or(0))
        .collect();
    let rule = |l: &str, m: &str, r: &str| {
        let parts: Vec<String> = widths.iter().map(|w| "─".repeat(w + 2)).collect();
        format!("{l}{}{r}\n", parts.join(m))
    };
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (s, &w))| if c < 2 { format!(" {s:<w$} ") } else { format!(" {s:>w$} ") })
            .collect();
        format!("│{}│\n", parts.join("│"))
    };
    let mut out = rule("┌", "┬", "┐");
    out += &line(header.to_vec());
    out += &rule("├", "┼", "┤");
    for r in rows {
        out += &line(r.iter().map(String::as_str).collect());
    }
    out += &rule("└", "┴", "┘");
    out
}

/// A value for reports: 4 decimals in [1e-3, 1e4), else scientific.
pub(crate) fn num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v == 0.0 || (1e-3..1e4).contains(&v.abs()) {
        format!("{v:.4}")
    } else {
        format!("{v:.3e}")
    }
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "loss: {}", num(self.loss))?;
        let rows: Vec<Vec<String>> = self
            .layers
            .iter()
            .map(|l| {
                vec![
                    format!("{} ({})", l.name, l.class),
                    shape_text(&l.shape[1..]),
                    num(l.mean),
                    num(l.std),
                    num(l.min),
                    num(l.max),
                    format!("{:.1}%", 100.0 * l.zeros),
                    (l.nan + l.inf).to_string(),
                ]
            })
            .collect();
        f.write_str(&table(&["Layer (type)", "Output Shape", "mean", "std", "min", "max", "zeros", "NaN/inf"], &rows))?;
        let rows: Vec<Vec<String>> = self
            .weights
            .iter()
            .map(|w| {
                vec![
                    w.name.clone(),
                    shape_text(&w.shape),
                    num(w.norm),
                    w.grad_norm.map_or("not trained".into(), num),
                    w.update_ratio.map_or("-".into(), num),
                ]
            })
            .collect();
        f.write_str(&table(&["Weight", "Shape", "|w|", "|grad|", "|update|/|w|"], &rows))
    }
}

impl Model {
    /// One training step on `(x, y)` looked at from inside, then undone:
    /// the loss; every layer output's shape, mean, std, range, share of
    /// zeros and NaN/inf count; every weight's norm, gradient norm and the
    /// ratio of the optimizer's update to the weight. The weights, the
    /// optimizer's state and the dropout sequence are as they were before,
    /// so it can be called between epochs (from a callback) without
    /// changing training. Needs a compiled model.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let dev = backend::native();
    /// let x = Tensor::new(vec![0.5f32, -1.0, 2.0, 0.0, 1.0, 1.5], [3, 2], &dev)?;
    /// let y = Tensor::new(vec![1.0f32, 0.0, 2.0], [3, 1], &dev)?;
    /// let mut model = Sequential::new()
    ///     .add(Input::new([2]))
    ///     .add(Dense::new(4).activation("relu"))
    ///     .add(Dense::new(1))
    ///     .build_on(&dev)?;
    /// model.compile(SGD::new(0.1), "mse", &[])?;
    /// let before = model.get_weights()?[0].to_vec::<f32>()?;
    /// let report = model.inspect(&x, &y)?;
    /// println!("{report}");
    /// assert_eq!(report.layers.len(), 2);
    /// assert!(report.weights.iter().all(|w| w.grad_norm.is_some()));
    /// assert_eq!(model.get_weights()?[0].to_vec::<f32>()?, before); // nothing changed
    /// # Ok(()) }
    /// ```
    pub fn inspect(&self, x: impl ModelInputs, y: impl ModelInputs) -> Result<Inspection> {
        let (x, y) = (x.into_tensors(), y.into_tensors());
        self.with_compiled("inspect", |c| {
            let batch = Data::new(self, Some(&c.objective.losses), x, y, None, "")?;
            let plan = self.training_plan(c, "inspect")?;
            let mut layers = Vec::new();
            let mut observe = |run: &NodeRun<'_>| -> Result<()> {
                let call = if run.call > 0 { format!("@{}", run.call + 1) } else { String::new() };
                for (k, y) in run.outputs.iter().enumerate() {
                    let out = if run.outputs.len() > 1 { format!("[{k}]") } else { String::new() };
                    layers.push(LayerStats::of(format!("{}{call}{out}", run.layer), run.class.clone(), y)?);
                }
                Ok(())
            };
            let (loss, out) = self.batch_loss(&c.objective, &plan, &batch, true, Some((&mut observe, false)))?;
            let grads = loss.backward()?;
            let params = plan.with_gradients(&grads);
            // The update the optimizer would make: applied, measured, undone.
            let before = self.snapshot_weights()?;
            let (iterations, slots) = (c.optimizer.iterations(), c.optimizer.variables());
            let applied = c.optimizer.apply_gradients(&params);
            let after = applied.and_then(|()| self.snapshot_weights());
            self.restore_weights(&before)?;
            c.optimizer.set_state(iterations, &slots)?;
            let after = after?;
            let mut weights = Vec::new();
            for ((name, w0), (_, w1)) in before.values().iter().zip(after.values()) {
                let grad = params.iter().find(|p| p.0 == name).map(|p| p.2);
                let w_norm = norm(w0)?;
                let (grad_norm, update_ratio) = match grad {
                    Some(g) => {
                        let delta = norm(&w1.sub(w0)?)?;
                        (Some(norm(g)?), (w_norm > 0.0).then(|| delta / w_norm))
                    }
                    None => (None, None),
                };
                weights.push(WeightStats {
                    name: name.clone(),
                    shape: w0.dims().to_vec(),
                    norm: w_norm,
                    grad_norm,
                    update_ratio,
                });
            }
            Ok(Inspection { loss: out.total, layers, weights })
        })
    }

    /// Every layer's output on `x` by name, in execution order, the model's
    /// inputs first: what Keras users build
    /// `keras.Model(m.inputs, [l.output for l in m.layers])` for. Inference
    /// mode (no dropout). A shared layer's later calls are named `name@2`,
    /// `name@3`, ...; output `k` of a layer with several is `name[k]`.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let dev = backend::native();
    /// let model = Sequential::new()
    ///     .add(Input::new([3]).name("features"))
    ///     .add(Dense::new(4).activation("relu").name("hidden"))
    ///     .add(Dense::new(2).name("head"))
    ///     .build_on(&dev)?;
    /// let x = Tensor::new(vec![1.0f32, -2.0, 0.5], [1, 3], &dev)?;
    /// let outs = model.intermediate_outputs(&x)?;
    /// let names: Vec<&str> = outs.iter().map(|(n, _)| n.as_str()).collect();
    /// assert_eq!(names, ["features", "hidden", "head"]);
    /// assert_eq!(outs[2].1.to_vec::<f32>()?, model.predict(&x)?.to_vec::<f32>()?);
    /// # Ok(()) }
    /// ```
    pub fn intermediate_outputs(&self, x: impl ModelInputs) -> Result<Vec<(String, Tensor)>> {
        let x = x.into_tensors();
        self.check_inputs(&x)?;
        let mut out: Vec<(String, Tensor)> =
            self.input_names().into_iter().map(str::to_string).zip(x.iter().cloned()).collect();
        let mut observe = |run: &NodeRun<'_>| -> Result<()> {
            let call = if run.call > 0 { format!("@{}", run.call + 1) } else { String::new() };
            for (k, y) in run.outputs.iter().enumerate() {
                let index = if run.outputs.len() > 1 { format!("[{k}]") } else { String::new() };
                out.push((format!("{}{call}{index}", run.layer), y.clone()));
            }
            Ok(())
        };
        strata_core::no_grad(|| self.forward_observed(&x, false, false, &mut observe))?;
        Ok(out)
    }
}
