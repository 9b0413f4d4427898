//! Model fingerprints: a hash naming what produced an embedding — the weights, the
//! preprocessing and the output (embedding or logits) — so that a gallery can refuse
//! embeddings of another model. Two levels: the weights' fingerprint (a SHA-256 of every
//! tensor's name, shape and values, in name order), which an export records, and the model's
//! (the weights' fingerprint with the preprocessing and output it runs with), which an
//! extractor reports and a gallery records.

use sha2::{Digest, Sha256};

use super::StateDict;
use crate::models::ReidModel;
use crate::preprocess::Preprocessing;

/// The fingerprint of named tensors, given in name order.
pub fn of_tensors<'a>(tensors: impl Iterator<Item = (&'a str, &'a [usize], &'a [f32])>) -> String {
    let mut hash = Sha256::new();
    hash.update(b"reid-weights-v1\0");
    for (name, shape, values) in tensors {
        hash.update((name.len() as u64).to_le_bytes());
        hash.update(name.as_bytes());
        hash.update((shape.len() as u64).to_le_bytes());
        for &d in shape {
            hash.update((d as u64).to_le_bytes());
        }
        // -0.0 and 0.0, and every NaN, are the same weight.
        for &v in values {
            let v = if v == 0.0 { 0.0f32 } else { v };
            let bits = if v.is_nan() {
                f32::NAN.to_bits()
            } else {
                v.to_bits()
            };
            hash.update(bits.to_le_bytes());
        }
    }
    hex(&hash.finalize())
}

/// The fingerprint of weights known only as a file's bytes (an ONNX file whose initializers
/// cannot be read as tensors).
pub fn of_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The fingerprint of a model's weights (under torchreid's names).
pub fn of_model(model: &ReidModel) -> String {
    let named = super::torch_named_values(model);
    of_tensors(
        named
            .iter()
            .map(|(k, (shape, data))| (k.as_str(), shape.as_slice(), data.as_slice())),
    )
}

/// The fingerprint of a state dict's floating-point tensors.
pub fn of_state_dict(dict: &StateDict) -> String {
    of_tensors(
        dict.tensors
            .iter()
            .map(|(k, t)| (k.as_str(), t.shape.as_slice(), t.data.as_slice())),
    )
}

/// What an extractor's outputs are: `"embedding"` or `"logits"`.
pub fn output_name(logits: bool) -> &'static str {
    if logits { "logits" } else { "embedding" }
}

/// The model's fingerprint: its weights' fingerprint, the preprocessing its inputs get and
/// the output it gives (see [`output_name`]).
pub fn of_pipeline(weights: &str, preprocessing: &Preprocessing, output: &str) -> String {
    let mut hash = Sha256::new();
    hash.update(b"reid-model-v1\0");
    hash.update(weights.as_bytes());
    let mut settings = preprocessing.to_metadata();
    settings.sort();
    for (key, value) in settings {
        hash.update(format!("\0{key}={value}").as_bytes());
    }
    hash.update(format!("\0output={output}").as_bytes());
    hex(&hash.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SHA-256 itself against the standard's test vector, then what the fingerprint covers.
    #[test]
    fn fingerprints_change_with_every_part_and_only_with_them() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let w = of_tensors([("a", &[2usize][..], &[1.0f32, 2.0][..])].into_iter());
        let same = of_tensors([("a", &[2usize][..], &[1.0f32, 2.0][..])].into_iter());
        assert_eq!(w, same);
        for other in [
            of_tensors([("b", &[2usize][..], &[1.0f32, 2.0][..])].into_iter()),
            of_tensors([("a", &[1usize, 2][..], &[1.0f32, 2.0][..])].into_iter()),
            of_tensors([("a", &[2usize][..], &[1.0f32, 2.5][..])].into_iter()),
        ] {
            assert_ne!(w, other);
        }
        assert_eq!(
            of_tensors([("a", &[1usize][..], &[0.0f32][..])].into_iter()),
            of_tensors([("a", &[1usize][..], &[-0.0f32][..])].into_iter())
        );
        let p = Preprocessing::torchreid(256, 128);
        let model = of_pipeline(&w, &p, "embedding");
        assert_eq!(model.len(), 64);
        assert_ne!(model, of_pipeline(&w, &p, "logits"));
        assert_ne!(
            model,
            of_pipeline(&w, &Preprocessing::torchreid(256, 64), "embedding")
        );
        assert_ne!(model, of_pipeline(&same.replace('a', "b"), &p, "embedding"));
    }
}
