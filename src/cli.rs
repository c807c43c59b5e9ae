//! The command line: serve, migrate, users, hall-terminal tools, offline audit checks.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::audit::checkpoint::WitnessPolicy;
use crate::audit::note::VerifierKey;
use crate::config::{Overrides, Settings};
use crate::domain::text::Text;
use crate::offline::backup::RestoreError;
use crate::offline::evidence::verify_store;
use crate::service::users::{add_cli_user, NewUser};
use crate::signing::keys::{write_private, PrivateKey};
use crate::signing::Alg;
use crate::startup::Application;
use crate::storage::offline::OfflineDb;
use crate::storage::Store;
use crate::terminal::{add_evidence, parse_evidence_arg, ClientTls, EvidenceArg, Session};

#[derive(Debug, Parser)]
#[command(
    name = "crossprov",
    version,
    about = "跨省实名登记工单服务 — cross-province real-name registration",
    long_about = "跨省实名登记工单服务 — cross-province real-name registration work orders.\n\n\
        Settings: built-in defaults, then the file of --config (or CROSSPROV_CONFIG), then \
        CROSSPROV_<SECTION>__<KEY> environment variables, then flags; \
        `crossprov config check` shows where each value came from."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a command's settings come from: the commands that read settings take these.
#[derive(Debug, clap::Args)]
struct SettingsArgs {
    /// Settings file (TOML), layered over the built-in defaults and under CROSSPROV_*
    /// environment variables.
    #[arg(long, value_name = "FILE", env = "CROSSPROV_CONFIG")]
    config: Option<PathBuf>,
    /// The database: sqlite://PATH, a bare path, or postgres://USER@HOST/DB (default:
    /// database.url, else SQLite at data_dir/crossprov.db).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

/// The settings of `serve`, which `config check` checks as they are.
#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// HOST:PORT to listen on (default: server.listen, 127.0.0.1:8080).
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    #[command(flatten)]
    settings: SettingsArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (migrations are applied at start; SIGTERM stops it gracefully).
    Serve(ServeArgs),
    /// Apply pending migrations and exit.
    Migrate(SettingsArgs),
    /// Settings: show where each comes from, refuse contradictions.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Write a hall key pair (private.pem, public.pem) into a directory.
    Keygen {
        /// The signature algorithm the hall will register.
        #[arg(long, value_parser = ["ES256", "EdDSA"])]
        alg: String,
        /// The directory to write into (made when missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Print the compact JWS a hall terminal would submit for a verification result.
    SignResult {
        /// The hall's private key (PKCS#8 PEM).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The key id registered for the hall.
        #[arg(long)]
        kid: String,
        /// The result payload (JSON); `iat` and `jti` are filled in when absent.
        payload: PathBuf,
        /// An evidence file the result vouches for, as KIND=FILE (repeatable): its
        /// `{"kind", "sha256"}` is added to the payload's `evidence`.
        #[arg(long = "evidence", value_name = "KIND=FILE", value_parser = parse_evidence_arg)]
        evidence: Vec<EvidenceArg>,
    },
    /// Evidence files: upload from a hall terminal, or re-hash the whole store offline.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Witness of another organisation's audit log (C2SP tlog-witness).
    Witness {
        #[command(subcommand)]
        command: WitnessCommand,
    },
    /// Audit-trail tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Crypto-shredding of subscribers past the retention period.
    Retention {
        #[command(subcommand)]
        command: RetentionCommand,
    },
    /// Back up the embedded database while the service runs: a consistent copy, the evidence
    /// objects it names and a manifest signed with the service key, in one tar file; prints
    /// one JSON object with the backup's checkpoint (PostgreSQL: pg_dump, see
    /// docs/operations.md).
    Backup {
        /// The backup file to write (replaced only once the new one is whole).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Restore a backup into the place the settings name, which must hold no database yet;
    /// exit 1 (nothing written) when its manifest, files, audit chain or checkpoint do not
    /// verify, 2 when it cannot be tried.
    Restore {
        /// The backup file `crossprov backup` wrote.
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// GET a URL; exit 0 when it answers 2xx, 1 otherwise (a container's health check).
    Probe {
        /// The URL to ask.
        #[arg(default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 5)]
        timeout: u64,
        #[command(flatten)]
        tls: TlsArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Load the settings as `serve` would and print each with its value (secrets redacted)
    /// and where it came from; exit 1 with one line per contradiction `serve` would refuse.
    Check(ServeArgs),
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Re-wrap every data key (and the blind-index key) under a new KEK, in resumable batches;
    /// prints {"rewrapped", "remaining", "kek_id"}.
    RotateKek {
        /// The new KEK (64 hex digits). The old ones come from crypto.kek_file and
        /// crypto.previous_kek_files.
        #[arg(long, value_name = "FILE")]
        new_kek_file: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Make a new login-token signing key current; tokens signed by older keys keep working
    /// until they expire. Prints one JSON object.
    RotateTokenKey(SettingsArgs),
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Shred every subscriber whose orders all closed more than retention.days ago; prints
    /// {"shredded", "evidence_deleted", …}.
    Run(SettingsArgs),
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user directly in the database (how the first admin is made).
    Add {
        /// The login name.
        #[arg(long)]
        username: String,
        /// What the user may do.
        #[arg(long, value_parser = ["clerk", "hall_staff", "auditor", "admin"])]
        role: String,
        /// A clerk's home province (GB/T 2260 code, e.g. 53).
        #[arg(long)]
        province: Option<String>,
        /// Hall staff's hall (its id).
        #[arg(long)]
        hall_id: Option<String>,
        /// Where the user's notifications go; none without it.
        #[arg(long)]
        email: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        settings: SettingsArgs,
    },
}

#[derive(Debug, Subcommand)]
enum EvidenceCommand {
    /// Upload files to an order you claimed; prints the service's evidence objects.
    Upload {
        /// The service's base URL.
        #[arg(long, env = "CROSSPROV_URL", default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The work order's id.
        #[arg(long)]
        order: String,
        /// A bearer token from POST /api/v1/auth/token.
        #[arg(long, env = "CROSSPROV_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Log in as this user instead (password from standard input).
        #[arg(long, requires = "password_stdin")]
        username: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// The files, as KIND=FILE.
        #[arg(required = true, value_name = "KIND=FILE", value_parser = parse_evidence_arg)]
        files: Vec<EvidenceArg>,
        #[command(flatten)]
        tls: TlsArgs,
    },
    /// Re-hash every stored evidence file; exit 1 naming the first that does not match.
    Verify(SettingsArgs),
}

/// TLS options of the commands that talk to the service over HTTPS.
#[derive(Debug, clap::Args)]
struct TlsArgs {
    /// A PEM CA certificate (or bundle) to trust besides the system's roots: the CA of the
    /// service's certificate when it is a private one.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// The hall's PEM client certificate, for mutual TLS (hall staff must present it when the
    /// service sets tls.client_ca_pem). Needs --key.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The PEM private key of --cert (PKCS#8, RSA or EC).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
}

impl From<TlsArgs> for ClientTls {
    fn from(a: TlsArgs) -> Self {
        Self {
            cacert: a.cacert,
            cert: a.cert,
            key: a.key,
        }
    }
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Re-hash the whole chain offline and print one JSON object; exit 0 when intact, 1 when
    /// not, 2 when it could not be checked (settings, a database that cannot be reached).
    Verify {
        #[command(flatten)]
        settings: SettingsArgs,
        /// A checkpoint kept elsewhere that the log must still agree with: the compact JWS,
        /// the JSON `GET /api/v1/audit/checkpoint` answers, or a signed note
        /// (`GET /api/v1/audit/checkpoint/note`).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        #[command(flatten)]
        witnesses: WitnessArgs,
    },
    /// Print the inclusion proof of one event against a kept checkpoint, which must verify
    /// against the database: one JSON object (the event, its leaf hash, the path, the
    /// checkpoint) that `audit check-proof` verifies with no database; exit 1 when the
    /// checkpoint does not match the log.
    Prove {
        #[command(flatten)]
        settings: SettingsArgs,
        /// The event's seq.
        #[arg(long)]
        seq: i64,
        /// The kept checkpoint: a signed note, a compact JWS, or the JSON of
        /// `GET /api/v1/audit/checkpoint`.
        #[arg(long, value_name = "FILE")]
        checkpoint: PathBuf,
        #[command(flatten)]
        witnesses: WitnessArgs,
    },
    /// Verify a proof `audit prove` printed, with no database: the event hashes to its leaf,
    /// the path leads to the checkpoint's head, the checkpoint is signed by the service (and
    /// cosigned by a quorum of witnesses); exit 0 when it holds, 1 otherwise.
    CheckProof {
        /// The proof (JSON, as `audit prove` prints it).
        file: PathBuf,
        /// The service's JWK Set (`/.well-known/jwks.json`, saved when the checkpoint was
        /// taken): verifies JWS checkpoints, and notes signed by its Ed25519 keys.
        #[arg(long, value_name = "FILE")]
        jwks: Option<PathBuf>,
        /// The log's note vkey (`<origin>+<key ID>+<base64(0x01 || key)>`), repeatable.
        #[arg(long = "log-key", value_name = "VKEY")]
        log_key: Vec<String>,
        #[command(flatten)]
        witnesses: WitnessArgs,
    },
}

/// The witnesses whose cosignatures a checkpoint must carry.
#[derive(Debug, clap::Args)]
struct WitnessArgs {
    /// A witness's cosignature vkey (`<name>+<key ID>+<base64(0x04 || key)>`), repeatable.
    #[arg(long = "witness-key", value_name = "VKEY")]
    witness_key: Vec<String>,
    /// How many of the --witness-key witnesses must have cosigned the checkpoint (a signed
    /// note); `audit verify` without --checkpoint then checks the latest note the database
    /// keeps.
    #[arg(long, value_name = "N", default_value_t = 0)]
    quorum: usize,
}

impl WitnessArgs {
    fn policy(&self) -> Result<WitnessPolicy, String> {
        WitnessPolicy::parse(&self.witness_key, self.quorum)
    }
}

#[derive(Debug, Subcommand)]
enum WitnessCommand {
    /// Run a C2SP tlog-witness: cosign a log's checkpoints that are consistent with the last
    /// one it cosigned (POST /add-checkpoint), refuse forks and rollbacks. Its own key and
    /// state; meant to run at another organisation. Prints its vkey at start.
    Serve {
        /// HOST:PORT to listen on.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8090")]
        listen: String,
        /// The witness's key name (a schema-less URL, e.g. witness.regulator.example/w1).
        #[arg(long)]
        name: String,
        /// The witness's Ed25519 private key (PKCS#8 PEM); made there when missing.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Where the witness keeps the last checkpoint it cosigned of each log.
        #[arg(long, value_name = "DIR")]
        state: PathBuf,
        /// A log it witnesses, as its note vkey (the key name is the checkpoint origin;
        /// `crossprov witness vkey --log`), repeatable; an origin may have several keys.
        #[arg(long = "log-key", value_name = "VKEY", required = true)]
        log_key: Vec<String>,
    },
    /// Print the vkey of an Ed25519 key: a witness's cosignature key, or with --log the
    /// service's note key (name = audit.origin, key = the service key file).
    Vkey {
        /// The key name (witness name, or the log's origin).
        #[arg(long)]
        name: String,
        /// The Ed25519 private key (PKCS#8 PEM).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The log's note key (type 0x01) instead of a witness's cosignature key (0x04).
        #[arg(long)]
        log: bool,
    },
}

/// Exit status of `audit verify` when the log could not be checked at all: the contract fixes
/// 1 for every verdict but "intact", so the JSON's `error_kind` tells the two apart.
const NOT_CHECKED: u8 = 1;

fn overrides(args: SettingsArgs, listen: Option<String>) -> Overrides {
    Overrides {
        config_file: args.config,
        listen,
        database_url: args.database_url.map(SecretString::from),
    }
}

fn settings(args: SettingsArgs) -> Result<Settings, String> {
    Settings::load(&overrides(args, None)).map_err(|e| e.to_string())
}

fn open_store(s: &Settings) -> Result<Store, String> {
    Store::open(
        s.database_url().expose_secret(),
        s.database.pool_size,
        s.database.sqlite_busy_timeout_ms,
    )
    .map_err(|e| e.to_string())
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("crossprov: {message}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Serve(args) => {
            let (s, explained) = Settings::load_explained(&overrides(args.settings, args.listen))
                .map_err(|e| e.to_string())?;
            crate::telemetry::init(&s.log);
            tracing::info!(
                version = env!("CARGO_PKG_VERSION"),
                backend = ?crate::storage::DatabaseUrl::parse(s.database_url().expose_secret()).backend(),
                database = %s.shown_database_url(),
                settings = %explained.non_default_line(),
                "crossprov starting"
            );
            serve(s)
        }
        Command::Config {
            command: ConfigCommand::Check(args),
        } => Ok(config_check(args)),
        Command::Probe { url, timeout, tls } => {
            let status = actix_web::rt::System::new().block_on(crate::terminal::probe(
                &url,
                &tls.into(),
                std::time::Duration::from_secs(timeout),
            ))?;
            if status.is_success() {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("crossprov: {url} answered {status}");
                Ok(ExitCode::from(1))
            }
        }
        Command::Backup {
            out,
            settings: args,
        } => {
            let s = settings(args)?;
            crate::telemetry::init(&s.log);
            let report =
                actix_web::rt::System::new().block_on(crate::offline::backup::backup(&s, &out))?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore {
            from,
            settings: args,
        } => {
            let s = settings(args)?;
            crate::telemetry::init(&s.log);
            match actix_web::rt::System::new().block_on(crate::offline::backup::restore(&s, &from))
            {
                Ok(report) => {
                    println!("{report}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(RestoreError::Refused(why)) => {
                    eprintln!("crossprov: restore refused: {why}");
                    println!("{}", json!({ "ok": false, "error": why }));
                    Ok(ExitCode::from(1))
                }
                Err(RestoreError::Failed(why)) => Err(why),
            }
        }
        Command::Migrate(args) => {
            let s = settings(args)?;
            crate::telemetry::init(&s.log);
            let store = open_store(&s)?;
            // Values written before encryption at rest are sealed here too.
            crate::service::personal::prepare(&s, &store, &crate::service::Clock::default())
                .map_err(|e| e.to_string())?;
            eprintln!("migrations applied");
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys {
            command:
                KeysCommand::RotateKek {
                    new_kek_file,
                    settings: args,
                },
        } => {
            let s = settings(args)?;
            crate::telemetry::init(&s.log);
            let report = crate::service::rotation::rotate_kek(&s, &new_kek_file)
                .map_err(|e| e.to_string())?;
            println!("{}", json!(report));
            Ok(ExitCode::SUCCESS)
        }
        Command::Retention {
            command: RetentionCommand::Run(args),
        } => {
            let s = settings(args)?;
            crate::telemetry::init(&s.log);
            let services = crate::service::Services::build(s).map_err(|e| e.to_string())?;
            let report = actix_web::rt::System::new()
                .block_on(services.run_retention())
                .map_err(|e| e.to_string())?;
            println!("{}", json!(report));
            Ok(ExitCode::SUCCESS)
        }
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    role,
                    province,
                    hall_id,
                    email,
                    password_stdin: _,
                    settings: args,
                },
        } => {
            let s = settings(args)?;
            crate::telemetry::init(&s.log);
            let password = read_password()?;
            let store = open_store(&s)?;
            let req = NewUser {
                username: bounded(username, "--username")?,
                password: bounded(password, "the password")?,
                role: bounded(role, "--role")?,
                province: province.map(|p| bounded(p, "--province")).transpose()?,
                hall_id: hall_id.map(|h| bounded(h, "--hall-id")).transpose()?,
                email: email.map(|e| bounded(e, "--email")).transpose()?,
            };
            let user = add_cli_user(&store, &crate::service::Clock::default(), &req)
                .map_err(|e| crate::http::problem::ApiError::from(e).to_string())?;
            println!("{}", json!(user));
            Ok(ExitCode::SUCCESS)
        }
        Command::Keys {
            command: KeysCommand::RotateTokenKey(args),
        } => {
            let s = settings(args)?;
            crate::telemetry::init(&s.log);
            let store = open_store(&s)?;
            let rotation = crate::service::auth::rotate_token_key(
                &store,
                &crate::service::Clock::default(),
                s.auth.token_ttl_seconds,
            )
            .map_err(|e| crate::http::problem::ApiError::from(e).to_string())?;
            println!("{}", json!(rotation));
            Ok(ExitCode::SUCCESS)
        }
        Command::Keygen { alg, out } => {
            let alg = Alg::parse(&alg).ok_or("alg must be ES256 or EdDSA")?;
            let key = PrivateKey::generate(alg).map_err(|e| e.to_string())?;
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            write_private(&out.join("private.pem"), &key.to_pem()).map_err(|e| e.to_string())?;
            std::fs::write(out.join("public.pem"), key.public().to_pem())
                .map_err(|e| e.to_string())?;
            eprintln!(
                "wrote {0}/private.pem and {0}/public.pem ({1})",
                out.display(),
                alg.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::SignResult {
            key,
            kid,
            payload,
            evidence,
        } => {
            let key = PrivateKey::from_file(&key).map_err(|e| e.to_string())?;
            let text = std::fs::read_to_string(&payload)
                .map_err(|e| format!("{}: {e}", payload.display()))?;
            let mut claims: Value =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", payload.display()))?;
            let obj = claims
                .as_object_mut()
                .ok_or("the payload must be a JSON object")?;
            obj.entry("iat")
                .or_insert_with(|| json!(chrono::Utc::now().timestamp()));
            obj.entry("jti")
                .or_insert_with(|| json!(uuid::Uuid::new_v4().to_string()));
            add_evidence(&mut claims, &evidence)?;
            println!("{}", key.sign(&kid, &claims).map_err(|e| e.to_string())?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Evidence {
            command:
                EvidenceCommand::Upload {
                    url,
                    order,
                    token,
                    username,
                    password_stdin,
                    files,
                    tls,
                },
        } => {
            let password = if password_stdin {
                Some(read_password()?)
            } else {
                None
            };
            actix_web::rt::System::new().block_on(async move {
                let session = Session::open(&url, token, username, password, &tls.into()).await?;
                let mut uploaded = Vec::new();
                for f in &files {
                    uploaded.push(session.upload(&order, f).await?);
                }
                println!("{}", json!({ "order": order, "uploaded": uploaded }));
                Ok(ExitCode::SUCCESS)
            })
        }
        Command::Evidence {
            command: EvidenceCommand::Verify(args),
        } => {
            let s = settings(args)?;
            crate::telemetry::init(&s.log);
            let (ok, report) = actix_web::rt::System::new().block_on(verify_store(&s))?;
            println!("{report}");
            if ok {
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "crossprov: evidence file {} is bad: {}",
                    report["first_bad"]["sha256"].as_str().unwrap_or("?"),
                    report["first_bad"]["reason"].as_str().unwrap_or("?")
                );
                Ok(ExitCode::from(1))
            }
        }
        Command::Audit {
            command:
                AuditCommand::Verify {
                    settings: args,
                    checkpoint,
                    witnesses,
                },
        } => {
            let policy = match witnesses.policy() {
                Ok(policy) => policy,
                Err(why) => return Ok(not_checked(&why)),
            };
            match settings(args) {
                Ok(s) => {
                    crate::telemetry::init(&s.log);
                    audit_verify(&s, checkpoint, &policy)
                }
                Err(why) => Ok(not_checked(&why)),
            }
        }
        Command::Audit {
            command:
                AuditCommand::Prove {
                    settings: args,
                    seq,
                    checkpoint,
                    witnesses,
                },
        } => {
            let policy = witnesses.policy()?;
            let s = settings(args)?;
            crate::telemetry::init(&s.log);
            crate::offline::proof::prove(&s, seq, &checkpoint, &policy)
        }
        Command::Audit {
            command:
                AuditCommand::CheckProof {
                    file,
                    jwks,
                    log_key,
                    witnesses,
                },
        } => {
            let policy = witnesses.policy()?;
            Ok(crate::offline::proof::check(
                &file,
                jwks.as_deref(),
                &log_key,
                &policy,
            ))
        }
        Command::Witness {
            command:
                WitnessCommand::Serve {
                    listen,
                    name,
                    key,
                    state,
                    log_key,
                },
        } => {
            let defaults = Settings::defaults().map_err(|e| e.to_string())?;
            crate::telemetry::init(&defaults.log);
            let key = witness_key(&key)?;
            let logs = log_key
                .iter()
                .map(|k| VerifierKey::parse(k).map_err(|e| format!("--log-key {k}: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            let witness = crate::witness::Witness::open(&name, key, logs, &state)?;
            println!(
                "{}",
                json!({ "witness": name, "vkey": witness.vkey().encode() })
            );
            actix_web::rt::System::new()
                .block_on(crate::witness::server::serve(witness, &listen))
                .map_err(|e| format!("{listen}: {e}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Witness {
            command: WitnessCommand::Vkey { name, key, log },
        } => {
            let key = PrivateKey::from_file(&key).map_err(|e| e.to_string())?;
            let public = key
                .ed25519_public()
                .ok_or("the key is not Ed25519 (crossprov keygen --alg EdDSA)")?;
            let sig_type = if log {
                crate::audit::note::TYPE_ED25519
            } else {
                crate::audit::note::TYPE_COSIGNATURE
            };
            let vkey = VerifierKey::new(&name, sig_type, public).map_err(|e| e.to_string())?;
            println!("{}", vkey.encode());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A witness's key: the file, or a new Ed25519 key written there (readable by its owner).
fn witness_key(path: &std::path::Path) -> Result<PrivateKey, String> {
    if path.exists() {
        return PrivateKey::from_file(path).map_err(|e| e.to_string());
    }
    let key = PrivateKey::generate(Alg::EdDsa).map_err(|e| e.to_string())?;
    write_private(path, &key.to_pem()).map_err(|e| e.to_string())?;
    Ok(key)
}

/// `--password-stdin`: the first line, without its line ending.
/// A value for a field the API bounds, held to the same ceiling.
fn bounded<const MAX: usize>(value: String, what: &str) -> Result<Text<MAX>, String> {
    Text::new(value).ok_or_else(|| format!("{what} is longer than {MAX} characters"))
}

fn read_password() -> Result<String, String> {
    let mut password = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut password)
        .map_err(|e| format!("reading the password: {e}"))?;
    Ok(password.trim_end_matches(['\n', '\r']).to_owned())
}

fn serve(s: Settings) -> Result<ExitCode, String> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(s).map_err(|e| e.to_string())?;
        app.run_until(crate::startup::termination())
            .await
            .map_err(|e| e.to_string())?;
        Ok(ExitCode::SUCCESS)
    })
}

/// `config check`: every setting with its origin on standard output, then each refusal on
/// standard error; exit 1 when there is any (settings that do not load included).
fn config_check(args: ServeArgs) -> ExitCode {
    let (s, explained) = match Settings::load_explained(&overrides(args.settings, args.listen)) {
        Ok(loaded) => loaded,
        Err(e) => {
            eprintln!("crossprov: refused: {e}");
            return ExitCode::from(1);
        }
    };
    let width = explained
        .iter()
        .map(|shown| shown.key.chars().count() + shown.value.chars().count() + 3)
        .max()
        .unwrap_or(0);
    for shown in explained.iter() {
        let setting = format!("{} = {}", shown.key, shown.value);
        println!("{setting:width$}  # {}", shown.origin);
    }
    let refused = crate::startup::checks::refusals(&s);
    for line in &refused {
        eprintln!("crossprov: refused: {line}");
    }
    if refused.is_empty() {
        eprintln!("crossprov: the settings are consistent");
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Exit 0 for an intact log, 1 for a broken one (a log that cannot be read once reached
/// included), 2 when the database cannot be reached: one JSON object on standard output.
fn audit_verify(
    s: &Settings,
    checkpoint: Option<PathBuf>,
    policy: &WitnessPolicy,
) -> Result<ExitCode, String> {
    // Reached at once or not at all: an unreachable database is said now, not after retries.
    let db = match OfflineDb::open_existing(s.database_url().expose_secret()) {
        Ok(db) => db,
        Err(e) => return Ok(not_checked(&format!("cannot reach the database: {e}"))),
    };
    match verify_report(&db, checkpoint, policy) {
        Ok(code) => Ok(code),
        Err(why) => Ok(broken(&why)),
    }
}

/// The verdict when the log could not be checked: said on standard error too.
fn not_checked(why: &str) -> ExitCode {
    eprintln!("crossprov: audit verify: {why}");
    print_unread(why, "not_checked");
    ExitCode::from(NOT_CHECKED)
}

/// The verdict when the log was reached but could not be read: not intact.
fn broken(why: &str) -> ExitCode {
    print_unread(why, "unreadable");
    ExitCode::from(1)
}

fn print_unread(why: &str, kind: &str) {
    println!(
        "{}",
        json!({
            "ok": false, "checked": 0, "head": null, "first_bad_seq": null,
            "error": why, "error_kind": kind,
        })
    );
}

fn verify_report(
    db: &OfflineDb,
    checkpoint: Option<PathBuf>,
    policy: &WitnessPolicy,
) -> Result<ExitCode, String> {
    let verdict = db
        .verify_audit(checkpoint.as_deref(), policy)
        .map_err(|e| e.to_string())?;
    let report = verdict.report;
    let mut out = json!({
        "ok": report.ok,
        "checked": report.checked,
        "head": report.head,
        "first_bad_seq": report.first_bad_seq,
    });
    if let Some(why) = report.tree.problem() {
        out["tree"] = json!(why);
    }
    let mut ok = report.ok;
    if let Some(verdict) = verdict.checkpoint {
        if let Err(why) = verdict {
            ok = false;
            out["ok"] = json!(false);
            out["checkpoint"] = json!(why);
        } else {
            out["checkpoint"] = json!("ok");
        }
    }
    println!("{out}");
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// `--help` describes every option, and offers `--config` only where settings are read.
    #[test]
    fn every_option_is_described_and_config_offered_only_where_read() {
        let reads_settings = [
            "serve",
            "migrate",
            "config check",
            "user add",
            "keys rotate-kek",
            "keys rotate-token-key",
            "retention run",
            "evidence verify",
            "audit verify",
            "audit prove",
            "backup",
            "restore",
        ];
        let mut cli = Cli::command();
        cli.build();
        let mut leaves = Vec::new();
        let mut stack: Vec<(String, &clap::Command)> = vec![(String::new(), &cli)];
        while let Some((path, cmd)) = stack.pop() {
            for sub in cmd.get_subcommands() {
                let name = format!("{path} {}", sub.get_name()).trim().to_owned();
                if sub.has_subcommands() {
                    stack.push((name, sub));
                } else {
                    leaves.push((name, sub));
                }
            }
            assert!(
                cmd.get_about().is_some() || path.is_empty(),
                "{path}: no description"
            );
        }
        for (name, cmd) in &leaves {
            if name == "help" || name.ends_with(" help") {
                continue;
            }
            assert!(cmd.get_about().is_some(), "{name}: no description");
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                assert!(arg.get_help().is_some(), "{name} {id}: no description");
            }
            let has_config = cmd.get_arguments().any(|a| a.get_id() == "config");
            assert_eq!(
                has_config,
                reads_settings.contains(&name.as_str()),
                "{name}: --config offered where settings are {}read",
                if has_config { "not " } else { "" }
            );
        }
        assert_eq!(
            leaves
                .iter()
                .filter(|(n, _)| reads_settings.contains(&n.as_str()))
                .count(),
            reads_settings.len()
        );
    }
}
