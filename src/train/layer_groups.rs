//! Groups of parameters named by torchreid's top-level layer names (`classifier`, `fc`, …):
//! what `open_layers` trains during `fixbase_epoch` and what `staged_lr` gives the full rate.

use burn::module::{ParamGroup, ParamId};

use crate::error::{Error, Result};
use crate::models::ReidModel;

/// An error naming the model's top-level layers when one of `names` is none of them.
pub(crate) fn check_layers(model: &ReidModel, names: &[String], what: &str) -> Result<()> {
    let layers: std::collections::BTreeSet<String> = crate::weights::torch_keys_by_id(model)
        .into_values()
        .filter_map(|key| key.split('.').next().map(str::to_string))
        .collect();
    match names.iter().find(|n| !layers.contains(n.as_str())) {
        Some(name) => Err(Error::InvalidInput(format!(
            "{what}: the model has no layer `{name}`; its layers: {}",
            layers.into_iter().collect::<Vec<_>>().join(", ")
        ))),
        None => Ok(()),
    }
}

/// The parameters of the top-level layers named in `open`.
pub(crate) fn open_layer_params(model: &ReidModel, open: &[String]) -> Vec<ParamId> {
    crate::weights::torch_keys_by_id(model)
        .into_iter()
        .filter(|(_, key)| {
            open.iter()
                .any(|layer| key.split('.').next() == Some(layer))
        })
        .map(|(id, _)| id)
        .collect()
}

/// The training flags of the normalization layers outside the top-level layers in `open`:
/// torchreid's `open_specified_layers` puts every other layer in eval mode, so during
/// `fixbase_epoch` their BatchNorms normalize by their running statistics and keep them.
pub(crate) fn closed_norms(model: &ReidModel, open: &[String]) -> ParamGroup {
    let ids = crate::weights::torch_flag_keys(model)
        .into_iter()
        .filter(|(_, key)| {
            !open
                .iter()
                .any(|layer| key.split('.').next() == Some(layer))
        })
        .map(|(id, _)| id)
        .collect();
    ParamGroup::from_ids(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Arch;

    /// With the closed layers' norms frozen, a training forward pass updates only the open
    /// layers' running statistics; unfrozen, every layer's again.
    #[test]
    fn closed_norms_keep_their_running_statistics() {
        use burn::module::Module;
        use burn::tensor::{Distribution, Tensor};
        let device = crate::device::default_device().autodiff();
        let model = ReidModel::new(Arch::OsnetX0_25, 3, &device).train();
        let open = ["classifier".to_string(), "fc".to_string()];
        let keys = crate::weights::torch_flag_keys(&model);
        assert!(
            keys.iter().any(|(_, k)| k == "conv1.bn.training"),
            "{keys:?}"
        );
        assert!(keys.iter().any(|(_, k)| k == "fc.1.training"), "{keys:?}");
        let closed = closed_norms(&model, &open);
        let stats = |m: &ReidModel| {
            // `valid` takes the running statistics' latest values.
            let v = crate::weights::torch_named_values(&m.clone().valid());
            (
                v["conv1.bn.running_mean"].1.clone(),
                v["fc.1.running_mean"].1.clone(),
            )
        };
        let step = |m: &ReidModel| {
            // Under the lock every draw of the process takes (the seeding tests check it).
            let x = crate::models::seeding::exclusively(|| {
                Tensor::<4>::random([2, 3, 64, 32], Distribution::Default, &device)
            });
            let _ = m.logits(x);
        };
        let frozen = model.freeze_group(closed.clone());
        let before = stats(&frozen);
        step(&frozen);
        let after = stats(&frozen);
        assert_eq!(before.0, after.0, "a closed layer's statistics moved");
        assert_ne!(before.1, after.1, "an open layer's statistics did not move");
        let open_again = frozen.unfreeze_group(closed);
        step(&open_again);
        assert_ne!(after.0, stats(&open_again).0);
    }

    #[test]
    fn layer_names_are_checked_against_the_model() {
        let device = crate::device::default_device();
        let model = ReidModel::new(Arch::OsnetX0_25, 3, &device);
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_layers(&model, &names(&["classifier", "fc", "conv1"]), "x").is_ok());
        let err = check_layers(&model, &names(&["classifier", "classifer"]), "open_layers")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("open_layers") && err.contains("`classifer`") && err.contains("conv5"),
            "{err}"
        );
    }
}
