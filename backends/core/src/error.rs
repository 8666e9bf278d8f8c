//! The one error type of strata.

use crate::{DType, Shape};

/// Everything that can go wrong in strata, with messages that say what was
/// expected and what was received.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Two operands whose shapes do not fit together.
    #[error("{op}: incompatible shapes {lhs} and {rhs}: {reason}")]
    ShapeMismatch {
        /// The operation.
        op: &'static str,
        /// Shape of the first operand.
        lhs: Shape,
        /// Shape of the second operand.
        rhs: Shape,
        /// Why they do not fit.
        reason: String,
    },
    /// One operand whose shape is wrong for the operation.
    #[error("{op}: invalid shape {shape}: {reason}")]
    InvalidShape {
        /// The operation.
        op: &'static str,
        /// The shape received.
        shape: Shape,
        /// What was expected.
        reason: String,
    },
    /// A dtype other than the one the operation needs.
    #[error("{op}: expected dtype {expected}, received {received}")]
    DTypeMismatch {
        /// The operation.
        op: &'static str,
        /// The dtype needed.
        expected: DType,
        /// The dtype received.
        received: DType,
    },
    /// An axis outside `-rank..rank`.
    #[error("{op}: axis {axis} is out of range for shape {shape} (rank {})", shape.rank())]
    AxisOutOfRange {
        /// The operation.
        op: &'static str,
        /// The axis received.
        axis: isize,
        /// The tensor's shape.
        shape: Shape,
    },
    /// An index outside `0..size` along an axis.
    #[error("{op}: index {index} is out of range for axis {axis} of size {size} (shape {shape})")]
    IndexOutOfRange {
        /// The operation.
        op: &'static str,
        /// The offending index.
        index: i64,
        /// The axis indexed.
        axis: usize,
        /// The size of that axis.
        size: usize,
        /// The shape of the indexed tensor.
        shape: Shape,
    },
    /// A data buffer whose length does not match the requested shape.
    #[error("{op}: {len} values cannot fill shape {shape} ({} elements)", shape.numel())]
    DataLength {
        /// The operation.
        op: &'static str,
        /// Number of values received.
        len: usize,
        /// The shape requested.
        shape: Shape,
    },
    /// Tensors that live on different devices.
    #[error("{op}: tensors are on different devices ({lhs} and {rhs})")]
    DeviceMismatch {
        /// The operation.
        op: &'static str,
        /// Device of the first tensor.
        lhs: String,
        /// Device of the second tensor.
        rhs: String,
    },
    /// A backend name that is not known or not built in.
    #[error("unknown or unavailable backend `{name}`; available: {available}")]
    UnknownBackend {
        /// The name asked for.
        name: String,
        /// The names that would have worked, comma separated.
        available: String,
    },
    /// A backend kernel failed.
    #[error("backend {backend}: {message}")]
    Backend {
        /// The backend's name.
        backend: String,
        /// The backend's message.
        message: String,
    },
    /// Autodiff misuse (backward on a non-scalar, on a tensor without a graph, ...).
    #[error("backward: {0}")]
    Autodiff(String),
    /// An invalid argument value.
    #[error("{op}: {message}")]
    InvalidArgument {
        /// The operation or component.
        op: &'static str,
        /// What was wrong, with the value received.
        message: String,
    },
    /// A plain message, raised by code that does not know its own name yet
    /// (a layer's `build` or `call`; the model wraps it in [`Error::Layer`]).
    #[error("{0}")]
    Message(String),

    /// A NaN or an infinity found by `check_numerics` while training, with
    /// where it first appeared (the layer, the loss or a gradient).
    #[error("check_numerics: {0}")]
    NonFinite(String),

    /// An error raised by, or about, one layer of a model.
    #[error("{layer}: {source}")]
    Layer {
        /// The layer, as `name (ClassName)`.
        layer: String,
        /// What went wrong.
        source: Box<Error>,
    },
    /// An error while reading one item of a dataset: a batch, a file, a row
    /// (`item` is `"batch 3 of pass 0"`, a path, ...).
    #[error("{item}: {source}")]
    Data {
        /// The item being read.
        item: String,
        /// What went wrong.
        source: Box<Error>,
    },
    /// A model graph that cannot be built (disconnected, cyclic, duplicate names, ...).
    #[error("model graph: {0}")]
    Graph(String),
    /// A configuration (layer or model JSON) that cannot be read.
    #[error("config: {0}")]
    Config(String),
    /// Reading or writing a file failed; `source` is the operating system's
    /// error, so callers can match on its [`kind`](std::io::Error::kind)
    /// (`NotFound`, `PermissionDenied`, ...).
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: std::path::PathBuf,
        /// What was being done (`read`, `write`, `rename to ...`).
        action: String,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A file that was read but is not valid in its format (a truncated or
    /// corrupt safetensors, IDX, CSV or JSON file); `source` keeps the
    /// parser's own error where there is one.
    #[error("{}: {message}", path.display())]
    Format {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        message: String,
        /// The format library's error (safetensors, serde_json, ...), if any.
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// A size that does not fit: an element count or byte size that
    /// overflows `usize`, or an allocation the machine cannot make.
    #[error("{op}: {message}")]
    SizeOverflow {
        /// The operation or layer.
        op: String,
        /// The sizes involved, as received.
        message: String,
    },
}

/// `Result` with strata's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Shorthand for [`Error::Message`].
    pub fn msg(message: impl Into<String>) -> Self {
        Error::Message(message.into())
    }

    /// Wraps `self` as raised by `layer` (`"dense_2 (Dense)"`).
    pub fn in_layer(self, layer: impl Into<String>) -> Self {
        Error::Layer { layer: layer.into(), source: Box::new(self) }
    }

    /// Wraps `self` as raised while reading `item` of a dataset.
    pub fn in_item(self, item: impl Into<String>) -> Self {
        Error::Data { item: item.into(), source: Box::new(self) }
    }

    /// An [`Error::Io`] for `action` on `path`.
    pub fn io(path: impl Into<std::path::PathBuf>, action: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), action: action.into(), source }
    }

    /// An [`Error::Format`] for `path`, keeping the parser's error as its source.
    pub fn format(
        path: impl Into<std::path::PathBuf>,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Format { path: path.into(), message: message.into(), source }
    }

    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(op: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidArgument { op, message: message.into() }
    }
}
