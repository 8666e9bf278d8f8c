//! [`Sequential`]: a stack of one-input layers, built into the same graph
//! type as the Functional API.

use strata_core::{Device, Error, Result};
use strata_layers::Layer;

use super::functional::{SharedLayer, SymKind, SymbolicTensor};
use super::model::{BuildOptions, Model};

/// One item of a [`Sequential`] stack: its [`Input`](crate::Input) or a layer.
pub enum SequentialItem {
    /// The model's input (must come first).
    Input(SymbolicTensor),
    /// A layer.
    Layer(SharedLayer),
}

impl From<SymbolicTensor> for SequentialItem {
    fn from(s: SymbolicTensor) -> Self {
        SequentialItem::Input(s)
    }
}

impl From<SharedLayer> for SequentialItem {
    fn from(s: SharedLayer) -> Self {
        SequentialItem::Layer(s)
    }
}

impl<L: Layer> From<L> for SequentialItem {
    fn from(layer: L) -> Self {
        SequentialItem::Layer(SharedLayer::new(layer))
    }
}

/// Keras' `Sequential`: an [`Input`](crate::Input) followed by layers, each
/// feeding the next. [`build`](Sequential::build) infers every shape and
/// returns a [`Model`].
///
/// ```
/// use strata::prelude::*;
/// # fn main() -> strata::Result<()> {
/// let model = Sequential::new()
///     .add(Input::new([784]))
///     .add(Dense::new(256).activation("relu"))
///     .add(Dense::new(10).activation("softmax"))
///     .build()?;
/// assert_eq!(model.layer_names(), ["dense", "dense_1"]);
/// assert_eq!(model.count_params(), 784 * 256 + 256 + 256 * 10 + 10);
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct Sequential {
    items: Vec<SequentialItem>,
    options: BuildOptions,
}

impl Sequential {
    /// An empty stack.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an item: first an [`Input`](crate::Input), then layers.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, item: impl Into<SequentialItem>) -> Self {
        self.items.push(item.into());
        self
    }

    /// The model's name (default `sequential`).
    pub fn name(mut self, name: &str) -> Self {
        self.options = self.options.name(name);
        self
    }

    /// Seeds weight initialisation and dropout.
    pub fn seed(mut self, seed: u64) -> Self {
        self.options = self.options.seed(seed);
        self
    }

    /// Builds on the default device.
    pub fn build(self) -> Result<Model> {
        let options = self.options.clone();
        self.build_with(options)
    }

    /// Builds on `device`.
    pub fn build_on(self, device: &Device) -> Result<Model> {
        let options = self.options.clone().device(device);
        self.build_with(options)
    }

    /// Builds with explicit options.
    pub fn build_with(self, options: BuildOptions) -> Result<Model> {
        let mut items = self.items.into_iter();
        let input = match items.next() {
            Some(SequentialItem::Input(s)) => s,
            Some(SequentialItem::Layer(_)) => {
                return Err(Error::Graph(
                    "a Sequential model must start with its input: .add(Input::new([features]))".into(),
                ))
            }
            None => return Err(Error::Graph("the Sequential model is empty; add an Input and layers".into())),
        };
        if !matches!(input.0.kind, SymKind::Input { .. }) {
            return Err(Error::Graph("a Sequential model's first item must be made with Input::new".into()));
        }
        let mut x = input.clone();
        for (i, item) in items.enumerate() {
            match item {
                SequentialItem::Layer(layer) => x = layer.call(&x)?,
                SequentialItem::Input(_) => {
                    return Err(Error::Graph(format!(
                        "item {} is a second Input; a Sequential model has exactly one, first",
                        i + 1
                    )))
                }
            }
        }
        super::compiler::assemble(&[input], &[x], options, true)
    }
}
