//! Matching a [`StateDict`] against a model's parameters by torchreid name and shape, and
//! writing the values into the model only when everything matches.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use burn::module::{Flag, Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};

use super::state_dict::StateDict;
use crate::error::{Error, Result};
use crate::models::ReidModel;

/// What a successful load did besides loading every backbone weight.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    /// Parameters loaded.
    pub loaded: usize,
    /// Classifier keys left at their initial values, with the reason.
    pub skipped: Vec<String>,
}

/// Where a parameter of the model lives in a torchreid `state_dict`.
#[derive(Debug, Clone)]
struct Slot {
    key: String,
    /// Shape as torch stores it.
    torch_shape: Vec<usize>,
    /// Burn's `Linear` stores the transpose of torch's weight.
    transpose: bool,
}

/// Tracks the module path during a traversal; enum variants are not part of torch's names.
#[derive(Default)]
struct PathTracker {
    stack: Vec<(String, String)>,
}

impl PathTracker {
    fn enter(&mut self, name: &str, container: &str) {
        self.stack.push((name.to_string(), container.to_string()));
    }

    fn exit(&mut self) {
        self.stack.pop();
    }

    /// The slot of the parameter at the top of the stack, for a parameter of `burn_shape`.
    fn slot(&self, model: &ReidModel, burn_shape: &[usize]) -> Slot {
        let (param, container) = self.stack.last().cloned().unwrap_or_default();
        let parents: Vec<&str> = self.stack[..self.stack.len().saturating_sub(1)]
            .iter()
            .filter(|(_, c)| !c.starts_with("Enum:"))
            .map(|(n, _)| n.as_str())
            .collect();
        let is_norm = matches!(
            container.as_str(),
            "Struct:BatchNorm" | "Struct:InstanceNorm"
        );
        let torch_param = match param.as_str() {
            "gamma" if is_norm => "weight",
            "beta" if is_norm => "bias",
            other => other,
        };
        let path = parents
            .into_iter()
            .chain([torch_param])
            .collect::<Vec<_>>()
            .join(".");
        let transpose = container == "Struct:Linear" && param == "weight";
        let torch_shape = if transpose {
            burn_shape.iter().rev().copied().collect()
        } else {
            burn_shape.to_vec()
        };
        Slot {
            key: model.torch_key(&path),
            torch_shape,
            transpose,
        }
    }
}

struct SlotCollector<'a> {
    model: &'a ReidModel,
    tracker: PathTracker,
    slots: Vec<Slot>,
    ids: Vec<ParamId>,
    /// The normalization layers' training flags, with the torch name they would have.
    flags: Vec<(ParamId, String)>,
}

impl ModuleVisitor for SlotCollector<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.tracker.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.tracker.exit();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let shape = param.lazy_shape().dims::<D>().to_vec();
        self.slots.push(self.tracker.slot(self.model, &shape));
        self.ids.push(param.id);
    }

    fn visit_flag(&mut self, flag: &Param<Flag>) {
        let key = self.tracker.slot(self.model, &[]).key;
        self.flags.push((flag.id, key));
    }
}

/// The training flags of the model's normalization layers (whether a BatchNorm normalizes by
/// the batch and updates its running statistics), each with its torch-style name
/// (`conv1.bn.training`).
pub(crate) fn torch_flag_keys(model: &ReidModel) -> Vec<(ParamId, String)> {
    collect(model).flags
}

/// torchreid's key of each parameter of `model`, by parameter id (running statistics, whose
/// ids are private to Burn, are named after their norm's `weight`).
pub fn torch_keys_by_id(model: &ReidModel) -> HashMap<ParamId, String> {
    let (ids, slots) = collect_ids_and_slots(model);
    ids.into_iter()
        .zip(slots)
        .map(|(id, slot)| (id, slot.key))
        .collect()
}

/// The torchreid keys of every parameter and buffer of `model`, with torch's shapes.
pub fn expected_keys(model: &ReidModel) -> Vec<(String, Vec<usize>)> {
    collect_slots(model)
        .into_iter()
        .map(|s| (s.key, s.torch_shape))
        .collect()
}

fn collect_slots(model: &ReidModel) -> Vec<Slot> {
    collect_ids_and_slots(model).1
}

/// Every parameter's id and slot, in the model's traversal order.
fn collect_ids_and_slots(model: &ReidModel) -> (Vec<ParamId>, Vec<Slot>) {
    let collector = collect(model);
    (collector.ids, collector.slots)
}

fn collect(model: &ReidModel) -> SlotCollector<'_> {
    let mut collector = SlotCollector {
        model,
        tracker: PathTracker::default(),
        slots: Vec::new(),
        ids: Vec::new(),
        flags: Vec::new(),
    };
    model.visit(&mut collector);
    collector
}

struct Writer<'a> {
    model: &'a ReidModel,
    tracker: PathTracker,
    dict: &'a StateDict,
    skip: &'a BTreeSet<String>,
    loaded: usize,
}

impl ModuleMapper for Writer<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        self.tracker.enter(name, container_type);
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.tracker.exit();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let burn_shape = param.lazy_shape().dims::<D>().to_vec();
        let slot = self.tracker.slot(self.model, &burn_shape);
        if self.skip.contains(&slot.key) {
            return param;
        }
        let Some(raw) = self.dict.tensors.get(&slot.key) else {
            return param;
        };
        let device = param.lazy_device();
        let tensor = Tensor::<D>::from_data(
            TensorData::new(raw.data.clone(), slot.torch_shape.clone()),
            &device,
        );
        let tensor = if slot.transpose {
            tensor.transpose()
        } else {
            tensor
        };
        self.loaded += 1;
        let id = param.id;
        param.transform_for_load(tensor, id)
    }
}

/// Loads `dict` into `model`. Checks everything first: a missing, unexpected or mis-shaped key
/// is an error naming the keys, and the model is returned untouched only on success. Classifier
/// weights whose class count differs (or that are absent) are skipped and reported.
pub fn load_state_dict(model: ReidModel, dict: &StateDict) -> Result<(ReidModel, LoadReport)> {
    let slots = collect_slots(&model);
    let expected: BTreeMap<&str, &Slot> = slots.iter().map(|s| (s.key.as_str(), s)).collect();
    let mut report = LoadReport::default();
    let mut skip = BTreeSet::new();
    let (mut missing, mut mismatched) = (Vec::new(), Vec::new());
    for slot in &slots {
        let is_classifier = slot.key.starts_with("classifier.");
        match dict.tensors.get(&slot.key) {
            None if is_classifier => {
                skip.insert(slot.key.clone());
                report
                    .skipped
                    .push(format!("{}: absent from the file", slot.key));
            }
            None => missing.push(slot.key.clone()),
            Some(raw) if raw.shape != slot.torch_shape => {
                if is_classifier {
                    skip.insert(slot.key.clone());
                    report.skipped.push(format!(
                        "{}: file has {:?}, model has {:?} (different class count)",
                        slot.key, raw.shape, slot.torch_shape
                    ));
                } else {
                    mismatched.push(format!(
                        "{} (file {:?}, model {:?})",
                        slot.key, raw.shape, slot.torch_shape
                    ));
                }
            }
            Some(_) => {}
        }
    }
    let unexpected: Vec<&String> = dict
        .tensors
        .keys()
        .filter(|k| !expected.contains_key(k.as_str()))
        .collect();
    if !missing.is_empty() || !mismatched.is_empty() || !unexpected.is_empty() {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("missing keys: {}", list(&missing)));
        }
        if !unexpected.is_empty() {
            parts.push(format!("unexpected keys: {}", list(&unexpected)));
        }
        if !mismatched.is_empty() {
            parts.push(format!("mis-shaped keys: {}", list(&mismatched)));
        }
        return Err(Error::WeightMismatch {
            arch: model.arch.to_string(),
            details: parts.join("; "),
        });
    }
    for note in &report.skipped {
        log::warn!("{}: classifier not loaded: {note}", model.arch);
    }
    let (mapped, loaded) = write(model, dict, &skip);
    report.loaded = loaded;
    Ok((mapped, report))
}

/// Loads the tensors of `dict` whose name and shape match a parameter of `model`, as
/// torchreid's `init_pretrained_weights` starts a model from ImageNet weights: the file's own
/// head (ImageNet's 1000 classes) and keys the model lacks are passed over, the model's keys the
/// file lacks keep their initial values; all are listed in the report. An error when fewer than
/// half of the model's parameters outside the classifier load: the file is not this
/// architecture's backbone.
pub fn load_backbone(model: ReidModel, dict: &StateDict) -> Result<(ReidModel, LoadReport)> {
    let slots = collect_slots(&model);
    let mut report = LoadReport::default();
    let mut skip = BTreeSet::new();
    for slot in &slots {
        let reason = match dict.tensors.get(&slot.key) {
            None => "absent from the file".to_string(),
            Some(raw) if raw.shape != slot.torch_shape => {
                format!("file has {:?}, model has {:?}", raw.shape, slot.torch_shape)
            }
            Some(_) => continue,
        };
        skip.insert(slot.key.clone());
        report.skipped.push(format!("{}: {reason}", slot.key));
    }
    let backbone = slots
        .iter()
        .filter(|s| !s.key.starts_with("classifier."))
        .count();
    let kept = slots.len() - skip.len();
    if kept * 2 < backbone {
        return Err(Error::WeightMismatch {
            arch: model.arch.to_string(),
            details: format!(
                "only {kept} of the backbone's {backbone} parameters are in the file: {}",
                list(&report.skipped)
            ),
        });
    }
    let (mapped, loaded) = write(model, dict, &skip);
    report.loaded = loaded;
    Ok((mapped, report))
}

/// Writes the tensors of `dict` into `model`, except the keys in `skip`; returns the model and
/// how many parameters were written.
fn write(model: ReidModel, dict: &StateDict, skip: &BTreeSet<String>) -> (ReidModel, usize) {
    let mut writer = Writer {
        model: &model,
        tracker: PathTracker::default(),
        dict,
        skip,
        loaded: 0,
    };
    // The writer borrows the model to name its parameters while mapping a copy.
    let mapped = model.clone().map(&mut writer);
    let loaded = writer.loaded;
    (mapped, loaded)
}

fn list<T: std::fmt::Display>(items: &[T]) -> String {
    const SHOWN: usize = 12;
    let mut out = items
        .iter()
        .take(SHOWN)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOWN {
        out.push_str(&format!(" … and {} more", items.len() - SHOWN));
    }
    out
}
