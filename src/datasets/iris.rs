//! Fisher's iris flowers (`sklearn.datasets.load_iris()`): 150 flowers, 4
//! measurements in cm, 3 species, 50 each.
//!
//! The table ships inside the crate (`data/iris.csv.gz`), so [`load`] works
//! anywhere. It is scikit-learn 1.9.1's copy, which follows its documented
//! corrections of the UCI file.
//!
//! Features are `f32` `[150, 4]`: sepal length, sepal width, petal length,
//! petal width ([`FEATURE_NAMES`]). Labels are `i64` `[150]`, indices into
//! [`CLASS_NAMES`]; the rows are sorted by label, so shuffle
//! ([`Dataset::shuffle`], [`Dataset::train_test_split`]) before holding
//! data out.

use strata_core::Result;

use super::Dataset;

static IRIS_CSV_GZ: &[u8] = include_bytes!("../../data/iris.csv.gz");

/// The species, indexed by label.
pub const CLASS_NAMES: [&str; 3] = ["setosa", "versicolor", "virginica"];

/// The four features, in column order (all in cm).
pub const FEATURE_NAMES: [&str; 4] = ["sepal length", "sepal width", "petal length", "petal width"];

/// The 150 flowers on the default device
/// ([`backend::from_env`](crate::backend::from_env)).
///
/// ```
/// # fn main() -> strata::Result<()> {
/// use strata::datasets::iris;
///
/// let data = iris::load()?;
/// assert_eq!(data.x.dims(), &[150, 4]);
/// assert_eq!(&data.x.to_vec::<f32>()?[..4], &[5.1, 3.5, 1.4, 0.2]);
/// assert_eq!(data.class_counts()?, vec![50, 50, 50]);
/// # Ok(()) }
/// ```
pub fn load() -> Result<Dataset> {
    super::csv::load_gz("iris", IRIS_CSV_GZ)
}
