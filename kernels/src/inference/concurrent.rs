//! One image's run with independent steps at once, each on a thread of the pool.
//!
//! A batch-1 run has no images to spread over the cores, so only the steps' own parallel
//! parts kept the second core busy — and the late steps of a small network are too short to
//! split: a hand-over costs about as much as the part. OSNet's blocks, though, have four
//! streams between their first convolution and their gate (one to four 1×1 + depthwise pairs
//! each) that do not read each other: run side by side, each core works through whole steps.
//! The numbers are those of a sequential run: each step computes what it computes there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{Activation, Graph, Inputs, Step, Value, run_step, take_work_while};

/// Which steps wait for which: the graph's edges, found once when it is built.
pub(super) struct Dependencies {
    /// For each step, the values it reads, each once.
    reads: Vec<Vec<usize>>,
    /// For each value, the steps that read it.
    readers: Vec<Vec<usize>>,
    /// For each step, the most steps on a path from it to the end: of the steps ready at
    /// once, the one with the longest way ahead is started first.
    ahead: Vec<usize>,
}

impl Dependencies {
    pub(super) fn of(steps: &[Step]) -> Self {
        let reads: Vec<Vec<usize>> = steps
            .iter()
            .map(|step| {
                let mut values: Vec<usize> = step.inputs().iter().map(|v| v.0).collect();
                values.sort_unstable();
                values.dedup();
                values
            })
            .collect();
        let mut readers = vec![Vec::new(); steps.len() + 1];
        for (i, values) in reads.iter().enumerate() {
            for &v in values {
                readers[v].push(i);
            }
        }
        // Step i writes value i + 1; every reader of it comes later in the list.
        let mut ahead = vec![1; steps.len()];
        for i in (0..steps.len()).rev() {
            ahead[i] += readers[i + 1].iter().map(|&r| ahead[r]).max().unwrap_or(0);
        }
        Self {
            reads,
            readers,
            ahead,
        }
    }

    /// The steps that read `value`, in the graph's order.
    pub(super) fn readers(&self, value: usize) -> &[usize] {
        &self.readers[value]
    }
}

/// The state of one concurrent run.
struct Run<'g> {
    graph: &'g Graph,
    /// Every value, held while a step still has to read it (the output until the end).
    values: Vec<Mutex<Option<Arc<Activation>>>>,
    /// For each step, how many of the values it reads are still to be written.
    unwritten: Vec<AtomicUsize>,
    /// For each value, how many of its readers have not finished.
    unread: Vec<AtomicUsize>,
    /// Steps ready or running: the run is over when none is left.
    pending: AtomicUsize,
    /// The failed step with the lowest index and its error: the one a sequential run, which
    /// stops at its first failure, reports.
    failure: Mutex<Option<(usize, String)>>,
}

impl Graph {
    /// [`Graph::run`]'s steps on `input`, those that do not wait for each other at once.
    pub(super) fn run_concurrently(
        &self,
        input: Activation,
    ) -> Result<(Vec<f32>, [usize; 4]), String> {
        let deps = &self.dependencies;
        let run = Run {
            graph: self,
            values: std::iter::once(Some(Arc::new(input)))
                .chain((0..self.steps.len()).map(|_| None))
                .map(Mutex::new)
                .collect(),
            unwritten: deps
                .reads
                .iter()
                .map(|values| AtomicUsize::new(values.iter().filter(|&&v| v != 0).count()))
                .collect(),
            unread: deps
                .readers
                .iter()
                .map(|steps| AtomicUsize::new(steps.len()))
                .collect(),
            pending: AtomicUsize::new(0),
            failure: Mutex::new(None),
        };
        let ready: Vec<usize> = (0..self.steps.len())
            .filter(|&i| run.unwritten[i].load(Ordering::Relaxed) == 0)
            .collect();
        run.pending.store(ready.len(), Ordering::Release);
        rayon::scope(|scope| {
            run.start(scope, ready);
            // Waiting for the scope's end, a thread of the pool falls asleep after a few idle
            // rounds, and would leave the steps' parallel parts to the other: this one takes
            // work until the last step is done, as the run's spinners do.
            take_work_while(|| run.pending.load(Ordering::Acquire) > 0);
        });
        if let Some((i, error)) = run.failure.into_inner().expect("no step panics holding it") {
            return Err(format!("step {i}: {error}"));
        }
        let out = run.values[self.output.0]
            .lock()
            .expect("no step panics holding it")
            .take()
            .expect("every step ran, the output is kept");
        // Every step's handle on it went with the scope.
        let out = Arc::into_inner(out).expect("the output's last holder");
        Ok((out.data, out.dims))
    }
}

impl<'g> Run<'g> {
    /// Runs the `ready` steps and, as each finishes, those it made ready: the one with the
    /// longest way ahead on this thread, the others handed to the pool (the longer first, for
    /// a thread that takes the oldest).
    fn start<'s>(&'s self, scope: &rayon::Scope<'s>, mut ready: Vec<usize>) {
        let ahead = &self.graph.dependencies.ahead;
        while !ready.is_empty() {
            ready.sort_by_key(|&i| ahead[i]);
            let next = ready.pop().expect("not empty");
            for i in ready.drain(..).rev() {
                scope.spawn(move |scope| self.start(scope, vec![i]));
            }
            // The step is no longer pending when it ends, also by a panic (the owner's wait
            // ends, the scope hands the panic on); the steps it made ready are.
            let _done = Done(&self.pending);
            ready = self.step(next);
            self.pending.fetch_add(ready.len(), Ordering::AcqRel);
        }
    }

    /// Runs step `i`; the steps that now have all their values.
    fn step(&self, i: usize) -> Vec<usize> {
        // After a failure only the steps before it can change the error reported.
        if self
            .failure
            .lock()
            .expect("no step panics holding it")
            .as_ref()
            .is_some_and(|(first, _)| *first < i)
        {
            return Vec::new();
        }
        let deps = &self.graph.dependencies;
        let held = |v: usize| {
            let value = self.values[v].lock().expect("no step panics holding it");
            (
                Value(v),
                value.clone().expect("written before its readers start"),
            )
        };
        let inputs: Vec<(Value, Arc<Activation>)> =
            deps.reads[i].iter().map(|&v| held(v)).collect();
        let result = run_step(&self.graph.steps[i], &Held(&inputs));
        drop(inputs);
        let out = match result {
            Ok(out) => out,
            Err(error) => {
                let mut failure = self.failure.lock().expect("no step panics holding it");
                if failure.as_ref().is_none_or(|(first, _)| i < *first) {
                    *failure = Some((i, error));
                }
                return Vec::new();
            }
        };
        for &v in &deps.reads[i] {
            if self.unread[v].fetch_sub(1, Ordering::AcqRel) == 1 && v != self.graph.output.0 {
                *self.values[v].lock().expect("no step panics holding it") = None;
            }
        }
        *self.values[i + 1]
            .lock()
            .expect("no step panics holding it") = Some(Arc::new(out));
        // AcqRel: the reader that counts the last value down sees every value written.
        deps.readers[i + 1]
            .iter()
            .copied()
            .filter(|&r| self.unwritten[r].fetch_sub(1, Ordering::AcqRel) == 1)
            .collect()
    }
}

/// Counts a step out of [`Run::pending`] when dropped.
struct Done<'a>(&'a AtomicUsize);

impl Drop for Done<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A step's values, held for it.
struct Held<'a>(&'a [(Value, Arc<Activation>)]);

impl Inputs for Held<'_> {
    fn value(&self, v: Value) -> &Activation {
        &self
            .0
            .iter()
            .find(|(held, _)| *held == v)
            .expect("a step is handed every value it reads")
            .1
    }
}
