//! Seeded random numbers, generated on the host so that every backend sees the
//! same values for the same seed.

use rand::{Rng as _, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::{Error, Result};

/// A seeded, portable random number generator (ChaCha8).
///
/// The same seed gives the same stream on every platform and backend.
///
/// ```
/// use strata_core::Rng;
/// let mut a = Rng::seed(42);
/// let mut b = Rng::seed(42);
/// assert_eq!(a.uniform(), b.uniform());
/// ```
#[derive(Clone, Debug)]
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// A generator from a 64-bit seed.
    pub fn seed(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A uniform `f32` in `[0, 1)`.
    pub fn uniform(&mut self) -> f32 {
        self.0.random::<f32>()
    }

    /// A standard normal `f32`.
    pub fn normal(&mut self) -> f32 {
        StandardNormal.sample(&mut self.0)
    }

    /// A uniform integer in `0..n`; `n = 0` (an empty range) is an
    /// [`Error::InvalidArgument`].
    ///
    /// ```
    /// use strata_core::Rng;
    /// let mut rng = Rng::seed(1);
    /// assert!(rng.below(3).unwrap() < 3);
    /// assert!(rng.below(0).is_err());
    /// ```
    pub fn below(&mut self, n: usize) -> Result<usize> {
        if n == 0 {
            return Err(Error::invalid("Rng::below", "cannot sample from the empty range 0..0"));
        }
        Ok(self.0.random_range(0..n))
    }

    /// A raw 64-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// A new generator seeded from this one: an independent stream for a
    /// sub-task (one per layer, one per epoch's shuffle).
    pub fn fork(&mut self) -> Rng {
        Rng::seed(self.0.next_u64())
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.0.random_range(0..=i);
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_zero_is_an_error_and_below_n_stays_in_range() {
        let mut rng = Rng::seed(3);
        let err = rng.below(0).unwrap_err().to_string();
        assert_eq!(err, "Rng::below: cannot sample from the empty range 0..0");
        let draws: Vec<usize> = (0..200).map(|_| rng.below(4).unwrap()).collect();
        assert!(draws.iter().all(|&d| d < 4));
        assert!((0..4).all(|v| draws.contains(&v)), "every value of 0..4 is drawn: {draws:?}");
        assert_eq!(rng.below(1).unwrap(), 0);
    }
}
