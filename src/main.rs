//! The `herald` binary: parses the command line and hands over to [`herald::cli`].

fn main() -> std::process::ExitCode {
    return_large_blocks_to_the_os();
    herald::cli::main()
}

/// Each argon2 hash or verification (configured client secrets, at start and on a client's first
/// token request) borrows a 19 MiB block. glibc serves blocks this large by mmap at first, but
/// after freeing one it raises its mmap threshold to that size, so later blocks come from the
/// heap and stay in the process after they are freed: idle RSS grew by about 19 MiB per hash.
/// A fixed threshold keeps every block of 1 MiB or more on mmap, returned to the OS when freed.
/// (BENCHMARKS.md, "idle RSS".)
fn return_large_blocks_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
