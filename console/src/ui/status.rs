//! The bottom line: the outcome of the last action (or the filter being
//! typed) on the left, key hints on the right. The message is read first,
//! so it keeps its room and the hints shrink to what is left.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{cells, fitting, theme};
use crate::view::{StatusView, Tone};

pub(crate) fn render(frame: &mut Frame, area: Rect, status: &StatusView) {
    let hints = hints_for(status, area.width);
    // One cell of gap between the message and the hints.
    let hints_width = (cells(hints) + 1).min(area.width);
    let [message, hints_area] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(hints_width)]).areas(area);
    if let Some(cell) = &status.message {
        // A message longer than its room ends in `…`, a cell before the
        // hints, rather than running into them cut mid-word.
        let room = message.width.saturating_sub(1);
        let text = if cells(&cell.text) > room {
            shorten(&cell.text, room)
        } else {
            cell.text.clone()
        };
        let line = Line::from(vec![
            Span::raw(" "),
            Span::styled(text, theme::style(cell.tone)),
        ]);
        frame.render_widget(Paragraph::new(line), message);
    }
    frame.render_widget(
        Paragraph::new(Span::styled(hints, theme::style(Tone::Dim))).right_aligned(),
        hints_area,
    );
}

/// `text` cut to `width` cells, its last one `…`.
fn shorten(text: &str, width: u16) -> String {
    let mut out = String::new();
    let mut used = 0u16;
    for ch in text.chars() {
        let size = cells(ch.encode_utf8(&mut [0; 4]));
        if used + size + 1 > width {
            break;
        }
        used += size;
        out.push(ch);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// The fullest hints that fit beside the message on a line `width` wide.
pub(crate) fn hints_for(status: &StatusView, width: u16) -> &str {
    // The message is drawn after a leading space.
    let message = status.message.as_ref().map_or(0, |m| cells(&m.text) + 1);
    fitting(&status.hints, width.saturating_sub(message + 1))
}
