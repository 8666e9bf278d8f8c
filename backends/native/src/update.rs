//! Fused, in-place optimizer updates: one pass over the weight, its gradient
//! and its slots, split across threads for large weights, with no buffer
//! allocated. Each element goes through [`FusedUpdate::apply`], the
//! reference formula, so the result has the same bits as the unfused ops.

use rayon::prelude::*;
use strata_core::{FusedUpdate, Result, Storage};

use crate::layout::simd;
use crate::storage::{backend_err, NativeStorage};

/// Weights with at least this many elements are updated on several threads.
const PAR_MIN: usize = 16 * 1024;
/// Elements per task.
const CHUNK: usize = 4 * 1024;

fn f32_mut<'a>(s: &'a mut Storage, what: &str) -> Result<&'a mut Vec<f32>> {
    match s.downcast_mut::<NativeStorage>() {
        Some(NativeStorage::F32(v)) => Ok(v),
        _ => Err(backend_err(format!("fused_update: the {what} is not a native f32 buffer"))),
    }
}

#[inline(always)]
fn update0(u: &FusedUpdate, w: &mut [f32], g: &[f32]) {
    for (w, &g) in w.iter_mut().zip(g) {
        u.apply(w, g, &mut []);
    }
}

#[inline(always)]
fn update1(u: &FusedUpdate, w: &mut [f32], g: &[f32], m: &mut [f32]) {
    for ((w, &g), m) in w.iter_mut().zip(g).zip(m) {
        let mut s = [*m];
        u.apply(w, g, &mut s);
        *m = s[0];
    }
}

#[inline(always)]
fn update2(u: &FusedUpdate, w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32]) {
    for (((w, &g), m), v) in w.iter_mut().zip(g).zip(m).zip(v) {
        let mut s = [*m, *v];
        u.apply(w, g, &mut s);
        *m = s[0];
        *v = s[1];
    }
}

/// The native [`FastPaths::fused_update`](strata_core::FastPaths::fused_update).
pub(crate) fn fused_update(
    u: &FusedUpdate,
    param: &mut Storage,
    grad: &Storage,
    slots: &mut [&mut Storage],
) -> Result<bool> {
    let g = match grad.downcast_ref::<NativeStorage>() {
        Some(NativeStorage::F32(g)) => g.as_slice(),
        _ => return Err(backend_err("fused_update: the gradient is not a native f32 buffer")),
    };
    let w = f32_mut(param, "weight")?;
    let n = w.len();
    if g.len() != n || slots.len() != u.slots() {
        return Err(backend_err(format!(
            "fused_update: weight of {n}, gradient of {}, {} slot(s) for {u:?}",
            g.len(),
            slots.len()
        )));
    }
    // Small weights are one chunk, which rayon runs on this thread.
    let chunk = if n >= PAR_MIN && rayon::current_num_threads() > 1 { CHUNK } else { n.max(1) };
    match slots {
        [] => w.par_chunks_mut(chunk).zip(g.par_chunks(chunk)).for_each(|(w, g)| {
            simd(
                #[inline(always)]
                || update0(u, w, g),
            )
        }),
        [m] => {
            let m = f32_mut(m, "slot")?;
            if m.len() != n {
                return Err(backend_err(format!("fused_update: slot of {} for a weight of {n}", m.len())));
            }
            w.par_chunks_mut(chunk).zip(g.par_chunks(chunk)).zip(m.par_chunks_mut(chunk)).for_each(|((w, g), m)| {
                simd(
                    #[inline(always)]
                    || update1(u, w, g, m),
                )
            });
        }
        [m, v] => {
            let m = f32_mut(m, "slot")?;
            let v = f32_mut(v, "slot")?;
            if m.len() != n || v.len() != n {
                return Err(backend_err(format!(
                    "fused_update: slots of {} and {} for a weight of {n}",
                    m.len(),
                    v.len()
                )));
            }
            w.par_chunks_mut(chunk)
                .zip(g.par_chunks(chunk))
                .zip(m.par_chunks_mut(chunk).zip(v.par_chunks_mut(chunk)))
                .for_each(|((w, g), (m, v))| {
                    simd(
                        #[inline(always)]
                        || update2(u, w, g, m, v),
                    )
                });
        }
        _ => return Ok(false),
    }
    Ok(true)
}
