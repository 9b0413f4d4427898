//! Running prepared float batches (`[N, 3, H, W]`, already normalized) through a model:
//! what `reid embed` does, and the reference path the parity tests check. On the CPU the
//! model runs as its kernel graph where it has one ([`ReidModel::embedding_graph`]).

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::formats::npy::NpyArray;
use crate::models::ReidModel;

/// Embeds every image of an `[N, 3, H, W]` float array in eval mode, `batch_size` at a time,
/// and returns the `[N, feature_dim]` features.
pub fn embed_array(
    model: &ReidModel,
    input: &NpyArray,
    batch_size: usize,
    device: &Device,
) -> Result<NpyArray> {
    let [n, c, h, w] = match input.shape[..] {
        [n, c, h, w] => [n, c, h, w],
        _ => {
            return Err(Error::InvalidInput(format!(
                "expected a float array of shape [N, 3, H, W], got {:?}",
                input.shape
            )));
        }
    };
    if c != 3 {
        return Err(Error::InvalidInput(format!(
            "expected 3 channels (NCHW layout), got shape {:?}",
            input.shape
        )));
    }
    model.check_input_size(h, w)?;
    let values = input.to_f32();
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidInput(format!(
            "input holds a non-finite value at flat index {i}"
        )));
    }
    let image = c * h * w;
    let dim = model.feature_dim();
    let mut out = Vec::with_capacity(n * dim);
    let graph = model.embedding_graph(None);
    for start in (0..n).step_by(batch_size.max(1)) {
        let end = (start + batch_size.max(1)).min(n);
        if let Some(graph) = &graph {
            let batch = values[start * image..end * image].to_vec();
            let (features, _) = graph
                .run(batch, [end - start, c, h, w])
                .map_err(Error::InvalidInput)?;
            out.extend(features);
            continue;
        }
        let batch = Tensor::<4>::from_data(
            TensorData::new(
                values[start * image..end * image].to_vec(),
                [end - start, c, h, w],
            ),
            device,
        );
        out.extend(tensor_to_vec(model.features(batch)));
    }
    Ok(NpyArray::f32(vec![n, dim], out))
}

/// Copies a tensor's values to the host as `f32`.
pub fn tensor_to_vec<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("converted to f32")
}
