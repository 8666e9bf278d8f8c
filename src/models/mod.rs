//! Models: [`Model`] (its accessors and weights API), the graph compiler
//! that turns symbolic calls into a model, the executor that runs it, the
//! Functional API ([`Input`], [`SymbolicTensor`], [`SharedLayer`]),
//! [`Sequential`], [`Model::summary`] and the model config
//! ([`Model::get_config`], [`Model::from_config`]).

mod compiled;
mod compiler;
mod config;
mod executor;
mod functional;
mod limits;
mod model;
mod sequential;
mod summary;

pub(crate) use compiled::{Compiled, Objective};
pub(crate) use config::TextError;
pub use config::{InputConfig, InputLayerConfig, LayerConfig, ModelConfig, NodeRef};
pub(crate) use executor::{NodeRun, Observer};
pub use functional::{CallInputs, Input, InputShape, LayerExt, SharedLayer, SymbolicTensor};
pub use limits::ConfigLimits;
pub(crate) use model::{sum_penalties, Producer};
pub use model::{BuildOptions, LayerRef, Model, ModelInputs, WeightSnapshot};
pub use sequential::{Sequential, SequentialItem};

/// Keras' `keras.models.clone_model(model)`, spelled as Keras spells it:
/// [`Model::clone_model`] (same architecture, fresh weights, same device).
pub fn clone_model(model: &Model) -> crate::Result<Model> {
    model.clone_model()
}
