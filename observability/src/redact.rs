//! Keeps credentials out of every log line: the log writer passes each
//! formatted line through [`redact`] before it reaches stderr. Prism's own
//! code never logs a secret, but the clients it embeds do at debug and
//! trace level (async-nats prints its `ConnectInfo` with `pass: Some(…)`,
//! and server addresses as URLs that may carry `user:password@`), and a
//! line can quote a config or URL an operator wrote. Redacting the text is
//! the one place that catches all of them, whatever `RUST_LOG` says.

use std::{borrow::Cow, io};

use tracing_subscriber::fmt::MakeWriter;

/// What a secret is replaced with.
pub const REDACTED: &str = "***";

/// Field names whose value is a secret, as they appear in `Debug` output
/// (`pass: Some("…")`), tracing fields (`password=…`) and JSON
/// (`"auth_token":"…"`). Matched without regard to case.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "pass",
    "passwd",
    "auth_token",
    "token",
    "user_jwt",
    "jwt",
    "signature",
    "secret",
    "credentials",
    "creds",
    "authorization",
    "access_token",
    "refresh_token",
    "id_token",
];

/// `line` with every secret replaced by [`REDACTED`]: the user-info part of
/// URLs (`nats://user:pw@host` → `nats://***@host`) and the values of
/// [`SECRET_FIELDS`].
pub fn redact(line: &str) -> Cow<'_, str> {
    let lower = line.to_ascii_lowercase();
    let suspicious = lower.contains("://")
        || lower.contains("bearer ")
        || line.contains("eyJ")
        || SECRET_FIELDS.iter().any(|field| lower.contains(field));
    if !suspicious {
        return Cow::Borrowed(line);
    }
    let mut out = redact_jwts(&redact_urls(line));
    for field in SECRET_FIELDS {
        out = redact_field(&out, field);
    }
    Cow::Owned(out)
}

/// Replaces every JSON Web Token (`eyJ…` header, then `.`-separated
/// base64url parts) and every word after `Bearer `, wherever they appear.
fn redact_jwts(line: &str) -> String {
    let token_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=');
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    loop {
        let jwt = rest.find("eyJ");
        let bearer = rest
            .to_ascii_lowercase()
            .find("bearer ")
            .map(|at| at + "bearer ".len());
        let start = match (jwt, bearer) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => break,
        };
        let len = rest[start..]
            .find(|c: char| !token_char(c))
            .unwrap_or(rest.len() - start);
        out.push_str(&rest[..start]);
        if len == 0 {
            // `Bearer ` followed by no token character: nothing to hide.
            let next = rest[start..].chars().next().map_or(0, char::len_utf8);
            out.push_str(&rest[start..start + next]);
            rest = &rest[start + next..];
            if next == 0 {
                break;
            }
            continue;
        }
        // A JWT has two dots; after `Bearer ` any word is a credential.
        let word = &rest[start..start + len];
        if Some(start) == bearer || word.matches('.').count() >= 2 {
            out.push_str(REDACTED);
        } else {
            out.push_str(word);
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// Replaces the user info of every `scheme://user-info@host`.
fn redact_urls(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        // The authority ends at the first `/`, `?`, `#`, quote or space.
        let end = tail
            .find(|c: char| {
                matches!(
                    c,
                    '/' | '?' | '#' | '"' | '\'' | ' ' | ',' | ')' | ']' | '}' | '\\'
                )
            })
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(user_end) => {
                out.push_str(REDACTED);
                out.push_str(&authority[user_end..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces the value after `field` when it is followed by `:`, `=` or
/// `":` (with `Some(` allowed around the value).
fn redact_field(line: &str, field: &str) -> String {
    let lower = line.to_ascii_lowercase();
    let mut out = String::with_capacity(line.len());
    let mut copied = 0;
    let mut from = 0;
    while let Some(found) = lower[from..].find(field) {
        let start = from + found;
        let name_end = start + field.len();
        from = name_end;
        // A whole word: `pass` must not match inside `bypass` or `passes`.
        let before = char_before(line, start);
        let after = line[name_end..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        if word(before) || word(after) {
            continue;
        }
        let Some(value) = value_span(line, name_end) else {
            continue;
        };
        out.push_str(&line[copied..value.0]);
        out.push_str(REDACTED);
        copied = value.1;
        from = value.1;
    }
    out.push_str(&line[copied..]);
    out
}

/// Where the value after a field name at `at` lies: after an optional
/// closing quote, `:` or `=`, spaces and `Some(`, either a quoted string
/// (escapes honoured) or a bare word up to a space, comma or bracket.
fn value_span(line: &str, at: usize) -> Option<(usize, usize)> {
    let bytes = line.as_bytes();
    let mut i = skip_ansi(bytes, at);
    if bytes.get(i) == Some(&b'"') {
        i += 1;
    }
    if !matches!(bytes.get(i), Some(b':' | b'=')) {
        return None;
    }
    i = skip_ansi(bytes, i + 1);
    while bytes.get(i) == Some(&b' ') {
        i += 1;
    }
    if line[i..].starts_with("Some(") {
        i += "Some(".len();
    }
    if line[i..].starts_with("None") || line[i..].starts_with("null") {
        return None;
    }
    let start = i;
    if bytes.get(i) == Some(&b'"') {
        i += 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return Some((start, i + 1)),
                _ => i += 1,
            }
        }
        return Some((start, bytes.len()));
    }
    while i < bytes.len() && !matches!(bytes[i], b' ' | b',' | b')' | b'}' | b']' | b'\n') {
        i += 1;
    }
    (i > start).then_some((start, i))
}

/// The character before `at`, looking past terminal colour codes.
fn char_before(line: &str, at: usize) -> Option<char> {
    let mut head = &line[..at];
    while let Some(esc) = head.rfind("\x1b[") {
        let code = &head[esc + 2..];
        if !(code.ends_with('m')
            && code[..code.len() - 1]
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b';'))
        {
            break;
        }
        head = &head[..esc];
    }
    head.chars().next_back()
}

/// Skips terminal colour codes (`ESC [ … m`), which a coloured log puts
/// between a field's name, its `=` and its value.
fn skip_ansi(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i) == Some(&0x1b) && bytes.get(i + 1) == Some(&b'[') {
        match bytes[i..].iter().position(|b| *b == b'm') {
            Some(end) => i += end + 1,
            None => return i,
        }
    }
    i
}

/// Writes formatted log lines to stderr through [`redact`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RedactingStderr;

impl<'a> MakeWriter<'a> for RedactingStderr {
    type Writer = Redacting<io::Stderr>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting(io::stderr())
    }
}

/// A writer that redacts what passes through it. The log formatter hands
/// over each line whole, so a secret is never split across two writes.
pub struct Redacting<W>(pub W);

impl<W: io::Write> io::Write for Redacting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match std::str::from_utf8(buf) {
            Ok(text) => self.0.write_all(redact(text).as_bytes())?,
            Err(_) => self.0.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_without_secrets_are_untouched() {
        let line = "INFO prism_proxy: namespace started namespace=orders bypass=1 passes=2";
        assert_eq!(redact(line), line);
    }

    #[test]
    fn connect_info_as_async_nats_prints_it() {
        let line = r#"TRACE async_nats::connection: write op=Connect(ConnectInfo { verbose: false, user_jwt: Some("eyJ0.x"), user: Some("U"), pass: Some("s3cr\"et"), auth_token: Some("tok"), headers: true })"#;
        let out = redact(line);
        for secret in ["s3cr", "eyJ0", "tok\""] {
            assert!(!out.contains(secret), "{out}");
        }
        assert!(out.contains(r#"user: Some("U")"#), "user names stay: {out}");
        assert!(out.contains("pass: Some(***)"), "{out}");
    }

    #[test]
    fn urls_lose_their_user_info() {
        for (line, expect) in [
            (
                "server=nats://alice:hunter2@127.0.0.1:4222 ok",
                "server=nats://***@127.0.0.1:4222 ok",
            ),
            (
                r#"addr=Some("redis://:pw@localhost:6379/0")"#,
                r#"addr=Some("redis://***@localhost:6379/0")"#,
            ),
            ("url=nats://TOKEN@host", "url=nats://***@host"),
            ("see https://example.org/a@b", "see https://example.org/a@b"),
        ] {
            assert_eq!(redact(line), expect);
        }
    }

    #[test]
    fn fields_in_every_format() {
        for (line, secret) in [
            ("password=hunter2 next=1", "hunter2"),
            (
                "token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln in a sentence",
                "eyJhbGciOiJFUzI1NiJ9",
            ),
            ("authorization: Bearer abc.def", "abc.def"),
            ("headers: {\"authorization\": \"Bearer s3cret\"}", "s3cret"),
            (
                r#"{"access_token":"opaque-1","refresh_token":"opaque-2"}"#,
                "opaque-",
            ),
            (r#"{"fields":{"password":"hunter2"}}"#, "hunter2"),
            (r#"config={"token": "abc123"}"#, "abc123"),
            ("Token: abc123", "abc123"),
        ] {
            let out = redact(line);
            assert!(!out.contains(secret), "{line} → {out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        assert_eq!(redact("password: None"), "password: None");
        let coloured = "\x1b[3mpassword\x1b[0m\x1b[2m=\x1b[0mhunter2 x=1";
        assert!(
            !redact(coloured).contains("hunter2"),
            "{}",
            redact(coloured)
        );
    }

    #[test]
    fn the_writer_redacts_each_line() {
        use std::io::Write;
        let mut writer = Redacting(Vec::new());
        writer.write_all(b"pass=topsecret\n").unwrap();
        assert_eq!(String::from_utf8(writer.0).unwrap(), "pass=***\n");
    }
}
