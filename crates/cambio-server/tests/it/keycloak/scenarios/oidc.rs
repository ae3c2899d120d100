//! Discovery, JWKS, the grants, userinfo, token exchange (standard model), introspection and
//! revocation.

use serde_json::{Value, json};

use super::*;
use crate::{EXCHANGE, Reply};

pub(super) async fn discovery(kc: &Peer, cb: &Peer, report: &mut Report) {
    let scenario = "discovery";
    let url = |peer: &Peer| {
        format!(
            "{}/realms/{REALM}/.well-known/openid-configuration",
            peer.base
        )
    };
    let a = reply(kc.http.get(url(kc)).send().await.unwrap()).await;
    let b = reply(cb.http.get(url(cb)).send().await.unwrap()).await;
    report.compare(
        scenario,
        "status",
        &json!(a.status.as_u16()),
        &json!(b.status.as_u16()),
    );
    let (a, b) = (normalise(&a.body, &kc.base), normalise(&b.body, &cb.base));
    for member in [
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "introspection_endpoint",
        "userinfo_endpoint",
        "end_session_endpoint",
        "jwks_uri",
        "revocation_endpoint",
    ] {
        report.compare(scenario, member, &a[member], &b[member]);
    }
    // Lists: whether each value that matters is offered.
    let offered = |doc: &Value, member: &str, value: &str| {
        json!(
            doc[member]
                .as_array()
                .is_some_and(|l| l.iter().any(|v| v == value))
        )
    };
    for (member, value) in [
        (
            "grant_types_supported",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ),
        ("grant_types_supported", "client_credentials"),
        ("grant_types_supported", "password"),
        ("grant_types_supported", "refresh_token"),
        ("grant_types_supported", "authorization_code"),
        ("code_challenge_methods_supported", "S256"),
        (
            "token_endpoint_auth_methods_supported",
            "client_secret_basic",
        ),
        (
            "token_endpoint_auth_methods_supported",
            "client_secret_post",
        ),
        ("token_endpoint_auth_methods_supported", "private_key_jwt"),
        ("response_types_supported", "code"),
        ("subject_types_supported", "public"),
    ] {
        report.compare(
            scenario,
            &format!("{member} has {value}"),
            &offered(&a, member, value),
            &offered(&b, member, value),
        );
    }
    // The JWKS: key members of the signing key (RS256, as the realm asks).
    let jwks = |peer: &Peer| format!("{}/realms/{REALM}/protocol/openid-connect/certs", peer.base);
    let a = reply(kc.http.get(jwks(kc)).send().await.unwrap()).await;
    let b = reply(cb.http.get(jwks(cb)).send().await.unwrap()).await;
    let signing = |doc: &Value| {
        doc["keys"]
            .as_array()
            .and_then(|keys| {
                keys.iter()
                    .find(|k| k["alg"] == "RS256" && k["use"] == "sig")
            })
            .map(members)
            .unwrap_or(Value::Null)
    };
    report.compare(
        "jwks",
        "RS256 signing key members",
        &signing(&a.body),
        &signing(&b.body),
    );
}

pub(super) async fn login(kc: &Peer, cb: &Peer, report: &mut Report) {
    let subject = ("subject-client", Some("subject-secret"));
    let (a, b) = (kc.alice(subject).await, cb.alice(subject).await);
    compare_token_answers(report, "password grant", &a, &b);
    let wrong = [
        ("grant_type", "password"),
        ("client_id", "subject-client"),
        ("client_secret", "subject-secret"),
        ("username", "alice"),
        ("password", "wrong"),
    ];
    let (a, b) = (kc.token(&wrong, None).await, cb.token(&wrong, None).await);
    compare_token_answers(report, "password grant, wrong password", &a, &b);
    let bad_client = [("grant_type", "client_credentials")];
    let (a, b) = (
        kc.token(&bad_client, Some(("requester-client", "nope")))
            .await,
        cb.token(&bad_client, Some(("requester-client", "nope")))
            .await,
    );
    compare_token_answers(report, "client credentials, wrong secret", &a, &b);
    let (a, b) = (
        kc.token(&bad_client, Some(("requester-client", "requester-secret")))
            .await,
        cb.token(&bad_client, Some(("requester-client", "requester-secret")))
            .await,
    );
    compare_token_answers(report, "client credentials", &a, &b);
    // userinfo with alice's token, without and with `openid`.
    let (ta, tb) = (
        kc.alice(subject).await.access_token(),
        cb.alice(subject).await.access_token(),
    );
    let a = reply(
        kc.http
            .get(kc.oidc("userinfo"))
            .bearer_auth(&ta)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let b = reply(
        cb.http
            .get(cb.oidc("userinfo"))
            .bearer_auth(&tb)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let scenario = "userinfo without openid";
    report.compare(
        scenario,
        "status",
        &json!(a.status.as_u16()),
        &json!(b.status.as_u16()),
    );
    let challenge_error = |r: &Reply| {
        let header = r
            .headers
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        json!(header.contains("error=\"insufficient_scope\""))
    };
    report.compare(
        scenario,
        "insufficient_scope challenge",
        &challenge_error(&a),
        &challenge_error(&b),
    );
    let mut bodies = Vec::new();
    for peer in [kc, cb] {
        let form = [
            ("grant_type", "password"),
            ("client_id", "subject-client"),
            ("client_secret", "subject-secret"),
            ("username", "alice"),
            ("password", "alice"),
            ("scope", "openid"),
        ];
        let token = peer.token(&form, None).await.access_token();
        let r = reply(
            peer.http
                .get(peer.oidc("userinfo"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap(),
        )
        .await;
        bodies.push((r.status.as_u16(), sorted(&normalise(&r.body, &peer.base))));
    }
    let scenario = "userinfo with openid";
    report.compare(scenario, "status", &json!(bodies[0].0), &json!(bodies[1].0));
    report.compare(scenario, "body", &bodies[0].1, &bodies[1].1);
}

/// One exchange request: who asks, with what.
struct Case {
    name: &'static str,
    requester: (&'static str, &'static str),
    /// Where the subject token comes from: alice through subject-client, or through
    /// public-client (a token whose audience lacks requester-client).
    subject_from_public: bool,
    params: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        name: "exchange: audience orders-api",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "orders-api"),
        ],
    },
    Case {
        name: "exchange: no audience",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[("subject_token_type", ACCESS_TYPE)],
    },
    Case {
        name: "exchange: no subject_token_type",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[("audience", "orders-api")],
    },
    Case {
        name: "exchange: two audiences",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "orders-api"),
            ("audience", "billing-api"),
        ],
    },
    Case {
        name: "exchange: unknown audience",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "no-such-client"),
        ],
    },
    Case {
        name: "exchange: requester not allowed to exchange",
        requester: ("plain-client", "plain-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "orders-api"),
        ],
    },
    Case {
        name: "exchange: requester not in the subject's audience",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: true,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "orders-api"),
        ],
    },
    Case {
        name: "exchange: refresh token requested",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("requested_token_type", REFRESH_TYPE),
        ],
    },
    Case {
        name: "exchange: ID token requested",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("requested_token_type", ID_TYPE),
        ],
    },
    Case {
        name: "exchange: unknown requested token type",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("requested_token_type", "urn:example:unknown"),
        ],
    },
    Case {
        name: "exchange: wrong subject_token_type",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[("subject_token_type", ID_TYPE), ("audience", "orders-api")],
    },
    Case {
        name: "exchange: scope narrowed to email",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[("subject_token_type", ACCESS_TYPE), ("scope", "email")],
    },
    Case {
        name: "exchange: optional scope phone",
        requester: ("requester-client", "requester-secret"),
        subject_from_public: false,
        params: &[("subject_token_type", ACCESS_TYPE), ("scope", "phone")],
    },
    Case {
        name: "exchange: wrong requester secret",
        requester: ("requester-client", "wrong"),
        subject_from_public: false,
        params: &[
            ("subject_token_type", ACCESS_TYPE),
            ("audience", "orders-api"),
        ],
    },
];

pub(super) async fn exchanges(kc: &Peer, cb: &Peer, report: &mut Report) {
    for case in CASES {
        let mut answers = Vec::new();
        for peer in [kc, cb] {
            let subject = if case.subject_from_public {
                peer.alice(("public-client", None)).await
            } else {
                peer.alice(("subject-client", Some("subject-secret"))).await
            }
            .access_token();
            let mut form = vec![
                ("grant_type", EXCHANGE),
                ("subject_token", subject.as_str()),
            ];
            form.extend_from_slice(case.params);
            answers.push(peer.token(&form, Some(case.requester)).await);
        }
        compare_token_answers(report, case.name, &answers[0], &answers[1]);
    }
    // Refusals that need no valid subject token.
    let garbage = [
        ("grant_type", EXCHANGE),
        ("subject_token", "not-a-token"),
        ("subject_token_type", ACCESS_TYPE),
    ];
    let missing = [
        ("grant_type", EXCHANGE),
        ("subject_token_type", ACCESS_TYPE),
    ];
    for (name, form) in [
        ("exchange: invalid subject token", &garbage[..]),
        ("exchange: missing subject token", &missing[..]),
    ] {
        let requester = Some(("requester-client", "requester-secret"));
        let (a, b) = (
            kc.token(form, requester).await,
            cb.token(form, requester).await,
        );
        compare_token_answers(report, name, &a, &b);
    }
}

pub(super) async fn introspection_and_revocation(kc: &Peer, cb: &Peer, report: &mut Report) {
    let mut introspected = Vec::new();
    let mut after_revocation = Vec::new();
    for peer in [kc, cb] {
        let subject = peer
            .alice(("subject-client", Some("subject-secret")))
            .await
            .access_token();
        let exchanged = peer
            .token(
                &[
                    ("grant_type", EXCHANGE),
                    ("subject_token", &subject),
                    ("subject_token_type", ACCESS_TYPE),
                    ("audience", "orders-api"),
                ],
                Some(("requester-client", "requester-secret")),
            )
            .await
            .access_token();
        let orders = Some(("orders-api", "orders-secret"));
        let active = peer
            .form(
                &peer.oidc("token/introspect"),
                &[("token", &exchanged)],
                orders,
            )
            .await;
        introspected.push(active);
        let revoked = peer
            .form(
                &peer.oidc("revoke"),
                &[("token", &subject)],
                Some(("subject-client", "subject-secret")),
            )
            .await;
        let subject_after = peer
            .form(
                &peer.oidc("token/introspect"),
                &[("token", &subject)],
                orders,
            )
            .await;
        let exchanged_after = peer
            .form(
                &peer.oidc("token/introspect"),
                &[("token", &exchanged)],
                orders,
            )
            .await;
        after_revocation.push((revoked, subject_after, exchanged_after));
    }
    let scenario = "introspection of an exchanged token";
    report.compare(
        scenario,
        "active",
        &introspected[0].body["active"],
        &introspected[1].body["active"],
    );
    report.compare(
        scenario,
        "members",
        &members(&introspected[0].body),
        &members(&introspected[1].body),
    );
    let (kc_after, cb_after) = (&after_revocation[0], &after_revocation[1]);
    let scenario = "revocation of the subject token";
    report.compare(
        scenario,
        "revoke status",
        &json!(kc_after.0.status.as_u16()),
        &json!(cb_after.0.status.as_u16()),
    );
    report.compare(
        scenario,
        "subject active after",
        &kc_after.1.body["active"],
        &cb_after.1.body["active"],
    );
    report.compare(
        scenario,
        "exchanged active after",
        &kc_after.2.body["active"],
        &cb_after.2.body["active"],
    );
}
