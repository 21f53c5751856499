//! Process-wide settings for training speed.

/// Keeps freed tensor memory in the process instead of returning it to the OS.
///
/// glibc serves allocations above its mmap threshold (128 KiB, adjusting up to 32 MiB) with fresh
/// mappings and unmaps them on free, and trims the heap top above 128 KiB. A training step frees
/// and reallocates the same activation and gradient buffers thousands of times, so every one
/// page-faults anew. Measured on Baseline-H's PGD-10 (2 threads): 10 eval forward + input
/// gradient passes took ~515 ms with the defaults and ~450 ms with these settings, as from
/// Python. Costs: freed memory stays resident up to the peak.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // of ours allocates, and both values are within glibc's accepted ranges.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// Flushes subnormal floats to zero (FTZ) and reads them as zero (DAZ) on x86-64, as
/// `torch.set_flush_denormal(True)` does.
///
/// Softmax-like gradients (the DV and InfoNCE bounds over thousands of critic scores) are
/// mostly exp(u − max) of widely spread scores, and many land below 1.2e-38 in f32. x86 cores
/// handle those subnormals in microcode, 10–100× slower: measured, the backward pass from the DV
/// estimate through the critic's score product took ~195 ms instead of ~40 ms. Values that
/// small change no sum they enter. New threads inherit the calling thread's setting (POSIX), so
/// this runs before libtorch starts its worker threads.
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads and writes this thread's MXCSR, setting only the FTZ (bit 15) and DAZ
    // (bit 6) flags, which every x86-64 CPU supports.
    unsafe {
        let mut csr: u32 = 0;
        std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
        csr |= (1 << 15) | (1 << 6);
        std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly));
    }
}

/// Both process-wide settings; call first thing in a program that trains with wcmi.
pub fn configure() {
    keep_freed_memory();
    flush_denormals();
}
