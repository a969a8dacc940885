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
        let line = Line::from(vec![Span::raw(" "), theme::span(cell)]);
        frame.render_widget(Paragraph::new(line), message);
    }
    frame.render_widget(
        Paragraph::new(Span::styled(hints, theme::style(Tone::Dim))).right_aligned(),
        hints_area,
    );
}

/// The fullest hints that fit beside the message on a line `width` wide.
pub(crate) fn hints_for(status: &StatusView, width: u16) -> &str {
    // The message is drawn after a leading space.
    let message = status.message.as_ref().map_or(0, |m| cells(&m.text) + 1);
    fitting(&status.hints, width.saturating_sub(message + 1))
}
