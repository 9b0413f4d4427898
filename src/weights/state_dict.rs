//! Reading the tensors of a checkpoint file into memory: `torch.save` files (`.pth`,
//! `.pth.tar`, `.pt`; a bare `state_dict` or a dict holding one) and `.safetensors`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::store::pytorch_reader::{self, PytorchReader};

use crate::error::{Error, Result};
use crate::formats::npy::half_to_f32;

/// One floating-point tensor of a checkpoint, widened to `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    /// Extents, outermost first.
    pub shape: Vec<usize>,
    /// Elements in row-major order.
    pub data: Vec<f32>,
}

/// The tensors of a checkpoint, keyed by torchreid's names (`module.` prefixes removed).
#[derive(Debug, Clone, Default)]
pub struct StateDict {
    /// Floating-point tensors.
    pub tensors: BTreeMap<String, RawTensor>,
    /// Integer tensors (such as BatchNorm's `num_batches_tracked`), name and shape only.
    pub integer_tensors: BTreeMap<String, Vec<usize>>,
    /// Container format the file was read as.
    pub format: &'static str,
}

impl StateDict {
    /// Reads every tensor of `path`, choosing the format from the file's first bytes.
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let mut head = [0u8; 9];
        let n = {
            use std::io::Read;
            let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
            f.read(&mut head).map_err(|e| Error::io(path, e))?
        };
        let head = &head[..n];
        // A safetensors file starts with a little-endian u64 header length, then `{`.
        let dict = if head.len() == 9 && head[8] == b'{' {
            read_safetensors(path)?
        } else {
            read_pytorch(path)?
        };
        if dict.tensors.is_empty() {
            return Err(format_err(path, "the file holds no floating-point tensors"));
        }
        Ok(dict)
    }

    fn insert(&mut self, name: &str, shape: Vec<usize>, data: Option<Vec<f32>>) {
        let name = name.strip_prefix("module.").unwrap_or(name).to_string();
        match data {
            Some(data) => {
                self.tensors.insert(name, RawTensor { shape, data });
            }
            None => {
                self.integer_tensors.insert(name, shape);
            }
        }
    }

    /// Total number of floating-point elements.
    pub fn num_elements(&self) -> usize {
        self.tensors.values().map(|t| t.data.len()).sum()
    }
}

fn format_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::WeightFormat {
        path: PathBuf::from(path),
        reason: reason.into(),
    }
}

fn read_safetensors(path: &Path) -> Result<StateDict> {
    use safetensors::Dtype;
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| format_err(path, e.to_string()))?;
    let mut dict = StateDict {
        format: "safetensors",
        ..Default::default()
    };
    for (name, view) in file.tensors() {
        let raw = view.data();
        let data = match view.dtype() {
            Dtype::F32 => Some(decode(raw, 4, |c| {
                f32::from_le_bytes(c.try_into().unwrap())
            })),
            Dtype::F64 => Some(decode(raw, 8, |c| {
                f64::from_le_bytes(c.try_into().unwrap()) as f32
            })),
            Dtype::F16 => Some(decode(raw, 2, |c| {
                half_to_f32(u16::from_le_bytes([c[0], c[1]]))
            })),
            Dtype::BF16 => Some(decode(raw, 2, |c| {
                f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16)
            })),
            Dtype::I64 | Dtype::I32 | Dtype::I16 | Dtype::I8 | Dtype::U8 | Dtype::BOOL => None,
            other => {
                return Err(format_err(
                    path,
                    format!("{name}: unsupported dtype {other:?}"),
                ));
            }
        };
        dict.insert(&name, view.shape().to_vec(), data);
    }
    Ok(dict)
}

fn read_pytorch(path: &Path) -> Result<StateDict> {
    use pytorch_reader::DType;
    // torchreid checkpoints hold the weights under `state_dict`; model-zoo files are bare.
    let reader = PytorchReader::with_top_level_key(path, "state_dict")
        .or_else(|_| PytorchReader::new(path))
        .map_err(|e| format_err(path, e.to_string()))?;
    let mut dict = StateDict {
        format: "pytorch",
        ..Default::default()
    };
    for (name, tensor) in reader.into_tensors() {
        let shape = tensor.shape().to_vec();
        let dtype = tensor.dtype();
        let float = matches!(dtype, DType::F32 | DType::F64 | DType::F16 | DType::BF16);
        if !float {
            dict.insert(&name, shape, None);
            continue;
        }
        let raw = tensor.read().map_err(|e| format_err(path, e.to_string()))?;
        let data = match dtype {
            DType::F32 => decode(&raw, 4, |c| f32::from_ne_bytes(c.try_into().unwrap())),
            DType::F64 => decode(&raw, 8, |c| {
                f64::from_ne_bytes(c.try_into().unwrap()) as f32
            }),
            DType::F16 => decode(&raw, 2, |c| half_to_f32(u16::from_ne_bytes([c[0], c[1]]))),
            _ => decode(&raw, 2, |c| {
                f32::from_bits((u16::from_ne_bytes([c[0], c[1]]) as u32) << 16)
            }),
        };
        dict.insert(&name, shape, Some(data));
    }
    Ok(dict)
}

fn decode(raw: &[u8], size: usize, f: impl Fn(&[u8]) -> f32) -> Vec<f32> {
    raw.chunks_exact(size).map(f).collect()
}
