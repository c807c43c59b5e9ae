//! Typed settings, layered: compiled-in defaults → file → environment → flags.

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The documented defaults; compiled in so the binary runs from any folder.
const DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
    pub sla: SlaSettings,
    pub verification: VerificationSettings,
    pub signing: SigningSettings,
    pub mail: MailSettings,
    pub tls: TlsSettings,
    pub evidence: EvidenceSettings,
    pub testing: TestingSettings,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub listen: String,
    pub workers: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    /// May carry a password (`postgres://user:password@…`): read it through
    /// [`Settings::database_url`], and expose it only to open the database.
    pub url: SecretString,
    pub pool_size: u32,
    pub sqlite_busy_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub token_ttl_seconds: i64,
    pub max_failed_logins: u32,
    pub lockout_seconds: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LimitSettings {
    pub body_bytes: usize,
    pub evidence_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub level: String,
    pub format: LogFormat,
}

/// `log.format`: lines for people or JSON objects for collectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Service levels, counted in working hours on the business calendar.
#[derive(Debug, Clone, Deserialize)]
pub struct SlaSettings {
    pub due_hours: i64,
    pub deadline_hours: i64,
    pub reminder_lead_hours: i64,
    pub suspension_margin_hours: i64,
    /// `HH:MM-HH:MM`, Asia/Shanghai.
    pub opening_hours: String,
    /// Empty: the calendars compiled in from `config/calendar/`.
    pub calendar_dir: String,
    pub timer_interval_seconds: u64,
    /// Overrides by home province code.
    #[serde(default)]
    pub provinces: std::collections::BTreeMap<String, SlaOverride>,
    /// Opening hours by hall code.
    #[serde(default)]
    pub hall_opening_hours: std::collections::BTreeMap<String, String>,
    /// Escalation address by home province code.
    #[serde(default)]
    pub supervisors: std::collections::BTreeMap<String, String>,
}

/// A province's own due and deadline hours; a key left out keeps the global value.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SlaOverride {
    pub due_hours: Option<i64>,
    pub deadline_hours: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VerificationSettings {
    pub max_skew_seconds: i64,
    pub required_evidence: Vec<crate::domain::evidence::EvidenceKind>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SigningSettings {
    pub key_file: String,
}

/// Notification mail: where it goes and how the outbox delivers it.
#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    pub transport: MailTransport,
    /// lettre's URL form, which may carry the SMTP user's password.
    pub smtp_url: SecretString,
    /// When set, they replace any credentials in `smtp_url`.
    pub smtp_username: String,
    pub smtp_password: SecretString,
    pub from: String,
    /// Where the links in mail point (the order is at `<base_url>/api/v1/work-orders/<id>`).
    pub base_url: String,
    pub timeout_seconds: u64,
    pub max_attempts: i32,
    pub retry_base_seconds: i64,
    pub retry_max_seconds: i64,
    pub lease_seconds: i64,
    pub poll_interval_ms: u64,
    pub outage_probe_seconds: u64,
    pub batch_size: i64,
}

/// `mail.transport`: where mail will go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    /// One `.eml` file per message under `data_dir/outbox/`.
    File,
    Smtp,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TlsSettings {
    pub cert_pem: String,
    pub key_pem: String,
    pub client_ca_pem: String,
}

/// Where evidence files are kept.
#[derive(Debug, Clone, Deserialize)]
pub struct EvidenceSettings {
    pub store: EvidenceBackend,
    pub dir: String,
    pub s3_url: String,
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: SecretString,
}

/// `evidence.store`: what holds the evidence files' bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceBackend {
    /// A directory (`evidence.dir`).
    File,
    /// S3-compatible object storage (`evidence.s3_*`).
    S3,
}

/// Switches for tests run from outside; all off in production.
#[derive(Debug, Clone, Deserialize)]
pub struct TestingSettings {
    /// `POST /api/v1/admin/clock` moves the service's clock forward on every instance.
    pub movable_clock: bool,
}

/// Values given on the command line; they win over every other source.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<SecretString>,
}

/// Why settings did not load. A value the types refuse is named with its key, e.g. "enum
/// MailTransport does not have variant constructor pigeon for key `mail.transport`".
#[derive(Debug, thiserror::Error)]
#[error("settings: {0}")]
pub struct SettingsError(#[from] config::ConfigError);

impl Settings {
    /// Loads every layer. `CROSSPROV_CONFIG` names the file when `--config` does not.
    pub fn load(overrides: &Overrides) -> Result<Self, SettingsError> {
        let file = overrides
            .config_file
            .clone()
            .or_else(|| std::env::var_os("CROSSPROV_CONFIG").map(PathBuf::from));
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix("CROSSPROV")
                .prefix_separator("_")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("verification.required_evidence")
                .try_parsing(true),
        );
        if let Some(listen) = &overrides.listen {
            builder = builder.set_override("server.listen", listen.as_str())?;
        }
        if let Some(url) = &overrides.database_url {
            builder = builder.set_override("database.url", url.expose_secret())?;
        }
        Ok(builder.build()?.try_deserialize()?)
    }

    /// The defaults alone, for tests and tools that build settings in code.
    pub fn defaults() -> Result<Self, SettingsError> {
        let built = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()?;
        Ok(built.try_deserialize()?)
    }

    /// The database URL to use: the setting, or SQLite inside `data_dir`. Secret, since it may
    /// carry a password: expose it only where the database is opened.
    pub fn database_url(&self) -> SecretString {
        if self.database.url.expose_secret().trim().is_empty() {
            format!("sqlite://{}", self.data_dir.join("crossprov.db").display()).into()
        } else {
            self.database.url.clone()
        }
    }

    /// The directory of the `file` evidence store.
    pub fn evidence_dir(&self) -> PathBuf {
        if self.evidence.dir.trim().is_empty() {
            self.data_dir.join("evidence")
        } else {
            Path::new(&self.evidence.dir).to_path_buf()
        }
    }

    pub fn service_key_path(&self) -> PathBuf {
        if self.signing.key_file.trim().is_empty() {
            self.data_dir.join("service-key.pem")
        } else {
            Path::new(&self.signing.key_file).to_path_buf()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_describe_the_embedded_service() {
        let s = Settings::defaults().unwrap();
        assert_eq!(s.server.listen, "127.0.0.1:8080");
        assert_eq!(
            s.database_url().expose_secret(),
            format!(
                "sqlite://{}",
                Path::new("data").join("crossprov.db").display()
            )
        );
        assert_eq!(s.mail.transport, MailTransport::File);
        assert_eq!(s.log.format, LogFormat::Text);
        assert_eq!((s.sla.due_hours, s.sla.deadline_hours), (24, 72));
        assert_eq!(s.verification.max_skew_seconds, 300);
        assert_eq!(s.limits.body_bytes, 1024 * 1024);
        assert_eq!(s.auth.token_ttl_seconds, 900);
        assert_eq!(s.evidence.store, EvidenceBackend::File);
        assert_eq!(s.evidence_dir(), Path::new("data").join("evidence"));
    }

    #[test]
    fn a_file_then_flags_override_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("crossprov.toml");
        std::fs::write(&file, "data_dir = \"/srv/crossprov\"\n[server]\nlisten = \"0.0.0.0:9000\"\n[sla]\ndue_hours = 12\n")
            .unwrap();
        let s = Settings::load(&Overrides {
            config_file: Some(file),
            listen: Some("127.0.0.1:9100".into()),
            database_url: Some("postgres://db/crossprov".into()),
        })
        .unwrap();
        assert_eq!(s.data_dir, Path::new("/srv/crossprov"));
        assert_eq!(
            s.server.listen, "127.0.0.1:9100",
            "a flag wins over the file"
        );
        assert_eq!(s.sla.due_hours, 12);
        assert_eq!(
            s.sla.deadline_hours, 72,
            "untouched keys keep their defaults"
        );
        assert_eq!(s.database_url().expose_secret(), "postgres://db/crossprov");
    }

    fn load_file(text: &str) -> Result<Settings, SettingsError> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("crossprov.toml");
        std::fs::write(&file, text).unwrap();
        Settings::load(&Overrides {
            config_file: Some(file),
            ..Overrides::default()
        })
    }

    #[test]
    fn an_unknown_enum_value_refuses_to_load_naming_its_key() {
        for (text, key) in [
            ("[evidence]\nstore = \"ftp\"\n", "evidence.store"),
            ("[log]\nformat = \"xml\"\n", "log.format"),
            ("[mail]\ntransport = \"pigeon\"\n", "mail.transport"),
            // The file's spelling only: the values are lowercase.
            ("[evidence]\nstore = \"S3\"\n", "evidence.store"),
            (
                "[verification]\nrequired_evidence = [\"id_front\", \"selfie\"]\n",
                "verification.required_evidence",
            ),
        ] {
            let err = load_file(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text:?} gave {err:?}");
        }
    }

    #[test]
    fn every_enum_value_the_file_documents_loads() {
        let s = load_file(
            "[evidence]\nstore = \"s3\"\n[log]\nformat = \"json\"\n[mail]\ntransport = \"smtp\"\n",
        )
        .unwrap();
        assert_eq!(s.evidence.store, EvidenceBackend::S3);
        assert_eq!(s.log.format, LogFormat::Json);
        assert_eq!(s.mail.transport, MailTransport::Smtp);
        use crate::domain::evidence::EvidenceKind;
        assert_eq!(
            s.verification.required_evidence,
            [
                EvidenceKind::IdFront,
                EvidenceKind::IdBack,
                EvidenceKind::LivePhoto
            ]
        );
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let s = load_file(
            "[database]\nurl = \"postgres://crossprov:db-hunter2@db/crossprov\"\n\
             [evidence]\ns3_access_key_id = \"AKIDEXAMPLE\"\ns3_secret_access_key = \"s3-hunter2\"\n\
             [mail]\nsmtp_url = \"smtp://mailer:smtp-hunter2@mail.example:587\"\n",
        )
        .unwrap();
        let printed = format!("{s:?} {:?}", s.clone());
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("AKIDEXAMPLE"), "only secrets are hidden");
        // Still there for the code that uses them.
        assert!(s.database_url().expose_secret().contains("db-hunter2"));
        assert_eq!(
            s.evidence.s3_secret_access_key.expose_secret(),
            "s3-hunter2"
        );
        assert!(s.mail.smtp_url.expose_secret().contains("smtp-hunter2"));
        let flagged = format!(
            "{:?}",
            Overrides {
                database_url: Some("postgres://u:flag-hunter2@db/x".into()),
                ..Overrides::default()
            }
        );
        assert!(!flagged.contains("hunter2"), "{flagged}");
    }
}
