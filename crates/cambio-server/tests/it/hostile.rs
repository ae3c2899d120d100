//! Hostile input: a table of malformed and malicious requests against the token,
//! introspection, revocation, userinfo and admin endpoints. Each must be answered with its
//! exact 4xx status and OAuth error code in a JSON body; none may panic the server or get a 5xx.

use std::io::{Read, Write};
use std::net::TcpStream;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cambio_jose::{Algorithm, SigningKey};
use serde_json::{Value, json};

use crate::*;

/// One hostile request and the answer it must get.
struct Case {
    name: &'static str,
    method: &'static str,
    /// Path below the server base.
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    error: &'static str,
}

const TOKEN: &str = "/realms/demo/protocol/openid-connect/token";
const INTROSPECT: &str = "/realms/demo/protocol/openid-connect/token/introspect";
const REVOKE: &str = "/realms/demo/protocol/openid-connect/revoke";
const USERINFO: &str = "/realms/demo/protocol/openid-connect/userinfo";
const FORM: &str = "application/x-www-form-urlencoded";

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// A compact JWS with any header and payload and a junk signature.
fn forged(header: Value, payload: Value) -> String {
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(payload.to_string().as_bytes()),
        b64(b"not-a-signature")
    )
}

fn form_case(
    name: &'static str,
    path: &str,
    body: &str,
    basic: Option<(&str, &str)>,
    status: u16,
    error: &'static str,
) -> Case {
    let mut headers = vec![("content-type", FORM.to_owned())];
    if let Some((id, secret)) = basic {
        headers.push(("authorization", basic_header(id, secret)));
    }
    Case {
        name,
        method: "POST",
        path: path.to_owned(),
        headers,
        body: body.as_bytes().to_vec(),
        status,
        error,
    }
}

fn exchange_body(subject: &str) -> String {
    encode_form(&[
        ("grant_type", EXCHANGE),
        ("subject_token", subject),
        ("audience", "orders-api"),
    ])
}

const REQ: Option<(&str, &str)> = Some(("requester-client", "requester-secret"));

fn cases(alice: &str, jku_target: &str) -> Vec<Case> {
    let now = 1_900_000_000u64;
    let claims = json!({"iss": "x", "sub": "alice", "exp": now, "aud": "requester-client", "azp": "subject-client"});
    let mut nested = json!("deep");
    for _ in 0..200 {
        nested = json!({ "a": nested });
    }
    let mut c = vec![
        // Methods and content types.
        Case {
            name: "GET on the token endpoint",
            method: "GET",
            path: TOKEN.into(),
            headers: vec![],
            body: vec![],
            status: 405,
            error: "invalid_request",
        },
        Case {
            name: "PUT on the token endpoint",
            method: "PUT",
            path: TOKEN.into(),
            headers: vec![],
            body: vec![],
            status: 405,
            error: "invalid_request",
        },
        Case {
            name: "DELETE on introspection",
            method: "DELETE",
            path: INTROSPECT.into(),
            headers: vec![],
            body: vec![],
            status: 405,
            error: "invalid_request",
        },
        Case {
            name: "JSON body",
            method: "POST",
            path: TOKEN.into(),
            headers: vec![("content-type", "application/json".into())],
            body: br#"{"grant_type":"client_credentials"}"#.to_vec(),
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "no content type",
            method: "POST",
            path: TOKEN.into(),
            headers: vec![],
            body: b"grant_type=client_credentials".to_vec(),
            status: 400,
            error: "invalid_request",
        },
        Case {
            name: "multipart body",
            method: "POST",
            path: TOKEN.into(),
            headers: vec![("content-type", "multipart/form-data; boundary=x".into())],
            body: b"--x--".to_vec(),
            status: 400,
            error: "invalid_request",
        },
        // Encodings.
        form_case(
            "broken percent-encoding",
            TOKEN,
            "grant_type=%ZZ%",
            REQ,
            400,
            "unsupported_grant_type",
        ),
        form_case(
            "invalid UTF-8",
            TOKEN,
            "grant_type=client_credentials&scope=%FF%FE",
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "raw non-ASCII bytes",
            TOKEN,
            "grant_type=client_credentials&scope=\u{e9}",
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "NUL in a value",
            TOKEN,
            "grant_type=client_credentials%00",
            REQ,
            400,
            "unsupported_grant_type",
        ),
        form_case(
            "duplicate grant_type",
            TOKEN,
            "grant_type=client_credentials&grant_type=password",
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "duplicate subject_token",
            TOKEN,
            &format!("{}&subject_token=x", exchange_body(alice)),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "duplicate client_id",
            TOKEN,
            "grant_type=client_credentials&client_id=a&client_id=b",
            None,
            400,
            "invalid_request",
        ),
        form_case("empty body", TOKEN, "", REQ, 400, "invalid_request"),
        form_case(
            "only ampersands",
            TOKEN,
            &"&".repeat(1000),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "too many parameters",
            TOKEN,
            &(0..200)
                .map(|i| format!("p{i}=1"))
                .collect::<Vec<_>>()
                .join("&"),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "body over 64 KiB",
            TOKEN,
            &format!("grant_type=client_credentials&x={}", "a".repeat(70_000)),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "unknown grant",
            TOKEN,
            "grant_type=urn:evil",
            REQ,
            400,
            "unsupported_grant_type",
        ),
        // Client authentication.
        form_case(
            "Basic and client_secret together",
            TOKEN,
            "grant_type=client_credentials&client_id=requester-client&client_secret=requester-secret",
            REQ,
            400,
            "invalid_request",
        ),
        Case {
            name: "Basic that is not base64",
            method: "POST",
            path: TOKEN.into(),
            headers: vec![
                ("content-type", FORM.into()),
                ("authorization", "Basic !!!".into()),
            ],
            body: b"grant_type=client_credentials".to_vec(),
            status: 401,
            error: "invalid_client",
        },
        Case {
            name: "Basic without a colon",
            method: "POST",
            path: TOKEN.into(),
            headers: vec![
                ("content-type", FORM.into()),
                (
                    "authorization",
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode("nocolon")
                    ),
                ),
            ],
            body: b"grant_type=client_credentials".to_vec(),
            status: 401,
            error: "invalid_client",
        },
        Case {
            name: "Basic with an empty id",
            method: "POST",
            path: TOKEN.into(),
            headers: vec![
                ("content-type", FORM.into()),
                (
                    "authorization",
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(":secret")
                    ),
                ),
            ],
            body: b"grant_type=client_credentials".to_vec(),
            status: 401,
            error: "invalid_client",
        },
        Case {
            name: "Basic with invalid UTF-8",
            method: "POST",
            path: TOKEN.into(),
            headers: vec![
                ("content-type", FORM.into()),
                (
                    "authorization",
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode([0xff, b':', 0xfe])
                    ),
                ),
            ],
            body: b"grant_type=client_credentials".to_vec(),
            status: 401,
            error: "invalid_client",
        },
        form_case(
            "look-alike client id (Cyrillic a)",
            TOKEN,
            "grant_type=client_credentials",
            Some(("requester-client\u{430}", "requester-secret")),
            401,
            "invalid_client",
        ),
        form_case(
            "control characters in client_id",
            TOKEN,
            "grant_type=client_credentials&client_id=requester%0A-client&client_secret=requester-secret",
            None,
            401,
            "invalid_client",
        ),
        form_case(
            "SQL-looking client_id",
            TOKEN,
            "grant_type=client_credentials&client_id=%27%20OR%201%3D1%20--&client_secret=x",
            None,
            401,
            "invalid_client",
        ),
        form_case(
            "SQL-looking secret",
            TOKEN,
            "grant_type=client_credentials",
            Some(("requester-client", "' OR '1'='1")),
            401,
            "invalid_client",
        ),
        form_case(
            "huge client_id",
            TOKEN,
            &format!(
                "grant_type=client_credentials&client_id={}&client_secret=x",
                "c".repeat(20_000)
            ),
            None,
            401,
            "invalid_client",
        ),
        form_case(
            "secret without client_id",
            TOKEN,
            "grant_type=client_credentials&client_secret=x",
            None,
            400,
            "invalid_request",
        ),
        form_case(
            "assertion with wrong type",
            TOKEN,
            "grant_type=client_credentials&client_assertion=a.b.c&client_assertion_type=urn:x",
            None,
            400,
            "invalid_request",
        ),
        form_case(
            "assertion that is not a JWT",
            TOKEN,
            "grant_type=client_credentials&client_assertion=garbage&client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            None,
            401,
            "invalid_client",
        ),
        // Subject tokens.
        form_case(
            "missing subject_token",
            TOKEN,
            &encode_form(&[("grant_type", EXCHANGE)]),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "alg none",
            TOKEN,
            &exchange_body(&format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"at+jwt"}"#),
                b64(claims.to_string().as_bytes())
            )),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "alg None",
            TOKEN,
            &exchange_body(&forged(
                json!({"alg": "None", "typ": "at+jwt"}),
                claims.clone(),
            )),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "HS256 with the public key",
            TOKEN,
            &exchange_body(&forged(
                json!({"alg": "HS256", "typ": "at+jwt"}),
                claims.clone(),
            )),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "a million dots",
            TOKEN,
            &exchange_body(&".".repeat(1_000_000)),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "16 KiB token",
            TOKEN,
            &exchange_body(&format!(
                "{}.{}.sig",
                b64(br#"{"alg":"ES256"}"#),
                "A".repeat(16 * 1024)
            )),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "deeply nested payload",
            TOKEN,
            &exchange_body(&forged(
                json!({"alg": "ES256", "typ": "at+jwt"}),
                json!({"x": nested}),
            )),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "unknown crit",
            TOKEN,
            &exchange_body(&forged(
                json!({"alg": "ES256", "typ": "at+jwt", "crit": ["exp-2"], "exp-2": 1}),
                claims.clone(),
            )),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "jku to an internal address",
            TOKEN,
            &exchange_body(&forged(
                json!({"alg": "ES256", "typ": "at+jwt", "jku": jku_target}),
                claims.clone(),
            )),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "x5u to an internal address",
            TOKEN,
            &exchange_body(&forged(
                json!({"alg": "ES256", "typ": "at+jwt", "x5u": jku_target}),
                claims.clone(),
            )),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "embedded jwk",
            TOKEN,
            &exchange_body(&forged(
                json!({"alg": "ES256", "typ": "at+jwt", "jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}),
                claims.clone(),
            )),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "kid path traversal",
            TOKEN,
            &exchange_body(&forged(
                json!({"alg": "ES256", "typ": "at+jwt", "kid": "../../../../etc/passwd"}),
                claims.clone(),
            )),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "JWE (five parts)",
            TOKEN,
            &exchange_body("a.b.c.d.e"),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "string exp",
            TOKEN,
            &exchange_body(&forged(
                json!({"alg": "ES256", "typ": "at+jwt"}),
                json!({"exp": "9999999999"}),
            )),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "truncated real token",
            TOKEN,
            &exchange_body(&alice[..alice.len() - 10]),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "real token with extra characters",
            TOKEN,
            &exchange_body(&format!("{alice}AAAA")),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "subject_token_type SAML",
            TOKEN,
            &format!(
                "{}&subject_token_type=urn:ietf:params:oauth:token-type:saml2",
                exchange_body(alice)
            ),
            REQ,
            400,
            "invalid_request",
        ),
        form_case(
            "unknown audience with SQL",
            TOKEN,
            &encode_form(&[
                ("grant_type", EXCHANGE),
                ("subject_token", alice),
                ("audience", "x' OR '1'='1"),
            ]),
            REQ,
            400,
            "invalid_client",
        ),
        // Introspection and revocation.
        form_case(
            "introspection without credentials",
            INTROSPECT,
            "token=abc",
            None,
            400,
            "invalid_client",
        ),
        form_case(
            "introspection with a wrong secret",
            INTROSPECT,
            "token=abc",
            Some(("orders-api", "wrong")),
            401,
            "invalid_client",
        ),
        form_case(
            "introspection without token",
            INTROSPECT,
            "",
            Some(("orders-api", "orders-secret")),
            400,
            "invalid_request",
        ),
        form_case(
            "introspection with a duplicate token",
            INTROSPECT,
            "token=a&token=b",
            Some(("orders-api", "orders-secret")),
            400,
            "invalid_request",
        ),
        form_case(
            "revocation without credentials",
            REVOKE,
            "token=abc",
            None,
            400,
            "invalid_client",
        ),
        form_case(
            "revocation with a JSON body",
            REVOKE,
            "{}",
            Some(("orders-api", "orders-secret")),
            400,
            "invalid_request",
        ),
        // userinfo.
        Case {
            name: "userinfo with a forged token",
            method: "GET",
            path: USERINFO.into(),
            headers: vec![(
                "authorization",
                format!("Bearer {}", forged(json!({"alg": "none"}), claims.clone())),
            )],
            body: vec![],
            status: 401,
            error: "invalid_token",
        },
        Case {
            name: "userinfo with a Basic header",
            method: "GET",
            path: USERINFO.into(),
            headers: vec![("authorization", basic_header("a", "b"))],
            body: vec![],
            status: 401,
            error: "invalid_request",
        },
        // Admin API.
        Case {
            name: "admin without token",
            method: "GET",
            path: "/admin/realms/demo/clients".into(),
            headers: vec![],
            body: vec![],
            status: 401,
            error: "invalid_token",
        },
        Case {
            name: "admin with a user token",
            method: "GET",
            path: "/admin/realms/demo/clients".into(),
            headers: vec![("authorization", format!("Bearer {alice}"))],
            body: vec![],
            status: 403,
            error: "HTTP 403 Forbidden",
        },
        Case {
            name: "unknown path",
            method: "GET",
            path: "/realms/demo/nope".into(),
            headers: vec![],
            body: vec![],
            status: 404,
            error: "not_found",
        },
        Case {
            name: "unknown realm",
            method: "POST",
            path: "/realms/no-such-realm/protocol/openid-connect/token".into(),
            headers: vec![("content-type", FORM.into())],
            body: b"grant_type=client_credentials".to_vec(),
            status: 404,
            error: "Realm does not exist",
        },
        Case {
            name: "dot-dot realm",
            method: "POST",
            path: "/realms/%2e%2e/protocol/openid-connect/token".into(),
            headers: vec![("content-type", FORM.into())],
            body: b"grant_type=client_credentials".to_vec(),
            status: 404,
            error: "not_found",
        },
    ];
    c.push(Case {
        name: "20 KiB of headers",
        method: "POST",
        path: TOKEN.into(),
        headers: vec![
            ("content-type", FORM.into()),
            ("x-padding", "p".repeat(20 * 1024)),
        ],
        body: b"grant_type=client_credentials".to_vec(),
        status: 431,
        error: "invalid_request",
    });
    c.push(Case {
        name: "80 header fields",
        method: "GET",
        path: "/health/live".into(),
        headers: (0..80).map(|_| ("x-many", "v".to_owned())).collect(),
        body: vec![],
        status: 431,
        error: "invalid_request",
    });
    // Duplicate Authorization headers.
    c.push(Case {
        name: "two Authorization headers",
        method: "POST",
        path: TOKEN.into(),
        headers: vec![
            ("content-type", FORM.into()),
            (
                "authorization",
                basic_header("requester-client", "requester-secret"),
            ),
            (
                "authorization",
                basic_header("subject-client", "subject-secret"),
            ),
        ],
        body: b"grant_type=client_credentials".to_vec(),
        status: 400,
        error: "invalid_request",
    });
    c
}

/// Admin cases that need an administrator's token.
fn admin_cases(admin: &str) -> Vec<Case> {
    let auth = ("authorization", format!("Bearer {admin}"));
    let json_case = |name, method, path: &str, body: &[u8], status, error| Case {
        name,
        method,
        path: path.to_owned(),
        headers: vec![auth.clone(), ("content-type", "application/json".into())],
        body: body.to_vec(),
        status,
        error,
    };
    let mut deep = String::new();
    for _ in 0..10_000 {
        deep.push('[');
    }
    vec![
        json_case(
            "invalid JSON",
            "POST",
            "/admin/realms/demo/clients",
            b"{not json",
            400,
            "unknown_error: invalid JSON body",
        ),
        json_case(
            "wrong field type",
            "POST",
            "/admin/realms/demo/clients",
            br#"{"clientId": 42}"#,
            400,
            "unknown_error: invalid JSON body",
        ),
        json_case(
            "deeply nested JSON",
            "POST",
            "/admin/realms/demo/clients",
            deep.as_bytes(),
            400,
            "unknown_error: invalid JSON body",
        ),
        json_case(
            "control characters in clientId",
            "POST",
            "/admin/realms/demo/clients",
            br#"{"clientId": "bad\nid"}"#,
            400,
            "Invalid clientId",
        ),
        json_case(
            "body over 1 MiB",
            "POST",
            "/admin/realms/demo/clients",
            format!(r#"{{"clientId":"{}"}}"#, "a".repeat(1_100_000)).as_bytes(),
            413,
            "invalid_request",
        ),
        json_case(
            "unknown client id",
            "GET",
            "/admin/realms/demo/clients/00000000-0000-0000-0000-000000000000",
            b"",
            404,
            "Could not find client",
        ),
        json_case(
            "bad paging",
            "GET",
            "/admin/realms/demo/events?first=abc",
            b"",
            400,
            "invalid_request",
        ),
        json_case(
            "unknown realm",
            "GET",
            "/admin/realms/no-such-realm/clients",
            b"",
            404,
            "Realm not found.",
        ),
    ]
}

async fn send(server: &TestServer, case: &Case) -> (u16, Value, String) {
    let url = format!("{}{}", server.base, case.path);
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).unwrap();
    let mut request = server.http.request(method, &url).body(case.body.clone());
    for (name, value) in &case.headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, body, format!("{content_type} {text}"))
}

#[tokio::test]
async fn hostile_requests_get_exact_4xx_answers() {
    let server = TestServer::start().await;
    let alice = server.alice(None).await.access_token();
    // A listener standing for an internal service: nothing may ever connect to it.
    let trap = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    trap.set_nonblocking(true).unwrap();
    let jku = format!("http://{}/jwks", trap.local_addr().unwrap());
    let admin = server.admin_token().await;
    let mut all = cases(&alice, &jku);
    all.extend(admin_cases(&admin));
    assert!(all.len() >= 50, "only {} cases", all.len());
    let mut failures = Vec::new();
    for case in &all {
        let (status, body, raw) = send(&server, case).await;
        let error = body["error"].as_str().unwrap_or("<no JSON error>");
        if (status, error) != (case.status, case.error) {
            failures.push(format!(
                "{}: got {status} {error} ({raw:.200}), want {} {}",
                case.name, case.status, case.error
            ));
        }
        assert!(status < 500, "{}: {status}", case.name);
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    assert!(
        trap.accept().is_err(),
        "the server connected to a URL taken from a token header"
    );
    // The server is still healthy.
    assert_eq!(
        server
            .get(&format!("{}/health/live", server.base), None)
            .await
            .status,
        200
    );
}

/// A body announced as chunked that ends before its last chunk.
#[tokio::test]
async fn unterminated_chunked_body() {
    let server = TestServer::start().await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let request = format!(
            "POST {TOKEN} HTTP/1.1\r\nHost: x\r\nContent-Type: {FORM}\r\nTransfer-Encoding: chunked\r\n\r\n10\r\ngrant_type=cl"
        );
        stream.write_all(request.as_bytes()).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    })
    .await
    .unwrap();
    // Either a 400 with JSON, or the connection closed without an answer: never a 5xx.
    if !response.is_empty() {
        assert!(response.starts_with("HTTP/1.1 400"), "{response}");
        assert!(response.contains("invalid_request"), "{response}");
    }
    assert_eq!(
        server
            .get(&format!("{}/health/live", server.base), None)
            .await
            .status,
        200
    );
}

/// Client assertions (`private_key_jwt`) with hostile claims, signed with the client's real key.
#[tokio::test]
async fn hostile_client_assertions() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let key = SigningKey::generate(Algorithm::Es256).unwrap();
    let jwks = json!({"keys": [key.public_jwk()]}).to_string();
    let created = server
        .http
        .post(format!("{}/admin/realms/demo/clients", server.base))
        .bearer_auth(&admin)
        .json(&json!({"clientId": "jwt-client", "clientAuthenticatorType": "client-jwt", "serviceAccountsEnabled": true, "attributes": {"jwks.string": jwks}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let token_url = server.oidc("demo", "token");
    let issuer = server.realm_url("demo");
    let now = now();
    let base = json!({"iss": "jwt-client", "sub": "jwt-client", "aud": token_url, "iat": now, "exp": now + 60});
    let with = |changes: Value| {
        let mut claims = base.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        if claims.get("jti").is_none() {
            claims["jti"] = json!(format!("jti-{}", rand_suffix()));
        }
        key.sign("JWT", &claims).unwrap()
    };
    let cases: Vec<(&str, String)> = vec![
        ("string exp", with(json!({"exp": (now + 60).to_string()}))),
        ("huge exp", with(json!({"exp": 1u64 << 60}))),
        ("no exp", with(json!({"exp": null}))),
        ("nbf in the future", with(json!({"nbf": now + 3600}))),
        ("aud as an empty list", with(json!({"aud": []}))),
        ("aud as a number", with(json!({"aud": 42}))),
        (
            "aud as a list",
            with(json!({"aud": [token_url.clone(), issuer.clone()]})),
        ),
        (
            "aud of another server",
            with(json!({"aud": "https://other.example/token"})),
        ),
        (
            "sub of another client",
            with(json!({"sub": "requester-client"})),
        ),
        (
            "expired",
            with(json!({"exp": now - 3600, "iat": now - 3700})),
        ),
        ("lifetime of a day", with(json!({"exp": now + 86_400}))),
    ];
    for (name, assertion) in cases {
        let reply = server
            .post_form(
                &token_url,
                &[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ],
                None,
            )
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.error()),
            (401, "invalid_client"),
            "{name}: {}",
            reply.text
        );
    }
    // The same assertion twice at once: exactly one wins.
    let assertion = with(json!({"jti": "once"}));
    let form = [
        ("grant_type", "client_credentials"),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let (a, b) = tokio::join!(
        server.post_form(&token_url, &form, None),
        server.post_form(&token_url, &form, None)
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 401], "{} / {}", a.text, b.text);
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

#[tokio::test]
async fn password_lockout_after_repeated_failures() {
    let server = TestServer::start().await;
    let login = |password: &'static str| {
        let server = &server;
        async move {
            server
                .token(
                    &[
                        ("grant_type", "password"),
                        ("username", "alice"),
                        ("password", password),
                    ],
                    Some(("subject-client", "subject-secret")),
                )
                .await
        }
    };
    for _ in 0..5 {
        login("wrong")
            .await
            .assert_error(400, "invalid_grant", "Invalid user credentials");
    }
    // Locked: even the right password gets the same answer as a wrong one.
    login("alice")
        .await
        .assert_error(400, "invalid_grant", "Invalid user credentials");
    // Other users are not affected.
    let admin = server
        .post_form(
            &server.oidc("master", "token"),
            &[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", "admin"),
                ("password", ADMIN_PASSWORD),
            ],
            None,
        )
        .await;
    assert_eq!(admin.status, 200);
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let mut config = demo_config();
    // Slow refill, so that the test's own duration does not matter.
    config.rate_limit_per_client = cambio_server::RateLimit {
        rate: 0.1,
        burst: 3.0,
    };
    config.rate_limit_per_ip = cambio_server::RateLimit {
        rate: 0.1,
        burst: 6.0,
    };
    let server = TestServer::start_with(config).await;
    let cc = |id: &'static str, secret: &'static str| {
        let server = &server;
        async move {
            server
                .token(&[("grant_type", "client_credentials")], Some((id, secret)))
                .await
        }
    };
    for _ in 0..3 {
        assert_eq!(cc("requester-client", "requester-secret").await.status, 200);
    }
    let limited = cc("requester-client", "requester-secret").await;
    assert_eq!(
        (limited.status.as_u16(), limited.error()),
        (429, "temporarily_unavailable"),
        "{}",
        limited.text
    );
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=10).contains(&retry), "{retry}");
    // Another client still has its own budget, until the address runs out: the address has
    // spent 4 of its 6 (the refused request counted too).
    for _ in 0..2 {
        let other = cc("orders-api", "orders-secret").await;
        assert_eq!(other.status, 400, "{}", other.text);
    }
    let introspect = server
        .post_form(
            &server.oidc("demo", "token/introspect"),
            &[("token", "x")],
            Some(("orders-api", "orders-secret")),
        )
        .await;
    assert_eq!(introspect.status, 429);
}
