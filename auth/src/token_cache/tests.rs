use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::http::HttpClient;

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn cached(
    access: &str,
    refresh: Option<&str>,
    issued_at: u64,
    expires_at: Option<u64>,
) -> CachedToken {
    CachedToken {
        // Nothing listens there: a refresh attempt fails at once.
        issuer: "http://127.0.0.1:9".to_string(),
        client_id: "prism-cli".to_string(),
        access_token: Secret::new(access),
        refresh_token: refresh.map(Secret::new),
        issued_at,
        expires_at,
    }
}

#[test]
fn refresh_is_due_near_the_end_of_a_tokens_life() {
    // Ten minutes: the last 60 s.
    assert!(!refresh_due(1000, Some(1600), 1539));
    assert!(refresh_due(1000, Some(1600), 1540));
    // An hour: the last tenth.
    assert!(!refresh_due(0, Some(3600), 3239));
    assert!(refresh_due(0, Some(3600), 3240));
    // Twenty seconds: from half-life on, not on every call.
    assert!(!refresh_due(0, Some(20), 9));
    assert!(refresh_due(0, Some(20), 10));
    // Expired, and no expiry at all.
    assert!(refresh_due(0, Some(20), 500));
    assert!(!refresh_due(0, None, u64::MAX));
}

#[test]
fn the_cache_is_private_and_replaced_whole() {
    let home = tempfile::tempdir().unwrap();
    let path = default_path(home.path());
    assert_eq!(read(&path).unwrap(), None);

    let first = cached("first-access", Some("first-refresh"), 10, Some(610));
    write(&path, &first).unwrap();
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(read(&path).unwrap(), Some(first));

    let second = cached("second-access", None, 20, None);
    write(&path, &second).unwrap();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(read(&path).unwrap(), Some(second));
    let names: Vec<String> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["token"], "no temporary file left behind");
}

#[test]
fn tokens_stay_out_of_debug_output_and_errors() {
    let token = cached("access-secret", Some("refresh-secret"), 0, Some(60));
    let debug = format!("{token:?}");
    assert!(!debug.contains("secret"), "{debug}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    fs::write(&path, "{\"access_token\": \"access-secret\" oops").unwrap();
    let err = read(&path).unwrap_err().to_string();
    assert!(err.contains("not a token cache"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn a_refresh_keeps_the_old_refresh_token_when_no_new_one_comes() {
    let old = cached("a", Some("keep-me"), 0, Some(60));
    let tokens = Tokens {
        access_token: Secret::new("b"),
        refresh_token: None,
        expires_in: Some(Duration::from_secs(300)),
        scope: None,
    };
    let fresh = CachedToken::from_tokens("iss", "cli", tokens, 100, Some(&old));
    assert_eq!(fresh.refresh_token, Some(Secret::new("keep-me")));
    assert_eq!((fresh.issued_at, fresh.expires_at), (100, Some(400)));
}

#[tokio::test]
async fn the_provider_prefers_the_file_then_the_environment_then_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token-file");
    fs::write(&file, "from-file\n").unwrap();
    let cache = dir.path().join("cache");
    let now = unix_now();
    write(&cache, &cached("from-cache", None, now, Some(now + 600))).unwrap();
    let http = HttpClient::new;

    let pick = |file: Option<PathBuf>, env: Option<&str>| {
        TokenProvider::choose(file, env.map(str::to_string), Some(cache.clone()), http())
            .unwrap()
            .unwrap()
    };
    let provider = pick(Some(file.clone()), Some("from-env"));
    assert_eq!(provider.source_name(), "--token-file");
    assert_eq!(provider.token().await.unwrap().expose(), "from-file");
    let provider = pick(None, Some(" from-env "));
    assert_eq!(provider.token().await.unwrap().expose(), "from-env");
    let provider = pick(None, Some(""));
    assert_eq!(provider.source_name(), "login cache");
    assert_eq!(provider.token().await.unwrap().expose(), "from-cache");
    assert!(!format!("{provider:?}").contains("from-cache"));

    let nowhere = dir.path().join("no-cache");
    assert!(
        TokenProvider::choose(None, None, Some(nowhere), http())
            .unwrap()
            .is_none()
    );
    let empty = dir.path().join("empty");
    fs::write(&empty, "  \n").unwrap();
    let err = TokenProvider::choose(Some(empty), None, None, http()).unwrap_err();
    assert!(err.to_string().contains("is empty"), "{err}");
}

#[tokio::test]
async fn a_token_file_is_read_again_when_it_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    fs::write(&file, "one").unwrap();
    let provider = TokenProvider::from_file(file.clone()).unwrap();
    assert_eq!(provider.token().await.unwrap().expose(), "one");
    // A different length is noticed even within the clock's resolution.
    fs::write(&file, "second").unwrap();
    assert_eq!(provider.token().await.unwrap().expose(), "second");
}

#[tokio::test]
async fn an_expired_cache_that_cannot_be_refreshed_says_to_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    let now = unix_now();

    // Refresh due but the issuer is unreachable: the still-valid token is used.
    write(
        &path,
        &cached("still-valid", Some("rt"), now - 590, Some(now + 10)),
    )
    .unwrap();
    let provider = TokenProvider::from_cache(path.clone(), HttpClient::new())
        .unwrap()
        .unwrap();
    assert_eq!(provider.token().await.unwrap().expose(), "still-valid");

    for refresh in [None, Some("refresh-secret")] {
        write(
            &path,
            &cached("expired-secret", refresh, now - 700, Some(now - 100)),
        )
        .unwrap();
        let provider = TokenProvider::from_cache(path.clone(), HttpClient::new())
            .unwrap()
            .unwrap();
        let err = provider.token().await.unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, AuthError::NoToken(_)), "{text}");
        assert!(text.contains("log in again"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
}
