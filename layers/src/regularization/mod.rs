//! Regularization layers: [`Dropout`], [`SpatialDropout1D`] and
//! [`SpatialDropout2D`].

mod dropout;
mod spatial_dropout1d;
mod spatial_dropout2d;

use strata_core::{Result, Tensor};

use crate::meta::LayerRng;
use crate::CallContext;

pub use dropout::Dropout;
pub use spatial_dropout1d::SpatialDropout1D;
pub use spatial_dropout2d::SpatialDropout2D;

/// Inverted dropout of `x` during training, the identity otherwise: one
/// keep/drop draw per entry of `noise_shape` (which broadcasts to `x`; `x`'s
/// own shape for element-wise dropout), from the layer's generator, the kept
/// entries scaled by `1 / (1 − rate)`. The dropout layers and the attention
/// layers' weights use it.
pub(crate) fn drop_with_noise_shape(
    x: &Tensor,
    noise_shape: Vec<usize>,
    rate: f32,
    rng: &LayerRng,
    ctx: &mut CallContext<'_>,
) -> Result<Tensor> {
    if !ctx.training() || rate == 0.0 {
        return Ok(x.clone());
    }
    let noise = rng.with(ctx.rng(), |r| Tensor::rand_uniform(noise_shape, 0.0, 1.0, r, x.device()))?;
    let keep = noise.ge_scalar(rate as f64)?;
    x.mul(&keep)?.div_scalar(1.0 - rate as f64)
}
