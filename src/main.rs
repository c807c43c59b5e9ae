fn main() -> std::process::ExitCode {
    tame_malloc();
    sqlite_without_its_own_locks();
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

/// In its default (serialized) mode SQLite takes a lock of its own on every call into a
/// connection and on every allocation (for statistics nothing here reads). diesel never lets
/// two threads use one connection at once (`Send`, not `Sync`; a pool lends it to one), which
/// is all multi-thread mode asks, so those locks guard nothing.
fn sqlite_without_its_own_locks() {
    // SAFETY: sqlite3_config runs before any other thread exists and before SQLite is
    // initialized (no connection is open yet), when it may change these settings; each
    // option takes the arguments given (none, and one int).
    unsafe {
        libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MULTITHREAD);
        libsqlite3_sys::sqlite3_config(
            libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS,
            std::ffi::c_int::from(false),
        );
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
