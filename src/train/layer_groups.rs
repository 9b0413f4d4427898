//! Groups of parameters named by torchreid's top-level layer names (`classifier`, `fc`, …):
//! what `open_layers` trains during `fixbase_epoch` and what `staged_lr` gives the full rate.

use burn::module::ParamId;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Arch;

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
