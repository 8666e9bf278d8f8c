//! scikit-learn's handwritten digits (`sklearn.datasets.load_digits()`):
//! 1797 images of 8x8 pixels, each pixel a count `0..=16`, digits `0..=9`.
//!
//! The table ships inside the crate (`data/digits.csv.gz`, about 50 KB), so
//! [`load`] works anywhere, with no files and no network. It is the test
//! part of the UCI "Optical Recognition of Handwritten Digits" data set, as
//! bundled with scikit-learn 1.9.1.
//!
//! Features are `f32` `[1797, 64]`, the raw counts `0..=16` as scikit-learn
//! gives them (row-major 8x8: `reshape([1797, 8, 8])` for images); divide by
//! 16 (`x.div_scalar(16.0)`) to scale them to `[0, 1]`, or use
//! [`load_scaled`]. Labels are `i64` `[1797]`; class counts 178, 182, 177,
//! 183, 181, 182, 181, 179, 174, 180. There is no standard train/test split:
//! hold data out with [`Dataset::train_test_split`].

use strata_core::Result;

use super::Dataset;

static DIGITS_CSV_GZ: &[u8] = include_bytes!("../../data/digits.csv.gz");

/// The 1797 digits, pixels as raw counts `0..=16`, on the default device
/// ([`backend::from_env`](crate::backend::from_env)).
///
/// ```
/// # fn main() -> strata::Result<()> {
/// use strata::datasets::digits;
///
/// let data = digits::load()?;
/// assert_eq!(data.x.dims(), &[1797, 64]);
/// assert_eq!(data.class_counts()?, vec![178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
/// let split = data.train_test_split(0.25, 0)?;      // 1347 to train, 450 held out
/// assert_eq!(split.test.len(), 450);
/// # Ok(()) }
/// ```
pub fn load() -> Result<Dataset> {
    super::csv::load_gz("digits", DIGITS_CSV_GZ)
}

/// [`load`] with pixels divided by 16, so they lie in `[0, 1]`.
///
/// ```
/// # fn main() -> strata::Result<()> {
/// let data = strata::datasets::digits::load_scaled()?;
/// let max = data.x.to_vec::<f32>()?.into_iter().fold(0.0f32, f32::max);
/// assert_eq!(max, 1.0);
/// # Ok(()) }
/// ```
pub fn load_scaled() -> Result<Dataset> {
    let data = load()?;
    Ok(Dataset { x: data.x.div_scalar(16.0)?, y: data.y })
}
