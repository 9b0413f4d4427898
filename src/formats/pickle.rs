//! A reader for Python pickles of plain data: what CIFAR's "python version" archives hold
//! (Python 2 `cPickle` dicts of lists, strings and NumPy arrays) and what Python 3 writes for
//! the same objects with any protocol. Nothing is executed: the few constructors such data
//! needs (NumPy arrays and dtypes, `bytes` via `_codecs.encode`, `bytearray`, `OrderedDict`,
//! `set`) are recognised by name; any other object is kept as an inert [`PyValue::Object`].

use std::collections::HashMap;

/// A value read from a pickle.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer (beyond 64 bits: an error).
    Int(i64),
    /// A float.
    Float(f64),
    /// A text string.
    Str(String),
    /// A byte string (also Python 2's `str`, which Python 3 reads as latin-1 text or bytes).
    Bytes(Vec<u8>),
    /// A list, set or frozenset.
    List(Vec<PyValue>),
    /// A tuple.
    Tuple(Vec<PyValue>),
    /// A dict, in insertion order.
    Dict(Vec<(PyValue, PyValue)>),
    /// A NumPy array.
    Array(NdArray),
    /// A NumPy dtype, by its type string (`u1`, `<i8`, …).
    Dtype(String),
    /// A reference to a class or function.
    Global(String, String),
    /// Any other object: its constructor, arguments and state, uninterpreted.
    Object {
        /// What was called to make it.
        constructor: Box<PyValue>,
        /// The arguments of the call.
        args: Box<PyValue>,
        /// What `BUILD` gave it, if anything.
        state: Option<Box<PyValue>>,
    },
}

/// A NumPy array: raw little- or big-endian elements as NumPy stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct NdArray {
    /// NumPy type string with byte order: `|u1`, `<i8`, `<f4`, …
    pub dtype: String,
    /// Extents.
    pub shape: Vec<usize>,
    /// True when `data` is in column-major order.
    pub fortran_order: bool,
    /// The elements' bytes.
    pub data: Vec<u8>,
}

impl PyValue {
    /// A text value: `Str`, or latin-1 decoded `Bytes` (Python 2 strings).
    pub fn text(&self) -> Option<String> {
        match self {
            PyValue::Str(s) => Some(s.clone()),
            PyValue::Bytes(b) => Some(b.iter().map(|&c| c as char).collect()),
            _ => None,
        }
    }

    /// The value under text key `key` of a dict.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(items) => items
                .iter()
                .find(|(k, _)| k.text().as_deref() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Takes the value under text key `key` out of a dict.
    pub fn remove(&mut self, key: &str) -> Option<PyValue> {
        match self {
            PyValue::Dict(items) => {
                let at = items
                    .iter()
                    .position(|(k, _)| k.text().as_deref() == Some(key))?;
                Some(items.remove(at).1)
            }
            _ => None,
        }
    }

    /// The items of a list or tuple.
    pub fn items(&self) -> Option<&[PyValue]> {
        match self {
            PyValue::List(v) | PyValue::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// An integer.
    pub fn int(&self) -> Option<i64> {
        match self {
            PyValue::Int(i) => Some(*i),
            PyValue::Bool(b) => Some(*b as i64),
            _ => None,
        }
    }
}

/// How deep lists, dicts and tuples may nest before the file is refused as corrupt.
const MAX_STACK: usize = 100_000;

/// Bytes that copies of stack and memo values (`DUP`, `PUT`, `GET`) may add per byte of the
/// pickle, on top of `COPY_ALLOWANCE`. Python shares such objects; this reader copies them, so
/// without a bound a few bytes of `DUP`s double a value again and again (a 105-byte file took
/// over 2 GB before this bound; found by the `pickle` fuzz target).
const COPY_FACTOR: usize = 16;
/// Bytes of copies any pickle may make (the memo entries of a CIFAR batch take a few KB).
const COPY_ALLOWANCE: usize = 16 << 20;

/// Reads one pickled value from `bytes`.
pub fn unpickle(bytes: &[u8]) -> Result<PyValue, String> {
    Machine {
        bytes,
        at: 0,
        stack: Vec::new(),
        marks: Vec::new(),
        memo: HashMap::new(),
        copy_budget: bytes.len().saturating_mul(COPY_FACTOR) + COPY_ALLOWANCE,
    }
    .run()
}

/// A copy of `value`, charged to `budget` first (the footprint walk only reads what exists).
fn charged_copy(budget: &mut usize, value: &PyValue) -> Result<PyValue, String> {
    *budget = budget.checked_sub(footprint(value)).ok_or(
        "shared objects copied past the bound the pickle's size allows (corrupt or hostile)",
    )?;
    Ok(value.clone())
}

/// Roughly the memory a value takes: a node per value plus its payload bytes.
fn footprint(value: &PyValue) -> usize {
    let node = std::mem::size_of::<PyValue>();
    node + match value {
        PyValue::Str(s) | PyValue::Dtype(s) => s.len(),
        PyValue::Bytes(b) => b.len(),
        PyValue::List(items) | PyValue::Tuple(items) => items.iter().map(footprint).sum(),
        PyValue::Dict(pairs) => pairs.iter().map(|(k, v)| footprint(k) + footprint(v)).sum(),
        PyValue::Array(a) => a.data.len() + a.dtype.len() + 8 * a.shape.len(),
        PyValue::Global(module, name) => module.len() + name.len(),
        PyValue::Object {
            constructor,
            args,
            state,
        } => footprint(constructor) + footprint(args) + state.as_deref().map_or(0, footprint),
        PyValue::None | PyValue::Bool(_) | PyValue::Int(_) | PyValue::Float(_) => 0,
    }
}

struct Machine<'a> {
    bytes: &'a [u8],
    at: usize,
    stack: Vec<PyValue>,
    marks: Vec<usize>,
    memo: HashMap<u64, PyValue>,
    /// Bytes that copies of values may still take.
    copy_budget: usize,
}

impl<'a> Machine<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn uint(&mut self, n: usize) -> Result<u64, String> {
        let b = self.take(n)?;
        Ok(b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64))
    }

    fn sized(&mut self, n: usize) -> Result<&'a [u8], String> {
        let len = self.uint(n)?;
        self.take(usize::try_from(len).map_err(|_| "length beyond memory")?)
    }

    fn line_bytes(&mut self) -> Result<&'a [u8], String> {
        let rest = &self.bytes[self.at..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a text argument without its newline")?;
        self.at += end + 1;
        Ok(&rest[..end])
    }

    fn line(&mut self) -> Result<String, String> {
        Ok(String::from_utf8_lossy(self.line_bytes()?).into_owned())
    }

    fn push(&mut self, v: PyValue) -> Result<(), String> {
        if self.stack.len() >= MAX_STACK {
            return Err("stack overflow (corrupt pickle)".into());
        }
        self.stack.push(v);
        Ok(())
    }

    fn pop(&mut self) -> Result<PyValue, String> {
        if self.marks.last().is_some_and(|&m| m >= self.stack.len()) {
            return Err("pop past a mark".into());
        }
        self.stack
            .pop()
            .ok_or_else(|| "pop from an empty stack".into())
    }

    fn top(&mut self) -> Result<&mut PyValue, String> {
        self.stack.last_mut().ok_or_else(|| "empty stack".into())
    }

    fn pop_mark(&mut self) -> Result<Vec<PyValue>, String> {
        let mark = self.marks.pop().ok_or("no mark")?;
        Ok(self.stack.split_off(mark))
    }

    fn memo_get(&mut self, key: u64) -> Result<PyValue, String> {
        let value = self
            .memo
            .get(&key)
            .ok_or_else(|| format!("memo key {key} was never stored"))?;
        charged_copy(&mut self.copy_budget, value)
    }

    fn memo_put(&mut self, key: u64) -> Result<(), String> {
        let top = self.stack.last().ok_or("memoize with an empty stack")?;
        let copy = charged_copy(&mut self.copy_budget, top)?;
        self.memo.insert(key, copy);
        Ok(())
    }

    fn run(mut self) -> Result<PyValue, String> {
        loop {
            let op = self.take(1)?[0];
            match op {
                0x80 => {
                    self.take(1)?;
                }
                0x95 => {
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.marks.push(self.stack.len()),
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let top = self.stack.last().ok_or("DUP of an empty stack")?;
                    let copy = charged_copy(&mut self.copy_budget, top)?;
                    self.push(copy)?;
                }
                b'N' => self.push(PyValue::None)?,
                0x88 => self.push(PyValue::Bool(true))?,
                0x89 => self.push(PyValue::Bool(false))?,
                b'I' => {
                    let text = self.line()?;
                    let v = match text.as_str() {
                        "00" => PyValue::Bool(false),
                        "01" => PyValue::Bool(true),
                        t => PyValue::Int(t.parse().map_err(|_| format!("INT {t:?}"))?),
                    };
                    self.push(v)?;
                }
                b'J' => {
                    let v = self.uint(4)? as u32 as i32;
                    self.push(PyValue::Int(v as i64))?;
                }
                b'K' => {
                    let v = self.uint(1)?;
                    self.push(PyValue::Int(v as i64))?;
                }
                b'M' => {
                    let v = self.uint(2)?;
                    self.push(PyValue::Int(v as i64))?;
                }
                b'L' => {
                    let text = self.line()?;
                    let t = text.trim_end_matches('L');
                    self.push(PyValue::Int(t.parse().map_err(|_| format!("LONG {t:?}"))?))?;
                }
                0x8a | 0x8b => {
                    let bytes = self.sized(if op == 0x8a { 1 } else { 4 })?;
                    self.push(PyValue::Int(little_signed(bytes)?))?;
                }
                b'F' => {
                    let text = self.line()?;
                    self.push(PyValue::Float(
                        text.parse().map_err(|_| format!("FLOAT {text:?}"))?,
                    ))?;
                }
                b'G' => {
                    let b = self.take(8)?;
                    self.push(PyValue::Float(f64::from_be_bytes(b.try_into().unwrap())))?;
                }
                b'S' => {
                    let text = self.line()?;
                    self.push(PyValue::Bytes(unquote(&text)?))?;
                }
                b'T' | b'U' | b'B' | b'C' | 0x8e | 0x96 => {
                    let width = match op {
                        b'T' | b'B' => 4,
                        b'U' | b'C' => 1,
                        _ => 8,
                    };
                    let data = self.sized(width)?.to_vec();
                    self.push(PyValue::Bytes(data))?;
                }
                b'V' => {
                    // raw-unicode-escape: latin-1 bytes with \\u escapes for the rest.
                    let text: String = self.line_bytes()?.iter().map(|&b| b as char).collect();
                    self.push(PyValue::Str(raw_unicode_unescape(&text)?))?;
                }
                b'X' | 0x8c | 0x8d => {
                    let width = match op {
                        b'X' => 4,
                        0x8c => 1,
                        _ => 8,
                    };
                    let data = self.sized(width)?;
                    let text = std::str::from_utf8(data).map_err(|_| "text that is not UTF-8")?;
                    self.push(PyValue::Str(text.to_string()))?;
                }
                b']' => self.push(PyValue::List(vec![]))?,
                b')' => self.push(PyValue::Tuple(vec![]))?,
                b'}' => self.push(PyValue::Dict(vec![]))?,
                0x8f => self.push(PyValue::List(vec![]))?,
                b'l' | 0x91 => {
                    let items = self.pop_mark()?;
                    self.push(PyValue::List(items))?;
                }
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(PyValue::Tuple(items))?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    if self.stack.len() < n + self.marks.last().copied().unwrap_or(0) {
                        return Err("tuple of more items than the stack holds".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    self.push(PyValue::Tuple(items))?;
                }
                b'd' => {
                    let items = self.pop_mark()?;
                    self.push(PyValue::Dict(pairs(items)?))?;
                }
                b'a' => {
                    let v = self.pop()?;
                    self.append(vec![v])?;
                }
                b'e' | 0x90 => {
                    let items = self.pop_mark()?;
                    self.append(items)?;
                }
                b's' => {
                    let v = self.pop()?;
                    let k = self.pop()?;
                    self.set_items(vec![(k, v)])?;
                }
                b'u' => {
                    let items = self.pop_mark()?;
                    self.set_items(pairs(items)?)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(PyValue::Global(module, name))?;
                }
                0x93 => {
                    let name = self.pop()?.text().ok_or("STACK_GLOBAL name")?;
                    let module = self.pop()?.text().ok_or("STACK_GLOBAL module")?;
                    self.push(PyValue::Global(module, name))?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let func = self.pop()?;
                    self.push(call(func, args)?)?;
                }
                0x81 => {
                    let args = self.pop()?;
                    let class = self.pop()?;
                    self.push(call(class, args)?)?;
                }
                0x92 => {
                    let _kwargs = self.pop()?;
                    let args = self.pop()?;
                    let class = self.pop()?;
                    self.push(call(class, args)?)?;
                }
                b'b' => {
                    let state = self.pop()?;
                    let target = self.top()?;
                    build(target, state)?;
                }
                b'p' => {
                    let key = self.line()?.parse().map_err(|_| "PUT key")?;
                    self.memo_put(key)?;
                }
                b'q' => {
                    let key = self.uint(1)?;
                    self.memo_put(key)?;
                }
                b'r' => {
                    let key = self.uint(4)?;
                    self.memo_put(key)?;
                }
                0x94 => {
                    let key = self.memo.len() as u64;
                    self.memo_put(key)?;
                }
                b'g' => {
                    let key = self.line()?.parse().map_err(|_| "GET key")?;
                    let v = self.memo_get(key)?;
                    self.push(v)?;
                }
                b'h' => {
                    let key = self.uint(1)?;
                    let v = self.memo_get(key)?;
                    self.push(v)?;
                }
                b'j' => {
                    let key = self.uint(4)?;
                    let v = self.memo_get(key)?;
                    self.push(v)?;
                }
                0x98 => {}
                other => {
                    return Err(format!(
                        "opcode 0x{other:02x} at byte {} is not supported \
                         (persistent ids, extensions and out-of-band buffers are not data)",
                        self.at - 1
                    ));
                }
            }
        }
    }

    fn append(&mut self, items: Vec<PyValue>) -> Result<(), String> {
        match self.top()? {
            PyValue::List(list) => {
                list.extend(items);
                Ok(())
            }
            _ => Err("append to something other than a list".into()),
        }
    }

    fn set_items(&mut self, items: Vec<(PyValue, PyValue)>) -> Result<(), String> {
        match self.top()? {
            PyValue::Dict(dict) => {
                for (k, v) in items {
                    match dict.iter_mut().find(|(old, _)| *old == k) {
                        Some(slot) => slot.1 = v,
                        None => dict.push((k, v)),
                    }
                }
                Ok(())
            }
            _ => Err("set items on something other than a dict".into()),
        }
    }
}

fn pairs(items: Vec<PyValue>) -> Result<Vec<(PyValue, PyValue)>, String> {
    if !items.len().is_multiple_of(2) {
        return Err("a dict with a key but no value".into());
    }
    let mut it = items.into_iter();
    let mut out = Vec::new();
    while let (Some(k), Some(v)) = (it.next(), it.next()) {
        out.push((k, v));
    }
    Ok(out)
}

fn little_signed(bytes: &[u8]) -> Result<i64, String> {
    if bytes.len() > 8 {
        return Err("an integer wider than 64 bits".into());
    }
    if bytes.is_empty() {
        return Ok(0);
    }
    let mut buf = if bytes[bytes.len() - 1] & 0x80 != 0 {
        [0xff; 8]
    } else {
        [0; 8]
    };
    buf[..bytes.len()].copy_from_slice(bytes);
    Ok(i64::from_le_bytes(buf))
}

/// The bytes of a Python 2 `repr` string literal (`'abc'`, `"a\x00"`).
fn unquote(text: &str) -> Result<Vec<u8>, String> {
    let inner = text
        .strip_prefix('\'')
        .and_then(|t| t.strip_suffix('\''))
        .or_else(|| text.strip_prefix('"').and_then(|t| t.strip_suffix('"')))
        .ok_or("STRING argument is not quoted")?;
    let mut out = Vec::new();
    let mut chars = inner.bytes();
    while let Some(c) = chars.next() {
        if c != b'\\' {
            out.push(c);
            continue;
        }
        match chars.next().ok_or("a trailing backslash")? {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'x' => {
                let hex: Vec<u8> = chars.by_ref().take(2).collect();
                let hex = std::str::from_utf8(&hex).map_err(|_| "bad \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad \\x escape")?);
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Decodes Python's `raw-unicode-escape`: `\\uXXXX` and `\\UXXXXXXXX` escapes, all else as is.
fn raw_unicode_unescape(text: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let width = match after.chars().next() {
            Some('u') => 4,
            Some('U') => 8,
            _ => {
                out.push('\\');
                rest = after;
                continue;
            }
        };
        let hex = after.get(1..1 + width).ok_or("a short \\u escape")?;
        let code = u32::from_str_radix(hex, 16).map_err(|_| "a bad \\u escape")?;
        out.push(char::from_u32(code).ok_or("an escape that is not a character")?);
        rest = &after[1 + width..];
    }
    out.push_str(rest);
    Ok(out)
}

fn is_global(v: &PyValue, modules: &[&str], name: &str) -> bool {
    matches!(v, PyValue::Global(m, n) if n == name && modules.contains(&m.as_str()))
}

const NUMPY_MULTIARRAY: [&str; 2] = ["numpy.core.multiarray", "numpy._core.multiarray"];
const NUMPY_NUMERIC: [&str; 2] = ["numpy.core.numeric", "numpy._core.numeric"];
const BUILTINS: [&str; 2] = ["builtins", "__builtin__"];

/// Calls `func(*args)` for the constructors plain data needs; anything else stays inert.
fn call(func: PyValue, args: PyValue) -> Result<PyValue, String> {
    let a = args.items().unwrap_or(&[]);
    if is_global(&func, &["_codecs"], "encode") {
        // Python 3 pickles `bytes` for protocols < 3 as _codecs.encode(latin-1 text).
        let text = a.first().and_then(PyValue::text).ok_or("_codecs.encode")?;
        return text
            .chars()
            .map(|c| u8::try_from(c as u32).map_err(|_| "non-latin-1 bytes".to_string()))
            .collect::<Result<Vec<u8>, String>>()
            .map(PyValue::Bytes);
    }
    if is_global(&func, &BUILTINS, "bytearray") || is_global(&func, &BUILTINS, "bytes") {
        return match a.first() {
            Some(PyValue::Str(_)) => call(PyValue::Global("_codecs".into(), "encode".into()), args),
            Some(b @ PyValue::Bytes(_)) => Ok(b.clone()),
            _ => Ok(PyValue::Bytes(vec![])),
        };
    }
    if is_global(&func, &BUILTINS, "set") || is_global(&func, &BUILTINS, "frozenset") {
        return Ok(PyValue::List(
            a.first().and_then(PyValue::items).unwrap_or(&[]).to_vec(),
        ));
    }
    if is_global(&func, &["collections"], "OrderedDict") {
        return Ok(PyValue::Dict(vec![]));
    }
    if is_global(&func, &NUMPY_MULTIARRAY, "_reconstruct") {
        return Ok(PyValue::Array(NdArray {
            dtype: String::new(),
            shape: vec![],
            fortran_order: false,
            data: vec![],
        }));
    }
    if is_global(&func, &["numpy"], "dtype") {
        let kind = a.first().and_then(PyValue::text).ok_or("numpy.dtype")?;
        return Ok(PyValue::Dtype(kind));
    }
    if is_global(&func, &NUMPY_NUMERIC, "_frombuffer") {
        // Protocol 5: _frombuffer(buffer, dtype, shape, order).
        let (Some(PyValue::Bytes(data)), Some(PyValue::Dtype(dtype)), Some(shape), Some(order)) =
            (a.first(), a.get(1), a.get(2), a.get(3))
        else {
            return Err("numpy _frombuffer with unexpected arguments".into());
        };
        return Ok(PyValue::Array(NdArray {
            dtype: dtype.clone(),
            shape: dims(shape)?,
            fortran_order: order.text().as_deref() == Some("F"),
            data: data.clone(),
        }));
    }
    Ok(PyValue::Object {
        constructor: Box::new(func),
        args: Box::new(args),
        state: None,
    })
}

fn dims(v: &PyValue) -> Result<Vec<usize>, String> {
    v.items()
        .ok_or("array shape is not a tuple")?
        .iter()
        .map(|d| {
            d.int()
                .and_then(|d| usize::try_from(d).ok())
                .ok_or_else(|| "bad array extent".to_string())
        })
        .collect()
}

/// Applies `BUILD` (setstate) for arrays and dtypes; other objects keep the state as is.
fn build(target: &mut PyValue, state: PyValue) -> Result<(), String> {
    match target {
        PyValue::Array(array) => {
            // (version, shape, dtype, is_fortran, raw data)
            let items = match state {
                PyValue::Tuple(items) | PyValue::List(items) => items,
                _ => return Err("array state is not a tuple".into()),
            };
            let Ok([_, shape, dtype, fortran, raw]) = <[PyValue; 5]>::try_from(items) else {
                return Err("array state of the wrong length".into());
            };
            let PyValue::Dtype(kind) = dtype else {
                return Err("array state without a dtype".into());
            };
            let PyValue::Bytes(data) = raw else {
                return Err("an array of Python objects is not data".into());
            };
            array.shape = dims(&shape)?;
            array.dtype = if kind.starts_with(['<', '>', '|', '=']) {
                kind
            } else {
                format!("|{kind}")
            };
            array.fortran_order = fortran.int() == Some(1);
            // Moved, not copied: CIFAR's training array is 150 MB.
            array.data = data;
            Ok(())
        }
        PyValue::Dtype(kind) => {
            // (version, byte order, …): record the byte order with the type.
            if let Some(order) = state.items().and_then(|s| s.get(1)).and_then(PyValue::text) {
                let base = kind.trim_start_matches(['<', '>', '|', '=']).to_string();
                *kind = format!("{order}{base}");
            }
            Ok(())
        }
        PyValue::Object { state: slot, .. } => {
            *slot = Some(Box::new(state));
            Ok(())
        }
        PyValue::Dict(items) => match state {
            PyValue::Dict(more) => {
                items.extend(more);
                Ok(())
            }
            _ => Err("build a dict from something other than a dict".into()),
        },
        _ => Err("BUILD on a value that takes no state".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corrupt_pickles_are_errors_not_panics() {
        for bytes in [
            &b""[..],
            b"\x80\x02",
            b"\x80\x02}q\x00(U\x04data",
            b"\x80\x02h\x05.",
            b"\x80\x02K\x01K\x02\x86\x86\x86.",
            b"\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09.",
            b"K\x01K\x02a.",
            b"\x80\x02Q.",
        ] {
            assert!(unpickle(bytes).is_err(), "{bytes:?}");
        }
    }

    #[test]
    fn copies_of_shared_objects_are_bounded_by_the_file() {
        // An empty list, then 60 × (DUP, APPEND): each step appends the list to a copy of
        // itself, doubling it (2^60 nodes from 123 bytes; the `pickle` fuzz target found this).
        let mut bytes = b"]".to_vec();
        bytes.extend(b"2a".repeat(60));
        bytes.push(b'.');
        let err = unpickle(&bytes).unwrap_err();
        assert!(err.contains("shared objects copied past"), "{err}");
        // A few copies are fine: [[], [[]]] from DUP and APPEND.
        let small = unpickle(b"]2a2a.").unwrap();
        assert_eq!(small.items().map(<[_]>::len), Some(2));
    }
}
