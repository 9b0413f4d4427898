//! The multi-label attention head as ONNX nodes; mirrors
//! [`crate::models::attention_head::AttentionHead::forward`] step by step.

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::tensor::Tensor;

use super::graph::{Attr, GraphBuilder};
use super::layers::{conv, relu};
use crate::models::attention_head::{AttentionHead, LAYER_NORM_EPS};
use crate::models::embed::tensor_to_vec;

fn param<const D: usize>(g: &mut GraphBuilder, p: &Param<Tensor<D>>, hint: &str) -> String {
    let value = p.val();
    let dims = value.dims().to_vec();
    g.param(p.id, hint, &dims, &tensor_to_vec(value))
}

/// `x · Wᵀ + b` on a tensor of any rank. The weight is stored in torch's `[out, in]` layout
/// (as every exported Linear is, so the file reads back as a `state_dict`) and transposed in
/// the graph.
fn dense(g: &mut GraphBuilder, l: &Linear, x: &str) -> String {
    let torch = l.weight.val().transpose();
    let dims = torch.dims();
    let w = g.param(l.weight.id, "dense_w", &dims, &tensor_to_vec(torch));
    let w = g.node("Transpose", &[&w], vec![("perm", Attr::Ints(vec![1, 0]))]);
    let y = g.node("MatMul", &[x, &w], vec![]);
    match &l.bias {
        Some(b) => {
            let b = param(g, b, "dense_b");
            g.node("Add", &[&y, &b], vec![])
        }
        None => y,
    }
}

fn layer_norm(g: &mut GraphBuilder, n: &LayerNorm, x: &str) -> String {
    let scale = param(g, &n.gamma, "ln_scale");
    let mut inputs = vec![x.to_string(), scale];
    if let Some(beta) = &n.beta {
        inputs.push(param(g, beta, "ln_bias"));
    }
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    g.node(
        "LayerNormalization",
        &inputs,
        vec![
            ("axis", Attr::Int(-1)),
            ("epsilon", Attr::Float(LAYER_NORM_EPS as f32)),
        ],
    )
}

fn reshape(g: &mut GraphBuilder, x: &str, shape: &[i64]) -> String {
    let shape = g.int_tensor("shape", shape);
    g.node("Reshape", &[x, &shape], vec![])
}

fn transpose(g: &mut GraphBuilder, x: &str, perm: &[i64]) -> String {
    g.node("Transpose", &[x], vec![("perm", Attr::Ints(perm.to_vec()))])
}

/// Class logits `[N, classes]` of the feature maps `maps`.
pub fn attention_logits(g: &mut GraphBuilder, a: &AttentionHead, maps: &str) -> String {
    let (d, heads, classes) = (a.dim() as i64, a.heads as i64, a.num_classes() as i64);
    let dh = d / heads;
    let tokens = conv(g, &a.proj, maps);
    let tokens = reshape(g, &tokens, &[0, d, -1]);
    let tokens = transpose(g, &tokens, &[0, 2, 1]);
    let queries = param(g, &a.queries, "queries");
    // Queries are the same for every image: [1, heads, classes, dh], broadcast over the batch.
    let q = dense(g, &a.q, &queries);
    let q = reshape(g, &q, &[1, classes, heads, dh]);
    let q = transpose(g, &q, &[0, 2, 1, 3]);
    let k = dense(g, &a.k, &tokens);
    let k = reshape(g, &k, &[0, -1, heads, dh]);
    let k = transpose(g, &k, &[0, 2, 3, 1]);
    let v = dense(g, &a.v, &tokens);
    let v = reshape(g, &v, &[0, -1, heads, dh]);
    let v = transpose(g, &v, &[0, 2, 1, 3]);
    let scores = g.node("MatMul", &[&q, &k], vec![]);
    let scale = g.tensor("attn_scale", &[], &[1.0 / (dh as f32).sqrt()]);
    let scores = g.node("Mul", &[&scores, &scale], vec![]);
    let attention = g.node("Softmax", &[&scores], vec![("axis", Attr::Int(-1))]);
    let read = g.node("MatMul", &[&attention, &v], vec![]);
    let read = transpose(g, &read, &[0, 2, 1, 3]);
    let read = reshape(g, &read, &[0, classes, d]);
    let o = dense(g, &a.out, &read);
    let batched = reshape(g, &queries, &[1, classes, d]);
    let x = g.node("Add", &[&batched, &o], vec![]);
    let x = layer_norm(g, &a.norm1, &x);
    let f = dense(g, &a.ffn1, &x);
    let f = relu(g, &f);
    let f = dense(g, &a.ffn2, &f);
    let x2 = g.node("Add", &[&x, &f], vec![]);
    let x = layer_norm(g, &a.norm2, &x2);
    // Each class's output dotted with its weight row. The weight is given its batch axis and
    // the sum keeps its axis (reshaped away after): with the weight left to broadcasting and
    // keepdims 0, OpenVINO's fused Mul + ReduceSum summed wrongly for batches above 1.
    let w = param(g, &a.class_weight, "class_w");
    let w = reshape(g, &w, &[1, classes, d]);
    let s = g.node("Mul", &[&x, &w], vec![]);
    let axes = g.int_tensor("axes", &[2]);
    let s = g.node("ReduceSum", &[&s, &axes], vec![("keepdims", Attr::Int(1))]);
    let s = reshape(g, &s, &[0, classes]);
    let b = param(g, &a.class_bias, "class_b");
    g.node("Add", &[&s, &b], vec![])
}
