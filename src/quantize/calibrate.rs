//! Activation ranges of the tensors static quantization rewrites, found by running the graph
//! (with those tensors as extra outputs) on calibration crops in ONNX Runtime.

use std::collections::HashMap;

use onnx_protobuf::{Message, ModelProto};

use super::QuantizeOptions;
use crate::data::Sample;
use crate::error::{Error, Result};
use crate::export::qdq;
use crate::extractor::engine::OrtPool;
use crate::preprocess::{ImageView, PixelFormat, Preprocessing, decode};

/// Crops per calibration run: the extra outputs of one run hold every quantized activation
/// of the batch.
const BATCH: usize = 4;
/// Histogram bins of the percentile method.
const BINS: usize = 4096;

/// How a tensor's range is found from the values it took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Method {
    /// The smallest and largest value seen.
    MinMax,
    /// The values between the `(100 − p) / 2` and `(100 + p) / 2` percentiles (`p` of the
    /// values kept, outliers clipped), `p` in (0, 100].
    Percentile(f64),
}

impl Method {
    /// Parses `minmax` or `percentile` (99.99 % kept) or `percentile:P`.
    pub fn parse(name: &str) -> Result<Self> {
        let method = match name {
            "minmax" => Method::MinMax,
            "percentile" => Method::Percentile(99.99),
            other => match other.strip_prefix("percentile:").map(str::parse::<f64>) {
                Some(Ok(p)) => Method::Percentile(p),
                _ => {
                    return Err(Error::InvalidInput(format!(
                        "calibration method `{other}`: minmax, percentile or percentile:P"
                    )));
                }
            },
        };
        method.validate()?;
        Ok(method)
    }

    /// Refuses a percentile outside (0, 100].
    pub fn validate(&self) -> Result<()> {
        match *self {
            Method::Percentile(p) if !(p > 0.0 && p <= 100.0) => Err(Error::InvalidInput(format!(
                "percentile {p}: between 0 (excluded) and 100"
            ))),
            _ => Ok(()),
        }
    }

    /// Its name, as [`Method::parse`] reads it.
    pub fn name(&self) -> String {
        match self {
            Method::MinMax => "minmax".into(),
            Method::Percentile(p) => format!("percentile:{p}"),
        }
    }
}

/// The range of every value [`qdq::quantized_values`] names in `proto`, over `images`.
pub(super) fn ranges(
    proto: &ModelProto,
    preprocessing: &Preprocessing,
    images: &[Sample],
    options: &QuantizeOptions,
) -> Result<HashMap<String, (f32, f32)>> {
    let names = qdq::quantized_values(proto);
    let bytes = qdq::with_outputs(proto, &names)
        .write_to_bytes()
        .map_err(|e| Error::InvalidInput(format!("cannot serialize the ONNX model: {e}")))?;
    let (pool, _) = OrtPool::new(&bytes, options.ort_library.as_deref(), 0, 1, None)?;
    let inside: Vec<String> = names
        .iter()
        .filter(|n| !qdq::is_graph_input(proto, n))
        .cloned()
        .collect();
    // Every run's values of each name, handed to `visit` (graph inputs: the batch itself).
    let each_batch = |visit: &mut dyn FnMut(&str, &[f32])| -> Result<()> {
        for chunk in images.chunks(BATCH) {
            let (data, shape) = prepared(chunk, preprocessing)?;
            let outputs = pool.run_outputs(data.clone(), shape, &inside)?;
            for (name, values) in inside.iter().zip(&outputs) {
                visit(name, values);
            }
            for name in names.iter().filter(|n| qdq::is_graph_input(proto, n)) {
                visit(name, &data);
            }
        }
        Ok(())
    };
    let mut extremes: HashMap<String, (f32, f32)> = HashMap::new();
    each_batch(&mut |name, values| {
        let range = extremes
            .entry(name.to_string())
            .or_insert((f32::INFINITY, f32::NEG_INFINITY));
        for &v in values {
            range.0 = range.0.min(v);
            range.1 = range.1.max(v);
        }
    })?;
    let Method::Percentile(p) = options.method else {
        return Ok(extremes);
    };
    let mut histograms: HashMap<String, Vec<u64>> = HashMap::new();
    each_batch(&mut |name, values| {
        let (lo, hi) = extremes[name];
        let bins = histograms
            .entry(name.to_string())
            .or_insert_with(|| vec![0; BINS]);
        let width = ((hi - lo) as f64 / BINS as f64).max(f64::MIN_POSITIVE);
        for &v in values {
            let bin = ((v - lo) as f64 / width) as usize;
            bins[bin.min(BINS - 1)] += 1;
        }
    })?;
    Ok(extremes
        .into_iter()
        .map(|(name, (lo, hi))| {
            let bins = &histograms[&name];
            let total: u64 = bins.iter().sum();
            let tail = (total as f64 * (100.0 - p) / 200.0) as u64;
            let width = (hi - lo) as f64 / BINS as f64;
            // The first bin whose cumulative count passes the lower tail, the last that
            // stays within the upper one.
            let mut seen = 0;
            let low_bin = bins
                .iter()
                .position(|&count| {
                    seen += count;
                    seen > tail
                })
                .unwrap_or(0);
            let mut seen = 0;
            let high_bin = BINS
                - 1
                - bins
                    .iter()
                    .rev()
                    .position(|&count| {
                        seen += count;
                        seen > tail
                    })
                    .unwrap_or(0);
            let clipped = (
                (lo as f64 + low_bin as f64 * width) as f32,
                (lo as f64 + (high_bin + 1) as f64 * width) as f32,
            );
            (name, (clipped.0.max(lo), clipped.1.min(hi)))
        })
        .collect())
}

/// A batch of crops prepared as the model's input says (float32 NCHW), and its shape.
fn prepared(samples: &[Sample], preprocessing: &Preprocessing) -> Result<(Vec<f32>, [usize; 4])> {
    let per = preprocessing.input_len();
    let mut data = vec![0f32; samples.len() * per];
    for (sample, out) in samples.iter().zip(data.chunks_exact_mut(per)) {
        let bytes = std::fs::read(&sample.path).map_err(|e| Error::io(&sample.path, e))?;
        let (rgb, w, h) = decode(&bytes)
            .map_err(|e| Error::InvalidInput(format!("{}: {e}", sample.path.display())))?;
        preprocessing.prepare(&ImageView::packed(&rgb, w, h, PixelFormat::Rgb8), out)?;
    }
    let shape = [samples.len(), 3, preprocessing.height, preprocessing.width];
    Ok((data, shape))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_and_name_themselves() {
        assert_eq!(Method::parse("minmax").unwrap(), Method::MinMax);
        assert_eq!(
            Method::parse("percentile").unwrap(),
            Method::Percentile(99.99)
        );
        let p = Method::parse("percentile:99.9").unwrap();
        assert_eq!(Method::parse(&p.name()).unwrap(), p);
        for bad in ["entropy", "percentile:0", "percentile:101", "percentile:x"] {
            assert!(Method::parse(bad).is_err(), "{bad}");
        }
    }
}
