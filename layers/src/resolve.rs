//! Arguments given either as a typed value or by name.

use strata_core::Result;

use crate::{Activation, Initializer};

/// A value given either typed (`Activation::Relu`) or by its Keras name
/// (`"relu"`); a wrong name is an error that lists the valid ones.
pub trait Resolve<T> {
    /// The typed value, or the error for an unknown name.
    fn resolve(self) -> Result<T>;
}

macro_rules! resolvable {
    ($($t:ty),*) => {$(
        impl Resolve<$t> for $t {
            fn resolve(self) -> Result<$t> {
                Ok(self)
            }
        }
        impl Resolve<$t> for &str {
            fn resolve(self) -> Result<$t> {
                self.parse()
            }
        }
        impl Resolve<$t> for String {
            fn resolve(self) -> Result<$t> {
                self.parse()
            }
        }
        impl Resolve<$t> for &String {
            fn resolve(self) -> Result<$t> {
                self.parse()
            }
        }
    )*};
}

resolvable!(Activation, Initializer);
