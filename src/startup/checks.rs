//! The settings `serve` refuses to start on, written once: `serve` runs them before it opens
//! the database or listens, `crossprov config check` prints them. Each refusal is one line
//! naming the setting. They read the files the settings name and make nothing.

use secrecy::ExposeSecret;

use crate::config::{EvidenceBackend, MailTransport, Mode, Settings};
use crate::notify::Mailer;
use crate::service::personal;
use crate::storage::objects::EvidenceStore;
use crate::storage::DatabaseUrl;
use crate::tls::ServerTls;

/// Every contradiction in `settings`, one line each; empty when `serve` may start.
pub fn refusals(settings: &Settings) -> Vec<String> {
    let mut refused = Vec::new();
    if settings.mode == Mode::Production {
        if settings.mail.transport == MailTransport::File {
            refused.push(
                "mail.transport = \"file\" in production mode: mail would only be written to \
                 data_dir/outbox; set mail.transport = \"smtp\" and mail.smtp_url"
                    .to_owned(),
            );
        }
        if settings.testing.movable_clock {
            refused.push(
                "testing.movable_clock = true in production mode: anyone with an admin token \
                 could move the service's clock"
                    .to_owned(),
            );
        }
    }
    // Half a certificate pair, a client CA without HTTPS, a file that is not what it must be.
    if let Err(e) = ServerTls::from_settings(&settings.tls) {
        refused.push(format!("TLS: {e}"));
    }
    // Mail settings that could never send (no SMTP URL, a lease longer than a minute, …).
    if let Err(e) = Mailer::from_settings(settings) {
        refused.push(e.to_string());
    }
    let backend = DatabaseUrl::parse(settings.database_url().expose_secret()).backend();
    if let Err(e) = personal::check_keyring(settings, backend) {
        refused.push(e.to_string());
    }
    if let Err(e) = settings.business_calendar(chrono::Utc::now().date_naive()) {
        refused.push(e.to_string());
    }
    // The file store is made at start (its folder is created then); S3's settings parse here.
    if settings.evidence.store == EvidenceBackend::S3 {
        if let Err(e) = EvidenceStore::open(settings) {
            refused.push(e.to_string());
        }
    }
    // Witnesses whose keys do not parse, a quorum they could never reach, a bad origin.
    refused.extend(crate::service::cosigning::check_settings(settings));
    refused
}
