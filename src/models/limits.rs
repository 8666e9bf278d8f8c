//! [`ConfigLimits`]: bounds on a model config read from outside (a saved
//! file, JSON text), so that a small crafted config cannot cost seconds or
//! gigabytes before it is rejected. The JSON text is measured by a streaming
//! pass that allocates nothing; the parsed config's shape is checked before
//! any graph work.

use std::cell::Cell;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use strata_core::{Error, Result};

use super::config::ModelConfig;

/// Bounds on a model config read by [`load_model`](crate::load_model),
/// [`Model::from_json`](crate::Model::from_json) and
/// [`Model::from_config`](crate::Model::from_config). The defaults are far
/// above any real model; a config beyond one is an error naming the limit,
/// the value found and how to raise it.
///
/// ```
/// use strata::models::ConfigLimits;
/// use strata::prelude::*;
/// # fn main() -> strata::Result<()> {
/// let model = Sequential::new().add(Input::new([3])).add(Dense::new(2)).add(Dense::new(1)).build()?;
/// let tight = ConfigLimits { max_layers: 1, ..ConfigLimits::default() };
/// let e = Model::from_config_with(&model.get_config(), BuildOptions::new().config_limits(tight)).unwrap_err();
/// assert!(e.to_string().contains("2 layers") && e.to_string().contains("max_layers"), "{e}");
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigLimits {
    /// The most bytes of JSON text (default 16 MiB; a 1,000-layer model's
    /// config is about 1 MiB).
    pub max_json_bytes: usize,
    /// The most JSON values (numbers, strings, arrays, objects, ...) in the
    /// text (default 4,000,000).
    pub max_json_values: usize,
    /// The most layers, nested models' layers included (default 100,000).
    pub max_layers: usize,
    /// The most calls of one layer (`inbound_nodes` entries; default 10,000).
    pub max_calls_per_layer: usize,
    /// The most tensors one call reads (default 10,000).
    pub max_inputs_per_call: usize,
    /// The most graph edges (tensor references), nested models included
    /// (default 1,000,000).
    pub max_edges: usize,
    /// The deepest nesting of models inside models (default 32).
    pub max_nesting: usize,
}

impl Default for ConfigLimits {
    fn default() -> Self {
        ConfigLimits {
            max_json_bytes: 16 << 20,
            max_json_values: 4_000_000,
            max_layers: 100_000,
            max_calls_per_layer: 10_000,
            max_inputs_per_call: 10_000,
            max_edges: 1_000_000,
            max_nesting: 32,
        }
    }
}

fn exceeded(what: &str, found: impl std::fmt::Display, limit: usize, field: &str) -> Error {
    Error::Config(format!(
        "model: {what} {found} exceeds the limit of {limit} (ConfigLimits::{field}; raise it with \
         LoadOptions::config_limits or BuildOptions::config_limits)"
    ))
}

impl ConfigLimits {
    /// Checks JSON text against [`max_json_bytes`](Self::max_json_bytes) and
    /// [`max_json_values`](Self::max_json_values) in one streaming pass that
    /// keeps nothing (nesting deeper than 128 is refused by the JSON reader
    /// itself). Text that is not JSON passes: the parser reports it.
    pub fn check_json(&self, text: &str) -> Result<()> {
        self.scan_json(text).map(|_| ())
    }

    /// [`check_json`](Self::check_json), also returning the JSON reader's
    /// error when the text is not JSON.
    pub(crate) fn scan_json(&self, text: &str) -> Result<Option<serde_json::Error>> {
        if text.len() > self.max_json_bytes {
            return Err(exceeded(
                "the config's JSON of",
                format!("{} bytes", text.len()),
                self.max_json_bytes,
                "max_json_bytes",
            ));
        }
        let left = Cell::new(self.max_json_values);
        let over = Cell::new(false);
        let mut de = serde_json::Deserializer::from_str(text);
        let counted = Count { left: &left, over: &over }.deserialize(&mut de).and_then(|()| de.end());
        if over.get() {
            return Err(exceeded(
                "the config's JSON, with more values than",
                self.max_json_values,
                self.max_json_values,
                "max_json_values",
            ));
        }
        Ok(counted.err())
    }

    /// Checks one model config's shape before anything is built: its
    /// layers, calls, inputs per call and edges, added to `seen` (shared with
    /// the models nested in it), at nesting `depth` (0 for the outer model).
    pub(crate) fn check_config(&self, config: &ModelConfig, depth: usize, seen: &mut Seen) -> Result<()> {
        if depth > self.max_nesting {
            return Err(exceeded("a model nested", format!("{depth} deep"), self.max_nesting, "max_nesting"));
        }
        seen.layers = seen.layers.saturating_add(config.layers.len());
        if seen.layers > self.max_layers {
            return Err(exceeded("the config's", format!("{} layers", seen.layers), self.max_layers, "max_layers"));
        }
        for layer in &config.layers {
            if layer.inbound_nodes.len() > self.max_calls_per_layer {
                return Err(exceeded(
                    &format!("layer `{}` with", layer.name),
                    format!("{} calls", layer.inbound_nodes.len()),
                    self.max_calls_per_layer,
                    "max_calls_per_layer",
                ));
            }
            for call in &layer.inbound_nodes {
                if call.len() > self.max_inputs_per_call {
                    return Err(exceeded(
                        &format!("a call of layer `{}` with", layer.name),
                        format!("{} inputs", call.len()),
                        self.max_inputs_per_call,
                        "max_inputs_per_call",
                    ));
                }
                seen.edges = seen.edges.saturating_add(call.len());
            }
        }
        seen.edges = seen.edges.saturating_add(config.outputs.len());
        if seen.edges > self.max_edges {
            return Err(exceeded(
                "the config's",
                format!("{} tensor references", seen.edges),
                self.max_edges,
                "max_edges",
            ));
        }
        Ok(())
    }
}

/// The layers and edges counted so far in one config and its nested models.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    layers: usize,
    edges: usize,
}

/// Visits every JSON value, counting down `left`; at zero it sets `over`
/// and stops the parse.
#[derive(Clone, Copy)]
struct Count<'a> {
    left: &'a Cell<usize>,
    over: &'a Cell<bool>,
}

impl Count<'_> {
    fn tick<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        match self.left.get() {
            0 => {
                self.over.set(true);
                Err(E::custom("too many values"))
            }
            n => {
                self.left.set(n - 1);
                Ok(())
            }
        }
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> std::result::Result<(), E> {
        self.tick()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> std::result::Result<(), E> {
        self.tick()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> std::result::Result<(), E> {
        self.tick()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> std::result::Result<(), E> {
        self.tick()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> std::result::Result<(), E> {
        self.tick()
    }
    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        self.tick()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        self.tick()?;
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        self.tick()?;
        while map.next_key_seed(self)?.is_some() {
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}
