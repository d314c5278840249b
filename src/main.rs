//! The `herald` binary: parses the command line and hands over to [`herald::cli`].

fn main() -> std::process::ExitCode {
    tune_the_allocator();
    herald::cli::main()
}

/// glibc's allocator, set before any thread starts (BENCHMARKS.md, "idle RSS" and "RSS after
/// 100,000 logins"):
/// - Each argon2 hash or verification (configured client secrets, at start and on a client's
///   first token request) borrows a 19 MiB block. glibc serves blocks this large by mmap at
///   first, but after freeing one it raises its mmap threshold to that size, so later blocks come
///   from the heap and stay in the process after they are freed: idle RSS grew by about 19 MiB
///   per hash. A fixed threshold keeps every block of 1 MiB or more on mmap, returned to the OS
///   when freed.
/// - glibc gives threads up to eight arenas per core, and memory freed into one arena is not
///   reused by threads allocating from another: with the SQLite connections' worker threads,
///   tokio's workers and its blocking pool, RSS after 30,000 logins grew by 13.7 MB. Two arenas
///   on two cores grew it by 10.7 MB, with Herald's CPU per login within the runs' noise. So one
///   arena per core Herald may run on (tokio has one worker per core), and at least two;
///   `MALLOC_ARENA_MAX`, when set, wins.
fn tune_the_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let arenas = std::env::var_os("MALLOC_ARENA_MAX")
            .is_none()
            .then(|| std::thread::available_parallelism().map_or(2, |n| n.get().max(2)))
            .and_then(|n| libc::c_int::try_from(n).ok());
        // SAFETY: mallopt only changes allocator parameters; it is called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
            if let Some(arenas) = arenas {
                libc::mallopt(libc::M_ARENA_MAX, arenas);
            }
        }
    }
}
