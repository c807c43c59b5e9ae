//! The command line: serve, migrate, users, hall-terminal tools, offline audit checks.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};

use crate::config::{Overrides, Settings};
use crate::domain::text::Text;
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
    about = "跨省实名登记工单服务 — cross-province real-name registration"
)]
pub struct Cli {
    /// Settings file (TOML), layered over the built-in defaults.
    #[arg(long, global = true, env = "CROSSPROV_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (migrations are applied at start).
    Serve {
        /// HOST:PORT to listen on.
        #[arg(long)]
        listen: Option<String>,
        /// sqlite://PATH, a bare path, or postgres://…
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Apply pending migrations and exit.
    Migrate {
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Write a hall key pair (private.pem, public.pem) into a directory.
    Keygen {
        #[arg(long, value_parser = ["ES256", "EdDSA"])]
        alg: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the compact JWS a hall terminal would submit for a verification result.
    SignResult {
        /// The hall's private key (PKCS#8 PEM).
        #[arg(long)]
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
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Re-wrap every data key (and the blind-index key) under a new KEK, in resumable batches;
    /// prints {"rewrapped", "remaining", "kek_id"}.
    RotateKek {
        /// The new KEK (64 hex digits). The old ones come from crypto.kek_file and
        /// crypto.previous_kek_files.
        #[arg(long)]
        new_kek_file: PathBuf,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Make a new login-token signing key current; tokens signed by older keys keep working
    /// until they expire. Prints one JSON object.
    RotateTokenKey {
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RetentionCommand {
    /// Shred every subscriber whose orders all closed more than retention.days ago; prints
    /// {"shredded", "evidence_deleted", …}.
    Run {
        #[arg(long)]
        database_url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user directly in the database (how the first admin is made).
    Add {
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = ["clerk", "hall_staff", "auditor", "admin"])]
        role: String,
        #[arg(long)]
        province: Option<String>,
        #[arg(long)]
        hall_id: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        database_url: Option<String>,
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
    Verify {
        #[arg(long)]
        database_url: Option<String>,
    },
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
    /// Re-hash the whole chain offline; exit 1 unless intact.
    Verify {
        #[arg(long)]
        database_url: Option<String>,
        /// A checkpoint JWS kept elsewhere that the log must still agree with.
        #[arg(long)]
        checkpoint: Option<PathBuf>,
    },
}

fn settings(
    config: Option<PathBuf>,
    database_url: Option<String>,
    listen: Option<String>,
) -> Result<Settings, String> {
    Settings::load(&Overrides {
        config_file: config,
        listen,
        database_url: database_url.map(SecretString::from),
    })
    .map_err(|e| e.to_string())
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
        Command::Serve {
            listen,
            database_url,
        } => {
            let s = settings(cli.config, database_url, listen)?;
            crate::telemetry::init(&s.log);
            serve(s)
        }
        Command::Migrate { database_url } => {
            let s = settings(cli.config, database_url, None)?;
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
                    database_url,
                },
        } => {
            let s = settings(cli.config, database_url, None)?;
            crate::telemetry::init(&s.log);
            let report = crate::service::rotation::rotate_kek(&s, &new_kek_file)
                .map_err(|e| e.to_string())?;
            println!("{}", json!(report));
            Ok(ExitCode::SUCCESS)
        }
        Command::Retention {
            command: RetentionCommand::Run { database_url },
        } => {
            let s = settings(cli.config, database_url, None)?;
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
                    database_url,
                },
        } => {
            let s = settings(cli.config, database_url, None)?;
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
            command: KeysCommand::RotateTokenKey { database_url },
        } => {
            let s = settings(cli.config, database_url, None)?;
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
            command: EvidenceCommand::Verify { database_url },
        } => {
            let s = settings(cli.config, database_url, None)?;
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
                    database_url,
                    checkpoint,
                },
        } => match settings(cli.config, database_url, None) {
            Ok(s) => {
                crate::telemetry::init(&s.log);
                audit_verify(&s, checkpoint)
            }
            Err(why) => Ok(broken(&why)),
        },
    }
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
        app.run_until_stopped().await.map_err(|e| e.to_string())?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Exit 0 only for an intact log; anything else, a database that cannot be read included, is
/// exit 1 with one JSON object on standard output saying why.
fn audit_verify(s: &Settings, checkpoint: Option<PathBuf>) -> Result<ExitCode, String> {
    match verify_report(s, checkpoint) {
        Ok(code) => Ok(code),
        Err(why) => Ok(broken(&why)),
    }
}

/// The verdict when the log could not even be read: not intact.
fn broken(why: &str) -> ExitCode {
    println!(
        "{}",
        json!({ "ok": false, "checked": 0, "head": null, "first_bad_seq": null, "error": why })
    );
    ExitCode::from(1)
}

fn verify_report(s: &Settings, checkpoint: Option<PathBuf>) -> Result<ExitCode, String> {
    let db =
        OfflineDb::open_existing(s.database_url().expose_secret()).map_err(|e| e.to_string())?;
    let verdict = db
        .verify_audit(checkpoint.as_deref())
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
