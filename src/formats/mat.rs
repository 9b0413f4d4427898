//! A reader for MATLAB 5 `.mat` files (what `save` writes by default before 7.3, and what
//! scipy's `savemat` writes): numeric, character, cell and struct arrays, compressed or not.
//! Enough for the split files that re-id datasets ship (GRID's partitions, CUHK03's
//! new-protocol configs, SVHN's pixel arrays); sparse and object arrays are refused.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// A MATLAB array. Elements are in MATLAB's column-major order.
#[derive(Debug, Clone, PartialEq)]
pub enum MatValue {
    /// A `uint8` array stored as bytes (pixel arrays: widening them would take 8× the memory).
    Bytes {
        /// Extents.
        dims: Vec<usize>,
        /// Values.
        data: Vec<u8>,
    },
    /// Any other numeric or logical class, widened to f64.
    Numeric {
        /// Extents.
        dims: Vec<usize>,
        /// Values.
        data: Vec<f64>,
    },
    /// A character array, one string per row.
    Char {
        /// Extents.
        dims: Vec<usize>,
        /// The rows.
        rows: Vec<String>,
    },
    /// A cell array.
    Cell {
        /// Extents.
        dims: Vec<usize>,
        /// The cells.
        items: Vec<MatValue>,
    },
    /// A struct array: for each element, one value per field.
    Struct {
        /// Extents.
        dims: Vec<usize>,
        /// Field names, in file order.
        fields: Vec<String>,
        /// Per element, the values of its fields in `fields` order.
        items: Vec<Vec<MatValue>>,
    },
}

impl MatValue {
    /// The values of a numeric array (`uint8` arrays widened).
    pub fn numbers(&self) -> Option<Cow<'_, [f64]>> {
        match self {
            MatValue::Numeric { data, .. } => Some(Cow::Borrowed(data)),
            MatValue::Bytes { data, .. } => Some(data.iter().map(|&b| f64::from(b)).collect()),
            _ => None,
        }
    }

    /// The cells of a cell array.
    pub fn cells(&self) -> Option<&[MatValue]> {
        match self {
            MatValue::Cell { items, .. } => Some(items),
            _ => None,
        }
    }

    /// The string of a one-row character array.
    pub fn text(&self) -> Option<&str> {
        match self {
            MatValue::Char { rows, .. } if rows.len() == 1 => Some(&rows[0]),
            _ => None,
        }
    }
}

const MI_INT8: u32 = 1;
const MI_UINT8: u32 = 2;
const MI_INT16: u32 = 3;
const MI_UINT16: u32 = 4;
const MI_INT32: u32 = 5;
const MI_UINT32: u32 = 6;
const MI_SINGLE: u32 = 7;
const MI_DOUBLE: u32 = 9;
const MI_INT64: u32 = 12;
const MI_UINT64: u32 = 13;
const MI_MATRIX: u32 = 14;
const MI_COMPRESSED: u32 = 15;
const MI_UTF8: u32 = 16;

const MX_CELL: u32 = 1;
const MX_STRUCT: u32 = 2;
const MX_CHAR: u32 = 4;
const MX_UINT8: u32 = 9;

/// One data element: its type and payload.
struct Element<'a> {
    kind: u32,
    data: &'a [u8],
}

/// Reads data elements one after the other from a byte slice.
struct Elements<'a> {
    bytes: &'a [u8],
    at: usize,
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

impl<'a> Elements<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    fn next(&mut self) -> std::result::Result<Option<Element<'a>>, String> {
        if self.at + 8 > self.bytes.len() {
            return Ok(None);
        }
        let tag = u32_at(self.bytes, self.at).ok_or("truncated tag")?;
        if tag >> 16 != 0 {
            // Small data element: type and size in the first 4 bytes, data in the next 4.
            let (kind, size) = (tag & 0xffff, (tag >> 16) as usize);
            if size > 4 {
                return Err(format!("small element of {size} bytes"));
            }
            let data = &self.bytes[self.at + 4..self.at + 4 + size];
            self.at += 8;
            return Ok(Some(Element { kind, data }));
        }
        let size = u32_at(self.bytes, self.at + 4).ok_or("truncated tag")? as usize;
        let start = self.at + 8;
        let data = self
            .bytes
            .get(start..start + size)
            .ok_or_else(|| format!("an element of {size} bytes runs past the end"))?;
        // Compressed elements are not padded; others end on an 8-byte boundary.
        self.at = if tag == MI_COMPRESSED {
            start + size
        } else {
            start + size.div_ceil(8) * 8
        };
        Ok(Some(Element { kind: tag, data }))
    }

    /// Bytes not read yet.
    fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.at)
    }

    fn expect(&mut self, what: &str) -> std::result::Result<Element<'a>, String> {
        self.next()?.ok_or_else(|| format!("missing {what}"))
    }
}

fn numbers(e: &Element) -> std::result::Result<Vec<f64>, String> {
    macro_rules! widen {
        ($t:ty) => {
            e.data
                .chunks_exact(std::mem::size_of::<$t>())
                .map(|c| <$t>::from_le_bytes(c.try_into().unwrap()) as f64)
                .collect()
        };
    }
    Ok(match e.kind {
        MI_INT8 => widen!(i8),
        MI_UINT8 | MI_UTF8 => widen!(u8),
        MI_INT16 => widen!(i16),
        MI_UINT16 => widen!(u16),
        MI_INT32 => widen!(i32),
        MI_UINT32 => widen!(u32),
        MI_SINGLE => widen!(f32),
        MI_DOUBLE => widen!(f64),
        MI_INT64 => widen!(i64),
        MI_UINT64 => widen!(u64),
        other => return Err(format!("data type {other} where numbers were expected")),
    })
}

fn as_usize(values: Vec<f64>) -> Vec<usize> {
    values.into_iter().map(|v| v.max(0.0) as usize).collect()
}

/// How deep cells and structs may nest (a corrupt file must not exhaust the stack).
const MAX_DEPTH: usize = 32;

/// Parses a miMATRIX payload into its name and value.
fn matrix(bytes: &[u8], depth: usize) -> std::result::Result<(String, MatValue), String> {
    if depth > MAX_DEPTH {
        return Err(format!("arrays nested more than {MAX_DEPTH} deep"));
    }
    let mut parts = Elements::new(bytes);
    if bytes.is_empty() {
        // An empty cell or field is an empty miMATRIX.
        let empty = MatValue::Numeric {
            dims: vec![0, 0],
            data: vec![],
        };
        return Ok((String::new(), empty));
    }
    let flags = parts.expect("array flags")?;
    let class = u32_at(flags.data, 0).ok_or("short array flags")? & 0xff;
    let dims = as_usize(numbers(&parts.expect("dimensions")?)?);
    let name = String::from_utf8_lossy(parts.expect("array name")?.data).into_owned();
    let count = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(|| format!("dimensions {dims:?} overflow"))?;
    // Every cell or struct field is an element of at least an 8-byte tag: a count the rest of
    // the array cannot hold is corrupt, and nothing is allocated for it.
    let fits = |elements: usize, parts: &Elements| elements <= parts.remaining() / 8;
    let value = match class {
        MX_CELL => {
            if !fits(count, &parts) {
                return Err(format!(
                    "{count} cells cannot fit in {} bytes",
                    parts.remaining()
                ));
            }
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                let e = parts.expect("cell")?;
                items.push(matrix(e.data, depth + 1)?.1);
            }
            MatValue::Cell { dims, items }
        }
        MX_STRUCT => {
            let width = u32_at(parts.expect("field name length")?.data, 0)
                .ok_or("short field name length")? as usize;
            let names = parts.expect("field names")?;
            let fields: Vec<String> = if width == 0 {
                vec![]
            } else {
                names
                    .data
                    .chunks(width)
                    .map(|c| {
                        let end = c.iter().position(|&b| b == 0).unwrap_or(c.len());
                        String::from_utf8_lossy(&c[..end]).into_owned()
                    })
                    .collect()
            };
            // A struct array without fields holds nothing per element; more elements than
            // bytes is no file MATLAB writes.
            let elements = count.checked_mul(fields.len().max(1));
            if !elements.is_some_and(|n| fits(n, &parts)) {
                return Err(format!(
                    "{count} structs of {} fields cannot fit in {} bytes",
                    fields.len(),
                    parts.remaining()
                ));
            }
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                let mut values = Vec::with_capacity(fields.len());
                for _ in &fields {
                    values.push(matrix(parts.expect("struct field")?.data, depth + 1)?.1);
                }
                items.push(values);
            }
            MatValue::Struct {
                dims,
                fields,
                items,
            }
        }
        MX_CHAR => {
            let e = parts.expect("characters")?;
            let chars: Vec<char> = if e.kind == MI_UTF8 {
                String::from_utf8_lossy(e.data).chars().collect()
            } else {
                numbers(&e)?
                    .into_iter()
                    .map(|c| char::from_u32(c as u32).unwrap_or('\u{fffd}'))
                    .collect()
            };
            if chars.len() != count {
                return Err(format!(
                    "{} characters for a {dims:?} character array",
                    chars.len()
                ));
            }
            // An empty array keeps no rows: its first extent alone (0 characters for
            // [10^18 × 0]) would size them. Otherwise rows ≤ characters, which the file holds.
            let rows = match dims.first() {
                Some(&rows) if count > 0 => rows,
                _ => 0,
            };
            let cols = count.checked_div(rows).unwrap_or(0);
            let rows = (0..rows)
                .map(|r| (0..cols).filter_map(|c| chars.get(c * rows + r)).collect())
                .collect();
            MatValue::Char { dims, rows }
        }
        6..=15 => {
            let real = parts.expect("real part")?;
            let value = if class == MX_UINT8 && real.kind == MI_UINT8 {
                MatValue::Bytes {
                    dims,
                    data: real.data.to_vec(),
                }
            } else {
                MatValue::Numeric {
                    dims,
                    data: numbers(&real)?,
                }
            };
            let stored = match &value {
                MatValue::Bytes { data, .. } => data.len(),
                _ => value.numbers().map_or(0, |v| v.len()),
            };
            if stored != count {
                return Err(format!("{stored} values for {count} elements"));
            }
            value
        }
        other => {
            return Err(format!(
                "array class {other} (sparse or object) is not supported"
            ));
        }
    };
    Ok((name, value))
}

/// Reads the variables of a MATLAB 5 file held in memory; the error says what is wrong with it.
pub fn from_bytes(bytes: &[u8]) -> std::result::Result<BTreeMap<String, MatValue>, String> {
    if bytes.len() < 128 {
        return Err("shorter than the 128-byte header".into());
    }
    if bytes.starts_with(b"MATLAB 7.3") {
        return Err(
            "a MATLAB 7.3 (HDF5) file; save it with -v7 or read it with an HDF5 tool".into(),
        );
    }
    match &bytes[126..128] {
        b"IM" => {}
        b"MI" => return Err("big-endian MAT files are not supported".into()),
        _ => return Err("not a MATLAB 5 MAT file".into()),
    }
    let mut variables = BTreeMap::new();
    let mut elements = Elements::new(&bytes[128..]);
    while let Some(e) = elements.next()? {
        let (name, value) = match e.kind {
            MI_MATRIX => matrix(e.data, 0)?,
            MI_COMPRESSED => {
                // Deflate expands at most 1032:1: more is a corrupt stream, not a file.
                let limit = (e.data.len() as u64).saturating_mul(1032) + 1024;
                let mut inflated = Vec::new();
                flate2::read::ZlibDecoder::new(e.data)
                    .take(limit + 1)
                    .read_to_end(&mut inflated)
                    .map_err(|err| format!("compressed variable: {err}"))?;
                if inflated.len() as u64 > limit {
                    return Err(format!(
                        "a compressed variable of {} bytes inflates past {limit}",
                        e.data.len()
                    ));
                }
                let mut inner = Elements::new(&inflated);
                match inner.next()? {
                    Some(m) if m.kind == MI_MATRIX => matrix(m.data, 0)?,
                    _ => return Err("a compressed element holds no array".into()),
                }
            }
            _ => continue,
        };
        variables.insert(name, value);
    }
    Ok(variables)
}

/// Reads the variables of a MATLAB 5 `.mat` file.
pub fn read_mat(path: &Path) -> Result<BTreeMap<String, MatValue>> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    from_bytes(&bytes)
        .map_err(|reason| Error::InvalidInput(format!("{}: {reason}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_files_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.mat");
        for bytes in [&b"short"[..], &[0u8; 200][..]] {
            std::fs::write(&path, bytes).unwrap();
            assert!(read_mat(&path).is_err());
        }
        // A header followed by an element claiming more bytes than there are.
        let mut bytes = vec![b' '; 128];
        bytes[126..128].copy_from_slice(b"IM");
        bytes.extend_from_slice(&MI_MATRIX.to_le_bytes());
        bytes.extend_from_slice(&1000u32.to_le_bytes());
        bytes.extend_from_slice(&[0; 16]);
        std::fs::write(&path, &bytes).unwrap();
        let err = read_mat(&path).unwrap_err().to_string();
        assert!(err.contains("past the end"), "{err}");
    }

    /// A file holding one miMATRIX of `class` with `dims`, the name "x" and `rest` after them.
    fn mat_file(class: u32, dims: &[u32], rest: &[u8]) -> Vec<u8> {
        let element = |kind: u32, data: &[u8]| {
            let mut out = kind.to_le_bytes().to_vec();
            out.extend((data.len() as u32).to_le_bytes());
            out.extend(data);
            out.resize(out.len().div_ceil(8) * 8, 0);
            out
        };
        let mut payload = element(MI_UINT32, &[class as u8, 0, 0, 0, 0, 0, 0, 0]);
        let dims: Vec<u8> = dims.iter().flat_map(|d| d.to_le_bytes()).collect();
        payload.extend(element(MI_UINT32, &dims));
        payload.extend(element(MI_INT8, b"x"));
        payload.extend(rest);
        let mut bytes = vec![b' '; 128];
        bytes[126..128].copy_from_slice(b"IM");
        bytes.extend(element(MI_MATRIX, &payload));
        bytes
    }

    /// Sizes a file claims but cannot hold are errors, found before anything is allocated for
    /// them (these files aborted the process, panicked or took gigabytes).
    #[test]
    fn claimed_sizes_beyond_the_file_are_errors() {
        let big = u32::MAX;
        let cases: [(&str, Vec<u8>, &str); 6] = [
            (
                "huge cell",
                mat_file(MX_CELL, &[big, big], &[]),
                "cannot fit",
            ),
            (
                "overflowing dims",
                mat_file(MX_CELL, &[big, big, big], &[]),
                "overflow",
            ),
            (
                "fieldless structs",
                mat_file(
                    MX_STRUCT,
                    &[big, 2],
                    &[4, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
                ),
                "cannot fit",
            ),
            (
                "chars for no dims",
                mat_file(MX_CHAR, &[], &[16, 0, 2, 0, b'a', b'b', 0, 0]),
                "characters",
            ),
            (
                "chars for a huge array",
                mat_file(MX_CHAR, &[big, 1], &[16, 0, 2, 0, b'a', b'b', 0, 0]),
                "characters",
            ),
            (
                "numbers for a huge array",
                mat_file(6, &[big, 3], &[9, 0, 0, 0, 0, 0, 0, 0]),
                "values for",
            ),
        ];
        for (name, bytes, expected) in cases {
            let err = from_bytes(&bytes).map(|_| ()).unwrap_err();
            assert!(err.contains(expected), "{name}: {err}");
        }
    }

    #[test]
    fn an_empty_character_array_allocates_no_rows() {
        // [2^32 − 1 × 0] characters: found by the `mat` fuzz target, which took 2 GB and more
        // for 440 bytes before rows were bounded by the characters held.
        let bytes = mat_file(MX_CHAR, &[u32::MAX, 0], &[16, 0, 0, 0, 0, 0, 0, 0]);
        let variables = from_bytes(&bytes).unwrap();
        let (_, value) = variables.iter().next().unwrap();
        assert!(matches!(value, MatValue::Char { rows, .. } if rows.is_empty()));
    }
}
