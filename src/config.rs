//! Typed settings, layered: compiled-in defaults → file → environment → flags.

use std::path::{Path, PathBuf};

use chrono::{Datelike, NaiveDate};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::calendar::{
    BusinessCalendar, CalendarError, InvalidOpeningHours, OpeningHours, YearCalendar,
};
use crate::domain::sla::SlaRule;

/// The documented defaults; compiled in so the binary runs from any folder.
const DEFAULTS: &str = include_str!("../config/default.toml");

/// Environment variables `CROSSPROV_<SECTION>__<KEY>` override the file.
const ENV_PREFIX: &str = "CROSSPROV";

mod explain;
pub use explain::{redacted_url, Explained, Origin, Shown};

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// `mode`: whether the service may make its own KEK (embedded) or must be given one.
    pub mode: Mode,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
    pub sla: SlaSettings,
    pub verification: VerificationSettings,
    /// The quality checks of accepted results and four-eyes completion (`docs/quality.md`).
    pub quality: crate::domain::quality::QualitySettings,
    pub signing: SigningSettings,
    pub mail: MailSettings,
    pub tls: TlsSettings,
    pub evidence: EvidenceSettings,
    pub crypto: CryptoSettings,
    pub retention: RetentionSettings,
    pub idempotency: IdempotencySettings,
    pub audit: AuditSettings,
    pub testing: TestingSettings,
}

/// `mode`: a single embedded instance, or production, where nothing secret is made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Embedded,
    Production,
}

/// Where the key-encryption keys are (never in the database).
#[derive(Debug, Clone, Deserialize)]
pub struct CryptoSettings {
    /// Empty: `data_dir/kek.hex`, generated on first start (embedded mode on SQLite only).
    pub kek_file: String,
    /// KEKs still read while a rotation re-wraps the data keys under `kek_file`.
    pub previous_kek_files: Vec<String>,
}

/// Crypto-shredding of subscribers whose orders closed long ago.
#[derive(Debug, Clone, Deserialize)]
pub struct RetentionSettings {
    pub days: i64,
    pub interval_seconds: u64,
    pub batch_size: i64,
}

/// Checkpoints as signed notes, and the witnesses that cosign them (docs/audit.md).
#[derive(Debug, Clone, Deserialize)]
pub struct AuditSettings {
    /// A checkpoint is taken (and pushed to the witnesses) this often; 0: only on demand.
    pub checkpoint_seconds: u64,
    /// PostgreSQL: the longest a queued audit event waits for the sequencer.
    pub sequencing_delay_ms: u64,
    /// The checkpoint's origin line and the key name of its note signature.
    pub origin: String,
    /// The witnesses each checkpoint is pushed to.
    pub witnesses: Vec<WitnessSettings>,
    /// `GET /api/v1/audit/checkpoint/note` serves the latest note with at least this many
    /// cosignatures of the configured witnesses.
    pub quorum: usize,
}

/// One witness: where its `add-checkpoint` is, and its cosignature vkey.
#[derive(Debug, Clone, Deserialize)]
pub struct WitnessSettings {
    /// The submission prefix; `<url>/add-checkpoint` is posted to.
    pub url: String,
    /// `<name>+<key ID>+<base64(0x04 || Ed25519 public key)>`.
    pub key: String,
}

/// Idempotent retries (`Idempotency-Key`): how long keys are kept and held.
#[derive(Debug, Clone, Deserialize)]
pub struct IdempotencySettings {
    /// A key and its stored response are kept this long after the first request.
    pub ttl_seconds: i64,
    /// A request in flight holds its key this long; after it another may take the key over.
    pub lease_seconds: i64,
    /// How often each instance deletes expired keys.
    pub prune_interval_seconds: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub listen: String,
    pub workers: usize,
    /// After SIGTERM, how long `/readyz` answers 503 while requests are still taken.
    pub shutdown_drain_seconds: u64,
    /// Then, how long requests in flight may take to finish.
    pub shutdown_timeout_seconds: u64,
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
    /// Failed logins of one username from one client address before backoff begins (four
    /// times as many from one address over every name).
    pub max_failed_logins: u32,
    /// The first backoff wait; each further failure doubles it.
    pub backoff_base_seconds: i64,
    /// The longest backoff wait.
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
    /// Days a sent row is kept after it was sent; 0 keeps it for good.
    pub keep_sent_days: u32,
    pub prune_interval_seconds: u64,
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
    /// PEM certificate chain (end-entity first); HTTPS when set with `key_pem`.
    pub cert_pem: String,
    pub key_pem: String,
    /// PEM CA certificates client certificates must chain to: mutual TLS when set.
    pub client_ca_pem: String,
}

impl TlsSettings {
    /// Mutual TLS is on: hall staff must connect with their hall's client certificate.
    /// (`startup` refuses a client CA without HTTPS, so this implies HTTPS.)
    pub fn mutual(&self) -> bool {
        !self.client_ca_pem.trim().is_empty()
    }
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
pub enum SettingsError {
    #[error("settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("settings: {key}: {reason}")]
    OpeningHours {
        key: String,
        reason: InvalidOpeningHours,
    },
    #[error("settings: sla.calendar_dir {}: {reason}", dir.display())]
    CalendarDir {
        dir: PathBuf,
        reason: std::io::Error,
    },
    #[error("settings: business calendar {}: {reason}", file.display())]
    Calendar {
        file: PathBuf,
        reason: CalendarError,
    },
    #[error("settings: business calendar {}: it holds year = {year}, so it must be named {year}.toml", file.display())]
    CalendarFileName { file: PathBuf, year: i32 },
    #[error("settings: {key}: {reason}")]
    Quality {
        key: &'static str,
        reason: &'static str,
    },
}

impl Settings {
    /// Loads every layer. `CROSSPROV_CONFIG` names the file when `--config` does not.
    pub fn load(overrides: &Overrides) -> Result<Self, SettingsError> {
        Ok(Self::load_explained(overrides)?.0)
    }

    /// As [`Settings::load`], with every setting's value and the layer it came from
    /// (`crossprov config check`, the start-up line).
    pub fn load_explained(overrides: &Overrides) -> Result<(Self, Explained), SettingsError> {
        let file = overrides
            .config_file
            .clone()
            .or_else(|| std::env::var_os("CROSSPROV_CONFIG").map(PathBuf::from));
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = &file {
            builder = builder.add_source(config::File::from(file.clone()).required(true));
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator("_")
                .separator("__")
                .list_separator(",")
                .with_list_parse_key("verification.required_evidence")
                .with_list_parse_key("quality.four_eyes_severities")
                .with_list_parse_key("crypto.previous_kek_files")
                .try_parsing(true),
        );
        if let Some(listen) = &overrides.listen {
            builder = builder.set_override("server.listen", listen.as_str())?;
        }
        if let Some(url) = &overrides.database_url {
            builder = builder.set_override("database.url", url.expose_secret())?;
        }
        let built = builder.build()?;
        let explained = Explained::new(&built, overrides, file.as_deref())?;
        let settings: Self = built.try_deserialize()?;
        settings.check_opening_hours()?;
        settings.check_quality()?;
        Ok((settings, explained))
    }

    /// The defaults alone, for tests and tools that build settings in code.
    pub fn defaults() -> Result<Self, SettingsError> {
        let built = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()?;
        Ok(built.try_deserialize()?)
    }

    /// Every opening-hours value parses, so a typo refuses to start rather than failing the
    /// first order of that hall.
    /// The quality thresholds that are fractions lie in 0–1, the counts are not negative.
    fn check_quality(&self) -> Result<(), SettingsError> {
        let q = &self.quality;
        let refuse = |key, reason| Err(SettingsError::Quality { key, reason });
        let fraction = "a fraction from 0 to 1";
        let count = "not negative";
        if !(0.0..=1.0).contains(&q.face_match_min_score) {
            return refuse("quality.face_match_min_score", fraction);
        }
        if !(0.0..=1.0).contains(&q.rate_max_difference) {
            return refuse("quality.rate_max_difference", fraction);
        }
        for (key, value) in [
            ("quality.document_expiring_days", q.document_expiring_days),
            (
                "quality.min_seconds_claim_to_submit",
                q.min_seconds_claim_to_submit,
            ),
            ("quality.rate_window_days", q.rate_window_days),
            ("quality.rate_min_results", q.rate_min_results),
        ] {
            if value < 0 {
                return refuse(key, count);
            }
        }
        Ok(())
    }

    fn check_opening_hours(&self) -> Result<(), SettingsError> {
        self.opening_hours_for(None)?;
        for hall in self.sla.hall_opening_hours.keys() {
            self.opening_hours_for(Some(hall))?;
        }
        Ok(())
    }

    /// The opening hours of a hall (`sla.hall_opening_hours`, its code matched ignoring case),
    /// else `sla.opening_hours`: the hours an order of that hall counts.
    pub fn opening_hours_for(
        &self,
        hall_code: Option<&str>,
    ) -> Result<OpeningHours, SettingsError> {
        let own = hall_code.and_then(|code| {
            self.sla
                .hall_opening_hours
                .iter()
                .find(|(hall, _)| hall.eq_ignore_ascii_case(code))
        });
        let (key, raw) = match own {
            Some((hall, raw)) => (format!("sla.hall_opening_hours.{hall}"), raw),
            None => ("sla.opening_hours".to_owned(), &self.sla.opening_hours),
        };
        OpeningHours::parse(raw).map_err(|reason| SettingsError::OpeningHours { key, reason })
    }

    /// The service level for orders of a home province: `[sla.provinces.<code>]` over the
    /// global hours.
    pub fn sla_rule_for(&self, home_province: &str) -> SlaRule {
        let own = self.sla.provinces.get(home_province);
        SlaRule {
            due_hours: own.and_then(|p| p.due_hours).unwrap_or(self.sla.due_hours),
            deadline_hours: own
                .and_then(|p| p.deadline_hours)
                .unwrap_or(self.sla.deadline_hours),
            reminder_lead_hours: self.sla.reminder_lead_hours,
            suspension_margin_hours: self.sla.suspension_margin_hours,
        }
    }

    /// The business calendar: the compiled-in years, or, when `sla.calendar_dir` is set, every
    /// `<year>.toml` in it instead. Also the warnings to log at start: the year of `today` and
    /// the next one without a calendar (their hours count as calendar hours) or with a
    /// provisional one.
    pub fn business_calendar(
        &self,
        today: NaiveDate,
    ) -> Result<(BusinessCalendar, Vec<String>), SettingsError> {
        let calendar = if self.sla.calendar_dir.trim().is_empty() {
            BusinessCalendar::built_in().map_err(|reason| SettingsError::Calendar {
                file: Path::new("config/calendar").to_path_buf(),
                reason,
            })?
        } else {
            calendar_from_dir(Path::new(self.sla.calendar_dir.trim()))?
        };
        let mut warnings = Vec::new();
        for year in [today.year(), today.year() + 1] {
            match calendar.year(year) {
                None => warnings.push(format!(
                    "no business calendar for {year}: its hours count as calendar hours (24/7) \
                     until a {year}.toml is installed"
                )),
                Some(y) if y.is_provisional() => warnings.push(format!(
                    "the business calendar for {year} is provisional: {}",
                    y.source()
                )),
                Some(_) => {}
            }
        }
        Ok((calendar, warnings))
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

    /// The KEK file: `crypto.kek_file`, or `data_dir/kek.hex` when that is empty.
    pub fn kek_path(&self) -> PathBuf {
        if self.crypto.kek_file.trim().is_empty() {
            self.data_dir.join("kek.hex")
        } else {
            Path::new(self.crypto.kek_file.trim()).to_path_buf()
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

/// Every `*.toml` in `dir`, each named for its year (`2028.toml` holds `year = 2028`).
fn calendar_from_dir(dir: &Path) -> Result<BusinessCalendar, SettingsError> {
    let dir_error = |reason| SettingsError::CalendarDir {
        dir: dir.to_path_buf(),
        reason,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(dir_error)? {
        let path = entry.map_err(dir_error)?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    // Sorted, so the same folder always fails on the same file first.
    files.sort();
    let mut years = Vec::new();
    for file in files {
        let refused = |reason| SettingsError::Calendar {
            file: file.clone(),
            reason,
        };
        let text = std::fs::read_to_string(&file).map_err(|reason| SettingsError::CalendarDir {
            dir: file.clone(),
            reason,
        })?;
        let year = YearCalendar::parse(&text).map_err(refused)?;
        let named_for = file.file_stem().and_then(|s| s.to_str()) == Some(&year.year().to_string());
        if !named_for {
            return Err(SettingsError::CalendarFileName {
                file,
                year: year.year(),
            });
        }
        years.push(year);
    }
    BusinessCalendar::new(years).map_err(|reason| SettingsError::Calendar {
        file: dir.to_path_buf(),
        reason,
    })
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
        assert_eq!(s.mode, Mode::Embedded);
        assert_eq!(s.kek_path(), Path::new("data").join("kek.hex"));
        assert!(s.crypto.previous_kek_files.is_empty());
        assert_eq!(s.retention.days, 730);
        assert_eq!(s.idempotency.ttl_seconds, 24 * 3600);
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
            (
                "[quality]\nfour_eyes_severities = [\"urgent\"]\n",
                "quality.four_eyes_severities",
            ),
        ] {
            let err = load_file(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text:?} gave {err:?}");
        }
    }

    #[test]
    fn quality_thresholds_out_of_range_refuse_to_load_naming_their_key() {
        for (text, key) in [
            (
                "[quality]\nface_match_min_score = 1.5\n",
                "quality.face_match_min_score",
            ),
            (
                "[quality]\nrate_max_difference = -0.1\n",
                "quality.rate_max_difference",
            ),
            (
                "[quality]\nrate_window_days = -30\n",
                "quality.rate_window_days",
            ),
        ] {
            let err = load_file(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text:?} gave {err:?}");
        }
        let s = load_file("[quality]\nfour_eyes_severities = [\"medium\", \"high\"]\n").unwrap();
        use crate::domain::quality::Severity;
        assert_eq!(
            s.quality.four_eyes_severities,
            [Severity::Medium, Severity::High]
        );
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

    #[test]
    fn a_hall_s_own_opening_hours_are_found_by_code_ignoring_case() {
        let s = load_file("[sla.hall_opening_hours]\n\"KM-001\" = \"08:30-18:00\"\n").unwrap();
        for code in ["KM-001", "km-001"] {
            assert_eq!(
                s.opening_hours_for(Some(code)).unwrap().to_string(),
                "08:30-18:00"
            );
        }
        assert_eq!(
            s.opening_hours_for(Some("KM-002")).unwrap().to_string(),
            "09:00-17:00"
        );
        assert_eq!(
            s.opening_hours_for(None).unwrap().to_string(),
            "09:00-17:00"
        );
    }

    #[test]
    fn bad_opening_hours_refuse_to_load_naming_the_key() {
        for (text, key) in [
            (
                "[sla]\nopening_hours = \"17:00-09:00\"\n",
                "sla.opening_hours",
            ),
            (
                "[sla.hall_opening_hours]\n\"KM-001\" = \"9-5\"\n",
                "sla.hall_opening_hours.",
            ),
        ] {
            let err = load_file(text).unwrap_err().to_string();
            assert!(err.contains(key), "{text:?} gave {err:?}");
        }
    }

    #[test]
    fn a_province_overrides_only_the_hours_it_names() {
        let s = load_file("[sla.provinces.53]\ndue_hours = 16\n").unwrap();
        let yunnan = s.sla_rule_for("53");
        assert_eq!((yunnan.due_hours, yunnan.deadline_hours), (16, 72));
        assert_eq!(s.sla_rule_for("11").due_hours, 24);
        assert_eq!(yunnan.reminder_lead_hours, s.sla.reminder_lead_hours);
        assert_eq!(
            yunnan.suspension_margin_hours,
            s.sla.suspension_margin_hours
        );
    }

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_built_in_calendar_warns_of_a_provisional_next_year() {
        let s = Settings::defaults().unwrap();
        let (calendar, warnings) = s.business_calendar(day(2026, 6, 1)).unwrap();
        assert!(calendar.covers(2026) && calendar.covers(2027));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("2027") && warnings[0].contains("provisional"));
    }

    #[test]
    fn a_year_without_a_calendar_is_warned_of() {
        let s = Settings::defaults().unwrap();
        let (_, warnings) = s.business_calendar(day(2027, 12, 1)).unwrap();
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[1].starts_with("no business calendar for 2028"));
    }

    const CALENDAR_2028: &str = "year = 2028\nsource = \"test\"\n\
        [[holiday]]\nname = \"元旦\"\nfirst = 2028-01-01\n";

    fn with_calendar_dir(files: &[(&str, &str)]) -> (tempfile::TempDir, Settings) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        let mut s = Settings::defaults().unwrap();
        s.sla.calendar_dir = dir.path().display().to_string();
        (dir, s)
    }

    #[test]
    fn a_calendar_dir_replaces_the_built_in_years() {
        let (_dir, s) = with_calendar_dir(&[("2028.toml", CALENDAR_2028), ("notes.txt", "x")]);
        let (calendar, warnings) = s.business_calendar(day(2027, 6, 1)).unwrap();
        assert!(calendar.covers(2028));
        assert!(!calendar.covers(2026) && !calendar.covers(2027));
        assert!(
            warnings[0].starts_with("no business calendar for 2027"),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_bad_calendar_file_refuses_naming_the_file() {
        let bad = CALENDAR_2028.replace("2028-01-01", "2029-01-01");
        let (_dir, s) = with_calendar_dir(&[("2028.toml", &bad)]);
        let err = s
            .business_calendar(day(2028, 1, 1))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("2028.toml") && err.contains("not in 2028"),
            "{err}"
        );
    }

    #[test]
    fn a_calendar_file_named_for_another_year_refuses() {
        let (_dir, s) = with_calendar_dir(&[("2029.toml", CALENDAR_2028)]);
        let err = s
            .business_calendar(day(2028, 1, 1))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("2029.toml") && err.contains("2028.toml"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_calendar_dir_refuses_naming_it() {
        let mut s = Settings::defaults().unwrap();
        s.sla.calendar_dir = "/nonexistent/crossprov-calendars".into();
        let err = s
            .business_calendar(day(2026, 1, 1))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sla.calendar_dir /nonexistent/crossprov-calendars"),
            "{err}"
        );
    }
}
