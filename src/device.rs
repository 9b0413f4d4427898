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

/// Keeps memory the process frees for its own reuse instead of returning it to the system at
/// once: glibc gives blocks above its mmap threshold back with `munmap`, and on a virtual machine
/// each return flushes the TLB of every core. A training step frees hundreds of activation-sized
/// blocks; measured on 2 cores, the depthwise convolution bench's forward + backward took 102 ms
/// before and 25 ms after. The setting is process-wide, so the library never makes it on its own:
/// the `reid` command line calls this at start; a host application decides for itself. Returns
/// whether the allocator accepted it (only glibc on Linux has these settings).
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // Blocks up to 32 MiB (glibc's largest mmap threshold) come from the heap, and the heap
        // keeps up to 1 GiB free at its top rather than shrinking.
        // SAFETY: mallopt only changes allocator parameters; both values are in glibc's range.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
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
    fn freed_memory_settings_are_accepted_by_glibc() {
        let accepted = retain_freed_memory();
        assert_eq!(accepted, cfg!(all(target_os = "linux", target_env = "gnu")));
    }

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
