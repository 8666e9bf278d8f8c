//! Regression metrics: mean absolute error, mean squared error and its
//! root.

use strata_core::{no_grad, DType, Result, Shape, Tensor};

use super::reduction::{expect_f32, mean_increments, mean_metric, metric_weights, MeanState};
use super::Metric;
use crate::losses::{squeeze_or_expand, Loss};

/// Keras' `MeanAbsoluteError` metric: the weighted mean of `mean(|y_true − y_pred|, axis=-1)`.
#[derive(Clone, Debug)]
pub struct MeanAbsoluteError {
    name: String,
    state: MeanState,
}

impl MeanAbsoluteError {
    /// Named `mean_absolute_error`.
    pub fn new() -> Self {
        MeanAbsoluteError { name: "mean_absolute_error".into(), state: MeanState::default() }
    }

    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        Loss::MeanAbsoluteError.per_sample(y_true, y_pred)
    }

    fn finish(&self, mean: f64) -> f64 {
        mean
    }
}

impl Default for MeanAbsoluteError {
    fn default() -> Self {
        Self::new()
    }
}

mean_metric!(MeanAbsoluteError, "mean_absolute_error");

/// Keras' `MeanSquaredError` metric: the weighted mean of `mean((y_true − y_pred)², axis=-1)`.
#[derive(Clone, Debug)]
pub struct MeanSquaredError {
    name: String,
    state: MeanState,
}

impl MeanSquaredError {
    /// Named `mean_squared_error`.
    pub fn new() -> Self {
        MeanSquaredError { name: "mean_squared_error".into(), state: MeanState::default() }
    }

    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        Loss::MeanSquaredError.per_sample(y_true, y_pred)
    }

    fn finish(&self, mean: f64) -> f64 {
        mean
    }
}

impl Default for MeanSquaredError {
    fn default() -> Self {
        Self::new()
    }
}

mean_metric!(MeanSquaredError, "mean_squared_error");

/// Keras' `RootMeanSquaredError`: the square root of the weighted mean squared error.
#[derive(Clone, Debug)]
pub struct RootMeanSquaredError {
    name: String,
    state: MeanState,
}

impl RootMeanSquaredError {
    /// Named `root_mean_squared_error`.
    pub fn new() -> Self {
        RootMeanSquaredError { name: "root_mean_squared_error".into(), state: MeanState::default() }
    }

    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let t = y_true.cast(DType::F32)?;
        let (t, p) = squeeze_or_expand(&t, y_pred, true)?;
        Shape::broadcast("root_mean_squared_error", t.shape(), p.shape())?;
        p.sub(&t)?.square()
    }

    fn finish(&self, mean: f64) -> f64 {
        mean.sqrt()
    }
}

impl Default for RootMeanSquaredError {
    fn default() -> Self {
        Self::new()
    }
}

mean_metric!(RootMeanSquaredError, "root_mean_squared_error");
