//! The geometry of one 2-D convolution, NCHW, and the index arithmetic every kernel shares.

/// Stride, symmetric zero padding and channel groups of a 2-D convolution (no dilation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvParams {
    /// Stride (rows, columns).
    pub stride: [usize; 2],
    /// Zero padding added on both sides (rows, columns).
    pub padding: [usize; 2],
    /// Channel groups.
    pub groups: usize,
}

/// What the forward applies to each output channel as it writes it: a bias, then optionally a
/// residual input added (the same shape as the output), then optionally ReLU. Inference folds
/// BatchNorm into the weights and this bias, so a convolution, its normalization, a residual
/// block's shortcut sum and its activation are one pass over the output.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Epilogue<'a> {
    pub bias: Option<&'a [f32]>,
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Applies the epilogue to `plane`, the output plane at position `index` of `[n · o]`, of
    /// channel `channel`.
    #[inline(always)]
    pub fn apply(&self, plane: &mut [f32], index: usize, channel: usize) {
        self.apply_part(plane, index, channel, plane.len(), 0);
    }

    /// [`Epilogue::apply`] on the values `start..start + part.len()` of that plane, which
    /// holds `plane_len` values.
    #[inline(always)]
    pub fn apply_part(
        &self,
        part: &mut [f32],
        index: usize,
        channel: usize,
        plane_len: usize,
        start: usize,
    ) {
        let bias = self.bias.map_or(0.0, |b| b[channel]);
        if let Some(residual) = self.residual {
            let residual = &residual[index * plane_len + start..][..part.len()];
            if self.relu {
                for (v, r) in part.iter_mut().zip(residual) {
                    *v = (*v + bias + r).max(0.0);
                }
            } else {
                for (v, r) in part.iter_mut().zip(residual) {
                    *v = *v + bias + r;
                }
            }
            return;
        }
        match (bias != 0.0, self.relu) {
            (false, false) => {}
            (true, false) => part.iter_mut().for_each(|v| *v += bias),
            (_, true) => part.iter_mut().for_each(|v| *v = (*v + bias).max(0.0)),
        }
    }
}

/// Every size of one convolution: input `[n, c, h, w]`, weight `[o, c / groups, kh, kw]`,
/// output `[n, o, oh, ow]`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ConvShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub ph: usize,
    pub pw: usize,
    pub groups: usize,
    pub oh: usize,
    pub ow: usize,
}

impl ConvShape {
    /// The shape of `params` applied to an input `[n, c, h, w]` with weight `[o, cg, kh, kw]`;
    /// `None` when the two do not fit together or the output would be empty.
    pub fn new(input: [usize; 4], weight: [usize; 4], params: ConvParams) -> Option<Self> {
        let [n, c, h, w] = input;
        let [o, cg, kh, kw] = weight;
        let [sh, sw] = params.stride;
        let [ph, pw] = params.padding;
        let groups = params.groups;
        let fits = groups > 0
            && sh > 0
            && sw > 0
            && c == cg * groups
            && o % groups == 0
            && h + 2 * ph >= kh
            && w + 2 * pw >= kw;
        fits.then(|| Self {
            n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            sh,
            sw,
            ph,
            pw,
            groups,
            oh: (h + 2 * ph - kh) / sh + 1,
            ow: (w + 2 * pw - kw) / sw + 1,
        })
    }

    /// Input channels per group.
    pub fn cg(&self) -> usize {
        self.c / self.groups
    }

    /// Output channels per group.
    pub fn og(&self) -> usize {
        self.o / self.groups
    }

    /// Rows of the unfolded input of one group: `cg · kh · kw`.
    pub fn k(&self) -> usize {
        self.cg() * self.kh * self.kw
    }

    /// Output pixels per channel.
    pub fn p(&self) -> usize {
        self.oh * self.ow
    }

    /// Input pixels per channel.
    pub fn hw(&self) -> usize {
        self.h * self.w
    }

    /// One input and one output channel per group.
    pub fn depthwise(&self) -> bool {
        self.cg() == 1 && self.og() == 1
    }

    /// A 1×1 kernel with stride 1 and no padding: the input already is its unfolded form.
    pub fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.sh == 1 && self.sw == 1 && self.ph == 0 && self.pw == 0
    }

    /// The output rows `oy` whose input row `oy·sh + ki − ph` lies inside the image, as a range.
    pub fn rows(&self, ki: usize) -> std::ops::Range<usize> {
        inside(self.oh, self.sh, ki, self.ph, self.h)
    }

    /// The output columns `ox` whose input column `ox·sw + kj − pw` lies inside the image.
    pub fn cols(&self, kj: usize) -> std::ops::Range<usize> {
        inside(self.ow, self.sw, kj, self.pw, self.w)
    }
}

/// Output positions `x < out` with `0 ≤ x·stride + tap − pad < size`.
fn inside(
    out: usize,
    stride: usize,
    tap: usize,
    pad: usize,
    size: usize,
) -> std::ops::Range<usize> {
    let lo = pad.saturating_sub(tap).div_ceil(stride);
    let hi = if size + pad > tap {
        ((size + pad - tap - 1) / stride + 1).min(out)
    } else {
        0
    };
    lo.min(hi)..hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_matches_a_scan() {
        for out in 1..6 {
            for stride in 1..4 {
                for tap in 0..7 {
                    for pad in 0..4 {
                        for size in 1..9 {
                            let scan: Vec<usize> = (0..out)
                                .filter(|x| {
                                    let i = (x * stride + tap) as isize - pad as isize;
                                    i >= 0 && i < size as isize
                                })
                                .collect();
                            let range: Vec<usize> = inside(out, stride, tap, pad, size).collect();
                            assert_eq!(scan, range, "{out} {stride} {tap} {pad} {size}");
                        }
                    }
                }
            }
        }
    }
}
