//! `Lambda`: wraps a Rust function of one tensor as a layer.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::Value;
use strata_core::{no_grad, Error, Result, Tensor};

use crate::meta::{from_json, named, Meta};
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

type Function = Arc<dyn Fn(&Tensor) -> Result<Tensor> + Send + Sync>;
type ShapeFunction = Arc<dyn Fn(&TensorSpec) -> Result<TensorSpec> + Send + Sync>;

/// Applies a Rust function `Fn(&Tensor) -> Result<Tensor>` — Keras' `Lambda`.
///
/// The function has a name, which is what the config stores
/// (`{"function": "double"}`): to rebuild a model from its config, register
/// the lambda first with [`register_lambda`]. The function should use only
/// the [`Tensor`] API, so that it runs on every backend and autodiff
/// differentiates it. It has no weights.
///
/// # Shapes
/// - input: any
/// - output: given by [`output_shape`](Lambda::output_shape) when set.
///   Otherwise `build` infers it by calling the function once on zeros of
///   the input spec with every unknown axis set to 2; the result's shape is
///   the output spec, except that output axis 0 is `None` when input axis 0
///   (the batch) was `None`. Other axes are taken as inferred, so a function
///   whose output depends on an unknown non-batch axis needs `output_shape`.
///
/// # Masks
/// Passes an incoming mask through unchanged.
///
/// ```
/// use strata_layers::{register_lambda, Lambda, Layer, LayerClass};
/// let double = Lambda::new("double", |x| x.mul_scalar(2.0));
/// register_lambda(&double);
/// assert_eq!(double.config()["function"], "double");
/// let back = Lambda::from_config(&double.config()).unwrap();
/// assert_eq!(back.function_name(), "double");
/// ```
#[derive(Clone)]
pub struct Lambda {
    function: String,
    f: Function,
    output_shape: Option<ShapeFunction>,
    meta: Meta,
}

named!(Lambda);

impl Lambda {
    /// A layer computing `f(x)`, under the function name `name` (what the
    /// config stores; the layer's own name is set with [`Lambda::name`]).
    pub fn new(name: &str, f: impl Fn(&Tensor) -> Result<Tensor> + Send + Sync + 'static) -> Self {
        let mut meta = Meta::default();
        meta.require(!name.trim().is_empty(), || format!("the function name must not be empty, received `{name}`"));
        Lambda { function: name.to_string(), f: Arc::new(f), output_shape: None, meta }
    }

    /// Computes the output spec from the input spec instead of inferring it.
    pub fn output_shape(mut self, f: impl Fn(&TensorSpec) -> Result<TensorSpec> + Send + Sync + 'static) -> Self {
        self.output_shape = Some(Arc::new(f));
        self
    }

    /// The function's name, as stored in the config.
    pub fn function_name(&self) -> &str {
        &self.function
    }

    /// The output spec from calling the function on zeros (see the type's docs).
    fn infer(&self, x: &TensorSpec, ctx: &BuildContext<'_>) -> Result<TensorSpec> {
        let shape = x.concrete(2);
        let probe = Tensor::zeros(shape.clone(), x.dtype, ctx.device())?;
        let y = no_grad(|| (self.f)(&probe)).map_err(|e| {
            Error::msg(format!(
                "could not infer the output shape of `{}` by calling it on zeros of shape {shape} \
                 (input {x}): {e}; give it with .output_shape(...)",
                self.function
            ))
        })?;
        let mut dims: Vec<Option<usize>> = y.dims().iter().map(|&d| Some(d)).collect();
        if x.dims.first() == Some(&None) {
            if let Some(d) = dims.first_mut() {
                *d = None;
            }
        }
        Ok(TensorSpec::new(dims, y.dtype()))
    }
}

impl fmt::Debug for Lambda {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lambda")
            .field("function", &self.function)
            .field("output_shape", &self.output_shape.is_some())
            .field("name", &self.meta.name)
            .finish()
    }
}

impl LayerClass for Lambda {
    const CLASS_NAME: &'static str = "Lambda";

    fn from_config(config: &Value) -> Result<Self> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Config {
            function: String,
        }
        let c: Config = from_json(Self::CLASS_NAME, config)?;
        let found = lambdas().read().unwrap_or_else(|e| e.into_inner()).get(&c.function).cloned();
        match found {
            Some(l) => Ok(Lambda { meta: Meta { name: None, error: l.meta.error.clone() }, ..l }),
            None => {
                let known = registered_lambdas();
                let known = if known.is_empty() { "none".to_string() } else { known.join(", ") };
                Err(Error::Config(format!(
                    "Lambda: no lambda registered under the name `{}`; registered: {known} \
                     (register it with register_lambda before loading)",
                    c.function
                )))
            }
        }
    }
}

impl Layer for Lambda {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        match &self.output_shape {
            Some(f) => f(&inputs[0]),
            None => self.infer(&inputs[0], ctx),
        }
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        (self.f)(&inputs[0])
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn config(&self) -> Value {
        serde_json::json!({ "function": self.function })
    }

    fn name_hint(&self) -> Option<&str> {
        self.meta.name.as_deref()
    }
}

fn lambdas() -> &'static RwLock<BTreeMap<String, Lambda>> {
    static LAMBDAS: OnceLock<RwLock<BTreeMap<String, Lambda>>> = OnceLock::new();
    LAMBDAS.get_or_init(Default::default)
}

/// Registers `lambda` under its function name, so that [`Lambda::from_config`]
/// (and loading a model that uses it) can find it. Registering a name again
/// replaces the earlier function.
pub fn register_lambda(lambda: &Lambda) {
    let mut map = lambdas().write().unwrap_or_else(|e| e.into_inner());
    map.insert(lambda.function.clone(), lambda.clone());
}

/// The function names of every registered lambda, sorted.
pub fn registered_lambdas() -> Vec<String> {
    lambdas().read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use strata_core::DType;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn applies_the_function_and_infers_the_output_spec() {
        assert_send_sync::<Lambda>();
        let mut layer = Lambda::new("lambda_test_square_sum", |x| x.square()?.sum(&[-1], false));
        let (out, weights) = build(&mut layer, &[spec(&[None, Some(3), Some(4)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 3)");
        assert!(weights.is_empty());
        let y = call(&layer, &[t(&[1.0, 2.0, 3.0, -1.0, 0.0, 2.0], &[2, 3])], &[], &[], false).unwrap();
        assert_eq!(vals(&y), vec![14.0, 5.0]);

        // Known batch stays known; the dtype comes from the function's result.
        let mut layer = Lambda::new("lambda_test_argmax", |x| x.argmax(-1, false));
        let (out, _) = build(&mut layer, &[spec(&[Some(5), Some(7)])]).unwrap();
        assert_eq!(out, TensorSpec::new(vec![Some(5)], DType::I64));
    }

    #[test]
    fn an_explicit_output_shape_wins() {
        let mut layer = Lambda::new("lambda_test_explicit", |x| x.unsqueeze(1))
            .output_shape(|s| Ok(TensorSpec::new(vec![s.dims[0], Some(1), s.dims[1]], s.dtype)));
        let (out, _) = build(&mut layer, &[spec(&[None, Some(4)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 1, 4)");
    }

    #[test]
    fn inference_failures_are_explained() {
        let mut layer = Lambda::new("lambda_test_fails", |x| x.reshape([7]));
        let msg = err(build(&mut layer, &[spec(&[None, Some(3)])]));
        assert!(msg.contains("lambda_test_fails") && msg.contains("[2, 3]") && msg.contains("(None, 3)"), "{msg}");
        assert!(msg.contains("output_shape"), "{msg}");
        let mut layer = Lambda::new("  ", |x| Ok(x.clone()));
        let msg = err(build(&mut layer, &[spec(&[None, Some(3)])]));
        assert!(msg.contains("empty") && msg.contains("`  `"), "{msg}");
    }

    #[test]
    fn masks_pass_through() {
        let layer = Lambda::new("lambda_test_mask", |x| x.mul_scalar(2.0));
        let m = t(&[1.0, 0.0], &[1, 2]);
        let out = layer.compute_mask(&[t(&[0.0; 4], &[1, 2, 2])], &[Some(m)]).unwrap().unwrap();
        assert_eq!(vals(&out), vec![1.0, 0.0]);
    }

    #[test]
    fn config_round_trips_through_the_registry() {
        let layer = Lambda::new("lambda_test_plus_one", |x| x.add_scalar(1.0)).name("plus");
        assert_eq!(layer.name_hint(), Some("plus"));
        assert_eq!(layer.config(), serde_json::json!({"function": "lambda_test_plus_one"}));
        let msg = err(Lambda::from_config(&serde_json::json!({"function": "lambda_test_missing"})));
        assert!(msg.contains("lambda_test_missing") && msg.contains("register_lambda"), "{msg}");

        register_lambda(&layer);
        assert!(registered_lambdas().contains(&"lambda_test_plus_one".to_string()));
        let back = Lambda::from_config(&layer.config()).unwrap();
        assert_eq!(back.config(), layer.config());
        assert_eq!(back.name_hint(), None);
        let y = call(&back, &[t(&[1.0, 2.0], &[1, 2])], &[], &[], false).unwrap();
        assert_eq!(vals(&y), vec![2.0, 3.0]);

        let msg = err(Lambda::from_config(&serde_json::json!({"function": "lambda_test_missing"})));
        assert!(msg.contains("lambda_test_plus_one"), "{msg}");
        let msg = err(Lambda::from_config(&serde_json::json!({"fn": "x"})));
        assert!(msg.contains("fn"), "{msg}");
    }
}
