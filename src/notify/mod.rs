//! Notification mail: what a message says (`messages`) and how one message leaves
//! (`transport`). The outbox worker leases rows, renders each from its stored facts with
//! [`render`], hands it to [`Mailer::deliver`] and marks the row by the [`Delivery`] it gets.

pub mod messages;
pub mod transport;
pub mod worker;

pub use messages::render;
pub use transport::{Delivery, Mailer};

/// Why mail cannot be set up or a message cannot be built. Messages name the setting at
/// fault and never carry a password or a recipient's address.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(
        "mail.from {value:?} is not a mailbox such as \"crossprov <noreply@example.cn>\": {reason}"
    )]
    From { value: String, reason: String },
    #[error("mail.smtp_url must be set when mail.transport is \"smtp\"")]
    MissingSmtpUrl,
    /// The reason comes from the URL parser and names no part of the URL's value.
    #[error("mail.smtp_url is not an SMTP URL (smtp://host:port, smtp://host:port?tls=required or smtps://host:port): {0}")]
    SmtpUrl(String),
    #[error("mail.timeout_seconds must be at least 1")]
    Timeout,
    /// A delivery setting out of its range (the message names it).
    #[error("{0}")]
    Delivery(&'static str),
    /// An outbox row id becomes a file name and the left side of a Message-ID.
    #[error("outbox row id {0:?} is not 1-64 letters, digits, '-' or '_'")]
    RowId(String),
    #[error("the recipient of outbox row {row} is not a mail address")]
    Recipient { row: String },
    #[error("mail template for {event} failed: {source}")]
    Template {
        event: &'static str,
        #[source]
        source: askama::Error,
    },
    #[error("building the message of outbox row {row} failed: {source}")]
    Message {
        row: String,
        #[source]
        source: lettre::error::Error,
    },
}
