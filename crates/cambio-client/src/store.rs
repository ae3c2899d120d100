//! Persisting the refresh token between runs: the [`TokenStore`] trait, an in-memory store and
//! a file store.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// What a store keeps: the refresh token and whom it belongs to, so that a token saved for
/// one issuer or client is never presented to another.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredSession {
    /// The realm's issuer URL.
    pub issuer: String,
    /// The client the refresh token was issued to.
    pub client_id: String,
    refresh_token: Zeroizing<String>,
    /// The DPoP key a public client's refresh token is bound to, as `{alg}.{PKCS#8, base64url}`:
    /// a restore must prove the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dpop_key: Option<Zeroizing<String>>,
}

impl StoredSession {
    /// A record for `refresh_token`, issued by `issuer` to `client_id`.
    pub fn new(issuer: &str, client_id: &str, refresh_token: &str) -> StoredSession {
        StoredSession {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            refresh_token: Zeroizing::new(refresh_token.to_owned()),
            dpop_key: None,
        }
    }

    /// The record with the DPoP key the session's tokens are bound to.
    #[must_use]
    pub fn with_dpop_key(mut self, key: &cambio_jose::SigningKey) -> StoredSession {
        use base64::Engine as _;
        let der = key.pkcs8_der();
        self.dpop_key = Some(Zeroizing::new(format!(
            "{}.{}",
            key.algorithm().as_str(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(der.as_slice())
        )));
        self
    }

    /// A DPoP proof by the session's key for presenting `access_token` (a token exchanged in
    /// this session) in a `method` request to `url`, made without contacting the server;
    /// `None` when the session has no DPoP key.
    ///
    /// # Errors
    /// [`crate::Error::Protocol`] if the proof cannot be signed.
    pub fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        access_token: &str,
    ) -> crate::Result<Option<String>> {
        self.dpop_key()
            .map(|key| crate::http::Dpop::new(key).proof(method, url, Some(access_token), false))
            .transpose()
    }

    /// The stored DPoP key, if there is one; `None` also for a record that does not parse
    /// (the session then cannot be resumed with its key and the user signs in again).
    pub(crate) fn dpop_key(&self) -> Option<cambio_jose::SigningKey> {
        use base64::Engine as _;
        let (alg, der) = self.dpop_key.as_deref()?.split_once('.')?;
        let alg = cambio_jose::Algorithm::from_name(alg)?;
        let der = Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(der)
                .ok()?,
        );
        cambio_jose::SigningKey::from_pkcs8(alg, &der).ok()
    }

    /// The refresh token itself. Only for [`TokenStore`] implementations that must write it
    /// somewhere; application code has no use for it.
    pub fn expose_refresh_token(&self) -> &str {
        &self.refresh_token
    }
}

impl fmt::Debug for StoredSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredSession")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("refresh_token", &"[redacted]")
            .field("dpop_key", &self.dpop_key.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Where the client keeps its refresh token between runs.
///
/// The client saves after every login and every refresh (refresh tokens rotate, so the
/// stored one is always the latest) and clears on logout or when the server refuses the
/// token. Methods are synchronous and expected to be quick (a small file, a keychain call).
pub trait TokenStore: Send + Sync {
    /// The stored session, if any.
    ///
    /// # Errors
    /// The I/O error of the underlying medium.
    fn load(&self) -> std::io::Result<Option<StoredSession>>;

    /// Replaces the stored session.
    ///
    /// # Errors
    /// The I/O error of the underlying medium.
    fn save(&self, session: &StoredSession) -> std::io::Result<()>;

    /// Removes the stored session; removing nothing is not an error.
    ///
    /// # Errors
    /// The I/O error of the underlying medium.
    fn clear(&self) -> std::io::Result<()>;
}

/// A store in memory: the session lives as long as the process (tests, short-lived tools).
#[derive(Default)]
pub struct MemoryTokenStore {
    session: Mutex<Option<StoredSession>>,
}

impl MemoryTokenStore {
    /// An empty store.
    pub fn new() -> MemoryTokenStore {
        MemoryTokenStore::default()
    }
}

impl fmt::Debug for MemoryTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryTokenStore").finish_non_exhaustive()
    }
}

impl TokenStore for MemoryTokenStore {
    fn load(&self) -> std::io::Result<Option<StoredSession>> {
        Ok(self.lock().clone())
    }

    fn save(&self, session: &StoredSession) -> std::io::Result<()> {
        *self.lock() = Some(session.clone());
        Ok(())
    }

    fn clear(&self) -> std::io::Result<()> {
        *self.lock() = None;
        Ok(())
    }
}

impl MemoryTokenStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<StoredSession>> {
        // A panic while holding the lock cannot leave an Option half-written.
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A store in a JSON file readable by its owner only (mode 0600 on Unix; its directory is
/// created 0700 when missing). Writes go to a temporary file that replaces the old one, so a
/// crash never leaves half a token behind.
#[derive(Debug, Clone)]
pub struct FileTokenStore {
    path: PathBuf,
}

impl FileTokenStore {
    /// A store at `path`; nothing is touched until the first save.
    pub fn new(path: impl Into<PathBuf>) -> FileTokenStore {
        FileTokenStore { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl TokenStore for FileTokenStore {
    fn load(&self) -> std::io::Result<Option<StoredSession>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    fn save(&self, session: &StoredSession) -> std::io::Result<()> {
        let json = Zeroizing::new(serde_json::to_vec_pretty(session)?);
        write_private(&self.path, &json)
    }

    fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// Replaces the file at `path` with `bytes`, readable by its owner only (its directory is
/// created 0700 when missing). The bytes go to a temporary file of this process first, which
/// then replaces the old one, so a crash or a concurrent writer never leaves half a file.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(name);
    let _ = std::fs::remove_file(&temporary);
    let written = private_file(&temporary).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&temporary, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = std::fs::remove_file(&temporary);
            Err(e)
        }
    }
}

/// A new file, mode 0600 from the start (never world-readable, not even for a moment).
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)
}
