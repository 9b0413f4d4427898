//! A small builder of ONNX graphs: named initializers (raw little-endian f32), nodes with
//! attributes, fresh value names.

use std::collections::HashMap;

use burn::module::ParamId;
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{AttributeProto, NodeProto, TensorProto};

/// Nodes and initializers of a graph under construction.
#[derive(Default)]
pub struct GraphBuilder {
    pub(crate) nodes: Vec<NodeProto>,
    pub(crate) initializers: Vec<TensorProto>,
    pub(crate) counter: usize,
    /// torchreid's name of each model parameter: weights are stored under these names, so
    /// that an exported file can be read back as a `state_dict`.
    pub(crate) keys: HashMap<ParamId, String>,
    /// Names already emitted: a module used several times (OSNet's shared gate) is stored once.
    pub(crate) emitted: std::collections::HashSet<String>,
}

/// An attribute of a node.
pub enum Attr {
    /// One integer.
    Int(i64),
    /// A list of integers.
    Ints(Vec<i64>),
    /// One float.
    Float(f32),
}

impl GraphBuilder {
    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// Adds a float32 initializer and returns its name.
    pub fn tensor(&mut self, hint: &str, dims: &[usize], values: &[f32]) -> String {
        let name = self.fresh(hint);
        self.named_tensor(name, dims, values)
    }

    /// torchreid's key of a parameter, if the model has it.
    pub fn key(&self, id: ParamId) -> Option<&String> {
        self.keys.get(&id)
    }

    /// Adds the initializer of a model parameter, named by its torchreid key.
    pub fn param(&mut self, id: ParamId, hint: &str, dims: &[usize], values: &[f32]) -> String {
        match self.keys.get(&id).cloned() {
            Some(key) => self.named_tensor(key, dims, values),
            None => self.tensor(hint, dims, values),
        }
    }

    /// Adds a float32 initializer under `name`.
    pub fn named_tensor(&mut self, name: String, dims: &[usize], values: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        if !self.emitted.insert(name.clone()) {
            return name;
        }
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.dims = dims.iter().map(|&d| d as i64).collect();
        t.data_type = DataType::FLOAT as i32;
        t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(t);
        name
    }

    /// Adds an int64 initializer and returns its name.
    pub fn int_tensor(&mut self, hint: &str, values: &[i64]) -> String {
        let name = self.fresh(hint);
        let mut t = TensorProto::new();
        t.name = name.clone();
        t.dims = vec![values.len() as i64];
        t.data_type = DataType::INT64 as i32;
        t.raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializers.push(t);
        name
    }

    /// Adds a node with one output and returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        let output = self.fresh(&op.to_ascii_lowercase());
        self.node_into(op, inputs, attrs, &output);
        output
    }

    /// Adds a node whose output has the given name.
    pub fn node_into(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>, output: &str) {
        let mut node = NodeProto::new();
        node.op_type = op.to_string();
        node.name = format!("{op}_{}", self.nodes.len());
        node.input = inputs.iter().map(|s| s.to_string()).collect();
        node.output = vec![output.to_string()];
        node.attribute = attrs
            .into_iter()
            .map(|(name, value)| {
                let mut a = AttributeProto::new();
                a.name = name.to_string();
                match value {
                    Attr::Int(i) => {
                        a.type_ = AttributeType::INT.into();
                        a.i = i;
                    }
                    Attr::Ints(v) => {
                        a.type_ = AttributeType::INTS.into();
                        a.ints = v;
                    }
                    Attr::Float(f) => {
                        a.type_ = AttributeType::FLOAT.into();
                        a.f = f;
                    }
                }
                a
            })
            .collect();
        self.nodes.push(node);
    }
}
