//! Reading and writing NumPy `.npy` arrays and `.npz` archives.
//!
//! Only what interchange with Python needs: C-order arrays of floats, integers and booleans.
//! Integers are widened to `i64` and floats kept as `f32` or `f64` on read. Writes go to a
//! temporary file that is renamed into place, so a reader never sees half an array.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Element data of an array, in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `float16` (widened), `float32`.
    F32(Vec<f32>),
    /// `float64`.
    F64(Vec<f64>),
    /// Any integer or boolean type, widened.
    I64(Vec<i64>),
}

/// An n-dimensional array read from or written to a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Extents, outermost first; empty for a scalar.
    pub shape: Vec<usize>,
    /// The elements.
    pub data: NpyData,
}

impl NpyArray {
    /// A float32 array; `data.len()` must equal the product of `shape`.
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self {
            shape,
            data: NpyData::F32(data),
        }
    }

    /// A float64 array; `data.len()` must equal the product of `shape`.
    pub fn f64(shape: Vec<usize>, data: Vec<f64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self {
            shape,
            data: NpyData::F64(data),
        }
    }

    /// An int64 array; `data.len()` must equal the product of `shape`.
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self {
            shape,
            data: NpyData::I64(data),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match &self.data {
            NpyData::F32(v) => v.len(),
            NpyData::F64(v) => v.len(),
            NpyData::I64(v) => v.len(),
        }
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The elements as `f32` (doubles are rounded, integers converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::I64(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }

    /// The elements as `f64`.
    pub fn to_f64(&self) -> Vec<f64> {
        match &self.data {
            NpyData::F32(v) => v.iter().map(|&x| x as f64).collect(),
            NpyData::F64(v) => v.clone(),
            NpyData::I64(v) => v.iter().map(|&x| x as f64).collect(),
        }
    }

    /// The elements as `i64`; an error for float arrays.
    pub fn to_i64(&self) -> Result<Vec<i64>> {
        match &self.data {
            NpyData::I64(v) => Ok(v.clone()),
            _ => Err(Error::InvalidInput(
                "expected an integer array, found floats".into(),
            )),
        }
    }

    /// Parses the bytes of a `.npy` file.
    pub fn from_bytes(bytes: &[u8]) -> std::result::Result<Self, String> {
        parse_npy(bytes)
    }

    /// Serializes to the bytes of a `.npy` file (version 1.0).
    pub fn to_bytes(&self) -> Vec<u8> {
        let (descr, payload): (&str, Vec<u8>) = match &self.data {
            NpyData::F32(v) => ("<f4", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            NpyData::F64(v) => ("<f8", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
            NpyData::I64(v) => ("<i8", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        };
        let shape = match self.shape.len() {
            1 => format!("({},)", self.shape[0]),
            _ => format!(
                "({})",
                self.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        // Magic (6) + version (2) + header length (2) + header must be a multiple of 64.
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        let mut out = Vec::with_capacity(10 + header.len() + payload.len());
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&payload);
        out
    }
}

/// Reads a `.npy` file.
pub fn read_npy(path: impl AsRef<Path>) -> Result<NpyArray> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_npy(&bytes).map_err(|reason| Error::Npy {
        path: path.to_path_buf(),
        reason,
    })
}

/// Writes a `.npy` file atomically (temporary file, then rename).
pub fn write_npy(path: impl AsRef<Path>, array: &NpyArray) -> Result<()> {
    write_atomically(path.as_ref(), &array.to_bytes())
}

/// Reads every array of a `.npz` archive, keyed by name (without the `.npy` suffix).
pub fn read_npz(path: impl AsRef<Path>) -> Result<BTreeMap<String, NpyArray>> {
    let path = path.as_ref();
    let npy_err = |reason: String| Error::Npy {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| npy_err(e.to_string()))?;
    let mut arrays = BTreeMap::new();
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|e| npy_err(e.to_string()))?;
        let name = entry.name().trim_end_matches(".npy").to_string();
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| npy_err(format!("{name}: {e}")))?;
        let array = parse_npy(&bytes).map_err(|e| npy_err(format!("{name}: {e}")))?;
        arrays.insert(name, array);
    }
    Ok(arrays)
}

/// Writes a `.npz` archive (stored, uncompressed) atomically.
pub fn write_npz<'a>(
    path: impl AsRef<Path>,
    arrays: impl IntoIterator<Item = (&'a str, &'a NpyArray)>,
) -> Result<()> {
    let path = path.as_ref();
    let mut buffer = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buffer);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (name, array) in arrays {
            let io_err = |e: std::io::Error| Error::io(path, e);
            zip.start_file(format!("{name}.npy"), options)
                .map_err(|e| io_err(std::io::Error::other(e)))?;
            zip.write_all(&array.to_bytes()).map_err(io_err)?;
        }
        zip.finish()
            .map_err(|e| Error::io(path, std::io::Error::other(e)))?;
    }
    write_atomically(path, buffer.get_ref())
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
/// that `path` holds either its old content or all of the new one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(path, e)
    })
}

fn parse_npy(bytes: &[u8]) -> std::result::Result<NpyArray, String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("missing the \\x93NUMPY magic".into());
    }
    let (header_len, header_start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unsupported format version {v}")),
    };
    let data_start = header_start
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or("truncated header")?;
    let header =
        std::str::from_utf8(&bytes[header_start..data_start]).map_err(|_| "header is not text")?;
    let descr = header_value(header, "descr").ok_or("header has no descr")?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let fortran = header_value(header, "fortran_order")
        .ok_or("header has no fortran_order")?
        .starts_with("True");
    let shape = parse_shape(header)?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or("shape overflows")?;
    let payload = &bytes[data_start..];
    let (endian, kind) = descr
        .split_at_checked(1)
        .ok_or_else(|| format!("unsupported dtype {descr}"))?;
    if endian == ">" && !kind.ends_with('1') {
        return Err(format!("big-endian dtype {descr} is not supported"));
    }
    let size: usize = kind
        .get(1..)
        .and_then(|s| s.parse().ok())
        .filter(|&size| size > 0)
        .ok_or_else(|| format!("unsupported dtype {descr}"))?;
    let needed = count.checked_mul(size).ok_or("shape overflows")?;
    if payload.len() < needed {
        return Err(format!(
            "data is truncated: {} bytes for {count} elements of {descr}",
            payload.len()
        ));
    }
    let chunks = payload[..needed].chunks_exact(size);
    let data = match (&kind[..1], size) {
        ("f", 2) => NpyData::F32(
            chunks
                .map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
        ),
        ("f", 4) => NpyData::F32(
            chunks
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        ),
        ("f", 8) => NpyData::F64(
            chunks
                .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        ),
        ("i", 1) => NpyData::I64(chunks.map(|c| c[0] as i8 as i64).collect()),
        ("i", 2) => NpyData::I64(
            chunks
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
        ),
        ("i", 4) => NpyData::I64(
            chunks
                .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
        ),
        ("i", 8) => NpyData::I64(
            chunks
                .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
                .collect(),
        ),
        ("u" | "b", 1) => NpyData::I64(chunks.map(|c| c[0] as i64).collect()),
        ("u", 2) => NpyData::I64(
            chunks
                .map(|c| u16::from_le_bytes([c[0], c[1]]) as i64)
                .collect(),
        ),
        ("u", 4) => NpyData::I64(
            chunks
                .map(|c| u32::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
        ),
        ("u", 8) => NpyData::I64(
            chunks
                .map(|c| u64::from_le_bytes(c.try_into().unwrap()) as i64)
                .collect(),
        ),
        _ => return Err(format!("unsupported dtype {descr}")),
    };
    let data = if fortran {
        match data {
            NpyData::F32(v) => NpyData::F32(fortran_to_c(&v, &shape)),
            NpyData::F64(v) => NpyData::F64(fortran_to_c(&v, &shape)),
            NpyData::I64(v) => NpyData::I64(fortran_to_c(&v, &shape)),
        }
    } else {
        data
    };
    Ok(NpyArray { shape, data })
}

/// Reorders column-major (Fortran) elements into row-major order.
fn fortran_to_c<T: Copy>(values: &[T], shape: &[usize]) -> Vec<T> {
    let mut strides = vec![1usize; shape.len()];
    for k in 1..shape.len() {
        strides[k] = strides[k - 1] * shape[k - 1];
    }
    let mut index = vec![0usize; shape.len()];
    let mut out = Vec::with_capacity(values.len());
    for _ in 0..values.len() {
        out.push(
            values[index
                .iter()
                .zip(&strides)
                .map(|(i, s)| i * s)
                .sum::<usize>()],
        );
        // Advance the row-major multi-index, last axis fastest.
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

/// The text after `'key':` up to the next top-level comma of a header dict.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[start + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')').map(|i| i + 1)?
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

fn parse_shape(header: &str) -> std::result::Result<Vec<usize>, String> {
    let shape = header_value(header, "shape").ok_or("header has no shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or("shape is not a tuple")?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_end_matches('L').parse::<usize>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| format!("bad shape {shape}"))
}

/// IEEE binary16 to binary32.
pub(crate) fn half_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let frac = (bits & 0x3ff) as u32;
    let value = match (exp, frac) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: value = frac * 2^-24.
            let magnitude = frac as f32 * f32::from_bits(0x3380_0000);
            return if sign != 0 { -magnitude } else { magnitude };
        }
        (0x1f, 0) => sign | 0x7f80_0000,
        (0x1f, _) => sign | 0x7fc0_0000,
        _ => sign | ((exp + 112) << 23) | (frac << 13),
    };
    f32::from_bits(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_shape_and_values() {
        let array = NpyArray::f32(vec![2, 3], vec![0.5, -1.0, 2.0, 3.25, 1e-8, 7.0]);
        let parsed = NpyArray::from_bytes(&array.to_bytes()).unwrap();
        assert_eq!(parsed, array);
        let ints = NpyArray::i64(vec![4], vec![-1, 0, 5, i64::MAX]);
        assert_eq!(NpyArray::from_bytes(&ints.to_bytes()).unwrap(), ints);
    }

    #[test]
    fn header_is_padded_to_64_bytes() {
        let bytes = NpyArray::f32(vec![1], vec![1.0]).to_bytes();
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
    }

    #[test]
    fn truncated_and_foreign_bytes_are_errors() {
        let bytes = NpyArray::f32(vec![3], vec![1.0, 2.0, 3.0]).to_bytes();
        for cut in 0..bytes.len() {
            assert!(NpyArray::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(NpyArray::from_bytes(b"PK\x03\x04 not numpy").is_err());
    }

    #[test]
    fn a_dtype_of_zero_bytes_is_an_error() {
        // Found by the `npy` fuzz target: `<f0` panicked on chunks of size 0.
        let mut bytes = NpyArray::f32(vec![2], vec![1.0, 2.0]).to_bytes();
        let at = bytes.windows(3).position(|w| w == b"<f4").unwrap();
        bytes[at + 2] = b'0';
        let err = NpyArray::from_bytes(&bytes).unwrap_err();
        assert!(err.contains("unsupported dtype <f0"), "{err}");
        // And a dtype starting with a character of two bytes panicked when split after one.
        bytes.splice(at..at + 1, "\u{67f}".bytes());
        let err = NpyArray::from_bytes(&bytes).unwrap_err();
        assert!(err.contains("unsupported dtype"), "{err}");
    }

    #[test]
    fn fortran_order_is_reordered() {
        // np.asfortranarray([[1, 2, 3], [4, 5, 6]]) stores 1 4 2 5 3 6.
        assert_eq!(
            fortran_to_c(&[1, 4, 2, 5, 3, 6], &[2, 3]),
            vec![1, 2, 3, 4, 5, 6]
        );
    }

    #[test]
    fn half_precision_decodes() {
        assert_eq!(half_to_f32(0x3c00), 1.0);
        assert_eq!(half_to_f32(0xc000), -2.0);
        assert_eq!(half_to_f32(0x0001), 2f32.powi(-24));
        assert!(half_to_f32(0x7c00).is_infinite());
    }
}
