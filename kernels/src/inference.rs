//! A network's inference as a list of steps on plain `f32` buffers, its weights prepared once.
//!
//! Run through Burn, every layer of an eval-mode forward is several tensor operations (the
//! BatchNorm folded into the weights again on each call, a bias added, a gate's mean, two 1×1
//! convolutions, a sigmoid, a product, a sum, a ReLU), each with its dispatch, its allocation
//! and a pass over memory: at batch 1 those costs, not arithmetic, were most of the time. A
//! [`Graph`] holds the weights the caller prepared (normalizations folded in) and runs each
//! layer as one kernel call, with the fusions a fixed step list allows: a residual block's
//! shortcut sum and its ReLU in the convolution that writes the block's output, and OSNet's
//! whole channel gate (squeeze, excitation, gated sum of four streams) as one step.

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::matrix::{View, matmul};
use crate::output::PARALLEL_MIN_LEN;
use crate::pool::{self, PoolParams, PoolShape};
use crate::shape::{ConvParams, ConvShape, Epilogue};
use crate::simd::{sum, vectorized};
use crate::{dense, depthwise, gate};

mod concurrent;

/// A value of a [`Graph`]: its input or a step's output, `[n, c, h, w]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value(usize);

/// A convolution with its weight `[o, c / groups, kh, kw]` (row-major) and bias `[o]`.
#[derive(Clone, Debug)]
pub struct Conv {
    /// The weight, BatchNorm folded in where one follows.
    pub weight: Vec<f32>,
    /// The weight's shape.
    pub dims: [usize; 4],
    /// One bias per output channel.
    pub bias: Vec<f32>,
    /// Stride, padding, groups.
    pub params: ConvParams,
}

/// A fully connected layer `y = W·x + b`, `W` `[outputs, inputs]` row-major (PyTorch's layout).
#[derive(Clone, Debug)]
pub struct Dense {
    /// The weight.
    pub weight: Vec<f32>,
    /// Input features.
    pub inputs: usize,
    /// Output features.
    pub outputs: usize,
    /// One bias per output.
    pub bias: Vec<f32>,
}

/// OSNet's channel gate: each plane's mean, `reduce` then ReLU, `expand` then sigmoid — one
/// factor per image and channel.
#[derive(Clone, Debug)]
pub struct ChannelGate {
    /// Channels → reduced channels.
    pub reduce: Dense,
    /// Reduced channels → channels.
    pub expand: Dense,
}

enum Step {
    ChannelAffine {
        x: Value,
        source: Vec<usize>,
        mul: Vec<f32>,
        add: Vec<f32>,
    },
    Conv {
        x: Value,
        conv: Conv,
        residual: Option<Value>,
        relu: bool,
    },
    MaxPool {
        x: Value,
        params: PoolParams,
    },
    AvgPool {
        x: Value,
        params: PoolParams,
    },
    GatedSum {
        streams: [Value; 4],
        gate: ChannelGate,
    },
    GlobalAvgPool {
        x: Value,
    },
    Dense {
        x: Value,
        dense: Dense,
        relu: bool,
    },
}

impl Step {
    fn inputs(&self) -> Vec<Value> {
        match self {
            Step::ChannelAffine { x, .. }
            | Step::MaxPool { x, .. }
            | Step::AvgPool { x, .. }
            | Step::GlobalAvgPool { x }
            | Step::Dense { x, .. } => vec![*x],
            Step::Conv { x, residual, .. } => std::iter::once(*x).chain(*residual).collect(),
            Step::GatedSum { streams, .. } => streams.to_vec(),
        }
    }
}

/// Records a [`Graph`] step by step; each call returns the step's output.
pub struct GraphBuilder {
    steps: Vec<Step>,
}

impl GraphBuilder {
    /// An empty graph and its input.
    pub fn new() -> (Self, Value) {
        (Self { steps: Vec::new() }, Value(0))
    }

    fn push(&mut self, step: Step) -> Value {
        self.steps.push(step);
        Value(self.steps.len())
    }

    /// Output channel `j` is input channel `source[j]` times `mul[j]` plus `add[j]`: a
    /// normalization or a channel-order change in front of the network.
    pub fn channel_affine(
        &mut self,
        x: Value,
        source: Vec<usize>,
        mul: Vec<f32>,
        add: Vec<f32>,
    ) -> Value {
        assert!(source.len() == mul.len() && mul.len() == add.len());
        self.push(Step::ChannelAffine {
            x,
            source,
            mul,
            add,
        })
    }

    /// `conv(x) + bias`, plus `residual` (of the output's shape) when given, then ReLU when
    /// `relu`, in one pass over the output.
    pub fn conv(&mut self, x: Value, conv: Conv, residual: Option<Value>, relu: bool) -> Value {
        assert_eq!(conv.bias.len(), conv.dims[0], "one bias per output channel");
        assert_eq!(conv.weight.len(), conv.dims.iter().product::<usize>());
        self.push(Step::Conv {
            x,
            conv,
            residual,
            relu,
        })
    }

    /// Max pooling (floor mode).
    pub fn max_pool(&mut self, x: Value, params: PoolParams) -> Value {
        self.push(Step::MaxPool { x, params })
    }

    /// Average pooling (floor mode).
    pub fn avg_pool(&mut self, x: Value, params: PoolParams) -> Value {
        self.push(Step::AvgPool { x, params })
    }

    /// `Σ_t x_t · gate(x_t)` over four streams of one shape, the gate's weights shared.
    pub fn gated_sum(&mut self, streams: [Value; 4], gate: ChannelGate) -> Value {
        assert_eq!(gate.reduce.outputs, gate.expand.inputs);
        assert_eq!(gate.reduce.inputs, gate.expand.outputs);
        self.push(Step::GatedSum { streams, gate })
    }

    /// The mean of each plane: `[n, c, h, w]` → `[n, c, 1, 1]`.
    pub fn global_avg_pool(&mut self, x: Value) -> Value {
        self.push(Step::GlobalAvgPool { x })
    }

    /// A fully connected layer on `[n, inputs, 1, 1]` → `[n, outputs, 1, 1]`, then ReLU when
    /// `relu`.
    pub fn dense(&mut self, x: Value, dense: Dense, relu: bool) -> Value {
        assert_eq!(dense.weight.len(), dense.inputs * dense.outputs);
        assert_eq!(dense.bias.len(), dense.outputs);
        self.push(Step::Dense { x, dense, relu })
    }

    /// The graph whose result is `output`.
    pub fn finish(self, output: Value) -> Graph {
        // Each value is dropped after the last step that reads it, so a run holds only the
        // activations still needed.
        let dependencies = concurrent::Dependencies::of(&self.steps);
        let mut frees = vec![Vec::new(); self.steps.len()];
        for value in (0..=self.steps.len()).filter(|&v| v != output.0) {
            if let Some(&last) = dependencies.readers(value).last() {
                frees[last].push(value);
            }
        }
        Graph {
            dependencies,
            steps: self.steps,
            output,
            frees,
        }
    }
}

/// A network's inference, ready to run on batches of any size the layers accept.
pub struct Graph {
    steps: Vec<Step>,
    dependencies: concurrent::Dependencies,
    output: Value,
    frees: Vec<Vec<usize>>,
}

/// An activation `[n, c, h, w]`.
struct Activation {
    data: Vec<f32>,
    dims: [usize; 4],
}

impl Graph {
    /// Steps in the graph.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the graph has no step (its output is its input).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs the graph on `input` `[n, c, h, w]`; the output and its shape. A shape that a
    /// step cannot take is an error naming the step.
    ///
    /// A batch runs image by image, the images spread over rayon's pool, each through the
    /// whole graph: one image's activations stay in the core's cache from step to step (a
    /// batch-32 step's were megabytes, written to memory and read back by the next step), and
    /// the steps do not wait for each other. The numbers are those of a run on the whole batch:
    /// no kernel's arithmetic depends on the batch. A single image runs the steps that do not
    /// read each other's outputs at once (OSNet's four streams), each on a thread of the pool,
    /// with the numbers of a sequential run.
    pub fn run(&self, input: Vec<f32>, dims: [usize; 4]) -> Result<(Vec<f32>, [usize; 4]), String> {
        check_input(&input, dims)?;
        let [n, c, h, w] = dims;
        let threads = rayon::current_num_threads();
        if n == 1 && c * h * w > 0 && threads >= 2 {
            let input = Activation { data: input, dims };
            return with_pool_awake(|| self.run_concurrently(input));
        }
        if n < 2 || c * h * w == 0 || threads < 2 {
            return with_pool_awake(|| self.run_steps(input, dims));
        }
        let images: Vec<(Vec<f32>, [usize; 4])> = input
            .par_chunks(c * h * w)
            .map(|image| self.run_steps(image.to_vec(), [1, c, h, w]))
            .collect::<Result<_, _>>()?;
        let [_, oc, oh, ow] = images[0].1;
        let mut out = Vec::with_capacity(n * oc * oh * ow);
        for (image, _) in images {
            out.extend_from_slice(&image);
        }
        Ok((out, [n, oc, oh, ow]))
    }

    /// The steps of [`Graph::run`] on the whole batch at once (not image by image), each timed:
    /// where a forward's time goes, step by step (run it a few times: the first run also pays
    /// for memory the later ones reuse).
    pub fn profile(
        &self,
        input: Vec<f32>,
        dims: [usize; 4],
    ) -> Result<(Vec<f32>, Vec<StepProfile>), String> {
        check_input(&input, dims)?;
        let mut profile = Vec::with_capacity(self.steps.len());
        let (out, _) = with_pool_awake(|| self.run_steps_with(input, dims, Some(&mut profile)))?;
        Ok((out, profile))
    }

    fn run_steps(
        &self,
        input: Vec<f32>,
        dims: [usize; 4],
    ) -> Result<(Vec<f32>, [usize; 4]), String> {
        self.run_steps_with(input, dims, None)
    }

    fn run_steps_with(
        &self,
        input: Vec<f32>,
        dims: [usize; 4],
        mut profile: Option<&mut Vec<StepProfile>>,
    ) -> Result<(Vec<f32>, [usize; 4]), String> {
        let mut values: Vec<Option<Activation>> = Vec::with_capacity(self.steps.len() + 1);
        values.push(Some(Activation { data: input, dims }));
        for (i, step) in self.steps.iter().enumerate() {
            let start = std::time::Instant::now();
            let out = run_step(step, values.as_slice()).map_err(|e| format!("step {i}: {e}"))?;
            if let Some(profile) = profile.as_deref_mut() {
                profile.push(StepProfile::of(step, &values, &out, start.elapsed()));
            }
            values.push(Some(out));
            for &v in &self.frees[i] {
                values[v] = None;
            }
        }
        let out = values[self.output.0].take().expect("the output is kept");
        Ok((out.data, out.dims))
    }
}

/// Whether a run keeps the pool awake now: one at a time, so that concurrent callers' spinners
/// do not pick up each other's whole runs and make their returns wait on one another.
static POOL_KEPT_AWAKE: AtomicBool = AtomicBool::new(false);

/// Runs `run` on a thread of rayon's pool (so that each step's parallel parts start on the
/// thread already running: called from outside the pool, every parallel step handed its work
/// to the pool and put the caller to sleep until it was done, two context switches per step,
/// a fifth of a batch-1 forward) while the pool's other threads stay awake, taking the parts as
/// they come — as ONNX Runtime's threads spin through a run.
///
/// Left alone they fall asleep between two steps, and a sleeping thread took longer to start
/// than many parts take (on this project's virtual machine 0.4 ms after 1 ms asleep): in turns
/// with ONNX Runtime, batch-1 osnet_x1_0 went from 0.90–0.93 to 0.97–0.98 of its speed. An idle
/// spinner yields its core to the scheduler, so one that has no core of its own does not hold
/// up the run. Only one run at a time keeps the pool awake (the others run as before); a
/// spinner that picks up another job (rayon lends it any) finishes it before the run returns.
fn with_pool_awake<R: Send>(run: impl FnOnce() -> R + Send) -> R {
    let running = AtomicBool::new(true);
    rayon::scope(|scope| {
        let owner = rayon::current_thread_index();
        let running_ref = &running;
        let spinners = POOL_KEPT_AWAKE
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
        if spinners {
            for _ in 1..rayon::current_num_threads() {
                scope.spawn(move |_| {
                    // A pool that takes its own oldest job first would hand this thread its
                    // own spinner: it must not spin instead of running the steps.
                    if rayon::current_thread_index() == owner {
                        return;
                    }
                    take_work_while(|| running_ref.load(Ordering::Acquire));
                });
            }
        }
        // Stops the spinners when the run ends, also by a panic: the scope waits for them
        // before it unwinds.
        let _stop = StopOnDrop {
            running: &running,
            holds_pool: spinners,
        };
        run()
    })
}

/// Runs the pool's pending jobs on this thread while `busy()`, yielding the core when there
/// are none: a thread that waits this way stays awake (rayon's own waits fall asleep after a
/// few idle rounds).
fn take_work_while(busy: impl Fn() -> bool) {
    while busy() {
        if rayon::yield_now() != Some(rayon::Yield::Executed) {
            std::thread::yield_now();
        }
    }
}

/// Ends the spinners of [`with_pool_awake`] when dropped.
struct StopOnDrop<'a> {
    running: &'a AtomicBool,
    /// Whether this run holds [`POOL_KEPT_AWAKE`] (and gives it back).
    holds_pool: bool,
}

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Release);
        if self.holds_pool {
            POOL_KEPT_AWAKE.store(false, Ordering::Release);
        }
    }
}

fn check_input(input: &[f32], dims: [usize; 4]) -> Result<(), String> {
    if input.len() == dims.iter().product::<usize>() {
        Ok(())
    } else {
        Err(format!(
            "the input holds {} values, not the {} of {dims:?}",
            input.len(),
            dims.iter().product::<usize>()
        ))
    }
}

/// One step of a [`Graph::profile`]: what it is, its arithmetic and its time.
#[derive(Clone, Debug)]
pub struct StepProfile {
    /// The step's kind: `input` (the channel order and normalization), `stem` (a convolution
    /// of at most four input channels), `convolution` (other dense ones larger than 1×1),
    /// `pointwise` (1×1), `depthwise`, `max pool`, `average pool`, `gated sum`,
    /// `global pool` or `dense`.
    pub kind: &'static str,
    /// Multiply-adds of its convolution or matrix product (0 for the others).
    pub macs: u64,
    /// Wall time.
    pub time: std::time::Duration,
}

impl StepProfile {
    fn of(
        step: &Step,
        values: &[Option<Activation>],
        out: &Activation,
        time: std::time::Duration,
    ) -> Self {
        let outputs = out.data.len() as u64;
        let (kind, macs) = match step {
            Step::ChannelAffine { .. } => ("input", 0),
            Step::Conv { x, conv, .. } => {
                let [_, cg, kh, kw] = conv.dims;
                let channels = values.value(*x).dims[1];
                let kind = if conv.params.groups > 1 && conv.params.groups == channels && cg == 1 {
                    "depthwise"
                } else if kh * kw == 1 {
                    "pointwise"
                } else if channels <= 4 {
                    "stem"
                } else {
                    "convolution"
                };
                (kind, outputs * (cg * kh * kw) as u64)
            }
            Step::MaxPool { .. } => ("max pool", 0),
            Step::AvgPool { .. } => ("average pool", 0),
            Step::GatedSum { .. } => ("gated sum", 0),
            Step::GlobalAvgPool { .. } => ("global pool", 0),
            Step::Dense { dense, .. } => ("dense", outputs * dense.inputs as u64),
        };
        Self { kind, macs, time }
    }
}

/// Where a step finds the values it reads.
trait Inputs {
    /// The value `v`, still held.
    fn value(&self, v: Value) -> &Activation;
}

impl Inputs for [Option<Activation>] {
    fn value(&self, Value(v): Value) -> &Activation {
        self[v]
            .as_ref()
            .expect("a value is dropped only after its last use")
    }
}

fn run_step(step: &Step, values: &(impl Inputs + ?Sized)) -> Result<Activation, String> {
    match step {
        Step::ChannelAffine {
            x,
            source,
            mul,
            add,
        } => {
            let x = values.value(*x);
            let [n, c, h, w] = x.dims;
            if let Some(s) = source.iter().find(|&&s| s >= c) {
                return Err(format!("channel {s} of an input of {c}"));
            }
            let (hw, o) = (h * w, source.len());
            let mut data = vec![0.0; n * o * hw];
            for (index, plane) in data.chunks_mut(hw.max(1)).enumerate() {
                let (image, j) = (index / o, index % o);
                let src = &x.data[(image * c + source[j]) * hw..][..hw];
                for (d, v) in plane.iter_mut().zip(src) {
                    *d = v * mul[j] + add[j];
                }
            }
            Ok(Activation {
                data,
                dims: [n, o, h, w],
            })
        }
        Step::Conv {
            x,
            conv,
            residual,
            relu,
        } => {
            let x = values.value(*x);
            let s = ConvShape::new(x.dims, conv.dims, conv.params).ok_or_else(|| {
                format!(
                    "a convolution with weight {:?} and {:?} does not fit an input {:?}",
                    conv.dims, conv.params, x.dims
                )
            })?;
            let dims = [s.n, s.o, s.oh, s.ow];
            let residual = match residual {
                Some(r) => {
                    let r = values.value(*r);
                    if r.dims != dims {
                        return Err(format!(
                            "a residual {:?} added to an output {dims:?}",
                            r.dims
                        ));
                    }
                    Some(&r.data[..])
                }
                None => None,
            };
            let epilogue = Epilogue {
                bias: Some(&conv.bias),
                residual,
                relu: *relu,
            };
            let data = if s.depthwise() {
                depthwise::forward(&s, &x.data, &conv.weight, epilogue)
            } else {
                dense::forward(&s, &x.data, &conv.weight, epilogue)
            };
            Ok(Activation { data, dims })
        }
        Step::MaxPool { x, params } | Step::AvgPool { x, params } => {
            let x = values.value(*x);
            let s = PoolShape::new(x.dims, *params).ok_or_else(|| {
                format!("a pooling {params:?} does not fit an input {:?}", x.dims)
            })?;
            let data = match step {
                Step::MaxPool { .. } => pool::max_forward(&s, &x.data),
                _ => pool::avg_forward(&s, &x.data),
            };
            Ok(Activation {
                data,
                dims: [x.dims[0], x.dims[1], s.oh, s.ow],
            })
        }
        Step::GatedSum { streams, gate } => {
            let xs = streams.map(|v| values.value(v));
            let [n, c, h, w] = xs[0].dims;
            if xs.iter().any(|x| x.dims != xs[0].dims) || c != gate.reduce.inputs {
                let dims: Vec<_> = xs.iter().map(|x| x.dims).collect();
                return Err(format!(
                    "a gate over {} channels on streams {dims:?}",
                    gate.reduce.inputs
                ));
            }
            let gates: Vec<Vec<f32>> = xs
                .iter()
                .map(|x| gate_values(gate, &x.data, n, h * w))
                .collect();
            let streams: Vec<&[f32]> = xs.iter().map(|x| &x.data[..]).collect();
            let gates: Vec<&[f32]> = gates.iter().map(|g| &g[..]).collect();
            Ok(Activation {
                data: gate::forward(h * w, &streams, &gates),
                dims: [n, c, h, w],
            })
        }
        Step::GlobalAvgPool { x } => {
            let x = values.value(*x);
            let [n, c, h, w] = x.dims;
            Ok(Activation {
                data: plane_means(&x.data, h * w),
                dims: [n, c, 1, 1],
            })
        }
        Step::Dense { x, dense, relu } => {
            let x = values.value(*x);
            let [n, c, h, w] = x.dims;
            if c * h * w != dense.inputs {
                return Err(format!(
                    "a layer of {} inputs on an input {:?}",
                    dense.inputs, x.dims
                ));
            }
            let mut data = dense_forward(dense, &x.data, n);
            if *relu {
                data.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            Ok(Activation {
                data,
                dims: [n, dense.outputs, 1, 1],
            })
        }
    }
}

/// `W·x + b` for each of the `rows` rows of `x` `[rows, inputs]`.
fn dense_forward(dense: &Dense, x: &[f32], rows: usize) -> Vec<f32> {
    let mut out: Vec<f32> = dense.bias.repeat(rows);
    matmul(
        &mut out,
        View::rows(x, rows, dense.inputs),
        View::transposed(&dense.weight, dense.inputs, dense.outputs),
        true,
        true,
    );
    out
}

/// The mean of each plane of `rest` values of `x`.
fn plane_means(x: &[f32], rest: usize) -> Vec<f32> {
    let mean = |plane: &[f32]| {
        vectorized(
            #[inline(always)]
            || sum(plane),
        ) / rest as f32
    };
    if rest == 0 {
        return Vec::new();
    }
    if x.len() >= PARALLEL_MIN_LEN {
        let min_planes = (PARALLEL_MIN_LEN / 4).div_ceil(rest);
        x.par_chunks(rest)
            .with_min_len(min_planes)
            .map(mean)
            .collect()
    } else {
        x.chunks(rest).map(mean).collect()
    }
}

/// The gate's factor for each of the `n · c` planes of one stream `x`.
fn gate_values(gate: &ChannelGate, x: &[f32], n: usize, rest: usize) -> Vec<f32> {
    let squeezed = plane_means(x, rest);
    let mut hidden = dense_forward(&gate.reduce, &squeezed, n);
    hidden.iter_mut().for_each(|v| *v = v.max(0.0));
    let mut out = dense_forward(&gate.expand, &hidden, n);
    out.iter_mut().for_each(|v| *v = 1.0 / (1.0 + (-*v).exp()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values in [−1, 1) from a multiplicative hash of the index.
    fn values(len: usize, seed: u32) -> Vec<f32> {
        (0..len as u32)
            .map(|i| {
                ((i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 8) % 1000) as f32 / 500.0
                    - 1.0
            })
            .collect()
    }

    /// A direct stride-1 convolution of one group with `pad` zeros around the input.
    fn direct_conv(x: &[f32], [n, c, h, w]: [usize; 4], conv: &Conv, pad: usize) -> Vec<f32> {
        let [o, _, kh, kw] = conv.dims;
        let (oh, ow) = (h + 2 * pad - kh + 1, w + 2 * pad - kw + 1);
        let mut out = vec![0.0; n * o * oh * ow];
        for i in 0..n {
            for oc in 0..o {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut acc = conv.bias[oc];
                        for ic in 0..c {
                            for ki in 0..kh {
                                for kj in 0..kw {
                                    let (iy, ix) = (y + ki, xx + kj);
                                    if iy < pad || ix < pad || iy - pad >= h || ix - pad >= w {
                                        continue;
                                    }
                                    let v = x[((i * c + ic) * h + iy - pad) * w + ix - pad];
                                    acc += v * conv.weight[((oc * c + ic) * kh + ki) * kw + kj];
                                }
                            }
                        }
                        out[((i * o + oc) * oh + y) * ow + xx] = acc;
                    }
                }
            }
        }
        out
    }

    fn conv(dims: [usize; 4], pad: usize, seed: u32) -> Conv {
        Conv {
            weight: values(dims.iter().product(), seed),
            dims,
            bias: values(dims[0], seed + 1),
            params: ConvParams {
                stride: [1, 1],
                padding: [pad, pad],
                groups: 1,
            },
        }
    }

    fn assert_near(what: &str, got: &[f32], want: &[f32]) {
        assert_eq!(got.len(), want.len(), "{what}: length");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                "{what}[{i}]: {a} vs {b}"
            );
        }
    }

    #[test]
    fn a_residual_block_and_its_head_match_a_direct_computation() {
        let dims = [2, 3, 5, 4];
        let x = values(2 * 3 * 5 * 4, 7);
        let (main, shortcut, expand) = (
            conv([4, 3, 3, 3], 1, 11),
            conv([4, 3, 1, 1], 0, 13),
            conv([4, 4, 1, 1], 0, 17),
        );
        let dense = Dense {
            weight: values(8, 19),
            inputs: 4,
            outputs: 2,
            bias: values(2, 23),
        };
        let (source, mul, add) = (vec![2, 1, 0], vec![2.0, 0.5, -1.0], vec![0.1, 0.0, 0.3]);

        let (mut g, input) = GraphBuilder::new();
        let a = g.channel_affine(input, source.clone(), mul.clone(), add.clone());
        let y = g.conv(a, main.clone(), None, true);
        let s = g.conv(a, shortcut.clone(), None, false);
        let z = g.conv(y, expand.clone(), Some(s), true);
        let pooled = g.global_avg_pool(z);
        let out = g.dense(pooled, dense.clone(), false);
        let graph = g.finish(out);
        let (got, got_dims) = graph.run(x.clone(), dims).unwrap();
        assert_eq!(got_dims, [2, 2, 1, 1]);

        // The same network, one operation at a time.
        let hw = 20;
        let mut a = vec![0.0; x.len()];
        for i in 0..2 {
            for j in 0..3 {
                for p in 0..hw {
                    a[(i * 3 + j) * hw + p] = x[(i * 3 + source[j]) * hw + p] * mul[j] + add[j];
                }
            }
        }
        let y: Vec<f32> = direct_conv(&a, dims, &main, 1)
            .iter()
            .map(|v| v.max(0.0))
            .collect();
        let s = direct_conv(&a, dims, &shortcut, 0);
        let z: Vec<f32> = direct_conv(&y, [2, 4, 5, 4], &expand, 0)
            .iter()
            .zip(&s)
            .map(|(e, s)| (e + s).max(0.0))
            .collect();
        assert!(
            z.contains(&0.0) && z.iter().any(|v| *v > 0.0),
            "the ReLU cuts"
        );
        let pooled: Vec<f32> = z
            .chunks(hw)
            .map(|p| p.iter().sum::<f32>() / hw as f32)
            .collect();
        let want: Vec<f32> = (0..2)
            .flat_map(|i| {
                let (pooled, dense) = (&pooled, &dense);
                (0..2).map(move |o| {
                    dense.bias[o]
                        + (0..4)
                            .map(|c| dense.weight[o * 4 + c] * pooled[i * 4 + c])
                            .sum::<f32>()
                })
            })
            .collect();
        assert_near("block and head", &got, &want);
    }

    #[test]
    fn a_batch_of_one_run_with_spinning_threads_gives_the_batch_runs_numbers() {
        // Planes large enough for the steps to split over the pool, on which the run's
        // spinners pick the parts up.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        let dims = [2, 8, 64, 48];
        let x = values(dims.iter().product(), 3);
        let (mut g, input) = GraphBuilder::new();
        let y = g.conv(input, conv([16, 8, 3, 3], 1, 5), None, true);
        let z = g.conv(y, conv([16, 16, 1, 1], 0, 7), None, false);
        let graph = g.finish(z);
        let (batch, _) = pool.install(|| graph.run(x.clone(), dims)).unwrap();
        let images: Vec<&[f32]> = x.chunks(x.len() / 2).collect();
        let check = |i: usize| {
            for _ in 0..20 {
                let (one, one_dims) = pool
                    .install(|| graph.run(images[i].to_vec(), [1, 8, 64, 48]))
                    .unwrap();
                assert_eq!(one_dims, [1, 16, 64, 48]);
                assert_near("one image", &one, &batch[i * one.len()..][..one.len()]);
            }
        };
        check(0);
        // Callers on four threads of their own, and one inside the pool's own parallel loop:
        // each gets its numbers, none waits forever on another's spinners.
        std::thread::scope(|threads| {
            for i in 0..4 {
                threads.spawn(move || check(i % 2));
            }
        });
        pool.install(|| (0..4).into_par_iter().for_each(|i| check(i % 2)));
    }

    /// An OSNet-shaped block on `c` channels: a 1×1 convolution, four streams of one to four
    /// (1×1, depthwise 3×3) pairs, their gated sum, a 1×1 convolution plus the block's input.
    /// `misfit` gives the streams' first 1×1 convolutions with these indices one input
    /// channel too many.
    fn four_stream_block(c: usize, misfit: &[usize]) -> Graph {
        let dense = |inputs, outputs, seed| Dense {
            weight: values(inputs * outputs, seed),
            inputs,
            outputs,
            bias: values(outputs, seed + 1),
        };
        let depthwise = |seed| Conv {
            params: ConvParams {
                groups: c,
                ..conv([c, 1, 3, 3], 1, seed).params
            },
            ..conv([c, 1, 3, 3], 1, seed)
        };
        let (mut g, input) = GraphBuilder::new();
        let x1 = g.conv(input, conv([c, c, 1, 1], 0, 1), None, true);
        let streams = [0, 1, 2, 3].map(|t| {
            let mut x = x1;
            for k in 0..=t {
                let seed = 10 * (t as u32 + 1) + 2 * k as u32;
                let inputs = c + usize::from(k == 0 && misfit.contains(&t));
                x = g.conv(x, conv([c, inputs, 1, 1], 0, seed), None, false);
                x = g.conv(x, depthwise(seed + 1), None, true);
            }
            x
        });
        let gate = ChannelGate {
            reduce: dense(c, 2, 90),
            expand: dense(2, c, 92),
        };
        let summed = g.gated_sum(streams, gate);
        let out = g.conv(summed, conv([c, c, 1, 1], 0, 94), Some(input), true);
        g.finish(out)
    }

    #[test]
    fn a_single_image_runs_independent_streams_at_once_with_the_sequential_runs_numbers() {
        let graph = four_stream_block(16, &[]);
        let dims = [1, 16, 40, 24];
        let x = values(dims.iter().product(), 5);
        // The profile runs the steps one after the other, on the calling thread's order.
        let (sequential, _) = graph.profile(x.clone(), dims).unwrap();
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for _ in 0..20 {
                let (got, got_dims) = pool.install(|| graph.run(x.clone(), dims)).unwrap();
                assert_eq!(got_dims, dims);
                assert_eq!(got, sequential, "{threads} threads");
            }
            // Callers on threads of their own at once: each gets its numbers.
            std::thread::scope(|callers| {
                for _ in 0..3 {
                    callers.spawn(|| {
                        let (got, _) = pool.install(|| graph.run(x.clone(), dims)).unwrap();
                        assert_eq!(got, sequential);
                    });
                }
            });
        }
    }

    #[test]
    fn of_two_failing_streams_the_error_names_the_step_a_sequential_run_stops_at() {
        // Streams 1 and 3 cannot take their input; stream 1's first step (step 3) comes first
        // in the list, whichever thread fails first.
        let graph = four_stream_block(8, &[1, 3]);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        for _ in 0..20 {
            let error = pool
                .install(|| graph.run(values(8 * 12 * 6, 1), [1, 8, 12, 6]))
                .unwrap_err();
            assert!(error.starts_with("step 3: "), "{error}");
        }
    }

    #[test]
    fn the_gated_sum_scales_each_stream_by_its_own_gate() {
        let [n, c, hw] = [2, 4, 6];
        let gate = ChannelGate {
            reduce: Dense {
                weight: values(2 * c, 3),
                inputs: c,
                outputs: 2,
                bias: values(2, 5),
            },
            expand: Dense {
                weight: values(2 * c, 29),
                inputs: 2,
                outputs: c,
                bias: values(c, 31),
            },
        };
        let xs: Vec<Vec<f32>> = (0..4).map(|t| values(n * c * hw, 40 + t)).collect();
        let (mut g, input) = GraphBuilder::new();
        // Four streams: the input through four 1×1 identity-free convolutions would hide the
        // gate; instead each stream is the input scaled by an affine step.
        let scales = [1.0, -0.5, 2.0, 0.25];
        let streams =
            scales.map(|m| g.channel_affine(input, (0..c).collect(), vec![m; c], vec![0.0; c]));
        let out = g.gated_sum(streams, gate.clone());
        let graph = g.finish(out);
        let (got, _) = graph.run(xs[0].clone(), [n, c, 2, 3]).unwrap();

        let mut want = vec![0.0; n * c * hw];
        for m in scales {
            let x: Vec<f32> = xs[0].iter().map(|v| v * m).collect();
            for i in 0..n {
                let means: Vec<f32> = (0..c)
                    .map(|ch| x[(i * c + ch) * hw..][..hw].iter().sum::<f32>() / hw as f32)
                    .collect();
                let hidden: Vec<f32> = (0..2)
                    .map(|r| {
                        let v = gate.reduce.bias[r]
                            + (0..c)
                                .map(|ch| gate.reduce.weight[r * c + ch] * means[ch])
                                .sum::<f32>();
                        v.max(0.0)
                    })
                    .collect();
                for ch in 0..c {
                    let e = gate.expand.bias[ch]
                        + (0..2)
                            .map(|r| gate.expand.weight[ch * 2 + r] * hidden[r])
                            .sum::<f32>();
                    let factor = 1.0 / (1.0 + (-e).exp());
                    for p in 0..hw {
                        want[(i * c + ch) * hw + p] += x[(i * c + ch) * hw + p] * factor;
                    }
                }
            }
        }
        assert_near("gated sum", &got, &want);
    }

    /// The profile runs the same numbers as `run` (which takes a batch image by image) and
    /// names and counts every step.
    #[test]
    fn the_profile_times_every_step_of_the_same_computation() {
        let dims = [3, 3, 6, 5];
        let x = values(3 * 3 * 6 * 5, 29);
        let (mut g, input) = GraphBuilder::new();
        let a = g.conv(input, conv([4, 3, 3, 3], 1, 31), None, true);
        let b = g.conv(a, conv([4, 4, 1, 1], 0, 37), None, false);
        let c = g.global_avg_pool(b);
        let dense = Dense {
            weight: values(8, 41),
            inputs: 4,
            outputs: 2,
            bias: values(2, 43),
        };
        let out = g.dense(c, dense, false);
        let graph = g.finish(out);
        let (run, _) = graph.run(x.clone(), dims).unwrap();
        let (profiled, steps) = graph.profile(x, dims).unwrap();
        assert_near("profiled output", &profiled, &run);
        let kinds: Vec<(&str, u64)> = steps.iter().map(|s| (s.kind, s.macs)).collect();
        let pixels = 3 * 6 * 5;
        assert_eq!(
            kinds,
            [
                ("stem", (pixels * 4 * 27) as u64),
                ("pointwise", (pixels * 4 * 4) as u64),
                ("global pool", 0),
                ("dense", 3 * 2 * 4),
            ]
        );
    }

    #[test]
    fn inputs_that_do_not_fit_are_errors_naming_the_step() {
        let (mut g, input) = GraphBuilder::new();
        let y = g.conv(input, conv([4, 3, 3, 3], 0, 1), None, false);
        let graph = g.finish(y);
        let wrong_channels = graph.run(vec![0.0; 2 * 5 * 5], [1, 2, 5, 5]).unwrap_err();
        assert!(wrong_channels.contains("step 0"), "{wrong_channels}");
        let too_small = graph.run(vec![0.0; 3 * 2 * 2], [1, 3, 2, 2]).unwrap_err();
        assert!(too_small.contains("does not fit"), "{too_small}");
        let wrong_length = graph.run(vec![0.0; 5], [1, 3, 5, 5]).unwrap_err();
        assert!(wrong_length.contains("holds 5 values"), "{wrong_length}");
    }
}
