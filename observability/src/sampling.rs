//! Whether a call is traced, decided once per call before any span is built.
//!
//! tracing-opentelemetry gives every span it sees an OpenTelemetry span
//! builder with all its attributes, and asks the sampler only when that span
//! starts, so an unsampled call would pay for attributes nobody exports. The
//! server layer therefore asks the sampler itself, first. A sampled call gets
//! the full SERVER span. An unsampled one gets a span only logs see (target
//! [`UNSAMPLED_TARGET`], one `trace_id` field) holding its [`Unsampled`]
//! context: no OpenTelemetry span is made for it or for anything opened
//! inside it ([`sampled_only`]), yet the call still has a trace id to return
//! and log, and the next hop still gets a `traceparent` (flagged unsampled).
//! Without an exporter nothing could leave the process, so every call is
//! unsampled.

use std::{cell::Cell, sync::OnceLock};

use opentelemetry::trace::{SpanId, SpanKind, TraceId};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample,
};
use tracing::{Metadata, Span, subscriber::Interest};
use tracing_subscriber::{Layer, Registry, filter, layer, registry::LookupSpan};

/// The target of an unsampled call's span.
pub const UNSAMPLED_TARGET: &str = "prism::untraced";

/// The sampler and whether anything is exported.
#[derive(Debug, Clone)]
pub struct Sampling {
    sampler: crate::Sampler,
    exporting: bool,
}

static GLOBAL: OnceLock<Sampling> = OnceLock::new();

/// A caller's trace context as its `traceparent` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub sampled: bool,
}

/// Reads a W3C `traceparent` (`00-<trace id>-<span id>-<flags>`), as the
/// OpenTelemetry propagator does, without building a context: `None` when
/// it is malformed (the call then starts a trace).
pub fn parse_traceparent(value: &str) -> Option<Remote> {
    let mut parts = value.split('-');
    let version = parts.next()?;
    let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !hex(version, 2) || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !hex(trace, 32) || !hex(span, 16) || !hex(flags, 2) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace).ok()?;
    let span_id = SpanId::from_hex(span).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    (trace_id != TraceId::INVALID && span_id != SpanId::INVALID).then_some(Remote {
        trace_id,
        span_id,
        sampled: flags & 1 == 1,
    })
}

impl Sampling {
    pub fn new(sampler: crate::Sampler, exporting: bool) -> Self {
        Self { sampler, exporting }
    }

    /// The process's sampling, once [`crate::init`] has set it up.
    pub fn global() -> Option<&'static Sampling> {
        GLOBAL.get()
    }

    /// Makes this the process's sampling; the first call wins. [`crate::init`]
    /// calls it; a process that sets up tracing by other means may too.
    pub fn install(self) {
        let _ = GLOBAL.set(self);
    }

    /// Whether a span continuing `parent` (a new trace with `trace_id`
    /// when there is none) is sampled: what the SDK's sampler of the same
    /// setting decides, without a context to build.
    fn sampled(&self, parent: Option<Remote>, trace_id: TraceId) -> bool {
        use crate::Sampler as S;
        let ratio = |r: f64| {
            Sampler::TraceIdRatioBased(r)
                .should_sample(None, trace_id, "", &SpanKind::Server, &[], &[])
                .decision
                == SamplingDecision::RecordAndSample
        };
        self.exporting
            && match (self.sampler, parent) {
                (S::AlwaysOn, _) => true,
                (S::AlwaysOff, _) => false,
                (S::TraceIdRatio(r), _) => ratio(r),
                (
                    S::ParentBasedAlwaysOn
                    | S::ParentBasedAlwaysOff
                    | S::ParentBasedTraceIdRatio(_),
                    Some(parent),
                ) => parent.sampled,
                (S::ParentBasedAlwaysOn, None) => true,
                (S::ParentBasedAlwaysOff, None) => false,
                (S::ParentBasedTraceIdRatio(r), None) => ratio(r),
            }
    }

    /// Decides for a call whose caller sent `traceparent` (if any).
    pub fn decide(&self, traceparent: Option<&str>) -> Decision {
        let parent = traceparent.and_then(parse_traceparent);
        let trace_id = parent.map_or_else(
            || RandomIdGenerator::default().new_trace_id(),
            |p| p.trace_id,
        );
        if self.sampled(parent, trace_id) {
            Decision::Sampled {
                root_trace_id: parent.is_none().then_some(trace_id),
            }
        } else {
            Decision::Unsampled(Unsampled {
                trace_id,
                span_id: RandomIdGenerator::default().new_span_id(),
            })
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Traced; a new trace must use `root_trace_id`, the id the sampler said yes to.
    Sampled {
        root_trace_id: Option<TraceId>,
    },
    Unsampled(Unsampled),
}

/// An unsampled call's trace context: what it returns, logs and passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsampled {
    pub trace_id: TraceId,
    /// Stands in for this hop's span in the `traceparent` sent on.
    pub span_id: SpanId,
}

impl Unsampled {
    /// W3C `traceparent` with the sampled flag clear.
    pub fn traceparent(&self) -> String {
        use std::fmt::Write;
        // Sized exactly: one allocation.
        let mut traceparent = String::with_capacity(55);
        let _ = write!(traceparent, "00-{}-{}-00", self.trace_id, self.span_id);
        traceparent
    }
}

/// Opens the span of an unsampled call: logs name its trace id, and
/// everything opened inside it knows the call is not traced.
pub fn unsampled_span(context: Unsampled) -> Span {
    let span =
        tracing::info_span!(target: UNSAMPLED_TARGET, "grpc.server", trace_id = %context.trace_id);
    span.with_subscriber(|(id, dispatch)| {
        if let Some(span) = dispatch
            .downcast_ref::<Registry>()
            .and_then(|registry| registry.span(id))
        {
            span.extensions_mut().insert(context);
        }
    });
    span
}

/// The unsampled context `span` (or, when `span` is disabled, the current
/// span) belongs to; `None` when it is traced or tracing is off.
pub fn unsampled_of(span: &Span) -> Option<Unsampled> {
    let lookup = |span: &Span| {
        span.with_subscriber(|(id, dispatch)| {
            let registry = dispatch.downcast_ref::<Registry>()?;
            registry
                .span(id)?
                .scope()
                .find_map(|s| s.extensions().get::<Unsampled>().copied())
        })
        .flatten()
    };
    if span.is_disabled() {
        lookup(&Span::current())
    } else {
        lookup(span)
    }
}

/// Whether work done now belongs to a call that is not traced: spans that
/// would only describe it need not be built.
pub fn current_is_unsampled() -> bool {
    unsampled_of(&Span::current()).is_some()
}

thread_local! {
    static NEXT_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// Makes the next trace id generated on this thread `id`, so the span
/// started while `f` runs has the id the sampler decided on.
pub fn with_trace_id<T>(id: Option<TraceId>, f: impl FnOnce() -> T) -> T {
    NEXT_TRACE_ID.with(|next| next.set(id));
    let result = f();
    NEXT_TRACE_ID.with(|next| next.set(None));
    result
}

/// Random ids, except for a trace id set by [`with_trace_id`].
#[derive(Debug, Default)]
pub struct Ids(RandomIdGenerator);

impl IdGenerator for Ids {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE_ID
            .with(Cell::take)
            .unwrap_or_else(|| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.0.new_span_id()
    }
}

/// Spans and events OpenTelemetry may see: Prism's own, at INFO or above.
/// The exporter's own gRPC client (tonic, h2, hyper) must never be traced,
/// or exporting would produce spans to export.
fn prism_callsite(metadata: &Metadata<'_>) -> bool {
    metadata.target().starts_with("prism")
        && metadata.target() != UNSAMPLED_TARGET
        && *metadata.level() <= tracing::Level::INFO
}

thread_local! {
    /// How many unsampled calls' spans this thread is inside.
    static UNSAMPLED_DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// Counts entries into unsampled calls' spans, so the OpenTelemetry layer's
/// filter knows, without a lookup, that what is opened now is not traced
/// (a filter cannot see spans it filtered out, nor ask for the current span).
struct UnsampledScope;

impl<S: tracing::Subscriber> Layer<S> for UnsampledScope {
    fn on_enter(&self, _: &tracing::span::Id, _: layer::Context<'_, S>) {
        UNSAMPLED_DEPTH.with(|depth| depth.set(depth.get() + 1));
    }

    fn on_exit(&self, _: &tracing::span::Id, _: layer::Context<'_, S>) {
        UNSAMPLED_DEPTH.with(|depth| depth.set(depth.get().saturating_sub(1)));
    }
}

/// `layer` (the OpenTelemetry layer) seeing Prism's spans except those of
/// an unsampled call: its own span, and anything opened inside it. The
/// call's own span is kept in the registry even when logs filter it out,
/// since it carries the call's trace context.
pub fn sampled_only<S, L>(layer: L) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    L: Layer<S> + Send + Sync + 'static,
{
    let traced = filter::dynamic_filter_fn(|metadata, _| {
        prism_callsite(metadata) && UNSAMPLED_DEPTH.with(Cell::get) == 0
    })
    .with_callsite_filter(|metadata| {
        if prism_callsite(metadata) {
            Interest::sometimes()
        } else {
            Interest::never()
        }
    });
    let scope = UnsampledScope.with_filter(filter::filter_fn(|metadata| {
        metadata.target() == UNSAMPLED_TARGET
    }));
    layer.with_filter(traced).and_then(scope)
}

#[cfg(test)]
mod tests;
