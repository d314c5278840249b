//! OpenTelemetry traces over OTLP/HTTP (`[telemetry] otlp_endpoint`): every tracing span Herald
//! makes (a request, the upstream calls within it) is exported, and a W3C `traceparent` on an
//! incoming request makes the request's span a child of the caller's trace.

use std::time::Duration;

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The exporter and the layer that feeds it; keep the provider to flush it at exit.
pub struct Traces {
    pub provider: SdkTracerProvider,
}

impl Traces {
    /// Spans batched to `endpoint` (its `/v1/traces`, as JSON) under `service`.
    pub fn start(endpoint: &str, service: &str) -> anyhow::Result<Self> {
        let url = if endpoint.ends_with("/v1/traces") {
            endpoint.to_string()
        } else {
            format!("{}/v1/traces", endpoint.trim_end_matches('/'))
        };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(url)
            .with_timeout(Duration::from_secs(10))
            .build()?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder()
                    .with_service_name(service.to_string())
                    .build(),
            )
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        Ok(Self { provider })
    }

    /// The `tracing` layer that turns spans into OpenTelemetry spans.
    pub fn layer<S>(
        &self,
    ) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        tracing_opentelemetry::layer().with_tracer(self.provider.tracer("herald"))
    }

    /// Exports what is still batched; called once, at exit.
    pub fn flush(&self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("herald: exporting the last traces failed: {e}");
        }
    }
}

/// The trace context a request carries (`traceparent`, `tracestate`), for its span's parent;
/// empty when traces are off or the request has none.
pub fn remote_context(headers: &http::HeaderMap) -> opentelemetry::Context {
    struct Headers<'a>(&'a http::HeaderMap);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(headers)))
}
