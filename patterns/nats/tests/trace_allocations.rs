//! What the per-message trace work on the PubSub path costs, counted with an
//! allocator that counts. Not sampled: a delivery's trace (no CONSUMER
//! span, the `traceparent` the subscriber gets) is one allocation; a
//! publish's PRODUCER span is none, and its context one string for the
//! whole publish. Sampled: the messages of one batch read in one go share
//! one CONSUMER span, so every one after the first costs one allocation.

// A counting allocator is the one way to count allocations; it only passes
// each call on to the system allocator.
#![allow(unsafe_code)]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
};

use async_nats::HeaderMap;
use opentelemetry::trace::{SpanId, TraceId, TracerProvider};
use prism_nats::telemetry::{self, Carrier};
use prism_observability::{
    Sampler,
    propagation::ConsumerRuns,
    sampling::{Sampling, Unsampled, parse_traceparent, sampled_only, unsampled_span},
};
use tracing_subscriber::layer::SubscriberExt;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made on this thread while `f` runs.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

const MESSAGES: u64 = 1000;
const UNSAMPLED: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
const SAMPLED: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

#[test]
fn unsampled_messages_cost_at_most_one_allocation_of_trace_work_each() {
    // As a pattern runs with export on and the default sampler.
    Sampling::new(Sampler::ParentBasedAlwaysOn, true).install();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry().with(sampled_only(
        tracing_opentelemetry::layer().with_tracer(provider.tracer("t")),
    ));
    let _default = tracing::subscriber::set_default(subscriber);

    let mut headers = HeaderMap::new();
    headers.insert("traceparent", UNSAMPLED);
    let mut runs = ConsumerRuns::default();
    let mut deliver = || {
        let (span, traceparent) = telemetry::delivery(&mut runs, "orders", "id-1", Some(&headers));
        assert!(span.is_disabled());
        traceparent
    };
    let sent = parse_traceparent(&deliver()).expect("the subscriber gets a traceparent");
    assert_eq!(
        sent.trace_id,
        parse_traceparent(UNSAMPLED).unwrap().trace_id
    );
    let delivered = allocations(|| {
        for _ in 0..MESSAGES {
            drop(deliver());
        }
    });
    assert!(
        delivered <= MESSAGES,
        "{delivered} allocations for {MESSAGES} deliveries"
    );

    let call = unsampled_span(Unsampled {
        trace_id: TraceId::from(7u128),
        span_id: SpanId::from(9u64),
    });
    let in_call = call.enter();
    let published = allocations(|| {
        for _ in 0..MESSAGES {
            let span = telemetry::producer_span("orders", "id-1");
            assert!(span.is_disabled());
            drop(Carrier::of(&span));
        }
    });
    assert!(
        published <= MESSAGES,
        "{published} allocations for {MESSAGES} publishes"
    );
    let carrier = Carrier::of(&telemetry::batch_producer_span(Some("orders"), 100));
    let mut headers = HeaderMap::new();
    carrier.write(&mut headers);
    let written = parse_traceparent(headers.get("traceparent").unwrap().as_str()).unwrap();
    assert_eq!(written.trace_id, TraceId::from(7u128));
    assert!(!written.sampled);
    drop(in_call);

    // Sampled: one batch's messages, read in one go.
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", SAMPLED);
    let mut runs = ConsumerRuns::default();
    let (first_span, first) = telemetry::delivery(&mut runs, "orders", "id-0", Some(&headers));
    assert!(!first_span.is_disabled(), "a sampled delivery has a span");
    let rest = allocations(|| {
        for _ in 1..MESSAGES {
            let (span, traceparent) =
                telemetry::delivery(&mut runs, "orders", "id-n", Some(&headers));
            assert_eq!(traceparent, first, "in the first message's CONSUMER span");
            drop(span);
        }
    });
    assert!(
        rest < MESSAGES,
        "{rest} allocations for {} sampled deliveries after the first",
        MESSAGES - 1
    );
    assert_eq!(
        parse_traceparent(&first).unwrap().trace_id,
        parse_traceparent(SAMPLED).unwrap().trace_id,
        "in the publisher's trace"
    );
    runs.end();
    let (_, next) = telemetry::delivery(&mut runs, "orders", "id-x", Some(&headers));
    assert_ne!(next, first, "a new run after the last one ended");
}
