//! Typed settings, layered: compiled-in defaults → file → environment → flags.

use std::path::{Path, PathBuf};

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
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub listen: String,
    pub workers: usize,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
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
    pub format: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SlaSettings {
    pub due_hours: i64,
    pub deadline_hours: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct VerificationSettings {
    pub max_skew_seconds: i64,
    pub required_evidence: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SigningSettings {
    pub key_file: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct MailSettings {
    pub transport: String,
    pub smtp_url: String,
    pub from: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TlsSettings {
    pub cert_pem: String,
    pub key_pem: String,
    pub client_ca_pem: String,
}

/// Where evidence files are kept.
#[derive(Clone, Deserialize)]
pub struct EvidenceSettings {
    /// `file` (a directory) or `s3` (S3-compatible object storage).
    pub store: String,
    pub dir: String,
    pub s3_url: String,
    pub s3_endpoint: String,
    pub s3_region: String,
    pub s3_access_key_id: String,
    pub s3_secret_access_key: String,
}

/// Never prints the secret key.
impl std::fmt::Debug for EvidenceSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvidenceSettings")
            .field("store", &self.store)
            .field("dir", &self.dir)
            .field("s3_url", &self.s3_url)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("s3_region", &self.s3_region)
            .field("s3_access_key_id", &self.s3_access_key_id)
            .field("s3_secret_access_key", &"<redacted>")
            .finish()
    }
}

/// Values given on the command line; they win over every other source.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub database_url: Option<String>,
}

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
            builder = builder.set_override("database.url", url.as_str())?;
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

    /// The database URL to use: the setting, or SQLite inside `data_dir`.
    pub fn database_url(&self) -> String {
        if self.database.url.trim().is_empty() {
            format!("sqlite://{}", self.data_dir.join("crossprov.db").display())
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
            s.database_url(),
            format!(
                "sqlite://{}",
                Path::new("data").join("crossprov.db").display()
            )
        );
        assert_eq!(s.mail.transport, "file");
        assert_eq!((s.sla.due_hours, s.sla.deadline_hours), (24, 72));
        assert_eq!(s.verification.max_skew_seconds, 300);
        assert_eq!(s.limits.body_bytes, 1024 * 1024);
        assert_eq!(s.auth.token_ttl_seconds, 900);
        assert_eq!(s.evidence.store, "file");
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
        assert_eq!(s.database_url(), "postgres://db/crossprov");
    }
}
