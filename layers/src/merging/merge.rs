//! Merge layers: `Concatenate` and `Add`, which take several inputs.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{Arity, BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// Whether two axis sizes can be the same at run time (`None` fits anything).
fn fits(a: Option<usize>, b: Option<usize>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// The known one of two fitting sizes.
fn known(a: Option<usize>, b: Option<usize>) -> Option<usize> {
    a.or(b)
}

/// The first of `earlier` whose axis `k` cannot match `spec`'s (0 if none).
fn conflicting(earlier: &[TensorSpec], spec: &TensorSpec, k: usize) -> usize {
    earlier
        .iter()
        .position(|e| !fits(e.dims.get(k).copied().flatten(), spec.dims.get(k).copied().flatten()))
        .unwrap_or(0)
}

/// The elementwise product (logical AND) of the masks present, if any.
pub(crate) fn mask_product(masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
    let mut out: Option<Tensor> = None;
    for m in masks.iter().flatten() {
        out = Some(match out {
            None => m.clone(),
            Some(acc) => acc.mul(m)?,
        });
    }
    Ok(out)
}

/// Joins its inputs along `axis` — Keras' `Concatenate`.
///
/// # Shapes
/// - inputs: two or more of the same rank and dtype, equal on every axis but
///   `axis` (an unknown size, `None`, matches any size)
/// - output: the inputs' shape with `axis` the sum of theirs
///
/// # Masks
/// Along the last axis (the default), the output mask is the product (AND)
/// of the masks present: a step is used only when every masked input uses
/// it. Masks with another axis are an error.
///
/// ```
/// use strata_layers::{Concatenate, Layer};
/// let layer = Concatenate::new().axis(1);
/// assert_eq!(layer.config()["axis"], 1);
/// assert_eq!(Concatenate::new().config()["axis"], -1);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Concatenate {
    #[serde(default = "last")]
    axis: isize,
    #[serde(skip)]
    meta: Meta,
}

fn last() -> isize {
    -1
}

named!(Concatenate);

impl Default for Concatenate {
    fn default() -> Self {
        Concatenate { axis: -1, meta: Meta::default() }
    }
}

impl Concatenate {
    /// Concatenates along the last axis.
    pub fn new() -> Self {
        Concatenate::default()
    }

    /// The axis to join along (default `-1`; negative counts from the end).
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// `axis` as an index into `rank` axes.
    fn resolve(&self, rank: usize) -> Option<usize> {
        let a = if self.axis < 0 { self.axis + rank as isize } else { self.axis };
        (0..rank as isize).contains(&a).then_some(a as usize)
    }

    /// Masks are only meaningful when the steps line up: along the last axis.
    fn check_masks(&self, rank: usize, masks: &[Option<Tensor>]) -> Result<()> {
        if masks.iter().any(Option::is_some) && self.resolve(rank) != rank.checked_sub(1) {
            return Err(Error::msg(format!(
                "masked inputs can only be concatenated along the last axis, received axis {} for inputs of rank {rank}",
                self.axis
            )));
        }
        Ok(())
    }
}

impl LayerClass for Concatenate {
    const CLASS_NAME: &'static str = "Concatenate";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for Concatenate {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn arity(&self) -> Arity {
        Arity::AtLeast(2)
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let first = &inputs[0];
        let rank = first.rank();
        let Some(a) = self.resolve(rank) else {
            return Err(Error::msg(format!(
                "axis {} is out of range for inputs of rank {rank}, received {first}",
                self.axis
            )));
        };
        let mut dims = first.dims.clone();
        for (i, s) in inputs.iter().enumerate().skip(1) {
            if s.rank() != rank || s.dtype != first.dtype {
                return Err(Error::msg(format!(
                    "expects inputs of one rank and dtype, received input 0 {} {first} and input {i} {} {s}",
                    first.dtype, s.dtype
                )));
            }
            for (k, d) in dims.iter_mut().enumerate() {
                if k == a {
                    *d = d.zip(s.dims[k]).map(|(x, y)| x + y);
                } else if fits(*d, s.dims[k]) {
                    *d = known(*d, s.dims[k]);
                } else {
                    let j = conflicting(&inputs[..i], s, k);
                    return Err(Error::msg(format!(
                        "expects inputs equal on every axis but the concatenation axis {a}, \
                         received input {j} {} and input {i} {s} (axis {k} differs)",
                        inputs[j]
                    )));
                }
            }
        }
        Ok(TensorSpec::new(dims, first.dtype))
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        self.check_masks(inputs[0].rank(), ctx.masks())?;
        let refs: Vec<&Tensor> = inputs.iter().collect();
        Tensor::concat(&refs, self.axis)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_mask(&self, inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        self.check_masks(inputs.first().map_or(0, Tensor::rank), masks)?;
        mask_product(masks)
    }

    config_from_serde!();
}

/// Adds its inputs elementwise — Keras' `Add`.
///
/// # Shapes
/// - inputs: two or more of one shape and dtype (an unknown size, `None`,
///   matches any size)
/// - output: that shape
///
/// # Masks
/// The output mask is the product (AND) of the masks present.
///
/// ```
/// use strata_layers::{Add, Layer};
/// let layer = Add::new();
/// assert_eq!(layer.class_name(), "Add");
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Add {
    #[serde(skip)]
    meta: Meta,
}

named!(Add);

impl Add {
    /// An elementwise sum of two or more inputs.
    pub fn new() -> Self {
        Add::default()
    }
}

impl LayerClass for Add {
    const CLASS_NAME: &'static str = "Add";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for Add {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn arity(&self) -> Arity {
        Arity::AtLeast(2)
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        same_shape(inputs)
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let mut sum = inputs[0].clone();
        for x in &inputs[1..] {
            sum = sum.add(x)?;
        }
        Ok(sum)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_mask(&self, _inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        mask_product(masks)
    }

    config_from_serde!();
}

/// The spec of an elementwise merge: every input of one dtype, rank and
/// shape (an unknown size matches any), the known sizes kept.
pub(crate) fn same_shape(inputs: &[TensorSpec]) -> Result<TensorSpec> {
    let first = &inputs[0];
    let mut dims = first.dims.clone();
    for (i, s) in inputs.iter().enumerate().skip(1) {
        if s.dtype != first.dtype || s.rank() != first.rank() {
            return Err(Error::msg(format!(
                "expects inputs of one shape and dtype, received input 0 {} {first} and input {i} {} {s}",
                first.dtype, s.dtype
            )));
        }
        if let Some(k) = (0..dims.len()).find(|&k| !fits(dims[k], s.dims[k])) {
            let j = conflicting(&inputs[..i], s, k);
            return Err(Error::msg(format!(
                "expects inputs of one shape, received input {j} {} and input {i} {s} (axis {k} differs)",
                inputs[j]
            )));
        }
        dims = dims.iter().zip(&s.dims).map(|(&a, &b)| known(a, b)).collect();
    }
    Ok(TensorSpec::new(dims, first.dtype))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use strata_core::DType;

    #[test]
    fn concatenates_along_the_axis() {
        let mut layer = Concatenate::new();
        let (out, _) =
            build(&mut layer, &[spec(&[None, Some(2)]), spec(&[None, Some(1)]), spec(&[None, Some(3)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 6)");
        assert_eq!(layer.arity(), Arity::AtLeast(2));
        let a = t(&[1.0, 2.0, 3.0, 4.0], &[2, 2]);
        let b = t(&[5.0, 6.0], &[2, 1]);
        let y = call(&layer, &[a.clone(), b.clone()], &[], &[], false).unwrap();
        assert_eq!(vals(&y), vec![1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);

        let mut layer = Concatenate::new().axis(1);
        let (out, _) = build(&mut layer, &[spec(&[None, Some(2), Some(4)]), spec(&[None, None, Some(4)])]).unwrap();
        assert_eq!(out.to_string(), "(None, None, 4)");
        let (out, _) = build(&mut layer, &[spec(&[None, Some(2), None]), spec(&[None, Some(3), Some(4)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 5, 4)");
        let y = call(&layer, &[t(&[1.0, 2.0], &[1, 1, 2]), t(&[3.0, 4.0], &[1, 1, 2])], &[], &[], false).unwrap();
        assert_eq!(y.dims(), &[1, 2, 2]);
        assert_eq!(vals(&y), vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn concatenate_shape_errors_name_the_input_and_both_specs() {
        let mut layer = Concatenate::new();
        let msg = err(build(&mut layer, &[spec(&[None, Some(3), Some(2)]), spec(&[None, Some(4), Some(2)])]));
        assert!(msg.contains("input 1") && msg.contains("(None, 3, 2)") && msg.contains("(None, 4, 2)"), "{msg}");
        let msg =
            err(build(&mut layer, &[spec(&[None, Some(2)]), spec(&[None, Some(3)]), spec(&[None, Some(4), Some(1)])]));
        assert!(msg.contains("input 2") && msg.contains("(None, 2)") && msg.contains("(None, 4, 1)"), "{msg}");
        let msg = err(build(&mut layer, &[spec(&[None, Some(2)]), TensorSpec::batched(&[2], DType::I64)]));
        assert!(msg.contains("input 1 i64"), "{msg}");
        let msg = err(build(
            &mut layer,
            &[spec(&[None, None, Some(1)]), spec(&[None, Some(3), Some(1)]), spec(&[None, Some(4), Some(1)])],
        ));
        assert!(msg.contains("input 1 (None, 3, 1) and input 2 (None, 4, 1)"), "{msg}");
        let mut layer = Concatenate::new().axis(2);
        let msg = err(build(&mut layer, &[spec(&[None, Some(2)]), spec(&[None, Some(2)])]));
        assert!(msg.contains("axis 2") && msg.contains("rank 2") && msg.contains("(None, 2)"), "{msg}");
    }

    #[test]
    fn concatenate_masks() {
        let layer = Concatenate::new();
        let x = t(&[0.0; 6], &[1, 3, 2]);
        let m1 = t(&[1.0, 1.0, 0.0], &[1, 3]);
        let m2 = t(&[0.0, 1.0, 1.0], &[1, 3]);
        let out = layer.compute_mask(&[x.clone(), x.clone()], &[Some(m1.clone()), Some(m2.clone())]).unwrap();
        assert_eq!(vals(&out.unwrap()), vec![0.0, 1.0, 0.0]);
        let out = layer.compute_mask(&[x.clone(), x.clone()], &[None, Some(m2.clone())]).unwrap();
        assert_eq!(vals(&out.unwrap()), vec![0.0, 1.0, 1.0]);
        assert!(layer.compute_mask(&[x.clone(), x.clone()], &[None, None]).unwrap().is_none());

        let layer = Concatenate::new().axis(1);
        let msg = err(layer.compute_mask(&[x.clone(), x.clone()], &[Some(m1.clone()), None]));
        assert!(msg.contains("last axis") && msg.contains("axis 1"), "{msg}");
        let msg = err(call(&layer, &[x.clone(), x.clone()], &[Some(m1), None], &[], false));
        assert!(msg.contains("last axis"), "{msg}");
        assert!(layer.compute_mask(&[x.clone(), x], &[None, None]).unwrap().is_none());
    }

    #[test]
    fn adds_elementwise() {
        let mut layer = Add::new();
        let (out, _) =
            build(&mut layer, &[spec(&[None, Some(2)]), spec(&[Some(4), Some(2)]), spec(&[None, Some(2)])]).unwrap();
        assert_eq!(out.to_string(), "(4, 2)");
        let y = call(
            &layer,
            &[t(&[1.0, 2.0], &[1, 2]), t(&[10.0, 20.0], &[1, 2]), t(&[0.5, -1.0], &[1, 2])],
            &[],
            &[],
            false,
        )
        .unwrap();
        assert_eq!(vals(&y), vec![11.5, 21.0]);
        assert_eq!(layer.arity(), Arity::AtLeast(2));
    }

    #[test]
    fn add_shape_errors_name_the_input_and_both_specs() {
        let mut layer = Add::new();
        let msg = err(build(&mut layer, &[spec(&[None, Some(3)]), spec(&[None, Some(3)]), spec(&[None, Some(4)])]));
        assert!(msg.contains("input 2") && msg.contains("(None, 3)") && msg.contains("(None, 4)"), "{msg}");
        let msg = err(build(&mut layer, &[spec(&[None, Some(3)]), spec(&[None, Some(3), Some(1)])]));
        assert!(msg.contains("input 1") && msg.contains("(None, 3, 1)"), "{msg}");
        // The conflict is with input 1, whose size is known.
        let msg = err(build(&mut layer, &[spec(&[None, None]), spec(&[None, Some(3)]), spec(&[None, Some(4)])]));
        assert!(msg.contains("input 1 (None, 3) and input 2 (None, 4)"), "{msg}");
        let msg = err(build(&mut layer, &[spec(&[None, Some(3)]), TensorSpec::batched(&[3], DType::I64)]));
        assert!(msg.contains("input 0 f32") && msg.contains("input 1 i64"), "{msg}");
    }

    #[test]
    fn add_masks_multiply() {
        let layer = Add::new();
        let x = t(&[0.0; 6], &[1, 3, 2]);
        let m1 = t(&[1.0, 1.0, 0.0], &[1, 3]);
        let m2 = t(&[0.0, 1.0, 1.0], &[1, 3]);
        let out = layer.compute_mask(&[x.clone(), x.clone()], &[Some(m1.clone()), Some(m2)]).unwrap();
        assert_eq!(vals(&out.unwrap()), vec![0.0, 1.0, 0.0]);
        let out = layer.compute_mask(&[x.clone(), x.clone()], &[Some(m1), None]).unwrap();
        assert_eq!(vals(&out.unwrap()), vec![1.0, 1.0, 0.0]);
        assert!(layer.compute_mask(&[x.clone(), x], &[None, None]).unwrap().is_none());
        assert!(layer.supports_masking());
    }

    #[test]
    fn configs_round_trip() {
        let layer = Concatenate::new().axis(-2);
        let back = Concatenate::from_config(&layer.config()).unwrap();
        assert_eq!(back.config(), serde_json::json!({"axis": -2}));
        assert_eq!(Concatenate::from_config(&serde_json::json!({})).unwrap().axis, -1);
        let add = Add::new();
        assert_eq!(Add::from_config(&add.config()).unwrap().config(), serde_json::json!({}));
        let msg = err(Add::from_config(&serde_json::json!({"axis": 1})));
        assert!(msg.contains("axis"), "{msg}");
    }
}
