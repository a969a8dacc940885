//! The KeyValue suite of ACCEPTANCE.md, written once. A backend joins by
//! giving a setup function that starts a proxy whose namespace `kv` is served
//! by it (see `memstore::kv_env`), then `keyvalue_suite!(name, setup)`.

use std::{any::Any, collections::HashSet, time::Duration};

use prism_proto::{
    admin::v1::PatternState,
    keyvalue::v1::{DeleteRequest, ExistsRequest, GetRequest, ScanRequest, SetRequest},
};
use prism_tests::{Proxy, ProxyBuilder, assert_invalid_field, eventually, proxy::KvClient};
use tokio::time::Instant;
use tonic::Code;

/// The namespace every suite case uses.
pub(crate) const NS: &str = "kv";
/// Limits the suite configures on `kv`, so it can prove they are enforced.
pub(crate) const MAX_KEY_BYTES: usize = 256;
pub(crate) const MAX_VALUE_BYTES: usize = 3 * 1024 * 1024;

/// The `limits:` mapping for the suite's namespace.
pub(crate) fn limits_yaml() -> String {
    format!("{{max_key_bytes: {MAX_KEY_BYTES}, max_value_bytes: {MAX_VALUE_BYTES}}}")
}

/// A proxy serving namespace `kv`, and whatever backend server it needs.
pub(crate) struct KvEnv {
    pub proxy: Proxy,
    /// Keeps the backend (e.g. a redis-server) alive for the test.
    pub _backend: Option<Box<dyn Any + Send>>,
}

impl KvEnv {
    pub(crate) async fn kv(&self) -> KvClient {
        self.proxy.kv(NS).await
    }
}

/// Instantiates every suite case for one backend. `$setup` is an async fn
/// taking a `ProxyBuilder` and returning a `KvEnv` whose `kv` namespace is
/// RUNNING and HEALTHY.
macro_rules! keyvalue_suite {
    ($name:ident, $setup:path) => {
        mod $name {
            use prism_tests::ProxyBuilder;

            use super::keyvalue as suite;

            macro_rules! case {
                ($case:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $case() {
                        suite::$case(&$setup(ProxyBuilder::new()).await).await;
                    }
                };
            }

            case!(set_then_get_returns_the_same_bytes);
            case!(keys_with_punctuation_spaces_and_utf8);
            case!(invalid_keys_and_values_name_the_limit);
            case!(missing_keys);
            case!(rapid_overwrites_last_wins);
            case!(ttl_expires_on_read_within_three_seconds);
            case!(overwrite_without_ttl_clears_it);
            case!(overwrite_with_ttl_resets_it);
            case!(scan_by_prefix);
            case!(scan_pages_never_repeat_or_miss);
            case!(concurrent_writers_readers_and_deleters);
            case!(unknown_namespace_is_not_found);
            case!(bogus_scan_cursors_and_long_prefixes_are_invalid);

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn restarting_namespace_is_unavailable_within_the_deadline() {
                let builder = ProxyBuilder::new().supervisor("restart_backoff_initial_ms", "4000");
                suite::restarting_namespace_is_unavailable_within_the_deadline(
                    &$setup(builder).await,
                )
                .await;
            }
        }
    };
}

/// A `Set` of `v` under `key`, with no TTL.
pub(crate) fn set_v(key: &str) -> SetRequest {
    set(key, b"v", 0)
}

/// A `Set` request; the other suites use it too.
pub(crate) fn set(key: &str, value: &[u8], ttl_seconds: i64) -> SetRequest {
    SetRequest {
        key: key.to_string(),
        value: value.to_vec(),
        ttl_seconds,
    }
}

async fn get(kv: &mut KvClient, key: &str) -> Result<Vec<u8>, tonic::Status> {
    kv.get(GetRequest { key: key.into() })
        .await
        .map(|r| r.into_inner().value)
}

async fn exists(kv: &mut KvClient, key: &str) -> bool {
    kv.exists(ExistsRequest { key: key.into() })
        .await
        .expect("Exists")
        .into_inner()
        .exists
}

async fn scan_all(kv: &mut KvClient, prefix: &str, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = kv
            .scan(ScanRequest {
                prefix: prefix.into(),
                limit,
                cursor: cursor.clone(),
            })
            .await
            .expect("Scan")
            .into_inner();
        pages.push(page.keys);
        if page.next_cursor.is_empty() {
            return pages;
        }
        assert!(pages.len() < 10_000, "scan does not terminate");
        cursor = page.next_cursor;
    }
}

pub(crate) async fn set_then_get_returns_the_same_bytes(env: &KvEnv) {
    let mut kv = env.kv().await;
    let binary = [0x00, 0xFF, 0x00, 0x7F, 0xFF];
    kv.set(set("bin", &binary, 0)).await.expect("Set binary");
    assert_eq!(get(&mut kv, "bin").await.unwrap(), binary);

    kv.set(set("empty", b"", 0)).await.expect("Set empty");
    assert_eq!(get(&mut kv, "empty").await.unwrap(), b"");
    assert!(
        exists(&mut kv, "empty").await,
        "an empty value is a present key"
    );

    let big: Vec<u8> = (0..2 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    kv.set(set("big", &big, 0)).await.expect("Set 2 MiB");
    assert_eq!(get(&mut kv, "big").await.unwrap(), big);
}

pub(crate) async fn keys_with_punctuation_spaces_and_utf8(env: &KvEnv) {
    let mut kv = env.kv().await;
    let keys = [
        "a:b-c_d.e/f",
        "with space",
        "ключ-日本語-🔑",
        " lead",
        "trail ",
    ];
    for (i, key) in keys.iter().enumerate() {
        kv.set(set(key, format!("v{i}").as_bytes(), 0))
            .await
            .unwrap_or_else(|e| panic!("Set {key:?}: {e}"));
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            get(&mut kv, key).await.unwrap(),
            format!("v{i}").as_bytes(),
            "{key:?}"
        );
    }
}

pub(crate) async fn invalid_keys_and_values_name_the_limit(env: &KvEnv) {
    let mut kv = env.kv().await;
    let err = kv.set(set("", b"v", 0)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("key"), "{}", err.message());
    let err = get(&mut kv, "").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    let err = kv.set(set(&long_key, b"v", 0)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains(&MAX_KEY_BYTES.to_string()),
        "{}",
        err.message()
    );
    kv.set(set(&"k".repeat(MAX_KEY_BYTES), b"v", 0))
        .await
        .expect("a key at the limit is fine");

    let big = vec![7u8; MAX_VALUE_BYTES + 1];
    let err = kv.set(set("big", &big, 0)).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains(&MAX_VALUE_BYTES.to_string()),
        "{}",
        err.message()
    );
    assert_eq!(
        get(&mut kv, "big").await.unwrap_err().code(),
        Code::NotFound,
        "nothing stored"
    );

    for ttl in [-1, i64::MAX] {
        let err = kv.set(set("ttl", b"v", ttl)).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "ttl {ttl}");
        assert!(err.message().contains("ttl_seconds"), "{}", err.message());
    }
}

pub(crate) async fn missing_keys(env: &KvEnv) {
    let mut kv = env.kv().await;
    let err = get(&mut kv, "nope").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let deleted = kv
        .delete(DeleteRequest { key: "nope".into() })
        .await
        .expect("deleting a missing key succeeds")
        .into_inner()
        .deleted;
    assert!(!deleted);

    kv.set(set("k", b"v", 0)).await.unwrap();
    assert!(exists(&mut kv, "k").await);
    let deleted = kv
        .delete(DeleteRequest { key: "k".into() })
        .await
        .unwrap()
        .into_inner()
        .deleted;
    assert!(deleted);
    assert!(!exists(&mut kv, "k").await, "exists is false after delete");
    assert_eq!(get(&mut kv, "k").await.unwrap_err().code(), Code::NotFound);
}

pub(crate) async fn rapid_overwrites_last_wins(env: &KvEnv) {
    let mut kv = env.kv().await;
    for i in 0..100 {
        kv.set(set("hot", format!("{i}").as_bytes(), 0))
            .await
            .unwrap();
    }
    assert_eq!(get(&mut kv, "hot").await.unwrap(), b"99");
}

pub(crate) async fn ttl_expires_on_read_within_three_seconds(env: &KvEnv) {
    let mut kv = env.kv().await;
    let start = Instant::now();
    kv.set(set("short", b"v", 2)).await.unwrap();
    kv.set(set("forever", b"v", 0)).await.unwrap();
    assert!(exists(&mut kv, "short").await, "present before its TTL");
    eventually(Duration::from_secs(3), "the 2 s key to expire", || {
        let mut kv = kv.clone();
        async move { (!exists(&mut kv, "short").await).then_some(()) }
    })
    .await;
    assert!(
        start.elapsed() >= Duration::from_millis(1500),
        "expired too early"
    );
    assert_eq!(
        get(&mut kv, "short").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(
        get(&mut kv, "forever").await.unwrap(),
        b"v",
        "no TTL never expires"
    );
}

pub(crate) async fn overwrite_without_ttl_clears_it(env: &KvEnv) {
    let mut kv = env.kv().await;
    kv.set(set("k", b"1", 1)).await.unwrap();
    kv.set(set("k", b"2", 0)).await.unwrap();
    kv.set(set("canary", b"c", 1)).await.unwrap();
    eventually(Duration::from_secs(3), "the canary to expire", || {
        let mut kv = kv.clone();
        async move { (!exists(&mut kv, "canary").await).then_some(()) }
    })
    .await;
    assert_eq!(
        get(&mut kv, "k").await.unwrap(),
        b"2",
        "the old TTL was cleared"
    );
}

pub(crate) async fn overwrite_with_ttl_resets_it(env: &KvEnv) {
    let mut kv = env.kv().await;
    let first = Instant::now();
    kv.set(set("k", b"1", 2)).await.unwrap();
    kv.set(set("canary", b"c", 2)).await.unwrap();
    eventually(Duration::from_secs(2), "a second to pass", || async {
        (first.elapsed() >= Duration::from_millis(1200)).then_some(())
    })
    .await;
    let second = Instant::now();
    kv.set(set("k", b"2", 2)).await.unwrap();
    eventually(Duration::from_secs(3), "the canary to expire", || {
        let mut kv = kv.clone();
        async move { (!exists(&mut kv, "canary").await).then_some(()) }
    })
    .await;
    if second.elapsed() < Duration::from_millis(1900) {
        assert_eq!(get(&mut kv, "k").await.unwrap(), b"2", "the TTL was reset");
    }
    eventually(Duration::from_secs(3), "the reset key to expire", || {
        let mut kv = kv.clone();
        async move { (!exists(&mut kv, "k").await).then_some(()) }
    })
    .await;
    assert!(
        second.elapsed() >= Duration::from_millis(1500),
        "expired on the old TTL"
    );
}

pub(crate) async fn scan_by_prefix(env: &KvEnv) {
    let mut kv = env.kv().await;
    for key in ["user:1", "user:2", "post:1"] {
        kv.set(set(key, b"v", 0)).await.unwrap();
    }
    let keys: HashSet<String> = scan_all(&mut kv, "user:", 0)
        .await
        .concat()
        .into_iter()
        .collect();
    assert_eq!(
        keys,
        HashSet::from(["user:1".to_string(), "user:2".to_string()])
    );
}

pub(crate) async fn scan_pages_never_repeat_or_miss(env: &KvEnv) {
    let mut kv = env.kv().await;
    let expected: HashSet<String> = (0..37).map(|i| format!("item:{i:03}")).collect();
    for key in &expected {
        kv.set(set(key, b"v", 0)).await.unwrap();
    }
    kv.set(set("other:1", b"v", 0)).await.unwrap();
    let pages = scan_all(&mut kv, "item:", 5).await;
    assert!(
        pages.len() >= 8,
        "37 keys in pages of 5 need at least 8 pages"
    );
    for page in &pages {
        assert!(page.len() <= 5, "page over the limit: {page:?}");
    }
    let all: Vec<String> = pages.concat();
    let unique: HashSet<String> = all.iter().cloned().collect();
    assert_eq!(all.len(), unique.len(), "a key came twice");
    assert_eq!(unique, expected, "a key was missed or a stranger came");
}

pub(crate) async fn concurrent_writers_readers_and_deleters(env: &KvEnv) {
    let kv = env.kv().await;
    let writers: Vec<_> = (0..10)
        .map(|w| {
            let mut kv = kv.clone();
            tokio::spawn(async move {
                for i in 0..20 {
                    kv.set(set(&format!("w{w}:{i}"), format!("{w}-{i}").as_bytes(), 0))
                        .await
                        .expect("writer Set");
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let mut kv1 = kv.clone();
    for w in 0..10 {
        for i in 0..20 {
            assert_eq!(
                get(&mut kv1, &format!("w{w}:{i}")).await.unwrap(),
                format!("{w}-{i}").as_bytes()
            );
        }
    }

    kv1.set(set("shared", b"0", 0)).await.unwrap();
    let mixed: Vec<_> = (0..10)
        .map(|t| {
            let mut kv = kv.clone();
            tokio::spawn(async move {
                for i in 0..30 {
                    if t % 2 == 0 {
                        kv.set(set("shared", format!("{t}-{i}").as_bytes(), 0))
                            .await
                            .expect("Set on a shared key");
                    } else {
                        get(&mut kv, "shared").await.expect("Get on a shared key");
                    }
                }
            })
        })
        .collect();
    for m in mixed {
        m.await.unwrap();
    }

    kv1.set(set("doomed", b"x", 0)).await.unwrap();
    let deleters: Vec<_> = (0..10)
        .map(|_| {
            let mut kv = kv.clone();
            tokio::spawn(async move {
                kv.delete(DeleteRequest {
                    key: "doomed".into(),
                })
                .await
            })
        })
        .collect();
    let mut removed = 0;
    for d in deleters {
        if d.await
            .unwrap()
            .expect("parallel Delete succeeds")
            .into_inner()
            .deleted
        {
            removed += 1;
        }
    }
    assert_eq!(removed, 1, "exactly one delete removed the key");
    assert!(!exists(&mut kv1, "doomed").await);
}

pub(crate) async fn unknown_namespace_is_not_found(env: &KvEnv) {
    let mut kv = env.proxy.kv("no-such-namespace").await;
    let err = get(&mut kv, "k").await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.message().contains("no-such-namespace"),
        "{}",
        err.message()
    );
}

/// A cursor the server did not issue, and a prefix longer than a key may
/// be, are refused naming the field, without echoing the input; the
/// cursor of a real page still works.
pub(crate) async fn bogus_scan_cursors_and_long_prefixes_are_invalid(env: &KvEnv) {
    let mut kv = env.kv().await;
    for i in 0..3 {
        kv.set(set(&format!("page:{i}"), b"v", 0))
            .await
            .expect("set");
    }
    let scan = |prefix: &str, cursor: &str| ScanRequest {
        prefix: prefix.into(),
        cursor: cursor.into(),
        limit: 1,
    };
    for (what, request, field) in [
        ("a bogus cursor", scan("page:", "not-a-cursor!"), "cursor"),
        (
            "a cursor of junk digits",
            scan("page:", "12:x:y:zz"),
            "cursor",
        ),
        (
            "a huge cursor",
            scan("page:", &"7".repeat(100_000)),
            "cursor",
        ),
        ("a 1 MB prefix", scan(&"p".repeat(1 << 20), ""), "prefix"),
    ] {
        let err = kv.scan(request).await.expect_err(what);
        assert_invalid_field(&err, field, what);
    }
    let err = kv
        .scan(scan(&"p".repeat(MAX_KEY_BYTES + 1), ""))
        .await
        .unwrap_err();
    assert!(
        err.message().contains(&MAX_KEY_BYTES.to_string()),
        "the limit is named: {}",
        err.message()
    );
    let first = kv
        .scan(scan("page:", ""))
        .await
        .expect("first page")
        .into_inner();
    assert_eq!(first.keys.len(), 1);
    let second = kv
        .scan(scan("page:", &first.next_cursor))
        .await
        .expect("an issued cursor is accepted")
        .into_inner();
    assert!(
        second.keys.iter().all(|k| !first.keys.contains(k)),
        "{:?} then {:?}",
        first.keys,
        second.keys
    );
}

/// Expects the setup to use a long restart backoff, so the namespace stays
/// RESTARTING after its pattern is killed.
pub(crate) async fn restarting_namespace_is_unavailable_within_the_deadline(env: &KvEnv) {
    let info = env.proxy.pattern(NS).await;
    prism_tests::procs::signal(info.pid, libc::SIGKILL);
    env.proxy
        .wait_pattern(NS, Duration::from_secs(5), "RESTARTING", |p| {
            p.state() == PatternState::Restarting
        })
        .await;
    let mut kv = env.kv().await;
    let deadline = Duration::from_secs(2);
    let mut request = tonic::Request::new(GetRequest { key: "k".into() });
    request.set_timeout(deadline);
    let start = Instant::now();
    let err = kv.get(request).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{}", err.message());
    assert!(start.elapsed() < deadline, "answered after the deadline");
    // It heals by itself once the backoff is over.
    env.proxy.wait_healthy(NS).await;
    kv.set(set("k", b"v", 0)).await.expect("serving again");
}

/// Convenience for setups: a builder with the suite's `kv` namespace.
pub(crate) fn with_kv_namespace(builder: ProxyBuilder, backend_and_config: &str) -> ProxyBuilder {
    builder.namespace(&format!(
        "{{name: {NS}, pattern: keyvalue, {backend_and_config}, limits: {}}}",
        limits_yaml()
    ))
}
