//! The deterministic weights of the parity fixtures, re-implemented from the spec in
//! `tests/fixtures/hashed_weights.py` (which draws the same numbers for the reference models):
//! element `i` of the tensor `name` comes from a counter-based hash of the name and the index,
//! mapped by the tensor's role (normalization statistics, scales, biases, weights).

use std::collections::BTreeMap;

use reid::weights::{RawTensor, StateDict};

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// FNV-1a of the name's UTF-8 bytes.
pub fn fnv1a64(name: &str) -> u64 {
    name.bytes().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    })
}

/// SplitMix64's finalizer.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The hash of element `i` of tensor `name` (before it becomes a uniform number).
pub fn element_hash(name: &str, i: u64) -> u64 {
    mix(fnv1a64(name).wrapping_add((i + 1).wrapping_mul(GOLDEN)))
}

/// The values of the tensor `name` with `shape`, as the spec maps each role.
pub fn tensor_values(name: &str, shape: &[usize]) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let key = fnv1a64(name);
    let role: Box<dyn Fn(f64) -> f64> = if name.ends_with(".running_var") {
        Box::new(|u| 0.5 + 1.5 * u)
    } else if name.ends_with(".running_mean") {
        Box::new(|u| 0.2 * (u - 0.5))
    } else if shape.len() <= 1 && name.ends_with(".weight") {
        Box::new(|u| 0.5 + u)
    } else if shape.len() <= 1 {
        Box::new(|u| 0.2 * (u - 0.5))
    } else {
        let fan_in: usize = shape[1..].iter().product();
        let bound = 1.0 / (fan_in as f64).sqrt();
        Box::new(move |u| (2.0 * u - 1.0) * bound)
    };
    (0..n as u64)
        .map(|i| {
            let h = mix(key.wrapping_add((i + 1).wrapping_mul(GOLDEN)));
            let u = (h >> 40) as f64 / (1u64 << 24) as f64;
            role(u) as f32
        })
        .collect()
}

/// A state dict holding the hashed values of every `(name, shape)`; each BatchNorm
/// `running_var` named in `var_scale` is multiplied (one f32 multiplication) by its factor,
/// which the fixture script calibrated so that the signal keeps its size through the network.
pub fn state_dict(
    tensors: &[(String, Vec<usize>)],
    var_scale: &BTreeMap<String, f32>,
) -> StateDict {
    let tensors: BTreeMap<String, RawTensor> = tensors
        .iter()
        .map(|(name, shape)| {
            let mut data = tensor_values(name, shape);
            if let Some(&factor) = var_scale.get(name) {
                data.iter_mut().for_each(|v| *v *= factor);
            }
            (
                name.clone(),
                RawTensor {
                    shape: shape.clone(),
                    data,
                },
            )
        })
        .collect();
    StateDict {
        tensors,
        integer_tensors: BTreeMap::new(),
        format: "hashed",
    }
}
