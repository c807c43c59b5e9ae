use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    #[error("connection pool: {0}")]
    Pool(String),
    #[error("migrations: {0}")]
    Migration(String),
    #[error("database: {0}")]
    Query(#[from] DieselError),
    #[error("blocking task: {0}")]
    Task(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StorageError {
    /// A unique constraint fired: the caller decides which domain thing "already exists".
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Self::Query(e) if is_unique_violation(e))
    }
}

pub fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}
