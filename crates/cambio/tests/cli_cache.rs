//! `cambio exchange` keeps its tokens between runs: the cache file, `--force-update`,
//! `--client-secret-file`, a malformed `--trace-parent`, and a closed standard output.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};

mod support;
use support::{
    ServeChild, client_command, count, jwt_claims, login_alice, login_alice_with, stderr, stdout,
};

const EXCHANGE: &str = "TOKEN_EXCHANGE";
const REFRESH: &str = "REFRESH_TOKEN";

#[test]
fn a_second_exchange_is_answered_from_the_cache_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeChild::start(&dir.path().join("data"));
    let state = dir.path().join("session.json");
    let cache = dir.path().join("session.cache.json");
    login_alice(&server, &state);
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "sdk-secret\n").unwrap();
    let exchange = |extra: &[&str]| {
        let mut args = vec![
            "exchange",
            "--audience",
            "orders-api",
            "--client-secret-file",
        ];
        args.push(secret_file.to_str().unwrap());
        args.extend_from_slice(extra);
        let output = client_command(&args, &state);
        assert!(output.status.success(), "{}", stderr(&output));
        stdout(&output).trim().to_owned()
    };

    let first = exchange(&[]);
    assert_eq!(jwt_claims(&first)["aud"], "orders-api");
    let (exchanges, refreshes) = (count(&server.base, EXCHANGE), count(&server.base, REFRESH));
    assert_eq!(exchanges, 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let cached = std::fs::read_to_string(&cache).unwrap();
    assert!(!cached.contains("sdk-secret"));
    let session = std::fs::read_to_string(&state).unwrap();
    let refresh: serde_json::Value = serde_json::from_str(&session).unwrap();
    let refresh_token = refresh["refresh_token"].as_str().unwrap();
    assert!(
        !cached.contains(refresh_token),
        "the refresh token stays out of the cache"
    );

    // The second run asks the server nothing: no exchange, no refresh.
    let second = exchange(&[]);
    assert_eq!(second, first);
    assert_eq!(count(&server.base, EXCHANGE), exchanges);
    assert_eq!(count(&server.base, REFRESH), refreshes);

    // Another audience is not answered with orders-api's token.
    let billing = client_command(
        &[
            "exchange",
            "--audience",
            "billing-api",
            "--client-secret",
            "sdk-secret",
        ],
        &state,
    );
    assert!(billing.status.success(), "{}", stderr(&billing));
    assert_eq!(jwt_claims(&stdout(&billing))["aud"], "billing-api");
    assert_eq!(count(&server.base, EXCHANGE), exchanges + 1);

    // --force-update fetches a new token and it replaces the cached one.
    let forced = exchange(&["--force-update"]);
    assert_ne!(forced, first);
    assert_eq!(count(&server.base, EXCHANGE), exchanges + 2);
    assert_eq!(exchange(&[]), forced);
    assert_eq!(count(&server.base, EXCHANGE), exchanges + 2);

    // A new login starts with an empty cache: its token is not the old session's.
    login_alice(&server, &state);
    assert!(!cache.exists());
    let after_login = exchange(&[]);
    assert_ne!(after_login, forced);
    assert_eq!(count(&server.base, EXCHANGE), exchanges + 3);

    // Logout removes the cache with the session.
    let logout = client_command(&["logout", "--client-secret", "sdk-secret"], &state);
    assert!(logout.status.success(), "{}", stderr(&logout));
    assert!(!cache.exists() && !state.exists());
    let gone = client_command(&["exchange", "--audience", "orders-api"], &state);
    assert!(!gone.status.success());
    assert!(stderr(&gone).contains("not logged in"), "{}", stderr(&gone));
}

#[test]
fn a_client_secret_file_must_hold_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeChild::start(&dir.path().join("data"));
    let state = dir.path().join("session.json");
    login_alice(&server, &state);
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let missing = dir.path().join("missing");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-secret").unwrap();
    for (file, expected) in [
        (&empty, "the first line is empty"),
        (&missing, "--client-secret-file"),
        (&wrong, "invalid_client"),
    ] {
        let output = client_command(
            &[
                "exchange",
                "--audience",
                "orders-api",
                "--client-secret-file",
            ]
            .into_iter()
            .chain([file.to_str().unwrap()])
            .collect::<Vec<_>>(),
            &state,
        );
        assert!(!output.status.success());
        assert!(stderr(&output).contains(expected), "{}", stderr(&output));
    }
    assert_eq!(count(&server.base, EXCHANGE), 0);
}

#[test]
fn a_malformed_trace_parent_is_refused_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeChild::start(&dir.path().join("data"));
    let state = dir.path().join("session.json");
    login_alice(&server, &state);
    let refreshes = count(&server.base, REFRESH);
    for bad in [
        "not-a-trace",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\u{7f}",
    ] {
        let output = client_command(
            &[
                "exchange",
                "--audience",
                "orders-api",
                "--client-secret",
                "sdk-secret",
                "--trace-parent",
                bad,
            ],
            &state,
        );
        assert_eq!(output.status.code(), Some(1), "{bad:?}");
        let message = stderr(&output);
        assert!(
            message.starts_with("cambio: --trace-parent")
                && message.contains("00-<32 lowercase hex trace id>"),
            "{message}"
        );
        assert!(!message.contains("panicked"), "{message}");
    }
    assert_eq!(count(&server.base, EXCHANGE), 0);
    assert_eq!(count(&server.base, REFRESH), refreshes);

    let good = client_command(
        &[
            "exchange",
            "--audience",
            "orders-api",
            "--client-secret",
            "sdk-secret",
            "--trace-parent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ],
        &state,
    );
    assert!(good.status.success(), "{}", stderr(&good));
}

#[test]
fn a_closed_standard_output_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeChild::start(&dir.path().join("data"));
    let state = dir.path().join("session.json");
    login_alice(&server, &state);
    // Once from the server, once from the cache file: both write into a pipe nobody reads.
    for _ in 0..2 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cambio"))
            .args(["exchange", "--audience", "orders-api", "--json"])
            .args(["--client-secret", "sdk-secret", "--state-file"])
            .arg(&state)
            .env("CAMBIO_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The reading end closes before the command writes: its write fails with EPIPE.
        drop(child.stdout.take());
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(stderr(&output), "");
    }
    assert_eq!(count(&server.base, EXCHANGE), 1);
}

#[test]
fn a_dpop_session_binds_exchanged_tokens_and_signs_their_proofs() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeChild::start(&dir.path().join("data"));
    let state = dir.path().join("session.json");
    login_alice_with(&server, &state, &["--dpop"]);
    let issuer = format!("{}/realms/demo", server.base);
    let exchanged = client_command(
        &[
            "exchange",
            "--audience",
            "orders-api",
            "--scope",
            "openid",
            "--json",
            "--client-secret",
            "sdk-secret",
        ],
        &state,
    );
    assert!(exchanged.status.success(), "{}", stderr(&exchanged));
    let answer: serde_json::Value = serde_json::from_str(&stdout(&exchanged)).unwrap();
    assert_eq!(answer["token_type"], "DPoP");
    let token = answer["access_token"].as_str().unwrap().to_owned();
    assert!(jwt_claims(&token)["cnf"]["jkt"].is_string());
    let userinfo = format!("{issuer}/protocol/openid-connect/userinfo");
    let proof = client_command(
        &[
            "proof", "--method", "GET", "--url", &userinfo, "--token", &token,
        ],
        &state,
    );
    assert!(proof.status.success(), "{}", stderr(&proof));
    let proof = stdout(&proof).trim().to_owned();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = |proof: Option<&str>| {
        runtime.block_on(async {
            let mut request = reqwest::Client::new()
                .get(&userinfo)
                .header("authorization", format!("DPoP {token}"));
            if let Some(proof) = proof {
                request = request.header("dpop", proof);
            }
            request.send().await.unwrap().status().as_u16()
        })
    };
    assert_eq!(status(Some(&proof)), 200);
    assert_eq!(status(None), 401);
}
