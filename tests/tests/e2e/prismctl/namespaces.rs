//! Namespaces managed through the admin API with `prismctl namespace`:
//! applied, serving KeyValue calls on the data port, deleted; the config
//! file keeping its comments and not applied twice by the watcher; an
//! invalid namespace or a proxy without a config file changing nothing;
//! concurrent applies serialised.

use prism_proto::{
    admin::v1::{EventKind, ListEventsRequest},
    keyvalue::v1::{GetRequest, SetRequest},
};
use prism_tests::{Proxy, eventually};
use serde_json::json;
use tonic::Code;

use super::{CONFIG, TIMEOUT, failed, json_of, ok, prismctl, prismctl_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_applied_serves_and_deleted_is_gone_with_the_files_comments_kept() {
    let proxy = Proxy::start_with_config(CONFIG).await;
    proxy.wait_healthy("default").await;
    let admin = proxy.admin_addr;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("orders.yaml");
    std::fs::write(
        &file,
        "# orders, on MemStore for now\nname: orders\npattern: keyvalue\nbackend: memstore\n",
    )
    .unwrap();

    let applied = ok(&prismctl(
        admin,
        &["namespace", "apply", file.to_str().unwrap()],
    ));
    assert_eq!(
        applied,
        "namespace `orders` created: 1 added, 0 removed, 0 changed\n"
    );
    let text = std::fs::read_to_string(proxy.config_path()).unwrap();
    assert_eq!(
        text,
        CONFIG.replace(
            "    backend: memstore\n",
            "    backend: memstore\n  - # orders, on MemStore for now\n    name: orders\n    pattern: keyvalue\n    backend: memstore\n",
        ),
        "every comment kept"
    );
    // The watcher sees the rename and applies nothing a second time.
    eventually(
        TIMEOUT,
        "the watcher to pass over the written file",
        || async {
            proxy
                .log()
                .contains("config file changed on disk to what is applied already")
                .then_some(())
        },
    )
    .await;
    let reloads = proxy
        .admin()
        .await
        .list_events(ListEventsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .events
        .into_iter()
        .filter(|e| e.kind() == EventKind::ConfigReloaded)
        .count();
    assert_eq!(reloads, 1, "applied once");
    proxy.wait_healthy("orders").await;
    let mut orders = proxy.kv("orders").await;
    orders
        .set(SetRequest {
            key: "o-1".into(),
            value: b"paid".to_vec(),
            ttl_seconds: 0,
        })
        .await
        .expect("the new namespace serves");
    let value = orders
        .get(GetRequest { key: "o-1".into() })
        .await
        .unwrap()
        .into_inner()
        .value;
    assert_eq!(value, b"paid");

    // An update from standard input, as JSON output of the reply.
    let update = "name: orders\npattern: keyvalue\nlimits:\n  max_key_bytes: 16\n";
    let reply = prismctl_with(admin, &["namespace", "apply", "-", "--json"], update, &[]);
    let reply = json_of(&reply);
    assert_eq!(reply["changed"], json!(["orders"]), "{reply}");
    let long_key = orders
        .get(GetRequest {
            key: "k".repeat(17),
        })
        .await
        .unwrap_err();
    assert_eq!(long_key.code(), Code::InvalidArgument, "{long_key:?}");

    // Invalid: the file stays byte for byte as it was.
    let before = std::fs::read(proxy.config_path()).unwrap();
    let bad = "name: broken\npattern: keyvalue\nbackend: nats\n";
    let (code, stderr) = failed(&prismctl_with(
        admin,
        &["namespace", "apply", "-"],
        bad,
        &[],
    ));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("namespaces[2].backend"), "{stderr}");
    let (code, stderr) = failed(&prismctl_with(
        admin,
        &["namespace", "apply", "-"],
        "name: x\npattern: keyvalue\nbakend: redis\n",
        &[],
    ));
    assert_eq!(code, 1);
    assert!(stderr.contains("bakend"), "{stderr}");
    let (code, stderr) = failed(&prismctl(admin, &["namespace", "apply", "/no/such.yaml"]));
    assert_eq!(code, 66, "{stderr}");
    let (code, _) = failed(&prismctl(admin, &["namespace", "delete", "nope"]));
    assert_eq!(code, 1);
    assert_eq!(std::fs::read(proxy.config_path()).unwrap(), before);

    let deleted = ok(&prismctl(admin, &["namespace", "delete", "orders"]));
    assert_eq!(
        deleted,
        "namespace `orders` deleted: 0 added, 1 removed, 0 changed\n"
    );
    let gone = orders
        .get(GetRequest { key: "o-1".into() })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound, "{gone:?}");
    assert_eq!(
        std::fs::read_to_string(proxy.config_path()).unwrap(),
        CONFIG
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_applies_are_serialised_and_none_is_lost() {
    let proxy = Proxy::start_with_config(CONFIG).await;
    proxy.wait_healthy("default").await;
    let admin = proxy.admin_addr;
    let names = ["c1", "c2", "c3", "c4"];
    let runs: Vec<_> = names
        .iter()
        .map(|name| {
            let yaml = format!("name: {name}\npattern: keyvalue\n");
            std::thread::spawn(move || {
                prismctl_with(admin, &["namespace", "apply", "-"], &yaml, &[])
            })
        })
        .collect();
    for run in runs {
        let out = ok(&run.join().unwrap());
        assert!(out.contains("created: 1 added"), "{out}");
    }
    let text = std::fs::read_to_string(proxy.config_path()).unwrap();
    for name in names {
        assert!(
            text.contains(&format!("  - name: {name}\n")),
            "{name} kept:\n{text}"
        );
        proxy.wait_healthy(name).await;
    }
    assert!(
        text.starts_with("# The bench's proxy. Keep this comment.\n"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_config_file_namespace_changes_are_refused() {
    let proxy = Proxy::start_default().await;
    let (code, stderr) = failed(&prismctl_with(
        proxy.admin_addr,
        &["namespace", "apply", "-"],
        "name: orders\npattern: keyvalue\n",
        &[],
    ));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("FailedPrecondition") && stderr.contains("without a config file"),
        "{stderr}"
    );
    let (code, stderr) = failed(&prismctl(
        proxy.admin_addr,
        &["namespace", "delete", "default"],
    ));
    assert_eq!(code, 1);
    assert!(stderr.contains("without a config file"), "{stderr}");
    assert!(
        proxy
            .list()
            .await
            .patterns
            .iter()
            .any(|p| p.namespace == "default")
    );
}
