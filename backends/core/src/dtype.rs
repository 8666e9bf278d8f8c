//! Element types.

use std::fmt;

/// The element type of a [`Tensor`](crate::Tensor).
///
/// `F32` holds values (activations, weights, gradients); `I64` holds labels and
/// token ids. Arithmetic on `I64` tensors is supported, but gradients flow only
/// through `F32` tensors.
///
/// In configs (JSON) it is written with Keras' names, `"float32"` and
/// `"int64"`; `"f32"` and `"i64"` are accepted too.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum DType {
    /// 32-bit IEEE float.
    #[serde(rename = "float32", alias = "f32")]
    F32,
    /// 64-bit signed integer (labels, token ids, indices).
    #[serde(rename = "int64", alias = "i64")]
    I64,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::I64 => 8,
        }
    }

    /// Whether the type is a floating-point type (can carry gradients).
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32)
    }

    /// The lower-case name used in messages and configs (`"f32"`, `"i64"`).
    pub fn as_str(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::I64 => "i64",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
