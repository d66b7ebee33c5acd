//! The C allocator's settings for pruned models on CPU backends.
//!
//! Burn's CPU backends allocate every intermediate tensor (and a convolution's im2col and
//! layout buffers) anew in each forward pass. glibc's `malloc` serves blocks above a
//! threshold (128 KiB at first, then moving with the sizes freed) with fresh `mmap`s and gives
//! freed memory at the top of its heaps back to the system, so such blocks arrive as new,
//! zeroed pages and every first touch of a page is a fault. A dense network repeats a few
//! tensor sizes and the threshold soon covers them; a pruned network has many sizes and keeps
//! paying: measured on flex (2026-12-03, ResNet-56, batch 32, docs/performance.md), pruned
//! models' forward passes took 1.07-1.42x the sum of their layers timed alone, and
//! 1.06-1.16x with freed memory kept.
//!
//! [`keep_freed_memory`] turns both off for the process. Call it first thing in `main` (the
//! `xprune` command does); a program that sets `GLIBC_TUNABLES` itself is left alone, and
//! on systems other than Linux with glibc it does nothing.

/// The mmap threshold set: blocks below it come from the heap.
pub const MMAP_THRESHOLD: i32 = 32 << 20;
/// The trim threshold set: free memory at the top of a heap is kept up to this much.
pub const TRIM_THRESHOLD: i32 = 1 << 30;

/// Keeps freed memory in the process (see the module documentation): blocks below
/// [`MMAP_THRESHOLD`] come from `malloc`'s heaps and up to [`TRIM_THRESHOLD`] of free memory
/// stays there. Returns whether the settings were changed: `false` where `GLIBC_TUNABLES` is
/// set or the C library is not glibc. The cost is memory: the process keeps its peak heap.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::c_int;
        if std::env::var_os("GLIBC_TUNABLES").is_some() {
            return false;
        }
        unsafe extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        // glibc's <malloc.h>.
        const M_TRIM_THRESHOLD: c_int = -1;
        const M_MMAP_THRESHOLD: c_int = -3;
        // SAFETY: mallopt only sets allocator parameters (it takes malloc's own lock); any
        // value is valid, and glibc rejects an mmap threshold above its maximum by returning 0.
        unsafe {
            mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_takes_the_settings() {
        // A test process may set GLIBC_TUNABLES; then the settings are left alone.
        let applied = super::keep_freed_memory();
        let glibc = cfg!(all(target_os = "linux", target_env = "gnu"));
        assert_eq!(
            applied,
            glibc && std::env::var_os("GLIBC_TUNABLES").is_none()
        );
    }
}
