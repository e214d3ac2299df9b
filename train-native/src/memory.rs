//! Memory reuse for the CPU backend, which allocates a fresh buffer for nearly every tensor op.
//!
//! glibc serves large blocks with `mmap` and returns them with `munmap` on free, so without
//! reuse every op pays page faults, page zeroing and TLB shoot-downs across the worker threads
//! (measured on 2 cores, `bench --presets small`: half of the forward's time, a third of the
//! process's CPU time in the kernel). Two measures:
//! - [`keep_freed_memory`]: blocks up to 32 MiB (glibc's most) come from the heap, which is
//!   never trimmed;
//! - [`ReusingAllocator`]: larger blocks (a 512² feature map) are kept on free and handed out
//!   again to the next request of exactly the same size, which the network's repeated shapes
//!   make the common case; at most [`CACHE_BYTES`] are held.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;

/// Blocks at least this large are cached (glibc's heap takes the smaller ones).
const MIN_CACHED: usize = 32 << 20;
/// Most bytes held in freed blocks.
const CACHE_BYTES: usize = 2 << 30;
/// Most blocks held.
const SLOTS: usize = 48;

/// A freed block: address, size, alignment, and when it was freed.
#[derive(Clone, Copy)]
struct Block {
    address: usize,
    size: usize,
    align: usize,
    freed: u64,
}

/// Freed large blocks. A fixed array: the allocator cannot allocate for itself.
struct Cache {
    blocks: [Option<Block>; SLOTS],
    bytes: usize,
    frees: u64,
}

impl Cache {
    /// Takes the block freed longest ago out of the cache.
    fn take_oldest(&mut self) -> Option<Block> {
        let slot = (0..SLOTS).filter(|&i| self.blocks[i].is_some()).min_by_key(|&i| self.blocks[i].map(|b| b.freed))?;
        let block = self.blocks[slot].take()?;
        self.bytes -= block.size;
        Some(block)
    }
}

/// [`System`], with freed blocks of [`MIN_CACHED`] bytes and more kept for reuse.
pub struct ReusingAllocator {
    cache: Mutex<Cache>,
}

impl ReusingAllocator {
    pub const fn new() -> Self {
        Self { cache: Mutex::new(Cache { blocks: [None; SLOTS], bytes: 0, frees: 0 }) }
    }

    /// A cached block of exactly this layout, taken out of the cache.
    fn take(&self, layout: Layout) -> Option<*mut u8> {
        let mut cache = self.cache.lock().ok()?;
        let slot = cache
            .blocks
            .iter()
            .position(|b| b.is_some_and(|b| b.size == layout.size() && b.align == layout.align()))?;
        let block = cache.blocks[slot].take()?;
        cache.bytes -= block.size;
        Some(block.address as *mut u8)
    }

    /// Keeps a freed block, returning older ones to the system to stay within the limits;
    /// false when it cannot be kept.
    fn keep(&self, address: *mut u8, layout: Layout) -> bool {
        if layout.size() > CACHE_BYTES {
            return false;
        }
        let Ok(mut cache) = self.cache.lock() else { return false };
        while cache.bytes + layout.size() > CACHE_BYTES || cache.blocks.iter().all(Option::is_some) {
            let Some(oldest) = cache.take_oldest() else { break };
            // SAFETY: the block came from System with this layout and nothing uses it.
            unsafe {
                System.dealloc(oldest.address as *mut u8, Layout::from_size_align_unchecked(oldest.size, oldest.align))
            };
        }
        let freed = cache.frees;
        let Some(slot) = cache.blocks.iter_mut().find(|s| s.is_none()) else { return false };
        *slot = Some(Block { address: address as usize, size: layout.size(), align: layout.align(), freed });
        cache.frees += 1;
        cache.bytes += layout.size();
        true
    }
}

// SAFETY: every block handed out is either fresh from `System` or a block `System` allocated
// with the same layout that was freed to this allocator; a block leaves the cache before reuse.
unsafe impl GlobalAlloc for ReusingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= MIN_CACHED {
            if let Some(block) = self.take(layout) {
                return block;
            }
        }
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= MIN_CACHED {
            if let Some(block) = self.take(layout) {
                std::ptr::write_bytes(block, 0, layout.size());
                return block;
            }
        }
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= MIN_CACHED && self.keep(ptr, layout) {
            return;
        }
        System.dealloc(ptr, layout)
    }
}

/// glibc: blocks up to 32 MiB (its most) from the heap, and the heap never trimmed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn keep_freed_memory() {}
