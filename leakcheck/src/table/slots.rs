//! Slot arrays: zeroed allocations (all records empty), optionally with
//! their pages faulted in ahead of use.

use super::Record;

/// The empty record.
#[inline]
pub(super) fn empty<R: Record>() -> R {
    // SAFETY: `Record` guarantees that all-zero bytes are a valid (empty) `R`.
    unsafe { std::mem::zeroed() }
}

/// A zeroed (all-empty) array of `n` records. Large arrays come straight
/// from `mmap` as zero pages, so untouched slots cost no memory.
pub(super) fn empty_slots<R: Record>(n: usize) -> Box<[R]> {
    use std::alloc::{alloc_zeroed, handle_alloc_error, Layout};
    if n == 0 || size_of::<R>() == 0 {
        return (0..n).map(|_| empty()).collect();
    }
    let layout = Layout::array::<R>(n).expect("table size overflows");
    // SAFETY: `layout` has a non-zero size. The memory is zeroed, which
    // `Record` guarantees is a valid (empty) `R`, and was allocated by the
    // global allocator with `R`'s array layout, as `Box<[R]>` frees it.
    unsafe {
        let p = alloc_zeroed(layout).cast::<R>();
        if p.is_null() {
            handle_alloc_error(layout);
        }
        Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, n))
    }
}

/// Like [`empty_slots`], with every page written once, so that filling the
/// array later causes no page faults.
pub(super) fn faulted_slots<R: Record>(n: usize) -> Box<[R]> {
    let mut slots = empty_slots::<R>(n);
    let per_page = (4096 / size_of::<R>().max(1)).max(1);
    for i in (0..slots.len()).step_by(per_page) {
        // SAFETY: `i` is in bounds. Volatile, so the store of what the
        // zeroed allocation already holds is not optimized away.
        unsafe { std::ptr::write_volatile(&mut slots[i], empty()) };
    }
    slots
}
