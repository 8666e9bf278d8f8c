//! `GlobalAveragePooling2D` and `GlobalMaxPooling2D`: one value per channel
//! over the whole image.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{ReduceOp, Result, Tensor};

use crate::meta::{from_json, Meta};
use crate::pooling::pooling::{Average, Max, PoolReduce};
use crate::window_args::{window_input, window_output, DataFormat};
use crate::{BuildContext, CallContext, Layer, LayerClass, Resolve, TensorSpec};

/// The mean ([`GlobalAveragePooling2D`]) or maximum ([`GlobalMaxPooling2D`])
/// of each channel over the height and width.
///
/// Arguments (Keras' names and defaults): `data_format`
/// (`"channels_last"`), `keepdims` (false: `(batch, channels)`; true: the
/// spatial axes stay as size 1).
///
/// # Shapes
/// - input: `(batch, height, width, channels)` (or channels first), `f32`
/// - output: `(batch, channels)`, or `(batch, 1, 1, channels)` with `keepdims`
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, GlobalAveragePooling2D, Layer, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut gap = GlobalAveragePooling2D::new();
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(2), Some(2), Some(1)], strata_core::DType::F32);
/// assert_eq!(gap.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?.to_string(), "(None, 1)");
/// let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 6.0], [1, 2, 2, 1], &dev)?;
/// let y = gap.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![3.0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound = "")]
pub struct GlobalPooling2D<R: PoolReduce> {
    #[serde(default)]
    data_format: DataFormat,
    #[serde(default)]
    keepdims: bool,
    #[serde(skip)]
    meta: Meta,
    #[serde(skip)]
    reduce: PhantomData<R>,
}

/// Keras' `GlobalAveragePooling2D`. See [`GlobalPooling2D`].
pub type GlobalAveragePooling2D = GlobalPooling2D<Average>;
/// Keras' `GlobalMaxPooling2D`. See [`GlobalPooling2D`].
pub type GlobalMaxPooling2D = GlobalPooling2D<Max>;

impl<R: PoolReduce> Default for GlobalPooling2D<R> {
    fn default() -> Self {
        GlobalPooling2D {
            data_format: DataFormat::ChannelsLast,
            keepdims: false,
            meta: Meta::default(),
            reduce: PhantomData,
        }
    }
}

impl<R: PoolReduce> GlobalPooling2D<R> {
    /// Pooling to `(batch, channels)`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Names the layer.
    pub fn name(mut self, name: &str) -> Self {
        self.meta.name = Some(name.to_string());
        self
    }

    /// `"channels_last"` (default) or `"channels_first"`.
    pub fn data_format(mut self, format: impl Resolve<DataFormat>) -> Self {
        if let Some(f) = self.meta.keep(format.resolve()) {
            self.data_format = f;
        }
        self
    }

    /// Keep the spatial axes as size 1 (default false).
    pub fn keepdims(mut self, keepdims: bool) -> Self {
        self.keepdims = keepdims;
        self
    }
}

impl LayerClass for GlobalPooling2D<Average> {
    const CLASS_NAME: &'static str = "GlobalAveragePooling2D";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl LayerClass for GlobalPooling2D<Max> {
    const CLASS_NAME: &'static str = "GlobalMaxPooling2D";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl<R: PoolReduce> Layer for GlobalPooling2D<R>
where
    GlobalPooling2D<R>: LayerClass,
{
    fn class_name(&self) -> &str {
        <Self as LayerClass>::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        let (_, channels) = window_input(x, 2, self.data_format)?;
        Ok(if self.keepdims {
            window_output(x.dims[0], vec![Some(1), Some(1)], channels, self.data_format, x.dtype)
        } else {
            TensorSpec::new(vec![x.dims[0], Some(channels)], x.dtype)
        })
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let axes: [isize; 2] = match self.data_format {
            DataFormat::ChannelsLast => [1, 2],
            DataFormat::ChannelsFirst => [2, 3],
        };
        let x = &inputs[0];
        if R::MAX {
            x.reduce(ReduceOp::Max, &axes, self.keepdims)
        } else {
            x.mean(&axes, self.keepdims)
        }
    }

    fn config(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn name_hint(&self) -> Option<&str> {
        self.meta.name.as_deref()
    }
}
