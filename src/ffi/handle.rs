//! Opaque handles: boxed Rust values whose first word is a tag naming their type, so a handle
//! of the wrong type (or, while its memory is still mapped, a freed one) is refused instead
//! of being used.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::status::{Failure, Outcome, reid_status};

/// Tag written into a handle when it is freed.
const FREED: u64 = 0x4652_4545_4445_4144; // "FREEDEAD"

/// A C handle type: `#[repr(C)]` with a `u64` tag as its first field.
///
/// # Safety
/// Implementors must be `#[repr(C)]` and start with the `u64` field holding `TAG`.
pub(crate) unsafe trait Handle: Sized {
    /// The tag of live handles of this type.
    const TAG: u64;
    /// The type's C name, for messages.
    const NAME: &'static str;
}

/// Moves `value` to the heap and returns the pointer the caller owns.
pub(crate) fn into_raw<T: Handle>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Reads the tag of a non-NULL handle pointer.
///
/// # Safety
/// `ptr` must point to at least 8 readable bytes.
unsafe fn tag_of<T>(ptr: *const T) -> u64 {
    // SAFETY: the caller's contract; unaligned read because a foreign pointer may be anything.
    unsafe { ptr.cast::<u64>().read_unaligned() }
}

/// Borrows a live handle, refusing NULL and handles of another type.
///
/// # Safety
/// A non-NULL `ptr` must point to memory readable for 8 bytes; if its tag matches it must
/// be a live handle of type `T` that no other thread frees during the call.
pub(crate) unsafe fn borrow<'a, T: Handle>(ptr: *const T, what: &str) -> Outcome<&'a T> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-NULL; the caller's contract.
    let tag = unsafe { tag_of(ptr) };
    if tag != T::TAG {
        let detail = if tag == FREED {
            "it was already freed"
        } else {
            "it is another kind of object"
        };
        return Err(Failure::new(
            reid_status::REID_INVALID_HANDLE,
            format!("`{what}` is not a live {}: {detail}", T::NAME),
        ));
    }
    // SAFETY: tag checked; liveness is the caller's contract.
    Ok(unsafe { &*ptr })
}

/// Borrows a live handle mutably (single-owner types only).
///
/// # Safety
/// As for [`borrow`], and no other reference to the handle may exist during the call.
pub(crate) unsafe fn borrow_mut<'a, T: Handle>(ptr: *mut T, what: &str) -> Outcome<&'a mut T> {
    // SAFETY: forwarded contract.
    unsafe { borrow::<T>(ptr, what) }?;
    // SAFETY: checked above; exclusivity is the caller's contract.
    Ok(unsafe { &mut *ptr })
}

/// Frees a handle made by [`into_raw`]. NULL is a no-op; a pointer whose tag is not `T`'s is
/// left alone (freeing it would corrupt memory that is not ours). Never unwinds.
///
/// # Safety
/// A non-NULL `ptr` must be readable for 8 bytes and not in use by another thread.
pub(crate) unsafe fn free<T: Handle>(ptr: *mut T) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: non-NULL; the caller's contract.
    if unsafe { tag_of(ptr) } != T::TAG {
        log::error!("{}: refused to free a pointer that is not one", T::NAME);
        return;
    }
    // SAFETY: tag checked: made by `into_raw`. The tag is overwritten first so that a later
    // use of the dangling pointer is more likely to be caught.
    unsafe { ptr.cast::<u64>().write(FREED) };
    // SAFETY: as above. A panicking destructor must not unwind into C.
    let dropped = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(ptr) })));
    if dropped.is_err() {
        log::error!("{}: panic while freeing", T::NAME);
    }
}
