//! Random initialization against the reference implementations: every tensor of a fresh model
//! is drawn as torchreid (or timm) draws it — constants equal, random tensors with the same
//! spread (`tests/fixtures/init/stats.json`, by `make_init_fixtures.py`). A depthwise filter
//! drawn five times too large trains several times slower under Adam, though BatchNorm hides
//! the scale in the forward pass.

use crate::common::fixture;

use reid::device::default_device;
use reid::models::ReidModel;
use reid::models::layers::Init;
use reid::weights::torch_named_values;
use serde_json::Value;

/// What a reference draw of one tensor looks like.
struct Reference {
    numel: usize,
    mean: f64,
    std: f64,
}

fn references() -> Vec<(String, Vec<(String, Reference)>)> {
    let text = std::fs::read_to_string(fixture("init/stats.json")).unwrap();
    let json: serde_json::Map<String, Value> = serde_json::from_str(&text).unwrap();
    json.into_iter()
        .map(|(arch, tensors)| {
            let tensors = tensors
                .as_object()
                .unwrap()
                .iter()
                .map(|(key, s)| {
                    let reference = Reference {
                        numel: s["numel"].as_u64().unwrap() as usize,
                        mean: s["mean"].as_f64().unwrap(),
                        std: s["std"].as_f64().unwrap(),
                    };
                    (key.clone(), reference)
                })
                .collect();
            (arch, tensors)
        })
        .collect()
}

/// Why `values` do not look like a draw of `reference`, if they do not.
fn mismatch(values: &[f32], reference: &Reference) -> Option<String> {
    if values.len() != reference.numel {
        return Some(format!(
            "{} values, reference {}",
            values.len(),
            reference.numel
        ));
    }
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| v as f64).sum::<f64>() / n;
    let std = (values
        .iter()
        .map(|&v| (v as f64 - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    if reference.std == 0.0 {
        let off = values
            .iter()
            .any(|&v| (v as f64 - reference.mean).abs() > 1e-7);
        return off.then(|| format!("not all {} (mean {mean:.4}, std {std:.4})", reference.mean));
    }
    // Six standard errors of the sample mean and of the sample deviation.
    let std_ok = (std / reference.std - 1.0).abs() <= 6.0 / (2.0 * n).sqrt() + 0.01;
    let mean_ok = (mean - reference.mean).abs() <= 6.0 * reference.std / n.sqrt();
    (!std_ok || !mean_ok).then(|| {
        format!(
            "mean {mean:.4} std {std:.4}, reference mean {:.4} std {:.4}",
            reference.mean, reference.std
        )
    })
}

#[test]
fn fresh_models_are_drawn_as_the_references_draw_them() {
    let device = default_device();
    let mut failures = Vec::new();
    for (arch, tensors) in references() {
        let model = ReidModel::new(arch.parse().unwrap(), 10, &device);
        let ours = torch_named_values(&model);
        let mut compared = 0;
        for (key, reference) in &tensors {
            // num_batches_tracked has no counterpart; timm's classifier is drawn as torchreid's
            // on purpose (`Init::classifier` says why).
            let timm_classifier = key.starts_with("classifier.")
                && arch.parse::<reid::Arch>().unwrap().init() == Init::Timm;
            let Some((_, values)) = ours.get(key).filter(|_| !timm_classifier) else {
                continue;
            };
            compared += 1;
            if let Some(why) = mismatch(values, reference) {
                failures.push(format!("{arch} {key}: {why}"));
            }
        }
        assert!(
            compared * 10 >= tensors.len() * 9,
            "{arch}: only {compared} of {} reference tensors found",
            tensors.len()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
