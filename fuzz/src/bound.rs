//! An allocator that stops the process on any single allocation above a stated bound.
//!
//! libFuzzer's own `-malloc_limit_mb` needs a sanitizer runtime, which these builds leave out
//! (coverage only: ASan would rebuild every dependency), so the bound is enforced here: an
//! allocation sized from a hostile file aborts, and libFuzzer keeps the input as a crash.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest single allocation a target may make unless it sets another: 256 MiB, far above
/// what any input of `fuzz/run`'s `-max_len` can justify (the biggest legitimate growth is
/// deflate's 1032:1 on a 64 KiB input, 66 MB).
pub const DEFAULT_ALLOCATION_LIMIT: usize = 256 << 20;

static LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_ALLOCATION_LIMIT);

/// Sets the bound for this process (the image decoder's documented ceiling is higher).
pub fn set_allocation_limit(bytes: usize) {
    LIMIT.store(bytes, Ordering::Relaxed);
}

/// The global allocator of the fuzz binaries and of the replay test: the system's, with the
/// bound checked on every allocation.
pub struct Bounded;

fn check(size: usize) {
    if size > LIMIT.load(Ordering::Relaxed) {
        // No formatting: it could allocate inside the allocator.
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut n = size;
        loop {
            at -= 1;
            digits[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let mut err = std::io::stderr();
        let _ = err.write_all(b"reid-fuzz: an allocation of ");
        let _ = err.write_all(&digits[at..]);
        let _ = err.write_all(b" bytes is above the target's bound\n");
        std::process::abort();
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged, after a size check.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}
