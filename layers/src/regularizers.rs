//! Weight penalties added to the training loss (Keras' `l1`, `l2`, `l1_l2`).
//!
//! ```
//! use strata_core::Tensor;
//! use strata_layers::Regularizer;
//! # let dev = strata_native::device();
//! let w = Tensor::new(vec![1.0f32, -2.0], [2], &dev).unwrap();
//! let p = Regularizer::l1_l2(0.1, 0.01).penalty(&w).unwrap();
//! assert!((p.to_scalar::<f32>().unwrap() - (0.1 * 3.0 + 0.01 * 5.0)).abs() < 1e-6);
//! ```

use strata_core::{Error, Result, Tensor};

/// `l1·Σ|w| + l2·Σw²`.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Regularizer {
    /// Coefficient of the absolute-value penalty.
    #[serde(default)]
    pub l1: f32,
    /// Coefficient of the squared penalty.
    #[serde(default)]
    pub l2: f32,
}

impl Regularizer {
    /// `l1·Σ|w|` (Keras' default coefficient is 0.01).
    pub fn l1(l1: f32) -> Self {
        Regularizer { l1, l2: 0.0 }
    }

    /// `l2·Σw²` (Keras' default coefficient is 0.01).
    pub fn l2(l2: f32) -> Self {
        Regularizer { l1: 0.0, l2 }
    }

    /// Both penalties.
    pub fn l1_l2(l1: f32, l2: f32) -> Self {
        Regularizer { l1, l2 }
    }

    /// Checks that both coefficients are finite and non-negative.
    pub fn validate(&self) -> Result<()> {
        if !(self.l1 >= 0.0 && self.l2 >= 0.0 && self.l1.is_finite() && self.l2.is_finite()) {
            return Err(Error::msg(format!(
                "regularizer coefficients must be finite and >= 0, received l1={}, l2={}",
                self.l1, self.l2
            )));
        }
        Ok(())
    }

    /// The penalty for one weight, as a scalar tensor (differentiable).
    pub fn penalty(&self, w: &Tensor) -> Result<Tensor> {
        let mut total = Tensor::zeros([], w.dtype(), w.device())?;
        if self.l1 != 0.0 {
            total = total.add(&w.abs()?.sum_all()?.mul_scalar(self.l1 as f64)?)?;
        }
        if self.l2 != 0.0 {
            total = total.add(&w.square()?.sum_all()?.mul_scalar(self.l2 as f64)?)?;
        }
        Ok(total)
    }
}
