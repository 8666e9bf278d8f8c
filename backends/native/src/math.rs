//! Scalar math written so that loops over it vectorise.
//!
//! `f32::exp` is a call into the platform's libm, which stops the compiler
//! from vectorising any loop around it; softmax and sigmoid spend nearly all
//! their time there. [`exp`] below is branch-free straight-line arithmetic
//! (Cody–Waite range reduction and the Cephes `expf` polynomial) accurate to
//! about 2 ulp, so loops over it compile to SIMD code.

/// 1.5 · 2²³: adding it rounds an `f32` of magnitude below 2²² to an integer
/// (ties to even) and leaves that integer in the low mantissa bits.
const ROUND_MAGIC: f32 = 12_582_912.0;

/// `e^x` for `f32`, to within about 2 ulp over the whole range.
///
/// Overflows to `+∞` above ~88.72, underflows smoothly through the subnormals
/// to `0` below ~−103.3, `e^−∞ = 0`, and NaN stays NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    exp_with::<false>(x)
}

/// `a · b + c`, fused into one rounding when `FMA` (one instruction where
/// the loop is compiled with FMA, as inside `layout::simd`).
#[inline(always)]
fn madd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}

/// [`exp`], with its polynomial in fused multiply-adds when `FMA`: for the
/// loops compiled with FMA, where it is faster and as accurate (without
/// FMA instructions `mul_add` is a slow library call).
#[inline(always)]
pub(crate) fn exp_with<const FMA: bool>(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that k · LN2_HI is exact for the k that occur.
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Past these bounds the result is +∞ / 0 anyway; clamping keeps k in range
    // (NaN passes through the clamp unchanged).
    let x = x.clamp(-110.0, 89.0);
    let t = x * LOG2E + ROUND_MAGIC;
    let kf = t - ROUND_MAGIC;
    // The integer k sits in the low bits of `t`.
    let k = (t.to_bits() as i32).wrapping_sub(ROUND_MAGIC.to_bits() as i32);
    let r = x - kf * LN2_HI - kf * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = madd::<FMA>(p, r, 1.398_199_9e-3);
    let p = madd::<FMA>(p, r, 8.333_452e-3);
    let p = madd::<FMA>(p, r, 4.166_579_6e-2);
    let p = madd::<FMA>(p, r, 1.666_666_5e-1);
    let p = madd::<FMA>(p, r, 0.5);
    let e = madd::<FMA>(p * r, r, r) + 1.0;
    // Scale by 2^k in two steps so that neither factor leaves the normal
    // range (k runs from −159 to 128).
    // (Wrapping arithmetic only matters for NaN, whose result is NaN anyway.)
    let k1 = k >> 1;
    let k2 = k.wrapping_sub(k1);
    let s1 = f32::from_bits((k1.wrapping_add(127) as u32) << 23);
    let s2 = f32::from_bits((k2.wrapping_add(127) as u32) << 23);
    e * s1 * s2
}

/// Numerically stable logistic sigmoid, branch-free: with `e = e^−|x|`,
/// `1 / (1 + e)` for `x ≥ 0` and `e / (1 + e)` otherwise.
#[inline(always)]
pub(crate) fn sigmoid(x: f32) -> f32 {
    sigmoid_with::<false>(x)
}

/// [`sigmoid`] on [`exp_with`].
#[inline(always)]
pub(crate) fn sigmoid_with<const FMA: bool>(x: f32) -> f32 {
    let e = exp_with::<FMA>(-x.abs());
    let d = 1.0 / (1.0 + e);
    if x >= 0.0 {
        d
    } else {
        e * d
    }
}

/// `tanh(x)` for `f32` (on [`exp_with`]), branch-free so that loops over it vectorise (the
/// LSTM kernels' cell activation): `(1 − e)/(1 + e)` with `e = e^−2|x|`,
/// and the odd series `x − x³/3 + 2x⁵/15` below `|x| = 1/16`, where the
/// difference `1 − e` would lose digits. Within about 1e-7 of `f32::tanh`.
#[inline(always)]
pub(crate) fn tanh_with<const FMA: bool>(x: f32) -> f32 {
    let a = x.abs();
    let e = exp_with::<FMA>(-2.0 * a);
    let big = ((1.0 - e) / (1.0 + e)).copysign(x);
    let x2 = x * x;
    let small = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0)));
    if a < 0.0625 {
        small
    } else {
        big
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        if got == w {
            return 0.0;
        }
        // Distance in units of the last place of the exact value.
        let ulp = (f32::from_bits(w.abs().to_bits() + 1) - w.abs()) as f64;
        (got as f64 - want).abs() / ulp
    }

    /// Both forms: plain and with fused multiply-adds.
    const EXPS: [fn(f32) -> f32; 2] = [exp_with::<false>, exp_with::<true>];
    const SIGMOIDS: [fn(f32) -> f32; 2] = [sigmoid_with::<false>, sigmoid_with::<true>];
    const TANHS: [fn(f32) -> f32; 2] = [tanh_with::<false>, tanh_with::<true>];

    #[test]
    fn exp_is_accurate_across_the_range() {
        for exp in EXPS {
            exp_accurate(exp);
        }
    }

    fn exp_accurate(exp: fn(f32) -> f32) {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.7 {
            let got = exp(x);
            let want = (x as f64).exp();
            let u = ulps(got, want);
            assert!(u <= 3.0, "exp({x}) = {got}, want {want} ({u} ulp)");
            worst = worst.max(u);
            x += 0.001_37;
        }
        assert!(worst <= 3.0);
    }

    #[test]
    fn exp_edge_cases() {
        for exp in EXPS {
            exp_edges(exp);
        }
    }

    fn exp_edges(exp: fn(f32) -> f32) {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert_eq!(exp(88.8), f32::INFINITY);
        assert!(exp(88.72).is_finite());
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-1000.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(1.0), std::f32::consts::E);
        // Subnormal results: close to the true value in absolute terms.
        for x in [-88.0f32, -90.0, -95.0, -100.0, -103.0] {
            let want = (x as f64).exp();
            assert!((exp(x) as f64 - want).abs() <= 2.0 * 1.5e-45 + 1e-6 * want, "exp({x})");
        }
    }

    #[test]
    fn sigmoid_is_stable() {
        for sigmoid in SIGMOIDS {
            sigmoid_stable(sigmoid);
        }
    }

    fn sigmoid_stable(sigmoid: fn(f32) -> f32) {
        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(1000.0), 1.0);
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        let s = sigmoid(-30.0) as f64;
        let want = 1.0 / (1.0 + 30f64.exp());
        assert!((s - want).abs() < 1e-6 * want);
        for i in -100..100 {
            let x = i as f32 * 0.1;
            let want = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!((sigmoid(x) as f64 - want).abs() < 2e-7, "sigmoid({x})");
        }
    }

    #[test]
    fn tanh_is_close_to_libm() {
        for tanh in TANHS {
            tanh_close(tanh);
        }
    }

    fn tanh_close(tanh: fn(f32) -> f32) {
        let mut worst: f64 = 0.0;
        for i in -200_000..=200_000 {
            let x = i as f32 * 1e-4;
            let err = (tanh(x) as f64 - (x as f64).tanh()).abs();
            worst = worst.max(err / (x as f64).tanh().abs().max(1e-3));
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(tanh(f32::NAN).is_nan());
        assert_eq!(tanh(0.0), 0.0);
    }
}
