//! Two tenants on one proxy: each reaches its own namespaces and is denied
//! the other's, for reads, writes and subscriptions.

use prism_proto::{
    keyvalue::v1::{GetRequest, SetRequest},
    pubsub::v1::{PublishRequest, SubscribeRequest},
};
use serde_json::json;
use tonic::Code;

use super::Setup;

const TENANTS: &str = r#"namespaces:
  - name: acme-orders
    pattern: keyvalue
    access:
      read: ["group:acme"]
      write: ["group:acme"]
  - name: acme-events
    pattern: pubsub
    access:
      read: ["group:acme"]
      write: ["group:acme"]
  - name: globex-orders
    pattern: keyvalue
    access:
      read: ["group:globex"]
      write: ["group:globex"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_cannot_see_each_others_namespaces() {
    let setup = Setup::start("", TENANTS).await;
    for ns in ["acme-orders", "acme-events", "globex-orders"] {
        setup.proxy.wait_serving(ns).await;
    }
    let acme = setup.token("acme-app", json!({"groups": ["acme"]}));
    let globex = setup.token("globex-app", json!({"groups": ["globex"]}));

    for (token, own, other) in [
        (&acme, "acme-orders", "globex-orders"),
        (&globex, "globex-orders", "acme-orders"),
    ] {
        let mut mine = setup.proxy.kv_as(own, Some(token)).await;
        mine.set(SetRequest {
            key: "secret".into(),
            value: own.as_bytes().to_vec(),
            ttl_seconds: 0,
        })
        .await
        .unwrap_or_else(|e| panic!("{own}: {e}"));
        let value = mine
            .get(GetRequest {
                key: "secret".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .value;
        assert_eq!(value, own.as_bytes());

        let mut theirs = setup.proxy.kv_as(other, Some(token)).await;
        let read = theirs
            .get(GetRequest {
                key: "secret".into(),
            })
            .await
            .expect_err("the other tenant's data");
        assert_eq!(read.code(), Code::PermissionDenied, "{read:?}");
        assert!(
            read.message().contains(&format!("namespace `{other}`")),
            "{read:?}"
        );
        let write = theirs
            .set(SetRequest {
                key: "secret".into(),
                value: b"overwritten".to_vec(),
                ttl_seconds: 0,
            })
            .await
            .expect_err("the other tenant's data");
        assert_eq!(write.code(), Code::PermissionDenied, "{write:?}");
    }
    // Nothing was overwritten across tenants.
    let value = setup
        .proxy
        .kv_as("globex-orders", Some(&globex))
        .await
        .get(GetRequest {
            key: "secret".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .value;
    assert_eq!(value, b"globex-orders");

    let denied = setup
        .proxy
        .pubsub_as("acme-events", Some(&globex))
        .await
        .subscribe(SubscribeRequest {
            topic: "t".into(),
            subscriber_id: String::new(),
            manual_ack: false,
        })
        .await
        .expect_err("globex may not subscribe to acme's events");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let denied = setup
        .proxy
        .pubsub_as("acme-events", Some(&globex))
        .await
        .publish(PublishRequest {
            topic: "t".into(),
            payload: b"x".to_vec(),
            metadata: Default::default(),
        })
        .await
        .expect_err("globex may not publish to acme's events");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
}
