//! Output buffers zeroed part by part inside the tasks that fill them.
//!
//! A buffer zeroed when it is allocated costs a pass over memory on the calling thread (the
//! allocator's `memset`: 8 % of a training step) before the parallel kernel writes it again;
//! zeroed by each task just before its own writes, the part is then already in that core's
//! cache. Burn takes the finished buffer as a `Vec<f32>`.

use std::mem::{ManuallyDrop, MaybeUninit};

use rayon::prelude::*;

/// Outputs smaller than this many floats are written on the calling thread even when the
/// caller allows the pool: waking the pool's threads and putting them back to sleep costs tens
/// of microseconds, more than such a part of a layer takes (a third of a batch-1 forward of
/// osnet_x0_25 went to the scheduler before this rule).
pub(crate) const PARALLEL_MIN_LEN: usize = 1 << 15;

/// Fewest floats one task of the pool writes, for the same reason.
const TASK_MIN_LEN: usize = 1 << 13;

/// A buffer of `len` floats cut into parts of `part` floats (the last may be shorter): `fill`
/// gets each part's index and the part, zeroed, on the rayon pool (at least `min_parts` parts
/// per task) when `parallel` and the buffer is large enough to pay for it, else in order on
/// this thread.
pub(crate) fn filled_in_parts(
    len: usize,
    part: usize,
    parallel: bool,
    min_parts: usize,
    fill: impl Fn(usize, &mut [f32]) + Sync,
) -> Vec<f32> {
    written_in_parts(len, part, parallel, min_parts, |index, part| {
        let part = zeroed(part);
        fill(index, part);
        part
    })
}

/// As [`filled_in_parts`] for kernels that write every element: `write` gets each part
/// uninitialized and returns it initialized, the same memory (checked), as [`zeroed`] or
/// [`crate::matrix::matmul_uninit`] return it; no zeroing pass.
pub(crate) fn written_in_parts<F>(
    len: usize,
    part: usize,
    parallel: bool,
    min_parts: usize,
    write: F,
) -> Vec<f32>
where
    F: for<'a> Fn(usize, &'a mut [MaybeUninit<f32>]) -> &'a mut [f32] + Sync,
{
    let mut out: Vec<MaybeUninit<f32>> = Vec::with_capacity(len);
    // SAFETY: `MaybeUninit` elements need no initialization.
    unsafe { out.set_len(len) };
    let run = |(index, part): (usize, &mut [MaybeUninit<f32>])| {
        let (start, count) = (part.as_ptr() as usize, part.len());
        let written = write(index, part);
        // Only initialized memory can be had as `&mut [f32]` without unsafe code: the same
        // address and length are the proof that the whole part was written.
        assert!(
            written.as_ptr() as usize == start && written.len() == count,
            "a kernel returned other memory than its output part"
        );
    };
    let part = part.max(1);
    if parallel && len >= PARALLEL_MIN_LEN {
        out.par_chunks_mut(part)
            .with_min_len(min_parts.max(TASK_MIN_LEN.div_ceil(part)).max(1))
            .enumerate()
            .for_each(run);
    } else {
        out.chunks_mut(part).enumerate().for_each(run);
    }
    let mut out = ManuallyDrop::new(out);
    // SAFETY: the parts cover the buffer and each came back initialized (checked above), so all
    // `len` elements are initialized `f32`s; pointer, length and capacity come from a `Vec` of the
    // same element size and alignment, which is not dropped.
    unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<f32>(), out.len(), out.capacity()) }
}

/// `part`, every element set to zero.
pub(crate) fn zeroed(part: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    part.fill(MaybeUninit::new(0.0));
    // SAFETY: every element was just written.
    unsafe { assume_written(part) }
}

/// `part` as initialized floats.
///
/// # Safety
/// Every element of `part` has been written.
pub(crate) unsafe fn assume_written(part: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout; the elements are initialized (the
    // caller's contract).
    unsafe { &mut *(part as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// A raw output pointer shared by parallel tasks that write disjoint elements of one buffer
/// (each user says which).
#[derive(Clone, Copy)]
pub(crate) struct SharedOut(pub *mut f32);
// SAFETY: the tasks sharing it write disjoint elements (at each use).
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

impl SharedOut {
    /// The element `offset` places past the start (a closure calling this captures the whole
    /// wrapper, not its bare pointer field, which is not `Sync`).
    pub fn at(self, offset: usize) -> *mut f32 {
        self.0.wrapping_add(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_is_zeroed_and_filled_once() {
        // Small and large enough for the pool, in order and on the pool.
        for len in [10, PARALLEL_MIN_LEN + 10] {
            for parallel in [false, true] {
                let out = filled_in_parts(len, 4, parallel, 1, |index, part| {
                    assert!(part.iter().all(|&v| v == 0.0));
                    for (j, v) in part.iter_mut().enumerate() {
                        *v = (index * 4 + j) as f32;
                    }
                });
                assert_eq!(out, (0..len).map(|v| v as f32).collect::<Vec<_>>());
            }
        }
        assert!(filled_in_parts(0, 4, true, 1, |_, _| unreachable!()).is_empty());
    }

    #[test]
    #[should_panic(expected = "other memory")]
    fn a_part_returned_unwritten_is_refused() {
        // Initialized memory of the right length, but not the part.
        written_in_parts(4, 4, false, 1, |_, _| vec![0.0f32; 4].leak());
    }
}
