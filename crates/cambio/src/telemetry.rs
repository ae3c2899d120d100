//! Logs on standard error and, when an OTLP endpoint is configured, OpenTelemetry traces.
//!
//! Logs: `CAMBIO_LOG` (an `EnvFilter`, `info` by default) and `CAMBIO_LOG_FORMAT=json`.
//!
//! Traces are exported over OTLP/HTTP (protobuf) only when `OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; the standard `OTEL_*` variables apply (headers,
//! timeout, `OTEL_BSP_*` batching, `OTEL_TRACES_SAMPLER`, `OTEL_SERVICE_NAME`, which defaults
//! to `cambio`). Incoming W3C `traceparent`/`tracestate` headers are continued (the token
//! handler extracts them with the global propagator installed here). Only spans of Cambio's own
//! crates are exported, so the exporter's HTTP client never traces itself.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// How long shutdown waits for the last spans to be exported.
const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The installed trace pipeline, if any; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

/// Whether an OTLP endpoint for traces is configured (and `OTEL_SDK_DISABLED` is not `true`).
pub fn traces_configured() -> bool {
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return false;
    }
    [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Installs the global subscriber: logs always, traces when `traces` is true. Must run inside
/// the tokio runtime when `traces` is true: the batch span processor is a task on it.
pub fn init(traces: bool) -> Telemetry {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CAMBIO_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // Structured logs for log collectors: `CAMBIO_LOG_FORMAT=json`. Cambio never logs tokens,
    // secrets or passwords, in either format.
    let logs = if std::env::var("CAMBIO_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        logs.json().boxed()
    } else {
        logs.boxed()
    };
    let (provider, trace_error) = if traces {
        match tracer_provider() {
            Ok(provider) => (Some(provider), None),
            Err(error) => (None, Some(error)),
        }
    } else {
        (None, None)
    };
    let otel = provider.as_ref().map(|provider| {
        // Cambio's spans only (`cambio`, `cambio_server`, ...), whatever `CAMBIO_LOG` says.
        let targets =
            tracing_subscriber::filter::Targets::new().with_target("cambio", tracing::Level::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("cambio"))
            .with_filter(targets)
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(otel)
        .init();
    if provider.is_some() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    }
    if let Some(error) = trace_error {
        tracing::warn!(%error, "OpenTelemetry traces disabled: the OTLP exporter could not start");
    }
    Telemetry { provider }
}

fn tracer_provider() -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .map_err(|e| e.to_string())?;
    let processor =
        BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
    // `OTEL_SERVICE_NAME` (or `service.name` in `OTEL_RESOURCE_ATTRIBUTES`) wins; the SDK's
    // fallback would be `unknown_service:cambio`.
    let named = Resource::builder()
        .build()
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    let mut resource = Resource::builder();
    if !named {
        resource = resource.with_service_name("cambio");
    }
    Ok(SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource.build())
        .build())
}

impl Telemetry {
    /// Exports the spans still queued and stops the exporter, waiting a few seconds at most.
    /// Call it from outside the runtime, while the runtime is still alive.
    pub fn shutdown(self) {
        let Some(provider) = self.provider else {
            return;
        };
        let (done, wait) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("otel-shutdown".into())
            .spawn(move || {
                let _ = done.send(provider.shutdown());
            });
        if spawned.is_err() {
            return;
        }
        match wait.recv_timeout(SHUTDOWN_TIMEOUT) {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "OpenTelemetry shutdown failed"),
            Err(_) => tracing::warn!("OpenTelemetry shutdown timed out; some spans were lost"),
        }
    }
}
