//! errors: which database failures pass by themselves — the database unavailable, busy, or a
//! transaction that lost a race — as against a statement that will fail the same way again.

/// Whether `e` says the database is unavailable rather than that something is wrong with what
/// was asked of it: the connection is gone or refused, the pool timed out, the server is shutting
/// down or out of resources, the file is locked by another writer, unreadable or the disk full,
/// or the transaction lost a deadlock or a serialization race. Such a failure passes by itself:
/// consumers wait for the database instead of giving up on their messages, and HTTP answers 503.
pub fn unavailable(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        if let Some(rusqlite::Error::SqliteFailure(failure, _)) = cause.downcast_ref() {
            return sqlite_transient(failure.extended_code);
        }
        if let Some(super::tx::Unavailable(_)) = cause.downcast_ref() {
            return true;
        }
        match cause.downcast_ref::<sqlx::Error>() {
            Some(
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed
                | sqlx::Error::BeginFailed,
            ) => true,
            // PostgreSQL names errors by SQLSTATE, SQLite (sqlx's migrations) by number; a
            // SQLSTATE of digits alone (22021) is no SQLite code.
            Some(sqlx::Error::Database(db)) => match db.code() {
                None => false,
                Some(code)
                    if db
                        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                        .is_some() =>
                {
                    postgres_transient(&code)
                }
                Some(code) => code.parse().is_ok_and(sqlite_transient),
            },
            _ => false,
        }
    })
}

/// SQLite result codes that mean "not now" rather than "never": an extended result code,
/// whose low byte is the primary code.
fn sqlite_transient(code: i32) -> bool {
    // BUSY, LOCKED, READONLY (the file became read-only), IOERR, FULL, CANTOPEN, PROTOCOL.
    matches!(code & 0xff, 5 | 6 | 8 | 10 | 13 | 14 | 15)
}

/// PostgreSQL SQLSTATEs that mean "not now" rather than "never": connection exceptions,
/// insufficient resources, operator intervention (shutdown), system errors; serialization
/// failures and deadlocks.
fn postgres_transient(code: &str) -> bool {
    ["08", "53", "57P", "58"]
        .iter()
        .any(|class| code.starts_with(class))
        || matches!(code, "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_of_digits_are_not_read_as_sqlite_codes() {
        // 22021 (a NUL in text) would be SQLITE_BUSY (5) in its low byte.
        assert!(!postgres_transient("22021"));
        assert!(!postgres_transient("23505"));
        assert!(postgres_transient("40P01") && postgres_transient("08006"));
        assert!(postgres_transient("57P01") && postgres_transient("53300"));
        assert!(sqlite_transient(5) && sqlite_transient(261));
        assert!(!sqlite_transient(19));
    }
}
