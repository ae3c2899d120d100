//! The cost of a cached exchange: p50/p99 latency of `Client::exchange` answered from the
//! cache, and cached lookups per second on one thread.
//!
//! A real server is started in-process once to log in and fill the cache; after that no
//! request reaches it (the benchmark checks the server's exchange counter).
//!
//! ```text
//! cargo run --release -p cambio-client --example cache_bench
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use cambio_client::{Client, ExchangeRequest};

const SAMPLES: usize = 1_000_000;
const ROUNDS: usize = 5;

fn main() {
    // One core: a current-thread runtime runs the benchmark loop and the server alike.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = cambio_server::Config {
        admin_password: Some("admin-password".into()),
        demo: true,
        ..Default::default()
    };
    let server = cambio_server::Server::bind(config, listener).await.unwrap();
    let base = server.base_url().to_owned();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));

    let client = Client::builder(format!("{base}/realms/demo"), "sdk-app")
        .client_secret("sdk-secret")
        .build()
        .await
        .unwrap();
    client.login_password("alice", "alice").await.unwrap();
    let filled = client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap();
    let exchanges_before = exchange_count(&base).await;

    // Warm-up.
    for _ in 0..100_000 {
        std::hint::black_box(cached(&client).await);
    }

    // Latency: every call timed on its own.
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let start = Instant::now();
        let token = cached(&client).await;
        samples.push(start.elapsed());
        std::hint::black_box(token);
    }
    samples.sort_unstable();
    let p50 = samples[SAMPLES / 2];
    let p99 = samples[SAMPLES * 99 / 100];
    let p999 = samples[SAMPLES * 999 / 1000];

    // Throughput: back-to-back calls, best of several rounds.
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        for _ in 0..SAMPLES {
            std::hint::black_box(cached(&client).await);
        }
        best = best.min(start.elapsed());
    }
    let per_second = SAMPLES as f64 / best.as_secs_f64();

    let exchanges_after = exchange_count(&base).await;
    assert_eq!(
        exchanges_before, exchanges_after,
        "a cached lookup reached the server"
    );
    assert_eq!(cached(&client).await.token(), filled.token());

    println!("cached exchange latency over {SAMPLES} calls (one thread):");
    println!("  p50   {:>8.0} ns", p50.as_nanos());
    println!("  p99   {:>8.0} ns", p99.as_nanos());
    println!("  p99.9 {:>8.0} ns", p999.as_nanos());
    println!(
        "cached lookups per second (one thread, best of {ROUNDS} x {SAMPLES}): {per_second:.0}"
    );
    println!("server exchanges during the benchmark: 0 (counter stayed at {exchanges_after})");

    let _ = stop.send(());
    serving.await.unwrap().unwrap();
}

/// One cached exchange, as an app makes it: a new request value every time.
async fn cached(client: &Client) -> cambio_client::ExchangedToken {
    client
        .exchange(ExchangeRequest::new("orders-api"))
        .await
        .unwrap()
}

async fn exchange_count(base: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix =
        "cambio_token_requests_total{realm=\"demo\",grant=\"TOKEN_EXCHANGE\",outcome=\"success\"} ";
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}
