//! The graph compiler: turns the symbolic calls between a model's inputs and
//! outputs into a built [`Model`], in four phases — check the declared
//! inputs, order the calls (walking back from the outputs), name the layers,
//! and build each call in order (creating weights, inferring and checking
//! every output spec).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use strata_core::{Device, Error, Result, Rng};
use strata_layers::{snake_case, BuildContext, TensorSpec};

use super::functional::{CallSite, LayerCell, SymKind, SymbolicTensor};
use super::model::{check_spec_size, BuildOptions, InputEntry, LayerEntry, Model, Node, Producer, WeightBudget};

/// The values of the graph under construction: their specs, what produced
/// them, and which symbolic tensor each one is.
#[derive(Default)]
struct Values {
    /// Value index of each symbolic tensor, by [`key`].
    of: HashMap<(u64, usize), usize>,
    specs: Vec<TensorSpec>,
    producers: Vec<Producer>,
}

impl Values {
    fn push(&mut self, key: (u64, usize), spec: TensorSpec, producer: Producer) -> usize {
        let v = self.specs.len();
        self.of.insert(key, v);
        self.specs.push(spec);
        self.producers.push(producer);
        v
    }
}

/// What identifies a symbolic tensor's value: an input's id, or its call's id
/// and which output of the call it is (every output of one call is the same
/// call, whichever of them the graph reaches it through).
fn key(sym: &SymbolicTensor) -> (u64, usize) {
    match &sym.0.kind {
        SymKind::Input { .. } => (sym.0.id, 0),
        SymKind::Call { site, index } => (site.id, *index),
    }
}

/// Builds the model whose `outputs` are computed from `inputs`.
pub(crate) fn assemble(
    inputs: &[SymbolicTensor],
    outputs: &[SymbolicTensor],
    options: BuildOptions,
    sequential: bool,
) -> Result<Model> {
    let device = match options.device {
        Some(d) => d,
        None => crate::backend::from_env()?,
    };
    let mut rng = Rng::seed(options.seed.unwrap_or_else(default_seed));
    let limit = options.limit.clone();
    if inputs.is_empty() {
        return Err(Error::Graph("a model needs at least one input (Input::new(shape))".into()));
    }
    if outputs.is_empty() {
        return Err(Error::Graph("a model needs at least one output".into()));
    }
    let mut values = Values::default();
    let declared = declare_inputs(inputs, &mut values, limit.is_some())?;
    let order = order_calls(inputs, outputs, &values)?;
    let unused = inputs.iter().position(|sym| !order.used_inputs.contains(&sym.0.id));
    if let Some(i) = unused {
        let name = declared[i].0.as_deref().unwrap_or("input_layer");
        return Err(Error::Graph(format!("input {i} (`{name}`) is not connected to any output")));
    }
    let (cells, layer_index) = unique_layers(&order.calls);
    let input_names: Vec<Option<String>> = declared.iter().map(|(n, _)| n.clone()).collect();
    let (layer_names, input_names) = assign_names(&cells, &input_names)?;
    let mut layers: Vec<LayerEntry> = cells
        .into_iter()
        .zip(layer_names)
        .map(|(cell, name)| LayerEntry { name, cell, output_specs: Vec::new() })
        .collect();
    let nodes = build_calls(&order.calls, &layer_index, &mut layers, &mut values, &mut rng, &device, limit.as_ref())?;

    let mut symbols: Vec<Option<SymbolicTensor>> = vec![None; values.specs.len()];
    for sym in inputs {
        symbols[values.of[&key(sym)]] = Some(sym.clone());
    }
    for (site, node) in order.calls.iter().zip(&nodes) {
        for (k, &v) in node.outputs.iter().enumerate() {
            symbols[v] = Some(SymbolicTensor::of_call(site, k));
        }
    }
    let symbols = symbols
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| Error::Graph("internal: a value without its symbolic tensor".into()))?;
    let outputs: Vec<usize> = outputs.iter().map(|o| values.of[&key(o)]).collect();
    let inputs = input_names.into_iter().zip(declared).map(|(name, (_, spec))| InputEntry { name, spec }).collect();
    let named = options.name.is_some();
    Ok(Model {
        name: options.name.unwrap_or_else(|| if sequential { "sequential" } else { "functional" }.to_string()),
        named,
        sequential,
        layers,
        nodes,
        inputs,
        outputs,
        producers: values.producers,
        value_specs: values.specs,
        symbols,
        device,
        rng: Mutex::new(rng),
        compiled: Mutex::new(None),
    })
}

/// Phase 1: the model's inputs are declared once each and made by
/// `Input::new`; each becomes a value. Returns their names and specs.
fn declare_inputs(
    inputs: &[SymbolicTensor],
    values: &mut Values,
    bounded: bool,
) -> Result<Vec<(Option<String>, TensorSpec)>> {
    let mut declared = Vec::with_capacity(inputs.len());
    for (i, sym) in inputs.iter().enumerate() {
        if let Some(p) = &sym.0.pending {
            return Err(Error::Graph(p.clone()));
        }
        let SymKind::Input { name, spec } = &sym.0.kind else {
            return Err(Error::Graph(format!(
                "model input {i} is a layer's output; model inputs must be made with Input::new(shape)"
            )));
        };
        if values.of.contains_key(&key(sym)) {
            return Err(Error::Graph(format!("model input {i} is listed twice")));
        }
        if bounded {
            check_spec_size(spec).map_err(|e| Error::Graph(format!("model input {i}: {e}")))?;
        }
        check_sample_size(spec).map_err(|e| Error::Graph(format!("model input {i}: {e}")))?;
        values.push(key(sym), spec.clone(), Producer::Input(i));
        declared.push((name.clone(), spec.clone()));
    }
    Ok(declared)
}

/// The calls a model runs, in an order where every call comes after the
/// calls it reads, and the inputs they reach.
struct CallOrder {
    calls: Vec<Arc<CallSite>>,
    used_inputs: HashSet<u64>,
}

/// Phase 2: walks back from the outputs (iteratively, so deep models do not
/// overflow the stack) to order the calls; a cycle, or an input that is not
/// among the model's, is an error.
fn order_calls(inputs: &[SymbolicTensor], outputs: &[SymbolicTensor], values: &Values) -> Result<CallOrder> {
    let mut calls: Vec<Arc<CallSite>> = Vec::new();
    let mut state: HashMap<u64, bool> = HashMap::new(); // false: on the stack, true: done
    let mut used_inputs: HashSet<u64> = HashSet::new();
    enum Visit {
        Tensor(SymbolicTensor),
        Done(Arc<CallSite>),
    }
    for (oi, out) in outputs.iter().enumerate() {
        let mut stack: Vec<Visit> = vec![Visit::Tensor(out.clone())];
        while let Some(visit) = stack.pop() {
            let sym = match visit {
                Visit::Done(site) => {
                    state.insert(site.id, true);
                    calls.push(site);
                    continue;
                }
                Visit::Tensor(sym) => sym,
            };
            if let Some(p) = &sym.0.pending {
                return Err(Error::Graph(p.clone()));
            }
            match &sym.0.kind {
                SymKind::Input { name, .. } => {
                    if !values.of.contains_key(&key(&sym)) {
                        let name = name.as_deref().unwrap_or("input_layer");
                        return Err(Error::Graph(format!(
                            "disconnected: output {oi} depends on the input `{name}`, which is not among the \
                             model's {} input(s); pass it to Model::new",
                            inputs.len()
                        )));
                    }
                    used_inputs.insert(sym.0.id);
                }
                SymKind::Call { site, .. } => {
                    match state.get(&site.id) {
                        Some(true) => continue,
                        Some(false) => return Err(Error::Graph("the graph has a cycle".into())),
                        None => {}
                    }
                    state.insert(site.id, false);
                    stack.push(Visit::Done(site.clone()));
                    for a in site.inputs.iter().rev() {
                        stack.push(Visit::Tensor(a.clone()));
                    }
                }
            }
        }
    }
    Ok(CallOrder { calls, used_inputs })
}

/// Phase 3a: the distinct layers of the calls, in order of first use, and
/// each layer's index by id (a shared layer is one layer called twice).
fn unique_layers(calls: &[Arc<CallSite>]) -> (Vec<Arc<LayerCell>>, HashMap<u64, usize>) {
    let mut layer_index: HashMap<u64, usize> = HashMap::new();
    let mut cells: Vec<Arc<LayerCell>> = Vec::new();
    for site in calls {
        layer_index.entry(site.layer.id).or_insert_with(|| {
            cells.push(site.layer.clone());
            cells.len() - 1
        });
    }
    (cells, layer_index)
}

/// Phase 3b: names layers and inputs. Explicit names must be unique; the
/// others get Keras' `snake_case(type)` plus a counter, skipping names
/// already taken.
fn assign_names(cells: &[Arc<LayerCell>], inputs: &[Option<String>]) -> Result<(Vec<String>, Vec<String>)> {
    let mut taken: HashMap<String, String> = HashMap::new();
    let hints: Vec<(Option<String>, String)> = cells
        .iter()
        .map(|c| {
            let l = c.layer.read().map_err(|_| Error::msg("layer lock poisoned"))?;
            Ok((c.name.clone().or_else(|| l.name_hint().map(str::to_string)), l.class_name().to_string()))
        })
        .collect::<Result<_>>()?;
    let explicit = inputs
        .iter()
        .map(|n| n.as_ref().map(|n| (n.clone(), "InputLayer".to_string())))
        .chain(hints.iter().map(|(h, c)| h.as_ref().map(|h| (h.clone(), c.clone()))));
    for (name, class) in explicit.flatten() {
        if let Some(other) = taken.insert(name.clone(), class.clone()) {
            return Err(Error::Graph(format!(
                "duplicate layer name `{name}` (used by a {other} and a {class}); layer names must be unique"
            )));
        }
    }
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut fresh = |base: String, taken: &mut HashMap<String, String>| -> String {
        loop {
            let k = counters.entry(base.clone()).or_insert(0);
            let candidate = if *k == 0 { base.clone() } else { format!("{base}_{k}") };
            *k += 1;
            if !taken.contains_key(&candidate) {
                taken.insert(candidate.clone(), String::new());
                return candidate;
            }
        }
    };
    let input_names =
        inputs.iter().map(|n| n.clone().unwrap_or_else(|| fresh("input_layer".to_string(), &mut taken))).collect();
    let layer_names =
        hints.into_iter().map(|(hint, class)| hint.unwrap_or_else(|| fresh(snake_case(&class), &mut taken))).collect();
    Ok((layer_names, input_names))
}

/// Phase 4: builds each call in order: checks its input count, lets the
/// layer create its weights and infer its output spec, and records the
/// call as a node. With a weight budget (loading a file), the weights
/// created and every output spec are checked against it.
fn build_calls(
    calls: &[Arc<CallSite>],
    layer_index: &HashMap<u64, usize>,
    layers: &mut [LayerEntry],
    values: &mut Values,
    rng: &mut Rng,
    device: &Device,
    limit: Option<&WeightBudget>,
) -> Result<Vec<Node>> {
    let mut nodes = Vec::with_capacity(calls.len());
    for site in calls {
        let li = layer_index[&site.layer.id];
        let arg_values: Vec<usize> = site.inputs.iter().map(|a| values.of[&key(a)]).collect();
        let specs: Vec<TensorSpec> = arg_values.iter().map(|&v| values.specs[v].clone()).collect();
        let entry = &mut layers[li];
        let mut guard = entry.cell.layer.write().map_err(|_| Error::msg("layer lock poisoned"))?;
        let label = format!("{} ({})", entry.name, guard.class_name());
        let arity = guard.arity();
        if !arity.accepts(specs.len()) {
            return Err(Error::msg(format!("takes {arity}, received {}", specs.len())).in_layer(label));
        }
        let declared = guard.num_outputs();
        let mut weights = entry.cell.weights.write().map_err(|_| Error::msg("layer lock poisoned"))?;
        let before = weights.len();
        let out_specs = {
            let mut ctx = BuildContext::new(&mut weights, rng, device);
            if let Some(budget) = limit {
                ctx = ctx.with_limit(budget.load(Ordering::Relaxed));
            }
            crate::utils::catch_panic(|| guard.build_multi(&specs, &mut ctx)).map_err(|e| e.in_layer(label.clone()))?
        };
        if out_specs.len() != declared {
            return Err(Error::msg(format!(
                "build returned {} output spec(s), but num_outputs declares {declared}",
                out_specs.len()
            ))
            .in_layer(label));
        }
        if let Some(budget) = limit {
            let added: usize = weights[before..].iter().map(|w| w.value.numel()).sum();
            let left = budget.load(Ordering::Relaxed).saturating_sub(added);
            budget.store(left, Ordering::Relaxed);
            for spec in &out_specs {
                check_spec_size(spec).map_err(|e| e.in_layer(label.clone()))?;
            }
        }
        for spec in &out_specs {
            check_sample_size(spec).map_err(|e| e.in_layer(label.clone()))?;
        }
        drop((weights, guard));
        let n = nodes.len();
        let outputs = out_specs
            .iter()
            .enumerate()
            .map(|(k, spec)| values.push((site.id, k), spec.clone(), Producer::Node(n, k)))
            .collect();
        entry.output_specs.push(out_specs);
        nodes.push(Node { layer: li, inputs: arg_values, outputs });
    }
    Ok(nodes)
}

/// A spec whose known axes hold more elements than `usize` counts is an
/// [`Error::SizeOverflow`] naming it (no tensor of that shape can exist).
fn check_sample_size(spec: &TensorSpec) -> Result<()> {
    match spec.dims.iter().flatten().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        Some(_) => Ok(()),
        None => Err(Error::SizeOverflow {
            op: "model".into(),
            message: format!("the shape {spec} has more elements per sample than usize holds"),
        }),
    }
}

/// The seed used when none is given: the one set with
/// [`set_random_seed`](crate::set_random_seed), else a fresh one per model.
fn default_seed() -> u64 {
    crate::utils::global_seed().unwrap_or_else(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
        );
        h.finish()
    })
}
