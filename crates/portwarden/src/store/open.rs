//! Opening the database: the writer's connection (created, tuned, migrated), the readers'
//! read-only connection, and what to do with a file SQLite calls corrupt: move it aside as
//! `<name>.corrupt-<UTC stamp>` (with its WAL) so a fresh database can take its place and the
//! damaged one stays available for inspection.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::clock::file_stamp;
use super::schema::{self, SchemaError};

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// The directory for the database could not be created.
    #[error("cannot create {dir}: {source}")]
    Dir { dir: PathBuf, source: io::Error },
    #[error("cannot open {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("cannot migrate {path}: {source}")]
    Schema { path: PathBuf, source: SchemaError },
}

impl OpenError {
    /// Whether the file itself is damaged (as opposed to missing rights, a full disk, a lock).
    pub(crate) fn is_corrupt(&self) -> bool {
        match self {
            OpenError::Dir { .. } => false,
            OpenError::Sqlite { source, .. } => is_corrupt(source),
            OpenError::Schema {
                source: SchemaError::Sqlite(e),
                ..
            } => is_corrupt(e),
            OpenError::Schema { .. } => false,
        }
    }
}

/// Whether SQLite says the file is not a (sound) database.
pub(crate) fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
    )
}

/// Opens (creating the file and its directories) the connection the store task writes with.
pub(crate) fn open_writer(path: &Path) -> Result<Connection, OpenError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|source| OpenError::Dir {
            dir: dir.to_path_buf(),
            source,
        })?;
    }
    let sqlite = |source| OpenError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
    tune_writer(&conn).map_err(sqlite)?;
    schema::migrate(&mut conn).map_err(|source| OpenError::Schema {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(conn)
}

fn tune_writer(conn: &Connection) -> rusqlite::Result<()> {
    // Another process holding the lock (a second daemon, an admin's sqlite3) gets a moment
    // before the batch fails and the store reports itself failed.
    conn.busy_timeout(Duration::from_secs(5))?;
    // Takes effect only before the first table exists; lets housekeeping hand freed pages
    // back to the file system after many monitors were removed.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(
            mode,
            "history database is not in WAL mode; reads may wait on writes"
        );
    }
    // With WAL, NORMAL loses at most the last commits on power loss, never consistency.
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    // 64 MiB (negative = KiB): the pages of many monitors' latest rows stay hot.
    conn.pragma_update(None, "cache_size", -65_536)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(64);
    // Reads the schema, so a file that is not a database fails here and not mid-batch.
    conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))?;
    Ok(())
}

/// Opens a read-only connection for queries; it never blocks the writer (WAL).
pub(crate) fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(2))?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// `path` with `suffix` appended to its file name.
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s: OsString = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Renames a corrupt database (and its WAL) out of the way; returns where it went.
pub(crate) fn move_aside(path: &Path, now: SystemTime) -> io::Result<PathBuf> {
    let stamp = file_stamp(now);
    let mut target = with_suffix(path, &format!(".corrupt-{stamp}"));
    let mut n = 1;
    while target.exists() {
        target = with_suffix(path, &format!(".corrupt-{stamp}-{n}"));
        n += 1;
    }
    fs::rename(path, &target)?;
    for side in ["-wal", "-journal"] {
        let from = with_suffix(path, side);
        if from.exists() {
            if let Err(e) = fs::rename(&from, with_suffix(&target, side)) {
                tracing::warn!(file = %from.display(), error = %e, "cannot move aside");
            }
        }
    }
    // The shared-memory index is rebuilt from the WAL; a stale one must not meet a new file.
    let _ = fs::remove_file(with_suffix(path, "-shm"));
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = open_writer(&path).unwrap_err();
        assert!(err.is_corrupt(), "{err}");
    }

    #[test]
    fn a_file_in_place_of_a_directory_is_not_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"x").unwrap();
        let err = open_writer(&dir.path().join("f/sub/h.db")).unwrap_err();
        assert!(!err.is_corrupt(), "{err}");
        assert!(matches!(err, OpenError::Dir { .. }), "{err}");
    }

    #[test]
    fn moving_aside_keeps_the_wal_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.db");
        let now = SystemTime::now();
        fs::write(&path, b"one").unwrap();
        fs::write(with_suffix(&path, "-wal"), b"wal").unwrap();
        let first = move_aside(&path, now).unwrap();
        fs::write(&path, b"two").unwrap();
        let second = move_aside(&path, now).unwrap();
        assert_ne!(first, second);
        assert_eq!(fs::read(&first).unwrap(), b"one");
        assert_eq!(fs::read(&second).unwrap(), b"two");
        assert_eq!(fs::read(with_suffix(&first, "-wal")).unwrap(), b"wal");
        assert!(!path.exists());
    }

    #[test]
    fn a_new_database_is_in_wal_mode_with_incremental_vacuum() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_writer(&dir.path().join("a/b/h.db")).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        let vacuum: i64 = conn
            .pragma_query_value(None, "auto_vacuum", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        assert_eq!(vacuum, 2);
    }
}
