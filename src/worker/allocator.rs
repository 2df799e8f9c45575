//! Keeping big records from inflating the process's memory after they are
//! freed.
//!
//! glibc's malloc serves large blocks with `mmap` and returns them to the
//! system when freed, but each free of such a block raises the threshold to
//! that block's size (up to 32 MiB). After a few 5 MiB emails, later ones are
//! carved from the heap, whose freed space is kept and fragments: measured
//! with 200 emails of 5 MiB, peak RSS was 168-183 MiB with the dynamic
//! threshold and 100-116 MiB with it fixed at 1 MiB. Fixing it costs one
//! `mmap`/`munmap` pair per large buffer, which is small next to placing it.

/// Fixes glibc's mmap threshold at 1 MiB (no-op elsewhere).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn return_large_blocks_to_the_system() {
    const M_MMAP_THRESHOLD: i32 = -3;
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: `mallopt` only tunes the allocator; glibc takes its own lock,
    // so it is safe while other threads allocate, and both arguments are
    // plain integers.
    let ok = unsafe { mallopt(M_MMAP_THRESHOLD, 1 << 20) };
    if ok != 1 {
        tracing::debug!("glibc refused to fix its mmap threshold; large records may inflate memory.");
    }
}

/// Fixes glibc's mmap threshold at 1 MiB (no-op elsewhere).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn return_large_blocks_to_the_system() {}
