//! Checks of request-path state: sessions, refresh tokens, one-time values, authorization
//! codes, revocations and purging.

use super::{NOW, assert_conflict, session, token};
use crate::{ClientSessionRecord, RefreshTokenUse, Store, StoreError};

/// Sessions: insertion, lookup, refresh time, revocation of one or all of a user's sessions.
pub async fn check_sessions(store: &dyn Store) {
    let realm = "conf-sessions";
    let s1 = session(realm, "conf-sessions-1", "u1", false, NOW);
    let s2 = session(realm, "conf-sessions-2", "u1", true, NOW + 1);
    let s3 = session(realm, "conf-sessions-3", "u2", false, NOW + 2);
    let s4 = session(realm, "conf-sessions-4", "u1", false, NOW + 3);
    for s in [&s1, &s2, &s3, &s4] {
        store.insert_session(s).await.unwrap();
    }
    assert_conflict(store.insert_session(&s1).await, "duplicate session id");

    assert_eq!(store.get_session(&s2.id).await.unwrap(), Some(s2.clone()));
    assert_eq!(store.get_session("conf-sessions-none").await.unwrap(), None);

    store.touch_session(&s1.id, NOW + 100).await.unwrap();
    let touched = store.get_session(&s1.id).await.unwrap().unwrap();
    assert_eq!(touched.last_refresh, NOW + 100);
    assert_eq!(touched.created_at, NOW);
    let missing = store.touch_session("conf-sessions-none", NOW).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound)),
        "touch of a missing session: {missing:?}"
    );

    let listed = store.list_user_sessions(realm, "u1").await.unwrap();
    let ids: Vec<_> = listed.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [s1.id.as_str(), s2.id.as_str(), s4.id.as_str()],
        "ordered by creation"
    );
    assert_eq!(
        store
            .list_user_sessions("conf-sessions-other", "u1")
            .await
            .unwrap(),
        vec![]
    );

    // Revocation keeps the first time and reports whether this call ended the session.
    assert!(store.revoke_session(&s1.id, NOW + 200).await.unwrap());
    assert!(!store.revoke_session(&s1.id, NOW + 300).await.unwrap());
    assert!(
        !store
            .revoke_session("conf-sessions-none", NOW)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_session(&s1.id).await.unwrap().unwrap().revoked_at,
        Some(NOW + 200)
    );

    // Without offline sessions: only s4 is online and still live for u1.
    let ended = store
        .revoke_user_sessions(realm, "u1", false, NOW + 400)
        .await
        .unwrap();
    assert_eq!(ended, vec![s4.id.clone()]);
    assert_eq!(
        store.get_session(&s2.id).await.unwrap().unwrap().revoked_at,
        None
    );
    // With them: the offline session goes too; nothing is ended twice.
    let ended = store
        .revoke_user_sessions(realm, "u1", true, NOW + 500)
        .await
        .unwrap();
    assert_eq!(ended, vec![s2.id.clone()]);
    assert_eq!(
        store
            .revoke_user_sessions(realm, "u1", true, NOW + 600)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.get_session(&s4.id).await.unwrap().unwrap().revoked_at,
        Some(NOW + 400)
    );
    // Another user, and the same user id in another realm, are untouched.
    assert_eq!(
        store.get_session(&s3.id).await.unwrap().unwrap().revoked_at,
        None
    );
    assert_eq!(
        store
            .revoke_user_sessions("conf-sessions-other", "u2", true, NOW)
            .await
            .unwrap(),
        Vec::<String>::new()
    );
}

/// Refresh tokens: one use each, replays detected, and exactly one winner in a race.
pub async fn check_refresh_tokens(store: &dyn Store) {
    let realm = "conf-refresh";
    let t1 = token(realm, "conf-refresh-hash-1", "conf-refresh-s1", NOW + 3600);
    store.insert_refresh_token(&t1).await.unwrap();
    assert_conflict(
        store.insert_refresh_token(&t1).await,
        "duplicate token hash",
    );
    assert_eq!(
        store.get_refresh_token(&t1.hash).await.unwrap(),
        Some(t1.clone())
    );
    assert_eq!(
        store.get_refresh_token("conf-refresh-none").await.unwrap(),
        None
    );

    let mut used = t1.clone();
    used.used_at = Some(NOW);
    assert_eq!(
        store.use_refresh_token(&t1.hash, NOW).await.unwrap(),
        RefreshTokenUse::Fresh(used.clone())
    );
    assert_eq!(
        store.get_refresh_token(&t1.hash).await.unwrap(),
        Some(used.clone())
    );
    // A replay reports the first use time, not the replay's.
    assert_eq!(
        store.use_refresh_token(&t1.hash, NOW + 5).await.unwrap(),
        RefreshTokenUse::Reused(used)
    );
    assert_eq!(
        store
            .use_refresh_token("conf-refresh-none", NOW)
            .await
            .unwrap(),
        RefreshTokenUse::Unknown
    );

    // Expiry is the caller's business: the store still hands out an expired token.
    let expired = token(realm, "conf-refresh-expired", "conf-refresh-s1", NOW - 1);
    store.insert_refresh_token(&expired).await.unwrap();
    assert!(matches!(
        store.use_refresh_token(&expired.hash, NOW).await.unwrap(),
        RefreshTokenUse::Fresh(r) if r.expires_at == NOW - 1 && r.used_at == Some(NOW)
    ));

    // Races: of two concurrent uses exactly one is Fresh and the other Reused.
    for i in 0..20 {
        let t = token(
            realm,
            &format!("conf-refresh-race-{i}"),
            "conf-refresh-s2",
            NOW + 3600,
        );
        store.insert_refresh_token(&t).await.unwrap();
        let (a, b) = tokio::join!(
            store.use_refresh_token(&t.hash, NOW + 1),
            store.use_refresh_token(&t.hash, NOW + 2)
        );
        let outcomes = [a.unwrap(), b.unwrap()];
        let fresh = outcomes
            .iter()
            .filter(|o| matches!(o, RefreshTokenUse::Fresh(_)))
            .count();
        let reused = outcomes
            .iter()
            .filter(|o| matches!(o, RefreshTokenUse::Reused(_)))
            .count();
        assert_eq!((fresh, reused), (1, 1), "race {i}: {outcomes:?}");
        // The loser sees the winner's use time.
        let times: Vec<_> = outcomes
            .iter()
            .map(|o| match o {
                RefreshTokenUse::Fresh(r) | RefreshTokenUse::Reused(r) => r.used_at,
                RefreshTokenUse::Unknown => None,
            })
            .collect();
        assert_eq!(times[0], times[1], "race {i}: both report the winning use");
    }
}

/// One-time values: first use only, per context.
pub async fn check_one_time_values(store: &dyn Store) {
    let value = "conf-once-value-1";
    assert!(
        store
            .consume_once("client-assertion", value, NOW + 60)
            .await
            .unwrap()
    );
    assert!(
        !store
            .consume_once("client-assertion", value, NOW + 60)
            .await
            .unwrap()
    );
    assert!(
        !store
            .consume_once("client-assertion", value, NOW + 999)
            .await
            .unwrap()
    );
    // The same value in another context is independent.
    assert!(store.consume_once("code", value, NOW + 60).await.unwrap());
    assert!(!store.consume_once("code", value, NOW + 60).await.unwrap());
    assert!(
        store
            .consume_once("client-assertion", "conf-once-value-2", NOW + 60)
            .await
            .unwrap()
    );

    // Concurrent first uses: exactly one wins.
    let (a, b) = tokio::join!(
        store.consume_once("client-assertion", "conf-once-race", NOW + 60),
        store.consume_once("client-assertion", "conf-once-race", NOW + 60)
    );
    assert!(
        a.unwrap() ^ b.unwrap(),
        "exactly one concurrent consume succeeds"
    );
}

/// Authorization codes: taken exactly once, refused once expired.
pub async fn check_auth_codes(store: &dyn Store) {
    store
        .insert_auth_code("conf-code-1", r#"{"n":1}"#, NOW + 60)
        .await
        .unwrap();
    assert_conflict(
        store.insert_auth_code("conf-code-1", "{}", NOW + 60).await,
        "duplicate code hash",
    );
    assert_eq!(
        store
            .take_auth_code("conf-code-1", NOW)
            .await
            .unwrap()
            .as_deref(),
        Some(r#"{"n":1}"#)
    );
    assert_eq!(
        store.take_auth_code("conf-code-1", NOW).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_auth_code("conf-code-none", NOW).await.unwrap(),
        None
    );

    // Expiry is inclusive: a code expiring now is refused, and gone afterwards.
    store
        .insert_auth_code("conf-code-2", "{}", NOW)
        .await
        .unwrap();
    assert_eq!(
        store.take_auth_code("conf-code-2", NOW).await.unwrap(),
        None
    );
    assert_eq!(
        store.take_auth_code("conf-code-2", NOW - 10).await.unwrap(),
        None
    );

    for i in 0..10 {
        let hash = format!("conf-code-race-{i}");
        store.insert_auth_code(&hash, "{}", NOW + 60).await.unwrap();
        let (a, b) = tokio::join!(
            store.take_auth_code(&hash, NOW),
            store.take_auth_code(&hash, NOW)
        );
        let taken = [a.unwrap(), b.unwrap()]
            .iter()
            .filter(|t| t.is_some())
            .count();
        assert_eq!(taken, 1, "race {i}: exactly one take gets the code");
    }
}

/// Revoked access tokens and the list of revoked sessions nodes load into memory.
pub async fn check_revocations(store: &dyn Store) {
    let realm = "conf-revocations";
    let ours = |list: Vec<(String, u64)>| -> Vec<(String, u64)> {
        list.into_iter()
            .filter(|(jti, _)| jti.starts_with("conf-revocations-"))
            .collect()
    };
    store
        .revoke_token_id(realm, "conf-revocations-jti-1", NOW + 100)
        .await
        .unwrap();
    store
        .revoke_token_id(realm, "conf-revocations-jti-1", NOW + 100)
        .await
        .unwrap();
    store
        .revoke_token_id(realm, "conf-revocations-jti-2", NOW)
        .await
        .unwrap();
    assert_eq!(
        ours(store.list_revoked_token_ids(NOW).await.unwrap()),
        vec![("conf-revocations-jti-1".to_owned(), NOW + 100)],
        "idempotent, and tokens expired by now are not listed"
    );
    assert_eq!(
        ours(store.list_revoked_token_ids(NOW - 1).await.unwrap()).len(),
        2
    );
    // Revoking again never shortens the refusal.
    store
        .revoke_token_id(realm, "conf-revocations-jti-1", NOW + 200)
        .await
        .unwrap();
    store
        .revoke_token_id(realm, "conf-revocations-jti-1", NOW + 50)
        .await
        .unwrap();
    assert_eq!(
        ours(store.list_revoked_token_ids(NOW).await.unwrap()),
        vec![("conf-revocations-jti-1".to_owned(), NOW + 200)]
    );

    let mut live = session(realm, "conf-revocations-live", "u1", false, NOW - 100);
    let mut ended = session(realm, "conf-revocations-ended", "u1", false, NOW - 100);
    ended.expires_at = NOW;
    let active = session(realm, "conf-revocations-active", "u1", false, NOW - 100);
    for s in [&live, &ended, &active] {
        store.insert_session(s).await.unwrap();
    }
    assert!(store.revoke_session(&live.id, NOW - 5).await.unwrap());
    assert!(store.revoke_session(&ended.id, NOW - 5).await.unwrap());
    live.revoked_at = Some(NOW - 5);
    let revoked: Vec<_> = store
        .list_revoked_sessions(NOW)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.realm_id == realm)
        .collect();
    assert_eq!(revoked, vec![live], "revoked and not yet expired");
}

/// Purging removes exactly the rows expired at `now` (inclusive) and counts them.
pub async fn check_purge(store: &dyn Store) {
    let realm = "conf-purge";
    let now = 200;
    for (id, expires_at) in [("conf-purge-s-old", now), ("conf-purge-s-new", now + 1)] {
        let mut s = session(realm, id, "u1", false, 100);
        s.expires_at = expires_at;
        store.insert_session(&s).await.unwrap();
    }
    let mut old_token = token(realm, "conf-purge-t-old", "conf-purge-s-old", now - 1);
    old_token.issued_at = 100;
    let mut new_token = token(realm, "conf-purge-t-new", "conf-purge-s-new", now + 100);
    new_token.issued_at = 100;
    store.insert_refresh_token(&old_token).await.unwrap();
    store.insert_refresh_token(&new_token).await.unwrap();
    store
        .revoke_token_id(realm, "conf-purge-jti-old", now)
        .await
        .unwrap();
    store
        .revoke_token_id(realm, "conf-purge-jti-new", now + 100)
        .await
        .unwrap();
    assert!(
        store
            .consume_once("code", "conf-purge-old", now - 50)
            .await
            .unwrap()
    );
    assert!(
        store
            .consume_once("code", "conf-purge-new", now + 50)
            .await
            .unwrap()
    );
    store
        .insert_auth_code("conf-purge-code-old", "{}", now)
        .await
        .unwrap();
    store
        .insert_auth_code("conf-purge-code-new", "{}", now + 50)
        .await
        .unwrap();

    // Five rows, and the part of the client that started the old session.
    assert_eq!(store.purge_expired(now).await.unwrap(), 6);
    assert_eq!(store.purge_expired(now).await.unwrap(), 0);

    assert_eq!(store.get_session("conf-purge-s-old").await.unwrap(), None);
    assert!(
        store
            .get_session("conf-purge-s-new")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        store.get_refresh_token(&old_token.hash).await.unwrap(),
        None
    );
    assert_eq!(
        store.get_refresh_token(&new_token.hash).await.unwrap(),
        Some(new_token)
    );
    let jtis: Vec<_> = store
        .list_revoked_token_ids(0)
        .await
        .unwrap()
        .into_iter()
        .filter(|(jti, _)| jti.starts_with("conf-purge-"))
        .collect();
    assert_eq!(jtis, vec![("conf-purge-jti-new".to_owned(), now + 100)]);
    // A purged one-time value can be recorded again; a live one is still a replay.
    assert!(
        store
            .consume_once("code", "conf-purge-old", now + 500)
            .await
            .unwrap()
    );
    assert!(
        !store
            .consume_once("code", "conf-purge-new", now + 50)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .take_auth_code("conf-purge-code-old", 0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .take_auth_code("conf-purge-code-new", now)
            .await
            .unwrap()
            .as_deref(),
        Some("{}")
    );
}

/// Client sessions: a session starts with its client's part; parts join, end, join again; the
/// answer to an end says whether another client is still live; ended parts are listed until
/// they expire.
pub async fn check_client_sessions(store: &dyn Store) {
    let realm = "conf-client-sessions";
    let started = session(realm, "conf-client-sessions-1", "u1", false, NOW);
    store.insert_session(&started).await.unwrap();
    let ended_parts = |now| async move {
        store
            .list_ended_client_sessions(now)
            .await
            .unwrap()
            .into_iter()
            .filter(|p| p.realm_id == realm)
            .collect::<Vec<_>>()
    };
    assert_eq!(ended_parts(NOW).await, vec![]);

    let requester = ClientSessionRecord {
        session_id: started.id.clone(),
        realm_id: realm.to_owned(),
        client_id: "requester-uuid".to_owned(),
        joined_at: NOW + 10,
        ended_at: None,
        expires_at: NOW + 100,
    };
    store.join_client_session(&requester).await.unwrap();
    // Joining again is harmless and keeps the later expiry.
    store.join_client_session(&requester).await.unwrap();

    // The requester leaves: the client that started the session is still live.
    assert!(
        store
            .end_client_session(realm, &started.id, "requester-uuid", NOW + 20, NOW + 50)
            .await
            .unwrap()
    );
    let mut ended = requester.clone();
    ended.ended_at = Some(NOW + 20);
    assert_eq!(
        ended_parts(NOW).await,
        vec![ended.clone()],
        "kept to the later expiry"
    );
    assert_eq!(
        ended_parts(NOW + 100).await,
        vec![],
        "listed until it expires"
    );

    // The requester joins again later: its end time stays, so older tokens stay refused.
    let mut rejoined = requester.clone();
    rejoined.joined_at = NOW + 30;
    store.join_client_session(&rejoined).await.unwrap();
    let mut listed = rejoined.clone();
    listed.ended_at = Some(NOW + 20);
    assert_eq!(ended_parts(NOW).await, vec![listed]);

    // The starting client leaves: the requester, live again, remains.
    assert!(
        store
            .end_client_session(realm, &started.id, &started.client_id, NOW + 40, NOW + 60)
            .await
            .unwrap()
    );
    // The requester leaves too: nobody remains.
    assert!(
        !store
            .end_client_session(realm, &started.id, "requester-uuid", NOW + 50, NOW + 50)
            .await
            .unwrap()
    );
    // A part never seen is recorded as ended and does not count as live.
    assert!(
        !store
            .end_client_session(realm, "conf-client-sessions-none", "c", NOW, NOW + 10)
            .await
            .unwrap()
    );
    let unknown: Vec<_> = ended_parts(NOW)
        .await
        .into_iter()
        .filter(|p| p.session_id == "conf-client-sessions-none")
        .map(|p| (p.joined_at, p.ended_at))
        .collect();
    assert_eq!(unknown, vec![(0, Some(NOW))]);
}
