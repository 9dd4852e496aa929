//! The `haft` binary's allocator: small blocks from mimalloc, large ones from
//! the system's allocator.
//!
//! A node allocates and frees a few small blocks per key of every transaction
//! (a key and value decoded, a lock-table entry, a map node); glibc's malloc
//! and free were about a quarter of a participant's event loop under
//! redis-benchmark MSET, and mimalloc served MSET 18–25% faster
//! (verification/REPORT.md, "Redis protocol"). But mimalloc alone made 16 MiB
//! messages lose fragments: it hands out fresh pages for the large buffers
//! of such a message (each datagram, the reassembled message, its decoded
//! value), the kernel zeroes them page by page, and the receiving threads
//! fall behind a burst of fragments until the socket buffer overflows. glibc
//! reuses that memory. So each allocation goes by its size: below
//! [`LARGE`] to mimalloc, from [`LARGE`] on to the system, and a block that
//! grows or shrinks across the line moves.
//!
//! The only unsafe code in haft: `GlobalAlloc` is an unsafe trait, and the
//! two allocators it forwards to are reached through it.

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// The size from which a block comes from the system's allocator.
pub const LARGE: usize = 16 << 10;

/// See the module doc.
pub struct SplitAllocator;

fn is_large(size: usize) -> bool {
    size >= LARGE
}

/// The allocator of blocks of `size` bytes.
fn allocator(size: usize) -> &'static dyn GlobalAlloc {
    if is_large(size) { &System } else { &MiMalloc }
}

// SAFETY: every block is allocated and freed by the same allocator, chosen by
// its size, which `Layout` gives to both calls; `realloc` across the line
// allocates in the other allocator, copies the smaller of the two sizes and
// frees the old block with the allocator that made it. Both allocators meet
// `GlobalAlloc`'s contract for the layouts they are given.
unsafe impl GlobalAlloc for SplitAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees (a non-zero size).
        unsafe { allocator(layout.size()).alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        unsafe { allocator(layout.size()).alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated with `layout`, so by the allocator its
        // size chooses.
        unsafe { allocator(layout.size()).dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees that `ptr` was allocated with
        // `layout` and that `new_size`, rounded up to the alignment, fits in
        // an `isize`, so the new layout is valid.
        unsafe {
            if is_large(layout.size()) == is_large(new_size) {
                return allocator(new_size).realloc(ptr, layout, new_size);
            }
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new_ptr = self.alloc(new_layout);
            if !new_ptr.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new_ptr
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LARGE;

    /// The binary's tests run on this allocator too: a block that grows from
    /// small to large and shrinks back moves between the two allocators and
    /// keeps its bytes each time.
    #[test]
    fn a_block_keeps_its_bytes_when_it_grows_and_shrinks_across_the_line() {
        let pattern = |i: usize| (i % 251) as u8;
        let mut block: Vec<u8> = (0..LARGE / 2).map(pattern).collect();
        block.reserve_exact(LARGE * 4);
        assert!(block.capacity() >= LARGE * 4);
        assert!(block.iter().enumerate().all(|(i, b)| *b == pattern(i)));
        block.extend((LARGE / 2..LARGE * 3).map(pattern));
        block.truncate(100);
        block.shrink_to_fit();
        assert!(block.capacity() < LARGE);
        assert!(block.iter().enumerate().all(|(i, b)| *b == pattern(i)));
        let zeroed = vec![0u8; LARGE * 2];
        assert!(zeroed.iter().all(|b| *b == 0));
    }
}
