//! An independent client: grpcurl, which knows nothing of Prism but what
//! server reflection tells it. `scripts/test.sh` installs it; `GRPCURL`
//! names the binary when it is not on PATH. Also what every binary says of
//! itself (`-V`).

use std::process::Command;

use prism_tests::Proxy;

pub(crate) fn grpcurl(args: &[&str]) -> (bool, String) {
    let bin = std::env::var("GRPCURL").unwrap_or_else(|_| "grpcurl".to_string());
    let output = Command::new(&bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin} ({e}): scripts/test.sh installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_and_calls_keyvalue_through_reflection() {
    let proxy = Proxy::start_default().await;
    let addr = proxy.data_addr.to_string();

    let (ok, services) = grpcurl(&["-plaintext", &addr, "list"]);
    assert!(ok, "{services}");
    for service in ["prism.keyvalue.v1.KeyValue", "grpc.health.v1.Health"] {
        assert!(
            services.contains(service),
            "{service} missing from:\n{services}"
        );
    }
    let (ok, described) = grpcurl(&[
        "-plaintext",
        &addr,
        "describe",
        "prism.keyvalue.v1.SetRequest",
    ]);
    assert!(ok && described.contains("ttl_seconds"), "{described}");

    let call = |method: &str, body: &str| {
        grpcurl(&[
            "-plaintext",
            "-d",
            body,
            &addr,
            &format!("prism.keyvalue.v1.KeyValue/{method}"),
        ])
    };
    // "aGVsbG8=" is base64 for "hello".
    let (ok, out) = call("Set", r#"{"key": "greeting", "value": "aGVsbG8="}"#);
    assert!(ok, "{out}");
    let (ok, out) = call("Get", r#"{"key": "greeting"}"#);
    assert!(ok && out.contains("aGVsbG8="), "{out}");
    let (ok, out) = call("Scan", r#"{"prefix": "greet"}"#);
    assert!(ok && out.contains("greeting"), "{out}");
    let (ok, out) = call("Delete", r#"{"key": "greeting"}"#);
    assert!(ok && out.contains("\"deleted\": true"), "{out}");
    let (ok, out) = call("Get", r#"{"key": "greeting"}"#);
    assert!(!ok && out.contains("NotFound"), "{out}");
    let (ok, out) = call("Set", r#"{"key": ""}"#);
    assert!(!ok && out.contains("InvalidArgument"), "{out}");

    let (ok, out) = grpcurl(&[
        "-plaintext",
        "-H",
        "x-prism-namespace: elsewhere",
        "-d",
        r#"{"key": "k"}"#,
        &addr,
        "prism.keyvalue.v1.KeyValue/Get",
    ]);
    assert!(
        !ok && out.contains("NotFound") && out.contains("elsewhere"),
        "{out}"
    );

    let (ok, out) = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"service": "default"}"#,
        &addr,
        "grpc.health.v1.Health/Check",
    ]);
    assert!(ok && out.contains("SERVING"), "{out}");

    // The admin port is discoverable too.
    let admin = proxy.admin_addr.to_string();
    let (ok, out) = grpcurl(&["-plaintext", &admin, "prism.admin.v1.Admin/ListPatterns"]);
    assert!(ok && out.contains("\"namespace\": \"default\""), "{out}");
}

/// Each port's reflection lists only what it serves, and a call to the
/// other port's service says where that service is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_port_lists_what_it_serves_and_points_to_the_other() {
    let proxy = Proxy::start_default().await;
    let data = proxy.data_addr.to_string();
    let admin = proxy.admin_addr.to_string();
    let list = |addr: &str| {
        let (ok, services) = grpcurl(&["-plaintext", addr, "list"]);
        assert!(ok, "{services}");
        let mut services: Vec<String> = services.lines().map(str::to_string).collect();
        services.sort();
        services
    };
    assert_eq!(
        list(&data),
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "prism.keyvalue.v1.KeyValue",
            "prism.pubsub.v1.PubSub",
            "prism.registry.v1.MulticastRegistry",
        ]
    );
    assert_eq!(
        list(&admin),
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "prism.admin.v1.Admin",
        ]
    );

    let (ok, out) = grpcurl(&["-plaintext", &data, "prism.admin.v1.Admin/ListPatterns"]);
    assert!(!ok && out.contains("Unimplemented"), "{out}");
    assert!(
        out.contains(&format!(
            "prism.admin.v1.Admin is served on the admin port {admin}"
        )),
        "{out}"
    );
    let (ok, out) = grpcurl(&[
        "-plaintext",
        "-d",
        r#"{"key": "k"}"#,
        &admin,
        "prism.keyvalue.v1.KeyValue/Get",
    ]);
    assert!(!ok && out.contains("Unimplemented"), "{out}");
    assert!(
        out.contains(&format!(
            "prism.keyvalue.v1.KeyValue is served on the data port {data}"
        )),
        "{out}"
    );
}

/// Every binary answers `-V` with its own name and the version.
#[test]
fn every_binary_names_itself_and_its_version() {
    for name in [
        "prism-proxy",
        "prism-console",
        "prism-memstore",
        "prism-redis",
        "prism-nats",
        "prism-multicast-registry",
        "prism-bench",
    ] {
        let output = std::process::Command::new(prism_tests::bins::bin(name))
            .arg("-V")
            .output()
            .unwrap_or_else(|e| panic!("running {name} -V: {e}"));
        assert!(output.status.success(), "{name} -V: {output:?}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION")),
        );
    }
}
