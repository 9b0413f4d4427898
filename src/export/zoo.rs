//! The model zoo's forward passes written as ONNX graphs; each function mirrors the `forward`
//! of the same block in `crate::models`, and the export parity tests hold them together.

use super::graph::GraphBuilder;
use super::layers::{
    avg_pool, batch_norm, conv, conv_norm, conv_norm_relu, instance_norm, linear, max_pool, relu,
    relu6,
};
use crate::models::layers::Head;
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

fn head(g: &mut GraphBuilder, h: &Head, maps: &str) -> String {
    let pooled = g.node("GlobalAveragePool", &[maps], vec![]);
    let v = g.node(
        "Flatten",
        &[&pooled],
        vec![("axis", super::graph::Attr::Int(1))],
    );
    match &h.fc {
        Some(fc) => {
            let y = linear(g, &fc.linear, &v);
            let y = batch_norm(g, &fc.bn, &y);
            relu(g, &y)
        }
        None => v,
    }
}

/// The eval-mode embedding of `model` applied to `input`; returns the output's name.
pub fn embedding(g: &mut GraphBuilder, model: &ReidModel, input: &str) -> String {
    let maps = match &model.backbone {
        Backbone::OsNet(m) => osnet(g, m, input),
        Backbone::OsNetAin(m) => osnet_ain(g, m, input),
        Backbone::ResNet(m) => resnet(g, m, input),
        Backbone::MobileNetV2(m) => mobilenetv2(g, m, input),
    };
    head(g, &model.head, &maps)
}
