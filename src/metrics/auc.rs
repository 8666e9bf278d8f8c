//! [`Auc`]: the area under the ROC or precision-recall curve, from
//! histograms of the predictions over `num_thresholds` buckets.

use strata_core::{no_grad, DType, Error, Result, Tensor};

use super::confusion::confusion_inputs;
use super::reduction::{divide_no_nan, download, expect_f32};
use super::Metric;
use crate::losses::EPSILON;

/// Which curve [`Auc`] integrates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AucCurve {
    /// Receiver operating characteristic: recall against false-positive rate (Keras' default).
    #[default]
    Roc,
    /// Precision against recall.
    Pr,
}

/// How [`Auc`] sums the area between thresholds (Keras' `summation_method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AucSummation {
    /// Trapezoids for ROC; for PR, Davis & Goadrich's interpolation (Keras' default).
    #[default]
    Interpolation,
    /// The lower of the two heights of each interval.
    Minoring,
    /// The higher of the two heights of each interval.
    Majoring,
}

/// Keras' `AUC`: the area under the ROC (or PR) curve, approximated with a
/// confusion matrix at `num_thresholds` evenly spaced thresholds (default
/// 200), plus the end points `−ε` and `1 + ε`.
///
/// Each batch sorts predictions into buckets on the device (one `index_add`
/// per class of target) and downloads the two histograms; the cumulative
/// counts live on the host in `f64`. Targets are positive when non-zero;
/// predictions are clipped to `[0, 1]` (or passed through a sigmoid first
/// with [`from_logits`](Auc::from_logits)).
///
/// ```
/// use strata::prelude::*;
/// # fn main() -> strata::Result<()> {
/// let dev = strata::backend::native();
/// let mut auc = Auc::new();
/// let y_true = Tensor::new(vec![0.0f32, 0.0, 1.0, 1.0], [4], &dev)?;
/// auc.update_state(&y_true, &Tensor::new(vec![0.1f32, 0.4, 0.35, 0.8], [4], &dev)?, None, None)?;
/// assert!((auc.result() - 0.75).abs() < 1e-6);     // sklearn's exact ROC AUC is 0.75 too
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Auc {
    name: String,
    num_thresholds: usize,
    thresholds: Option<Vec<f64>>,
    curve: AucCurve,
    summation: AucSummation,
    from_logits: bool,
    true_positives: Vec<f64>,
    false_positives: Vec<f64>,
    true_negatives: Vec<f64>,
    false_negatives: Vec<f64>,
}

impl Auc {
    /// ROC AUC with 200 thresholds and interpolation, named `auc`.
    pub fn new() -> Self {
        Auc {
            name: "auc".into(),
            num_thresholds: 200,
            thresholds: None,
            curve: AucCurve::Roc,
            summation: AucSummation::Interpolation,
            from_logits: false,
            true_positives: Vec::new(),
            false_positives: Vec::new(),
            true_negatives: Vec::new(),
            false_negatives: Vec::new(),
        }
    }

    /// The number of evenly spaced thresholds, including the end points
    /// (more than 1; Keras' default is 200).
    pub fn num_thresholds(mut self, n: usize) -> Self {
        self.num_thresholds = n;
        self.thresholds = None;
        self
    }

    /// Explicit thresholds in `[0, 1]` instead of evenly spaced ones (the end
    /// points `−ε` and `1 + ε` are added, as in Keras).
    pub fn thresholds(mut self, thresholds: Vec<f64>) -> Self {
        self.thresholds = Some(thresholds);
        self
    }

    /// The curve to integrate (ROC by default).
    pub fn curve(mut self, curve: AucCurve) -> Self {
        self.curve = curve;
        self
    }

    /// How to sum the area (interpolation by default).
    pub fn summation_method(mut self, summation: AucSummation) -> Self {
        self.summation = summation;
        self
    }

    /// Whether the predictions are logits (a sigmoid is applied first).
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// Sets the log key (default `auc`). Shadows [`Metric::name`] on the
    /// concrete type; read the key with `Metric::name(&metric)`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Keras' thresholds (with the `−ε`, `1 + ε` end points) and whether
    /// they are evenly spaced, which selects Keras' bucketing formula.
    fn threshold_list(&self) -> Result<(Vec<f64>, bool)> {
        const OP: &str = "auc";
        let inner: Vec<f64> = match &self.thresholds {
            Some(given) => {
                if let Some(bad) = given.iter().find(|t| !(0.0..=1.0).contains(*t)) {
                    return Err(Error::invalid(OP, format!("thresholds must be in [0, 1], received {bad}")));
                }
                let mut sorted = given.clone();
                sorted.sort_by(f64::total_cmp);
                sorted
            }
            None => {
                let n = self.num_thresholds;
                if n <= 1 {
                    return Err(Error::invalid(OP, format!("num_thresholds must be greater than 1, received {n}")));
                }
                (0..n - 2).map(|i| (i + 1) as f64 / (n - 1) as f64).collect()
            }
        };
        let evenly = match &self.thresholds {
            None => true,
            Some(_) => {
                let mut with_ends = vec![0.0];
                with_ends.extend(&inner);
                with_ends.push(1.0);
                evenly_distributed(&with_ends)
            }
        };
        let mut all = vec![-EPSILON];
        all.extend(inner);
        all.push(1.0 + EPSILON);
        Ok((all, evenly))
    }

    fn summed_area(&self) -> f64 {
        let (tp, fp, tn, fn_) =
            (&self.true_positives, &self.false_positives, &self.true_negatives, &self.false_negatives);
        let n = tp.len();
        if n < 2 {
            return 0.0;
        }
        if self.curve == AucCurve::Pr && self.summation == AucSummation::Interpolation {
            return (0..n - 1)
                .map(|i| {
                    let (p_i, p_next) = (tp[i] + fp[i], tp[i + 1] + fp[i + 1]);
                    let dtp = tp[i] - tp[i + 1];
                    let slope = divide_no_nan(dtp, (p_i - p_next).max(0.0));
                    let intercept = tp[i + 1] - slope * p_next;
                    let ratio = if p_i > 0.0 && p_next > 0.0 { divide_no_nan(p_i, p_next.max(0.0)) } else { 1.0 };
                    divide_no_nan(slope * (dtp + intercept * ratio.ln()), (tp[i + 1] + fn_[i + 1]).max(0.0))
                })
                .sum();
        }
        let recall: Vec<f64> = (0..n).map(|i| divide_no_nan(tp[i], tp[i] + fn_[i])).collect();
        let (x, y): (Vec<f64>, Vec<f64>) = match self.curve {
            AucCurve::Roc => ((0..n).map(|i| divide_no_nan(fp[i], fp[i] + tn[i])).collect(), recall),
            AucCurve::Pr => (recall, (0..n).map(|i| divide_no_nan(tp[i], tp[i] + fp[i])).collect()),
        };
        (0..n - 1)
            .map(|i| {
                let height = match self.summation {
                    AucSummation::Interpolation => (y[i] + y[i + 1]) / 2.0,
                    AucSummation::Minoring => y[i].min(y[i + 1]),
                    AucSummation::Majoring => y[i].max(y[i + 1]),
                };
                (x[i] - x[i + 1]) * height
            })
            .sum()
    }
}

impl Default for Auc {
    fn default() -> Self {
        Self::new()
    }
}

/// Keras' `is_evenly_distributed_thresholds`: at least 3 values, each
/// within `np.allclose` of `i / (n − 1)`.
fn evenly_distributed(thresholds: &[f64]) -> bool {
    let n = thresholds.len();
    n >= 3
        && thresholds.iter().enumerate().all(|(i, &t)| {
            let even = (i as f32 / (n - 1) as f32) as f64;
            (t - even).abs() <= EPSILON + 1e-5 * even.abs()
        })
}

impl Metric for Auc {
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
        const OP: &str = "auc";
        let (thresholds, evenly) = self.threshold_list()?;
        let n = thresholds.len();
        let buckets = no_grad(|| {
            expect_f32(OP, y_pred)?;
            let p = if self.from_logits { y_pred.sigmoid()? } else { y_pred.clone() };
            let (label, p, weight) = confusion_inputs(OP, y_true, &p, sample_weight, mask)?;
            let count = p.numel();
            let (mut positives, mut negatives) = (label.clone(), label.affine(-1.0, 1.0)?);
            if let Some(w) = &weight {
                positives = positives.mul(w)?;
                negatives = negatives.mul(w)?;
            }
            // Bucket b holds the predictions above thresholds 0..b (evenly spaced: Keras'
            // `relu(ceil(p·(n−1)) − 1)`), else bucket k = the number of thresholds below p.
            let (index, size) = if evenly {
                let p = p.maximum_scalar(0.0)?.minimum_scalar(1.0)?;
                (p.mul_scalar((n - 1) as f64)?.ceil()?.sub_scalar(1.0)?.relu()?, n)
            } else {
                let t: Vec<f32> = thresholds.iter().map(|&t| t as f32).collect();
                let t = Tensor::new(t, [n], p.device())?;
                (p.reshape([count, 1])?.gt(&t)?.sum(&[-1], false)?, n + 1)
            };
            let index = index.reshape([count])?.cast(DType::I64)?;
            let zeros = Tensor::zeros([size], DType::F32, p.device())?;
            let tp = zeros.index_add(0, &index, &positives.reshape([count])?)?;
            let fp = zeros.index_add(0, &index, &negatives.reshape([count])?)?;
            Ok::<_, Error>((download(&[tp, fp])?, size))
        })?;
        let (values, size) = buckets;
        let (tp_buckets, fp_buckets) = values.split_at(size);
        // Reverse cumulative sums: the weight predicted positive at each threshold.
        let skip = if evenly { 0 } else { 1 };
        let suffix = |b: &[f64]| -> Vec<f64> {
            let mut out = vec![0.0; n];
            let mut acc = 0.0;
            for i in (0..n).rev() {
                acc += b[i + skip];
                out[i] = acc;
            }
            out
        };
        let (tp, fp) = (suffix(tp_buckets), suffix(fp_buckets));
        let (all_true, all_false): (f64, f64) = (tp_buckets.iter().sum(), fp_buckets.iter().sum());
        if self.true_positives.len() != n {
            self.reset_state();
            for v in [
                &mut self.true_positives,
                &mut self.false_positives,
                &mut self.true_negatives,
                &mut self.false_negatives,
            ] {
                *v = vec![0.0; n];
            }
        }
        for i in 0..n {
            self.true_positives[i] += tp[i];
            self.false_positives[i] += fp[i];
            self.false_negatives[i] += all_true - tp[i];
            self.true_negatives[i] += all_false - fp[i];
        }
        Ok(())
    }

    fn result(&self) -> f64 {
        self.summed_area()
    }

    fn reset_state(&mut self) {
        for v in
            [&mut self.true_positives, &mut self.false_positives, &mut self.true_negatives, &mut self.false_negatives]
        {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
    }

    fn box_clone_fresh(&self) -> Box<dyn Metric> {
        let mut fresh = self.clone();
        fresh.reset_state();
        Box::new(fresh)
    }
}
