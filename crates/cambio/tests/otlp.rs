//! OpenTelemetry: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, `cambio serve` exports the token
//! request's span over OTLP/HTTP, continuing the caller's `traceparent`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE_ID: [u8; 16] = [
    0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36,
];
const PARENT_SPAN_ID: [u8; 8] = [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7];

/// A minimal OTLP/HTTP receiver: answers every request with an empty 200 and reports
/// `(method, path, body)`.
fn receiver() -> (String, mpsc::Receiver<(String, String, Vec<u8>)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { break };
            let tx = tx.clone();
            std::thread::spawn(move || serve_connection(stream, tx));
        }
    });
    (endpoint, rx)
}

fn serve_connection(stream: TcpStream, tx: mpsc::Sender<(String, String, Vec<u8>)>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.parse().unwrap();
                } else if name.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = value.eq_ignore_ascii_case("chunked");
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                let mut size = String::new();
                reader.read_line(&mut size).unwrap();
                let size =
                    usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap();
                let mut chunk = vec![0; size + 2];
                reader.read_exact(&mut chunk).unwrap();
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length, 0);
            reader.read_exact(&mut body).unwrap();
        }
        let _ = tx.send((method, path, body));
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\n\
                      content-length: 0\r\n\r\n";
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// `cambio serve --demo` on a free port, exporting to `endpoint`; killed when dropped.
struct ServeChild {
    child: std::process::Child,
    base: String,
}

impl ServeChild {
    fn start(data_dir: &Path, endpoint: &str, schedule_delay_ms: u64) -> ServeChild {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cambio"))
            .args(["serve", "--listen", "127.0.0.1:0", "--demo", "--data-dir"])
            .arg(data_dir)
            .env("CAMBIO_ADMIN_PASSWORD", "admin-password")
            .env("CAMBIO_LOG", "error")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            .env("OTEL_BSP_SCHEDULE_DELAY", schedule_delay_ms.to_string())
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_PROTOCOL")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .env_remove("OTEL_TRACES_SAMPLER")
            .env_remove("OTEL_SDK_DISABLED")
            .env_remove("CAMBIO_DATABASE")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
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

/// A client_credentials request carrying `traceparent`.
fn token_request(base: &str) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let status = runtime.block_on(async {
        reqwest::Client::new()
            .post(format!("{base}/realms/demo/protocol/openid-connect/token"))
            .basic_auth("requester-client", Some("requester-secret"))
            .header("traceparent", TRACEPARENT)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(status, 200);
}

/// Waits up to `limit` for an OTLP trace export carrying the caller's trace id; returns the
/// request body.
fn exported_trace(
    received: &mpsc::Receiver<(String, String, Vec<u8>)>,
    limit: Duration,
) -> Option<Vec<u8>> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let (method, path, body) = received.recv_timeout(left).ok()?;
        if method == "POST"
            && path == "/v1/traces"
            && body.windows(TRACE_ID.len()).any(|w| w == TRACE_ID)
        {
            return Some(body);
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn token_request_span_continues_the_callers_trace() {
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, received) = receiver();
    let server = ServeChild::start(&dir.path().join("data"), &endpoint, 100);
    token_request(&server.base);
    let body = exported_trace(&received, Duration::from_secs(10))
        .expect("no OTLP export with the caller's trace id");
    assert!(contains(&body, b"token_request"));
    // The caller's span is the parent; the service is named `cambio`.
    assert!(contains(&body, &PARENT_SPAN_ID));
    assert!(contains(&body, b"cambio"));
    // Span attributes never carry the client's secret.
    assert!(!contains(&body, b"requester-secret"));
}

/// Spans still queued are exported when the server stops on SIGTERM.
#[cfg(unix)]
#[test]
fn queued_spans_are_flushed_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (endpoint, received) = receiver();
    let mut server = ServeChild::start(&dir.path().join("data"), &endpoint, 600_000);
    token_request(&server.base);
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let body = exported_trace(&received, Duration::from_secs(10))
        .expect("queued spans were not exported on shutdown");
    assert!(contains(&body, b"token_request"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}

/// Structured logs at the most verbose level, through a login, an exchange and a failed
/// login: valid JSON lines, and no password, client secret or token in them.
#[test]
fn json_logs_carry_no_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_cambio"))
        .args(["serve", "--listen", "127.0.0.1:0", "--demo", "--data-dir"])
        .arg(dir.path())
        .env("CAMBIO_ADMIN_PASSWORD", "admin-password")
        .env("CAMBIO_LOG", "trace")
        .env("CAMBIO_LOG_FORMAT", "json")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .env_remove("CAMBIO_DATABASE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("the server exited").unwrap();
        if let Some(address) = line.strip_prefix("listening on ") {
            break address.trim().to_owned();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let mut stderr = child.stderr.take().unwrap();
    let logs = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stderr.read_to_string(&mut out);
        out
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (access, refresh, exchanged) = runtime.block_on(async {
        let http = reqwest::Client::new();
        let token = format!("{base}/realms/demo/protocol/openid-connect/token");
        let login: serde_json::Value = http
            .post(&token)
            .form(&[
                ("grant_type", "password"),
                ("client_id", "subject-client"),
                ("client_secret", "subject-secret"),
                ("username", "alice"),
                ("password", "alice"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let access = login["access_token"].as_str().unwrap().to_owned();
        let refresh = login["refresh_token"].as_str().unwrap().to_owned();
        let exchanged: serde_json::Value = http
            .post(&token)
            .basic_auth("requester-client", Some("requester-secret"))
            .form(&[
                (
                    "grant_type",
                    "urn:ietf:params:oauth:grant-type:token-exchange",
                ),
                ("subject_token", access.as_str()),
                ("audience", "orders-api"),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let wrong = http
            .post(&token)
            .form(&[
                ("grant_type", "password"),
                ("client_id", "subject-client"),
                ("client_secret", "subject-secret"),
                ("username", "alice"),
                ("password", "Wr0ng-Passw0rd"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 400);
        (
            access,
            refresh,
            exchanged["access_token"].as_str().unwrap().to_owned(),
        )
    });
    // Give the audit writer a moment, then stop the server and read everything it logged.
    std::thread::sleep(Duration::from_millis(300));
    let _ = child.kill();
    let _ = child.wait();
    let logs = logs.join().unwrap();
    assert!(
        !logs.trim().is_empty(),
        "trace-level logging produced nothing"
    );
    for line in logs.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
    for secret in [
        "subject-secret",
        "requester-secret",
        "Wr0ng-Passw0rd",
        "admin-password",
        access.as_str(),
        refresh.as_str(),
        exchanged.as_str(),
    ] {
        assert!(!logs.contains(secret), "a secret appears in the logs");
    }
}
