//! The fused LSTM and GRU recurrences ([`FastPaths::lstm`],
//! [`FastPaths::gru`] and their gradients): their specs and the defaults
//! built from the [`Backend`] primitives, one step at a time.

use crate::{BinaryOp, Error, FastPaths, MatmulSpec, Result, Shape, Storage, UnaryOp};

/// The sizes of a fused LSTM recurrence ([`FastPaths::lstm`]).
///
/// Its inputs, all `f32` and row-major: `xw` `[steps, batch, 4·units]`,
/// the input projection `x·kernel + bias` of every step in the order the
/// steps run (gate blocks i, f, c, o, as Keras); `u` `[units, 4·units]`,
/// the recurrent kernel; `h0`, `c0` `[batch, units]`, the initial states;
/// and optionally `mask` `[steps, batch]`, where 0 marks a step a row skips
/// (its states carry over unchanged).
///
/// The gates are `σ` (sigmoid) and the cell activation `tanh`, Keras'
/// defaults: each step computes `z = xw[t] + h·u`,
/// `i, f, o = σ(z_i), σ(z_f), σ(z_o)`, `g = tanh(z_c)`,
/// `c' = f·c + i·g`, `h' = o·tanh(c')`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LstmSpec {
    /// Timesteps.
    pub steps: usize,
    /// Rows (sequences).
    pub batch: usize,
    /// State size.
    pub units: usize,
    /// Whether the gates are wanted for a gradient; without, a backend may
    /// return an empty storage in their place and never hold every step's
    /// gates at once (inference).
    pub keep_gates: bool,
}

impl LstmSpec {
    /// `[steps, batch, 2·units]`: the states `h` and `c` after each step,
    /// side by side — what [`FastPaths::lstm`] returns first.
    pub fn states_shape(&self) -> Shape {
        Shape::from([self.steps, self.batch, 2 * self.units])
    }

    /// `[steps, batch, 4·units]`: the input projection, and the activated
    /// gates `i, f, g, o` that [`FastPaths::lstm`] returns second for the
    /// gradient.
    pub fn gates_shape(&self) -> Shape {
        Shape::from([self.steps, self.batch, 4 * self.units])
    }
}

/// What [`FastPaths::lstm_grad`] returns: the gradients of the recurrence's
/// inputs.
pub struct LstmGrads {
    /// `[steps, batch, 4·units]`, of `xw`.
    pub xw: Storage,
    /// `[units, 4·units]`, of the recurrent kernel.
    pub u: Storage,
    /// `[batch, units]`, of `h0`.
    pub h0: Storage,
    /// `[batch, units]`, of `c0`.
    pub c0: Storage,
}

/// Storage-level arithmetic on `[rows, cols]` blocks, for the defaults.
struct Ops<'a, B: ?Sized> {
    b: &'a B,
}

impl<B: FastPaths + ?Sized> Ops<'_, B> {
    fn bin(&self, op: BinaryOp, x: &Storage, y: &Storage, shape: &Shape) -> Result<Storage> {
        self.b.binary(op, x, shape, y, shape, shape)
    }
    fn add(&self, x: &Storage, y: &Storage, s: &Shape) -> Result<Storage> {
        self.bin(BinaryOp::Add, x, y, s)
    }
    fn mul(&self, x: &Storage, y: &Storage, s: &Shape) -> Result<Storage> {
        self.bin(BinaryOp::Mul, x, y, s)
    }
    /// `x · y` with the `[rows, 1]` column `m` broadcast over `s`.
    fn mul_rows(&self, x: &Storage, m: &Storage, s: &Shape) -> Result<Storage> {
        self.b.binary(BinaryOp::Mul, x, s, m, &Shape::from([s.dims()[0], 1]), s)
    }
    /// A copy of `x` (storages are not `Clone`).
    fn copy(&self, x: &Storage, s: &Shape) -> Result<Storage> {
        self.b.binary_scalar(BinaryOp::Mul, x, s, 1.0)
    }
    /// `1 - x`.
    fn one_minus(&self, x: &Storage, s: &Shape) -> Result<Storage> {
        let ones = self.b.full(1.0, 1, crate::DType::F32)?;
        self.b.binary(BinaryOp::Sub, &ones, &Shape::scalar(), x, s, s)
    }
    fn block(&self, x: &Storage, s: &Shape, axis: usize, start: usize, len: usize) -> Result<Storage> {
        self.b.narrow(x, s, axis, start, len)
    }
    /// `x · y` for `x` `[m, k]` (or `kᵀ` with `tx`) and `y` `[k, n]` (or with `ty`).
    #[allow(clippy::too_many_arguments)]
    fn matmul(&self, x: &Storage, y: &Storage, m: usize, n: usize, k: usize, tx: bool, ty: bool) -> Result<Storage> {
        let spec =
            MatmulSpec { batch: 1, m, n, k, trans_lhs: tx, trans_rhs: ty, lhs_batch_stride: 0, rhs_batch_stride: 0 };
        self.b.matmul(x, y, &spec)
    }
}

/// A recurrence has at least one step and `steps × batch × 4·units` fits.
fn check_sizes(op: &'static str, steps: usize, batch: usize, units: usize) -> Result<()> {
    if steps == 0 {
        return Err(Error::InvalidShape {
            op,
            shape: Shape::from([steps, batch, units]),
            reason: "needs at least one step".into(),
        });
    }
    let fits = steps.checked_mul(batch).and_then(|n| n.checked_mul(units)).and_then(|n| n.checked_mul(4));
    if fits.is_none() {
        return Err(Error::SizeOverflow {
            op: op.into(),
            message: format!("{steps} steps × {batch} rows × 4·{units} values do not fit in usize"),
        });
    }
    Ok(())
}

fn check(spec: &LstmSpec) -> Result<()> {
    check_sizes("lstm", spec.steps, spec.batch, spec.units)
}

/// Every step's gates (`[batch, …]` blocks of `shape`) stacked, or an empty
/// storage when none were kept (inference).
fn stack_gates<B: FastPaths + ?Sized>(backend: &B, gates: Vec<Storage>, shape: &Shape) -> Result<Storage> {
    if gates.is_empty() {
        return backend.full(0.0, 0, crate::DType::F32);
    }
    backend.concat(&gates.iter().map(|s| (s, shape)).collect::<Vec<_>>(), 0)
}

/// The default [`FastPaths::lstm`]: per step, a matrix product and the
/// gate arithmetic as separate kernels (the gates only when
/// `spec.keep_gates`).
pub fn lstm<B: FastPaths + ?Sized>(
    backend: &B,
    xw: &Storage,
    u: &Storage,
    h0: &Storage,
    c0: &Storage,
    mask: Option<&Storage>,
    spec: &LstmSpec,
) -> Result<(Storage, Storage)> {
    check(spec)?;
    let ops = Ops { b: backend };
    let LstmSpec { steps, batch, units, .. } = *spec;
    let (all, wide, unit) = (spec.gates_shape(), Shape::from([batch, 4 * units]), Shape::from([batch, units]));
    let masks = Shape::from([steps, batch]);
    let (mut h, mut c) = (ops.copy(h0, &unit)?, ops.copy(c0, &unit)?);
    let (mut states, mut gates) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    for t in 0..steps {
        let x_t = ops.block(xw, &all, 0, t, 1)?;
        let z = ops.add(&x_t, &ops.matmul(&h, u, batch, 4 * units, units, false, false)?, &wide)?;
        let gate = |k: usize, op: UnaryOp| -> Result<Storage> {
            backend.unary(op, &ops.block(&z, &wide, 1, k * units, units)?)
        };
        let (i, f, g, o) = (
            gate(0, UnaryOp::Sigmoid)?,
            gate(1, UnaryOp::Sigmoid)?,
            gate(2, UnaryOp::Tanh)?,
            gate(3, UnaryOp::Sigmoid)?,
        );
        let c_new = ops.add(&ops.mul(&f, &c, &unit)?, &ops.mul(&i, &g, &unit)?, &unit)?;
        let h_new = ops.mul(&o, &backend.unary(UnaryOp::Tanh, &c_new)?, &unit)?;
        match mask {
            None => (h, c) = (h_new, c_new),
            Some(m) => {
                // Rows whose mask is 0 keep their states.
                let m_t = ops.block(m, &masks, 0, t, 1)?;
                let keep = backend.broadcast_to(&m_t, &Shape::from([batch, 1]), &unit)?;
                h = backend.where_cond(&keep, &h_new, &h)?;
                c = backend.where_cond(&keep, &c_new, &c)?;
            }
        }
        states.push(backend.concat(&[(&h, &unit), (&c, &unit)], 1)?);
        if spec.keep_gates {
            gates.push(backend.concat(&[(&i, &unit), (&f, &unit), (&g, &unit), (&o, &unit)], 1)?);
        }
    }
    let pair = Shape::from([batch, 2 * units]);
    let states = backend.concat(&states.iter().map(|s| (s, &pair)).collect::<Vec<_>>(), 0)?;
    Ok((states, stack_gates(backend, gates, &wide)?))
}

/// The default [`FastPaths::lstm_grad`]: backpropagation through time, one
/// step at a time, then one product for the recurrent kernel's gradient.
#[allow(clippy::too_many_arguments)]
pub fn lstm_grad<B: FastPaths + ?Sized>(
    backend: &B,
    dy: &Storage,
    u: &Storage,
    h0: &Storage,
    c0: &Storage,
    mask: Option<&Storage>,
    states: &Storage,
    gates: &Storage,
    spec: &LstmSpec,
) -> Result<LstmGrads> {
    check(spec)?;
    let ops = Ops { b: backend };
    let LstmSpec { steps, batch, units, .. } = *spec;
    let (all_states, all_gates) = (spec.states_shape(), spec.gates_shape());
    let (pair, wide, unit) =
        (Shape::from([batch, 2 * units]), Shape::from([batch, 4 * units]), Shape::from([batch, units]));
    let masks = Shape::from([steps, batch]);
    let zeros = backend.full(0.0, batch * units, crate::DType::F32)?;
    let (mut dh, mut dc) = (ops.copy(&zeros, &unit)?, zeros);
    let mut dz_all: Vec<Option<Storage>> = (0..steps).map(|_| None).collect();
    let state = |t: usize, k: usize| -> Result<Storage> {
        let s = ops.block(states, &all_states, 0, t, 1)?;
        ops.block(&s, &pair, 1, k * units, units)
    };
    for t in (0..steps).rev() {
        let dy_t = ops.block(dy, &all_states, 0, t, 1)?;
        let dh_t = ops.add(&dh, &ops.block(&dy_t, &pair, 1, 0, units)?, &unit)?;
        let dc_t = ops.add(&dc, &ops.block(&dy_t, &pair, 1, units, units)?, &unit)?;
        let g_t = ops.block(gates, &all_gates, 0, t, 1)?;
        let gate = |k: usize| ops.block(&g_t, &wide, 1, k * units, units);
        let (i, f, g, o) = (gate(0)?, gate(1)?, gate(2)?, gate(3)?);
        let earlier;
        let c_prev = if t == 0 {
            c0
        } else {
            earlier = state(t - 1, 1)?;
            &earlier
        };
        let tc = backend.unary(UnaryOp::Tanh, &state(t, 1)?)?;
        // dc += dh · o · (1 - tanh(c)²)
        let dtanh = ops.one_minus(&ops.mul(&tc, &tc, &unit)?, &unit)?;
        let dc_full = ops.add(&dc_t, &ops.mul(&dh_t, &ops.mul(&o, &dtanh, &unit)?, &unit)?, &unit)?;
        let sig = |d: &Storage, s: &Storage| -> Result<Storage> {
            ops.mul(d, &ops.mul(s, &ops.one_minus(s, &unit)?, &unit)?, &unit)
        };
        let dz_i = sig(&ops.mul(&dc_full, &g, &unit)?, &i)?;
        let dz_f = sig(&ops.mul(&dc_full, c_prev, &unit)?, &f)?;
        let dz_g = ops.mul(&ops.mul(&dc_full, &i, &unit)?, &ops.one_minus(&ops.mul(&g, &g, &unit)?, &unit)?, &unit)?;
        let dz_o = sig(&ops.mul(&dh_t, &tc, &unit)?, &o)?;
        let mut dz = backend.concat(&[(&dz_i, &unit), (&dz_f, &unit), (&dz_g, &unit), (&dz_o, &unit)], 1)?;
        let mut dc_prev = ops.mul(&dc_full, &f, &unit)?;
        let mut dh_prev = ops.matmul(&dz, u, batch, units, 4 * units, false, true)?;
        if let Some(m) = mask {
            // A skipped row passes its state gradients straight through.
            let m_t = ops.block(m, &masks, 0, t, 1)?;
            let skip = ops.one_minus(&m_t, &Shape::from([batch]))?;
            dz = ops.mul_rows(&dz, &m_t, &wide)?;
            dh_prev = ops.add(&ops.mul_rows(&dh_prev, &m_t, &unit)?, &ops.mul_rows(&dh_t, &skip, &unit)?, &unit)?;
            dc_prev = ops.add(&ops.mul_rows(&dc_prev, &m_t, &unit)?, &ops.mul_rows(&dc_t, &skip, &unit)?, &unit)?;
        }
        dz_all[t] = Some(dz);
        (dh, dc) = (dh_prev, dc_prev);
    }
    let dz: Vec<Storage> = dz_all.into_iter().flatten().collect();
    let xw = backend.concat(&dz.iter().map(|s| (s, &wide)).collect::<Vec<_>>(), 0)?;
    // du = Σ_t h_{t-1}ᵀ · dz_t: the previous states of every step, stacked.
    let mut prev = vec![ops.copy(h0, &unit)?];
    for t in 0..steps - 1 {
        prev.push(state(t, 0)?);
    }
    let prev = backend.concat(&prev.iter().map(|s| (s, &unit)).collect::<Vec<_>>(), 0)?;
    let du = ops.matmul(&prev, &xw, units, 4 * units, steps * batch, true, false)?;
    Ok(LstmGrads { xw, u: du, h0: dh, c0: dc })
}

/// The sizes of a fused GRU recurrence ([`FastPaths::gru`]), Keras'
/// `reset_after` form (its default, and cuDNN's).
///
/// Its inputs, all `f32` and row-major: `xw` `[steps, batch, 3·units]`,
/// the input projection `x·kernel + input bias` of every step in the order
/// the steps run (gate blocks z, r, h, as Keras); `u` `[units, 3·units]`,
/// the recurrent kernel; optionally `b` `[3·units]`, the recurrent bias;
/// `h0` `[batch, units]`, the initial state; and optionally `mask`
/// `[steps, batch]`, where 0 marks a step a row skips (its state carries
/// over unchanged).
///
/// The gates are `σ` (sigmoid) and the candidate's activation `tanh`:
/// each step computes `a = h·u + b`, `z = σ(xw_z + a_z)`,
/// `r = σ(xw_r + a_r)`, `ĥ = tanh(xw_h + r·a_h)`, `h' = z·h + (1 − z)·ĥ`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GruSpec {
    /// Timesteps.
    pub steps: usize,
    /// Rows (sequences).
    pub batch: usize,
    /// State size.
    pub units: usize,
    /// Whether the gates are wanted for a gradient; without, a backend may
    /// return an empty storage in their place (inference).
    pub keep_gates: bool,
}

impl GruSpec {
    /// `[steps, batch, units]`: the state after each step — what
    /// [`FastPaths::gru`] returns first.
    pub fn states_shape(&self) -> Shape {
        Shape::from([self.steps, self.batch, self.units])
    }

    /// `[steps, batch, 3·units]`: the input projection and its gradient.
    pub fn input_shape(&self) -> Shape {
        Shape::from([self.steps, self.batch, 3 * self.units])
    }

    /// `[steps, batch, 4·units]`: what [`FastPaths::gru`] returns second
    /// for the gradient, per row `z, r, ĥ` and `a_h` (the recurrent
    /// product's candidate block before the reset gate).
    pub fn gates_shape(&self) -> Shape {
        Shape::from([self.steps, self.batch, 4 * self.units])
    }
}

/// What [`FastPaths::gru_grad`] returns: the gradients of the recurrence's
/// inputs.
pub struct GruGrads {
    /// `[steps, batch, 3·units]`, of `xw`.
    pub xw: Storage,
    /// `[units, 3·units]`, of the recurrent kernel.
    pub u: Storage,
    /// `[3·units]`, of the recurrent bias (computed whether or not the
    /// recurrence had one).
    pub b: Storage,
    /// `[batch, units]`, of `h0`.
    pub h0: Storage,
}

fn check_gru(spec: &GruSpec) -> Result<()> {
    check_sizes("gru", spec.steps, spec.batch, spec.units)
}

/// The default [`FastPaths::gru`]: per step, a matrix product and the
/// gate arithmetic as separate kernels (the gates only when
/// `spec.keep_gates`).
pub fn gru<B: FastPaths + ?Sized>(
    backend: &B,
    xw: &Storage,
    u: &Storage,
    b: Option<&Storage>,
    h0: &Storage,
    mask: Option<&Storage>,
    spec: &GruSpec,
) -> Result<(Storage, Storage)> {
    check_gru(spec)?;
    let ops = Ops { b: backend };
    let GruSpec { steps, batch, units, .. } = *spec;
    let (all, wide, unit) = (spec.input_shape(), Shape::from([batch, 3 * units]), Shape::from([batch, units]));
    let masks = Shape::from([steps, batch]);
    let (mut states, mut gates): (Vec<Storage>, _) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    for t in 0..steps {
        let h = states.last().unwrap_or(h0);
        let x_t = ops.block(xw, &all, 0, t, 1)?;
        let mut a = ops.matmul(h, u, batch, 3 * units, units, false, false)?;
        if let Some(b) = b {
            a = backend.binary(BinaryOp::Add, &a, &wide, b, &Shape::from([3 * units]), &wide)?;
        }
        let part = |s: &Storage, k: usize| ops.block(s, &wide, 1, k * units, units);
        let z = backend.unary(UnaryOp::Sigmoid, &ops.add(&part(&x_t, 0)?, &part(&a, 0)?, &unit)?)?;
        let r = backend.unary(UnaryOp::Sigmoid, &ops.add(&part(&x_t, 1)?, &part(&a, 1)?, &unit)?)?;
        let a_h = part(&a, 2)?;
        let hh = backend.unary(UnaryOp::Tanh, &ops.add(&part(&x_t, 2)?, &ops.mul(&r, &a_h, &unit)?, &unit)?)?;
        // z·h + (1 − z)·ĥ = ĥ + z·(h − ĥ)
        let diff = backend.binary(BinaryOp::Sub, h, &unit, &hh, &unit, &unit)?;
        let h_new = ops.add(&hh, &ops.mul(&z, &diff, &unit)?, &unit)?;
        let h_new = match mask {
            None => h_new,
            Some(m) => {
                let m_t = ops.block(m, &masks, 0, t, 1)?;
                let keep = backend.broadcast_to(&m_t, &Shape::from([batch, 1]), &unit)?;
                backend.where_cond(&keep, &h_new, h)?
            }
        };
        if spec.keep_gates {
            gates.push(backend.concat(&[(&z, &unit), (&r, &unit), (&hh, &unit), (&a_h, &unit)], 1)?);
        }
        states.push(h_new);
    }
    let states = backend.concat(&states.iter().map(|s| (s, &unit)).collect::<Vec<_>>(), 0)?;
    Ok((states, stack_gates(backend, gates, &Shape::from([batch, 4 * units]))?))
}

/// The default [`FastPaths::gru_grad`]: backpropagation through time, one
/// step at a time, then one product for the recurrent kernel's gradient
/// and one for the recurrent bias'.
#[allow(clippy::too_many_arguments)]
pub fn gru_grad<B: FastPaths + ?Sized>(
    backend: &B,
    dy: &Storage,
    u: &Storage,
    h0: &Storage,
    mask: Option<&Storage>,
    states: &Storage,
    gates: &Storage,
    spec: &GruSpec,
) -> Result<GruGrads> {
    check_gru(spec)?;
    let ops = Ops { b: backend };
    let GruSpec { steps, batch, units, .. } = *spec;
    let (all_states, all_gates) = (spec.states_shape(), spec.gates_shape());
    let (four, wide, unit) =
        (Shape::from([batch, 4 * units]), Shape::from([batch, 3 * units]), Shape::from([batch, units]));
    let masks = Shape::from([steps, batch]);
    let mut dh = backend.full(0.0, batch * units, crate::DType::F32)?;
    let (mut dx_all, mut da_all) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    let state = |t: usize| ops.block(states, &all_states, 0, t, 1);
    for t in (0..steps).rev() {
        let dh_t = ops.add(&dh, &ops.block(dy, &all_states, 0, t, 1)?, &unit)?;
        let g_t = ops.block(gates, &all_gates, 0, t, 1)?;
        let gate = |k: usize| ops.block(&g_t, &four, 1, k * units, units);
        let (z, r, hh, a_h) = (gate(0)?, gate(1)?, gate(2)?, gate(3)?);
        let earlier;
        let h_prev = if t == 0 {
            h0
        } else {
            earlier = state(t - 1)?;
            &earlier
        };
        let sig = |d: &Storage, s: &Storage| -> Result<Storage> {
            ops.mul(d, &ops.mul(s, &ops.one_minus(s, &unit)?, &unit)?, &unit)
        };
        // ĥ's pre-activation: dh · (1 − z) · (1 − ĥ²)
        let d_hh = ops.mul(
            &ops.mul(&dh_t, &ops.one_minus(&z, &unit)?, &unit)?,
            &ops.one_minus(&ops.mul(&hh, &hh, &unit)?, &unit)?,
            &unit,
        )?;
        let diff = backend.binary(BinaryOp::Sub, h_prev, &unit, &hh, &unit, &unit)?;
        let d_z = sig(&ops.mul(&dh_t, &diff, &unit)?, &z)?;
        let d_r = sig(&ops.mul(&d_hh, &a_h, &unit)?, &r)?;
        let d_ah = ops.mul(&d_hh, &r, &unit)?;
        let mut dx = backend.concat(&[(&d_z, &unit), (&d_r, &unit), (&d_hh, &unit)], 1)?;
        let mut da = backend.concat(&[(&d_z, &unit), (&d_r, &unit), (&d_ah, &unit)], 1)?;
        let mut dh_prev =
            ops.add(&ops.mul(&dh_t, &z, &unit)?, &ops.matmul(&da, u, batch, units, 3 * units, false, true)?, &unit)?;
        if let Some(m) = mask {
            // A skipped row passes its state gradient straight through.
            let m_t = ops.block(m, &masks, 0, t, 1)?;
            let skip = ops.one_minus(&m_t, &Shape::from([batch]))?;
            dx = ops.mul_rows(&dx, &m_t, &wide)?;
            da = ops.mul_rows(&da, &m_t, &wide)?;
            dh_prev = ops.add(&ops.mul_rows(&dh_prev, &m_t, &unit)?, &ops.mul_rows(&dh_t, &skip, &unit)?, &unit)?;
        }
        dx_all.push(dx);
        da_all.push(da);
        dh = dh_prev;
    }
    dx_all.reverse();
    da_all.reverse();
    let xw = backend.concat(&dx_all.iter().map(|s| (s, &wide)).collect::<Vec<_>>(), 0)?;
    let da = backend.concat(&da_all.iter().map(|s| (s, &wide)).collect::<Vec<_>>(), 0)?;
    // du = Σ_t h_{t-1}ᵀ · da_t over the previous states of every step, and
    // the bias' gradient the column sums of da (a product with ones).
    let mut prev = vec![ops.copy(h0, &unit)?];
    for t in 0..steps - 1 {
        prev.push(state(t)?);
    }
    let prev = backend.concat(&prev.iter().map(|s| (s, &unit)).collect::<Vec<_>>(), 0)?;
    let rows = steps * batch;
    let du = ops.matmul(&prev, &da, units, 3 * units, rows, true, false)?;
    let ones = backend.full(1.0, rows, crate::DType::F32)?;
    let db = ops.matmul(&ones, &da, 1, 3 * units, rows, false, false)?;
    Ok(GruGrads { xw, u: du, b: db, h0: dh })
}
