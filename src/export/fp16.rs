//! FP16 exports: every float32 weight of an exported graph stored as float16 and every
//! computation done in float16, as onnxconverter-common's `convert_float_to_float16` does.
//! The graph's input and output stay float32 by default (a `Cast` at each end, so callers and
//! the extractor feed and read what a float export takes), or become float16 themselves.
//!
//! A few operators keep computing in float32 inside the float16 graph (their inputs cast up,
//! their outputs cast down): see [`FLOAT32_OPS`].

use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{ModelProto, NodeProto, type_proto};

use super::qdq::{bad, int_attribute, node};
use crate::error::Result;

/// Operators left in float32: the L2 norm of an embedding squares and sums hundreds of values,
/// which overflows float16's largest value (65504) once they average about 11.
pub const FLOAT32_OPS: &[&str] = &["ReduceL2"];

/// Rewrites `proto` (a float32 export) to compute in float16; with `float_io` its input and
/// output stay float32.
pub fn to_fp16(proto: &mut ModelProto, float_io: bool) -> Result<()> {
    let float = DataType::FLOAT as i32;
    let half = DataType::FLOAT16 as i32;
    let graph = proto.graph.mut_or_insert_default();
    for t in graph
        .initializer
        .iter_mut()
        .filter(|t| t.data_type == float)
    {
        let values = super::float_values(t);
        let count = t.dims.iter().try_fold(1i64, |n, &d| n.checked_mul(d));
        if count != Some(values.len() as i64) {
            return Err(bad(format!(
                "initializer `{}` does not hold its dims",
                t.name
            )));
        }
        let limit = f32::from(half::f16::MAX);
        if values.iter().any(|v| v.is_finite() && v.abs() > limit) {
            return Err(bad(format!(
                "initializer `{}` holds values beyond float16's range",
                t.name
            )));
        }
        t.raw_data = values
            .iter()
            .flat_map(|&v| half::f16::from_f32(v).to_bits().to_le_bytes())
            .collect();
        t.float_data.clear();
        t.data_type = half;
    }
    // Initializers still not float16 are integers (shapes, axes): never cast.
    let int_initializers: std::collections::HashSet<String> = graph
        .initializer
        .iter()
        .filter(|t| t.data_type != half)
        .map(|t| t.name.clone())
        .collect();

    let mut nodes = Vec::with_capacity(graph.node.len() + 4);
    for mut n in std::mem::take(&mut graph.node) {
        if n.op_type == "Cast" {
            for a in n
                .attribute
                .iter_mut()
                .filter(|a| a.name == "to" && a.i == float as i64)
            {
                a.i = half as i64;
            }
        }
        if !FLOAT32_OPS.contains(&n.op_type.as_str()) {
            nodes.push(n);
            continue;
        }
        for input in n.input.iter_mut() {
            if input.is_empty() || int_initializers.contains(input) {
                continue;
            }
            let up = format!("{input}_f32_for_{}", n.name);
            nodes.push(cast(input, &up, float));
            *input = up;
        }
        let mut downs: Vec<NodeProto> = Vec::new();
        for output in n.output.iter_mut() {
            let f32_name = format!("{output}_f32");
            downs.push(cast(&f32_name, output, half));
            *output = f32_name;
        }
        nodes.push(n);
        nodes.extend(downs);
    }
    graph.node = nodes;

    for info in graph.value_info.iter_mut() {
        if let Some(t) = elem_type(info).filter(|t| **t == float) {
            *t = half;
        }
    }
    let float_inputs = float_names(&mut graph.input);
    let float_outputs = float_names(&mut graph.output);
    if float_io {
        for input in &float_inputs {
            let inner = format!("{input}_fp16");
            for n in graph.node.iter_mut() {
                for i in n.input.iter_mut().filter(|i| *i == input) {
                    *i = inner.clone();
                }
            }
            graph.node.insert(0, cast(input, &inner, half));
        }
        for output in &float_outputs {
            let inner = format!("{output}_fp16");
            for n in graph.node.iter_mut() {
                for o in n.output.iter_mut().filter(|o| *o == output) {
                    *o = inner.clone();
                }
                for i in n.input.iter_mut().filter(|i| *i == output) {
                    *i = inner.clone();
                }
            }
            graph.node.push(cast(&inner, output, float));
        }
    } else {
        for info in graph.input.iter_mut().chain(graph.output.iter_mut()) {
            if let Some(t) = elem_type(info).filter(|t| **t == float) {
                *t = half;
            }
        }
    }
    Ok(())
}

/// The element type of a tensor's declaration.
fn elem_type(info: &mut onnx_protobuf::ValueInfoProto) -> Option<&mut i32> {
    match info.type_.as_mut()?.value.as_mut()? {
        type_proto::Value::TensorType(t) => Some(&mut t.elem_type),
        _ => None,
    }
}

/// The names of the float32 tensors among `infos`.
fn float_names(infos: &mut [onnx_protobuf::ValueInfoProto]) -> Vec<String> {
    infos
        .iter_mut()
        .filter_map(|i| {
            elem_type(i)
                .is_some_and(|t| *t == DataType::FLOAT as i32)
                .then(|| i.name.clone())
        })
        .collect()
}

fn cast(input: &str, output: &str, to: i32) -> NodeProto {
    node(
        "Cast",
        &[input],
        output,
        vec![int_attribute("to", to as i64)],
    )
}
