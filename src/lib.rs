#![doc = include_str!("../README.md")]

pub use strata_core::{
    grad_enabled, no_grad, Backend, BinaryOp, DType, Device, Element, Error, FastPaths, Gradients, MatmulSpec,
    NoGradGuard, ReduceOp, Result, Rng, Shape, Storage, Tensor, TensorId, UnaryOp,
};

pub mod backend;
pub mod callbacks;
pub mod data;
pub mod datasets;
#[cfg(feature = "keras")]
pub mod keras;
pub mod losses;
pub mod metrics;
pub mod models;
pub mod optimizers;
pub mod saving;
pub mod testing;
pub mod text;
pub mod trainers;
mod utils;
pub mod visualization;

pub use callbacks::{History, Logs};
pub use losses::{CustomLoss, IntoLoss, Loss};
pub use metrics::{
    resolve_metric, Auc, BinaryAccuracy, CategoricalAccuracy, MeanAbsoluteError, MeanSquaredError, Metric, MetricSpec,
    Precision, Recall, RootMeanSquaredError, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
};
pub use models::{
    BuildOptions, CallInputs, Input, InputShape, LayerExt, LayerRef, Model, ModelInputs, Sequential, SequentialItem,
    SharedLayer, SymbolicTensor, WeightSnapshot,
};
pub use optimizers::{
    optimizer_from_config, optimizer_from_name, Adagrad, Adam, AdamW, CosineDecay, ExponentialDecay, IntoOptimizer,
    LearningRate, LearningRateSchedule, Optimizer, PiecewiseConstantDecay, RMSprop, SGD,
};
pub use saving::{
    load_model, load_model_on, load_model_with, LoadOptions, LoadReport, LoadWeightsOptions, SaveDType, SaveOptions,
    SkipReason, Skipped, Transform, FORMAT, FORMAT_VERSION,
};
pub use trainers::{
    EvaluateOptions, FitOptions, Inspection, IntoLosses, IntoMetrics, LayerStats, Losses, Metrics, PredictOptions,
    WeightStats,
};
pub use utils::set_random_seed;

/// Layers, activations, initializers and the [`Layer`](layers::Layer) trait
/// (the `strata-layers` crate).
pub mod layers {
    pub use strata_layers::*;
}

/// The names most programs need, in one import.
pub mod prelude {
    pub use crate::backend;
    pub use crate::callbacks::{
        Callback, CallbackContext, CsvLogger, EarlyStopping, LambdaCallback, LearningRateScheduler, ModelCheckpoint,
        ReduceLROnPlateau, TerminateOnNaN,
    };
    pub use crate::optimizers::{
        schedules, Adagrad, Adam, AdamW, CosineDecay, ExponentialDecay, IntoOptimizer, LearningRate,
        LearningRateSchedule, Optimizer, PiecewiseConstantDecay, RMSprop, SGD,
    };
    pub use crate::{
        Auc, BinaryAccuracy, CategoricalAccuracy, MeanAbsoluteError, MeanSquaredError, Metric, MetricSpec, Precision,
        Recall, RootMeanSquaredError, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
        TopKCategoricalAccuracy,
    };
    pub use crate::{
        BuildOptions, CustomLoss, EvaluateOptions, FitOptions, History, Input, LayerExt, Logs, Loss, Losses, Metrics,
        Model, PredictOptions, Sequential, SharedLayer, SymbolicTensor,
    };
    pub use strata_core::{no_grad, DType, Device, Error, Result, Rng, Shape, Tensor};
    pub use strata_layers::{
        Activation, ActivationLayer, Add, AveragePooling1D, AveragePooling2D, BatchNormalization, BuildContext,
        CallContext, Concatenate, Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Dense, DepthwiseConv2D, Dropout,
        Embedding, Flatten, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D,
        GroupNormalization, Initializer, Lambda, Layer, LayerClass, LayerNormalization, Masking, MaxPooling1D,
        MaxPooling2D, Regularizer, Reshape, SeparableConv2D, SpatialDropout1D, SpatialDropout2D, TensorSpec, Weight,
    };
    pub use strata_layers::{
        AdditiveAttention, Attention, Average, Bidirectional, Dot, Maximum, MergeMode, Minimum, MultiHeadAttention,
        Multiply, Permute, RepeatVector, SimpleRNN, Subtract, TimeDistributed, GRU, LSTM,
    };
    pub use strata_layers::{
        CenterCrop, Cropping1D, Cropping2D, Normalization, RandomContrast, RandomFlip, RandomRotation,
        RandomTranslation, RandomZoom, Rescaling, Resizing, UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D,
    };
}
