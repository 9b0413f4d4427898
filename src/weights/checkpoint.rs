//! The SDK's own checkpoints (Burn's burnpack format, with the architecture recorded in its
//! metadata) and export of weights under torchreid's names as safetensors.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::burn_pack::Reader;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::{Bytes, Device, Tensor};

use crate::error::{Error, Result};
use crate::models::{Arch, ReidModel, Task};

const META_ARCH: &str = "reid.arch";
const META_CLASSES: &str = "reid.num_classes";
const META_VERSION: &str = "reid.version";
const META_TASK: &str = "reid.task";
const META_CLASS_NAMES: &str = "reid.class_names";
const META_HEAD: &str = "reid.head";
const META_INPUT: &str = "reid.input";
const META_COSINE_SCALE: &str = "reid.cosine_scale";

fn checkpoint_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::WeightFormat {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Whether `path` is a burnpack file (one of our checkpoints).
pub(crate) fn is_checkpoint(path: &Path) -> bool {
    Reader::from_file_exact(path).is_ok()
}

/// Saves `model` to `path` atomically: a temporary file is written, then renamed into place.
pub fn save_checkpoint(model: &ReidModel, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = checkpoint_bytes(model).map_err(|reason| checkpoint_err(path, reason))?;
    crate::formats::npy::write_atomically(path, &bytes)
}

/// `model` as the bytes of a checkpoint file (what training sends to the other ranks of a job).
pub(crate) fn checkpoint_bytes(model: &ReidModel) -> std::result::Result<Bytes, String> {
    let store = BurnpackStore::from_bytes(None)
        .metadata(META_ARCH, model.arch.name())
        .metadata(META_CLASSES, model.num_classes().to_string())
        .metadata(META_VERSION, crate::VERSION)
        .metadata(META_TASK, model.task.name())
        .metadata(
            META_CLASS_NAMES,
            serde_json::to_string(&model.class_names).expect("strings serialize"),
        )
        .metadata(
            META_HEAD,
            model.head_spec().unwrap_or_else(|| "linear".into()),
        );
    let store = match model.trained_input {
        Some((h, w)) => store.metadata(META_INPUT, format!("{h}x{w}")),
        None => store,
    };
    let mut store = match model.cosine_scale {
        Some(scale) => store.metadata(META_COSINE_SCALE, scale.to_string()),
        None => store,
    };
    model.save_into(&mut store).map_err(|e| e.to_string())?;
    store.get_bytes().map_err(|e| e.to_string())
}

/// Loads a checkpoint written by [`save_checkpoint`], rebuilding its architecture. The tensors
/// are read from the file as the model takes them.
pub fn load_checkpoint(path: impl AsRef<Path>, device: &Device) -> Result<ReidModel> {
    let path = path.as_ref();
    let reader = Reader::from_file_exact(path).map_err(|e| checkpoint_err(path, e.to_string()))?;
    let store = BurnpackStore::from_file(path).auto_extension(false);
    checkpoint_model(reader.metadata(), store, device, path)
}

/// The model of a checkpoint file's bytes ([`checkpoint_bytes`]); `origin` names them in errors.
pub(crate) fn checkpoint_from_bytes(
    bytes: Bytes,
    device: &Device,
    origin: &Path,
) -> Result<ReidModel> {
    // The reader keeps the buffer it parses; the store needs its own.
    let reader =
        Reader::from_bytes(bytes.clone()).map_err(|e| checkpoint_err(origin, e.to_string()))?;
    let store = BurnpackStore::from_bytes(Some(bytes));
    checkpoint_model(reader.metadata(), store, device, origin)
}

/// The architecture a checkpoint's metadata names, loaded from `store`.
fn checkpoint_model(
    meta: &BTreeMap<String, String>,
    mut store: BurnpackStore,
    device: &Device,
    origin: &Path,
) -> Result<ReidModel> {
    let arch: Arch = meta
        .get(META_ARCH)
        .ok_or_else(|| checkpoint_err(origin, "no architecture recorded; not a reid checkpoint"))?
        .parse()?;
    let num_classes: usize = meta
        .get(META_CLASSES)
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| checkpoint_err(origin, "no class count recorded"))?;
    // Checkpoints of earlier versions hold re-id models and no class names.
    let task: Task = meta.get(META_TASK).map_or(Ok(Task::Reid), |t| t.parse())?;
    let class_names: Vec<String> = match meta.get(META_CLASS_NAMES) {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| checkpoint_err(origin, format!("class names: {e}")))?,
        None => Vec::new(),
    };
    let head = meta.get(META_HEAD).cloned();
    let trained_input = meta.get(META_INPUT).and_then(|v| {
        let (h, w) = v.split_once('x')?;
        Some((h.parse().ok()?, w.parse().ok()?))
    });
    let cosine_scale = match meta.get(META_COSINE_SCALE) {
        Some(v) => Some(
            v.parse::<f32>()
                .map_err(|e| checkpoint_err(origin, format!("cosine scale: {e}")))?,
        ),
        None => None,
    };
    let mut model = ReidModel::unloaded(arch, num_classes, device).with_task(task, class_names);
    if let Some(spec) = head.filter(|h| h != "linear") {
        model = ReidModel::unloaded(arch, 1, device)
            .with_head_spec(&spec, num_classes, device)
            .map_err(|e| checkpoint_err(origin, e.to_string()))?
            .with_task(model.task, model.class_names);
    }
    model.trained_input = trained_input;
    model.cosine_scale = cosine_scale;
    let result = model
        .load_from(&mut store)
        .map_err(|e| checkpoint_err(origin, e.to_string()))?;
    if !result.errors.is_empty() || !result.missing.is_empty() || !result.unused.is_empty() {
        return Err(checkpoint_err(
            origin,
            format!(
                "does not match {arch}: {} errors, missing {:?}, unused {:?}",
                result.errors.len(),
                result.missing.iter().map(|(k, _)| k).collect::<Vec<_>>(),
                result.unused
            ),
        ));
    }
    Ok(model)
}

struct TorchNamedValues<'a> {
    keys: std::vec::IntoIter<(String, Vec<usize>)>,
    out: BTreeMap<String, (Vec<usize>, Vec<f32>)>,
    _model: &'a ReidModel,
}

impl ModuleVisitor for TorchNamedValues<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let (key, torch_shape) = self.keys.next().expect("one key per parameter");
        let value = param.val();
        // Burn's Linear holds the transpose of torch's weight.
        let value = if value.dims().to_vec() != torch_shape {
            value.transpose()
        } else {
            value
        };
        let data = value
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .unwrap_or_default();
        self.out.insert(key, (torch_shape, data));
    }
}

/// The model's weights under torchreid's key names, with torch's shapes.
pub fn torch_named_values(model: &ReidModel) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let keys = super::expected_keys(model);
    let mut visitor = TorchNamedValues {
        keys: keys.into_iter(),
        out: BTreeMap::new(),
        _model: model,
    };
    model.visit(&mut visitor);
    visitor.out
}

/// Writes the model's weights under torchreid's key names as a safetensors file that
/// `torchreid` (via `safetensors.torch.load_file`) and this SDK both read.
pub fn save_torchreid_safetensors(model: &ReidModel, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes_of = |v: &Vec<f32>| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = torch_named_values(model)
        .iter()
        .map(|(k, (shape, data))| (k.clone(), shape.clone(), bytes_of(data)))
        .collect();
    let views = buffers
        .iter()
        .map(|(k, shape, bytes)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                .map(|v| (k.clone(), v))
        })
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| checkpoint_err(path, e.to_string()))?;
    let metadata = Some(
        [("arch".to_string(), model.arch.name().to_string())]
            .into_iter()
            .collect(),
    );
    let bytes =
        safetensors::serialize(views, metadata).map_err(|e| checkpoint_err(path, e.to_string()))?;
    crate::formats::npy::write_atomically(path, &bytes)
}
