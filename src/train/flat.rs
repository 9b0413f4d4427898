//! Every float value of a model — parameters and BatchNorm's running statistics — as one flat
//! vector in the model's order, and back: what the ranks of a distributed run compare and
//! align, and what the moving average of the weights (`ema`) averages.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param, ParamId};
use burn::tensor::{Tensor, TensorData};

use crate::models::ReidModel;

/// Every float value of a model, in the model's order.
#[derive(Default)]
pub(crate) struct Values {
    /// The values.
    pub values: Vec<f32>,
    /// Each tensor's id and its range in `values`.
    pub ranges: Vec<(ParamId, std::ops::Range<usize>)>,
}

impl Values {
    /// The values of `model` as it holds them (a training model's running statistics are
    /// current only after `valid()` or `train()` gathered them).
    pub fn of(model: &ReidModel) -> Self {
        let mut values = Self::default();
        model.visit(&mut values);
        values
    }
}

impl ModuleVisitor for Values {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let start = self.values.len();
        self.values
            .extend(crate::models::embed::tensor_to_vec(param.val()));
        self.ranges.push((param.id, start..self.values.len()));
    }
}

/// `model` with every float value replaced by the next piece of `values` (in the order of
/// [`Values::of`]; the caller checks the length).
pub(crate) fn adopt(model: ReidModel, values: &[f32]) -> ReidModel {
    model.map(&mut Adopt { values, offset: 0 })
}

/// Replaces every float value of a model by the next piece of `values`.
struct Adopt<'a> {
    values: &'a [f32],
    offset: usize,
}

impl ModuleMapper for Adopt<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.map(|w| {
            let dims = w.dims();
            let len: usize = dims.iter().product();
            let piece = self.values[self.offset..self.offset + len].to_vec();
            self.offset += len;
            let tracked = w.is_require_grad();
            Tensor::<D>::from_data(TensorData::new(piece, dims), &w.device())
                .set_require_grad(tracked)
        })
    }
}
