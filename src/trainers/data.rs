//! Training data: checked once before the first step, moved onto the
//! model's device, and cut into batches.

use strata_core::{DType, Error, Result, Tensor};

use crate::losses::Loss;
use crate::Model;

/// Inputs, targets and optional per-sample weights with the same number of
/// samples along axis 0.
#[derive(Clone)]
pub(crate) struct Data {
    pub(crate) xs: Vec<Tensor>,
    pub(crate) ys: Vec<Tensor>,
    pub(crate) sw: Option<Tensor>,
    pub(crate) len: usize,
}

/// `what` names the data in errors: "x", "validation x", ...
fn samples(what: &str, t: &Tensor) -> Result<usize> {
    match t.dims().first() {
        Some(&n) => Ok(n),
        None => Err(Error::invalid("data", format!("{what} is a scalar; expected a batch axis first"))),
    }
}

/// The first NaN or infinity, as `(flat index, value)`; none in integer tensors.
fn first_non_finite(t: &Tensor) -> Result<Option<(usize, f32)>> {
    let Some(at) = t.find_non_finite()? else { return Ok(None) };
    let value = t.flatten_from(0)?.narrow(0, at, 1)?.to_vec::<f32>()?[0];
    Ok(Some((at, value)))
}

impl Data {
    /// Checks `xs`/`ys` against the model and its losses and moves them onto
    /// the model's device. `prefix` is "" or "validation " for messages.
    pub(crate) fn new(
        model: &Model,
        losses: Option<&[Loss]>,
        xs: Vec<Tensor>,
        ys: Vec<Tensor>,
        sw: Option<Tensor>,
        prefix: &str,
    ) -> Result<Data> {
        let dev = model.device();
        let xs = xs.iter().map(|t| t.to_device(dev)).collect::<Result<Vec<_>>>()?;
        let ys = ys.iter().map(|t| t.to_device(dev)).collect::<Result<Vec<_>>>()?;
        let sw = sw.map(|t| t.to_device(dev)).transpose()?;
        if xs.is_empty() {
            return Err(Error::invalid("data", format!("no {prefix}inputs given")));
        }
        let len = samples(&format!("{prefix}x"), &xs[0])?;
        if len == 0 {
            return Err(Error::invalid("data", format!("{prefix}x is empty: 0 samples")));
        }
        model.check_inputs(&xs)?;
        for (i, x) in xs.iter().enumerate().skip(1) {
            let n = samples(&format!("{prefix}x[{i}]"), x)?;
            if n != len {
                return Err(Error::invalid(
                    "data",
                    format!("{prefix}inputs disagree on the number of samples: x[0] has {len}, x[{i}] has {n}"),
                ));
            }
        }
        // Training and evaluation data are scanned for NaN/inf; predict's
        // (no losses) are not, as in Keras: a deployed program need not pay
        // a pass over its inputs on every call.
        let scanned = if losses.is_some() { xs.as_slice() } else { &[] };
        for (i, x) in scanned.iter().enumerate() {
            if let Some((at, v)) = first_non_finite(x)? {
                let per = x.numel() / len;
                return Err(Error::invalid(
                    "data",
                    format!(
                        "{prefix}input `{}` contains {v} at sample {} (flat index {at}); \
                         clean or impute the data before training",
                        model.input_names()[i],
                        at / per.max(1)
                    ),
                ));
            }
        }
        if let Some(losses) = losses {
            let outputs = model.output_names();
            if ys.len() != outputs.len() {
                return Err(Error::invalid(
                    "data",
                    format!(
                        "the model has {} output(s) [{}] but {} {prefix}target tensor(s) were given",
                        outputs.len(),
                        outputs.join(", "),
                        ys.len()
                    ),
                ));
            }
            let specs = model.output_specs();
            for (i, y) in ys.iter().enumerate() {
                let n = samples(&format!("{prefix}y"), y)?;
                if n != len {
                    return Err(Error::invalid(
                        "data",
                        format!("{prefix}x has {len} samples but {prefix}y (`{}`) has {n}", outputs[i]),
                    ));
                }
                if let Some((at, v)) = first_non_finite(y)? {
                    return Err(Error::invalid(
                        "data",
                        format!("{prefix}targets for `{}` contain {v} at flat index {at}", outputs[i]),
                    ));
                }
                losses[i].check_targets(y, &specs[i]).map_err(|e| e.in_layer(format!("output `{}`", outputs[i])))?;
            }
        }
        if let Some(w) = &sw {
            if w.dtype() != DType::F32 || w.dims() != [len] {
                return Err(Error::invalid(
                    "data",
                    format!(
                        "{prefix}sample_weight must be f32 of shape ({len},), received {} {}",
                        crate::utils::shape_tuple(w.dims()),
                        w.dtype()
                    ),
                ));
            }
            if let Some(bad) = w.to_vec::<f32>()?.into_iter().find(|v| !v.is_finite() || *v < 0.0) {
                return Err(Error::invalid(
                    "data",
                    format!("{prefix}sample_weight must be finite and non-negative, found {bad}"),
                ));
            }
        }
        Ok(Data { xs, ys, sw, len })
    }

    /// Samples `start..start + n` (a copy-free narrow where the backend
    /// allows).
    pub(crate) fn range(&self, start: usize, n: usize) -> Result<Data> {
        let cut = |t: &Tensor| t.narrow(0, start, n);
        Ok(Data {
            xs: self.xs.iter().map(cut).collect::<Result<_>>()?,
            ys: self.ys.iter().map(cut).collect::<Result<_>>()?,
            sw: self.sw.as_ref().map(cut).transpose()?,
            len: n,
        })
    }

    /// The samples at `indices`, in that order.
    pub(crate) fn select(&self, indices: &[usize]) -> Result<Data> {
        if let Some(&first) = indices.first() {
            if indices.iter().enumerate().all(|(k, &i)| i == first + k) {
                return self.range(first, indices.len());
            }
        }
        let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let idx = Tensor::new(idx, [indices.len()], self.xs[0].device())?;
        let pick = |t: &Tensor| t.gather(0, &idx);
        Ok(Data {
            xs: self.xs.iter().map(pick).collect::<Result<_>>()?,
            ys: self.ys.iter().map(pick).collect::<Result<_>>()?,
            sw: self.sw.as_ref().map(pick).transpose()?,
            len: indices.len(),
        })
    }

    /// Multiplies the sample weights by per-class weights of the first
    /// target's class (sparse label, argmax of one-hot, or rounded binary).
    pub(crate) fn apply_class_weight(&mut self, weights: &std::collections::BTreeMap<i64, f64>) -> Result<()> {
        let y = &self.ys[0];
        let classes: Vec<i64> = match (y.dtype(), y.dims()) {
            (DType::I64, _) => y.to_vec::<i64>()?,
            (DType::F32, [_, c]) if *c > 1 => y.argmax(-1, false)?.to_vec::<i64>()?,
            (DType::F32, _) => y.to_vec::<f32>()?.into_iter().map(|v| v.round() as i64).collect(),
        };
        if classes.len() != self.len {
            return Err(Error::invalid(
                "class_weight",
                format!(
                    "needs one class per sample; targets of shape {} give {}",
                    crate::utils::shape_tuple(y.dims()),
                    classes.len()
                ),
            ));
        }
        for (c, w) in weights {
            if !w.is_finite() || *w < 0.0 {
                return Err(Error::invalid("class_weight", format!("class {c} has weight {w}; expected >= 0")));
            }
        }
        let cw: Vec<f32> = classes.iter().map(|c| weights.get(c).copied().unwrap_or(1.0) as f32).collect();
        let cw = Tensor::new(cw, [self.len], y.device())?;
        self.sw = Some(match &self.sw {
            Some(sw) => sw.mul(&cw)?,
            None => cw,
        });
        Ok(())
    }
}
