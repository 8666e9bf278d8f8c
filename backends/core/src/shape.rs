//! Tensor shapes and the broadcasting rule.

use std::fmt;

use crate::{Error, Result};

/// The dimensions of a tensor, outermost first (row-major).
///
/// A rank-0 shape `[]` is a scalar with one element.
///
/// ```
/// use strata_core::Shape;
/// let s = Shape::from([2, 3]);
/// assert_eq!(s.numel(), 6);
/// assert_eq!(s.to_string(), "[2, 3]");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Shape(Vec<usize>);

impl Shape {
    /// A shape from its dimensions.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        Shape(dims.into())
    }

    /// The rank-0 (scalar) shape.
    pub fn scalar() -> Self {
        Shape(Vec::new())
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar), for a shape already known to be
    /// valid (every tensor's shape is). For a shape from user input use
    /// [`checked_numel`](Self::checked_numel): where the count does not fit
    /// in `usize` this saturates at `usize::MAX` rather than wrapping.
    pub fn numel(&self) -> usize {
        self.count().unwrap_or(usize::MAX)
    }

    /// Number of elements, or an [`Error::SizeOverflow`] naming `op` and the
    /// shape when the count does not fit in `usize`. A shape with a zero
    /// dimension has no elements, whatever its other dimensions.
    ///
    /// ```
    /// use strata_core::Shape;
    /// assert_eq!(Shape::from([2, 3]).checked_numel("zeros").unwrap(), 6);
    /// assert_eq!(Shape::from([usize::MAX, 2, 0]).checked_numel("zeros").unwrap(), 0);
    /// let err = Shape::from([1 << 32, 1 << 32]).checked_numel("zeros").unwrap_err();
    /// assert!(err.to_string().starts_with("zeros: shape [4294967296, 4294967296]"));
    /// ```
    pub fn checked_numel(&self, op: &str) -> Result<usize> {
        self.count().ok_or_else(|| Error::SizeOverflow {
            op: op.to_string(),
            message: format!("shape {self} has more elements than fit in usize ({})", usize::MAX),
        })
    }

    /// The element count, `None` when it overflows `usize`.
    fn count(&self) -> Option<usize> {
        if self.0.contains(&0) {
            return Some(0);
        }
        self.0.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
    }

    /// Size of dimension `axis`; errors name the shape when `axis` is out of range.
    pub fn dim(&self, axis: usize) -> Result<usize> {
        self.0.get(axis).copied().ok_or_else(|| Error::AxisOutOfRange {
            op: "dim",
            axis: axis as isize,
            shape: self.clone(),
        })
    }

    /// Row-major (C-contiguous) strides in elements (for a valid shape;
    /// they saturate rather than wrap where the count would overflow).
    pub fn strides(&self) -> Vec<usize> {
        let mut strides = vec![0; self.0.len()];
        let mut acc: usize = 1;
        for (s, d) in strides.iter_mut().zip(&self.0).rev() {
            *s = acc;
            acc = acc.saturating_mul(*d);
        }
        strides
    }

    /// Resolves a possibly negative axis (`-1` is the last) against this rank.
    pub fn axis(&self, op: &'static str, axis: isize) -> Result<usize> {
        let rank = self.rank() as isize;
        let a = if axis < 0 { axis + rank } else { axis };
        if a < 0 || a >= rank {
            return Err(Error::AxisOutOfRange { op, axis, shape: self.clone() });
        }
        Ok(a as usize)
    }

    /// The shape both operands broadcast to under NumPy rules, or an error naming both.
    ///
    /// ```
    /// use strata_core::Shape;
    /// let s = Shape::broadcast("add", &Shape::from([4, 1, 3]), &Shape::from([2, 1])).unwrap();
    /// assert_eq!(s, Shape::from([4, 2, 3]));
    /// assert!(Shape::broadcast("add", &Shape::from([2, 3]), &Shape::from([4])).is_err());
    /// // An output with more elements than `usize` counts is a SizeOverflow.
    /// assert!(Shape::broadcast("add", &Shape::from([1 << 40, 1]), &Shape::from([1 << 40])).is_err());
    /// ```
    pub fn broadcast(op: &'static str, lhs: &Shape, rhs: &Shape) -> Result<Shape> {
        let rank = lhs.rank().max(rhs.rank());
        let mut out = vec![0; rank];
        for (i, o) in out.iter_mut().enumerate() {
            let l = dim_from_right(lhs, rank - 1 - i);
            let r = dim_from_right(rhs, rank - 1 - i);
            *o = if l == r || r == 1 {
                l
            } else if l == 1 {
                r
            } else {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: lhs.clone(),
                    rhs: rhs.clone(),
                    reason: "shapes cannot be broadcast together".into(),
                });
            };
        }
        let out = Shape(out);
        out.checked_numel(op)?;
        Ok(out)
    }

    /// Whether `self` can be broadcast to `target` (NumPy rules, one direction).
    pub fn broadcasts_to(&self, target: &Shape) -> bool {
        if self.rank() > target.rank() {
            return false;
        }
        (0..self.rank()).all(|i| {
            let d = dim_from_right(self, i);
            d == 1 || d == dim_from_right(target, i)
        })
    }
}

/// The dimension `i` places from the right, 1 when the shape is shorter.
fn dim_from_right(s: &Shape, i: usize) -> usize {
    if i < s.rank() {
        s.0[s.rank() - 1 - i]
    } else {
        1
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{d}")?;
        }
        write!(f, "]")
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<Vec<usize>> for Shape {
    fn from(v: Vec<usize>) -> Self {
        Shape(v)
    }
}

impl From<&[usize]> for Shape {
    fn from(v: &[usize]) -> Self {
        Shape(v.to_vec())
    }
}

impl<const N: usize> From<[usize; N]> for Shape {
    fn from(v: [usize; N]) -> Self {
        Shape(v.to_vec())
    }
}

impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Self {
        s.clone()
    }
}

impl From<()> for Shape {
    fn from(_: ()) -> Self {
        Shape::scalar()
    }
}

impl From<usize> for Shape {
    fn from(d: usize) -> Self {
        Shape(vec![d])
    }
}
