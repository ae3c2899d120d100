//! User passwords: Argon2id hashes in PHC string format (RFC 9106 parameters of the argon2
//! crate's defaults). Hashing is slow by design, so callers run it off the async workers, and
//! memory-hard: each verification holds about 19 MiB. [`HashingGate`] bounds how many run at
//! once and how many wait, so that a flood of logins costs a bounded amount of memory and is
//! answered quickly instead of queueing without end.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    crate::random::fill(&mut salt);
    let salt = match SaltString::encode_b64(&salt) {
        Ok(salt) => salt,
        Err(_) => return String::new(),
    };
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .unwrap_or_default()
}

/// Checks a password against a stored hash: Cambio's Argon2id, or a hash imported from
/// Keycloak (PBKDF2 or Argon2 with its own parameters, see [`crate::keycloak_passwords`]). A
/// malformed hash, or one whose cost exceeds the import bounds, never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    if crate::keycloak_passwords::check_bounds(stored).is_err() {
        return false;
    }
    match parsed.algorithm.as_str() {
        "pbkdf2" | "pbkdf2-sha256" | "pbkdf2-sha512" => {
            crate::keycloak_passwords::verify_pbkdf2(password, &parsed)
        }
        _ => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
    }
}

/// Whether a stored hash is in another form than Cambio's own (Argon2id with the default
/// parameters), and so is replaced at the next successful login.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let own = argon2::Params::default();
    let param = |name: &str| parsed.params.get_decimal(name);
    !(parsed.algorithm.as_str() == "argon2id"
        && parsed.version == Some(19)
        && param("m") == Some(own.m_cost())
        && param("t") == Some(own.t_cost())
        && param("p") == Some(own.p_cost()))
}

/// A hash to verify against when the user does not exist, so that the time taken does not
/// reveal which usernames are registered.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash("cambio-dummy-password"))
}

/// How many password verifications may run at once, how many more may wait for a turn, and
/// for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimit {
    /// Verifications running at once; 0 means one per available CPU (at most 8).
    pub concurrent: usize,
    /// Requests waiting for a turn beyond those running; more are refused at once (429).
    pub queue: usize,
    /// The longest a request waits for a turn before it is refused (503).
    pub wait: Duration,
}

impl Default for HashingLimit {
    fn default() -> Self {
        HashingLimit {
            concurrent: 0,
            queue: 0,
            wait: Duration::from_secs(5),
        }
    }
}

/// Why a verification did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GateRefusal {
    /// Every running and waiting place is taken.
    Full,
    /// No turn came within the wait.
    TimedOut,
}

/// A bounded queue in front of password hashing: `running` turns, and `admitted` places (the
/// turns plus the waiting room). Both are Tokio semaphores, so waiting is fair (first come,
/// first served), a waiter that gives up frees its place, and a running hash keeps its turn
/// until it ends.
pub struct HashingGate {
    running: Arc<Semaphore>,
    admitted: Arc<Semaphore>,
    wait: Duration,
    /// Places held per client address (IPv6 by /64): one address may hold at most half of the
    /// places, so that a flood from one address never fills the gate that other clients'
    /// logins queue in. (Behind a reverse proxy every client shares its address; half the
    /// gate is still there for a burst of real logins.)
    per_address: Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>,
    per_address_limit: usize,
    floor: Arc<CheckFloor>,
}

/// How long the slowest recent password check sets the time every check takes.
const FLOOR_WINDOW: Duration = Duration::from_secs(600);
/// The most a check is padded to: above the costliest hash an import accepts, so that even it
/// is covered, and a bound on what one slow moment of the machine can do to every login.
const FLOOR_CAP: Duration = Duration::from_secs(3);

/// The time of the slowest password check lately, which every check is padded to.
///
/// A hash imported from Keycloak keeps Keycloak's algorithm and cost until the user's first
/// login (PBKDF2-SHA512 with 210,000 iterations takes several times as long as Cambio's
/// Argon2id), so without padding a wrong password for such a user would answer at another
/// speed than an unknown username (checked against Cambio's own dummy hash), and tell that the
/// user exists. Padding to the slowest check of the last ten minutes makes them answer alike;
/// only the first slow check after a quiet window is unpadded.
#[derive(Debug)]
struct CheckFloor {
    slowest: std::sync::Mutex<(Duration, std::time::Instant)>,
}

impl CheckFloor {
    fn new(now: std::time::Instant) -> CheckFloor {
        CheckFloor {
            slowest: std::sync::Mutex::new((Duration::ZERO, now)),
        }
    }

    /// Records a check that took `took` and returns the time every check should take now.
    fn observe(&self, took: Duration, now: std::time::Instant) -> Duration {
        let Ok(mut slowest) = self.slowest.lock() else {
            return took;
        };
        let took = took.min(FLOOR_CAP);
        if took >= slowest.0 || now.saturating_duration_since(slowest.1) > FLOOR_WINDOW {
            *slowest = (took, now);
        }
        slowest.0
    }
}

/// A client's share of the gate, given back when dropped.
struct AddressShare {
    map: Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl Drop for AddressShare {
    fn drop(&mut self) {
        if let Ok(mut map) = self.map.lock()
            && let Some(count) = map.get_mut(&self.key)
        {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.key);
            }
        }
    }
}

/// The key an address is counted under: IPv6 by its /64, which one client usually holds whole.
fn address_key(peer: IpAddr) -> IpAddr {
    match peer {
        IpAddr::V4(_) => peer,
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
    }
}

impl HashingGate {
    pub fn new(limit: HashingLimit) -> HashingGate {
        let concurrent = match limit.concurrent {
            0 => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
                .min(8),
            n => n,
        };
        // By default four requests may wait per turn: enough to absorb a burst of real users.
        let queue = match limit.queue {
            0 => concurrent * 4,
            n => n,
        };
        HashingGate {
            running: Arc::new(Semaphore::new(concurrent)),
            admitted: Arc::new(Semaphore::new(concurrent + queue)),
            wait: limit.wait,
            per_address: Arc::default(),
            per_address_limit: ((concurrent + queue) / 2).max(1),
            floor: Arc::new(CheckFloor::new(std::time::Instant::now())),
        }
    }

    /// Takes one of `peer`'s places, or refuses when it holds its share already.
    fn share(&self, peer: IpAddr) -> Result<AddressShare, GateRefusal> {
        let key = address_key(peer);
        let mut map = self.per_address.lock().map_err(|_| GateRefusal::Full)?;
        let count = map.entry(key).or_insert(0);
        if *count >= self.per_address_limit {
            return Err(GateRefusal::Full);
        }
        *count += 1;
        Ok(AddressShare {
            map: self.per_address.clone(),
            key,
        })
    }

    /// Runs `work` for a client at `peer` on the blocking pool once a turn is free.
    pub async fn run<T: Send + 'static>(
        &self,
        peer: IpAddr,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, GateRefusal> {
        let share = self.share(peer)?;
        let place = self
            .admitted
            .clone()
            .try_acquire_owned()
            .map_err(|_| GateRefusal::Full)?;
        let turn = tokio::time::timeout(self.wait, self.running.clone().acquire_owned())
            .await
            .map_err(|_| GateRefusal::TimedOut)?
            .map_err(|_| GateRefusal::TimedOut)?;
        // The permits go with the work: a caller that stops waiting (its client went away)
        // does not free the place while the hash still runs on the blocking pool.
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop((turn, place, share));
            result
        })
        .await
        .map_err(|_| GateRefusal::TimedOut)
    }
}

/// The outcome of a password check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub ok: bool,
    /// After a successful check of a hash in another form than Cambio's own (one imported
    /// from Keycloak): the password hashed anew, to be stored in its place.
    pub rehashed: Option<String>,
}

/// Verifies on the blocking pool, through the gate (every form of hash, Keycloak's PBKDF2
/// and Argon2 included, and the rehash after it, runs within one turn). An unknown user (no
/// stored hash) is verified against a dummy hash, and every check then waits until it has
/// taken as long as the slowest recent one (see [`CheckFloor`]), so that the time taken does
/// not tell whether, or with which kind of hash, a user exists.
pub async fn verify_async(
    gate: &HashingGate,
    peer: IpAddr,
    password: String,
    stored: Option<String>,
) -> Result<Verified, GateRefusal> {
    let (verified, took) = gate
        .run(peer, move || {
            let started = std::time::Instant::now();
            let known = stored.is_some();
            let stored = stored.as_deref().unwrap_or(dummy_hash());
            // Verified first, whether the user is known or not: `known && verify(..)` would
            // skip the dummy check and answer unknown usernames at once.
            let matches = verify(&password, stored);
            let ok = known && matches;
            let took = started.elapsed();
            let rehashed = (ok && needs_rehash(stored))
                .then(|| hash(&password))
                .filter(|h| !h.is_empty());
            (Verified { ok, rehashed }, took)
        })
        .await?;
    let floor = gate.floor.observe(took, std::time::Instant::now());
    // Waiting holds no place at the gate and no blocking thread.
    tokio::time::sleep(floor.saturating_sub(took)).await;
    Ok(verified)
}

/// Replaces a user's password hash after a successful login, unless it changed meanwhile
/// (an administrator reset it): the user is read again from the store, under the admin
/// write lock, so that no other field is written back from a stale copy.
pub async fn store_rehashed(
    app: &crate::state::AppState,
    realm_id: &str,
    user_id: &str,
    old: &str,
    new: String,
) -> cambio_store::StoreResult<()> {
    let _turn = app.admin_writes.lock().await;
    let Some(object) = app
        .store
        .get_object(realm_id, crate::state::KIND_USER, user_id)
        .await?
    else {
        return Ok(());
    };
    let mut user: cambio_core::model::User = crate::state::decode(&object)?;
    if user.password_hash.as_deref() != Some(old) {
        return Ok(());
    }
    user.password_hash = Some(new);
    // No role changes: only the hash of a password the user just proved to know.
    app.update_user(realm_id, &crate::admin::Approved::by_system(user))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_padded_to_the_slowest_recent_one() {
        let start = std::time::Instant::now();
        let floor = CheckFloor::new(start);
        let ms = Duration::from_millis;
        assert_eq!(floor.observe(ms(40), start), ms(40));
        assert_eq!(floor.observe(ms(300), start + ms(10)), ms(300));
        // A faster check afterwards is padded to the slow one.
        assert_eq!(
            floor.observe(ms(40), start + Duration::from_secs(60)),
            ms(300)
        );
        // Once the window has passed without a slow check, the floor follows the present.
        let later = start + ms(10) + FLOOR_WINDOW + ms(1);
        assert_eq!(floor.observe(ms(40), later), ms(40));
        // One slow moment of the machine pads no check beyond the cap.
        assert_eq!(floor.observe(Duration::from_secs(60), later), FLOOR_CAP);
    }

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    /// An unknown username is checked against the dummy hash, not skipped: on fresh gates
    /// (nothing to pad to yet) it takes about as long as a real user's check.
    #[tokio::test]
    async fn an_unknown_user_costs_a_real_check() {
        let stored = hash("right");
        dummy_hash();
        let timed = |stored: Option<String>| async move {
            let gate = HashingGate::new(HashingLimit::default());
            let started = std::time::Instant::now();
            let verified = verify_async(&gate, ip(1), "wrong".into(), stored).await;
            (verified.map(|v| v.ok), started.elapsed())
        };
        let (known, known_took) = timed(Some(stored)).await;
        let (unknown, unknown_took) = timed(None).await;
        assert_eq!((known, unknown), (Ok(false), Ok(false)));
        assert!(
            unknown_took >= known_took / 2,
            "unknown {unknown_took:?}, known {known_took:?}"
        );
    }

    #[tokio::test]
    async fn one_address_never_takes_the_waiting_room() {
        let gate = std::sync::Arc::new(HashingGate::new(HashingLimit {
            concurrent: 1,
            queue: 2,
            wait: Duration::from_secs(5),
        }));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(ip(1), move || hold.recv().is_ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The same address again, and another in its /64 for IPv6, are refused at once...
        assert_eq!(gate.run(ip(1), || ()).await, Err(GateRefusal::Full));
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, last]);
        let (release6, hold6) = std::sync::mpsc::channel::<()>();
        let busy6 = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(v6(1), move || hold6.recv().is_ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(gate.run(v6(2), || ()).await, Err(GateRefusal::Full));
        // ...while another client still finds a place, and its turn when one frees.
        let other = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(ip(2), || 5).await })
        };
        release.send(()).unwrap();
        release6.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(true));
        assert_eq!(busy6.await.unwrap(), Ok(true));
        assert_eq!(other.await.unwrap(), Ok(5));
        // Shares are given back.
        assert_eq!(gate.run(ip(1), || 6).await, Ok(6));
    }

    #[tokio::test]
    async fn the_gate_refuses_beyond_its_places_and_after_its_wait() {
        let gate = std::sync::Arc::new(HashingGate::new(HashingLimit {
            concurrent: 1,
            queue: 1,
            wait: Duration::from_millis(200),
        }));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let busy = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(ip(1), move || hold.recv().is_ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // One waits (and gives up after the wait), a third is refused at once.
        let waiting = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(ip(2), || ()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(gate.run(ip(3), || ()).await, Err(GateRefusal::Full));
        assert_eq!(waiting.await.unwrap(), Err(GateRefusal::TimedOut));
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(true));
        assert_eq!(gate.run(ip(4), || 7).await, Ok(7));
    }

    #[tokio::test]
    async fn a_caller_that_goes_away_does_not_free_a_running_turn() {
        let gate = std::sync::Arc::new(HashingGate::new(HashingLimit {
            concurrent: 1,
            queue: 1,
            wait: Duration::from_millis(100),
        }));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started, running) = tokio::sync::oneshot::channel::<()>();
        let caller = {
            let gate = gate.clone();
            tokio::spawn(async move {
                gate.run(ip(1), move || {
                    let _ = started.send(());
                    hold.recv().is_ok()
                })
                .await
            })
        };
        running.await.unwrap();
        // The client disconnects: its request future is dropped while the hash runs on.
        caller.abort();
        let _ = caller.await;
        assert_eq!(gate.run(ip(2), || ()).await, Err(GateRefusal::TimedOut));
        release.send(()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(gate.run(ip(3), || 1).await, Ok(1));
    }
}
