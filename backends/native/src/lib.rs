//! strata's pure-Rust CPU backend.
//!
//! [`NativeBackend`] implements the [`strata_core::Backend`] kernels on plain
//! host vectors ([`NativeStorage`]): matrix products through the `gemm` crate
//! (runtime-detected SIMD, multi-threaded), elementwise work, reductions and
//! data movement split across threads with `rayon` once they are large enough.
//! There are no C dependencies.
//!
//! Get a device with [`device()`] and build tensors on it:
//!
//! ```
//! use strata_core::{DType, Tensor};
//! # fn main() -> strata_core::Result<()> {
//! let dev = strata_native::device();
//! assert_eq!(dev.name(), "native");
//!
//! let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3], &dev)?;
//! let w = Tensor::new(vec![1.0f32, 0.0, 0.0, 1.0, 1.0, 1.0], [3, 2], &dev)?;
//! let y = x.matmul(&w)?; // [[1 + 3, 2 + 3], [4 + 6, 5 + 6]]
//! assert_eq!(y.to_vec::<f32>()?, vec![4.0, 5.0, 10.0, 11.0]);
//!
//! let p = y.softmax(-1)?.sum(&[-1], false)?; // each row sums to one
//! for v in p.to_vec::<f32>()? {
//!     assert!((v - 1.0).abs() < 1e-6);
//! }
//! let labels = y.argmax(-1, false)?;
//! assert_eq!(labels.dtype(), DType::I64);
//! assert_eq!(labels.to_vec::<i64>()?, vec![1, 1]);
//! # Ok(()) }
//! ```

mod elementwise;
mod layout;
mod math;
mod matmul;
mod pool;
mod recurrence;
mod reduce;
mod storage;
mod update;
mod window;

pub use storage::NativeStorage;

use strata_core::{
    Backend, BinaryOp, ConvSpec, DType, Device, Error, FastPaths, FusedUpdate, GruGrads, GruSpec, LinearActivation,
    LinearSpec, LstmGrads, LstmSpec, MatmulSpec, ReduceOp, Result, Shape, Storage, UnaryOp, UnfoldSpec,
};

use crate::storage::{backend_err, expect_f32, expect_i64, native, native_shaped, probe_alloc, NAME};

/// The pure-Rust CPU backend. The value itself holds nothing (it is `Copy`);
/// kernels work on the calling thread or rayon's current pool, and take their
/// `f32` output buffers from a process-wide pool of freed buffers, which
/// dropped native storages give their memory back to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NativeBackend;

impl NativeBackend {
    /// A new backend (the same as `NativeBackend::default()`).
    pub fn new() -> Self {
        NativeBackend
    }
}

/// A [`Device`] computing on the native CPU backend.
///
/// ```
/// let dev = strata_native::device();
/// assert_eq!(dev.name(), "native");
/// ```
pub fn device() -> Device {
    Device::new(NativeBackend)
}

/// Applies `$body` to the vector inside a [`NativeStorage`] whatever its
/// dtype, wrapping the result back in the same variant.
macro_rules! same_dtype {
    ($x:expr, $v:ident => $body:expr) => {
        match $x {
            NativeStorage::F32($v) => NativeStorage::F32($body),
            NativeStorage::I64($v) => NativeStorage::I64($body),
        }
    };
}

impl Backend for NativeBackend {
    fn name(&self) -> String {
        NAME.to_string()
    }

    fn upload_f32(&self, data: Vec<f32>) -> Result<Storage> {
        Ok(NativeStorage::F32(data).into_storage())
    }

    fn upload_i64(&self, data: Vec<i64>) -> Result<Storage> {
        Ok(NativeStorage::I64(data).into_storage())
    }

    fn download_f32(&self, x: &Storage) -> Result<Vec<f32>> {
        expect_f32("download_f32", native("download_f32", x)?).map(<[f32]>::to_vec)
    }

    fn download_i64(&self, x: &Storage) -> Result<Vec<i64>> {
        expect_i64("download_i64", native("download_i64", x)?).map(<[i64]>::to_vec)
    }

    fn full(&self, value: f64, len: usize, dtype: DType) -> Result<Storage> {
        Ok(elementwise::full(value, len, dtype)?.into_storage())
    }

    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        let x = native(op.name(), x)?;
        Ok(elementwise::unary(op, x)?.into_storage())
    }

    fn binary(
        &self,
        op: BinaryOp,
        lhs: &Storage,
        lhs_shape: &Shape,
        rhs: &Storage,
        rhs_shape: &Shape,
        out: &Shape,
    ) -> Result<Storage> {
        let l = native_shaped(op.name(), lhs, lhs_shape)?;
        let r = native_shaped(op.name(), rhs, rhs_shape)?;
        let fits = Shape::broadcast(op.name(), lhs_shape, rhs_shape).is_ok_and(|s| s == *out);
        if !fits {
            return Err(Error::ShapeMismatch {
                op: op.name(),
                lhs: lhs_shape.clone(),
                rhs: rhs_shape.clone(),
                reason: format!("they do not broadcast to the requested output {out}"),
            });
        }
        probe_alloc(op.name(), out.numel(), l.dtype().size_in_bytes(), out)?;
        let res = elementwise::binary(op, l, lhs_shape.dims(), r, rhs_shape.dims(), out.dims())?;
        Ok(res.into_storage())
    }

    fn reduce(&self, op: ReduceOp, x: &Storage, shape: &Shape, axes: &[usize]) -> Result<Storage> {
        let x = native_shaped(op.name(), x, shape)?;
        Ok(reduce::reduce(op, x, shape.dims(), axes)?.into_storage())
    }

    fn matmul(&self, lhs: &Storage, rhs: &Storage, spec: &MatmulSpec) -> Result<Storage> {
        let l = expect_f32("matmul", native("matmul", lhs)?)?;
        let r = expect_f32("matmul", native("matmul", rhs)?)?;
        let len = spec.batch.saturating_mul(spec.m).saturating_mul(spec.n);
        let out =
            if spec.batch == 1 { Shape::from([spec.m, spec.n]) } else { Shape::from([spec.batch, spec.m, spec.n]) };
        probe_alloc("matmul", len, 4, &out)?;
        Ok(NativeStorage::F32(matmul::matmul(l, r, spec)?).into_storage())
    }

    fn permute(&self, x: &Storage, shape: &Shape, perm: &[usize]) -> Result<Storage> {
        let x = native_shaped("permute", x, shape)?;
        let mut seen = vec![false; shape.rank()];
        let valid = perm.len() == shape.rank()
            && perm.iter().all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(Error::InvalidShape {
                op: "permute",
                shape: shape.clone(),
                reason: format!("{perm:?} is not a permutation of 0..{}", shape.rank()),
            });
        }
        Ok(same_dtype!(x, v => layout::permute(v, shape.dims(), perm)).into_storage())
    }

    fn broadcast_to(&self, x: &Storage, shape: &Shape, out: &Shape) -> Result<Storage> {
        let x = native_shaped("broadcast_to", x, shape)?;
        if !shape.broadcasts_to(out) {
            return Err(Error::ShapeMismatch {
                op: "broadcast_to",
                lhs: shape.clone(),
                rhs: out.clone(),
                reason: "the source does not broadcast to the target".into(),
            });
        }
        probe_alloc("broadcast_to", out.numel(), x.dtype().size_in_bytes(), out)?;
        Ok(same_dtype!(x, v => layout::broadcast_to(v, shape.dims(), out.dims())).into_storage())
    }

    fn narrow(&self, x: &Storage, shape: &Shape, axis: usize, start: usize, len: usize) -> Result<Storage> {
        let x = native_shaped("narrow", x, shape)?;
        let size = shape.dim(axis)?;
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::InvalidShape {
                op: "narrow",
                shape: shape.clone(),
                reason: format!("range {start}..{} exceeds axis {axis} of size {size}", start.saturating_add(len)),
            });
        }
        Ok(same_dtype!(x, v => layout::narrow(v, shape.dims(), axis, start, len)).into_storage())
    }

    fn concat(&self, parts: &[(&Storage, &Shape)], axis: usize) -> Result<Storage> {
        let (_, first_shape) =
            parts.first().ok_or_else(|| Error::invalid("concat", "needs at least one tensor, received none"))?;
        let mut natives = Vec::with_capacity(parts.len());
        for &(s, shape) in parts {
            let n = native_shaped("concat", s, shape)?;
            let fits = shape.rank() == first_shape.rank()
                && axis < shape.rank()
                && (0..shape.rank()).all(|i| i == axis || shape.dims()[i] == first_shape.dims()[i]);
            if !fits {
                return Err(Error::ShapeMismatch {
                    op: "concat",
                    lhs: (*first_shape).clone(),
                    rhs: shape.clone(),
                    reason: format!("all axes but {axis} must match"),
                });
            }
            natives.push((n, shape.dims()));
        }
        let dtype = natives[0].0.dtype();
        if let Some((bad, _)) = natives.iter().find(|(n, _)| n.dtype() != dtype) {
            return Err(Error::DTypeMismatch { op: "concat", expected: dtype, received: bad.dtype() });
        }
        let out = match dtype {
            DType::F32 => {
                let v: Vec<(&[f32], &[usize])> = natives.iter().filter_map(|(n, d)| Some((n.as_f32()?, *d))).collect();
                NativeStorage::F32(layout::concat(&v, axis))
            }
            DType::I64 => {
                let v: Vec<(&[i64], &[usize])> = natives.iter().filter_map(|(n, d)| Some((n.as_i64()?, *d))).collect();
                NativeStorage::I64(layout::concat(&v, axis))
            }
        };
        Ok(out.into_storage())
    }

    fn gather(&self, x: &Storage, shape: &Shape, axis: usize, indices: &Storage) -> Result<Storage> {
        let x = native_shaped("gather", x, shape)?;
        let idx = expect_i64("gather", native("gather", indices)?)?;
        shape.dim(axis)?;
        let idx = layout::check_indices("gather", idx, axis, shape.dims())?;
        Ok(same_dtype!(x, v => layout::gather(v, shape.dims(), axis, &idx)).into_storage())
    }

    fn index_add(&self, x: &Storage, shape: &Shape, axis: usize, indices: &Storage, src: &Storage) -> Result<Storage> {
        let x = native_shaped("index_add", x, shape)?;
        let idx = expect_i64("index_add", native("index_add", indices)?)?;
        let mut src_dims = shape.dims().to_vec();
        *src_dims.get_mut(axis).ok_or_else(|| Error::AxisOutOfRange {
            op: "index_add",
            axis: axis as isize,
            shape: shape.clone(),
        })? = idx.len();
        let src = native_shaped("index_add", src, &Shape::from(src_dims))?;
        let idx = layout::check_indices("index_add", idx, axis, shape.dims())?;
        let out = match (x, src) {
            (NativeStorage::F32(x), NativeStorage::F32(s)) => {
                NativeStorage::F32(layout::index_add(x, shape.dims(), axis, &idx, s, |a, b| a + b))
            }
            (NativeStorage::I64(x), NativeStorage::I64(s)) => {
                NativeStorage::I64(layout::index_add(x, shape.dims(), axis, &idx, s, i64::wrapping_add))
            }
            _ => return Err(Error::DTypeMismatch { op: "index_add", expected: x.dtype(), received: src.dtype() }),
        };
        Ok(out.into_storage())
    }

    fn where_cond(&self, cond: &Storage, on_true: &Storage, on_false: &Storage) -> Result<Storage> {
        let c = native("where", cond)?;
        let t = native("where", on_true)?;
        let f = native("where", on_false)?;
        Ok(elementwise::where_cond(c, t, f)?.into_storage())
    }

    fn cast(&self, x: &Storage, dtype: DType) -> Result<Storage> {
        Ok(elementwise::cast(native("cast", x)?, dtype).into_storage())
    }

    fn unfold(&self, x: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        let x = expect_f32("unfold", native_shaped("unfold", x, &spec.image_shape())?)?;
        let out = spec.patches_shape();
        probe_alloc("unfold", out.numel(), 4, &out)?;
        Ok(NativeStorage::F32(window::unfold(x, spec)).into_storage())
    }

    fn fold(&self, cols: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        let cols = expect_f32("fold", native_shaped("fold", cols, &spec.patches_shape())?)?;
        let out = spec.image_shape();
        probe_alloc("fold", out.numel(), 4, &out)?;
        Ok(NativeStorage::F32(window::fold(cols, spec)).into_storage())
    }
}

impl FastPaths for NativeBackend {
    fn run(&self, f: &mut (dyn FnMut() + Send)) {
        // On a pool thread: the kernels' parallel loops then split work onto
        // an awake sibling instead of waking the pool from outside each time.
        if rayon::current_thread_index().is_some() {
            return f();
        }
        // A one-thread pool still runs every parallel loop on its thread:
        // moving the whole step there is one hand-over instead of one (and a
        // futex wake-up) per kernel.
        if rayon::current_num_threads() < 2 {
            return rayon::scope(|_| f());
        }
        // While `f` runs, the other pool threads stay awake and take each
        // parallel kernel's work as soon as it is split off, instead of
        // falling asleep in the serial stretches between kernels and being
        // woken (a futex round trip) for every one.
        //
        // `f` may panic (a user's layer, loss or callback). The helpers are
        // told to stop whether it returns or unwinds, otherwise the scope
        // would wait for them forever; the panic is caught here and resumed
        // on the calling thread once the scope has ended.
        let done = std::sync::atomic::AtomicBool::new(false);
        let outcome = rayon::scope(|s| {
            for _ in 1..rayon::current_num_threads() {
                s.spawn(|_| {
                    while !done.load(std::sync::atomic::Ordering::Acquire) {
                        if rayon::yield_now() != Some(rayon::Yield::Executed) {
                            std::hint::spin_loop();
                        }
                    }
                });
            }
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut *f));
            done.store(true, std::sync::atomic::Ordering::Release);
            outcome
        });
        if let Err(payload) = outcome {
            std::panic::resume_unwind(payload);
        }
    }

    fn find_non_finite(&self, x: &Storage) -> Result<Option<usize>> {
        use rayon::prelude::*;
        let v = expect_f32("find_non_finite", native("find_non_finite", x)?)?;
        Ok(v.par_chunks(layout::PAR_CHUNK * 8).enumerate().find_map_first(|(i, c)| {
            strata_core::fast_path_defaults::first_non_finite(c).map(|j| i * layout::PAR_CHUNK * 8 + j)
        }))
    }

    fn fused_update(
        &self,
        update: &FusedUpdate,
        param: &mut Storage,
        grad: &Storage,
        slots: &mut [&mut Storage],
    ) -> Result<bool> {
        update::fused_update(update, param, grad, slots)
    }

    fn binary_scalar(&self, op: BinaryOp, x: &Storage, shape: &Shape, scalar: f64) -> Result<Storage> {
        let x = native_shaped(op.name(), x, shape)?;
        Ok(elementwise::binary_scalar(op, x, scalar)?.into_storage())
    }

    fn softmax(&self, x: &Storage, shape: &Shape) -> Result<Storage> {
        let v = expect_f32("softmax", native_shaped("softmax", x, shape)?)?;
        let n = last_dim("softmax", shape)?;
        Ok(NativeStorage::F32(reduce::softmax(v, n)).into_storage())
    }

    fn linear(&self, x: &Storage, w: &Storage, b: Option<&Storage>, spec: &LinearSpec) -> Result<Storage> {
        let x = expect_f32("linear", native("linear", x)?)?;
        let w = expect_f32("linear", native("linear", w)?)?;
        let b = b.map(|b| expect_f32("linear", native("linear", b)?)).transpose()?;
        let len = spec.m.saturating_mul(spec.n);
        probe_alloc("linear", len, 4, &Shape::from([spec.m, spec.n]))?;
        Ok(NativeStorage::F32(matmul::linear(x, w, b, spec)?).into_storage())
    }

    fn conv(&self, x: &Storage, w: &Storage, b: Option<&Storage>, spec: &ConvSpec) -> Result<Storage> {
        const OP: &str = "conv";
        let x = expect_f32(OP, native_shaped(OP, x, &spec.window.image_shape())?)?;
        let lin = spec.linear_spec();
        let w = expect_f32(OP, native_shaped(OP, w, &Shape::from([lin.k, lin.n]))?)?;
        let b = b.map(|b| expect_f32(OP, native_shaped(OP, b, &Shape::from([lin.n]))?)).transpose()?;
        let out = spec.output_shape();
        probe_alloc(OP, out.numel(), 4, &out)?;
        Ok(NativeStorage::F32(window::conv(x, w, b, spec)).into_storage())
    }

    fn conv_input_grad(&self, g: &Storage, w: &Storage, spec: &ConvSpec) -> Result<Storage> {
        const OP: &str = "conv_input_grad";
        let g = expect_f32(OP, native_shaped(OP, g, &spec.output_shape())?)?;
        let lin = spec.linear_spec();
        let w = expect_f32(OP, native_shaped(OP, w, &Shape::from([lin.k, lin.n]))?)?;
        let out = spec.window.image_shape();
        probe_alloc(OP, out.numel(), 4, &out)?;
        Ok(NativeStorage::F32(window::conv_input_grad(g, w, spec)).into_storage())
    }

    fn conv_kernel_grad(&self, x: &Storage, g: &Storage, spec: &ConvSpec) -> Result<Storage> {
        const OP: &str = "conv_kernel_grad";
        let x = expect_f32(OP, native_shaped(OP, x, &spec.window.image_shape())?)?;
        let g = expect_f32(OP, native_shaped(OP, g, &spec.output_shape())?)?;
        Ok(NativeStorage::F32(window::conv_kernel_grad(x, g, spec)).into_storage())
    }

    fn max_pool(&self, x: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        const OP: &str = "max_pool";
        let x = expect_f32(OP, native_shaped(OP, x, &spec.image_shape())?)?;
        let out = spec.pooled_shape();
        probe_alloc(OP, out.numel(), 4, &out)?;
        Ok(NativeStorage::F32(window::max_pool(x, spec)).into_storage())
    }

    fn max_pool_grad(&self, x: &Storage, g: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        const OP: &str = "max_pool_grad";
        let x = expect_f32(OP, native_shaped(OP, x, &spec.image_shape())?)?;
        let g = expect_f32(OP, native_shaped(OP, g, &spec.pooled_shape())?)?;
        let out = spec.image_shape();
        probe_alloc(OP, out.numel(), 4, &out)?;
        Ok(NativeStorage::F32(window::max_pool_grad(x, g, spec)).into_storage())
    }

    fn lstm(
        &self,
        xw: &Storage,
        u: &Storage,
        h0: &Storage,
        c0: &Storage,
        mask: Option<&Storage>,
        spec: &LstmSpec,
    ) -> Result<(Storage, Storage)> {
        const OP: &str = "lstm";
        let [xw, u, h0, c0] = recurrence_args(
            OP,
            [(xw, spec.gates_shape()), (u, lstm_kernel(spec)), (h0, lstm_state(spec)), (c0, lstm_state(spec))],
        )?;
        let mask = recurrence_mask(OP, mask, spec.steps, spec.batch)?;
        probe_alloc(OP, spec.states_shape().numel(), 4, &spec.states_shape())?;
        if spec.keep_gates {
            probe_alloc(OP, spec.gates_shape().numel(), 4, &spec.gates_shape())?;
        }
        let (states, gates) = recurrence::lstm(xw, u, h0, c0, mask, spec);
        Ok((NativeStorage::F32(states).into_storage(), NativeStorage::F32(gates).into_storage()))
    }

    fn lstm_grad(
        &self,
        dy: &Storage,
        u: &Storage,
        h0: &Storage,
        c0: &Storage,
        mask: Option<&Storage>,
        states: &Storage,
        gates: &Storage,
        spec: &LstmSpec,
    ) -> Result<LstmGrads> {
        const OP: &str = "lstm_grad";
        let [dy, u, h0, c0, states, gates] = recurrence_args(
            OP,
            [
                (dy, spec.states_shape()),
                (u, lstm_kernel(spec)),
                (h0, lstm_state(spec)),
                (c0, lstm_state(spec)),
                (states, spec.states_shape()),
                (gates, spec.gates_shape()),
            ],
        )?;
        let mask = recurrence_mask(OP, mask, spec.steps, spec.batch)?;
        probe_alloc(OP, spec.gates_shape().numel(), 4, &spec.gates_shape())?;
        let (xw, u, h0, c0) = recurrence::lstm_grad(dy, u, h0, c0, mask, states, gates, spec);
        let s = |v: Vec<f32>| NativeStorage::F32(v).into_storage();
        Ok(LstmGrads { xw: s(xw), u: s(u), h0: s(h0), c0: s(c0) })
    }

    fn gru(
        &self,
        xw: &Storage,
        u: &Storage,
        b: Option<&Storage>,
        h0: &Storage,
        mask: Option<&Storage>,
        spec: &GruSpec,
    ) -> Result<(Storage, Storage)> {
        const OP: &str = "gru";
        let n = spec.units;
        let [xw, u, h0] = recurrence_args(
            OP,
            [(xw, spec.input_shape()), (u, Shape::from([n, 3 * n])), (h0, Shape::from([spec.batch, n]))],
        )?;
        let b = b.map(|b| expect_f32(OP, native_shaped(OP, b, &Shape::from([3 * n]))?)).transpose()?;
        let mask = recurrence_mask(OP, mask, spec.steps, spec.batch)?;
        probe_alloc(OP, spec.states_shape().numel(), 4, &spec.states_shape())?;
        if spec.keep_gates {
            probe_alloc(OP, spec.gates_shape().numel(), 4, &spec.gates_shape())?;
        }
        let (states, gates) = recurrence::gru(xw, u, b, h0, mask, spec);
        Ok((NativeStorage::F32(states).into_storage(), NativeStorage::F32(gates).into_storage()))
    }

    fn gru_grad(
        &self,
        dy: &Storage,
        u: &Storage,
        h0: &Storage,
        mask: Option<&Storage>,
        states: &Storage,
        gates: &Storage,
        spec: &GruSpec,
    ) -> Result<GruGrads> {
        const OP: &str = "gru_grad";
        let n = spec.units;
        let [dy, u, h0, states, gates] = recurrence_args(
            OP,
            [
                (dy, spec.states_shape()),
                (u, Shape::from([n, 3 * n])),
                (h0, Shape::from([spec.batch, n])),
                (states, spec.states_shape()),
                (gates, spec.gates_shape()),
            ],
        )?;
        let mask = recurrence_mask(OP, mask, spec.steps, spec.batch)?;
        // The two per-step gradients it holds at once, 6·units per row.
        probe_alloc(OP, 2 * spec.input_shape().numel(), 4, &spec.input_shape())?;
        let (xw, u, b, h0) = recurrence::gru_grad(dy, u, h0, mask, states, gates, spec);
        let s = |v: Vec<f32>| NativeStorage::F32(v).into_storage();
        Ok(GruGrads { xw: s(xw), u: s(u), b: s(b), h0: s(h0) })
    }

    fn activation_grad(&self, act: LinearActivation, y: &Storage, g: &Storage, shape: &Shape) -> Result<Storage> {
        let y = expect_f32("activation_grad", native_shaped("activation_grad", y, shape)?)?;
        let g = expect_f32("activation_grad", native_shaped("activation_grad", g, shape)?)?;
        Ok(NativeStorage::F32(elementwise::activation_grad(act, y, g)).into_storage())
    }

    fn softmax_cross_entropy(&self, z: &Storage, shape: &Shape, targets: &Storage) -> Result<Storage> {
        let (z, rows, n, t) = ce_args("softmax_cross_entropy", z, shape, targets)?;
        Ok(NativeStorage::F32(reduce::softmax_cross_entropy(z, rows, n, t)).into_storage())
    }

    fn softmax_cross_entropy_grad(
        &self,
        z: &Storage,
        shape: &Shape,
        targets: &Storage,
        g: &Storage,
    ) -> Result<Storage> {
        const OP: &str = "softmax_cross_entropy_grad";
        let (z, rows, n, t) = ce_args(OP, z, shape, targets)?;
        let g = expect_f32(OP, native(OP, g)?)?;
        if g.len() != rows {
            return Err(backend_err(format!("{OP}: {} row gradients for {rows} rows", g.len())));
        }
        Ok(NativeStorage::F32(reduce::softmax_cross_entropy_grad(z, rows, n, t, g)).into_storage())
    }

    fn log_softmax(&self, x: &Storage, shape: &Shape) -> Result<Storage> {
        let v = expect_f32("log_softmax", native_shaped("log_softmax", x, shape)?)?;
        let n = last_dim("log_softmax", shape)?;
        Ok(NativeStorage::F32(reduce::log_softmax(v, n)).into_storage())
    }
}

/// `[units, 4·units]`: an LSTM's recurrent kernel.
fn lstm_kernel(spec: &LstmSpec) -> Shape {
    Shape::from([spec.units, 4 * spec.units])
}

/// `[batch, units]`: an LSTM's state.
fn lstm_state(spec: &LstmSpec) -> Shape {
    Shape::from([spec.batch, spec.units])
}

/// The `f32` values of a recurrence kernel's operands, each checked against
/// its shape; a spec without steps is an error.
fn recurrence_args<'a, const N: usize>(op: &'static str, args: [(&'a Storage, Shape); N]) -> Result<[&'a [f32]; N]> {
    let mut out = [&[][..]; N];
    for (slot, (s, shape)) in out.iter_mut().zip(&args) {
        *slot = expect_f32(op, native_shaped(op, s, shape)?)?;
    }
    if let Some((_, shape)) = args.first() {
        if shape.dims().first() == Some(&0) {
            return Err(backend_err(format!("{op}: needs at least one step, received {shape}")));
        }
    }
    Ok(out)
}

/// A recurrence's optional `[steps, batch]` mask.
fn recurrence_mask<'a>(
    op: &'static str,
    mask: Option<&'a Storage>,
    steps: usize,
    batch: usize,
) -> Result<Option<&'a [f32]>> {
    mask.map(|m| expect_f32(op, native_shaped(op, m, &Shape::from([steps, batch]))?)).transpose()
}

/// The cross-entropy kernels' arguments: the logits of `shape`, their rows
/// and classes, and the targets (`f32` rows of `shape`, or one `i64` id per
/// row).
fn ce_args<'a>(
    op: &'static str,
    z: &'a Storage,
    shape: &Shape,
    t: &'a Storage,
) -> Result<(&'a [f32], usize, usize, reduce::Targets<'a>)> {
    let z = expect_f32(op, native_shaped(op, z, shape)?)?;
    let n = last_dim(op, shape)?;
    let rows = shape.numel() / n.max(1);
    let t = native(op, t)?;
    let (len, want, targets) = match t {
        NativeStorage::F32(v) => (v.len(), shape.numel(), reduce::Targets::Dense(v)),
        NativeStorage::I64(v) => (v.len(), rows, reduce::Targets::Ids(v)),
    };
    if len != want {
        return Err(backend_err(format!("{op}: {len} target values for logits of shape {shape}")));
    }
    Ok((z, rows, n, targets))
}

/// The size of the last axis, or an error for a rank-0 shape.
fn last_dim(op: &'static str, shape: &Shape) -> Result<usize> {
    shape.dims().last().copied().ok_or_else(|| Error::InvalidShape {
        op,
        shape: shape.clone(),
        reason: "needs at least one axis".into(),
    })
}
