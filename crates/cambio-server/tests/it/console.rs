//! The admin console: served by the server itself under a strict Content-Security-Policy, and
//! driven end to end in a real headless Chromium by tests/console/console.mjs (playwright-core
//! with Debian's Chromium, both installed by scripts/install-test-deps.sh; without them the
//! browser test is skipped locally and fails in CI).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::{ADMIN_PASSWORD, TestServer};

/// How long the whole browser run may take.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(240);

fn repo_root() -> PathBuf {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.ancestors().nth(2).unwrap_or(crate_dir).to_owned()
}

#[tokio::test]
async fn the_console_is_served_with_a_strict_policy() {
    let s = TestServer::start().await;
    let root = s.get(&format!("{}/", s.base), None).await;
    assert_eq!(root.status, 303);
    assert_eq!(root.headers["location"], "/admin/console/");
    for path in [
        "/admin/console/",
        "/admin/demo/console/",
        "/auth/admin/console",
    ] {
        let page = s.get(&format!("{}{path}", s.base), None).await;
        assert_eq!(page.status, 200, "{path}");
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.starts_with("default-src 'self'; script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert_eq!(page.headers["referrer-policy"], "no-referrer");
        // No inline script: the only script is the module loaded from this origin.
        assert_eq!(page.text.matches("<script").count(), 1, "{}", page.text);
        assert!(
            page.text
                .contains("<script type=\"module\" src=\"/admin/console/assets/app.js\"></script>")
        );
    }
    let unknown = s
        .get(&format!("{}/admin/nowhere/console/", s.base), None)
        .await;
    assert_eq!(unknown.status, 404);
    let script = s
        .get(&format!("{}/admin/console/assets/app.js", s.base), None)
        .await;
    assert_eq!(
        script.headers["content-type"],
        "text/javascript; charset=utf-8"
    );
    for missing in ["../lib.rs", "index.html", "nothing.js"] {
        let reply = s
            .get(&format!("{}/admin/console/assets/{missing}", s.base), None)
            .await;
        assert_eq!(reply.status, 404, "{missing}");
    }
}

#[tokio::test]
async fn the_console_client_accepts_only_the_consoles_own_url() {
    let s = TestServer::start().await;
    let token = s.admin_token().await;
    let clients = s
        .get(
            &format!(
                "{}/admin/realms/master/clients?clientId=security-admin-console",
                s.base
            ),
            Some(&token),
        )
        .await;
    let client = &clients.body[0];
    assert_eq!(client["publicClient"], true);
    assert_eq!(client["directAccessGrantsEnabled"], false);
    assert_eq!(
        client["redirectUris"],
        serde_json::json!([
            format!("{}/admin/master/console/*", s.base),
            format!("{}/admin/console/*", s.base)
        ])
    );
    // The login page is offered for the console's URL and refused for any other.
    assert_eq!(
        authorize(&s, "master", format!("{}/admin/master/console/", s.base))
            .await
            .status,
        200
    );
    assert_eq!(
        authorize(
            &s,
            "master",
            "https://attacker.example/admin/master/console/".into()
        )
        .await
        .status,
        400
    );
}

#[tokio::test]
async fn a_realm_made_through_the_admin_api_has_its_own_console_client() {
    let s = TestServer::start().await;
    let token = s.admin_token().await;
    let created = s
        .http
        .post(format!("{}/admin/realms", s.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({"realm": "team"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // Keycloak's built-in console client, for that realm's console URL and no other.
    let own = format!("{}/admin/team/console/", s.base);
    assert_eq!(authorize(&s, "team", own).await.status, 200);
    let master = format!("{}/admin/master/console/", s.base);
    assert_eq!(authorize(&s, "team", master).await.status, 400);
}

#[tokio::test]
async fn the_demo_realm_has_its_own_console_client_at_every_start() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_in(dir.path()).await;
    let own = |s: &TestServer| format!("{}/admin/demo/console/", s.base);
    assert_eq!(authorize(&s, "demo", own(&s)).await.status, 200);
    // Its console only: not master's, nor the master console's short URL.
    let master = format!("{}/admin/master/console/", s.base);
    assert_eq!(authorize(&s, "demo", master).await.status, 400);
    let short = format!("{}/admin/console/", s.base);
    assert_eq!(authorize(&s, "demo", short).await.status, 400);
    s.stop().await;
    // Another start listens on another port: the client follows the server's URL.
    let s = TestServer::start_in(dir.path()).await;
    assert_eq!(authorize(&s, "demo", own(&s)).await.status, 200);
    // A console client an administrator deleted stays deleted at the next start.
    let token = s.admin_token().await;
    let admin = crate::authority::Admin::new(&s, "demo", &token);
    let id = admin.client_uuid("security-admin-console").await;
    admin
        .expect(
            204,
            reqwest::Method::DELETE,
            &format!("/clients/{id}"),
            None,
        )
        .await;
    s.stop().await;
    let s = TestServer::start_in(dir.path()).await;
    assert_eq!(authorize(&s, "demo", own(&s)).await.status, 400);
    s.stop().await;
}

/// The console's authorization request in `realm` with `redirect` as its redirect URI.
async fn authorize(s: &TestServer, realm: &str, redirect: String) -> crate::Reply {
    let url = reqwest::Url::parse_with_params(
        &s.oidc(realm, "auth"),
        &[
            ("client_id", "security-admin-console"),
            ("response_type", "code"),
            ("redirect_uri", redirect.as_str()),
            ("code_challenge", crate::PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    s.get(url.as_str(), None).await
}

#[tokio::test]
async fn whoami_reports_the_rights_the_api_grants() {
    let s = TestServer::start().await;
    let token = s.admin_token().await;
    let me = s
        .get(
            &format!("{}/admin/master/console/whoami?currentRealm=demo", s.base),
            Some(&token),
        )
        .await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["userName"], "admin");
    assert_eq!(me.body["createRealm"], true);
    assert_eq!(me.body["access"]["manageClients"], true);
    // alice holds no realm-management role: she is known, and may do nothing.
    let alice = s.alice(None).await.access_token();
    let her = s
        .get(
            &format!("{}/admin/demo/console/whoami", s.base),
            Some(&alice),
        )
        .await;
    assert_eq!(her.status, 200, "{}", her.text);
    assert_eq!(her.body["realm_access"]["demo"], serde_json::json!([]));
    let all_false = her.body["access"]
        .as_object()
        .unwrap()
        .values()
        .all(|v| v == &Value::Bool(false));
    assert!(all_false, "{}", her.text);
    let anonymous = s
        .get(&format!("{}/admin/demo/console/whoami", s.base), None)
        .await;
    assert_eq!(anonymous.status, 401);
}

/// Debian's Chromium and playwright-core: present, or skipped locally (a panic in CI).
fn browser_present(root: &Path) -> Option<(PathBuf, PathBuf)> {
    let chromium =
        PathBuf::from(std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()));
    let driver = root.join("tests/console/node_modules/playwright-core");
    for (path, what) in [(&chromium, "Chromium"), (&driver, "playwright-core")] {
        if !path.exists() {
            let notice = format!(
                "{} is missing: run scripts/install-test-deps.sh to install {what}",
                path.display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{notice}");
            }
            eprintln!("SKIPPED console browser test: {notice}");
            return None;
        }
    }
    Some((
        chromium,
        PathBuf::from(std::env::var_os("NODE").unwrap_or_else(|| "node".into())),
    ))
}

/// One browser run over the whole console (the browser starts once): see
/// tests/console/console.mjs for the steps. `CAMBIO_CONSOLE_SCREENSHOTS=docs/console` makes it
/// write the screenshots the README shows.
#[tokio::test]
async fn the_console_in_a_real_browser() {
    let root = repo_root();
    let Some((chromium, node)) = browser_present(&root) else {
        return;
    };
    let s = TestServer::start().await;
    let mut command = tokio::process::Command::new(node);
    command
        .arg(root.join("tests/console/console.mjs"))
        .arg(&s.base)
        .env("CAMBIO_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("CHROMIUM", chromium)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().expect("node starts");
    let output = tokio::time::timeout(BROWSER_TIMEOUT, child.wait_with_output())
        .await
        .expect("the browser run finishes in time")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the console's browser run failed; output above"
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
    s.stop().await;
}
