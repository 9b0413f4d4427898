//! Multiply-accumulate counting by walking a model's layers with the spatial size they see.
//!
//! Counts what torchreid's published GFLOPs count: convolutions and linear layers (one
//! multiply-add per weight use). Normalization, activations and pooling are not counted.

use burn::nn::conv::Conv2d;
use burn::nn::{Linear, PaddingConfig2d};

/// A running count of multiply-accumulates and the current feature-map size.
#[derive(Debug, Clone)]
pub struct Macs {
    total: u64,
    h: usize,
    w: usize,
}

impl Macs {
    /// Starts at an input of `h`×`w` pixels.
    pub fn new(h: usize, w: usize) -> Self {
        Self { total: 0, h, w }
    }

    /// The multiply-accumulates counted so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Current feature-map size.
    pub fn hw(&self) -> (usize, usize) {
        (self.h, self.w)
    }

    /// Resets the current feature-map size (after a side branch).
    pub fn set_hw(&mut self, (h, w): (usize, usize)) {
        self.h = h;
        self.w = w;
    }

    /// Counts a convolution and moves to its output size.
    pub fn conv(&mut self, conv: &Conv2d) {
        let [out_c, in_per_group, kh, kw] = conv.weight.lazy_shape().dims::<4>();
        let (ph, pw) = match conv.padding {
            PaddingConfig2d::Explicit(top, left, _, _) => (top, left),
            _ => (0, 0),
        };
        self.h = out_size(self.h, kh, conv.stride[0], ph, conv.dilation[0]);
        self.w = out_size(self.w, kw, conv.stride[1], pw, conv.dilation[1]);
        self.total += (self.h * self.w * out_c * in_per_group * kh * kw) as u64;
    }

    /// Moves through a pooling window (not counted).
    pub fn pool(&mut self, kernel: usize, stride: usize, padding: usize) {
        self.h = out_size(self.h, kernel, stride, padding, 1);
        self.w = out_size(self.w, kernel, stride, padding, 1);
    }

    /// Counts a linear layer applied once.
    pub fn linear(&mut self, linear: &Linear) {
        let [i, o] = linear.weight.lazy_shape().dims::<2>();
        self.total += (i * o) as u64;
    }
}

fn out_size(size: usize, kernel: usize, stride: usize, padding: usize, dilation: usize) -> usize {
    (size + 2 * padding).saturating_sub(dilation * (kernel - 1) + 1) / stride + 1
}
