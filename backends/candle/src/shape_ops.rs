//! Data movement: permute, broadcast, narrow, concat, gather, index_add,
//! where and cast.

use candle_core::Tensor;
use strata_core::{DType, Error, Result, Shape, Storage};

use crate::backend::candle_dtype;
use crate::CandleBackend;

impl CandleBackend {
    pub(crate) fn permute_impl(&self, x: &Storage, shape: &Shape, perm: &[usize]) -> Result<Storage> {
        if shape.numel() == 0 {
            return self.empty(x.dtype());
        }
        let t = self.shaped(x, shape)?;
        self.wrap(self.c(t.permute(perm))?)
    }

    pub(crate) fn broadcast_to_impl(&self, x: &Storage, shape: &Shape, out: &Shape) -> Result<Storage> {
        if !shape.broadcasts_to(out) {
            return Err(Error::ShapeMismatch {
                op: "broadcast_to",
                lhs: shape.clone(),
                rhs: out.clone(),
                reason: "the source does not broadcast to the target".into(),
            });
        }
        if out.numel() == 0 {
            return self.empty(x.dtype());
        }
        self.probe_alloc("broadcast_to", out.numel(), x.dtype(), &format_args!("shape {out}"))?;
        let t = self.shaped(x, shape)?;
        self.wrap(self.c(t.broadcast_as(out.dims()))?)
    }

    pub(crate) fn narrow_impl(
        &self,
        x: &Storage,
        shape: &Shape,
        axis: usize,
        start: usize,
        len: usize,
    ) -> Result<Storage> {
        let size = shape.dim(axis)?;
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::InvalidShape {
                op: "narrow",
                shape: shape.clone(),
                reason: format!("range {start}..{} exceeds axis {axis} of size {size}", start.saturating_add(len)),
            });
        }
        if len == 0 || shape.numel() == 0 {
            return self.empty(x.dtype());
        }
        let t = self.shaped(x, shape)?;
        // Always copy: a contiguous narrow (e.g. along axis 0) would otherwise
        // keep the whole source buffer alive.
        self.wrap(self.c(t.narrow(axis, start, len).and_then(|t| t.force_contiguous()))?)
    }

    pub(crate) fn concat_impl(&self, parts: &[(&Storage, &Shape)], axis: usize) -> Result<Storage> {
        let Some(&(first, _)) = parts.first() else {
            return Err(Error::invalid("concat", "needs at least one tensor, received none"));
        };
        let dtype = first.dtype();
        if let Some((s, _)) = parts.iter().find(|(s, _)| s.dtype() != dtype) {
            return Err(Error::DTypeMismatch { op: "concat", expected: dtype, received: s.dtype() });
        }
        // Empty parts contribute nothing (and candle need not see them).
        let tensors = parts
            .iter()
            .filter(|(_, shape)| shape.numel() > 0)
            .map(|(s, shape)| self.shaped(s, shape))
            .collect::<Result<Vec<_>>>()?;
        match tensors.len() {
            0 => self.empty(dtype),
            1 => self.wrap(tensors[0].clone()),
            _ => self.wrap(self.c(Tensor::cat(&tensors, axis))?),
        }
    }

    /// Checks that every index lies in `0..size` (one min and one max
    /// reduction), so candle never sees a bad index.
    fn check_indices(&self, op: &'static str, idx: &Tensor, shape: &Shape, axis: usize) -> Result<()> {
        if idx.elem_count() == 0 {
            return Ok(());
        }
        let size = shape.dim(axis)?;
        let lo = self.c(idx.min(0).and_then(|t| t.to_scalar::<i64>()))?;
        let hi = self.c(idx.max(0).and_then(|t| t.to_scalar::<i64>()))?;
        let bad = if lo < 0 {
            Some(lo)
        } else if hi >= size as i64 {
            Some(hi)
        } else {
            None
        };
        match bad {
            Some(index) => Err(Error::IndexOutOfRange { op, index, axis, size, shape: shape.clone() }),
            None => Ok(()),
        }
    }

    pub(crate) fn gather_impl(&self, x: &Storage, shape: &Shape, axis: usize, indices: &Storage) -> Result<Storage> {
        self.expect_dtype("gather", indices, DType::I64)?;
        let idx = self.tensor(indices)?;
        self.check_indices("gather", idx, shape, axis)?;
        let mut out = shape.dims().to_vec();
        out[axis] = idx.elem_count();
        if out.iter().product::<usize>() == 0 {
            return self.empty(x.dtype());
        }
        let t = self.shaped(x, shape)?;
        self.wrap(self.c(t.index_select(idx, axis))?)
    }

    pub(crate) fn index_add_impl(
        &self,
        x: &Storage,
        shape: &Shape,
        axis: usize,
        indices: &Storage,
        src: &Storage,
    ) -> Result<Storage> {
        self.expect_dtype("index_add", indices, DType::I64)?;
        self.expect_dtype("index_add", src, x.dtype())?;
        let idx = self.tensor(indices)?;
        self.check_indices("index_add", idx, shape, axis)?;
        let mut src_dims = shape.dims().to_vec();
        src_dims[axis] = idx.elem_count();
        let src_shape = Shape::from(src_dims);
        if src.len() != src_shape.numel() {
            return Err(Error::ShapeMismatch {
                op: "index_add",
                lhs: shape.clone(),
                rhs: src_shape,
                reason: format!("src holds {} elements", src.len()),
            });
        }
        if src_shape.numel() == 0 {
            // Nothing to add (this also covers an empty x).
            return self.share(x);
        }
        let t = self.shaped(x, shape)?;
        let s = self.shaped(src, &src_shape)?;
        self.wrap(self.c(t.index_add(idx, &s, axis))?)
    }

    pub(crate) fn where_cond_impl(&self, cond: &Storage, on_true: &Storage, on_false: &Storage) -> Result<Storage> {
        self.expect_dtype("where", on_false, on_true.dtype())?;
        if cond.len() != on_true.len() || on_false.len() != on_true.len() {
            return Err(self.fail(format!(
                "where: storages differ in length (cond {}, on_true {}, on_false {})",
                cond.len(),
                on_true.len(),
                on_false.len()
            )));
        }
        if on_true.is_empty() {
            return self.empty(on_true.dtype());
        }
        let c = self.tensor(cond)?;
        let (t, f) = (self.tensor(on_true)?, self.tensor(on_false)?);
        let r = match cond.dtype() {
            // Candle's where takes integer predicates only; NaN counts as true.
            DType::F32 => c.ne(0f32).and_then(|c| c.where_cond(t, f)),
            DType::I64 => c.where_cond(t, f),
        };
        self.wrap(self.c(r)?)
    }

    pub(crate) fn cast_impl(&self, x: &Storage, dtype: DType) -> Result<Storage> {
        if x.dtype() == dtype {
            return self.share(x);
        }
        let t = self.tensor(x)?;
        if t.elem_count() == 0 {
            return self.empty(dtype);
        }
        self.wrap(self.c(t.to_dtype(candle_dtype(dtype)))?)
    }
}
