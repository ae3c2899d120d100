//! [`FileTokenCache`]: exchanged tokens kept in a file between runs of a short-lived program
//! (the `cambio` CLI), so that a second run within a token's life asks the server nothing.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::exchange::{ExchangeRequest, ExchangedToken, RenewalMargin};
use crate::store::write_private;

/// The most tokens a cache file keeps; past it the ones expiring first are dropped.
const MAX_ENTRIES: usize = 64;

/// Exchanged tokens in a JSON file readable by its owner only (mode 0600, written whole
/// through a temporary file like [`crate::FileTokenStore`]).
///
/// An entry is found only for the same issuer, client, audience, scope and requested token
/// type, and only while [`RenewalMargin`] says a cached token may still be handed out (the
/// same rule as the client's memory cache). The file holds bearer tokens for the audiences,
/// never the internal access or refresh token; whoever owns the session should
/// [`FileTokenCache::clear`] it when the session changes (login, logout).
#[derive(Debug, Clone)]
pub struct FileTokenCache {
    path: PathBuf,
}

#[derive(Serialize, Deserialize, Default)]
struct CacheFile {
    entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    issuer: String,
    client_id: String,
    audience: String,
    scope: Option<String>,
    requested_token_type: Option<String>,
    token: String,
    token_type: String,
    issued_token_type: String,
    token_scope: String,
    /// Seconds since the Unix epoch.
    expires_at: u64,
    /// Seconds.
    lifetime: u64,
}

impl Entry {
    fn is_for(&self, issuer: &str, client_id: &str, request: &ExchangeRequest) -> bool {
        self.issuer == issuer
            && self.client_id == client_id
            && self.audience == request.audience
            && self.scope == request.scope
            && self.requested_token_type == request.requested_token_type
    }

    fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.expires_at)
    }
}

impl FileTokenCache {
    /// A cache at `path`; nothing is touched until the first [`FileTokenCache::put`].
    pub fn new(path: impl Into<PathBuf>) -> FileTokenCache {
        FileTokenCache { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cached token for `request` from `client_id` at `issuer`, if one with enough life
    /// left (by `margin`) is there. `force_update` and the trace context of `request` play
    /// no part: the caller decides whether to ask.
    ///
    /// # Errors
    /// The file cannot be read or is not a cache file.
    pub fn get(
        &self,
        issuer: &str,
        client_id: &str,
        request: &ExchangeRequest,
        margin: &RenewalMargin,
    ) -> std::io::Result<Option<ExchangedToken>> {
        let file = self.load()?;
        let Some(entry) = file
            .entries
            .into_iter()
            .find(|e| e.is_for(issuer, client_id, request))
        else {
            return Ok(None);
        };
        let expires_at = entry.expires_at();
        let token = ExchangedToken::restored(
            entry.token,
            entry.token_type,
            entry.issued_token_type,
            entry.token_scope,
            expires_at,
            Duration::from_secs(entry.lifetime),
            margin,
        );
        Ok(token.filter(|t| t.fresh(std::time::Instant::now())))
    }

    /// Keeps `token` as the answer to `request`, replacing an older one for the same
    /// request and dropping expired entries.
    ///
    /// # Errors
    /// The file cannot be written (an unreadable old file is replaced).
    pub fn put(
        &self,
        issuer: &str,
        client_id: &str,
        request: &ExchangeRequest,
        token: &ExchangedToken,
    ) -> std::io::Result<()> {
        let mut file = self.load().unwrap_or_default();
        let now = SystemTime::now();
        file.entries
            .retain(|e| !e.is_for(issuer, client_id, request) && e.expires_at() > now);
        file.entries.push(Entry {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            audience: request.audience.clone(),
            scope: request.scope.clone(),
            requested_token_type: request.requested_token_type.clone(),
            token: token.token().to_owned(),
            token_type: token.token_type().to_owned(),
            issued_token_type: token.issued_token_type().to_owned(),
            token_scope: token.scope().to_owned(),
            expires_at: token
                .expires_at()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs(),
            lifetime: token.lifetime().as_secs(),
        });
        if file.entries.len() > MAX_ENTRIES {
            file.entries
                .sort_by_key(|e| std::cmp::Reverse(e.expires_at));
            file.entries.truncate(MAX_ENTRIES);
        }
        let json = zeroize::Zeroizing::new(serde_json::to_vec(&file)?);
        write_private(&self.path, &json)
    }

    /// Forgets every cached token; removing nothing is not an error.
    ///
    /// # Errors
    /// The file exists and cannot be removed.
    pub fn clear(&self) -> std::io::Result<()> {
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    fn load(&self) -> std::io::Result<CacheFile> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => zeroize::Zeroizing::new(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(CacheFile::default()),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(value: &str, lifetime: u64) -> ExchangedToken {
        ExchangedToken::new(
            value.into(),
            "Bearer".into(),
            "urn:ietf:params:oauth:token-type:access_token".into(),
            "profile".into(),
            Duration::from_secs(lifetime),
            &RenewalMargin::default(),
        )
    }

    #[test]
    fn found_only_for_the_same_request_and_while_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileTokenCache::new(dir.path().join("cache.json"));
        let margin = RenewalMargin::default();
        let orders = ExchangeRequest::new("orders-api");
        let issuer = "http://127.0.0.1:1/realms/demo";
        assert!(
            cache
                .get(issuer, "app", &orders, &margin)
                .unwrap()
                .is_none()
        );

        cache
            .put(issuer, "app", &orders, &token("t1", 300))
            .unwrap();
        let hit = cache.get(issuer, "app", &orders, &margin).unwrap().unwrap();
        assert_eq!(hit.token(), "t1");
        assert_eq!(hit.scope(), "profile");
        assert_eq!(hit.lifetime(), Duration::from_secs(300));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(cache.path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        // Another client, issuer, audience, scope or type finds nothing.
        for (issuer, client, request) in [
            (issuer, "other", orders.clone()),
            ("http://127.0.0.1:2/realms/demo", "app", orders.clone()),
            (issuer, "app", ExchangeRequest::new("billing-api")),
            (issuer, "app", orders.clone().scope("profile")),
            (issuer, "app", orders.clone().requested_token_type("x")),
        ] {
            assert!(
                cache
                    .get(issuer, client, &request, &margin)
                    .unwrap()
                    .is_none()
            );
        }

        // A token within its renewal margin (here: all of its life) is not handed out.
        let cautious = RenewalMargin {
            minimum: Duration::from_secs(300),
            fraction: 0.0,
        };
        assert!(
            cache
                .get(issuer, "app", &orders, &cautious)
                .unwrap()
                .is_none()
        );

        // A newer token replaces the older one; clear forgets all.
        cache
            .put(issuer, "app", &orders, &token("t2", 300))
            .unwrap();
        let hit = cache.get(issuer, "app", &orders, &margin).unwrap().unwrap();
        assert_eq!(hit.token(), "t2");
        cache.clear().unwrap();
        assert!(
            cache
                .get(issuer, "app", &orders, &margin)
                .unwrap()
                .is_none()
        );
        cache.clear().unwrap();
    }

    #[test]
    fn a_token_claiming_more_life_than_it_had_is_not_used() {
        // An entry whose expiry lies further ahead than its lifetime (the clock was set back,
        // or the file was edited) is refused.
        let dir = tempfile::tempdir().unwrap();
        let cache = FileTokenCache::new(dir.path().join("cache.json"));
        let request = ExchangeRequest::new("orders-api");
        let far = SystemTime::now() + Duration::from_secs(10_000);
        let entry = Entry {
            issuer: "i".into(),
            client_id: "c".into(),
            audience: "orders-api".into(),
            scope: None,
            requested_token_type: None,
            token: "t".into(),
            token_type: "Bearer".into(),
            issued_token_type: "x".into(),
            token_scope: String::new(),
            expires_at: far.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            lifetime: 300,
        };
        let json = serde_json::to_vec(&CacheFile {
            entries: vec![entry],
        })
        .unwrap();
        std::fs::write(cache.path(), json).unwrap();
        let found = cache.get("i", "c", &request, &RenewalMargin::default());
        assert!(found.unwrap().is_none());

        // A file that is not a cache file is an error for get, and replaced by put.
        std::fs::write(cache.path(), b"not json").unwrap();
        assert!(
            cache
                .get("i", "c", &request, &RenewalMargin::default())
                .is_err()
        );
        cache.put("i", "c", &request, &token("t3", 300)).unwrap();
        let hit = cache.get("i", "c", &request, &RenewalMargin::default());
        assert_eq!(hit.unwrap().unwrap().token(), "t3");
    }
}
