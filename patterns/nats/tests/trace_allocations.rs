//! What the per-message trace work on the PubSub path costs when the call is
//! not sampled, counted with an allocator that counts: a delivery's trace
//! (no CONSUMER span, the `traceparent` the subscriber gets) is one
//! allocation; a publish's PRODUCER span is none, and its context one string
//! for the whole publish.

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
    let deliver = || {
        let (span, traceparent) = telemetry::delivery("orders", "id-1", Some(&headers));
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
    let _in_call = call.enter();
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
}
