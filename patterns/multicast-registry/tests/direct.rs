//! The built `prism-multicast-registry` driven directly over gRPC, without a
//! proxy (`--autostart`: in-process registry and messaging slots): RFC-018's
//! filtered multicast, PENDING then delivered on attach, TTL expiry, paging,
//! refusals of bad input, health figures.

#[path = "support/registry.rs"]
mod support;

use prism_harness::wait::poll;
use prism_proto::{
    json,
    registry::v1::{
        DeliveryStatus, EnumerateRequest, GetRequest, MulticastRequest, ReceiveRequest,
        RegisterRequest, UnregisterRequest,
    },
};
use serde_json::json;
use support::{DEADLINE, Registry, next, statuses};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc018_filtered_multicast_reaches_only_the_match() {
    let registry = Registry::start(&[]).await;
    registry
        .register("sensor-1", json!({"type": "sensor", "floor": 1}), 60)
        .await;
    registry
        .register("sensor-2", json!({"type": "sensor", "floor": 2}), 60)
        .await;
    registry
        .register("actuator-1", json!({"type": "actuator", "floor": 1}), 60)
        .await;
    let mut sensor1 = registry.receive("sensor-1").await;
    let mut sensor2 = registry.receive("sensor-2").await;
    let mut actuator1 = registry.receive("actuator-1").await;

    let sent = registry
        .multicast(json!({"type": "sensor", "floor": 1}), b"calibrate")
        .await;
    assert_eq!(
        (
            sent.target_count,
            sent.delivered_count,
            sent.pending_count,
            sent.failed_count
        ),
        (1, 1, 0, 0)
    );
    assert_eq!(
        statuses(&sent),
        vec![("sensor-1".to_string(), DeliveryStatus::Delivered)]
    );
    let got = next(&mut sensor1).await;
    assert_eq!(
        (got.multicast_id.as_str(), got.payload.as_slice()),
        (sent.multicast_id.as_str(), &b"calibrate"[..])
    );

    // The others' first messages are the ones sent to them afterwards, so
    // the first multicast never reached them.
    let to_sensor2 = registry.multicast(json!({"floor": 2}), b"two").await;
    let to_actuator = registry
        .multicast(json!({"type": "actuator"}), b"act")
        .await;
    assert_eq!(
        next(&mut sensor2).await.multicast_id,
        to_sensor2.multicast_id
    );
    assert_eq!(
        next(&mut actuator1).await.multicast_id,
        to_actuator.multicast_id
    );

    // An empty filter selects everyone, in identity order.
    let everyone = registry.multicast(json!({}), b"all").await;
    assert_eq!(
        statuses(&everyone),
        ["actuator-1", "sensor-1", "sensor-2"]
            .map(|id| (id.to_string(), DeliveryStatus::Delivered))
    );
    let health = registry.health().await;
    for (key, value) in [
        ("registry.backend", "memstore"),
        ("messaging.backend", "memstore"),
        ("registry.identities", "3"),
        ("messaging.receivers", "3"),
        ("multicasts", "4"),
        ("delivered", "6"),
        ("pending", "0"),
        ("failed", "0"),
    ] {
        assert_eq!(
            health.get(key).map(String::as_str),
            Some(value),
            "{key}: {health:?}"
        );
    }

    // No match is no target, not an error.
    let nobody = registry.multicast(json!({"floor": 7}), b"x").await;
    assert_eq!((nobody.target_count, nobody.results.len()), (0, 0));

    // A receiver that goes away detaches; one that is unregistered ends.
    drop(sensor2);
    let detached = poll(DEADLINE, || async {
        let health = registry.health().await;
        (health.get("messaging.receivers").map(String::as_str) == Some("2")).then_some(())
    })
    .await;
    assert!(detached.is_some(), "{:?}", registry.health().await);
    assert_eq!(next(&mut sensor1).await.multicast_id, everyone.multicast_id);
    let unregistered = registry
        .client()
        .unregister(UnregisterRequest {
            identity: "sensor-1".into(),
        })
        .await
        .expect("unregister")
        .into_inner();
    assert!(unregistered.existed);
    let end = tokio::time::timeout(DEADLINE, sensor1.message()).await;
    assert!(matches!(end, Ok(Ok(None))), "the stream ended: {end:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_for_an_absent_receiver_is_pending_then_delivered_on_attach() {
    let registry = Registry::start(&[]).await;
    registry.register("sensor-9", json!({"floor": 9}), 0).await;
    let first = registry.multicast(json!({"floor": 9}), b"one").await;
    let second = registry.multicast(json!({"floor": 9}), b"two").await;
    for sent in [&first, &second] {
        assert_eq!(
            (sent.target_count, sent.delivered_count, sent.pending_count),
            (1, 0, 1)
        );
        assert_eq!(
            statuses(sent),
            vec![("sensor-9".to_string(), DeliveryStatus::Pending)]
        );
    }
    let mut inbox = registry.receive("sensor-9").await;
    assert_eq!(next(&mut inbox).await.payload, b"one");
    assert_eq!(next(&mut inbox).await.payload, b"two");
    let live = registry.multicast(json!({"floor": 9}), b"three").await;
    assert_eq!(live.delivered_count, 1);
    assert_eq!(next(&mut inbox).await.payload, b"three");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_stops_reading_times_out_without_holding_up_the_others() {
    let registry = Registry::start(&[]).await;
    registry.register("live", json!({}), 0).await;
    registry.register("stuck", json!({}), 0).await;
    let mut live = registry.receive("live").await;
    // Attached, and never read: once the transport's and the inbox's
    // buffers are full, a delivery to it can only wait.
    let _stuck = registry
        .separate_client()
        .await
        .receive(ReceiveRequest {
            identity: "stuck".into(),
        })
        .await
        .expect("receive");
    let payload = vec![7u8; 64 * 1024];
    let mut sent = 0;
    let timed_out = loop {
        let response = registry
            .client()
            .multicast(MulticastRequest {
                payload: payload.clone(),
                timeout_ms: 300,
                ..Default::default()
            })
            .await
            .expect("multicast")
            .into_inner();
        sent += 1;
        let results = statuses(&response);
        assert_eq!(results[0], ("live".to_string(), DeliveryStatus::Delivered));
        assert_eq!(next(&mut live).await.multicast_id, response.multicast_id);
        if results[1].1 != DeliveryStatus::Delivered {
            break response;
        }
        assert!(sent < 5000, "the stuck receiver never filled up");
    };
    let stuck = &timed_out.results[1];
    assert_eq!(stuck.status(), DeliveryStatus::Timeout, "{stuck:?}");
    assert_eq!(stuck.error, "no answer within 300 ms (timeout_ms)");
    assert_eq!((timed_out.delivered_count, timed_out.failed_count), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registers_unregisters_and_multicasts_lose_no_identity() {
    let registry = Registry::start(&[]).await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let client = registry.client();
        tasks.push(tokio::spawn(async move {
            let mut client = client;
            for n in 0..40 {
                let identity = format!("t{task}-{n:02}");
                client
                    .register(RegisterRequest {
                        identity: identity.clone(),
                        metadata: Some(json::to_struct(&json!({"task": task}))),
                        ttl_seconds: 0,
                    })
                    .await
                    .expect("register");
                // Every third one goes again; multicasts run in between.
                if n % 3 == 0 {
                    let gone = client
                        .unregister(UnregisterRequest { identity })
                        .await
                        .expect("unregister")
                        .into_inner();
                    assert!(gone.existed);
                }
                if n % 10 == 0 {
                    client
                        .multicast(MulticastRequest {
                            filter: Some(json::to_struct(&json!({"task": task}))),
                            ..Default::default()
                        })
                        .await
                        .expect("multicast");
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let mut expected: Vec<String> = (0..8)
        .flat_map(|task| {
            (0..40)
                .filter(|n| n % 3 != 0)
                .map(move |n| format!("t{task}-{n:02}"))
        })
        .collect();
    expected.sort();
    let page = registry
        .client()
        .enumerate(EnumerateRequest {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("enumerate")
        .into_inner();
    let listed: Vec<String> = page.identities.into_iter().map(|i| i.identity).collect();
    assert_eq!(listed, expected);
    assert_eq!(page.total_count, expected.len() as u64);
    let everyone = registry.multicast(json!({}), b"x").await;
    assert_eq!(everyone.target_count as usize, expected.len());
    assert_eq!(everyone.pending_count as usize, expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_whose_ttl_passes_is_gone() {
    let registry = Registry::start(&[]).await;
    registry
        .register("ephemeral", json!({"kind": "t"}), 1)
        .await;
    registry.register("lasting", json!({"kind": "t"}), 0).await;
    assert_eq!(
        registry.enumerate(json!({"kind": "t"})).await,
        ["ephemeral", "lasting"]
    );
    let gone = poll(DEADLINE, || async {
        (registry.enumerate(json!({"kind": "t"})).await == ["lasting"]).then_some(())
    })
    .await;
    assert!(gone.is_some(), "ephemeral still listed after its TTL");
    let get = registry
        .client()
        .get(GetRequest {
            identity: "ephemeral".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(get.code(), Code::NotFound, "{get}");
    let receive = registry
        .client()
        .receive(ReceiveRequest {
            identity: "ephemeral".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(receive.code(), Code::NotFound, "{receive}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enumerate_pages_with_a_cursor_and_shows_metadata_when_asked() {
    let registry = Registry::start(&[]).await;
    for n in 0..7 {
        let floor = n % 2;
        registry
            .register(&format!("dev-{n}"), json!({"floor": floor, "n": n}), 0)
            .await;
    }
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = registry
            .client()
            .enumerate(EnumerateRequest {
                filter: Some(json::to_struct(&json!({"floor": 0}))),
                limit: 2,
                cursor: cursor.clone(),
                // Only the first page asks for metadata.
                include_metadata: cursor.is_empty(),
            })
            .await
            .expect("enumerate")
            .into_inner();
        assert_eq!(page.total_count, 4);
        for identity in &page.identities {
            let metadata = identity.metadata.as_ref().map(json::from_struct);
            if cursor.is_empty() {
                assert_eq!(metadata.as_ref().map(|m| &m["floor"]), Some(&json!(0)));
            } else {
                assert_eq!(metadata, None);
            }
            seen.push(identity.identity.clone());
        }
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(seen, ["dev-0", "dev-2", "dev-4", "dev-6"]);
    let forged = registry
        .client()
        .enumerate(EnumerateRequest {
            cursor: "zz".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(forged.code(), Code::InvalidArgument, "{forged}");
    assert!(forged.message().starts_with("cursor"), "{forged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_naming_the_field() {
    let registry = Registry::start(&[]).await;
    let mut client = registry.client();
    let cases = [
        client
            .register(RegisterRequest::default())
            .await
            .unwrap_err(),
        client
            .register(RegisterRequest {
                identity: "a".into(),
                ttl_seconds: -1,
                ..Default::default()
            })
            .await
            .unwrap_err(),
        client
            .enumerate(EnumerateRequest {
                filter: Some(json::to_struct(&json!({"floor": {"$near": 1}}))),
                ..Default::default()
            })
            .await
            .unwrap_err(),
        client
            .multicast(MulticastRequest {
                payload: vec![0; 4 * 1024 * 1024 + 1],
                ..Default::default()
            })
            .await
            .unwrap_err(),
        client
            .multicast(MulticastRequest {
                timeout_ms: 60_001,
                ..Default::default()
            })
            .await
            .unwrap_err(),
    ];
    let fields = [
        "identity",
        "ttl_seconds",
        "filter.floor",
        "payload",
        "timeout_ms",
    ];
    for (status, field) in cases.iter().zip(fields) {
        assert_eq!(status.code(), Code::InvalidArgument, "{status}");
        assert!(status.message().starts_with(field), "{field}: {status}");
    }
    // The process took all of that and still serves.
    registry.register("still-here", json!({}), 0).await;
    assert!(registry.process.process.log().contains("pattern listening"));
}

/// SIGTERM with a receiver attached: the pattern stops itself first, which
/// ends the Receive stream, so the server drains and the process exits by
/// itself instead of waiting to be killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_receiver_attached_ends_its_stream_and_exits() {
    let registry = Registry::start(&[]).await;
    registry.register("lamp", json!({}), 60).await;
    let mut stream = registry.receive("lamp").await;
    let pid = registry.process.pid();
    prism_harness::procs::signal(pid, 15).unwrap();
    let ended = tokio::time::timeout(DEADLINE, stream.message())
        .await
        .expect("the stream ends after SIGTERM");
    assert!(
        !matches!(ended, Ok(Some(_))),
        "no message, only the end: {ended:?}"
    );
    drop(stream);
    drop(registry.client());
    let exited = poll(DEADLINE, || async {
        (!prism_harness::procs::alive(pid)).then_some(())
    })
    .await;
    assert!(
        exited.is_some(),
        "the process exits by itself:\n{}",
        registry.process.process.log()
    );
}
