//! Checks of configuration objects, realm deletion and audit events.

use super::{NOW, assert_conflict, event, object, session, token};
use crate::{EventFilter, GLOBAL, Object, ObjectWrite, Store, StoreError};

/// Configuration objects: unique ids and names per `(realm, kind)`, lookups, ordering, updates.
pub async fn check_objects(store: &dyn Store) {
    let realm = "conf-objects";
    store.ping().await.unwrap();

    let charlie = object(realm, "client", "id-c", "charlie");
    let alpha = object(realm, "client", "id-a", "alpha");
    let bravo = object(realm, "client", "id-b", "bravo");
    for o in [&charlie, &alpha, &bravo] {
        store.insert_object(o).await.unwrap();
    }

    // A batch of writes is applied whole, in order, or not at all.
    let insert = |id: &str, name: &str| ObjectWrite::Insert(object(realm, "batch", id, name));
    let delete = |id: &str| ObjectWrite::Delete {
        realm_id: realm.into(),
        kind: "batch".into(),
        id: id.into(),
    };
    store
        .write_objects(&[insert("id-1", "one"), insert("id-2", "two")])
        .await
        .unwrap();
    assert_eq!(store.list_objects(realm, "batch").await.unwrap().len(), 2);
    let renamed = Object {
        doc: r#"{"renamed":true}"#.into(),
        ..object(realm, "batch", "id-2", "deux")
    };
    store
        .write_objects(&[
            delete("id-1"),
            insert("id-1b", "one"),
            ObjectWrite::Update(renamed.clone()),
            delete("never-there"),
        ])
        .await
        .unwrap();
    let names = |objects: Vec<Object>| objects.into_iter().map(|o| o.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.list_objects(realm, "batch").await.unwrap()),
        ["deux", "one"],
        "a name freed earlier in the batch is free later in it"
    );
    assert_eq!(
        store.get_object(realm, "batch", "id-2").await.unwrap(),
        Some(renamed)
    );
    let before = store.list_objects(realm, "batch").await.unwrap();
    assert_conflict(
        store
            .write_objects(&[
                delete("id-2"),
                insert("id-3", "three"),
                insert("id-4", "one"),
            ])
            .await,
        "a batch with a taken name",
    );
    assert_eq!(
        store.list_objects(realm, "batch").await.unwrap(),
        before,
        "nothing of a batch refused at its last write is kept, its delete included"
    );
    assert!(matches!(
        store
            .write_objects(&[
                insert("id-5", "five"),
                ObjectWrite::Update(object(realm, "batch", "gone", "gone")),
            ])
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store.list_objects(realm, "batch").await.unwrap(),
        before,
        "an update of a missing object refuses the whole batch"
    );
    store.write_objects(&[]).await.unwrap();

    // Users by email: exact match, this realm and kind only.
    let with_email = |realm: &str, kind: &str, id: &str, email: &str| Object {
        doc: format!(r#"{{"id":"{id}","username":"{id}","email":"{email}"}}"#),
        ..object(realm, kind, id, id)
    };
    for o in [
        with_email(realm, "user", "u-1", "ann@example.com"),
        with_email(realm, "user", "u-2", "bob@example.com"),
        with_email(realm, "client", "c-1", "ann@example.com"),
        with_email("conf-objects-other", "user", "u-3", "ann@example.com"),
        object(realm, "user", "u-4", "no-email"),
    ] {
        store.insert_object(&o).await.unwrap();
    }
    let ids = |found: Vec<Object>| found.into_iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .find_users_by_email(realm, "ann@example.com")
            .await
            .unwrap()),
        ["u-1"]
    );
    assert_eq!(
        ids(store
            .find_users_by_email(realm, "ANN@example.com")
            .await
            .unwrap()),
        Vec::<String>::new(),
        "an exact match"
    );
    assert_eq!(
        ids(store
            .find_users_by_email(realm, "carl@example.com")
            .await
            .unwrap()),
        Vec::<String>::new()
    );
    for id in ["u-1", "u-2", "u-4"] {
        store.delete_object(realm, "user", id).await.unwrap();
    }
    store.delete_object(realm, "client", "c-1").await.unwrap();
    store
        .delete_object("conf-objects-other", "user", "u-3")
        .await
        .unwrap();
    assert_eq!(
        ids(store
            .find_users_by_email(realm, "ann@example.com")
            .await
            .unwrap()),
        Vec::<String>::new(),
        "a deleted user is not found"
    );

    // Names and ids are unique per (realm, kind), and only there.
    assert_conflict(
        store
            .insert_object(&object(realm, "client", "id-x", "alpha"))
            .await,
        "duplicate name",
    );
    assert_conflict(
        store
            .insert_object(&object(realm, "client", "id-a", "other"))
            .await,
        "duplicate id",
    );
    store
        .insert_object(&object(realm, "user", "id-a", "alpha"))
        .await
        .unwrap();
    store
        .insert_object(&object("conf-objects-2", "client", "id-a", "alpha"))
        .await
        .unwrap();

    assert_eq!(
        store.get_object(realm, "client", "id-a").await.unwrap(),
        Some(alpha.clone())
    );
    assert_eq!(
        store.get_object(realm, "client", "id-z").await.unwrap(),
        None
    );
    assert_eq!(store.get_object(realm, "role", "id-a").await.unwrap(), None);
    assert_eq!(
        store.find_object(realm, "client", "bravo").await.unwrap(),
        Some(bravo.clone())
    );
    assert_eq!(
        store.find_object(realm, "client", "delta").await.unwrap(),
        None
    );

    let listed = store.list_objects(realm, "client").await.unwrap();
    assert_eq!(
        listed,
        vec![alpha.clone(), bravo.clone(), charlie.clone()],
        "ordered by name"
    );
    assert_eq!(store.list_objects(realm, "role").await.unwrap(), vec![]);

    // Updates replace name and document; the old name is free again.
    let mut renamed = alpha.clone();
    renamed.name = "alpha-2".to_owned();
    renamed.doc = r#"{"changed":true}"#.to_owned();
    store.update_object(&renamed).await.unwrap();
    assert_eq!(
        store.get_object(realm, "client", "id-a").await.unwrap(),
        Some(renamed.clone())
    );
    assert_eq!(
        store.find_object(realm, "client", "alpha").await.unwrap(),
        None
    );
    assert_eq!(
        store.find_object(realm, "client", "alpha-2").await.unwrap(),
        Some(renamed.clone())
    );

    let mut clash = renamed.clone();
    clash.name = "bravo".to_owned();
    assert_conflict(store.update_object(&clash).await, "rename to a taken name");
    assert_eq!(
        store.get_object(realm, "client", "id-a").await.unwrap(),
        Some(renamed)
    );

    let missing = store
        .update_object(&object(realm, "client", "id-missing", "zulu"))
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound)),
        "update of a missing object: {missing:?}"
    );

    assert!(store.delete_object(realm, "client", "id-c").await.unwrap());
    assert!(!store.delete_object(realm, "client", "id-c").await.unwrap());
    assert_eq!(
        store.get_object(realm, "client", "id-c").await.unwrap(),
        None
    );

    // Realms themselves live in the global realm.
    let realm_object = object(GLOBAL, "realm", "conf-objects-realm-id", "conf-objects");
    store.insert_object(&realm_object).await.unwrap();
    assert_eq!(
        store
            .find_object(GLOBAL, "realm", "conf-objects")
            .await
            .unwrap(),
        Some(realm_object)
    );
}

/// Deleting a realm's data removes everything of that realm and nothing else, and leaves the
/// realm object itself (in [`GLOBAL`]) to the caller.
pub async fn check_realm_delete(store: &dyn Store) {
    let gone = "conf-realm-delete";
    let kept = "conf-realm-keep";
    let realm_object = object(GLOBAL, "realm", "conf-realm-delete-id", gone);
    store.insert_object(&realm_object).await.unwrap();
    for realm in [gone, kept] {
        store
            .insert_object(&object(realm, "client", "c1", "app"))
            .await
            .unwrap();
        store
            .insert_object(&object(realm, "user", "u1", "alice"))
            .await
            .unwrap();
        store
            .insert_session(&session(realm, &format!("{realm}-s1"), "u1", false, NOW))
            .await
            .unwrap();
        store
            .insert_refresh_token(&token(
                realm,
                &format!("{realm}-t1"),
                &format!("{realm}-s1"),
                NOW + 60,
            ))
            .await
            .unwrap();
        store
            .revoke_token_id(realm, &format!("{realm}-jti"), NOW + 60)
            .await
            .unwrap();
        store
            .end_client_session(realm, &format!("{realm}-s1"), "c1", NOW, NOW + 60)
            .await
            .unwrap();
        store
            .insert_events(&[event(realm, 5_000, "LOGIN", "app", Some("u1"))])
            .await
            .unwrap();
    }

    store.delete_realm_data(gone).await.unwrap();

    let jtis: Vec<_> = store
        .list_revoked_token_ids(NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|(jti, _)| jti)
        .filter(|jti| jti.starts_with("conf-realm-"))
        .collect();
    assert_eq!(jtis, vec![format!("{kept}-jti")]);
    let parts: Vec<_> = store
        .list_ended_client_sessions(NOW)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.session_id)
        .filter(|id| id.starts_with("conf-realm-"))
        .collect();
    assert_eq!(parts, vec![format!("{kept}-s1")]);
    for (realm, present) in [(gone, false), (kept, true)] {
        assert_eq!(
            store.list_objects(realm, "client").await.unwrap().len(),
            usize::from(present)
        );
        assert_eq!(
            store.list_objects(realm, "user").await.unwrap().len(),
            usize::from(present)
        );
        assert_eq!(
            store
                .get_session(&format!("{realm}-s1"))
                .await
                .unwrap()
                .is_some(),
            present
        );
        assert_eq!(
            store
                .get_refresh_token(&format!("{realm}-t1"))
                .await
                .unwrap()
                .is_some(),
            present
        );
        assert_eq!(
            store
                .list_events(realm, &EventFilter::default())
                .await
                .unwrap()
                .len(),
            usize::from(present)
        );
    }
    assert_eq!(
        store.find_object(GLOBAL, "realm", gone).await.unwrap(),
        Some(realm_object)
    );
    // Deleting an empty or unknown realm is not an error.
    store.delete_realm_data(gone).await.unwrap();
    store.delete_realm_data("conf-realm-never").await.unwrap();
}

/// Events: newest first, each filter, paging and the page size limits.
pub async fn check_events(store: &dyn Store) {
    let realm = "conf-events";
    let e1 = event(realm, 1_000, "LOGIN", "app-a", Some("u1"));
    let e2 = event(realm, 2_000, "CLIENT_LOGIN", "app-b", None);
    let e3 = event(realm, 2_000, "LOGIN_ERROR", "app-a", Some("u2"));
    let e4 = event(realm, 3_000, "REFRESH_TOKEN", "app-a", Some("u1"));
    let other = event("conf-events-other", 2_500, "LOGIN", "app-a", Some("u1"));
    store.insert_events(&[]).await.unwrap();
    store
        .insert_events(&[
            e1.clone(),
            e2.clone(),
            e3.clone(),
            e4.clone(),
            other.clone(),
        ])
        .await
        .unwrap();

    let list =
        |filter: EventFilter| async move { store.list_events(realm, &filter).await.unwrap() };
    // Same millisecond: the later insertion comes first.
    assert_eq!(
        list(EventFilter::default()).await,
        vec![e4.clone(), e3.clone(), e2.clone(), e1.clone()]
    );
    assert_eq!(
        list(EventFilter {
            types: vec!["LOGIN".into(), "LOGIN_ERROR".into()],
            ..Default::default()
        })
        .await,
        vec![e3.clone(), e1.clone()]
    );
    assert_eq!(
        list(EventFilter {
            client_id: Some("app-a".into()),
            ..Default::default()
        })
        .await,
        vec![e4.clone(), e3.clone(), e1.clone()]
    );
    assert_eq!(
        list(EventFilter {
            user_id: Some("u1".into()),
            ..Default::default()
        })
        .await,
        vec![e4.clone(), e1.clone()]
    );
    assert_eq!(
        list(EventFilter {
            date_from: Some(2_000),
            ..Default::default()
        })
        .await,
        vec![e4.clone(), e3.clone(), e2.clone()]
    );
    assert_eq!(
        list(EventFilter {
            date_to: Some(2_000),
            ..Default::default()
        })
        .await,
        vec![e3.clone(), e2.clone(), e1.clone()]
    );
    assert_eq!(
        list(EventFilter {
            date_from: Some(2_000),
            date_to: Some(2_000),
            ..Default::default()
        })
        .await,
        vec![e3.clone(), e2.clone()]
    );
    assert_eq!(
        list(EventFilter {
            types: vec!["LOGIN".into(), "REFRESH_TOKEN".into()],
            client_id: Some("app-a".into()),
            user_id: Some("u1".into()),
            date_from: Some(1_500),
            ..Default::default()
        })
        .await,
        vec![e4.clone()]
    );
    assert_eq!(
        list(EventFilter {
            first: 1,
            max: 2,
            ..Default::default()
        })
        .await,
        vec![e3, e2]
    );
    assert_eq!(
        list(EventFilter {
            first: 4,
            ..Default::default()
        })
        .await,
        vec![]
    );
    assert_eq!(
        store
            .list_events("conf-events-other", &EventFilter::default())
            .await
            .unwrap(),
        vec![other]
    );

    // Page sizes: 0 means 100, and no page exceeds 1000.
    let many_realm = "conf-events-many";
    let many: Vec<_> = (0..1_005)
        .map(|i| event(many_realm, 10_000 + i, "LOGIN", "app-a", None))
        .collect();
    store.insert_events(&many).await.unwrap();
    let page = store
        .list_events(many_realm, &EventFilter::default())
        .await
        .unwrap();
    assert_eq!(page.len(), 100);
    assert_eq!(page[0].time, 11_004);
    let page = store
        .list_events(
            many_realm,
            &EventFilter {
                max: 5_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 1_000);
    let page = store
        .list_events(
            many_realm,
            &EventFilter {
                first: 1_000,
                max: 1_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.len(), 5);
    assert_eq!(page[4].time, 10_000);
}

/// Events retention: the oldest events go first, at most `limit` per call, across realms;
/// nothing at or after the cutoff is touched. Uses times below 1,000 ms, which no other check
/// writes, so that it can share a store with them.
pub async fn check_event_purge(store: &dyn Store) {
    let old: Vec<_> = (0..5)
        .map(|i| event("conf-purge-a", 100 + i, "LOGIN", "app-a", None))
        .chain((0..2).map(|i| event("conf-purge-b", 200 + i, "LOGIN", "app-b", None)))
        .collect();
    let kept = event("conf-purge-a", 900, "LOGIN", "app-a", None);
    store.insert_events(&old).await.unwrap();
    store
        .insert_events(std::slice::from_ref(&kept))
        .await
        .unwrap();

    assert_eq!(store.purge_events(900, 4).await.unwrap(), 4);
    // The four oldest went: one of realm a's (at 104) and both of realm b's are left.
    let left_a = store
        .list_events("conf-purge-a", &EventFilter::default())
        .await
        .unwrap();
    assert_eq!(left_a, vec![kept.clone(), old[4].clone()]);
    assert_eq!(store.purge_events(900, 4).await.unwrap(), 3);
    assert_eq!(store.purge_events(900, 4).await.unwrap(), 0);
    assert_eq!(
        store
            .list_events("conf-purge-a", &EventFilter::default())
            .await
            .unwrap(),
        vec![kept]
    );
    assert_eq!(
        store
            .list_events("conf-purge-b", &EventFilter::default())
            .await
            .unwrap(),
        vec![]
    );
}
