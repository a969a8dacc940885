//! Names the process on every log line. A pattern spawned by the proxy is
//! told its namespace (`PRISM_NAMESPACE`); its lines then carry
//! `namespace` and `pid`, as top-level keys of a JSON line or as fields at
//! the end of a text line, so lines from several patterns mixed in one
//! stream (the proxy's stderr, a log shipper) still say whose they are.

use std::{io, sync::Arc};

use tracing_subscriber::fmt::MakeWriter;

use crate::redact::Redacting;

/// What every line of this process is tagged with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tags {
    json: String,
    text: String,
}

impl Tags {
    pub fn new(namespace: &str, pid: u32) -> Self {
        let name = serde_json::Value::from(namespace).to_string();
        Self {
            json: format!("\"namespace\":{name},\"pid\":{pid}"),
            text: format!("namespace={namespace} pid={pid}"),
        }
    }

    /// `line` (one formatted log line, JSON or text) with the tags added.
    pub fn apply(&self, line: &str) -> String {
        if let Some(rest) = line.strip_prefix('{') {
            let sep = if rest.trim_start().starts_with('}') {
                ""
            } else {
                ","
            };
            format!("{{{}{sep}{rest}", self.json)
        } else {
            let (body, end) = match line.strip_suffix('\n') {
                Some(body) => (body, "\n"),
                None => (line, ""),
            };
            format!("{body} {}{end}", self.text)
        }
    }
}

/// Log lines to stderr, tagged (when there are tags), then redacted.
pub struct TaggedStderr(pub Option<Arc<Tags>>);

impl<'a> MakeWriter<'a> for TaggedStderr {
    type Writer = Redacting<Tagging<io::Stderr>>;

    fn make_writer(&'a self) -> Self::Writer {
        Redacting(Tagging {
            tags: self.0.clone(),
            inner: io::stderr(),
        })
    }
}

/// A writer that tags what passes through it (each write is one line).
pub struct Tagging<W> {
    pub tags: Option<Arc<Tags>>,
    pub inner: W,
}

impl<W: io::Write> io::Write for Tagging<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match (&self.tags, std::str::from_utf8(buf)) {
            (Some(tags), Ok(text)) => self.inner.write_all(tags.apply(text).as_bytes())?,
            _ => self.inner.write_all(buf)?,
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_get_top_level_keys() {
        let tags = Tags::new("orders", 42);
        let line = tags.apply("{\"level\":\"INFO\",\"fields\":{\"message\":\"hi\"}}\n");
        assert!(line.ends_with('\n'));
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(json["namespace"], "orders");
        assert_eq!(json["pid"], 42);
        assert_eq!(json["fields"]["message"], "hi");
        assert_eq!(tags.apply("{}"), "{\"namespace\":\"orders\",\"pid\":42}");
    }

    #[test]
    fn namespaces_are_escaped_in_json() {
        let line = Tags::new("a\"b", 1).apply("{\"x\":1}");
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(json["namespace"], "a\"b");
    }

    #[test]
    fn text_lines_end_with_the_fields() {
        let tags = Tags::new("orders", 42);
        assert_eq!(
            tags.apply("2026-11-30T00:00:00Z  INFO prism_memstore: up\n"),
            "2026-11-30T00:00:00Z  INFO prism_memstore: up namespace=orders pid=42\n"
        );
    }

    #[test]
    fn the_writer_tags_only_when_told() {
        use std::io::Write;
        let mut tagged = Tagging {
            tags: Some(Arc::new(Tags::new("n", 1))),
            inner: Vec::new(),
        };
        tagged.write_all(b"line\n").unwrap();
        assert_eq!(tagged.inner, b"line namespace=n pid=1\n");
        let mut plain = Tagging {
            tags: None,
            inner: Vec::new(),
        };
        plain.write_all(b"line\n").unwrap();
        assert_eq!(plain.inner, b"line\n");
    }
}
