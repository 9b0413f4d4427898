//! Compute-device selection by name (`flex`, `wgpu:0`, `cuda:0`, or a list for data-parallel
//! training).
//!
//! Model code never names a backend: it receives a [`Device`] chosen here at run time, so the
//! same code runs on the CPU (`flex`, always compiled in) and on the GPU backends enabled by the
//! `wgpu` and `cuda` cargo features.

use crate::error::{Error, Result};
pub use burn::tensor::Device;

/// The default device: the pure-Rust multi-threaded CPU backend.
pub fn default_device() -> Device {
    Device::flex()
}

/// Parses a device name: `flex` / `cpu`, `wgpu[:N]`, `cuda[:N]`.
///
/// A GPU name whose backend was not compiled in is an error that says which cargo feature
/// enables it.
pub fn parse_device(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    let (kind, index) = match name.split_once(':') {
        Some((kind, index)) => {
            let index: usize = index
                .parse()
                .map_err(|_| Error::Device(name.clone(), "index must be a number".into()))?;
            (kind.to_string(), index)
        }
        None => (name.clone(), 0),
    };
    match kind.as_str() {
        "flex" | "cpu" => Ok(Device::flex()),
        "wgpu" => wgpu_device(&name, index),
        "cuda" => cuda_device(&name, index),
        _ => Err(Error::Device(
            name.clone(),
            "expected flex, cpu, wgpu[:N] or cuda[:N]".into(),
        )),
    }
}

/// Parses a comma-separated list of device names (`cuda:0,cuda:1`): the devices of
/// data-parallel training, the first one holding the model.
pub fn parse_devices(names: &str) -> Result<Vec<Device>> {
    let devices = names
        .split(',')
        .map(parse_device)
        .collect::<Result<Vec<_>>>()?;
    if devices.is_empty() {
        return Err(Error::Device(names.to_string(), "no device named".into()));
    }
    Ok(devices)
}

/// Whether `device` is the CPU (Burn's flex backend).
pub fn is_cpu(device: &Device) -> bool {
    matches!(
        device.as_dispatch().clone().inner(),
        burn::backend::DispatchDevice::Flex(_)
    )
}

#[cfg(feature = "wgpu")]
fn wgpu_device(_name: &str, index: usize) -> Result<Device> {
    use burn::tensor::DeviceKind;
    Ok(if index == 0 {
        Device::wgpu(DeviceKind::DefaultDevice)
    } else {
        Device::wgpu(DeviceKind::DiscreteGpu(index))
    })
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device(name: &str, _index: usize) -> Result<Device> {
    Err(Error::Device(
        name.to_string(),
        "this build has no wgpu backend; rebuild with `--features wgpu`".into(),
    ))
}

#[cfg(feature = "cuda")]
fn cuda_device(_name: &str, index: usize) -> Result<Device> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(name: &str, _index: usize) -> Result<Device> {
    Err(Error::Device(
        name.to_string(),
        "this build has no CUDA backend; rebuild with `--features cuda`".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_or_explain() {
        assert!(parse_device("flex").is_ok());
        assert!(parse_device("CPU").is_ok());
        assert!(parse_device("tpu:0").is_err());
        assert!(parse_device("cuda:x").is_err());
        #[cfg(not(feature = "cuda"))]
        {
            let err = parse_device("cuda:0").unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
    }
}
