//! The graph's first nodes: from what the input holds (as the export's preprocessing says) to
//! what reid's models take — torchreid's float32 NCHW, RGB, ImageNet-normalized input.

use onnx_protobuf::tensor_proto::DataType;

use super::INPUT_NAME;
use super::graph::{Attr, GraphBuilder};
use crate::preprocess::{InputTensor, Layout, Preprocessing};

/// Adds the nodes that turn the graph input, prepared as `preprocessing` says, into the
/// model's own input; returns that value's name (the graph input itself when they agree).
pub fn model_input(g: &mut GraphBuilder, preprocessing: &Preprocessing) -> String {
    let mut x = INPUT_NAME.to_string();
    if let InputTensor::Uint8(layout) = preprocessing.input {
        if layout == Layout::Nhwc {
            x = g.node(
                "Transpose",
                &[&x],
                vec![("perm", Attr::Ints(vec![0, 3, 1, 2]))],
            );
        }
        x = g.node(
            "Cast",
            &[&x],
            vec![("to", Attr::Int(DataType::FLOAT as i64))],
        );
    }
    let native = Preprocessing::torchreid(preprocessing.height, preprocessing.width);
    if let Some(affine) = preprocessing.conversion_to(&native) {
        if !affine.keeps_order() {
            let channels = g.int_tensor("channels", &affine.source.map(|c| c as i64));
            x = g.node("Gather", &[&x, &channels], vec![("axis", Attr::Int(1))]);
        }
        let mul = g.tensor("channel_scale", &[1, 3, 1, 1], &affine.mul);
        let add = g.tensor("channel_shift", &[1, 3, 1, 1], &affine.add);
        x = g.node("Mul", &[&x, &mul], vec![]);
        x = g.node("Add", &[&x, &add], vec![]);
    }
    x
}

/// The graph input's element type and dimensions (`None`: the dynamic batch).
pub fn input_signature(preprocessing: &Preprocessing) -> (DataType, Vec<Option<i64>>) {
    let (h, w) = (preprocessing.height as i64, preprocessing.width as i64);
    match preprocessing.input {
        InputTensor::Float => (DataType::FLOAT, vec![None, Some(3), Some(h), Some(w)]),
        InputTensor::Uint8(Layout::Nchw) => {
            (DataType::UINT8, vec![None, Some(3), Some(h), Some(w)])
        }
        InputTensor::Uint8(Layout::Nhwc) => {
            (DataType::UINT8, vec![None, Some(h), Some(w), Some(3)])
        }
    }
}
