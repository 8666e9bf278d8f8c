//! The elementwise merges besides `Add`: `Subtract`, `Multiply`, `Average`,
//! `Maximum` and `Minimum` (Keras' `layers/merging/`), one definition for all.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Result, Tensor};

use super::merge::{mask_product, same_shape};
use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{Arity, BuildContext, CallContext, Layer, LayerClass, TensorSpec};

macro_rules! elementwise_merge {
    ($(#[$doc:meta])* $name:ident, $arity:expr, |$inputs:ident| $combine:expr) => {
        $(#[$doc])*
        ///
        /// # Shapes
        /// - inputs: of one shape and dtype (an unknown size, `None`,
        ///   matches any size)
        /// - output: that shape
        ///
        /// # Masks
        /// The output mask is the product (AND) of the masks present.
        #[derive(Clone, Debug, Default, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            #[serde(skip)]
            meta: Meta,
        }

        named!($name);

        impl $name {
            /// The layer (it has no arguments).
            pub fn new() -> Self {
                $name::default()
            }
        }

        impl LayerClass for $name {
            const CLASS_NAME: &'static str = stringify!($name);

            fn from_config(config: &Value) -> Result<Self> {
                from_json(Self::CLASS_NAME, config)
            }
        }

        impl Layer for $name {
            fn class_name(&self) -> &str {
                Self::CLASS_NAME
            }

            fn arity(&self) -> Arity {
                $arity
            }

            fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
                self.meta.check()?;
                same_shape(inputs)
            }

            fn call(&self, $inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
                $combine
            }

            fn supports_masking(&self) -> bool {
                true
            }

            fn compute_mask(&self, _inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
                mask_product(masks)
            }

            config_from_serde!();
        }
    };
}

/// Folds `f` over the inputs, left to right.
fn fold(inputs: &[Tensor], f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>) -> Result<Tensor> {
    let mut acc = inputs[0].clone();
    for x in &inputs[1..] {
        acc = f(&acc, x)?;
    }
    Ok(acc)
}

elementwise_merge!(
    /// The first input minus the second — Keras' `Subtract`.
    ///
    /// ```
    /// use strata_layers::{Layer, Subtract};
    /// assert_eq!(Subtract::new().class_name(), "Subtract");
    /// ```
    Subtract,
    Arity::Exactly(2),
    |inputs| inputs[0].sub(&inputs[1])
);

elementwise_merge!(
    /// The elementwise product of two or more inputs — Keras' `Multiply`.
    ///
    /// ```
    /// use strata_layers::{Layer, Multiply};
    /// assert_eq!(Multiply::new().class_name(), "Multiply");
    /// ```
    Multiply,
    Arity::AtLeast(2),
    |inputs| fold(inputs, Tensor::mul)
);

elementwise_merge!(
    /// The elementwise mean of two or more inputs — Keras' `Average`.
    ///
    /// ```
    /// use strata_layers::{Average, Layer};
    /// assert_eq!(Average::new().class_name(), "Average");
    /// ```
    Average,
    Arity::AtLeast(2),
    |inputs| fold(inputs, Tensor::add)?.div_scalar(inputs.len() as f64)
);

elementwise_merge!(
    /// The elementwise maximum of two or more inputs — Keras' `Maximum`.
    ///
    /// ```
    /// use strata_layers::{Layer, Maximum};
    /// assert_eq!(Maximum::new().class_name(), "Maximum");
    /// ```
    Maximum,
    Arity::AtLeast(2),
    |inputs| fold(inputs, Tensor::maximum)
);

elementwise_merge!(
    /// The elementwise minimum of two or more inputs — Keras' `Minimum`.
    ///
    /// ```
    /// use strata_layers::{Layer, Minimum};
    /// assert_eq!(Minimum::new().class_name(), "Minimum");
    /// ```
    Minimum,
    Arity::AtLeast(2),
    |inputs| fold(inputs, Tensor::minimum)
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn each_merge_combines_elementwise() {
        let a = t(&[1.0, -2.0, 3.0], &[1, 3]);
        let b = t(&[4.0, 5.0, -6.0], &[1, 3]);
        let c = t(&[0.5, 0.5, 0.5], &[1, 3]);
        let run = |layer: &dyn Layer, xs: &[Tensor]| vals(&call(layer, xs, &[], &[], false).unwrap());
        assert_eq!(run(&Subtract::new(), &[a.clone(), b.clone()]), [-3.0, -7.0, 9.0]);
        assert_eq!(run(&Multiply::new(), &[a.clone(), b.clone(), c.clone()]), [2.0, -5.0, -9.0]);
        assert_eq!(run(&Average::new(), &[a.clone(), b.clone(), c.clone()]), [5.5 / 3.0, 3.5 / 3.0, -2.5 / 3.0]);
        assert_eq!(run(&Maximum::new(), &[a.clone(), b.clone(), c.clone()]), [4.0, 5.0, 3.0]);
        assert_eq!(run(&Minimum::new(), &[a, b, c]), [0.5, -2.0, -6.0]);
        assert_eq!(Subtract::new().arity(), Arity::Exactly(2));
    }

    #[test]
    fn shapes_and_configs_are_checked() {
        let msg = err(build(&mut Multiply::new(), &[spec(&[None, Some(3)]), spec(&[None, Some(4)])]));
        assert!(msg.contains("input 1") && msg.contains("(None, 4)"), "{msg}");
        let (out, _) = build(&mut Maximum::new(), &[spec(&[None, None]), spec(&[None, Some(4)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 4)");
        assert_eq!(Average::from_config(&Average::new().config()).unwrap().config(), serde_json::json!({}));
        assert!(err(Minimum::from_config(&serde_json::json!({"axis": 1}))).contains("axis"));
    }

    #[test]
    fn masks_multiply() {
        let x = t(&[0.0; 3], &[1, 3]);
        let m1 = t(&[1.0, 0.0, 1.0], &[1, 3]);
        let m2 = t(&[1.0, 1.0, 0.0], &[1, 3]);
        let m = Subtract::new().compute_mask(&[x.clone(), x], &[Some(m1), Some(m2)]).unwrap().unwrap();
        assert_eq!(vals(&m), [1.0, 0.0, 0.0]);
    }
}
