//! `Embedding`: turns integer ids into dense vectors by table lookup.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{DType, Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{BuildContext, CallContext, Initializer, Layer, LayerClass, Regularizer, Resolve, TensorSpec};

/// Looks up a row of a trainable `[input_dim, output_dim]` table for every
/// integer id — Keras' `Embedding`.
///
/// Ids may come as `i64` or as `f32` holding whole numbers (`2.0`); an `f32`
/// id with a fraction (`2.7`) or that is not finite is an error, as is an
/// id outside `0..input_dim`, naming the id and its index.
///
/// # Shapes
/// - input: `(batch, ...)`, `i64` or `f32` ids
/// - output: `(batch, ..., output_dim)`, `f32`
///
/// # Masks
/// With [`mask_zero(true)`](Embedding::mask_zero) the layer produces a mask,
/// `1.0` where the id is not `0`, shaped like the ids (id `0` is then
/// padding, so `input_dim` should be the vocabulary size plus one). The layer
/// does not accept an incoming mask.
///
/// ```
/// use strata_layers::{Embedding, Layer};
/// let layer = Embedding::new(1000, 64).mask_zero(true);
/// assert_eq!(layer.config()["output_dim"], 64);
/// assert_eq!(layer.config()["mask_zero"], true);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedding {
    input_dim: usize,
    output_dim: usize,
    #[serde(default = "uniform")]
    embeddings_initializer: Initializer,
    #[serde(default)]
    embeddings_regularizer: Option<Regularizer>,
    #[serde(default)]
    mask_zero: bool,
    #[serde(skip)]
    meta: Meta,
}

fn uniform() -> Initializer {
    Initializer::RandomUniform { minval: -0.05, maxval: 0.05 }
}

named!(Embedding);

impl Embedding {
    /// A table of `input_dim` ids (the vocabulary size) by `output_dim`
    /// features, initialized uniformly in `[-0.05, 0.05)`.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        let mut meta = Meta::default();
        meta.require(input_dim > 0, || format!("input_dim must be > 0, received {input_dim}"));
        meta.require(output_dim > 0, || format!("output_dim must be > 0, received {output_dim}"));
        Embedding {
            input_dim,
            output_dim,
            embeddings_initializer: uniform(),
            embeddings_regularizer: None,
            mask_zero: false,
            meta,
        }
    }

    /// Whether id `0` is padding: the layer then outputs a mask (default false).
    pub fn mask_zero(mut self, mask_zero: bool) -> Self {
        self.mask_zero = mask_zero;
        self
    }

    /// The table's initializer (default `RandomUniform(-0.05, 0.05)`).
    pub fn embeddings_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.embeddings_initializer = i;
        }
        self
    }

    /// A penalty on the table, added to the training loss.
    pub fn embeddings_regularizer(mut self, reg: Regularizer) -> Self {
        self.meta.keep(reg.validate());
        self.embeddings_regularizer = Some(reg);
        self
    }

    /// The ids as `i64`, checked to be whole numbers in `0..input_dim`.
    fn ids(&self, x: &Tensor) -> Result<Tensor> {
        // One download either way: f32 ids are checked to be whole numbers
        // and then range-checked as the i64 values they cast to.
        let host: Vec<i64> = if x.dtype() == DType::F32 {
            let values = x.to_vec::<f32>()?;
            if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite() || v.fract() != 0.0) {
                return Err(Error::msg(format!(
                    "id {v} at index {i} is not a whole number: f32 ids must be integral (2.0, not 2.7) and finite"
                )));
            }
            values.iter().map(|&v| v as i64).collect()
        } else {
            x.to_vec::<i64>()?
        };
        if let Some((i, &bad)) = host.iter().enumerate().find(|&(_, &id)| id < 0 || id >= self.input_dim as i64) {
            return Err(Error::msg(format!(
                "id {bad} at index {i} is out of range for input_dim {}: ids must lie in [0, {})",
                self.input_dim, self.input_dim
            )));
        }
        x.cast(DType::I64)
    }
}

impl LayerClass for Embedding {
    const CLASS_NAME: &'static str = "Embedding";

    fn from_config(config: &Value) -> Result<Self> {
        let e: Embedding = from_json(Self::CLASS_NAME, config)?;
        let mut meta = Embedding::new(e.input_dim, e.output_dim).meta;
        if let Some(reg) = &e.embeddings_regularizer {
            meta.keep(reg.validate());
        }
        Ok(Embedding { meta, ..e })
    }
}

impl Layer for Embedding {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        if x.rank() < 1 {
            return Err(Error::msg(format!("expects ids of rank >= 1 (batch, ...), received {x}")));
        }
        ctx.add_weight_with(
            "embeddings",
            [self.input_dim, self.output_dim],
            self.embeddings_initializer,
            true,
            self.embeddings_regularizer,
        )?;
        let mut dims = x.dims.clone();
        dims.push(Some(self.output_dim));
        Ok(TensorSpec::new(dims, DType::F32))
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let ids = self.ids(&inputs[0])?;
        ctx.weight("embeddings")?.gather(0, &ids)
    }

    fn compute_mask(&self, inputs: &[Tensor], _masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        if !self.mask_zero {
            return Ok(None);
        }
        Ok(Some(inputs[0].ne_scalar(0.0)?.cast(DType::F32)?))
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use crate::Weight;
    use strata_conformance::check_grad;
    use strata_core::Shape;

    const TABLE: [f32; 8] = [0.0, 0.1, 1.0, 1.1, 2.0, 2.1, 3.0, 3.1];

    fn built(layer: &mut Embedding, spec: TensorSpec) -> (TensorSpec, Vec<Weight>) {
        let (out, weights) = build(layer, &[spec]).unwrap();
        weights[0].value.assign(&t(&TABLE, &[4, 2])).unwrap();
        (out, weights)
    }

    #[test]
    fn looks_up_rows_for_i64_and_f32_ids() {
        let mut layer = Embedding::new(4, 2);
        let (out, weights) = built(&mut layer, TensorSpec::new(vec![None, Some(3)], DType::I64));
        assert_eq!(out, TensorSpec::new(vec![None, Some(3), Some(2)], DType::F32));
        assert_eq!(weights[0].name, "embeddings");
        assert_eq!(weights[0].value.dims(), &[4, 2]);

        let y = call(&layer, &[ti(&[3, 0, 1, 2, 2, 0], &[2, 3])], &[], &weights, false).unwrap();
        assert_eq!(y.dims(), &[2, 3, 2]);
        assert_eq!(vals(&y), vec![3.0, 3.1, 0.0, 0.1, 1.0, 1.1, 2.0, 2.1, 2.0, 2.1, 0.0, 0.1]);

        let y = call(&layer, &[t(&[1.0, 3.0], &[2])], &[], &weights, false).unwrap();
        assert_eq!(y.dims(), &[2, 2]);
        assert_eq!(vals(&y), vec![1.0, 1.1, 3.0, 3.1]);
    }

    #[test]
    fn default_initializer_is_uniform_five_hundredths() {
        let mut layer = Embedding::new(50, 40);
        let (_, weights) = build(&mut layer, &[TensorSpec::batched(&[3], DType::I64)]).unwrap();
        let w = vals(&weights[0].value);
        assert!(w.iter().all(|v| (-0.05..0.05).contains(v)));
        assert!(w.iter().any(|v| v.abs() > 0.04));
    }

    #[test]
    fn out_of_range_ids_are_errors_naming_them() {
        let mut layer = Embedding::new(4, 2);
        let (_, weights) = built(&mut layer, TensorSpec::batched(&[2], DType::I64));
        let msg = err(call(&layer, &[ti(&[1, 4], &[1, 2])], &[], &weights, false));
        assert!(msg.contains("id 4") && msg.contains("input_dim 4"), "{msg}");
        let msg = err(call(&layer, &[ti(&[-1, 0], &[1, 2])], &[], &weights, false));
        assert!(msg.contains("id -1") && msg.contains('4'), "{msg}");
        let msg = err(call(&layer, &[t(&[7.0, 0.0], &[1, 2])], &[], &weights, false));
        assert!(msg.contains("id 7"), "{msg}");
    }

    #[test]
    fn mask_zero_marks_padding() {
        let layer = Embedding::new(4, 2).mask_zero(true);
        let m = layer.compute_mask(&[ti(&[0, 2, 3, 1, 0, 0], &[2, 3])], &[None]).unwrap().unwrap();
        assert_eq!(m.dims(), &[2, 3]);
        assert_eq!(m.dtype(), DType::F32);
        assert_eq!(vals(&m), vec![0.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        let m = layer.compute_mask(&[t(&[0.0, 2.0], &[1, 2])], &[None]).unwrap().unwrap();
        assert_eq!(vals(&m), vec![0.0, 1.0]);

        let plain = Embedding::new(4, 2);
        assert!(plain.compute_mask(&[ti(&[0, 1], &[1, 2])], &[None]).unwrap().is_none());
        assert!(!plain.supports_masking());
    }

    #[test]
    fn gradient_flows_to_the_looked_up_rows() {
        let layer = Embedding::new(4, 2);
        let ids = ti(&[1, 3, 1], &[3]);
        check_grad("embedding", &dev(), &[(TABLE.to_vec(), Shape::from([4, 2]))], 1e-2, |xs| {
            let weights =
                vec![Weight { name: "embeddings".into(), value: xs[0].clone(), trainable: true, regularizer: None }];
            call(&layer, std::slice::from_ref(&ids), &[], &weights, true)
        })
        .unwrap();

        // Row 1 is used twice, row 3 once, rows 0 and 2 never.
        let table = t(&TABLE, &[4, 2]).to_variable().unwrap();
        let weights =
            vec![Weight { name: "embeddings".into(), value: table.clone(), trainable: true, regularizer: None }];
        let y = call(&layer, &[ids], &[], &weights, true).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(vals(grads.get(&table).unwrap()), vec![0.0, 0.0, 2.0, 2.0, 0.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn argument_errors_name_the_received_value() {
        let mut layer = Embedding::new(0, 8);
        let msg = err(build(&mut layer, &[TensorSpec::batched(&[3], DType::I64)]));
        assert!(msg.contains("input_dim") && msg.contains("received 0"), "{msg}");
        let mut layer = Embedding::new(10, 0);
        let msg = err(build(&mut layer, &[TensorSpec::batched(&[3], DType::I64)]));
        assert!(msg.contains("output_dim") && msg.contains("received 0"), "{msg}");
        let mut layer = Embedding::new(10, 2).embeddings_initializer("glorot");
        let msg = err(build(&mut layer, &[TensorSpec::batched(&[3], DType::I64)]));
        assert!(msg.contains("glorot"), "{msg}");
        let mut layer = Embedding::new(10, 2).embeddings_regularizer(Regularizer::l2(-1.0));
        let msg = err(build(&mut layer, &[TensorSpec::batched(&[3], DType::I64)]));
        assert!(msg.contains("l2=-1"), "{msg}");
        let mut layer = Embedding::new(10, 2);
        let msg = err(build(&mut layer, &[TensorSpec::new(Vec::<Option<usize>>::new(), DType::I64)]));
        assert!(msg.contains("rank >= 1") && msg.contains("()"), "{msg}");
    }

    #[test]
    fn config_round_trips() {
        let layer = Embedding::new(100, 16)
            .mask_zero(true)
            .embeddings_initializer("he_normal")
            .embeddings_regularizer(Regularizer::l2(0.01));
        let config = layer.config();
        assert_eq!(config["input_dim"], 100);
        assert_eq!(config["embeddings_initializer"]["class_name"], "HeNormal");
        let back = Embedding::from_config(&config).unwrap();
        assert_eq!(back.config(), config);

        let defaults = Embedding::from_config(&serde_json::json!({"input_dim": 5, "output_dim": 3})).unwrap();
        assert_eq!(defaults.config(), Embedding::new(5, 3).config());
        let mut bad = Embedding::from_config(&serde_json::json!({"input_dim": 0, "output_dim": 3})).unwrap();
        let msg = err(build(&mut bad, &[TensorSpec::batched(&[3], DType::I64)]));
        assert!(msg.contains("received 0"), "{msg}");
    }
}
