//! The exchange preview (`POST /admin/realms/{realm}/cambio/exchange-preview`): it answers what
//! the token endpoint would issue, or the very refusal the token endpoint gives for the same
//! inputs, signs nothing, and tells an administrator no more than view-clients and view-users
//! allow.

use serde_json::{Value, json};

use crate::{EXCHANGE, REFRESH_TOKEN_TYPE, Reply, TestServer, reply};

async fn preview(server: &TestServer, token: Option<&str>, body: Value) -> Reply {
    let mut request = server
        .http
        .post(format!(
            "{}/admin/realms/demo/cambio/exchange-preview",
            server.base
        ))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    reply(request.send().await.unwrap()).await
}

/// The claims that differ between two issuances of the same decision.
fn stable(mut claims: Value) -> Value {
    for volatile in ["jti", "iat", "exp", "auth_time", "exchanged_from"] {
        claims.as_object_mut().unwrap().remove(volatile);
    }
    claims
}

#[tokio::test]
async fn a_preview_shows_the_claims_the_token_endpoint_issues() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let alice = s.alice(None).await.access_token();
    let real = s.exchange(&alice, &[("audience", "orders-api")]).await;
    assert_eq!(real.status, 200, "{}", real.text);
    let shown = preview(
        &s,
        Some(&admin),
        json!({"requester": "requester-client", "subjectToken": alice, "audience": ["orders-api"]}),
    )
    .await;
    assert_eq!(shown.status, 200, "{}", shown.text);
    assert_eq!(shown.body["outcome"], "issued", "{}", shown.text);
    assert_eq!(shown.body["permissionModel"]["kind"], "standard");
    assert_eq!(
        stable(shown.body["accessToken"].clone()),
        stable(crate::claims(&real.access_token()))
    );
    assert_eq!(
        shown.body["issued_token_type"],
        real.body["issued_token_type"]
    );
    assert_eq!(shown.body["scope"], real.body["scope"]);
    // Claims only: nothing in the answer is a signed token.
    assert!(!shown.text.contains("eyJ"), "{}", shown.text);
    assert_eq!(shown.headers["cache-control"], "no-store");

    // For a user, the preview computes the token a login through the subject client carries.
    let alice_id = crate::claims(&alice)["sub"].as_str().unwrap().to_owned();
    let by_user = preview(
        &s,
        Some(&admin),
        json!({"requester": "requester-client", "userId": alice_id,
               "subjectClient": "subject-client", "audience": ["orders-api"]}),
    )
    .await;
    assert_eq!(by_user.body["outcome"], "issued", "{}", by_user.text);
    assert_eq!(
        (
            &by_user.body["accessToken"]["sub"],
            &by_user.body["accessToken"]["aud"],
            &by_user.body["accessToken"]["resource_access"]
        ),
        (
            &shown.body["accessToken"]["sub"],
            &shown.body["accessToken"]["aud"],
            &shown.body["accessToken"]["resource_access"]
        )
    );
}

/// A requester, its secret, extra form parameters, and words of the rule the preview names.
type RefusalCase = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

#[tokio::test]
async fn a_preview_refuses_with_the_token_endpoints_own_error() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let alice = s.alice(None).await.access_token();
    let cases: &[RefusalCase] = &[
        ("sdk-app", "sdk-secret", &[], "subject token's aud"),
        (
            "orders-api",
            "orders-secret",
            &[],
            "Standard token exchange (V2) is off",
        ),
        (
            "requester-client",
            "requester-secret",
            &[("scope", "address")],
            "client scope",
        ),
        (
            "requester-client",
            "requester-secret",
            &[("audience", "no-such-api")],
            "",
        ),
        (
            "sdk-app",
            "sdk-secret",
            &[("requested_token_type", REFRESH_TOKEN_TYPE)],
            "",
        ),
        (
            "requester-client",
            "requester-secret",
            &[("requested_token_type", "urn:x")],
            "",
        ),
    ];
    for (requester, secret, extra, rule) in cases {
        let mut form = vec![("grant_type", EXCHANGE), ("subject_token", alice.as_str())];
        form.extend_from_slice(extra);
        let real = s.token(&form, Some((requester, secret))).await;
        assert!(
            real.status.is_client_error(),
            "{requester} {extra:?}: {}",
            real.text
        );
        let mut body = json!({"requester": requester, "subjectToken": alice});
        for (name, value) in *extra {
            match *name {
                "audience" => body["audience"] = json!([value]),
                "scope" => body["scope"] = json!(value),
                _ => body["requestedTokenType"] = json!(value),
            }
        }
        let shown = preview(&s, Some(&admin), body).await;
        assert_eq!(shown.status, 200, "{}", shown.text);
        assert_eq!(
            (
                shown.body["outcome"].as_str(),
                shown.body["status"].as_u64(),
                shown.body["error"].as_str(),
                shown.body["error_description"].as_str()
            ),
            (
                Some("refused"),
                Some(u64::from(real.status.as_u16())),
                Some(real.error()),
                Some(real.description())
            ),
            "{requester} {extra:?}"
        );
        assert!(
            shown.body["rule"].as_str().unwrap().contains(rule),
            "{requester} {extra:?}: {}",
            shown.text
        );
    }
}

#[tokio::test]
async fn a_pasted_subject_token_must_verify_in_this_realm() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let alice = s.alice(None).await.access_token();
    let (head, signature) = alice.rsplit_once('.').unwrap();
    let flipped = if signature.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{flipped}{}", &signature[1..]);
    // A token of another realm (master) is no subject token of demo.
    for token in [forged.as_str(), admin.as_str(), "not-a-jwt"] {
        let shown = preview(
            &s,
            Some(&admin),
            json!({"requester": "requester-client", "subjectToken": token}),
        )
        .await;
        assert_eq!(
            (
                shown.body["outcome"].as_str(),
                shown.body["stage"].as_str(),
                shown.body["error"].as_str(),
                shown.body["error_description"].as_str()
            ),
            (
                Some("refused"),
                Some("subject"),
                Some("invalid_request"),
                Some("Invalid token")
            ),
            "{}",
            shown.text
        );
    }
    // A revoked subject token is refused as the token endpoint refuses it.
    let revoked = s
        .post_form(
            &s.oidc("demo", "revoke"),
            &[("token", alice.as_str())],
            Some(("subject-client", "subject-secret")),
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.text);
    let shown = preview(
        &s,
        Some(&admin),
        json!({"requester": "requester-client", "subjectToken": alice}),
    )
    .await;
    assert_eq!(
        shown.body["error_description"], "Invalid token",
        "{}",
        shown.text
    );
    // Neither both subjects nor none.
    let both = preview(
        &s,
        Some(&admin),
        json!({"requester": "requester-client", "subjectToken": alice, "userId": "x"}),
    )
    .await;
    assert_eq!(both.status, 400, "{}", both.text);
    let unknown = preview(
        &s,
        Some(&admin),
        json!({"requester": "requester-client", "userId": "nobody"}),
    )
    .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let malformed = preview(&s, Some(&admin), json!({"requester": 5})).await;
    assert_eq!(malformed.status, 400, "{}", malformed.text);
}

/// A demo user with the given realm-management roles, and its access token.
async fn administrator(s: &TestServer, admin: &str, name: &str, roles: &[&str]) -> String {
    let base = format!("{}/admin/realms/demo", s.base);
    let created = s
        .http
        .post(format!("{base}/users"))
        .bearer_auth(admin)
        .json(&json!({"username": name, "enabled": true,
                      "credentials": [{"type": "password", "value": "pass-word"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let user = created.headers()["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let clients = s
        .get(
            &format!("{base}/clients?clientId=realm-management"),
            Some(admin),
        )
        .await;
    let management = clients.body[0]["id"].as_str().unwrap().to_owned();
    for role in roles {
        let rep = s
            .get(
                &format!("{base}/clients/{management}/roles/{role}"),
                Some(admin),
            )
            .await;
        let mapped = s
            .http
            .post(format!(
                "{base}/users/{user}/role-mappings/clients/{management}"
            ))
            .bearer_auth(admin)
            .json(&json!([{"id": rep.body["id"], "name": role}]))
            .send()
            .await
            .unwrap();
        assert_eq!(mapped.status(), 204);
    }
    s.token(
        &[
            ("grant_type", "password"),
            ("client_id", "subject-client"),
            ("client_secret", "subject-secret"),
            ("username", name),
            ("password", "pass-word"),
        ],
        None,
    )
    .await
    .access_token()
}

#[tokio::test]
async fn a_preview_needs_view_clients_and_view_users() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let alice = s.alice(None).await.access_token();
    let question = json!({"requester": "requester-client", "subjectToken": alice});
    let no_token = preview(&s, None, question.clone()).await;
    assert_eq!(no_token.status, 401, "{}", no_token.text);
    for (name, roles) in [
        ("clients-only", &["view-clients"][..]),
        ("users-only", &["view-users"][..]),
        ("events-only", &["view-events", "view-realm"][..]),
    ] {
        let token = administrator(&s, &admin, name, roles).await;
        let refused = preview(&s, Some(&token), question.clone()).await;
        assert_eq!(refused.status, 403, "{name}: {}", refused.text);
        assert_eq!(refused.body["errorMessage"], "HTTP 403 Forbidden");
    }
    let both = administrator(&s, &admin, "viewer", &["view-clients", "view-users"]).await;
    let allowed = preview(&s, Some(&both), question.clone()).await;
    assert_eq!(allowed.body["outcome"], "issued", "{}", allowed.text);
    // A token exchanged from an administrator's is no admin credential here either.
    let exchanged = s.exchange(&both, &[]).await;
    let refused = preview(&s, Some(&exchanged.access_token()), question).await;
    assert_eq!(refused.status, 401, "{}", refused.text);
}

/// A provider `partner` with an inline ES256 key, which creates users on first use, and a
/// token it signed for `sub` with audience `aud`.
async fn partner(s: &TestServer, admin: &str) -> cambio_jose::SigningKey {
    let key = cambio_jose::SigningKey::generate(cambio_jose::Algorithm::Es256).unwrap();
    let jwks = json!({"keys": [key.public_jwk()]}).to_string();
    let created = s
        .http
        .post(format!(
            "{}/admin/realms/demo/identity-provider/instances",
            s.base
        ))
        .bearer_auth(admin)
        .json(
            &json!({"alias": "partner", "providerId": "oidc", "enabled": true, "config": {
                "issuer": "https://partner.example",
                "cambio.jwks": jwks,
                "cambio.allowedAudiences": "cambio",
                "cambio.allowedAlgorithms": "ES256",
                "cambio.allowedClients": "requester-client",
                "cambio.provisioning": "create",
            }}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201, "{}", created.text().await.unwrap());
    key
}

fn external_token(key: &cambio_jose::SigningKey, sub: &str, aud: &str) -> String {
    let now = crate::now();
    key.sign(
        "JWT",
        &json!({"iss": "https://partner.example", "sub": sub, "aud": aud,
                "iat": now, "exp": now + 300}),
    )
    .unwrap()
}

#[tokio::test]
async fn an_external_token_is_previewed_without_creating_its_user() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let key = partner(&s, &admin).await;
    let token = external_token(&key, "ext-bob", "cambio");
    let question = json!({"requester": "requester-client", "subjectToken": token,
                          "subjectIssuer": "partner"});
    let shown = preview(&s, Some(&admin), question.clone()).await;
    assert_eq!(shown.body["outcome"], "issued", "{}", shown.text);
    assert_eq!(shown.body["userCreated"], true);
    assert_eq!(shown.body["externalSubject"], "ext-bob");
    // The preview stored no user.
    let users = s
        .get(
            &format!("{}/admin/realms/demo/users?username=ext-bob", s.base),
            Some(&admin),
        )
        .await;
    assert_eq!(users.body, json!([]), "{}", users.text);
    let real = s
        .token(
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", token.as_str()),
                ("subject_token_type", crate::ACCESS_TOKEN_TYPE),
                ("subject_issuer", "partner"),
            ],
            Some(("requester-client", "requester-secret")),
        )
        .await;
    assert_eq!(real.status, 200, "{}", real.text);
    let mut issued = stable(crate::claims(&real.access_token()));
    let mut previewed = stable(shown.body["accessToken"].clone());
    for claims in [&mut issued, &mut previewed] {
        claims.as_object_mut().unwrap().remove("sub");
    }
    assert_eq!(previewed, issued);
    // Now linked: the same question names the user the exchange created.
    let again = preview(&s, Some(&admin), question).await;
    assert_eq!(again.body["userCreated"], false, "{}", again.text);
    assert_eq!(
        again.body["accessToken"]["sub"],
        crate::claims(&real.access_token())["sub"]
    );

    // A token for another audience: the token endpoint's refusal, and the reason it logs.
    let wrong = external_token(&key, "ext-bob", "elsewhere");
    let real = s
        .token(
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", wrong.as_str()),
                ("subject_token_type", crate::ACCESS_TOKEN_TYPE),
                ("subject_issuer", "partner"),
            ],
            Some(("requester-client", "requester-secret")),
        )
        .await;
    let refused = preview(
        &s,
        Some(&admin),
        json!({"requester": "requester-client", "subjectToken": wrong, "subjectIssuer": "partner"}),
    )
    .await;
    assert_eq!(
        (
            refused.body["status"].as_u64(),
            refused.body["error"].as_str(),
            refused.body["error_description"].as_str()
        ),
        (
            Some(u64::from(real.status.as_u16())),
            Some(real.error()),
            Some(real.description())
        ),
        "{}",
        refused.text
    );
    assert!(
        refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("accepted audiences: cambio"),
        "{}",
        refused.text
    );
    // A client the provider does not allow is refused before any token is verified.
    let other = preview(
        &s,
        Some(&admin),
        json!({"requester": "sdk-app", "subjectToken": token, "subjectIssuer": "partner"}),
    )
    .await;
    assert_eq!(
        other.body["error_description"],
        "Client not allowed to exchange"
    );
}

/// The stage a refusal is shown at, extra form parameters, and words of the rule named.
type ActorCase<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

/// Delegation in the preview: an actor token gives the same `act` claim, and the same refusals,
/// as the token endpoint.
#[tokio::test]
async fn a_preview_with_an_actor_token_matches_the_token_endpoint() {
    let s = TestServer::start().await;
    let admin = s.admin_token().await;
    let alice = s.alice(None).await.access_token();
    let actor = s
        .token(
            &[("grant_type", "client_credentials")],
            Some(("requester-client", "requester-secret")),
        )
        .await
        .access_token();
    let real = s
        .exchange(
            &alice,
            &[
                ("audience", "orders-api"),
                ("actor_token", &actor),
                ("actor_token_type", crate::ACCESS_TOKEN_TYPE),
            ],
        )
        .await;
    assert_eq!(real.status, 200, "{}", real.text);
    let shown = preview(
        &s,
        Some(&admin),
        json!({"requester": "requester-client", "subjectToken": alice,
               "audience": ["orders-api"], "actorToken": actor,
               "actorTokenType": crate::ACCESS_TOKEN_TYPE}),
    )
    .await;
    assert_eq!(shown.body["outcome"], "issued", "{}", shown.text);
    let issued = crate::claims(&real.access_token());
    assert_eq!(
        stable(shown.body["accessToken"].clone()),
        stable(issued.clone())
    );
    assert_eq!(
        shown.body["accessToken"]["act"],
        json!({"sub": crate::claims(&actor)["sub"], "client_id": "requester-client"})
    );
    assert_eq!(shown.body["accessToken"]["act"], issued["act"]);

    // Refusals, each the token endpoint's own, at the stage where it happens.
    let cases: &[ActorCase] = &[
        // An actor token issued to another client than the requester.
        (
            "decision",
            &[
                ("actor_token", alice.as_str()),
                ("actor_token_type", crate::ACCESS_TOKEN_TYPE),
            ],
            "azp",
        ),
        // A token that does not verify.
        (
            "actor",
            &[
                ("actor_token", "junk"),
                ("actor_token_type", crate::ACCESS_TOKEN_TYPE),
            ],
            "does not verify",
        ),
        // A token of another realm.
        (
            "actor",
            &[
                ("actor_token", admin.as_str()),
                ("actor_token_type", crate::ACCESS_TOKEN_TYPE),
            ],
            "does not verify",
        ),
        (
            "parameters",
            &[("actor_token_type", crate::ACCESS_TOKEN_TYPE)],
            "access token",
        ),
        (
            "parameters",
            &[
                ("actor_token", actor.as_str()),
                ("actor_token_type", "urn:x"),
            ],
            "access token",
        ),
    ];
    for (stage, extra, rule) in cases {
        let mut form = vec![("grant_type", EXCHANGE), ("subject_token", alice.as_str())];
        form.extend_from_slice(extra);
        let real = s
            .token(&form, Some(("requester-client", "requester-secret")))
            .await;
        assert!(real.status.is_client_error(), "{extra:?}: {}", real.text);
        let mut body = json!({"requester": "requester-client", "subjectToken": alice});
        for (name, value) in *extra {
            let key = if *name == "actor_token" {
                "actorToken"
            } else {
                "actorTokenType"
            };
            body[key] = json!(value);
        }
        let shown = preview(&s, Some(&admin), body).await;
        assert_eq!(
            (
                shown.body["outcome"].as_str(),
                shown.body["stage"].as_str(),
                shown.body["status"].as_u64(),
                shown.body["error"].as_str(),
                shown.body["error_description"].as_str()
            ),
            (
                Some("refused"),
                Some(*stage),
                Some(u64::from(real.status.as_u16())),
                Some(real.error()),
                Some(real.description())
            ),
            "{extra:?}: {}",
            shown.text
        );
        assert!(
            shown.body["rule"].as_str().unwrap().contains(rule),
            "{extra:?}: {}",
            shown.text
        );
    }
}
