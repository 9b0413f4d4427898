//! ONNX export of the model zoo, as torchreid's exporter names things: input `images`
//! (float32 NCHW by default, or uint8 pixels the graph normalizes; dynamic batch), output
//! `output` (the embedding, optionally L2-normalized in the graph), and `metadata_props`
//! describing the architecture and exactly what the input holds.
//!
//! The graph is written with `onnx-protobuf` (opset 17, raw little-endian f32 initializers).
//! burn-onnx's tracing exporter needs Burn's `capture`/`ir` features, a different build of the
//! whole backend; writing the graph from the same module structs keeps export independent of it.

mod attention;
pub mod fp16;
mod graph;
mod input;
mod layers;
pub mod qdq;
mod zoo;

use std::path::Path;

use onnx_protobuf::tensor_shape_proto::{Dimension, dimension};
use onnx_protobuf::type_proto::{self, Tensor as TypeTensor};
use onnx_protobuf::{
    Message, ModelProto, OperatorSetIdProto, StringStringEntryProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};

use crate::error::{Error, Result};
use crate::models::ReidModel;
use crate::preprocess::Preprocessing;
use graph::{Attr, GraphBuilder};

/// Name of the graph's input (torchreid's exporter's).
pub const INPUT_NAME: &str = "images";
/// Name of the graph's output.
pub const OUTPUT_NAME: &str = "output";
/// Name of the second output of classification models: the classifier's raw scores
/// (softmax or sigmoid them as the `task` metadata says).
pub const LOGITS_NAME: &str = "logits";

/// The ONNX opset the SDK writes unless told otherwise (13–21 use the same operators here).
pub const DEFAULT_OPSET: i64 = 17;

/// Options of [`export_onnx`].
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// What the graph's input holds (its size is the graph's input size): torchreid's by
    /// default; any other channel order, normalization or a uint8 input is converted to the
    /// model's own input inside the graph.
    pub preprocessing: Preprocessing,
    /// ONNX opset (13–17 use the same operators here).
    pub opset: i64,
    /// L2-normalize the embedding inside the graph.
    pub normalize: bool,
}

impl ExportOptions {
    /// torchreid's preprocessing at `height`×`width`, [`DEFAULT_OPSET`], no normalization.
    pub fn new(height: usize, width: usize) -> Self {
        Self::with_preprocessing(Preprocessing::torchreid(height, width))
    }

    /// `preprocessing`, [`DEFAULT_OPSET`], no normalization.
    pub fn with_preprocessing(preprocessing: Preprocessing) -> Self {
        Self {
            preprocessing,
            opset: DEFAULT_OPSET,
            normalize: false,
        }
    }
}

fn value_info(
    name: &str,
    elem_type: onnx_protobuf::tensor_proto::DataType,
    dims: &[Option<i64>],
) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    shape.dim = dims
        .iter()
        .map(|d| {
            let mut dim = Dimension::new();
            dim.value = Some(match d {
                Some(v) => dimension::Value::DimValue(*v),
                None => dimension::Value::DimParam("batch".into()),
            });
            dim
        })
        .collect();
    let mut tensor = TypeTensor::new();
    tensor.elem_type = elem_type as i32;
    tensor.shape = Some(shape).into();
    let mut ty = TypeProto::new();
    ty.value = Some(type_proto::Value::TensorType(tensor));
    let mut info = ValueInfoProto::new();
    info.name = name.to_string();
    info.type_ = Some(ty).into();
    info
}

/// The ONNX model of `model`'s eval-mode embedding, serialized.
pub fn export_onnx(model: &ReidModel, options: &ExportOptions) -> Result<Vec<u8>> {
    let (h, w) = (options.preprocessing.height, options.preprocessing.width);
    model.check_input_size(h, w)?;
    options.preprocessing.check_input()?;
    if !(13..=21).contains(&options.opset) {
        return Err(Error::InvalidInput(format!(
            "opset {} is not supported (13 to 21)",
            options.opset
        )));
    }
    let mut g = GraphBuilder {
        keys: crate::weights::torch_keys_by_id(model),
        ..Default::default()
    };
    let model_input = input::model_input(&mut g, &options.preprocessing);
    let (maps, embedding) = zoo::embedding(&mut g, model, &model_input);
    let classifies = model.task != crate::models::Task::Reid;
    if classifies {
        let logits = match &model.attention {
            Some(head) => attention::attention_logits(&mut g, head, &maps),
            None => zoo::logits(&mut g, model, &embedding, options.opset),
        };
        g.node_into("Identity", &[&logits], vec![], LOGITS_NAME);
    }
    let last = if options.normalize {
        l2_normalize(&mut g, &embedding, options.opset)
    } else {
        embedding
    };
    g.node_into("Identity", &[&last], vec![], OUTPUT_NAME);

    let mut graph = onnx_protobuf::GraphProto::new();
    graph.name = model.arch.name().to_string();
    graph.node = g.nodes;
    graph.initializer = g.initializers;
    let (input_type, input_dims) = input::input_signature(&options.preprocessing);
    graph.input = vec![value_info(INPUT_NAME, input_type, &input_dims)];
    let float = onnx_protobuf::tensor_proto::DataType::FLOAT;
    graph.output = vec![value_info(
        OUTPUT_NAME,
        float,
        &[None, Some(model.feature_dim() as i64)],
    )];
    if classifies {
        graph.output.push(value_info(
            LOGITS_NAME,
            float,
            &[None, Some(model.num_classes() as i64)],
        ));
    }

    let mut proto = ModelProto::new();
    // IR version 8 is what opsets up to 17 pair with; later opsets need IR 9/10.
    proto.ir_version = match options.opset {
        ..=17 => 8,
        18..=20 => 9,
        _ => 10,
    };
    proto.producer_name = "reid".into();
    proto.producer_version = crate::VERSION.into();
    let mut opset = OperatorSetIdProto::new();
    opset.domain = String::new();
    opset.version = options.opset;
    proto.opset_import = vec![opset];
    proto.graph = Some(graph).into();
    let mut meta = vec![
        ("reid_version".to_string(), crate::VERSION.to_string()),
        ("architecture".to_string(), model.arch.name().to_string()),
        (
            "embedding_size".to_string(),
            model.feature_dim().to_string(),
        ),
        ("normalized".to_string(), options.normalize.to_string()),
        ("task".to_string(), model.task.name().to_string()),
    ];
    if let Some(head) = model.head_spec() {
        meta.push(("head".into(), head));
    }
    if let Some(scale) = model.cosine_scale {
        meta.push(("cosine_scale".into(), scale.to_string()));
    }
    if classifies {
        meta.push(("num_classes".into(), model.num_classes().to_string()));
        meta.push((
            "class_names".into(),
            serde_json::to_string(&model.class_names).expect("strings serialize"),
        ));
    }
    meta.extend(options.preprocessing.to_metadata());
    // What produced the embeddings: an extractor of this file reports the same fingerprint
    // as one of the model it was exported from.
    let weights = crate::weights::fingerprint::of_model(model);
    meta.push((
        FINGERPRINT.into(),
        crate::weights::fingerprint::of_pipeline(
            &weights,
            &options.preprocessing,
            crate::weights::fingerprint::output_name(false),
        ),
    ));
    meta.push((WEIGHTS_FINGERPRINT.into(), weights));
    proto.metadata_props = meta
        .into_iter()
        .map(|(key, value)| {
            let mut e = StringStringEntryProto::new();
            e.key = key;
            e.value = value;
            e
        })
        .collect();
    proto
        .write_to_bytes()
        .map_err(|e| Error::InvalidInput(format!("cannot serialize the ONNX model: {e}")))
}

/// Metadata key of the weights' fingerprint (`weights::fingerprint::of_model`).
pub const WEIGHTS_FINGERPRINT: &str = "weights_fingerprint";
/// Metadata key of the model's fingerprint with the export's preprocessing (what an
/// extractor of the file with its default options reports).
pub const FINGERPRINT: &str = "fingerprint";

/// Metadata key of an export's numeric precision (`fp16` or `int8` for a converted one;
/// absent: float32).
pub const PRECISION: &str = "precision";

/// Metadata key of a calibrated threshold ([`crate::calibration::Calibration`] as
/// JSON), written by `reid calibrate` after the export.
pub const CALIBRATION: &str = "calibration";

/// Sets metadata entries of the ONNX file at `path` (replacing those of the same keys),
/// rewriting it atomically; the graph and weights are unchanged.
pub fn write_metadata(path: impl AsRef<Path>, entries: &[(&str, String)]) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut proto = ModelProto::parse_from_bytes(&bytes)
        .map_err(|e| Error::ModelFormat(format!("{}: not an ONNX model: {e}", path.display())))?;
    if proto.graph.is_none() {
        return Err(Error::ModelFormat(format!(
            "{}: not an ONNX model: it has no graph",
            path.display()
        )));
    }
    set_metadata(&mut proto, entries);
    let bytes = proto
        .write_to_bytes()
        .map_err(|e| Error::InvalidInput(format!("cannot serialize the ONNX model: {e}")))?;
    crate::formats::npy::write_atomically(path, &bytes)
}

/// Sets metadata entries of `proto`, replacing those of the same keys.
pub(crate) fn set_metadata(proto: &mut ModelProto, entries: &[(&str, String)]) {
    for (key, value) in entries {
        proto.metadata_props.retain(|e| e.key != *key);
        let mut e = StringStringEntryProto::new();
        e.key = key.to_string();
        e.value = value.clone();
        proto.metadata_props.push(e);
    }
}

/// The values of a float32 initializer, from its raw bytes or its `float_data`.
pub(crate) fn float_values(t: &onnx_protobuf::TensorProto) -> Vec<f32> {
    if t.raw_data.is_empty() {
        t.float_data.clone()
    } else {
        t.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

/// Exports to a file, atomically.
pub fn export_onnx_file(
    model: &ReidModel,
    options: &ExportOptions,
    path: impl AsRef<Path>,
) -> Result<()> {
    let bytes = export_onnx(model, options)?;
    crate::formats::npy::write_atomically(path.as_ref(), &bytes)
}

/// `x / max(‖x‖₂, 1e-12)` along the feature axis.
fn l2_normalize(g: &mut GraphBuilder, x: &str, opset: i64) -> String {
    let norm = if opset >= 18 {
        let axes = g.int_tensor("axes", &[1]);
        g.node("ReduceL2", &[x, &axes], vec![("keepdims", Attr::Int(1))])
    } else {
        g.node(
            "ReduceL2",
            &[x],
            vec![("axes", Attr::Ints(vec![1])), ("keepdims", Attr::Int(1))],
        )
    };
    let eps = g.tensor("eps", &[], &[1e-12]);
    let norm = g.node("Max", &[&norm, &eps], vec![]);
    g.node("Div", &[x, &norm], vec![])
}

/// The weights of an ONNX file as a `state_dict`: every float32 initializer by name. For the
/// SDK's own exports these are torchreid's keys, so the model loads back into Burn.
pub fn read_initializers(bytes: &[u8]) -> Result<crate::weights::StateDict> {
    let proto = ModelProto::parse_from_bytes(bytes)
        .map_err(|e| Error::ModelFormat(format!("not an ONNX model: {e}")))?;
    let mut dict = crate::weights::StateDict {
        format: "onnx",
        ..Default::default()
    };
    for t in &proto.graph.initializer {
        if t.data_type != onnx_protobuf::tensor_proto::DataType::FLOAT as i32 {
            continue;
        }
        let data = float_values(t);
        let shape: Vec<usize> = t.dims.iter().map(|&d| d.max(0) as usize).collect();
        let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if count != Some(data.len()) {
            return Err(Error::ModelFormat(format!(
                "initializer {} holds {} values for shape {shape:?}",
                t.name,
                data.len()
            )));
        }
        // Only model parameters (dotted torchreid names), not the graph's own constants.
        if t.name.contains('.') {
            dict.tensors
                .insert(t.name.clone(), crate::weights::RawTensor { shape, data });
        }
    }
    Ok(dict)
}

/// The `metadata_props` of an ONNX file (empty when it has none).
pub fn read_metadata(bytes: &[u8]) -> Result<std::collections::BTreeMap<String, String>> {
    let proto = ModelProto::parse_from_bytes(bytes)
        .map_err(|e| Error::ModelFormat(format!("not an ONNX model: {e}")))?;
    // Protobuf reads an empty file (and some garbage) as an empty message.
    if proto.graph.is_none() {
        return Err(Error::ModelFormat(
            "not an ONNX model: it has no graph".into(),
        ));
    }
    Ok(proto
        .metadata_props
        .into_iter()
        .map(|e| (e.key, e.value))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use onnx_protobuf::{GraphProto, TensorProto};

    #[test]
    fn an_initializer_whose_dims_overflow_is_an_error() {
        // Found by the `onnx` fuzz target: the product of the dims overflowed (a panic).
        let mut tensor = TensorProto::new();
        tensor.name = "fc.weight".into();
        tensor.data_type = onnx_protobuf::tensor_proto::DataType::FLOAT as i32;
        tensor.dims = vec![1 << 40, 1 << 40];
        tensor.float_data = vec![1.0];
        let mut graph = GraphProto::new();
        graph.initializer = vec![tensor];
        let mut model = ModelProto::new();
        model.graph = Some(graph).into();
        let err = read_initializers(&model.write_to_bytes().unwrap()).unwrap_err();
        assert!(err.to_string().contains("holds 1 values"), "{err}");
    }
}
