//! The cluster key: the secret whose HMAC-SHA256 tags authenticate datagrams.

use std::fmt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The length of a tag: a whole HMAC-SHA256.
pub const TAG_LEN: usize = 32;

/// The cluster key, keyed once; each tag starts from a copy of it.
///
/// Its `Debug` form never shows the secret.
#[derive(Clone)]
pub struct ClusterKey {
    keyed: Hmac<Sha256>,
}

/// Why a cluster key could not be loaded. Nothing was started.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file could not be read.
    #[error(
        "cannot read the cluster key file {path}: {source}; check the path and its permissions"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key is too short to be a secret.
    #[error(
        "the cluster key{from} is {len} bytes, fewer than {min}; \
         make one with e.g. `head -c 32 /dev/urandom | base64 > cluster.key` \
         and give every node the same file",
        from = .path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default(),
        min = ClusterKey::MIN_LEN,
    )]
    TooShort {
        /// The file, when the key came from one.
        path: Option<PathBuf>,
        /// The key's length after trimming.
        len: usize,
    },
}

impl ClusterKey {
    /// The shortest key accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// A key from the secret's bytes (at least [`ClusterKey::MIN_LEN`]).
    pub fn new(secret: &[u8]) -> Result<ClusterKey, KeyError> {
        if secret.len() < Self::MIN_LEN {
            return Err(KeyError::TooShort {
                path: None,
                len: secret.len(),
            });
        }
        // HMAC takes a key of any length.
        let keyed =
            <Hmac<Sha256> as KeyInit>::new_from_slice(secret).map_err(|_| KeyError::TooShort {
                path: None,
                len: secret.len(),
            })?;
        Ok(ClusterKey { keyed })
    }

    /// The key in `path`: the file's bytes with leading and trailing ASCII
    /// whitespace removed (so a trailing newline does not matter).
    pub fn from_file(path: &Path) -> Result<ClusterKey, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
            path: path.to_owned(),
            source,
        })?;
        ClusterKey::new(bytes.trim_ascii()).map_err(|error| match error {
            KeyError::TooShort { len, .. } => KeyError::TooShort {
                path: Some(path.to_owned()),
                len,
            },
            other => other,
        })
    }

    /// The tag of `header` followed by `payload`.
    pub(crate) fn tag(&self, header: &[u8], payload: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.keyed.clone();
        mac.update(header);
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    /// Whether `tag` is the tag of `header` followed by `payload` (compared in
    /// constant time).
    pub(crate) fn verify(&self, header: &[u8], payload: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.keyed.clone();
        mac.update(header);
        mac.update(payload);
        mac.verify_slice(tag).is_ok()
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_depend_on_the_key_and_every_byte() {
        let key = ClusterKey::new(b"0123456789abcdef").unwrap();
        let other = ClusterKey::new(b"0123456789abcdeF").unwrap();
        let tag = key.tag(b"head", b"body");
        assert!(key.verify(b"head", b"body", &tag));
        assert!(!other.verify(b"head", b"body", &tag));
        assert!(!key.verify(b"head", b"bodY", &tag));
        assert!(!key.verify(b"hea", b"dbody", &key.tag(b"head", b"bodx")));
        assert!(!key.verify(b"head", b"body", &tag[..31]));
    }

    #[test]
    fn short_keys_are_refused_and_files_are_trimmed() {
        assert!(matches!(
            ClusterKey::new(b"short"),
            Err(KeyError::TooShort { len: 5, .. })
        ));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.key");
        std::fs::write(&path, "0123456789abcdef\n").unwrap();
        let from_file = ClusterKey::from_file(&path).unwrap();
        let direct = ClusterKey::new(b"0123456789abcdef").unwrap();
        assert_eq!(from_file.tag(b"h", b"p"), direct.tag(b"h", b"p"));
        std::fs::write(&path, "  tiny \n").unwrap();
        let error = ClusterKey::from_file(&path).unwrap_err().to_string();
        assert!(
            error.contains("cluster.key") && error.contains("4 bytes"),
            "{error}"
        );
        let missing = ClusterKey::from_file(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(missing, KeyError::Read { .. }));
    }
}
