//! Confusion-matrix metrics at one threshold: [`Precision`] and [`Recall`],
//! two rates of one [`ThresholdMetric`], and the inputs [`Auc`](super::Auc)
//! shares with them.

use std::marker::PhantomData;

use strata_core::{no_grad, DType, Error, Result, Tensor};

use super::reduction::{divide_no_nan, download, expect_f32, metric_weights};
use super::Metric;
use crate::losses::{pad_trailing, squeeze_or_expand};

/// Labels (0/1: non-zero targets are positive), predictions aligned with
/// them, and the weights broadcast to the predictions' shape, as Keras'
/// `update_confusion_matrix_variables` prepares them.
pub(crate) fn confusion_inputs(
    op: &'static str,
    y_true: &Tensor,
    y_pred: &Tensor,
    sample_weight: Option<&Tensor>,
    mask: Option<&Tensor>,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    expect_f32(op, y_pred)?;
    let t = y_true.cast(DType::F32)?;
    let (p, t) = squeeze_or_expand(y_pred, &t, true)?;
    if p.dims() != t.dims() {
        return Err(Error::ShapeMismatch {
            op,
            lhs: t.shape().clone(),
            rhs: p.shape().clone(),
            reason: "targets must have the predictions' shape".into(),
        });
    }
    let weight = match metric_weights(op, sample_weight, mask)? {
        None => None,
        Some(w) => {
            let (_, w) = squeeze_or_expand(&t, &w.unsqueeze(-1)?, false)?;
            let w = pad_trailing(&w, p.rank())?;
            Some(w.broadcast_to(p.shape().clone()).map_err(|_| Error::ShapeMismatch {
                op,
                lhs: p.shape().clone(),
                rhs: w.shape().clone(),
                reason: "the sample weight (times the mask) does not fit the predictions".into(),
            })?)
        }
    };
    Ok((t.ne_scalar(0.0)?, p, weight))
}

pub(crate) fn check_threshold(op: &'static str, threshold: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&threshold) {
        return Err(Error::invalid(op, format!("threshold must be in [0, 1], received {threshold}")));
    }
    Ok(())
}

/// The count a [`ThresholdRate`] sets against the true positives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rate {
    /// `TP / (TP + FP)`: of what was predicted positive, how much was.
    Precision,
    /// `TP / (TP + FN)`: of what was positive, how much was predicted so.
    Recall,
}

/// The rate a [`ThresholdMetric`] reports: its [`Rate`] and default name.
pub trait ThresholdRate: Clone + Send + Sync + 'static {
    /// Which rate.
    const RATE: Rate;
    /// The Keras name, the default log key.
    const NAME: &'static str;
}

/// Marker of [`Precision`].
#[derive(Clone, Copy, Debug, Default)]
pub struct PrecisionRate;

impl ThresholdRate for PrecisionRate {
    const RATE: Rate = Rate::Precision;
    const NAME: &'static str = "precision";
}

/// Marker of [`Recall`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RecallRate;

impl ThresholdRate for RecallRate {
    const RATE: Rate = Rate::Recall;
    const NAME: &'static str = "recall";
}

/// A rate of the confusion counts at one threshold (Keras' `Precision` and
/// `Recall`): a prediction is positive when strictly above the threshold
/// (default 0.5), a target when non-zero. The result is 0 while its
/// denominator is 0 (nothing predicted positive for precision, no positive
/// target for recall). Use it as [`Precision`] or [`Recall`].
///
/// ```
/// use strata::prelude::*;
/// # fn main() -> strata::Result<()> {
/// let dev = strata::backend::native();
/// let y_true = Tensor::new(vec![1.0f32, 0.0, 1.0, 0.0], [4, 1], &dev)?;
/// let y_pred = Tensor::new(vec![0.9f32, 0.8, 0.2, 0.1], [4, 1], &dev)?;
/// let mut p = Precision::new();
/// p.update_state(&y_true, &y_pred, None, None)?;
/// assert_eq!(p.result(), 0.5);                       // 1 of the 2 predicted positives
/// let mut r = Recall::new().threshold(0.15);
/// r.update_state(&y_true, &y_pred, None, None)?;
/// assert_eq!((Metric::name(&r), r.result()), ("recall", 1.0)); // both positives found
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct ThresholdMetric<R: ThresholdRate> {
    name: String,
    threshold: f64,
    true_positives: f64,
    /// False positives for precision, false negatives for recall.
    missed: f64,
    rate: PhantomData<R>,
}

/// Keras' `Precision` at one threshold: `TP / (TP + FP)`.
pub type Precision = ThresholdMetric<PrecisionRate>;

/// Keras' `Recall` at one threshold: `TP / (TP + FN)`.
pub type Recall = ThresholdMetric<RecallRate>;

impl<R: ThresholdRate> ThresholdMetric<R> {
    /// Threshold 0.5, named after the rate (`precision`, `recall`).
    pub fn new() -> Self {
        ThresholdMetric { name: R::NAME.into(), threshold: 0.5, true_positives: 0.0, missed: 0.0, rate: PhantomData }
    }

    /// Predictions strictly above `threshold` (in `[0, 1]`) count as positive.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets the log key (default: the rate's Keras name). Shadows
    /// [`Metric::name`] on the concrete type; read the key with
    /// `Metric::name(&metric)`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
}

impl<R: ThresholdRate> Default for ThresholdMetric<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: ThresholdRate> Metric for ThresholdMetric<R> {
    fn name(&self) -> &str {
        &self.name
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<()> {
        let op = R::NAME;
        check_threshold(op, self.threshold)?;
        let counts = no_grad(|| {
            let (label, p, weight) = confusion_inputs(op, y_true, y_pred, sample_weight, mask)?;
            let mut positive = p.gt_scalar(self.threshold)?;
            if let Some(w) = &weight {
                positive = positive.mul(w)?;
            }
            let tp = label.mul(&positive)?.sum_all()?;
            let missed = match R::RATE {
                Rate::Precision => label.affine(-1.0, 1.0)?.mul(&positive)?.sum_all()?,
                // Positive targets predicted negative: weight · label − TP.
                Rate::Recall => {
                    let weighted = match &weight {
                        Some(w) => label.mul(w)?,
                        None => label.clone(),
                    };
                    weighted.sum_all()?.sub(&tp)?
                }
            };
            download(&[tp, missed])
        })?;
        self.true_positives += counts[0];
        self.missed += counts[1];
        Ok(())
    }

    fn result(&self) -> f64 {
        divide_no_nan(self.true_positives, self.true_positives + self.missed)
    }

    fn reset_state(&mut self) {
        self.true_positives = 0.0;
        self.missed = 0.0;
    }

    fn box_clone_fresh(&self) -> Box<dyn Metric> {
        let mut fresh = self.clone();
        fresh.reset_state();
        Box::new(fresh)
    }
}
