//! deep-object-reid's config conventions, turned into reid's keys before the sections are read:
//! `_base_` files, its names for keys reid spells otherwise, `train.sam`, and the keys of its
//! features reid does not have — accepted at the value that describes what reid does (its
//! default: a config dumped from deep-object-reid's `get_default_config()` loads), refused with
//! their name otherwise.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use super::invalid;
use crate::error::{Error, Result};

/// A switch without which a key changes nothing: a key and its value that means "off" (which
/// the key's absence means too).
type Switch = Option<(&'static str, &'static str)>;

/// Keys of features reid does not implement: (key, the value that describes reid, its switch,
/// what the feature is).
const AT_REIDS_VALUE: &[(&str, &str, Switch, &str)] = &[
    (
        "data.tb_log_dir",
        "''",
        None,
        "a TensorBoard folder apart (reid writes to save_dir)",
    ),
    (
        "loss.am_binary.amb_t",
        "1.0",
        None,
        "AM-binary's similarity temperature",
    ),
    (
        "loss.softmax.conf_penalty",
        "0.0",
        None,
        "the confidence penalty",
    ),
    (
        "loss.softmax.margin_type",
        "cos",
        None,
        "margins other than the cosine one",
    ),
    ("loss.softmax.pr_product", "false", None, "the PR product"),
    (
        "loss.softmax.symmetric_ce",
        "false",
        None,
        "the symmetric cross-entropy",
    ),
    (
        "lr_finder.path_to_savefig",
        "''",
        Some(("lr_finder.enable", "false")),
        "a plot of the range test (reid writes lr_find.csv)",
    ),
    (
        "metric_losses.enable",
        "false",
        None,
        "its metric losses on the embeddings (center, triplet and local-push terms; reid has \
         loss.center and loss.name triplet)",
    ),
    (
        "model.IN_conv1",
        "false",
        None,
        "instance normalization after the first convolution",
    ),
    (
        "model.IN_first",
        "false",
        None,
        "instance normalization of the input",
    ),
    (
        "model.bn_eval",
        "false",
        None,
        "BatchNorm in eval mode while training",
    ),
    (
        "model.bn_frozen",
        "false",
        None,
        "frozen BatchNorm parameters",
    ),
    // Its Dropout with `dist: none` (the default) returns its input whatever `p` says; the
    // other distributions drop.
    (
        "model.dropout_backbone.dist",
        "none",
        None,
        "dropout in the backbone",
    ),
    (
        "model.dropout_cls.dist",
        "none",
        None,
        "dropout before the classifier",
    ),
    ("model.feature_dim", "512", None, "other embedding sizes"),
    ("model.pooling_type", "avg", None, "other global poolings"),
    (
        "model.resume",
        "''",
        None,
        "resuming from a named file (reid resumes from save_dir)",
    ),
    (
        "mutual_learning.aux_configs",
        "[]",
        None,
        "peers from config files (mutual_learning.arch)",
    ),
    ("nncf.nncf_config_path", "''", None, "NNCF compression"),
    (
        "test.estimate_multilabel_thresholds",
        "false",
        None,
        "estimated class thresholds",
    ),
    (
        "test.save_initial_metric",
        "false",
        None,
        "the metric before training",
    ),
    (
        "test.test_before_train",
        "false",
        None,
        "an evaluation before training",
    ),
];

/// Keys and sections that change nothing in reid: parameters of the features above when they
/// are off (the dropouts' other keys once their `dist` is checked), of models reid does not have (graph and transformer heads), of downloads,
/// exports and checkpoints reid does its own way, and keys deep-object-reid's code never reads
/// (`data.min_samples_per_id`, `sc_integration`).
const IGNORED: &[&str] = &[
    "custom_datasets.names",
    "data.min_samples_per_id",
    "metric_losses",
    "model.download_weights",
    "model.dropout_backbone",
    "model.dropout_cls",
    "model.export_onnx_opset",
    "model.gcn",
    "model.save_all_chkpts",
    "model.transformer",
    "nncf.coeff_decrease_lr_for_nncf",
    "sc_integration",
];

/// deep-object-reid's names of keys reid spells otherwise: (its key, reid's).
const RENAMED: &[(&str, &str)] = &[
    ("loss.am_binary.amb_k", "loss.am_binary.k"),
    ("loss.asl.p_m", "loss.asl.clip"),
    ("test.topk", "test.ranks"),
];

/// Sections that hold nothing of reid's once the keys above are gone, removed when empty.
const EMPTIED: &[&str] = &["custom_datasets", "mutual_learning", "nncf"];

fn key(name: &str) -> Value {
    Value::String(name.to_string())
}

/// The mapping holding `path`'s last part, and that part.
fn parent<'a>(root: &'a mut Value, path: &'a str) -> Option<(&'a mut Mapping, &'a str)> {
    let (sections, last) = match path.rsplit_once('.') {
        Some((sections, last)) => (Some(sections), last),
        None => (None, path),
    };
    let mut node = root;
    for part in sections.into_iter().flat_map(|s| s.split('.')) {
        node = node.as_mapping_mut()?.get_mut(key(part))?;
    }
    Some((node.as_mapping_mut()?, last))
}

fn take(root: &mut Value, path: &str) -> Option<Value> {
    let (map, last) = parent(root, path)?;
    map.remove(key(last))
}

fn get<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(root, |node, part| node.as_mapping()?.get(key(part)))
}

/// Sets `dotted.path` in a YAML mapping to `value`, making the sections on the way (the
/// overrides' rule too).
pub(super) fn put(root: &mut Value, path: &str, value: Value) {
    let mut node = root;
    let parts: Vec<&str> = path.split('.').collect();
    for (i, part) in parts.iter().enumerate() {
        if !node.is_mapping() {
            *node = Value::Mapping(Mapping::new());
        }
        let map = node.as_mapping_mut().expect("a mapping");
        if i + 1 == parts.len() {
            map.insert(key(part), value);
            return;
        }
        node = map
            .entry(key(part))
            .or_insert(Value::Mapping(Mapping::new()));
    }
}

/// Numbers compare by value (`0` and `0.0`), the rest as YAML.
fn same(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

/// Merges the `_base_` files of a config's YAML `value` under it; `dir` is the config file's
/// folder, against which their paths are read.
pub(super) fn with_bases(value: &mut Value, dir: Option<&Path>) -> Result<()> {
    merge_bases(value, dir, &mut Vec::new())
}

/// Rewrites `value` (a config's YAML with its bases and overrides) into reid's keys.
pub(super) fn normalize(value: &mut Value) -> Result<()> {
    for (theirs, ours) in RENAMED {
        if let Some(v) = take(value, theirs) {
            if get(value, ours).is_some() {
                return Err(invalid(format!(
                    "{theirs} and {ours} are the same key: keep one"
                )));
            }
            put(value, ours, v);
        }
    }
    move_train_sam(value)?;
    custom_datasets(value)?;
    // deep-object-reid plots only the range test; its searches by trial runs never read the
    // plot's path (its shipped classification configs set one beside `mode: TPE`).
    let searching = get(value, "lr_finder.mode")
        .and_then(Value::as_str)
        .is_some_and(|m| matches!(m, "grid_search" | "TPE"));
    if searching {
        take(value, "lr_finder.path_to_savefig");
    }
    for (path, reids, switch, what) in AT_REIDS_VALUE {
        let Some(found) = take(value, path) else {
            continue;
        };
        let want: Value = serde_yaml::from_str(reids).expect("a YAML value");
        let on = switch.is_none_or(|(s, off)| {
            let off: Value = serde_yaml::from_str(off).expect("a YAML value");
            get(value, s).is_some_and(|v| !same(v, &off))
        });
        if on && !same(&found, &want) {
            return Err(invalid(format!(
                "{path}: reid does not implement {what}; leave it at {reids}"
            )));
        }
    }
    for path in IGNORED {
        take(value, path);
    }
    for section in EMPTIED {
        if get(value, section).is_some_and(|v| v.as_mapping().is_some_and(Mapping::is_empty)) {
            take(value, section);
        }
    }
    Ok(())
}

/// The kinds of deep-object-reid's `custom_datasets.types` reid reads (by what is on disk:
/// an annotation list, an image folder, a JSON of labels).
const CUSTOM_TYPES: [&str; 3] = [
    "classification",
    "classification_image_folder",
    "multilabel_classification",
];

/// deep-object-reid's `custom_datasets`: `roots` holds the training set and the test set
/// (`types` says how each is stored), which become `data.sources` and `data.targets`.
fn custom_datasets(value: &mut Value) -> Result<()> {
    let strings = |v: Option<Value>, name: &str| -> Result<Vec<String>> {
        let list = match v {
            None => return Ok(Vec::new()),
            Some(Value::Sequence(list)) => list,
            Some(_) => return Err(invalid(format!("custom_datasets.{name}: expected a list"))),
        };
        list.into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(invalid(format!(
                    "custom_datasets.{name}: expected file names"
                ))),
            })
            .collect()
    };
    let roots = strings(take(value, "custom_datasets.roots"), "roots")?;
    let types = strings(take(value, "custom_datasets.types"), "types")?;
    if roots.is_empty() && types.is_empty() {
        return Ok(());
    }
    if roots.len() != 2 || types.len() != 2 {
        return Err(invalid(
            "custom_datasets: roots and types name the training set and the test set (two each)"
                .into(),
        ));
    }
    if let Some(other) = types.iter().find(|t| !CUSTOM_TYPES.contains(&t.as_str())) {
        return Err(invalid(format!(
            "custom_datasets.types `{other}`: expected {}",
            CUSTOM_TYPES.join(", ")
        )));
    }
    let multilabel = types[0] == "multilabel_classification";
    let task = get(value, "model.type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if multilabel != (task == "multilabel") || types[0] != types[1] {
        return Err(invalid(format!(
            "custom_datasets.types {types:?} do not fit model.type `{task}`"
        )));
    }
    let [train, test] = [&roots[0], &roots[1]].map(|r| Value::Sequence(vec![key(r)]));
    put(value, "data.sources", train);
    put(value, "data.targets", test);
    Ok(())
}

/// deep-object-reid keeps SAM's `rho` and `adaptive` in `train.sam` and uses them when
/// `train.optim` is `sam`; reid's section is the top-level `sam`.
fn move_train_sam(value: &mut Value) -> Result<()> {
    let Some(sam) = take(value, "train.sam") else {
        return Ok(());
    };
    if get(value, "train.optim").and_then(Value::as_str) != Some("sam") {
        return Ok(());
    }
    if get(value, "sam").is_some() {
        return Err(invalid(
            "train.sam and sam are the same section: keep one".into(),
        ));
    }
    put(value, "sam", sam);
    Ok(())
}

/// Merges `_base_` (a path, or a list of one path; empty: none) under `value`: the base's keys,
/// overridden by the file's own, recursively; `seen` holds the files on the way (a cycle is
/// an error).
fn merge_bases(value: &mut Value, dir: Option<&Path>, seen: &mut Vec<PathBuf>) -> Result<()> {
    let Some(base) = value.as_mapping_mut().and_then(|m| m.remove(key("_base_"))) else {
        return Ok(());
    };
    let base = match base {
        Value::String(s) => s,
        Value::Sequence(list) if list.len() <= 1 => match list.first() {
            Some(Value::String(s)) => s.clone(),
            None => String::new(),
            Some(_) => return Err(invalid("_base_: expected a file name".into())),
        },
        Value::Null => String::new(),
        _ => {
            return Err(invalid(
                "_base_: one file (deep-object-reid has no multiple inheritance)".into(),
            ));
        }
    };
    if base.is_empty() {
        return Ok(());
    }
    let path = dir.map_or_else(|| PathBuf::from(&base), |d| d.join(&base));
    let canonical = path.canonicalize().map_err(|e| Error::io(&path, e))?;
    if seen.contains(&canonical) {
        return Err(invalid(format!(
            "_base_: {} includes itself",
            path.display()
        )));
    }
    seen.push(canonical);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let mut parent: Value =
        serde_yaml::from_str(&text).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    if parent.is_null() {
        parent = Value::Mapping(Mapping::new());
    }
    merge_bases(&mut parent, path.parent(), seen)?;
    let own = std::mem::replace(value, parent);
    overlay(value, own);
    Ok(())
}

/// `top`'s keys over `base`'s, mapping by mapping (yacs's `merge_from_file`).
fn overlay(base: &mut Value, top: Value) {
    match (base, top) {
        (Value::Mapping(base), Value::Mapping(top)) => {
            for (k, v) in top {
                match base.get_mut(&k) {
                    Some(slot) => overlay(slot, v),
                    None => {
                        base.insert(k, v);
                    }
                }
            }
        }
        (base, top) => *base = top,
    }
}
