//! Configuration changes while the load runs (`--admin-changes N`): clients created one after
//! the other through the admin API of the first server, each as soon as the previous one is
//! answered, on one keep-alive connection. The load generator makes them itself, at a few
//! tens of microseconds each, so that the exchange figures of the window show what the
//! changes cost the server rather than what a scripting language's HTTP client costs the
//! machine.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::{Method, Request, StatusCode};

use super::{call, connect, form, json_field, percentile_ms, send};

/// What the changes did during the window.
pub struct ChangeFigures {
    pub made: usize,
    /// From the first change sent to the last one answered.
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl ChangeFigures {
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.made as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// A `master` administrator's bearer header (`admin-cli`, password grant).
pub async fn admin_bearer(
    addr: SocketAddr,
    host: &HeaderValue,
    password: &str,
) -> Result<HeaderValue, String> {
    let (status, body) = call(
        addr,
        host,
        Method::POST,
        "/realms/master/protocol/openid-connect/token",
        None,
        Some("application/x-www-form-urlencoded"),
        form(&[
            ("grant_type", "password"),
            ("client_id", "admin-cli"),
            ("username", "admin"),
            ("password", password),
        ]),
    )
    .await?;
    let token = json_field(status, &body, "admin token", |v| {
        v.get("access_token")?.as_str().map(str::to_owned)
    })?;
    HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| format!("admin token: {e}"))
}

/// Creates `count` confidential clients in `realm`, one after the other, starting at `start`
/// and stopping early at `end`; every answer must be 201.
pub async fn create_clients(
    addr: SocketAddr,
    host: HeaderValue,
    realm: String,
    bearer: HeaderValue,
    count: usize,
    start: Instant,
    end: Instant,
) -> Result<ChangeFigures, String> {
    let mut sender = connect(addr).await?;
    let path = format!("/admin/realms/{realm}/clients");
    // Names unique to this run, so that runs against one server never collide.
    let run = std::process::id();
    tokio::time::sleep_until(start.into()).await;
    let began = Instant::now();
    let mut latencies_us = Vec::with_capacity(count);
    for i in 0..count {
        if Instant::now() >= end {
            break;
        }
        let body = format!(r#"{{"clientId":"bench-change-{run}-{i}","secret":"s"}}"#);
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = path.parse().map_err(|e| format!("{path}: {e}"))?;
        let headers = request.headers_mut();
        headers.insert(HOST, host.clone());
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(AUTHORIZATION, bearer.clone());
        let sent = Instant::now();
        let (status, answer) = send(&mut sender, request).await?;
        latencies_us.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
        if status != StatusCode::CREATED {
            return Err(format!(
                "admin change {i} failed: {status}: {}",
                String::from_utf8_lossy(&answer)
            ));
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    latencies_us.sort_unstable();
    Ok(ChangeFigures {
        made: latencies_us.len(),
        seconds,
        p50_ms: percentile_ms(&latencies_us, 0.50),
        p99_ms: percentile_ms(&latencies_us, 0.99),
        max_ms: percentile_ms(&latencies_us, 1.0),
    })
}
