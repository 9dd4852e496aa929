//! A durable file for what an actor saves (`Out::save`).
//!
//! Each [`DurableFile::store`] replaces the whole record, atomically: the new
//! content goes to a temp file beside the real one, is fsynced, is renamed over
//! the real one, and the directory is fsynced so that the rename itself
//! survives a crash. After a crash the file holds either the old record or the
//! new one, never a mix.
//!
//! The file carries its own header, so that damage the rename cannot prevent
//! (a disk that loses or flips bytes, a file copied half-way, a file of the
//! wrong kind) is detected on [`DurableFile::load`]. Every multi-byte integer
//! is little-endian.
//!
//! | offset | size | field | value |
//! |---:|---:|---|---|
//! | 0 | 8 | magic | `HAFTDATA` ([`FILE_MAGIC`]) |
//! | 8 | 1 | version | [`FILE_VERSION`] |
//! | 9 | 8 | length | the content's length in bytes, `u64` |
//! | 17 | 4 | checksum | CRC-32 (IEEE) of bytes 0..17 followed by the content, `u32` |
//! | 21 | length | content | the saved record, as the caller gave it |
//!
//! A damaged file is [`StorageError::Corrupt`], never "no record": a node that
//! started empty after losing its record could vote twice or forget a
//! decision. Only a missing file means "nothing saved yet".
//!
//! One process owns a file: the temp file has a fixed name (the file's name
//! with `.tmp` appended), and [`DurableFile::open`] deletes a temp file left by
//! a crash in the middle of a store, whose content was never promised to
//! anyone.

use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::codec::checksum;

/// The first eight bytes of every haft durable file.
pub const FILE_MAGIC: [u8; 8] = *b"HAFTDATA";

/// The version of the file layout in the module doc.
pub const FILE_VERSION: u8 = 1;

/// The length of the header that precedes the content.
pub const FILE_HEADER_LEN: usize = 21;

const LENGTH_AT: usize = 9;
const CHECKSUM_AT: usize = 17;

/// What is wrong with a damaged durable file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Corruption {
    /// The file is shorter than its header: a write was torn or the file was
    /// cut.
    TornHeader {
        /// The file's length.
        len: u64,
    },
    /// The file does not start with [`FILE_MAGIC`].
    BadMagic {
        /// The first eight bytes of the file.
        found: [u8; 8],
    },
    /// The file was written in another layout version.
    BadVersion {
        /// The version byte of the file.
        found: u8,
    },
    /// Fewer content bytes follow the header than it announces.
    Truncated {
        /// The content length in the header.
        declared: u64,
        /// The content bytes present.
        actual: u64,
    },
    /// More bytes follow the header than it announces.
    TrailingBytes {
        /// The content length in the header.
        declared: u64,
        /// The content bytes present.
        actual: u64,
    },
    /// The content does not match its checksum.
    BadChecksum {
        /// The checksum in the header.
        expected: u32,
        /// The checksum of the bytes on disk.
        actual: u32,
    },
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Corruption::TornHeader { len } => write!(
                f,
                "it is {len} bytes long, shorter than the {FILE_HEADER_LEN}-byte header \
                 (a torn write or a cut copy)"
            ),
            Corruption::BadMagic { found } => write!(
                f,
                "it starts with {:?} instead of \"HAFTDATA\": it is not a haft durable file",
                String::from_utf8_lossy(found)
            ),
            Corruption::BadVersion { found } => write!(
                f,
                "it has layout version {found}, but this haft reads version {FILE_VERSION}"
            ),
            Corruption::Truncated { declared, actual } => write!(
                f,
                "its header announces {declared} content bytes but only {actual} are present \
                 (the file was cut)"
            ),
            Corruption::TrailingBytes { declared, actual } => write!(
                f,
                "its header announces {declared} content bytes but {actual} are present \
                 (bytes were appended)"
            ),
            Corruption::BadChecksum { expected, actual } => write!(
                f,
                "its checksum is {expected:#010x} but its content gives {actual:#010x} \
                 (the bytes on disk changed)"
            ),
        }
    }
}

/// Why a durable file could not be opened, read or written.
#[derive(Debug, Error)]
pub enum StorageError {
    /// An operating-system call failed. For a store, the record may or may not
    /// have replaced the old one; the caller must treat it as not durable.
    #[error(
        "cannot {op} {path}: {source}; check that the data directory exists, is writable by \
         this user, and that its disk is not full"
    )]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// What was being done, e.g. "fsync" or "rename into place".
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file exists but is damaged. Nothing was changed.
    #[error(
        "{path} is corrupt: {reason}. The node will not start from a damaged record, nor start \
         empty, which could break promises it made before. Restore the file from a backup; or, \
         if this node's votes and decisions may be forgotten, move the file aside and restart"
    )]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// What is wrong with it.
        reason: Corruption,
    },
    /// The file name given to [`DurableFile::open`] is not a plain file name.
    #[error(
        "{name:?} is not usable as a durable file name: {reason}; \
         give a plain name such as \"participant.state\""
    )]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// One durable record in a file, replaced atomically by each store.
#[derive(Debug)]
pub struct DurableFile {
    dir: PathBuf,
    path: PathBuf,
    temp: PathBuf,
}

impl DurableFile {
    /// Opens (without reading) the durable file `name` in `dir`, creating `dir`
    /// if it is missing and deleting a temp file left by a crash mid-store.
    pub fn open(dir: impl Into<PathBuf>, name: &str) -> Result<DurableFile, StorageError> {
        check_name(name)?;
        let dir = dir.into();
        if !dir.is_dir() {
            fs::create_dir_all(&dir).map_err(io_error(&dir, "create the data directory"))?;
            // Make the new directory's own entry durable in its parent.
            if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let path = dir.join(name);
        let temp = dir.join(format!("{name}.tmp"));
        match fs::remove_file(&temp) {
            Ok(()) => sync_dir(&dir)?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(io_error(&temp, "remove the leftover temp file")(error)),
        }
        Ok(DurableFile { dir, path, temp })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the record. `Ok(None)` means that the file does not exist (nothing
    /// was ever stored); a damaged file is [`StorageError::Corrupt`].
    pub fn load(&self) -> Result<Option<Vec<u8>>, StorageError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(io_error(&self.path, "read")(error)),
        };
        unseal(bytes)
            .map(Some)
            .map_err(|reason| StorageError::Corrupt {
                path: self.path.clone(),
                reason,
            })
    }

    /// Replaces the record with `bytes`, durably: when this returns `Ok`, a
    /// crash at any later moment leaves `bytes` in the file.
    pub fn store(&self, bytes: &[u8]) -> Result<(), StorageError> {
        let sealed = seal(bytes);
        let mut file = File::create(&self.temp).map_err(io_error(&self.temp, "create"))?;
        file.write_all(&sealed)
            .map_err(io_error(&self.temp, "write"))?;
        file.sync_all().map_err(io_error(&self.temp, "fsync"))?;
        drop(file);
        fs::rename(&self.temp, &self.path).map_err(io_error(&self.path, "rename into place"))?;
        sync_dir(&self.dir)
    }
}

/// The header and `content`, as written to disk.
fn seal(content: &[u8]) -> Vec<u8> {
    let mut file = Vec::with_capacity(FILE_HEADER_LEN + content.len());
    file.extend_from_slice(&FILE_MAGIC);
    file.push(FILE_VERSION);
    file.extend_from_slice(&(content.len() as u64).to_le_bytes());
    let sum = checksum(&file, content);
    file.extend_from_slice(&sum.to_le_bytes());
    file.extend_from_slice(content);
    file
}

/// The content of a file as read from disk, checked against its header.
fn unseal(mut file: Vec<u8>) -> Result<Vec<u8>, Corruption> {
    let Some(header) = file.first_chunk::<FILE_HEADER_LEN>() else {
        return Err(Corruption::TornHeader {
            len: file.len() as u64,
        });
    };
    let mut magic = [0; 8];
    magic.copy_from_slice(&header[..8]);
    if magic != FILE_MAGIC {
        return Err(Corruption::BadMagic { found: magic });
    }
    if header[8] != FILE_VERSION {
        return Err(Corruption::BadVersion { found: header[8] });
    }
    let mut length = [0; 8];
    length.copy_from_slice(&header[LENGTH_AT..CHECKSUM_AT]);
    let declared = u64::from_le_bytes(length);
    let mut sum = [0; 4];
    sum.copy_from_slice(&header[CHECKSUM_AT..]);
    let expected = u32::from_le_bytes(sum);
    let content = &file[FILE_HEADER_LEN..];
    let actual = content.len() as u64;
    if declared > actual {
        return Err(Corruption::Truncated { declared, actual });
    }
    if declared < actual {
        return Err(Corruption::TrailingBytes { declared, actual });
    }
    let computed = checksum(&header[..CHECKSUM_AT], content);
    if computed != expected {
        return Err(Corruption::BadChecksum {
            expected,
            actual: computed,
        });
    }
    file.drain(..FILE_HEADER_LEN);
    Ok(file)
}

fn check_name(name: &str) -> Result<(), StorageError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name == "." || name == ".." {
        Some("it names a directory")
    } else if name.contains(['/', '\\', '\0']) {
        Some("it contains a path separator or a NUL byte")
    } else if name.ends_with(".tmp") {
        Some("names ending in .tmp are reserved for temp files")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StorageError::InvalidName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Makes the entries of `dir` (a rename, a new or deleted file) durable.
fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(io_error(dir, "fsync the directory"))
}

fn io_error(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Io { path, op, source }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open_in(dir: &tempfile::TempDir) -> DurableFile {
        DurableFile::open(dir.path(), "state").unwrap()
    }

    fn corruption(file: &DurableFile) -> Corruption {
        match file.load() {
            Err(StorageError::Corrupt { path, reason }) => {
                assert_eq!(path, file.path());
                reason
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    /// Stores a record, then rewrites the file's bytes with `damage`.
    fn damaged(damage: impl FnOnce(&mut Vec<u8>)) -> (tempfile::TempDir, DurableFile) {
        let dir = tempfile::tempdir().unwrap();
        let file = open_in(&dir);
        file.store(b"the prepared record").unwrap();
        let mut bytes = fs::read(file.path()).unwrap();
        damage(&mut bytes);
        fs::write(file.path(), bytes).unwrap();
        (dir, file)
    }

    #[test]
    fn missing_file_is_none_and_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = open_in(&dir);
        assert_eq!(file.load().unwrap(), None);
        file.store(b"first").unwrap();
        assert_eq!(file.load().unwrap().as_deref(), Some(&b"first"[..]));
        file.store(b"").unwrap();
        assert_eq!(file.load().unwrap().as_deref(), Some(&b""[..]));
        file.store(b"second, longer than the first").unwrap();
        // A new handle (a restarted node) reads the last record.
        let reopened = open_in(&dir);
        assert_eq!(
            reopened.load().unwrap().as_deref(),
            Some(&b"second, longer than the first"[..])
        );
    }

    #[test]
    fn creates_a_missing_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a").join("b");
        let file = DurableFile::open(&nested, "state").unwrap();
        file.store(b"x").unwrap();
        assert_eq!(file.path(), nested.join("state"));
        assert_eq!(file.load().unwrap().as_deref(), Some(&b"x"[..]));
    }

    #[test]
    fn torn_header() {
        let (_dir, file) = damaged(|bytes| bytes.truncate(FILE_HEADER_LEN - 1));
        assert_eq!(
            corruption(&file),
            Corruption::TornHeader {
                len: FILE_HEADER_LEN as u64 - 1
            }
        );
        let (_dir, file) = damaged(Vec::clear);
        assert_eq!(corruption(&file), Corruption::TornHeader { len: 0 });
    }

    #[test]
    fn truncated_content() {
        let (_dir, file) = damaged(|bytes| {
            bytes.pop();
        });
        assert!(matches!(corruption(&file), Corruption::Truncated { .. }));
    }

    #[test]
    fn trailing_bytes() {
        let (_dir, file) = damaged(|bytes| bytes.push(0));
        assert!(matches!(
            corruption(&file),
            Corruption::TrailingBytes { .. }
        ));
    }

    #[test]
    fn wrong_magic() {
        let (_dir, file) = damaged(|bytes| bytes[0] = b'X');
        assert_eq!(
            corruption(&file),
            Corruption::BadMagic {
                found: *b"XAFTDATA"
            }
        );
    }

    #[test]
    fn wrong_version() {
        let (_dir, file) = damaged(|bytes| bytes[8] = 9);
        assert_eq!(corruption(&file), Corruption::BadVersion { found: 9 });
    }

    #[test]
    fn bad_checksum() {
        let (_dir, file) = damaged(|bytes| {
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
        });
        assert!(matches!(corruption(&file), Corruption::BadChecksum { .. }));
    }

    #[test]
    fn corrupt_error_names_the_file_and_what_to_do() {
        let (_dir, file) = damaged(|bytes| bytes[20] ^= 0xff);
        let message = file.load().unwrap_err().to_string();
        assert!(
            message.contains(&file.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains("checksum"), "{message}");
        assert!(
            message.contains("Restore the file from a backup"),
            "{message}"
        );
    }

    #[test]
    fn leftover_temp_file_is_removed_and_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let file = open_in(&dir);
        file.store(b"durable").unwrap();
        // A crash between writing the temp file and renaming it.
        let temp = dir.path().join("state.tmp");
        fs::write(&temp, b"half a reco").unwrap();
        let reopened = open_in(&dir);
        assert!(!temp.exists());
        assert_eq!(reopened.load().unwrap().as_deref(), Some(&b"durable"[..]));
        // A crash before the first store ever completed: still nothing saved.
        let empty = tempfile::tempdir().unwrap();
        fs::write(empty.path().join("state.tmp"), b"junk").unwrap();
        assert_eq!(open_in(&empty).load().unwrap(), None);
    }

    #[test]
    fn invalid_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["", ".", "..", "a/b", "state.tmp"] {
            let error = DurableFile::open(dir.path(), name).unwrap_err();
            assert!(
                matches!(error, StorageError::InvalidName { .. }),
                "{name:?}: {error}"
            );
        }
    }

    #[test]
    fn io_error_names_the_path_and_operation() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be: reading it fails.
        fs::create_dir(dir.path().join("state")).unwrap();
        let file = open_in(&dir);
        let error = file.load().unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(error, StorageError::Io { op: "read", .. }),
            "{message}"
        );
        assert!(message.contains("state"), "{message}");
    }
}
