//! `prism-bench` on clusters: KeyValue on a Redis Cluster named with
//! `--redis-cluster` (started here by the harness, so the test can look at
//! where the keys went), and PubSub on a NATS cluster the bench starts
//! itself with `--backend nats-cluster`. Short runs; the JSON must show
//! every path measured with no error, and the cluster really in use.

use prism_tests::cluster::redis_cluster;

use super::{SHORT_RUN, bench_output, check_pubsub, comparisons, number, report_of};

/// The Redis Cluster's three masters each hold part of the key space after
/// the run: the pattern's cluster client and the bench's both hashed keys
/// to slots. Every path measured every request with no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prism_bench_measures_kv_on_a_redis_cluster() {
    let cluster = redis_cluster().await;
    let nodes = cluster.urls().join(",");
    let args: Vec<String> = [
        "kv",
        "--backend",
        "redis-cluster",
        "--redis-cluster",
        &nodes,
        "--paths",
        "proxy,pattern,redis",
        "--keys",
        "300",
    ]
    .iter()
    .chain(SHORT_RUN)
    .map(|s| s.to_string())
    .collect();
    let output = tokio::task::spawn_blocking(move || bench_output(&args))
        .await
        .expect("bench");
    let report = report_of(&output);

    assert_eq!(report["settings"]["backend"], "redis-cluster", "{report:#}");
    let workload = report["workload"].as_str().unwrap_or_default();
    assert!(workload.ends_with("on Redis Cluster"), "{workload}");
    let paths = report["paths"].as_array().expect("paths");
    let names: Vec<&str> = paths.iter().filter_map(|p| p["path"].as_str()).collect();
    assert_eq!(names, ["proxy", "pattern", "redis"], "{report:#}");
    for path in paths {
        let name = &path["path"];
        assert_eq!(path["requests"], 200, "{name}: {path:#}");
        assert_eq!(path["error_count"], 0, "{name}: {path:#}");
        assert!(number(&path["throughput_rps"]) > 0.0, "{name}: {path:#}");
    }
    let comparisons = comparisons(&report);
    for pair in [
        ("proxy", "pattern"),
        ("proxy", "redis"),
        ("pattern", "redis"),
    ] {
        assert!(comparisons.contains(&pair), "{pair:?} in {comparisons:?}");
    }

    let roles = cluster.roles().await.expect("CLUSTER NODES");
    let masters: Vec<u16> = roles.iter().filter(|r| r.master).map(|r| r.port).collect();
    assert_eq!(masters.len(), 3, "{roles:?}");
    let mut total = 0;
    for port in masters {
        let keys = dbsize(port).await;
        assert!(
            keys > 0,
            "master {port} holds no key: the run did not spread over slots"
        );
        total += keys;
    }
    assert_eq!(total, 300, "every key of the key space, once");
}

/// PubSub on a three-node NATS cluster the bench starts: the pattern gets
/// every node, the `nats` path publishes to one node and subscribes on
/// another. Every message reaches the subscriber on every path, and all
/// three `nats-server` processes are watched.
#[test]
fn prism_bench_measures_pubsub_on_a_nats_cluster() {
    let args = [
        "pubsub",
        "--backend",
        "nats-cluster",
        "--paths",
        "proxy,pattern,nats",
        "--batch",
        "10",
    ];
    let output = bench_output(&[&args, SHORT_RUN].concat());
    let report = report_of(&output);
    assert_eq!(report["settings"]["backend"], "nats-cluster", "{report:#}");
    let names = check_pubsub(&report, 20, 1);
    assert_eq!(names, ["proxy", "pattern", "nats"], "{report:#}");
    for path in report["paths"].as_array().unwrap() {
        let nats = path["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .filter(|p| p["role"] == "nats")
            .count();
        assert_eq!(nats, 3, "{}: {path:#}", path["path"]);
    }
    assert_eq!(
        comparisons(&report),
        [("proxy", "pattern"), ("proxy", "nats"), ("pattern", "nats")]
    );
}

/// Keys held by the Redis on `port`.
async fn dbsize(port: u16) -> u64 {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    redis::cmd("DBSIZE")
        .query_async(&mut conn)
        .await
        .expect("DBSIZE")
}
