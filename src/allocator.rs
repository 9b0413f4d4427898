//! A global allocator for reid's programs that keeps freed large blocks for reuse.
//!
//! Training and the Burn engine allocate a fresh buffer for every activation and gradient, most
//! of them megabytes, and free them a moment later. The system allocator hands such blocks back
//! to the kernel (`munmap`) and asks for new ones (`mmap`): every page of every activation is
//! then faulted in and zeroed again on each step, and on a virtual machine each return also
//! flushes the TLB of every core. Measured on 2 cores: 42 % of an osnet_x1_0 training step went
//! to the kernel zeroing pages, and a third of the Burn engine's time to TLB flushes.
//! [`ReusingAllocator`] keeps blocks of 128 KiB and more in size classes (four per power of two)
//! and gives them out again, as PyTorch's and ONNX Runtime's allocators do with their arenas.
//!
//! The library never installs it: a global allocator belongs to the program. The `reid` command
//! line and the benches declare it; a Rust host can do the same:
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOCATOR: reid::allocator::ReusingAllocator = reid::allocator::ReusingAllocator::new(reid::allocator::DEFAULT_CAPACITY);
//! # fn main() {}
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;
use std::sync::Mutex;

/// Smallest block kept: glibc's own (initial) threshold for giving blocks back with `munmap`.
const MIN_LOG2: u32 = 17;
/// Size classes per power of two: a block is at most 25 % larger than the request (untouched
/// pages of it cost no memory).
const STEPS_LOG2: u32 = 2;
/// Classes up to 2^48 bytes.
const CLASSES: usize = ((48 - MIN_LOG2) << STEPS_LOG2) as usize;
/// Free blocks kept per class.
const PER_CLASS: usize = 16;
/// What the `reid` command line and the benches keep: 8 GiB of freed blocks. No more than a
/// step's own peak is freed at once, so this bounds only blocks of sizes no longer asked for.
pub const DEFAULT_CAPACITY: usize = 8 << 30;
/// Alignment of every kept block; requests asking for more bypass the cache.
const BLOCK_ALIGN: usize = 64;

/// The size class of a request of `size` bytes: its index and the size of its blocks. `None`
/// below 128 KiB or beyond the last class.
fn class_of(size: usize) -> Option<(usize, usize)> {
    if size < 1 << MIN_LOG2 {
        return None;
    }
    let step = 1usize << (size.ilog2() - STEPS_LOG2);
    let rounded = size.checked_add(step - 1)? & !(step - 1);
    let log2 = rounded.ilog2();
    let sub = (rounded >> (log2 - STEPS_LOG2)) & ((1 << STEPS_LOG2) - 1);
    let index = (((log2 - MIN_LOG2) << STEPS_LOG2) as usize) + sub;
    (index < CLASSES).then_some((index, rounded))
}

struct Cache {
    blocks: [[*mut u8; PER_CLASS]; CLASSES],
    counts: [usize; CLASSES],
    bytes: usize,
}

// SAFETY: the pointers are free blocks owned by the cache alone; moving them between threads
// moves that ownership.
unsafe impl Send for Cache {}

/// A [`GlobalAlloc`] over the system allocator that keeps up to a set number of bytes of freed
/// blocks of 128 KiB and more, and reuses them for requests of the same size class.
pub struct ReusingAllocator {
    capacity: usize,
    cache: Mutex<Cache>,
}

impl ReusingAllocator {
    /// An allocator that keeps at most `capacity` bytes of freed blocks.
    pub const fn new(capacity: usize) -> Self {
        Self {
            capacity,
            cache: Mutex::new(Cache {
                blocks: [[ptr::null_mut(); PER_CLASS]; CLASSES],
                counts: [0; CLASSES],
                bytes: 0,
            }),
        }
    }

    /// Bytes of freed blocks held now.
    pub fn cached_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // Nothing panics while the lock is held; a poisoned lock still holds a consistent cache.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The class of `layout` when the cache serves it.
    fn class(layout: Layout) -> Option<(usize, usize)> {
        if layout.align() > BLOCK_ALIGN {
            return None;
        }
        class_of(layout.size())
    }

    fn take(&self, index: usize, block_size: usize) -> *mut u8 {
        let mut cache = self.lock();
        match cache.counts[index] {
            0 => ptr::null_mut(),
            n => {
                cache.counts[index] = n - 1;
                cache.bytes -= block_size;
                cache.blocks[index][n - 1]
            }
        }
    }

    /// Keeps `block`; false when the class or the cache is full.
    fn keep(&self, index: usize, block_size: usize, block: *mut u8) -> bool {
        let mut cache = self.lock();
        let n = cache.counts[index];
        if n == PER_CLASS || cache.bytes + block_size > self.capacity {
            return false;
        }
        cache.blocks[index][n] = block;
        cache.counts[index] = n + 1;
        cache.bytes += block_size;
        true
    }

    fn block_layout(block_size: usize) -> Layout {
        // A class size is a multiple of its step, which for every class is at least 32 KiB.
        Layout::from_size_align(block_size, BLOCK_ALIGN).expect("class sizes fit a layout")
    }
}

// SAFETY: every block handed out is either the system allocator's block for the request's own
// layout or a block of at least the request's size and alignment (a class block, allocated with
// `block_layout` and returned to the system with the same layout); a block is held by the
// cache or by one caller, never both.
unsafe impl GlobalAlloc for ReusingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match Self::class(layout) {
            None => unsafe { System.alloc(layout) },
            Some((index, block_size)) => {
                let block = self.take(index, block_size);
                if block.is_null() {
                    unsafe { System.alloc(Self::block_layout(block_size)) }
                } else {
                    block
                }
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match Self::class(layout) {
            None => unsafe { System.alloc_zeroed(layout) },
            Some((index, block_size)) => {
                let block = self.take(index, block_size);
                if block.is_null() {
                    unsafe { System.alloc_zeroed(Self::block_layout(block_size)) }
                } else {
                    unsafe { block.write_bytes(0, layout.size()) };
                    block
                }
            }
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        match Self::class(layout) {
            None => unsafe { System.dealloc(block, layout) },
            Some((index, block_size)) => {
                if !self.keep(index, block_size, block) {
                    unsafe { System.dealloc(block, Self::block_layout(block_size)) }
                }
            }
        }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_class = Self::class(layout);
        let new_layout = match Layout::from_size_align(new_size, layout.align()) {
            Ok(l) => l,
            Err(_) => return ptr::null_mut(),
        };
        let new_class = Self::class(new_layout);
        match (old_class, new_class) {
            (None, None) => unsafe { System.realloc(block, layout, new_size) },
            // The block already has room for the new size.
            (Some((old, _)), Some((new, _))) if old == new => block,
            _ => {
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_by_at_most_a_quarter() {
        assert_eq!(class_of((1 << 17) - 1), None);
        assert_eq!(class_of(1 << 17), Some((0, 1 << 17)));
        assert_eq!(class_of((1 << 17) + 1), Some((1, (1 << 17) + (1 << 15))));
        assert_eq!(class_of((1 << 18) - 1), Some((4, 1 << 18)));
        assert_eq!(class_of(3 << 20), Some((((21 - 17) << 2) + 2, 3 << 20)));
        assert_eq!(class_of(usize::MAX), None);
        let mut last = 0;
        for size in (1usize << 17..1 << 30).step_by(4093) {
            let (index, block) = class_of(size).unwrap();
            assert!(
                block >= size && block - size <= size / 4,
                "{size} → {block}"
            );
            assert!(index >= last && index < CLASSES);
            last = index;
        }
    }

    #[test]
    fn a_freed_block_is_reused_zeroed_and_grown_in_place() {
        let allocator = ReusingAllocator::new(1 << 30);
        let size = (1 << 20) + 1;
        let layout = Layout::from_size_align(size, 4).unwrap();
        unsafe {
            let a = allocator.alloc(layout);
            a.write_bytes(7, size);
            allocator.dealloc(a, layout);
            assert_eq!(allocator.cached_bytes(), 5 << 18);
            let b = allocator.alloc_zeroed(layout);
            assert_eq!(a, b, "the freed block is given out again");
            assert_eq!(allocator.cached_bytes(), 0);
            assert!(std::slice::from_raw_parts(b, size).iter().all(|&v| v == 0));
            // Within the class (up to 1.25 MiB) the block grows where it is.
            b.write_bytes(3, size);
            let c = allocator.realloc(b, layout, (1 << 20) + 1000);
            assert_eq!(b, c);
            // Past it the contents move.
            let grown = Layout::from_size_align((1 << 20) + 1000, 4).unwrap();
            let d = allocator.realloc(c, grown, 2 << 20);
            assert!(std::slice::from_raw_parts(d, size).iter().all(|&v| v == 3));
            allocator.dealloc(d, Layout::from_size_align(2 << 20, 4).unwrap());
            // `c`'s block went back into the cache when it moved.
            assert_eq!(allocator.cached_bytes(), (5 << 18) + (2 << 20));
        }
    }

    #[test]
    fn the_capacity_bounds_what_is_kept() {
        let allocator = ReusingAllocator::new(3 << 20);
        let layout = Layout::from_size_align(1 << 20, 8).unwrap();
        unsafe {
            let blocks: Vec<*mut u8> = (0..5).map(|_| allocator.alloc(layout)).collect();
            for &b in &blocks {
                allocator.dealloc(b, layout);
            }
        }
        assert_eq!(allocator.cached_bytes(), 3 << 20);
        // Over-aligned and small requests pass through.
        assert_eq!(
            ReusingAllocator::class(Layout::from_size_align(1 << 20, 4096).unwrap()),
            None
        );
        assert_eq!(ReusingAllocator::class(Layout::new::<[u8; 1000]>()), None);
    }
}
