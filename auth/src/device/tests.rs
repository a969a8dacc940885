use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use super::*;

fn tokens_named(value: &str) -> Tokens {
    Tokens {
        access_token: Secret::new(value),
        refresh_token: None,
        expires_in: Some(Duration::from_secs(60)),
        scope: None,
    }
}

#[test]
fn each_answer_decides_the_next_step() {
    let now = Instant::now();
    let state = || PollState::new(Duration::from_secs(5), Duration::from_secs(60), now);

    let mut s = state();
    assert!(matches!(
        next_step(&mut s, PollAnswer::Pending, now),
        Step::Wait(d) if d == Duration::from_secs(5)
    ));
    assert!(matches!(
        next_step(&mut s, PollAnswer::SlowDown, now),
        Step::Wait(d) if d == Duration::from_secs(10)
    ));
    // slow_down is remembered for every later poll.
    assert!(matches!(
        next_step(&mut s, PollAnswer::Pending, now),
        Step::Wait(d) if d == Duration::from_secs(10)
    ));
    assert!(matches!(
        next_step(&mut state(), PollAnswer::Tokens(tokens_named("t")), now),
        Step::Done(t) if t.access_token.expose() == "t"
    ));
    assert!(matches!(
        next_step(&mut state(), PollAnswer::Denied, now),
        Step::Fail(LoginFailure::Denied)
    ));
    assert!(matches!(
        next_step(&mut state(), PollAnswer::Expired, now),
        Step::Fail(LoginFailure::Expired)
    ));
    assert!(matches!(
        next_step(&mut state(), PollAnswer::Refused("invalid_client".into()), now),
        Step::Fail(LoginFailure::Refused(code)) if code == "invalid_client"
    ));
    // Pending when the next poll would come after the deadline: give up.
    assert!(matches!(
        next_step(&mut state(), PollAnswer::Pending, now + Duration::from_secs(56)),
        Step::Fail(LoginFailure::TimedOut(t)) if t == Duration::from_secs(60)
    ));
}

type PollTimes = Arc<Mutex<Vec<Duration>>>;

/// A token endpoint that gives the scripted answers in turn and records the
/// (virtual) time of each poll.
fn scripted(
    answers: Vec<PollAnswer>,
) -> (
    PollTimes,
    impl FnMut() -> std::future::Ready<Result<PollAnswer, AuthError>>,
) {
    let start = Instant::now();
    let polls = Arc::new(Mutex::new(Vec::new()));
    let mut answers = VecDeque::from(answers);
    let seen = polls.clone();
    let ask = move || {
        seen.lock().unwrap().push(start.elapsed());
        std::future::ready(Ok(answers.pop_front().unwrap_or(PollAnswer::Pending)))
    };
    (polls, ask)
}

#[tokio::test(start_paused = true)]
async fn polling_honours_the_interval_and_slow_down() {
    let (polls, ask) = scripted(vec![
        PollAnswer::Pending,
        PollAnswer::SlowDown,
        PollAnswer::Pending,
        PollAnswer::Tokens(tokens_named("granted")),
    ]);
    let tokens = poll_until(Duration::from_secs(5), Duration::from_secs(300), ask)
        .await
        .unwrap();
    assert_eq!(tokens.access_token.expose(), "granted");
    let secs: Vec<u64> = polls
        .lock()
        .unwrap()
        .iter()
        .map(Duration::as_secs)
        .collect();
    assert_eq!(secs, [5, 10, 20, 30]);
}

#[tokio::test(start_paused = true)]
async fn polling_stops_at_the_deadline_and_on_refusals() {
    let (polls, ask) = scripted(vec![]);
    let err = poll_until(Duration::from_secs(5), Duration::from_secs(30), ask)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AuthError::Login(LoginFailure::TimedOut(_))),
        "{err}"
    );
    assert_eq!(polls.lock().unwrap().len(), 6, "polls at 5, 10, … 30 s");

    let (_, ask) = scripted(vec![PollAnswer::Pending, PollAnswer::Denied]);
    let err = poll_until(Duration::from_secs(5), Duration::from_secs(300), ask)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "login failed: the login was denied at the issuer"
    );
}

#[test]
fn token_answers_are_read_without_quoting_them() {
    let url = "http://issuer/token";
    let ok = tokens(
        url,
        serde_json::json!({
            "access_token": "a.b.c", "token_type": "Bearer", "expires_in": 600,
            "refresh_token": "r", "scope": "openid",
        }),
    )
    .unwrap();
    assert_eq!(ok.access_token.expose(), "a.b.c");
    assert_eq!(ok.refresh_token.unwrap().expose(), "r");
    assert_eq!(ok.expires_in, Some(Duration::from_secs(600)));

    let no_token = tokens(url, serde_json::json!({ "token_type": "Bearer" })).unwrap_err();
    assert!(
        no_token.to_string().contains("no access_token"),
        "{no_token}"
    );
    let wrong_type = tokens(
        url,
        serde_json::json!({ "access_token": "secret-value", "token_type": "MAC" }),
    )
    .unwrap_err()
    .to_string();
    assert!(wrong_type.contains("not Bearer"), "{wrong_type}");
    assert!(!wrong_type.contains("secret-value"), "{wrong_type}");
}
