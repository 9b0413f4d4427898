//! Static INT8 quantization of an exported graph in ONNX's QDQ form: BatchNormalization folded
//! into the convolution before it, then every Conv and Gemm reads its weights through a
//! `DequantizeLinear` of int8 values (symmetric, one scale per output channel), its bias as
//! int32 (scale: input scale × weight scale), and its input and output activations through a
//! `QuantizeLinear` / `DequantizeLinear` pair (uint8, one scale and zero point per tensor, from
//! the ranges a calibration found). ONNX Runtime and OpenVINO turn these patterns into integer
//! kernels; any other runtime still computes the same values in float.
//!
//! The running of the calibration is not here (it needs a runtime): [`quantized_values`] names
//! the tensors whose ranges are needed and [`with_outputs`] exposes them as outputs.

use std::collections::{HashMap, HashSet};

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::type_proto::{self, Tensor as TypeTensor};
use onnx_protobuf::{
    AttributeProto, ModelProto, NodeProto, TensorProto, TypeProto, ValueInfoProto,
    attribute_proto::AttributeType,
};

use crate::error::{Error, Result};

pub(super) fn bad(reason: String) -> Error {
    Error::ModelFormat(format!("quantization: {reason}"))
}

/// The float values of initializer `name` and its dims.
fn float_initializer(proto: &ModelProto, name: &str) -> Result<(Vec<f32>, Vec<i64>)> {
    let t = proto
        .graph
        .initializer
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| bad(format!("`{name}` is not an initializer")))?;
    if t.data_type != DataType::FLOAT as i32 {
        return Err(bad(format!("initializer `{name}` is not float32")));
    }
    let values = super::float_values(t);
    let count = t.dims.iter().try_fold(1i64, |n, &d| n.checked_mul(d));
    if count != Some(values.len() as i64) {
        return Err(bad(format!("initializer `{name}` does not hold its dims")));
    }
    Ok((values, t.dims.clone()))
}

fn tensor(name: &str, data_type: DataType, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    let mut t = TensorProto::new();
    t.name = name.to_string();
    t.data_type = data_type as i32;
    t.dims = dims.to_vec();
    t.raw_data = raw;
    t
}

fn f32_tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    tensor(name, DataType::FLOAT, dims, raw)
}

pub(super) fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attributes: Vec<AttributeProto>,
) -> NodeProto {
    let mut n = NodeProto::new();
    n.op_type = op.to_string();
    n.name = format!("{op}_{output}");
    n.input = inputs.iter().map(|s| s.to_string()).collect();
    n.output = vec![output.to_string()];
    n.attribute = attributes;
    n
}

pub(super) fn int_attribute(name: &str, value: i64) -> AttributeProto {
    let mut a = AttributeProto::new();
    a.name = name.to_string();
    a.type_ = AttributeType::INT.into();
    a.i = value;
    a
}

fn float_attribute(n: &NodeProto, name: &str) -> Option<f32> {
    n.attribute.iter().find(|a| a.name == name).map(|a| a.f)
}

/// How many nodes read each value, and whether it is a graph output.
fn consumers(proto: &ModelProto) -> (HashMap<String, usize>, HashSet<String>) {
    let mut count = HashMap::new();
    for n in &proto.graph.node {
        for input in &n.input {
            *count.entry(input.clone()).or_insert(0) += 1;
        }
    }
    let outputs = proto.graph.output.iter().map(|o| o.name.clone()).collect();
    (count, outputs)
}

/// Folds each `BatchNormalization` whose input is read only by it and made by a `Conv` into
/// that convolution's weights and bias (new initializers; the old ones are dropped when no
/// node reads them any more).
pub fn fold_batch_norms(proto: &mut ModelProto) -> Result<()> {
    let (readers, outputs) = consumers(proto);
    let producer: HashMap<String, usize> = proto
        .graph
        .node
        .iter()
        .enumerate()
        .filter(|(_, n)| n.op_type == "Conv")
        .map(|(i, n)| (n.output[0].clone(), i))
        .collect();
    let mut removed = HashSet::new();
    let mut added = Vec::new();
    for b in 0..proto.graph.node.len() {
        let bn = &proto.graph.node[b];
        if bn.op_type != "BatchNormalization" || bn.input.len() != 5 {
            continue;
        }
        let x = &bn.input[0];
        let Some(&c) = producer.get(x) else { continue };
        if readers.get(x) != Some(&1) || outputs.contains(x) {
            continue;
        }
        let eps = float_attribute(bn, "epsilon").unwrap_or(1e-5) as f64;
        let [scale, shift, mean, var] =
            [1, 2, 3, 4].map(|i| float_initializer(proto, &bn.input[i]));
        let (scale, shift, mean, var) = (scale?.0, shift?.0, mean?.0, var?.0);
        let conv = &proto.graph.node[c];
        let (weight, dims) = float_initializer(proto, &conv.input[1])?;
        let channels = dims.first().copied().unwrap_or(0) as usize;
        let fits = [&scale, &shift, &mean, &var]
            .iter()
            .all(|v| v.len() == channels);
        if !fits || channels == 0 || weight.len() < channels {
            return Err(bad(format!(
                "{}: the norm does not fit the convolution",
                bn.name
            )));
        }
        let bias = match conv.input.get(2).filter(|b| !b.is_empty()) {
            Some(name) => float_initializer(proto, name)?.0,
            None => vec![0.0; channels],
        };
        let per = weight.len() / channels;
        let factor: Vec<f64> = (0..channels)
            .map(|o| scale[o] as f64 / (var[o] as f64 + eps).sqrt())
            .collect();
        let folded_weight: Vec<f32> = weight
            .iter()
            .enumerate()
            .map(|(i, &w)| (w as f64 * factor[i / per]) as f32)
            .collect();
        let folded_bias: Vec<f32> = (0..channels)
            .map(|o| ((bias[o] as f64 - mean[o] as f64) * factor[o] + shift[o] as f64) as f32)
            .collect();
        let (w_name, b_name) = (
            format!("{}_folded_w", conv.name),
            format!("{}_folded_b", conv.name),
        );
        added.push(f32_tensor(&w_name, &dims, &folded_weight));
        added.push(f32_tensor(&b_name, &[channels as i64], &folded_bias));
        let bn_output = bn.output[0].clone();
        let conv = &mut proto.graph.mut_or_insert_default().node[c];
        conv.input = vec![conv.input[0].clone(), w_name, b_name];
        conv.output = vec![bn_output];
        removed.insert(b);
    }
    let mut index = 0;
    let graph = proto.graph.mut_or_insert_default();
    graph.node.retain(|_| {
        index += 1;
        !removed.contains(&(index - 1))
    });
    graph.initializer.extend(added);
    drop_unread_initializers(proto);
    Ok(())
}

fn drop_unread_initializers(proto: &mut ModelProto) {
    let read: HashSet<String> = proto
        .graph
        .node
        .iter()
        .flat_map(|n| n.input.iter().cloned())
        .collect();
    proto
        .graph
        .mut_or_insert_default()
        .initializer
        .retain(|t| read.contains(&t.name));
}

/// Whether a node is one static quantization rewrites.
fn quantized_op(n: &NodeProto) -> bool {
    matches!(n.op_type.as_str(), "Conv" | "Gemm")
}

/// The values whose ranges static quantization needs, in graph order: the input activation
/// and the output of every Conv and Gemm (a graph input among them, not a graph output). An
/// output read only by a `Relu` is quantized after it instead, so that runtimes fuse the
/// convolution, the ReLU and the quantization into one integer kernel.
pub fn quantized_values(proto: &ModelProto) -> Vec<String> {
    let (readers, outputs) = consumers(proto);
    let relu_of: HashMap<&String, &String> = proto
        .graph
        .node
        .iter()
        .filter(|n| n.op_type == "Relu")
        .map(|n| (&n.input[0], &n.output[0]))
        .collect();
    let mut seen = HashSet::new();
    let mut names = Vec::new();
    for n in proto.graph.node.iter().filter(|n| quantized_op(n)) {
        let output = match relu_of.get(&n.output[0]) {
            Some(relu) if readers.get(&n.output[0]) == Some(&1) => *relu,
            _ => &n.output[0],
        };
        for v in [&n.input[0], output] {
            if !outputs.contains(v) && seen.insert(v.clone()) {
                names.push(v.clone());
            }
        }
    }
    names
}

/// Whether `name` is one of the graph's inputs.
pub fn is_graph_input(proto: &ModelProto, name: &str) -> bool {
    proto.graph.input.iter().any(|i| i.name == name)
}

/// The model with `names` added to its outputs (float32, shape left to the runtime); graph
/// inputs among them are left out (the caller has their values).
pub fn with_outputs(proto: &ModelProto, names: &[String]) -> ModelProto {
    let mut model = proto.clone();
    for name in names.iter().filter(|n| !is_graph_input(proto, n)) {
        let mut tensor = TypeTensor::new();
        tensor.elem_type = DataType::FLOAT as i32;
        let mut ty = TypeProto::new();
        ty.value = Some(type_proto::Value::TensorType(tensor));
        let mut info = ValueInfoProto::new();
        info.name = name.clone();
        info.type_ = Some(ty).into();
        model.graph.mut_or_insert_default().output.push(info);
    }
    model
}

/// uint8 scale and zero point covering `[lo, hi]` (widened to hold 0, as ONNX requires).
fn activation_scale(lo: f32, hi: f32) -> (f32, u8) {
    let (lo, hi) = (lo.min(0.0), hi.max(0.0));
    let scale = if hi > lo { (hi - lo) / 255.0 } else { 1.0 };
    let zero_point = (-lo / scale).round().clamp(0.0, 255.0) as u8;
    (scale, zero_point)
}

/// Rewrites every Conv and Gemm for integer kernels (see the module's description), with the
/// activation ranges `ranges` (min, max) of every value [`quantized_values`] names.
pub fn insert_qdq(proto: &mut ModelProto, ranges: &HashMap<String, (f32, f32)>) -> Result<()> {
    let values = quantized_values(proto);
    let mut scales = HashMap::new();
    let mut initializers = Vec::new();
    for v in &values {
        let &(lo, hi) = ranges
            .get(v)
            .ok_or_else(|| bad(format!("no calibrated range for `{v}`")))?;
        if !(lo.is_finite() && hi.is_finite()) {
            return Err(bad(format!("the calibrated range of `{v}` is not finite")));
        }
        let (scale, zero_point) = activation_scale(lo, hi);
        initializers.push(f32_tensor(&format!("{v}_scale"), &[], &[scale]));
        initializers.push(tensor(
            &format!("{v}_zero"),
            DataType::UINT8,
            &[],
            vec![zero_point],
        ));
        scales.insert(v.clone(), scale);
    }
    // Weights and biases of each quantized node, by node position.
    let mut weight_nodes = Vec::new();
    for n in proto.graph.node.iter().filter(|n| quantized_op(n)) {
        let transposed =
            n.op_type == "Gemm" && n.attribute.iter().any(|a| a.name == "transB" && a.i == 1);
        if n.op_type == "Gemm" && !transposed {
            return Err(bad(format!("{}: a Gemm without transB", n.name)));
        }
        let (weight, dims) = float_initializer(proto, &n.input[1])?;
        let channels = dims.first().copied().unwrap_or(0) as usize;
        if channels == 0 || weight.len() < channels {
            return Err(bad(format!("{}: empty weights", n.name)));
        }
        let per = weight.len() / channels;
        let weight_scales: Vec<f32> = weight
            .chunks_exact(per)
            .map(|row| {
                let max = row.iter().fold(0f32, |m, w| m.max(w.abs()));
                if max > 0.0 { max / 127.0 } else { 1.0 }
            })
            .collect();
        let quantized: Vec<u8> = weight
            .iter()
            .enumerate()
            .map(|(i, &w)| (w / weight_scales[i / per]).round().clamp(-127.0, 127.0) as i8 as u8)
            .collect();
        let base = n.name.clone();
        let (wq, ws, wz) = (
            format!("{base}_wq"),
            format!("{base}_ws"),
            format!("{base}_wz"),
        );
        initializers.push(tensor(&wq, DataType::INT8, &dims, quantized));
        initializers.push(f32_tensor(&ws, &[channels as i64], &weight_scales));
        initializers.push(tensor(
            &wz,
            DataType::INT8,
            &[channels as i64],
            vec![0; channels],
        ));
        let mut new_nodes = vec![node(
            "DequantizeLinear",
            &[&wq, &ws, &wz],
            &format!("{base}_wdq"),
            vec![int_attribute("axis", 0)],
        )];
        let mut inputs = vec![format!("{base}_wdq")];
        if let Some(bias_name) = n.input.get(2).filter(|b| !b.is_empty()) {
            let input_scale = *scales
                .get(&n.input[0])
                .ok_or_else(|| bad(format!("{}: its input is not quantized", n.name)))?;
            let (bias, _) = float_initializer(proto, bias_name)?;
            let bias_scales: Vec<f32> = weight_scales.iter().map(|s| s * input_scale).collect();
            let bias_q: Vec<u8> = bias
                .iter()
                .zip(&bias_scales)
                .flat_map(|(&b, &s)| {
                    let q = (b as f64 / s as f64)
                        .round()
                        .clamp(i32::MIN as f64, i32::MAX as f64);
                    (q as i32).to_le_bytes()
                })
                .collect();
            let (bq, bs, bz) = (
                format!("{base}_bq"),
                format!("{base}_bs"),
                format!("{base}_bz"),
            );
            initializers.push(tensor(&bq, DataType::INT32, &[channels as i64], bias_q));
            initializers.push(f32_tensor(&bs, &[channels as i64], &bias_scales));
            initializers.push(tensor(
                &bz,
                DataType::INT32,
                &[channels as i64],
                vec![0; 4 * channels],
            ));
            new_nodes.push(node(
                "DequantizeLinear",
                &[&bq, &bs, &bz],
                &format!("{base}_bdq"),
                vec![int_attribute("axis", 0)],
            ));
            inputs.push(format!("{base}_bdq"));
        }
        weight_nodes.push((base, new_nodes, inputs));
    }
    // The new graph, in order: each value's Q/DQ right after the node that makes it, each
    // quantized node's weight DQs right before it, every read of a quantized value through
    // its DQ.
    let quantized: HashSet<&String> = values.iter().collect();
    let read = |name: &String| -> String {
        if quantized.contains(name) {
            format!("{name}_dq")
        } else {
            name.clone()
        }
    };
    let mut weights = weight_nodes.into_iter();
    let mut nodes = Vec::with_capacity(proto.graph.node.len() * 2);
    let qdq = |v: &String, nodes: &mut Vec<NodeProto>| {
        let (s, z) = (format!("{v}_scale"), format!("{v}_zero"));
        nodes.push(node(
            "QuantizeLinear",
            &[v, &s, &z],
            &format!("{v}_q"),
            vec![],
        ));
        nodes.push(node(
            "DequantizeLinear",
            &[&format!("{v}_q"), &s, &z],
            &format!("{v}_dq"),
            vec![],
        ));
    };
    for v in values.iter().filter(|v| is_graph_input(proto, v)) {
        qdq(v, &mut nodes);
    }
    for mut n in std::mem::take(&mut proto.graph.mut_or_insert_default().node) {
        n.input = n.input.iter().map(read).collect();
        if quantized_op(&n) {
            let (base, dq_nodes, inputs) = weights.next().expect("one entry per quantized node");
            debug_assert_eq!(base, n.name);
            nodes.extend(dq_nodes);
            let activation = n.input[0].clone();
            n.input = std::iter::once(activation).chain(inputs).collect();
        }
        let made: Vec<String> = n.output.clone();
        nodes.push(n);
        for v in made.iter().filter(|v| quantized.contains(v)) {
            qdq(v, &mut nodes);
        }
    }
    let graph = proto.graph.mut_or_insert_default();
    graph.node = nodes;
    graph.initializer.extend(initializers);
    drop_unread_initializers(proto);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A convolution whose weights hold no value (dims with a 0) is an error, not a division
    /// by zero, in both rewrites.
    #[test]
    fn empty_weights_are_an_error() {
        let mut proto = ModelProto::new();
        let graph = proto.graph.mut_or_insert_default();
        graph.initializer.push(f32_tensor("w", &[2, 0, 1, 1], &[]));
        for name in ["s", "b", "m", "v"] {
            graph.initializer.push(f32_tensor(name, &[2], &[1.0, 1.0]));
        }
        graph.node.push(node("Conv", &["x", "w"], "y", vec![]));
        graph.node.push(node(
            "BatchNormalization",
            &["y", "s", "b", "m", "v"],
            "z",
            vec![],
        ));
        assert!(fold_batch_norms(&mut proto.clone()).is_err());
        let ranges: HashMap<String, (f32, f32)> = [("x", (0.0, 1.0)), ("z", (0.0, 1.0))]
            .map(|(k, r)| (k.to_string(), r))
            .into();
        assert!(insert_qdq(&mut proto, &ranges).is_err());
    }

    #[test]
    fn activation_scales_hold_zero_and_the_range() {
        assert_eq!(activation_scale(0.0, 2.55), (0.01, 0));
        let (scale, zero) = activation_scale(-1.0, 3.0);
        assert!((scale - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(zero, 64);
        // A range that excludes 0 is widened to it; an empty one gets scale 1.
        assert_eq!(activation_scale(1.0, 2.55).1, 0);
        assert_eq!(activation_scale(0.0, 0.0), (1.0, 0));
    }
}
