//! The detail view's health box: the health message on its own line, then
//! every detail as `key: value`, several to a line where they fit and long
//! values wrapped, so no detail is cut off. [`super::detail`] grows the box
//! (or widens it over the throughput sparkline) until the lines fit.

use ratatui::text::{Line, Span};

use super::{cells, theme};
use crate::view::Tone;

/// The health box's lines for `entries` (the message first) in `width`
/// cells.
pub(crate) fn lines(entries: &[(String, String)], width: u16) -> Vec<Line<'static>> {
    let width = width.max(1);
    let mut out = Vec::new();
    let mut current: Vec<Span<'static>> = Vec::new();
    let mut used = 0u16;
    for (i, (key, value)) in entries.iter().enumerate() {
        let label = format!("{key}: ");
        let size = cells(&label).saturating_add(cells(value));
        let gap = if current.is_empty() { 0 } else { 2 };
        if !current.is_empty() && used.saturating_add(gap + size) > width {
            out.push(Line::from(std::mem::take(&mut current)));
            used = 0;
        }
        if !current.is_empty() {
            current.push(Span::raw("  "));
            used += 2;
        }
        current.push(Span::styled(label.clone(), theme::style(Tone::Dim)));
        used = used.saturating_add(cells(&label));
        let mut rest = value.as_str();
        // A value longer than the line goes on over as many lines as it needs.
        loop {
            if used >= width && !rest.is_empty() {
                out.push(Line::from(std::mem::take(&mut current)));
                used = 0;
            }
            let (head, tail) = split_at_cells(rest, width.saturating_sub(used));
            current.push(Span::raw(head.to_string()));
            used = used.saturating_add(cells(head));
            if tail.is_empty() {
                break;
            }
            out.push(Line::from(std::mem::take(&mut current)));
            used = 0;
            rest = tail;
        }
        // The message is read first and alone.
        if i == 0 {
            out.push(Line::from(std::mem::take(&mut current)));
            used = 0;
        }
    }
    if !current.is_empty() {
        out.push(Line::from(current));
    }
    out
}

/// `text` split after at most `width` cells, after its last space there
/// when it has one, and after one character at least, so wrapping always
/// moves on.
fn split_at_cells(text: &str, width: u16) -> (&str, &str) {
    let mut used = 0u16;
    for (at, ch) in text.char_indices() {
        let size = cells(ch.encode_utf8(&mut [0; 4]));
        if at > 0 && used + size > width {
            let head = &text[..at];
            return match head.rfind(' ') {
                Some(space) if space > 0 => text.split_at(space + 1),
                _ => text.split_at(at),
            };
        }
        used += size;
    }
    (text, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(lines: &[Line]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    fn entries(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn details_share_lines_where_they_fit() {
        let e = entries(&[
            ("message", "ok"),
            ("keys", "12"),
            ("max_keys", "100"),
            ("pool.busy", "3"),
        ]);
        assert_eq!(
            text(&lines(&e, 30)),
            ["message: ok", "keys: 12  max_keys: 100", "pool.busy: 3"]
        );
    }

    #[test]
    fn a_long_word_is_split_where_the_line_ends() {
        let e = entries(&[("address", "redis://127.0.0.1:6379/0")]);
        assert_eq!(
            text(&lines(&e, 16)),
            ["address: redis:/", "/127.0.0.1:6379/", "0"]
        );
    }

    #[test]
    fn a_long_value_wraps_instead_of_being_cut() {
        let e = entries(&[("message", "redis unreachable: connection refused")]);
        let shown = text(&lines(&e, 20));
        assert_eq!(
            shown,
            ["message: redis ", "unreachable: ", "connection refused"]
        );
        assert!(shown.iter().all(|l| cells(l) <= 20));
    }

    #[test]
    fn every_detail_is_on_some_line() {
        let e = entries(&[
            ("message", "ok"),
            ("registry.backend", "redis"),
            ("messaging.backend", "nats"),
            ("registry.identities", "1200"),
            ("messaging.receivers", "950"),
            ("multicasts", "125"),
            ("delivered", "230"),
            ("pending", "12"),
            ("failed", "6"),
        ]);
        for width in [10, 38, 78] {
            let shown = text(&lines(&e, width)).concat();
            for (k, v) in &e {
                assert!(shown.contains(&format!("{k}: ")), "{width}: {shown}");
                assert!(shown.contains(v.as_str()), "{width}: {shown}");
            }
        }
    }
}
