//! A private PostgreSQL cluster a test starts and stops itself, for what the shared server at
//! `CROSSPROV_TEST_PG_URL` cannot be made to do (TLS only, its own certificates and rules).
//! Built with the server binaries under `/usr/lib/postgresql/*/bin`; run as the `postgres`
//! user when the tests run as root, since `initdb` refuses root.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster, stopped (`pg_ctl stop -m immediate`) when dropped, even by a failing
/// test; its files go with its temporary directory.
pub struct PgCluster {
    pub port: u16,
    bin: PathBuf,
    data: PathBuf,
    log: PathBuf,
    /// Owns every file of the cluster; dropped after `drop` has stopped the server.
    dir: tempfile::TempDir,
}

/// What the cluster is started with: `postgresql.conf` lines, `pg_hba.conf`, files put beside
/// the data directory (certificates, keys: `../NAME` from `postgresql.conf`), and the
/// password of the superuser `postgres`.
pub struct ClusterSetup<'a> {
    pub conf: &'a [String],
    pub hba: &'a str,
    pub files: &'a [(&'a str, &'a str)],
    pub password: &'a str,
}

/// Why there is no cluster to test with: the server binaries are not installed.
fn server_bin() -> Result<PathBuf, String> {
    let mut bins: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("no /usr/lib/postgresql: {e}"))?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    bins.sort();
    bins.pop()
        .map(|(_, bin)| bin)
        .ok_or_else(|| "no initdb under /usr/lib/postgresql/*/bin".into())
}

/// The tests running as root hand the cluster to the `postgres` user.
fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

impl PgCluster {
    /// Initialises and starts a cluster on a free port, or None (said once, past the output
    /// capture) when the server binaries are missing and PostgreSQL is not required.
    pub fn start(setup: &ClusterSetup<'_>) -> Option<Self> {
        let bin = match server_bin() {
            Ok(bin) => bin,
            Err(why) if crate::helpers::pg_required() => {
                panic!("PostgreSQL is required (CROSSPROV_TEST_PG_REQUIRED) but {why}")
            }
            Err(why) => {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "\nSKIPPED: a test needing its own PostgreSQL cluster ({why})\n"
                );
                return None;
            }
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let password = ("password", setup.password);
        for (name, text) in setup.files.iter().chain([&password]) {
            std::fs::write(dir.path().join(name), text).expect("cluster file");
        }
        if as_root() {
            // The server reads its files as `postgres`; it refuses a private key others can read.
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()));
        }
        for (name, _) in setup.files.iter().chain([&password]) {
            set_mode(&dir.path().join(name), 0o600);
        }
        let cluster = Self {
            port: crate::helpers::free_port(),
            bin,
            log: dir.path().join("server.log"),
            data,
            dir,
        };
        run(cluster
            .command("initdb")
            .args([
                "--username=postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .arg("--no-sync")
            .arg(format!("--pwfile={}", cluster.file("password").display()))
            .arg("-D")
            .arg(&cluster.data));
        let mut conf = vec![
            format!("port = {}", cluster.port),
            "listen_addresses = 'localhost'".to_owned(),
            // Its own socket directory: the machine's cluster keeps /var/run/postgresql.
            format!(
                "unix_socket_directories = '{}'",
                cluster.dir.path().display()
            ),
            "fsync = off".to_owned(),
        ];
        conf.extend(setup.conf.iter().cloned());
        let conf_file = cluster.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf_file).expect("postgresql.conf");
        text.push_str(&format!("\n{}\n", conf.join("\n")));
        std::fs::write(&conf_file, text).expect("postgresql.conf");
        std::fs::write(cluster.data.join("pg_hba.conf"), setup.hba).expect("pg_hba.conf");
        let started = cluster
            .command("pg_ctl")
            .arg("-D")
            .arg(&cluster.data)
            .arg("-l")
            .arg(&cluster.log)
            .args(["-w", "-t", "60", "start"])
            .output()
            .expect("pg_ctl runs");
        assert!(
            started.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&started.stderr),
            cluster.log_text()
        );
        Some(cluster)
    }

    /// A file put beside the data directory (see `ClusterSetup::files`).
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's log, for a failure message.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A server program, run as `postgres` when the tests run as root.
    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[track_caller]
fn run(command: &mut Command) -> Output {
    let out = command.output().expect("command runs");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
