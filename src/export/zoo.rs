//! The model zoo's forward passes written as ONNX graphs; each function mirrors the `forward`
//! of the same block in `crate::models`, and the export parity tests hold them together.

use super::graph::GraphBuilder;
use super::layers::{
    avg_pool, batch_norm, concat, conv, conv_norm, conv_norm_relu, hard_sigmoid, hard_swish,
    instance_norm, linear, max_pool, pool, prelu, relu, relu6, silu,
};
use crate::models::efficientnet::{Act, Block, EfficientNet, Gate, SqueezeExcite};
use crate::models::inceptionv4::{InceptionV4, Stage};
use crate::models::layers::ConvNorm;
use crate::models::layers::Head;
use crate::models::mobilefacenet::{ConvBlock, DepthWise, LinearBlock, MobileFaceNet};
use crate::models::mobilenetv2::MobileNetV2;
use crate::models::osnet::{ChannelGate, LightConv3x3, OsBlock, OsNet};
use crate::models::osnet_ain::{AinBlock, OsNetAin};
use crate::models::resnet::{Bottleneck, ResNet};
use crate::models::{Backbone, ReidModel};

fn light_conv(g: &mut GraphBuilder, l: &LightConv3x3, x: &str) -> String {
    let y = conv(g, &l.conv1, x);
    let y = conv(g, &l.conv2, &y);
    let y = batch_norm(g, &l.bn, &y);
    relu(g, &y)
}

fn light_chain(g: &mut GraphBuilder, layers: &[LightConv3x3], x: &str) -> String {
    layers
        .iter()
        .fold(x.to_string(), |x, l| light_conv(g, l, &x))
}

fn gate(g: &mut GraphBuilder, gate: &ChannelGate, x: &str) -> String {
    let s = g.node("GlobalAveragePool", &[x], vec![]);
    let s = conv(g, &gate.fc1, &s);
    let s = relu(g, &s);
    let s = conv(g, &gate.fc2, &s);
    let s = g.node("Sigmoid", &[&s], vec![]);
    g.node("Mul", &[x, &s], vec![])
}

fn add(g: &mut GraphBuilder, a: &str, b: &str) -> String {
    g.node("Add", &[a, b], vec![])
}

fn os_block(g: &mut GraphBuilder, b: &OsBlock, x: &str) -> String {
    let x1 = conv_norm_relu(g, &b.conv1, x);
    let streams = [
        light_conv(g, &b.conv2a, &x1),
        light_chain(g, &b.conv2b, &x1),
        light_chain(g, &b.conv2c, &x1),
        light_chain(g, &b.conv2d, &x1),
    ];
    let gated: Vec<String> = streams.iter().map(|s| gate(g, &b.gate, s)).collect();
    let x2 = gated[1..]
        .iter()
        .fold(gated[0].clone(), |acc, s| add(g, &acc, s));
    let x3 = conv_norm(g, &b.conv3, &x2);
    let identity = match &b.downsample {
        Some(d) => conv_norm(g, d, x),
        None => x.to_string(),
    };
    let out = add(g, &x3, &identity);
    let out = match &b.instance_norm {
        Some(inorm) => instance_norm(g, inorm, &out),
        None => out,
    };
    relu(g, &out)
}

fn osnet(g: &mut GraphBuilder, m: &OsNet, x: &str) -> String {
    let x = conv_norm_relu(g, &m.conv1, x);
    let mut x = max_pool(g, &m.maxpool, &x);
    for stage in [&m.conv2, &m.conv3, &m.conv4] {
        for block in &stage.blocks {
            x = os_block(g, block, &x);
        }
        if let Some(t) = &stage.transition {
            let y = conv_norm_relu(g, t, &x);
            x = avg_pool(g, &stage.pool, &y);
        }
    }
    conv_norm_relu(g, &m.conv5, &x)
}

fn ain_block(g: &mut GraphBuilder, b: &AinBlock, x: &str) -> String {
    let x1 = conv_norm_relu(g, &b.conv1, x);
    let gated: Vec<String> = b
        .conv2
        .iter()
        .map(|stream| {
            let s = light_chain(g, &stream.layers, &x1);
            gate(g, &b.gate, &s)
        })
        .collect();
    let x2 = gated[1..]
        .iter()
        .fold(gated[0].clone(), |acc, s| add(g, &acc, s));
    let mut x3 = conv(g, &b.conv3.conv, &x2);
    if let Some(bn) = &b.conv3.bn {
        x3 = batch_norm(g, bn, &x3);
    }
    if let Some(inorm) = &b.instance_norm {
        x3 = instance_norm(g, inorm, &x3);
    }
    let identity = match &b.downsample {
        Some(d) => conv_norm(g, d, x),
        None => x.to_string(),
    };
    let out = add(g, &x3, &identity);
    relu(g, &out)
}

fn osnet_ain(g: &mut GraphBuilder, m: &OsNetAin, x: &str) -> String {
    let x = conv_norm_relu(g, &m.conv1, x);
    let mut x = max_pool(g, &m.maxpool, &x);
    let stages = [
        (&m.conv2, Some(&m.pool2)),
        (&m.conv3, Some(&m.pool3)),
        (&m.conv4, None),
    ];
    for (blocks, pool) in stages {
        for block in blocks {
            x = ain_block(g, block, &x);
        }
        if let Some(p) = pool {
            let y = conv_norm_relu(g, p, &x);
            x = avg_pool(g, &m.avgpool, &y);
        }
    }
    conv_norm_relu(g, &m.conv5, &x)
}

fn bottleneck(g: &mut GraphBuilder, b: &Bottleneck, x: &str) -> String {
    let y = conv(g, &b.conv1, x);
    let y = batch_norm(g, &b.bn1, &y);
    let y = relu(g, &y);
    let y = conv(g, &b.conv2, &y);
    let y = batch_norm(g, &b.bn2, &y);
    let y = relu(g, &y);
    let y = conv(g, &b.conv3, &y);
    let y = batch_norm(g, &b.bn3, &y);
    let identity = match &b.downsample {
        Some(d) => conv_norm(g, d, x),
        None => x.to_string(),
    };
    let out = add(g, &y, &identity);
    relu(g, &out)
}

fn resnet(g: &mut GraphBuilder, m: &ResNet, x: &str) -> String {
    let y = conv(g, &m.conv1, x);
    let y = batch_norm(g, &m.bn1, &y);
    let y = relu(g, &y);
    let y = max_pool(g, &m.maxpool, &y);
    [&m.layer1, &m.layer2, &m.layer3, &m.layer4]
        .into_iter()
        .flatten()
        .fold(y, |x, b| bottleneck(g, b, &x))
}

fn mobilenetv2(g: &mut GraphBuilder, m: &MobileNetV2, x: &str) -> String {
    let y = conv_norm(g, &m.conv1, x);
    let mut x = relu6(g, &y);
    for block in m.stages.iter().flatten() {
        let y = conv_norm(g, &block.conv1, &x);
        let y = relu6(g, &y);
        let y = conv_norm(g, &block.dwconv2, &y);
        let y = relu6(g, &y);
        let y = conv_norm(g, &block.conv3, &y);
        x = if block.use_residual {
            add(g, &x, &y)
        } else {
            y
        };
    }
    let y = conv_norm(g, &m.conv9, &x);
    relu6(g, &y)
}

fn act(g: &mut GraphBuilder, a: Act, x: &str) -> String {
    match a {
        Act::Relu => relu(g, x),
        Act::HardSwish => hard_swish(g, x),
        Act::Silu => silu(g, x),
    }
}

fn squeeze_excite(g: &mut GraphBuilder, se: &Option<SqueezeExcite>, x: &str) -> String {
    let Some(se) = se else {
        return x.to_string();
    };
    let s = g.node("GlobalAveragePool", &[x], vec![]);
    let s = conv(g, &se.conv_reduce, &s);
    let s = act(g, se.act, &s);
    let s = conv(g, &se.conv_expand, &s);
    let s = match se.gate {
        Gate::Sigmoid => g.node("Sigmoid", &[&s], vec![]),
        Gate::HardSigmoid => hard_sigmoid(g, &s),
    };
    g.node("Mul", &[x, &s], vec![])
}

fn efficient_block(g: &mut GraphBuilder, b: &Block, x: &str) -> String {
    match b {
        Block::DepthwiseSeparable(b) => {
            let y = conv(g, &b.conv_dw, x);
            let y = batch_norm(g, &b.bn1, &y);
            let y = act(g, b.act, &y);
            let y = squeeze_excite(g, &b.se, &y);
            let y = conv(g, &b.conv_pw, &y);
            let y = batch_norm(g, &b.bn2, &y);
            if b.has_skip { add(g, &y, x) } else { y }
        }
        Block::InvertedResidual(b) => {
            let y = conv(g, &b.conv_pw, x);
            let y = batch_norm(g, &b.bn1, &y);
            let y = act(g, b.act, &y);
            let y = conv(g, &b.conv_dw, &y);
            let y = batch_norm(g, &b.bn2, &y);
            let y = act(g, b.act, &y);
            let y = squeeze_excite(g, &b.se, &y);
            let y = conv(g, &b.conv_pwl, &y);
            let y = batch_norm(g, &b.bn3, &y);
            if b.has_skip { add(g, &y, x) } else { y }
        }
        Block::ConvBnAct(b) => {
            let y = conv(g, &b.conv, x);
            let y = batch_norm(g, &b.bn1, &y);
            act(g, b.act, &y)
        }
    }
}

fn efficientnet(g: &mut GraphBuilder, m: &EfficientNet, x: &str) -> String {
    let y = conv(g, &m.conv_stem, x);
    let y = batch_norm(g, &m.bn1, &y);
    let y = act(g, m.act, &y);
    let y = m
        .blocks
        .iter()
        .flatten()
        .fold(y, |y, b| efficient_block(g, b, &y));
    match (&m.conv_head, &m.bn2) {
        (Some(c), Some(bn)) => {
            let y = conv(g, c, &y);
            let y = batch_norm(g, bn, &y);
            act(g, m.act, &y)
        }
        _ => y,
    }
}

fn tower(g: &mut GraphBuilder, convs: &[ConvNorm], x: &str) -> String {
    convs
        .iter()
        .fold(x.to_string(), |y, c| conv_norm_relu(g, c, &y))
}

fn inception_stage(g: &mut GraphBuilder, s: &Stage, x: &str) -> String {
    let max_pool = |g: &mut GraphBuilder| pool(g, "MaxPool", 3, 2, 0, x);
    match s {
        Stage::Conv(c) => conv_norm_relu(g, c, x),
        Stage::Mixed3a(m) => {
            let parts = [max_pool(g), conv_norm_relu(g, &m.conv, x)];
            concat(g, &parts)
        }
        Stage::Mixed4a(m) => {
            let parts = [tower(g, &m.branch0, x), tower(g, &m.branch1, x)];
            concat(g, &parts)
        }
        Stage::Mixed5a(m) => {
            let parts = [conv_norm_relu(g, &m.conv, x), max_pool(g)];
            concat(g, &parts)
        }
        Stage::Inception(b) => {
            let pooled = pool(g, "AveragePool", 3, 1, 1, x);
            let parts = [
                conv_norm_relu(g, &b.branch0, x),
                tower(g, &b.branch1, x),
                tower(g, &b.branch2, x),
                conv_norm_relu(g, &b.branch3, &pooled),
            ];
            concat(g, &parts)
        }
        Stage::Reduction(r) => {
            let parts = [
                tower(g, &r.branch0, x),
                tower(g, &r.branch1, x),
                max_pool(g),
            ];
            concat(g, &parts)
        }
        Stage::InceptionC(c) => {
            let x1 = conv_norm_relu(g, &c.branch1_0, x);
            let x2 = conv_norm_relu(g, &c.branch2_0, x);
            let x2 = conv_norm_relu(g, &c.branch2_1, &x2);
            let x2 = conv_norm_relu(g, &c.branch2_2, &x2);
            let pooled = pool(g, "AveragePool", 3, 1, 1, x);
            let parts = [
                conv_norm_relu(g, &c.branch0, x),
                conv_norm_relu(g, &c.branch1_1a, &x1),
                conv_norm_relu(g, &c.branch1_1b, &x1),
                conv_norm_relu(g, &c.branch2_3a, &x2),
                conv_norm_relu(g, &c.branch2_3b, &x2),
                conv_norm_relu(g, &c.branch3, &pooled),
            ];
            concat(g, &parts)
        }
    }
}

fn inceptionv4(g: &mut GraphBuilder, m: &InceptionV4, x: &str) -> String {
    m.features
        .iter()
        .fold(x.to_string(), |y, s| inception_stage(g, s, &y))
}

fn face_conv_block(g: &mut GraphBuilder, b: &ConvBlock, x: &str) -> String {
    let y = conv(g, &b.conv, x);
    let y = batch_norm(g, &b.bn, &y);
    prelu(g, &b.prelu, &y)
}

fn face_linear_block(g: &mut GraphBuilder, b: &LinearBlock, x: &str) -> String {
    let y = conv(g, &b.conv, x);
    batch_norm(g, &b.bn, &y)
}

fn face_depth_wise(g: &mut GraphBuilder, b: &DepthWise, x: &str) -> String {
    let y = face_conv_block(g, &b.conv, x);
    let y = face_conv_block(g, &b.conv_dw, &y);
    let y = face_linear_block(g, &b.project, &y);
    if b.residual { add(g, x, &y) } else { y }
}

fn mobilefacenet(g: &mut GraphBuilder, m: &MobileFaceNet, x: &str) -> String {
    let y = face_conv_block(g, &m.conv1, x);
    let y = face_conv_block(g, &m.conv2_dw, &y);
    let y = m.stages().fold(y, |y, b| face_depth_wise(g, b, &y));
    let y = face_conv_block(g, &m.conv_6_sep, &y);
    face_linear_block(g, &m.conv_6_dw, &y)
}

fn flatten(g: &mut GraphBuilder, x: &str) -> String {
    g.node("Flatten", &[x], vec![("axis", super::graph::Attr::Int(1))])
}

fn head(g: &mut GraphBuilder, h: &Head, maps: &str) -> String {
    let pooled = g.node("GlobalAveragePool", &[maps], vec![]);
    if let Some(c) = &h.conv_head {
        let y = conv(g, c, &pooled);
        let y = hard_swish(g, &y);
        return flatten(g, &y);
    }
    let v = flatten(g, &pooled);
    match &h.fc {
        Some(fc) => {
            let y = linear(g, &fc.linear, &v);
            let y = batch_norm(g, &fc.bn, &y);
            if fc.relu { relu(g, &y) } else { y }
        }
        None => v,
    }
}

/// The classifier's logits for an embedding: the linear layer, or for a classifier trained on
/// cosines the scaled cosines (the embedding L2-normalized in the graph, the class weights
/// stored normalized).
pub fn logits(g: &mut GraphBuilder, model: &ReidModel, embedding: &str, opset: i64) -> String {
    let Some(scale) = model.cosine_scale else {
        return linear(g, &model.head.classifier, embedding);
    };
    let weight = model.head.classifier.weight.val();
    let norm = weight
        .clone()
        .powf_scalar(2.0)
        .sum_dim(0)
        .sqrt()
        .clamp_min(1e-12);
    // Stored in torch's [classes, dim] layout under the classifier's name.
    let unit = (weight / norm).transpose();
    let dims = unit.dims();
    let w = g.param(
        model.head.classifier.weight.id,
        "cos_w",
        &dims,
        &crate::models::embed::tensor_to_vec(unit),
    );
    let unit_features = super::l2_normalize(g, embedding, opset);
    let cosines = g.node(
        "Gemm",
        &[&unit_features, &w],
        vec![("transB", super::graph::Attr::Int(1))],
    );
    let s = g.tensor("cos_scale", &[], &[scale]);
    g.node("Mul", &[&cosines, &s], vec![])
}

/// The eval-mode feature maps and embedding of `model` applied to `input`; returns their
/// names.
pub fn embedding(g: &mut GraphBuilder, model: &ReidModel, input: &str) -> (String, String) {
    let maps = match &model.backbone {
        Backbone::OsNet(m) => osnet(g, m, input),
        Backbone::OsNetAin(m) => osnet_ain(g, m, input),
        Backbone::ResNet(m) => resnet(g, m, input),
        Backbone::MobileNetV2(m) => mobilenetv2(g, m, input),
        Backbone::EfficientNet(m) => efficientnet(g, m, input),
        Backbone::InceptionV4(m) => inceptionv4(g, m, input),
        Backbone::MobileFaceNet(m) => mobilefacenet(g, m, input),
    };
    let embedding = head(g, &model.head, &maps);
    (maps, embedding)
}
