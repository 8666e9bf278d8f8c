//! Batched matrix products (see [`MatmulSpec`]).
//!
//! Transposed operands are candle views (`.t()`, `transpose(1, 2)`): candle's
//! CPU gemm and cuBLAS read the strides directly, nothing is copied. A batch
//! stride of 0 becomes a rank-2 operand: against a batched, untransposed lhs
//! the batch folds into the rows of one large product; otherwise the matrix
//! is broadcast (a stride-0 view, again without a copy).

use candle_core::Tensor;
use strata_core::{Backend, DType, MatmulSpec, Result, Storage};

use crate::CandleBackend;

/// One operand: a single matrix (batch stride 0, or a batch of one) or a
/// `batch × rows × cols` stack, as stored (before any transpose).
enum Operand {
    Single(Tensor),
    Batched(Tensor),
}

impl CandleBackend {
    pub(crate) fn matmul_impl(&self, lhs: &Storage, rhs: &Storage, spec: &MatmulSpec) -> Result<Storage> {
        self.expect_dtype("matmul", lhs, DType::F32)?;
        self.expect_dtype("matmul", rhs, DType::F32)?;
        let MatmulSpec { batch, m, n, k, trans_lhs, trans_rhs, lhs_batch_stride, rhs_batch_stride } = *spec;
        let out_len = batch * m * n;
        if out_len == 0 {
            return self.empty(DType::F32);
        }
        if k == 0 {
            return self.full(0.0, out_len, DType::F32);
        }
        let l_dims = if trans_lhs { (k, m) } else { (m, k) };
        let r_dims = if trans_rhs { (n, k) } else { (k, n) };
        let l = self.operand("lhs", self.tensor(lhs)?, batch, lhs_batch_stride, l_dims)?;
        let r = self.operand("rhs", self.tensor(rhs)?, batch, rhs_batch_stride, r_dims)?;
        let t2 = |t: &Tensor, trans: bool| if trans { t.t() } else { Ok(t.clone()) };
        let t3 = |t: &Tensor, trans: bool| if trans { t.transpose(1, 2) } else { Ok(t.clone()) };
        let out = match (&l, &r) {
            (Operand::Single(a), Operand::Single(b)) => {
                let p = self.c(t2(a, trans_lhs).and_then(|a| a.matmul(&t2(b, trans_rhs)?)))?;
                if batch == 1 {
                    p
                } else {
                    self.c(p.unsqueeze(0).and_then(|p| p.broadcast_as((batch, m, n))))?
                }
            }
            (Operand::Batched(a), Operand::Single(b)) => {
                // Fold the batch into the rows: one (batch·m × k)·(k × n) product.
                // A transposed lhs must be materialised first (its rows are
                // not evenly spaced across batches).
                let a = if trans_lhs { self.c(a.transpose(1, 2).and_then(|a| a.contiguous()))? } else { a.clone() };
                self.c(a.reshape((batch * m, k)).and_then(|a| a.matmul(&t2(b, trans_rhs)?)))?
            }
            (Operand::Single(a), Operand::Batched(b)) => {
                let a = self.c(t2(a, trans_lhs).and_then(|a| a.broadcast_as((batch, m, k))))?;
                self.c(t3(b, trans_rhs).and_then(|b| a.matmul(&b)))?
            }
            (Operand::Batched(a), Operand::Batched(b)) => {
                self.c(t3(a, trans_lhs).and_then(|a| a.matmul(&t3(b, trans_rhs)?)))?
            }
        };
        self.wrap(out)
    }

    /// The operand's matrices from its flat storage.
    fn operand(
        &self,
        which: &str,
        t: &Tensor,
        batch: usize,
        stride: usize,
        (rows, cols): (usize, usize),
    ) -> Result<Operand> {
        let mat = rows * cols;
        let needed = if stride == 0 { mat } else { (batch - 1) * stride + mat };
        let have = t.elem_count();
        if have < needed {
            return Err(self.fail(format!(
                "matmul: {which} holds {have} elements, the spec needs {needed} ({batch} matrices of {rows}x{cols}, batch stride {stride})"
            )));
        }
        let prefix = |len: usize| if have == len { Ok(t.clone()) } else { t.narrow(0, 0, len) };
        if batch == 1 || stride == 0 {
            return Ok(Operand::Single(self.c(prefix(mat).and_then(|t| t.reshape((rows, cols))))?));
        }
        if stride == mat {
            return Ok(Operand::Batched(self.c(prefix(batch * mat).and_then(|t| t.reshape((batch, rows, cols))))?));
        }
        // An unusual stride (gaps or overlaps between matrices): gather the
        // matrices into a fresh stack.
        let parts =
            self.c((0..batch).map(|b| t.narrow(0, b * stride, mat)).collect::<candle_core::Result<Vec<_>>>())?;
        Ok(Operand::Batched(self.c(Tensor::cat(&parts, 0).and_then(|t| t.reshape((batch, rows, cols))))?))
    }
}
