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
//!
//! Fixing the mmap threshold also fixes the trim threshold at glibc's
//! 128 KiB: every time the top of the heap had that much free, glibc gave it
//! back, and the next batch faulted the same pages in again. Placing 15,000
//! emails of 20 KiB that was 2.7-3.0 s of system time in a 6-7 s run; with
//! the trim threshold at 32 MiB it is 1.2 s, and the rate rose from
//! 2,839-3,035 to 3,455-3,633 emails/s, for 25-30 MiB more peak memory
//! (docs/performance.md).

/// Fixes glibc's mmap threshold at 1 MiB and its trim threshold at 32 MiB
/// (no-op elsewhere).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(super) fn return_large_blocks_to_the_system() {
    const M_TRIM_THRESHOLD: i32 = -1;
    const M_MMAP_THRESHOLD: i32 = -3;
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: `mallopt` only tunes the allocator; glibc takes its own lock,
    // so it is safe while other threads allocate, and both arguments are
    // plain integers.
    let ok = unsafe { mallopt(M_MMAP_THRESHOLD, 1 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 32 << 20) == 1 };
    if !ok {
        tracing::debug!("glibc refused to fix its mmap or trim threshold; large records may inflate memory.");
    }
}

/// Fixes glibc's mmap and trim thresholds (no-op elsewhere).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn return_large_blocks_to_the_system() {}
