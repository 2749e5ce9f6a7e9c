//! Reading a file an operator named (the config itself, `blackbox.yml`, secrets, CA and
//! certificate files, firewall baselines) without letting it hang or exhaust the reader:
//! [`read_bounded`] opens without blocking (a FIFO cannot stall the open), checks the opened
//! handle is a regular file (a FIFO, a device or a socket is refused by kind) and reads at
//! most a cap. A path that became a symlink to `/dev/zero` or a named pipe is then a prompt,
//! clear error instead of an endless read. Shared by every crate that reads such files.

use std::io::Read;
#[cfg(unix)]
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Most bytes of one config file (each `*.toml` of a directory, a `blackbox.yml`, a firewall
/// baseline).
pub const CONFIG_LIMIT: u64 = 16 * 1024 * 1024;
/// Most bytes of a file holding a secret (a token).
pub const SECRET_LIMIT: u64 = 64 * 1024;
/// Most bytes of a PEM file (a certificate chain, a key, a CA bundle: the system's is ~200 KiB).
pub const PEM_LIMIT: u64 = 1024 * 1024;

/// Why a file the config names could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// Opening, inspecting or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a regular file (a FIFO, a device, a socket, a directory).
    #[error("is a {0}, not a regular file")]
    NotRegular(&'static str),
    /// Larger than the cap.
    #[error("is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    /// Grew past the cap while being read (its size said otherwise).
    #[error("holds more than the limit of {limit} bytes")]
    GrewTooLarge { limit: u64 },
    /// Not UTF-8.
    #[error("not UTF-8 text (invalid byte at offset {0})")]
    NotUtf8(usize),
}

/// Reads `path` as UTF-8 text: a regular file (symlinks followed) of at most `limit` bytes.
pub fn read_bounded(path: &Path, limit: u64) -> Result<String, FileError> {
    let bytes = read_bounded_bytes(path, limit)?;
    String::from_utf8(bytes).map_err(|e| FileError::NotUtf8(e.utf8_error().valid_up_to()))
}

/// [`read_bounded`] without the UTF-8 check (PEM files, binary data).
pub fn read_bounded_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    // Non-blocking open: opening a FIFO for reading otherwise waits for a writer. The kind
    // is then checked on the opened handle, so a swap between check and open cannot fool it.
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    #[cfg(unix)]
    open.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    let file = open.open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(FileError::NotRegular(kind_name(&kind)));
    }
    if meta.len() > limit {
        return Err(FileError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte past the cap tells a file that grew (or a procfs-like file whose size lies).
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::GrewTooLarge { limit });
    }
    Ok(bytes)
}

/// The kind of a file that is not a regular one, as `ls -l` would tell it.
#[cfg(unix)]
fn kind_name(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "directory"
    } else if kind.is_fifo() {
        "FIFO"
    } else if kind.is_char_device() {
        "character device"
    } else if kind.is_block_device() {
        "block device"
    } else if kind.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// The kind of a file that is not a regular one.
#[cfg(not(unix))]
fn kind_name(kind: &std::fs::FileType) -> &'static str {
    if kind.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_character_device_by_kind() {
        let e = read_bounded(Path::new("/dev/zero"), CONFIG_LIMIT).unwrap_err();
        assert_eq!(e.to_string(), "is a character device, not a regular file");
    }

    #[test]
    fn refuses_a_fifo_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p.toml");
        rustix::fs::mkfifoat(rustix::fs::CWD, &fifo, rustix::fs::Mode::RWXU).unwrap();
        let e = read_bounded(&fifo, CONFIG_LIMIT).unwrap_err();
        assert_eq!(e.to_string(), "is a FIFO, not a regular file");
    }

    #[test]
    fn refuses_a_file_over_the_cap_naming_size_and_cap() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        std::fs::write(&p, vec![b'a'; 11]).unwrap();
        let e = read_bounded(&p, 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "is 11 bytes, more than the limit of 10 bytes"
        );
        assert_eq!(read_bounded(&p, 11).unwrap().len(), 11);
    }

    #[test]
    fn a_dangling_symlink_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l");
        std::os::unix::fs::symlink(dir.path().join("gone"), &p).unwrap();
        let e = read_bounded(&p, 10).unwrap_err();
        assert!(matches!(e, FileError::Io(e) if e.kind() == std::io::ErrorKind::NotFound));
    }
}
