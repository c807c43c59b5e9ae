use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("migrations: {0}")]
    Migration(String),
    /// The database took no write: out of space, or read-only. Not a bug: an answer (503).
    #[error("the database refuses writes ({why}): {message}")]
    WritesRefused { why: WriteRefusal, message: String },
    #[error("database: {0}")]
    Query(DieselError),
    #[error("blocking task: {0}")]
    Task(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StorageError {
    /// The same error for another waiter (a batch's failed commit answers every step in it):
    /// the kind and message are kept, a database error's diesel value only as its message.
    pub fn duplicate(&self) -> Self {
        match self {
            Self::Connect(m) => Self::Connect(m.clone()),
            Self::Pool(m) => Self::Pool(m.clone()),
            Self::Migration(m) => Self::Migration(m.clone()),
            Self::WritesRefused { why, message } => Self::WritesRefused {
                why: *why,
                message: message.clone(),
            },
            Self::Query(e) => Self::Query(DieselError::QueryBuilderError(e.to_string().into())),
            Self::Task(m) => Self::Task(m.clone()),
            Self::Corrupt(m) => Self::Corrupt(m.clone()),
        }
    }
}

/// Why a store refuses writes: the one classification every store (the database, the
/// evidence store) maps its failures to, so each is answered alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::Display)]
#[strum(serialize_all = "snake_case")]
pub enum WriteRefusal {
    /// No space left: a full disk or quota, SQLite's `SQLITE_FULL`, PostgreSQL's 53100.
    DiskFull,
    /// The store is read-only: PostgreSQL's 25006 (a standby, `default_transaction_read_only`),
    /// a read-only SQLite file or file system.
    ReadOnly,
}

impl WriteRefusal {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// An I/O error that means no space or a read-only file system (ENOSPC, EDQUOT, EROFS).
    pub fn of_io(e: &std::io::Error) -> Option<Self> {
        use std::io::ErrorKind;
        match (e.kind(), e.raw_os_error()) {
            (ErrorKind::StorageFull | ErrorKind::QuotaExceeded, _) => Some(Self::DiskFull),
            (_, Some(libc::ENOSPC | libc::EDQUOT)) => Some(Self::DiskFull),
            (ErrorKind::ReadOnlyFilesystem, _) | (_, Some(libc::EROFS)) => Some(Self::ReadOnly),
            _ => None,
        }
    }

    /// The first I/O error in `e`'s chain of sources that means a refused write.
    pub fn in_chain(e: &(dyn std::error::Error + 'static)) -> Option<Self> {
        let mut next = Some(e);
        while let Some(err) = next {
            next = err.source();
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if let Some(found) = Self::of_io(io) {
                    return Some(found);
                }
                // An `io::Error` wrapping another error hides it from `source()`.
                if let Some(inner) = io.get_ref() {
                    next = Some(inner);
                }
            }
        }
        None
    }

    /// A database error that means a refused write. diesel hands PostgreSQL's SQLSTATE on only
    /// for 25006, so a full disk there (53100) and SQLite's codes are told by their messages,
    /// which SQLite never translates and PostgreSQL writes in English unless `lc_messages`
    /// says otherwise (see docs/operations.md).
    fn of_database(kind: &DatabaseErrorKind, message: &str, hint: Option<&str>) -> Option<Self> {
        if matches!(kind, DatabaseErrorKind::ReadOnlyTransaction) {
            return Some(Self::ReadOnly);
        }
        let full = message.contains("database or disk is full") // SQLITE_FULL
            || message.contains("No space left on device") // PostgreSQL 53100, ENOSPC
            || message.contains("Disk quota exceeded")
            || hint.is_some_and(|h| h.contains("free disk space"));
        if full {
            return Some(Self::DiskFull);
        }
        // SQLITE_READONLY: a read-only file, directory or file system.
        message
            .contains("attempt to write a readonly database")
            .then_some(Self::ReadOnly)
    }
}

impl From<DieselError> for StorageError {
    fn from(e: DieselError) -> Self {
        if let DieselError::DatabaseError(kind, info) = &e {
            if let Some(why) = WriteRefusal::of_database(kind, info.message(), info.hint()) {
                return Self::WritesRefused {
                    why,
                    message: info.message().to_owned(),
                };
            }
        }
        Self::Query(e)
    }
}

impl StorageError {
    /// A unique constraint fired: the caller decides which domain thing "already exists".
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Query(e) if is_unique_violation(e))
    }

    /// The connection was lost mid-use (the server restarted, a session was terminated):
    /// the database does not answer, as when it cannot be reached.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Self::Query(DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _
            ))
        )
    }

    /// Why the database refused a write, when that is what happened.
    pub fn write_refusal(&self) -> Option<WriteRefusal> {
        match self {
            Self::WritesRefused { why, .. } => Some(*why),
            _ => None,
        }
    }
}

pub fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_and_read_only_stores_are_told_apart_from_other_failures() {
        let unknown = DatabaseErrorKind::Unknown;
        let cases = [
            (
                "database or disk is full",
                None,
                Some(WriteRefusal::DiskFull),
            ),
            (
                "could not extend file \"base/1/2\": No space left on device",
                Some("Check free disk space."),
                Some(WriteRefusal::DiskFull),
            ),
            (
                "attempt to write a readonly database",
                None,
                Some(WriteRefusal::ReadOnly),
            ),
            ("no such table: x", None, None),
        ];
        for (message, hint, want) in cases {
            assert_eq!(
                WriteRefusal::of_database(&unknown, message, hint),
                want,
                "{message}"
            );
        }
        let read_only = DatabaseErrorKind::ReadOnlyTransaction;
        assert_eq!(
            WriteRefusal::of_database(
                &read_only,
                "cannot execute INSERT in a read-only transaction",
                None
            ),
            Some(WriteRefusal::ReadOnly)
        );
        let enospc = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(WriteRefusal::of_io(&enospc), Some(WriteRefusal::DiskFull));
        let wrapped = std::io::Error::other(enospc);
        assert_eq!(
            WriteRefusal::in_chain(&wrapped),
            Some(WriteRefusal::DiskFull)
        );
        let denied = std::io::Error::from_raw_os_error(libc::EACCES);
        assert_eq!(WriteRefusal::of_io(&denied), None);
    }
}
