//! Preparing features and labels for training: one-hot labels
//! ([`to_categorical`]) and per-feature standardisation ([`Standardizer`]).

use strata_core::{DType, Error, Result, Tensor};

/// One-hot encodes `i64` class ids into `f32`, Keras'
/// `keras.utils.to_categorical(y, num_classes)`: a label tensor of shape
/// `[N]` (or any shape) becomes `[N, classes]` (a new last axis) with a 1 at
/// each label and 0 elsewhere, on the device of `y`.
///
/// A label outside `0..classes` is an error naming it and its position.
///
/// ```
/// # fn main() -> strata::Result<()> {
/// use strata::{datasets::to_categorical, Tensor};
///
/// let y = Tensor::new(vec![2i64, 0, 1], [3], &strata::backend::native())?;
/// let one_hot = to_categorical(&y, 3)?;
/// assert_eq!(one_hot.dims(), &[3, 3]);
/// assert_eq!(one_hot.to_vec::<f32>()?, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
/// assert!(to_categorical(&y, 2).is_err()); // label 2 needs 3 classes
/// # Ok(()) }
/// ```
pub fn to_categorical(y: &Tensor, classes: usize) -> Result<Tensor> {
    let op = "to_categorical";
    if y.dtype() != DType::I64 {
        return Err(Error::DTypeMismatch { op, expected: DType::I64, received: y.dtype() });
    }
    if classes == 0 {
        return Err(Error::invalid(op, "classes must be at least 1, received 0"));
    }
    let labels = y.to_vec::<i64>()?;
    let mut out = vec![0f32; labels.len() * classes];
    for (i, &label) in labels.iter().enumerate() {
        match usize::try_from(label).ok().filter(|&k| k < classes) {
            Some(k) => out[i * classes + k] = 1.0,
            None => {
                return Err(Error::invalid(
                    op,
                    format!("label {label} at index {i} is outside 0..{classes}; pass the number of classes"),
                ))
            }
        }
    }
    let mut dims = y.dims().to_vec();
    dims.push(classes);
    Tensor::new(out, dims, y.device())
}

/// Per-feature standardisation, scikit-learn's `StandardScaler`:
/// [`fit`](Standardizer::fit) learns each feature's mean and (population)
/// standard deviation from training data, [`transform`](Standardizer::transform)
/// maps `x` to `(x - mean) / std`.
///
/// Features are every axis after the first (`[N, F]`, or `[N, 28, 28]`
/// with one feature per pixel). A feature that is constant in the training
/// data (standard deviation 0) is only centred, never divided by zero: it
/// becomes 0, not NaN.
///
/// ```
/// # fn main() -> strata::Result<()> {
/// use strata::{datasets::Standardizer, Tensor};
///
/// let dev = strata::backend::native();
/// // Feature 0: 1, 3 (mean 2, std 1). Feature 1: constant 5.
/// let x = Tensor::new(vec![1.0f32, 5.0, 3.0, 5.0], [2, 2], &dev)?;
/// let scaler = Standardizer::fit(&x)?;
/// assert_eq!((scaler.mean(), scaler.std()), (&[2.0f32, 5.0][..], &[1.0f32, 0.0][..]));
/// assert_eq!(scaler.transform(&x)?.to_vec::<f32>()?, vec![-1.0, 0.0, 1.0, 0.0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Standardizer {
    mean: Vec<f32>,
    std: Vec<f32>,
    feature_dims: Vec<usize>,
}

impl Standardizer {
    /// Learns the mean and standard deviation of each feature of `x`
    /// (`f32`, examples along axis 0, at least one example). Sums are taken
    /// in `f64`.
    pub fn fit(x: &Tensor) -> Result<Standardizer> {
        let op = "Standardizer::fit";
        let (n, width) = Self::check(op, x)?;
        if n == 0 {
            return Err(Error::invalid(op, "cannot fit on zero examples"));
        }
        let values = x.to_vec::<f32>()?;
        let mut sum = vec![0f64; width];
        for row in values.chunks_exact(width) {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += f64::from(v);
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
        let mut var = vec![0f64; width];
        for row in values.chunks_exact(width) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                let d = f64::from(v) - m;
                *s += d * d;
            }
        }
        Ok(Standardizer {
            mean: mean.iter().map(|&m| m as f32).collect(),
            std: var.iter().map(|&v| (v / n as f64).sqrt() as f32).collect(),
            feature_dims: x.dims()[1..].to_vec(),
        })
    }

    /// `(x - mean) / std` per feature (features with `std == 0` only
    /// centred), a new tensor of the same shape on the same device. `x` must
    /// have the feature shape [`fit`](Standardizer::fit) saw.
    pub fn transform(&self, x: &Tensor) -> Result<Tensor> {
        let op = "Standardizer::transform";
        Self::check(op, x)?;
        if x.dims()[1..] != self.feature_dims[..] {
            return Err(Error::invalid(
                op,
                format!(
                    "fitted on features of shape {:?}, received x of shape {} (features {:?})",
                    self.feature_dims,
                    x.shape(),
                    &x.dims()[1..]
                ),
            ));
        }
        let scale: Vec<f32> = self.std.iter().map(|&s| if s > 0.0 { 1.0 / s } else { 1.0 }).collect();
        let mut values = x.to_vec::<f32>()?;
        for row in values.chunks_exact_mut(self.mean.len().max(1)) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&scale) {
                *v = (*v - m) * s;
            }
        }
        Tensor::new(values, x.shape().clone(), x.device())
    }

    /// [`fit`](Standardizer::fit) on `x`, then [`transform`](Standardizer::transform) it.
    pub fn fit_transform(x: &Tensor) -> Result<(Standardizer, Tensor)> {
        let scaler = Standardizer::fit(x)?;
        let out = scaler.transform(x)?;
        Ok((scaler, out))
    }

    /// The mean of each feature (row-major over the feature axes).
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// The population standard deviation of each feature (0 for a constant
    /// one).
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// `(examples, features per example)`, checking dtype and rank.
    fn check(op: &'static str, x: &Tensor) -> Result<(usize, usize)> {
        if x.dtype() != DType::F32 {
            return Err(Error::DTypeMismatch { op, expected: DType::F32, received: x.dtype() });
        }
        if x.rank() < 2 {
            return Err(Error::InvalidShape {
                op,
                shape: x.shape().clone(),
                reason: "expected examples along axis 0 and features after it, e.g. [N, F]".into(),
            });
        }
        Ok((x.dims()[0], x.dims()[1..].iter().product()))
    }
}
