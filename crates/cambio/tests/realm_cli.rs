//! `cambio realm import` and `cambio realm export` against a data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

mod support;
use support::{ServeChild, client_command, jwt_claims, stderr, stdout};

fn cambio(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cambio"))
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("CAMBIO_LOG", "error")
        .env_remove("CAMBIO_DATABASE")
        .output()
        .unwrap()
}

#[test]
fn import_then_export() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("acme.json");
    let realm = json!({
        "realm": "acme",
        "roles": {"realm": [{"name": "staff"}]},
        "clients": [{"clientId": "acme-app", "secret": "acme-secret", "directAccessGrantsEnabled": true}],
        "users": [{
            "username": "bob",
            "credentials": [{"type": "password", "value": "bob-pass"}],
            "realmRoles": ["staff"]
        }]
    });
    std::fs::write(&file, realm.to_string()).unwrap();
    let file_arg = file.to_str().unwrap();

    let imported = cambio(&["realm", "import", "--file", file_arg], &data);
    assert!(imported.status.success(), "{}", stderr(&imported));
    assert!(String::from_utf8_lossy(&imported.stdout).contains("imported realm 'acme'"));
    let again = cambio(&["realm", "import", "--file", file_arg], &data);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("Conflict"), "{}", stderr(&again));

    let exported = cambio(&["realm", "export", "--realm", "acme"], &data);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let doc: Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(doc["realm"], "acme");
    let app = doc["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"] == "acme-app")
        .unwrap();
    assert_eq!(app["secret"], "acme-secret");
    let bob = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap();
    assert_eq!(bob["realmRoles"], json!(["staff"]));
    let hash = bob["credentials"][0]["hashedSaltedValue"].as_str().unwrap();
    assert!(hash.starts_with("$argon2id$"), "{bob}");
    assert!(!exported.stdout.windows(8).any(|w| w == b"bob-pass"));

    // To a file readable by its owner only, then back in under another name.
    let out = dir.path().join("export.json");
    let to_file = cambio(
        &[
            "realm",
            "export",
            "--realm",
            "acme",
            "--file",
            out.to_str().unwrap(),
        ],
        &data,
    );
    assert!(to_file.status.success(), "{}", stderr(&to_file));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mut copy: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    copy["realm"] = json!("acme-copy");
    copy.as_object_mut().unwrap().remove("id");
    std::fs::write(&out, copy.to_string()).unwrap();
    let imported = cambio(&["realm", "import", "--file", out.to_str().unwrap()], &data);
    assert!(imported.status.success(), "{}", stderr(&imported));
    let exported = cambio(&["realm", "export", "--realm", "acme-copy"], &data);
    let doc: Value = serde_json::from_slice(&exported.stdout).unwrap();
    let bob = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap();
    assert_eq!(
        bob["credentials"][0]["hashedSaltedValue"].as_str().unwrap(),
        hash
    );

    let missing = cambio(&["realm", "export", "--realm", "nope"], &data);
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("realm not found"),
        "{}",
        stderr(&missing)
    );
    let elsewhere = cambio(
        &["realm", "export", "--realm", "acme"],
        &dir.path().join("empty"),
    );
    assert!(!elsewhere.status.success());
    assert!(
        stderr(&elsewhere).contains("secret.key"),
        "{}",
        stderr(&elsewhere)
    );
}

#[test]
fn login_exchange_claims_logout() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeChild::start(&dir.path().join("data"));
    let issuer = format!("{}/realms/demo", server.base);
    let state = dir.path().join("state").join("session.json");

    let login = client_command(
        &[
            "login",
            "--issuer",
            &issuer,
            "--client-id",
            "sdk-app",
            "--client-secret",
            "sdk-secret",
            "--username",
            "alice",
            "--password",
            "alice",
        ],
        &state,
    );
    assert!(login.status.success(), "{}", stderr(&login));
    assert!(stdout(&login).contains("logged in"), "{}", stdout(&login));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(saved["issuer"], issuer.as_str());
    assert_eq!(saved["client_id"], "sdk-app");
    assert!(
        !std::fs::read_to_string(&state)
            .unwrap()
            .contains("sdk-secret")
    );

    let exchanged = client_command(
        &[
            "exchange",
            "--audience",
            "orders-api",
            "--json",
            "--client-secret",
            "sdk-secret",
        ],
        &state,
    );
    assert!(exchanged.status.success(), "{}", stderr(&exchanged));
    let json: Value = serde_json::from_slice(&exchanged.stdout).unwrap();
    assert_eq!(
        json["issued_token_type"],
        "urn:ietf:params:oauth:token-type:access_token"
    );
    assert!(json["expires_in"].as_u64().unwrap() > 0);
    let token = json["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(token)["aud"], "orders-api");
    assert_eq!(jwt_claims(token)["preferred_username"], "alice");

    // The bare token, the session reused from the state file once more.
    let plain = client_command(
        &[
            "exchange",
            "--audience",
            "billing-api",
            "--client-secret",
            "sdk-secret",
        ],
        &state,
    );
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert_eq!(jwt_claims(&stdout(&plain))["aud"], "billing-api");

    // Without the secret the confidential client cannot refresh (the forced update skips the
    // token the cache file holds for orders-api).
    let no_secret = client_command(
        &["exchange", "--audience", "orders-api", "--force-update"],
        &state,
    );
    assert!(!no_secret.status.success());
    assert!(
        stderr(&no_secret).contains("invalid_client"),
        "{}",
        stderr(&no_secret)
    );

    let claims = client_command(&["claims", "--client-secret", "sdk-secret"], &state);
    assert!(claims.status.success(), "{}", stderr(&claims));
    let claims: Value = serde_json::from_slice(&claims.stdout).unwrap();
    assert_eq!(claims["preferred_username"], "alice");
    assert_eq!(claims["iss"], issuer.as_str());

    let logout = client_command(&["logout", "--client-secret", "sdk-secret"], &state);
    assert!(logout.status.success(), "{}", stderr(&logout));
    assert!(stdout(&logout).contains("logged out"));
    assert!(!state.exists());
    let after = client_command(&["claims", "--client-secret", "sdk-secret"], &state);
    assert!(!after.status.success());
    assert!(
        stderr(&after).contains("cambio login"),
        "{}",
        stderr(&after)
    );
}

#[test]
fn browser_login_through_the_loopback_redirect() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let server = ServeChild::start(&dir.path().join("data"));
    let issuer = format!("{}/realms/demo", server.base);
    let state = dir.path().join("session.json");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The demo realm registers `http://127.0.0.1/*` and the server compares ports; allow any
    // loopback port (RFC 8252 §7.3).

    let mut login = Command::new(env!("CARGO_BIN_EXE_cambio"))
        .args(["login", "--issuer", &issuer, "--client-id", "sdk-app"])
        .args(["--client-secret", "sdk-secret", "--state-file"])
        .arg(&state)
        .env("CAMBIO_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(login.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("login exited").unwrap();
        if line.starts_with("http") {
            break line;
        }
    };
    runtime.block_on(async {
        let mut form: Vec<(String, String)> = url::Url::parse(&url)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        form.push(("username".into(), "alice".into()));
        form.push(("password".into(), "alice".into()));
        // The browser fetches the form first: its POST carries the page's binding field, and
        // the binding cookie comes back with it.
        let page = http.get(&url).send().await.unwrap();
        let cookie = page.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let html = page.text().await.unwrap();
        let marker = "name=\"browser_binding\" value=\"";
        let start = html.find(marker).unwrap() + marker.len();
        let end = start + html[start..].find('"').unwrap();
        form.push(("browser_binding".into(), html[start..end].to_owned()));
        let response = http
            .post(&url)
            .header("cookie", cookie)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 302);
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        let landed = http.get(&location).send().await.unwrap();
        assert_eq!(landed.status(), 200);
    });
    let output = login.wait_with_output().unwrap();
    assert!(output.status.success());
    assert!(stdout(&output).contains("logged in"), "{}", stdout(&output));

    let claims = client_command(&["claims", "--client-secret", "sdk-secret"], &state);
    assert!(claims.status.success(), "{}", stderr(&claims));
    let claims: Value = serde_json::from_slice(&claims.stdout).unwrap();
    assert_eq!(claims["preferred_username"], "alice");
}

/// `cambio serve --config FILE`: the TOML file's settings apply, a second start on the same
/// data directory keeps the realm, and the first start printed a generated admin password.
#[test]
fn serve_from_a_config_file() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cambio.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata-dir = \"{}\"\nhttp-relative-path = \"/auth\"\ndemo = true\nverified-token-cache = 16\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let start = || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cambio"))
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("CAMBIO_ADMIN_PASSWORD")
            .env_remove("CAMBIO_DATABASE")
            .env("CAMBIO_LOG", "error")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let base = first
            .strip_prefix("listening on ")
            .expect(&first)
            .trim()
            .to_owned();
        let rest: Vec<String> = lines.by_ref().take(2).map(|l| l.unwrap()).collect();
        std::thread::spawn(move || lines.for_each(drop));
        (child, base, rest.join("\n"))
    };
    let (mut child, base, banner) = start();
    assert!(banner.contains("/auth/realms/"), "{banner}");
    assert!(banner.contains("generated password"), "{banner}");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let get = |url: String| {
        runtime.block_on(async move {
            let response = reqwest::get(url).await.unwrap();
            let status = response.status().as_u16();
            (
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            )
        })
    };
    let (_, discovery) = get(format!(
        "{base}/auth/realms/demo/.well-known/openid-configuration"
    ));
    assert_eq!(discovery["issuer"], format!("{base}/auth/realms/demo"));
    child.kill().unwrap();
    child.wait().unwrap();
    // Second start: no new password, the demo realm is still there.
    let (mut child, base, banner) = start();
    assert!(!banner.contains("generated password"), "{banner}");
    let (status, _) = get(format!(
        "{base}/auth/realms/demo/protocol/openid-connect/certs"
    ));
    assert_eq!(status, 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// An `http://` issuer on another host is refused before anything is sent (the `.invalid`
/// name never resolves, so any attempt would have failed differently), and no session file
/// appears.
#[test]
fn login_refuses_plain_http_to_another_host() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("session.json");
    let login = client_command(
        &[
            "login",
            "--issuer",
            "http://sso.example.invalid/realms/demo",
            "--client-id",
            "sdk-app",
            "--client-secret",
            "sdk-secret",
            "--username",
            "alice",
            "--password",
            "alice",
        ],
        &state,
    );
    assert!(!login.status.success());
    assert!(
        stderr(&login).contains(
            "configuration: issuer http://sso.example.invalid/realms/demo is not HTTPS: plain \
             HTTP is allowed only to 127.0.0.1, [::1] or localhost"
        ),
        "{}",
        stderr(&login)
    );
    assert!(!state.exists());
}

/// A password typed at the prompt is not echoed: the login runs on a pseudo-terminal (through
/// util-linux `script`, whose terminal echoes input unless the program turns echo off) and
/// the terminal's output must not contain the password.
#[test]
fn typed_password_is_not_echoed() {
    use std::io::{Read, Write};
    if Command::new("script").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "util-linux `script` is needed"
        );
        eprintln!("SKIPPED: util-linux `script` is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = ServeChild::start(&dir.path().join("data"));
    let issuer = format!("{}/realms/demo", server.base);
    let state = dir.path().join("session.json");
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let command = [
        env!("CARGO_BIN_EXE_cambio"),
        "login",
        "--issuer",
        &issuer,
        "--client-id",
        "sdk-app",
        "--client-secret",
        "sdk-secret",
        "--username",
        "alice",
        "--state-file",
        state.to_str().unwrap(),
    ]
    .map(quote)
    .join(" ");
    let mut child = Command::new("script")
        .args(["--quiet", "--return", "--echo", "always", "--command"])
        .arg(&command)
        .arg("/dev/null")
        .env("SHELL", "/bin/sh")
        .env("CAMBIO_LOG", "error")
        .env_remove("CAMBIO_PASSWORD")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut terminal = child.stdout.take().unwrap();
    let (sender, received) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 1024];
        while let Ok(n) = terminal.read(&mut buffer) {
            if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut screen = Vec::new();
    let bound = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !String::from_utf8_lossy(&screen).contains("Password:") {
        let left = bound.saturating_duration_since(std::time::Instant::now());
        let chunk = received
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no prompt: {}", String::from_utf8_lossy(&screen)));
        screen.extend(chunk);
    }
    // The prompt is written just before echo is turned off; give the program a moment to
    // get there, since input arriving earlier would be echoed by the terminal itself.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"alice\n").unwrap();
    input.flush().unwrap();
    while let Ok(chunk) =
        received.recv_timeout(bound.saturating_duration_since(std::time::Instant::now()))
    {
        screen.extend(chunk);
    }
    drop(input);
    let status = child.wait().unwrap();
    let screen = String::from_utf8_lossy(&screen).into_owned();
    assert!(status.success(), "{screen}");
    assert!(screen.contains("logged in"), "{screen}");
    assert!(
        !screen.contains("alice"),
        "the password was echoed: {screen}"
    );
}

/// Plain HTTP to loopback is allowed only because it never leaves the machine: a proxy from the
/// environment must not carry it (with the password and the client secret) anywhere. A
/// listener standing in for the proxy sees no connection, and the login succeeds directly.
#[test]
fn login_to_loopback_ignores_proxies_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServeChild::start(&dir.path().join("data"));
    let issuer = format!("{}/realms/demo", server.base);
    let state = dir.path().join("session.json");
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    let login = Command::new(env!("CARGO_BIN_EXE_cambio"))
        .args(["login", "--issuer", &issuer, "--client-id", "sdk-app"])
        .args(["--client-secret", "sdk-secret", "--username", "alice"])
        .args(["--password", "alice", "--state-file"])
        .arg(&state)
        .env("CAMBIO_LOG", "error")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env("HTTP_PROXY", &proxy_url)
        .env("http_proxy", &proxy_url)
        .env("ALL_PROXY", &proxy_url)
        .output()
        .unwrap();
    assert!(login.status.success(), "{}", stderr(&login));
    match proxy.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the proxy was contacted: {other:?}"),
    }
}

/// `cambio realm import --dir` reads what `kc.sh export --dir` writes (a Keycloak 10 export
/// kept in the server's test data), and prints what it could not keep.
#[test]
fn import_a_keycloak_export_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let export = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cambio-server/tests/it/data/keycloak-exports/kc10-export-dir");
    let imported = cambio(
        &["realm", "import", "--dir", export.to_str().unwrap()],
        &data,
    );
    assert!(imported.status.success(), "{}", stderr(&imported));
    let out = String::from_utf8_lossy(&imported.stdout);
    assert!(out.contains("imported realm 'oauth2-proxy'"), "{out}");
    assert!(
        out.contains("components.org.keycloak.keys.KeyProvider[1]: an HMAC secret"),
        "{out}"
    );
    assert!(out.contains("  authenticationFlows: "), "{out}");

    let exported = cambio(&["realm", "export", "--realm", "oauth2-proxy"], &data);
    assert!(exported.status.success(), "{}", stderr(&exported));
    let doc: Value = serde_json::from_slice(&exported.stdout).unwrap();
    assert_eq!(doc["defaultSignatureAlgorithm"], "RS256");
    let admin = doc["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "admin@example.com")
        .unwrap();
    let hash = admin["credentials"][0]["hashedSaltedValue"]
        .as_str()
        .unwrap();
    assert!(hash.starts_with("$pbkdf2-sha256$i=27500$"), "{admin}");

    // A file holding several realms (what `kc.sh export --file` writes) imports each.
    let many = dir.path().join("many.json");
    std::fs::write(&many, r#"[{"realm": "one"}, {"realm": "two"}]"#).unwrap();
    let both = cambio(
        &["realm", "import", "--file", many.to_str().unwrap()],
        &data,
    );
    assert!(both.status.success(), "{}", stderr(&both));
    let out = String::from_utf8_lossy(&both.stdout);
    assert!(
        out.contains("imported realm 'one'") && out.contains("imported realm 'two'"),
        "{out}"
    );

    // Several realms in one directory need --realm.
    let two = dir.path().join("two");
    std::fs::create_dir(&two).unwrap();
    std::fs::write(two.join("a-realm.json"), r#"{"realm": "a"}"#).unwrap();
    std::fs::write(two.join("b-realm.json"), r#"{"realm": "b"}"#).unwrap();
    let ambiguous = cambio(&["realm", "import", "--dir", two.to_str().unwrap()], &data);
    assert!(!ambiguous.status.success());
    assert!(stderr(&ambiguous).contains("several realms (a, b); name one with --realm"));
    let chosen = cambio(
        &[
            "realm",
            "import",
            "--dir",
            two.to_str().unwrap(),
            "--realm",
            "b",
        ],
        &data,
    );
    assert!(chosen.status.success(), "{}", stderr(&chosen));
}
