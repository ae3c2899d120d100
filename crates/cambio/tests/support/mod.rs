//! What the CLI tests share: `cambio serve --demo` as a child process, and running the
//! client commands against it.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `cambio serve --demo` on a free port; killed when dropped.
pub struct ServeChild {
    child: std::process::Child,
    pub base: String,
}

impl ServeChild {
    pub fn start(data_dir: &Path) -> ServeChild {
        use std::io::BufRead;
        let mut child = Command::new(env!("CARGO_BIN_EXE_cambio"))
            .args(["serve", "--listen", "127.0.0.1:0", "--demo", "--data-dir"])
            .arg(data_dir)
            .env("CAMBIO_ADMIN_PASSWORD", "admin-password")
            .env("CAMBIO_LOG", "error")
            .env_remove("CAMBIO_DATABASE")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(stdout).lines();
        let base = loop {
            let line = lines.next().expect("the server exited").unwrap();
            if let Some(address) = line.strip_prefix("listening on ") {
                break address.trim().to_owned();
            }
        };
        // Keep reading so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        ServeChild { child, base }
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client_command(args: &[&str], state_file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cambio"))
        .args(args)
        .arg("--state-file")
        .arg(state_file)
        .env("CAMBIO_LOG", "error")
        .env_remove("CAMBIO_CLIENT_SECRET")
        .env_remove("CAMBIO_STATE_FILE")
        .output()
        .unwrap()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The payload of a JWT, unverified.
pub fn jwt_claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.trim().split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// `cambio_token_requests_total` of the demo realm for one grant (event type), successes only.
pub fn count(base: &str, grant: &str) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = runtime.block_on(async {
        reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let prefix = format!(
        "cambio_token_requests_total{{realm=\"demo\",grant=\"{grant}\",outcome=\"success\"}} "
    );
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

/// `cambio login` as alice through `sdk-app`, the session kept in `state`.
pub fn login_alice(server: &ServeChild, state: &Path) {
    login_alice_with(server, state, &[]);
}

/// `login_alice` with extra `cambio login` arguments (such as `--dpop`).
pub fn login_alice_with(server: &ServeChild, state: &Path, extra: &[&str]) {
    let issuer = format!("{}/realms/demo", server.base);
    let mut args = vec![
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
    ];
    args.extend_from_slice(extra);
    let login = client_command(&args, state);
    assert!(login.status.success(), "{}", stderr(&login));
}
