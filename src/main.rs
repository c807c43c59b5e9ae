fn main() -> std::process::ExitCode {
    tame_malloc();
    system_roots_for_libpq();
    crossprov::cli::run()
}

/// libpq's OpenSSL is compiled in, and by itself would look for the system's CA roots
/// (`sslrootcert=system`) under its build prefix, where no distribution keeps them:
/// `SSL_CERT_FILE` and `SSL_CERT_DIR` name the ones found on this machine, unless set already.
fn system_roots_for_libpq() {
    // SAFETY: sets environment variables before any other thread exists.
    unsafe {
        openssl_probe::try_init_openssl_env_vars();
    }
}

/// Each login hashes its password with argon2 in ~19 MiB. After the first such block is
/// freed, glibc raises its mmap threshold above that size, so later blocks come from the
/// per-thread heaps and stay resident: one per blocking thread that ever hashed. A fixed
/// threshold keeps large blocks mmapped, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tame_malloc() {
    // SAFETY: mallopt only sets an allocator parameter; this runs before any other thread.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tame_malloc() {}
