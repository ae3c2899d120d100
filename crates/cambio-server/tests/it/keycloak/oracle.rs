//! Keycloak as a process beside the test: started on a free loopback port in development mode
//! with an in-memory database, stopped when the test ends or when this process dies.

use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Keycloak may take to answer its discovery document (a cold start on two busy
/// cores takes about a minute).
const START_DEADLINE: Duration = Duration::from_secs(240);

pub struct Keycloak {
    pub base: String,
    child: Child,
    /// Held open while Keycloak should run: the wrapper stops Keycloak when it closes, which
    /// happens in `drop`, or by itself when this process dies however it dies.
    lifeline: Option<ChildStdin>,
    pub started_in: Duration,
    log: PathBuf,
}

/// Where `scripts/install-keycloak.sh` unpacked Keycloak, if it did.
pub fn installed_home() -> Option<PathBuf> {
    let home = match std::env::var_os("CAMBIO_KEYCLOAK_HOME") {
        Some(home) => PathBuf::from(home),
        None => {
            let cache = std::env::var_os("CAMBIO_KEYCLOAK_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                        .join(".cache/cambio")
                });
            let version =
                std::env::var("CAMBIO_KEYCLOAK_VERSION").unwrap_or_else(|_| "26.7.3".into());
            cache.join(format!("keycloak-{version}"))
        }
    };
    home.join("bin/kc.sh").exists().then_some(home)
}

impl Keycloak {
    /// Starts Keycloak with the bootstrap administrator `admin`/`admin` and the given extra
    /// `--features`, and waits until it answers.
    pub async fn start(home: PathBuf, features: &str) -> Keycloak {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("cambio-keycloak-{port}.log"));
        let mut args = vec![
            "start-dev".to_owned(),
            "--http-host=127.0.0.1".to_owned(),
            format!("--http-port={port}"),
            "--db=dev-mem".to_owned(),
            "--health-enabled=false".to_owned(),
        ];
        if !features.is_empty() {
            args.push(format!("--features={features}"));
        }
        // The shell runs Keycloak in the background and waits for its standard input to close;
        // this process holds the other end, so Keycloak ends with it however it ends.
        let script = r#"kc="$1"; log="$2"; shift 2; "$kc" "$@" >"$log" 2>&1 & pid=$!; cat >/dev/null; kill "$pid" 2>/dev/null; wait "$pid""#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(home.join("bin/kc.sh"))
            .arg(&log)
            .args(&args)
            .env("KC_BOOTSTRAP_ADMIN_USERNAME", "admin")
            .env("KC_BOOTSTRAP_ADMIN_PASSWORD", "admin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start Keycloak");
        let lifeline = child.stdin.take().expect("stdin of the Keycloak wrapper");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let http = reqwest::Client::new();
        let discovery = format!("{base}/realms/master/.well-known/openid-configuration");
        loop {
            if let Ok(response) = http.get(&discovery).send().await
                && response.status() == 200
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("Keycloak exited with {status}: see {}", log.display());
            }
            if started.elapsed() > START_DEADLINE {
                panic!("Keycloak did not start in time: see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Keycloak {
            base,
            child,
            lifeline: Some(lifeline),
            started_in: started.elapsed(),
            log,
        }
    }

    /// Resident memory of the Keycloak JVM, in KiB (Linux only; 0 when unknown).
    #[allow(dead_code)]
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }
}

impl Drop for Keycloak {
    fn drop(&mut self) {
        // Closing the lifeline makes the wrapper stop Keycloak (it forwards the signal to the
        // JVM and waits for it); killing the wrapper instead would orphan the JVM.
        drop(self.lifeline.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port nothing listens on now (Keycloak cannot be told to pick one itself).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}
