//! A global allocator over a fixed static buffer: allocation bumps an offset and freeing
//! does nothing. Enough for loading one small model once, and no heap is involved: the
//! buffer is the program's own zero-initialized data.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of the arena: the bundled model's repacked weights with room to spare.
const ARENA_BYTES: usize = 4 << 20;

struct Arena {
    memory: UnsafeCell<[u8; ARENA_BYTES]>,
    used: AtomicUsize,
}

// SAFETY: the bytes are only handed out through `alloc`, whose compare-and-swap on `used`
// gives every allocation a range no other allocation overlaps.
unsafe impl Sync for Arena {}

#[global_allocator]
static ARENA: Arena = Arena {
    memory: UnsafeCell::new([0; ARENA_BYTES]),
    used: AtomicUsize::new(0),
};

// SAFETY: `alloc` returns null or a range of `layout.size()` bytes aligned to
// `layout.align()` within the arena, never handed out before; `dealloc` never reuses memory.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.memory.get().cast::<u8>() as usize;
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let start = (base + used).next_multiple_of(layout.align()) - base;
            let Some(end) = start.checked_add(layout.size()) else {
                return core::ptr::null_mut();
            };
            if end > ARENA_BYTES {
                return core::ptr::null_mut();
            }
            match self
                .used
                .compare_exchange_weak(used, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                // SAFETY: `start + size <= ARENA_BYTES`: the range lies within the arena.
                Ok(_) => return unsafe { self.memory.get().cast::<u8>().add(start) },
                Err(now) => used = now,
            }
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}
