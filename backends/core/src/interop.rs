//! Tensors from and to plain Rust data: rows (`Vec<Vec<f32>>`, slices of
//! arrays) and, with the `ndarray` feature, `ndarray` arrays of any rank.

use crate::{Device, Element, Error, Result, Tensor};

impl Tensor {
    /// A `[rows, width]` tensor from equally long rows: `&[Vec<f32>]`,
    /// `&[[f32; 4]]`, `&[&[i64]]`, ... A ragged row is an error naming it.
    ///
    /// ```
    /// # use strata_core::Tensor;
    /// # fn main() -> strata_core::Result<()> {
    /// let dev = strata_native::device();
    /// let t = Tensor::from_rows(&[[1.0f32, 2.0], [3.0, 4.0], [5.0, 6.0]], &dev)?;
    /// assert_eq!(t.dims(), &[3, 2]);
    /// assert_eq!(t.to_rows::<f32>()?, vec![vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]]);
    /// assert!(Tensor::from_rows(&[vec![1.0f32], vec![2.0, 3.0]], &dev).is_err());
    /// # Ok(()) }
    /// ```
    pub fn from_rows<T: Element, R: AsRef<[T]>>(rows: &[R], device: &Device) -> Result<Tensor> {
        let width = rows.first().map_or(0, |r| r.as_ref().len());
        let mut data = Vec::with_capacity(rows.len().saturating_mul(width));
        for (i, r) in rows.iter().enumerate() {
            let r = r.as_ref();
            if r.len() != width {
                return Err(Error::invalid(
                    "Tensor::from_rows",
                    format!("row 0 has {width} values but row {i} has {}; rows must be equally long", r.len()),
                ));
            }
            data.extend_from_slice(r);
        }
        Tensor::new(data, [rows.len(), width], device)
    }

    /// The tensor as rows along axis 0, each row the remaining axes
    /// flattened (predictions `[samples, classes]` as one `Vec` per
    /// sample). A scalar is an error.
    pub fn to_rows<T: Element>(&self) -> Result<Vec<Vec<T>>> {
        let Some(&n) = self.dims().first() else {
            return Err(Error::invalid("Tensor::to_rows", "a scalar has no rows; reshape it to [1] first"));
        };
        let flat = self.to_vec::<T>()?;
        let width = flat.len().checked_div(n).unwrap_or(0);
        if width == 0 {
            return Ok(vec![Vec::new(); n]);
        }
        Ok(flat.chunks(width).map(<[T]>::to_vec).collect())
    }
}

#[cfg(feature = "ndarray")]
mod nd {
    use super::*;
    use ndarray::{ArrayBase, ArrayD, Data, Dimension, IxDyn};

    impl Tensor {
        /// A tensor with the array's shape and values (any rank, any
        /// memory layout; the values are copied in logical order).
        ///
        /// ```
        /// # use strata_core::Tensor;
        /// # fn main() -> strata_core::Result<()> {
        /// let dev = strata_native::device();
        /// let a = ndarray::array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        /// let t = Tensor::from_ndarray(&a.t(), &dev)?; // a transposed view
        /// assert_eq!(t.dims(), &[3, 2]);
        /// assert_eq!(t.to_ndarray::<f32>()?, a.t().into_dyn());
        /// # Ok(()) }
        /// ```
        pub fn from_ndarray<T: Element, S: Data<Elem = T>, D: Dimension>(
            array: &ArrayBase<S, D>,
            device: &Device,
        ) -> Result<Tensor> {
            let shape: Vec<usize> = array.shape().to_vec();
            let data: Vec<T> = array.iter().copied().collect();
            Tensor::new(data, crate::Shape::from(shape), device)
        }

        /// The tensor as an `ndarray` array of its shape (a copy).
        pub fn to_ndarray<T: Element>(&self) -> Result<ArrayD<T>> {
            let data = self.to_vec::<T>()?;
            ArrayD::from_shape_vec(IxDyn(self.dims()), data)
                .map_err(|e| Error::invalid("Tensor::to_ndarray", format!("shape {:?}: {e}", self.dims())))
        }
    }
}
