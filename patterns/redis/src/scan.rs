//! Prefix scans as pages of at most `limit` keys on top of Redis `SCAN`.
//!
//! `SCAN cursor MATCH <prefix>* COUNT n` returns a *batch*: however many
//! matching keys lie in the hash-table buckets it visited (`COUNT` is a hint,
//! not a cap), and the cursor where the next batch starts. A page is built
//! from whole batches while they fit. When a batch holds more keys than the
//! page has room for, its keys are sorted, the page takes the first ones,
//! and the API cursor records the batch (start cursor, end cursor, `COUNT`)
//! and the last key handed out. The next call runs that same `SCAN` again
//! and, if it still ends at the same cursor, skips the keys up to and
//! including that key. A Redis cursor stands for a position in the hash
//! space, so equal start and end cursors mean the batch covered the same
//! keys: nothing is repeated or missed on a stable keyspace. If the end
//! cursor moved (the keyspace changed), the whole batch is returned again:
//! as with `SCAN` itself, a key present throughout is returned at least once.
//!
//! API cursors, opaque to clients:
//! - `""` (or `"0"`): the first page;
//! - `"<cursor>"`: the next page starts at that Redis cursor;
//! - `"<start>:<end>:<count>:<hex of the last key>"`: inside a batch (the
//!   key as `prism_proto::cursor` writes it for every backend).
//!
//! An empty `next_cursor` means the scan is complete.

use std::future::Future;

use prism_proto::{FieldError, cursor};

/// Pages built from more batches than this end early with a cursor, so a
/// sparse prefix in a large keyspace cannot hold one call for long.
pub(crate) const MAX_BATCHES_PER_PAGE: usize = 32;
/// The smallest `COUNT` hint sent, so small pages still move quickly through
/// keyspaces where few keys match.
pub(crate) const MIN_COUNT: usize = 100;
/// The largest `COUNT` a cursor may carry: one `SCAN` call blocks Redis for
/// as long as it takes, so a forged cursor must not ask for millions.
pub(crate) const MAX_COUNT: usize = 10_000;

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cursor {
    Start,
    /// At a batch boundary: the next batch starts at this Redis cursor.
    At(u64),
    /// Inside a batch: rerun `SCAN start COUNT count`; if it ends at `end`,
    /// skip keys up to and including `after`.
    Within {
        start: u64,
        end: u64,
        count: usize,
        after: String,
    },
}

impl Cursor {
    /// Parses an API cursor; anything this server did not issue is refused,
    /// naming `cursor`.
    pub(crate) fn parse(text: &str, max_key_bytes: usize) -> Result<Self, FieldError> {
        let invalid = cursor::invalid;
        if text.is_empty() {
            return Ok(Self::Start);
        }
        let mut parts = text.splitn(4, ':');
        let start: u64 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(invalid)?;
        let Some(end) = parts.next() else {
            return Ok(if start == 0 {
                Self::Start
            } else {
                Self::At(start)
            });
        };
        let end: u64 = end.parse().map_err(|_| invalid())?;
        let count: usize = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|c| (1..=MAX_COUNT).contains(c))
            .ok_or_else(invalid)?;
        let after = cursor::decode_key(parts.next().ok_or_else(invalid)?, max_key_bytes)?;
        Ok(Self::Within {
            start,
            end,
            count,
            after,
        })
    }

    /// The API form; [`Cursor::Start`] is `""`.
    pub(crate) fn encode(&self) -> String {
        match self {
            Self::Start => String::new(),
            Self::At(cursor) => cursor.to_string(),
            Self::Within {
                start,
                end,
                count,
                after,
            } => format!("{start}:{end}:{count}:{}", cursor::encode_key(after)),
        }
    }
}

/// The `MATCH` pattern for keys starting with `prefix`: glob metacharacters
/// in the prefix are escaped so they match only themselves.
pub(crate) fn match_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('*');
    pattern
}

/// One page of keys and where the next one starts (`None`: done).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Page {
    pub keys: Vec<String>,
    pub next: Option<Cursor>,
}

/// Builds one page of at most `limit` (≥ 1) keys starting with `prefix`
/// from `cursor`. `scan(cursor, count)` runs one `SCAN` and returns the next
/// Redis cursor and the batch of keys (filtered by the match pattern).
pub(crate) async fn page<E, F, Fut>(
    prefix: &str,
    cursor: Cursor,
    limit: usize,
    mut scan: F,
) -> Result<Page, E>
where
    F: FnMut(u64, usize) -> Fut,
    Fut: Future<Output = Result<(u64, Vec<String>), E>>,
{
    let fresh_count = limit.clamp(MIN_COUNT, MAX_COUNT);
    let (mut at, mut count, mut resume) = match cursor {
        Cursor::Start => (0, fresh_count, None),
        Cursor::At(at) => (at, fresh_count, None),
        Cursor::Within {
            start,
            end,
            count,
            after,
        } => (start, count, Some((end, after))),
    };
    let mut keys: Vec<String> = Vec::new();
    for _ in 0..MAX_BATCHES_PER_PAGE {
        let (next, mut batch) = scan(at, count).await?;
        batch.retain(|k| k.starts_with(prefix));
        batch.sort_unstable();
        batch.dedup();
        if let Some((end, after)) = resume.take()
            && next == end
        {
            batch.retain(|k| *k > after);
        }
        let room = limit - keys.len();
        if batch.len() > room {
            batch.truncate(room);
            let after = batch.last().cloned().unwrap_or_default();
            keys.append(&mut batch);
            let next = Cursor::Within {
                start: at,
                end: next,
                count,
                after,
            };
            return Ok(Page {
                keys,
                next: Some(next),
            });
        }
        keys.append(&mut batch);
        if next == 0 {
            return Ok(Page { keys, next: None });
        }
        if keys.len() == limit {
            return Ok(Page {
                keys,
                next: Some(Cursor::At(next)),
            });
        }
        at = next;
        count = fresh_count;
    }
    Ok(Page {
        keys,
        next: Some(Cursor::At(at)),
    })
}

#[cfg(test)]
mod tests {
    use std::{collections::HashSet, convert::Infallible};

    use super::*;

    /// A stand-in for Redis: keys live in "buckets" visited in order; a
    /// batch covers buckets from `cursor` until it holds at least `count`
    /// keys, so batches are often larger than `count`, like the real thing.
    struct FakeRedis {
        buckets: Vec<Vec<String>>,
    }

    impl FakeRedis {
        fn new(keys: &[String], bucket_size: usize) -> Self {
            Self {
                buckets: keys.chunks(bucket_size).map(<[String]>::to_vec).collect(),
            }
        }

        fn scan(&self, cursor: u64, count: usize, pattern: &str) -> (u64, Vec<String>) {
            let prefix = pattern.strip_suffix('*').unwrap().replace('\\', "");
            let mut i = cursor as usize;
            let mut batch = Vec::new();
            while i < self.buckets.len() && batch.len() < count {
                batch.extend(self.buckets[i].iter().cloned());
                i += 1;
            }
            batch.retain(|k: &String| k.starts_with(&prefix));
            batch.reverse(); // Redis does not sort; neither does this.
            let next = if i >= self.buckets.len() { 0 } else { i as u64 };
            (next, batch)
        }
    }

    async fn scan_all(redis: &FakeRedis, prefix: &str, limit: usize) -> Vec<Vec<String>> {
        let pattern = match_pattern(prefix);
        let mut pages = Vec::new();
        let mut cursor = Cursor::Start;
        loop {
            // Round-trip the cursor through its API form, as a client would.
            let page = page(prefix, cursor, limit, |c, n| {
                let batch = redis.scan(c, n, &pattern);
                async move { Ok::<_, Infallible>(batch) }
            })
            .await
            .unwrap();
            assert!(page.keys.len() <= limit, "page over the limit");
            pages.push(page.keys);
            match page.next {
                None => return pages,
                Some(next) => cursor = Cursor::parse(&next.encode(), 4096).unwrap(),
            }
            assert!(pages.len() < 100_000, "scan does not terminate");
        }
    }

    fn keys(n: usize, prefix: &str) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i:04}")).collect()
    }

    #[tokio::test]
    async fn pages_never_repeat_or_miss_whatever_the_batch_sizes() {
        let mut all = keys(37, "item:");
        all.extend(keys(20, "other:"));
        // Interleave so batches mix matching and other keys.
        all.sort_by_key(|k| k.chars().rev().collect::<String>());
        for bucket_size in [1, 3, 50, 200] {
            let redis = FakeRedis::new(&all, bucket_size);
            for limit in [1, 2, 5, 36, 37, 38, 1000] {
                let pages = scan_all(&redis, "item:", limit).await;
                let seen: Vec<String> = pages.concat();
                let unique: HashSet<&String> = seen.iter().collect();
                assert_eq!(seen.len(), unique.len(), "repeat at {bucket_size}/{limit}");
                assert_eq!(unique.len(), 37, "missed at {bucket_size}/{limit}");
                assert!(seen.iter().all(|k| k.starts_with("item:")));
            }
        }
    }

    #[tokio::test]
    async fn a_batch_larger_than_the_page_is_split_with_a_within_cursor() {
        let redis = FakeRedis::new(&keys(10, "k"), 100);
        let page = page("k", Cursor::Start, 4, |c, n| {
            let batch = redis.scan(c, n, "k*");
            async move { Ok::<_, Infallible>(batch) }
        })
        .await
        .unwrap();
        assert_eq!(page.keys, ["k0000", "k0001", "k0002", "k0003"]);
        assert_eq!(
            page.next,
            Some(Cursor::Within {
                start: 0,
                end: 0,
                count: MIN_COUNT,
                after: "k0003".into()
            })
        );
    }

    #[tokio::test]
    async fn a_changed_batch_is_returned_whole_rather_than_skipped() {
        // The batch now ends elsewhere: skipping by key could miss keys.
        let cursor = Cursor::Within {
            start: 0,
            end: 7,
            count: 100,
            after: "b".into(),
        };
        let page = page("", cursor, 10, |_, _| async {
            Ok::<_, Infallible>((0, vec!["c".into(), "a".into(), "b".into()]))
        })
        .await
        .unwrap();
        assert_eq!(page.keys, ["a", "b", "c"]);
        assert_eq!(page.next, None);
    }

    #[tokio::test]
    async fn sparse_keyspaces_end_a_page_early_with_a_cursor() {
        let mut calls = 0;
        let page = page("x", Cursor::Start, 10, |c, _| {
            calls += 1;
            async move { Ok::<_, Infallible>((c + 1, Vec::new())) }
        })
        .await
        .unwrap();
        assert_eq!(calls, MAX_BATCHES_PER_PAGE);
        assert!(page.keys.is_empty());
        assert_eq!(page.next, Some(Cursor::At(MAX_BATCHES_PER_PAGE as u64)));
    }

    #[tokio::test]
    async fn errors_pass_through() {
        let result = page("", Cursor::Start, 10, |_, _| async {
            Err::<(u64, _), _>("down")
        })
        .await;
        assert_eq!(result.unwrap_err(), "down");
    }

    #[test]
    fn cursors_round_trip() {
        for cursor in [
            Cursor::At(17),
            Cursor::Within {
                start: 0,
                end: 12,
                count: 100,
                after: "ключ:🔑 with:colons".into(),
            },
        ] {
            assert_eq!(Cursor::parse(&cursor.encode(), 4096).unwrap(), cursor);
        }
        assert_eq!(Cursor::Start.encode(), "");
        assert_eq!(Cursor::parse("", 10).unwrap(), Cursor::Start);
        assert_eq!(Cursor::parse("0", 10).unwrap(), Cursor::Start);
    }

    #[test]
    fn forged_cursors_are_invalid_argument() {
        for text in [
            "x",
            "-1",
            "1:",
            "1:2",
            "1:2:3",
            "1:2:0:61",
            "1:2:10001:61",
            "1:2:3:6",
            "1:2:3:zz",
            "1:2:3:ff",
            "1:2:3:616161",
        ] {
            let err = Cursor::parse(text, 2).unwrap_err();
            assert_eq!(err.field, "cursor", "{text}");
        }
    }

    fn any_cursor() -> impl proptest::strategy::Strategy<Value = Cursor> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Cursor::Start),
            (1..u64::MAX).prop_map(Cursor::At),
            (any::<u64>(), any::<u64>(), 1..=MAX_COUNT, ".{0,32}").prop_map(
                |(start, end, count, after)| Cursor::Within {
                    start,
                    end,
                    count,
                    after,
                }
            ),
        ]
    }

    proptest::proptest! {
        #[test]
        fn issued_cursors_round_trip(cursor in any_cursor()) {
            proptest::prop_assert_eq!(Cursor::parse(&cursor.encode(), 4096).unwrap(), cursor);
        }

        #[test]
        fn any_text_parses_or_is_refused_naming_the_cursor(
            text in proptest::prelude::any::<String>()
        ) {
            match Cursor::parse(&text, 64) {
                // What parses is a cursor this server could have issued.
                Ok(cursor) => proptest::prop_assert_eq!(
                    Cursor::parse(&cursor.encode(), 64).unwrap(),
                    cursor
                ),
                Err(err) => proptest::prop_assert_eq!(err.field.as_str(), "cursor"),
            }
        }

        #[test]
        fn digit_and_colon_soup_never_panics(text in "[0-9a-f:]{0,60}") {
            let _ = Cursor::parse(&text, 8);
        }
    }

    #[test]
    fn glob_characters_in_the_prefix_are_escaped() {
        assert_eq!(match_pattern(""), "*");
        assert_eq!(match_pattern("user:"), "user:*");
        assert_eq!(match_pattern(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f*");
        assert_eq!(match_pattern("日本"), "日本*");
    }
}
