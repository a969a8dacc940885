//! The bottom line: the outcome of the last action (or the filter being
//! typed) on the left, key hints on the right.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::theme;
use crate::view::{StatusView, Tone};

pub(crate) fn render(frame: &mut Frame, area: Rect, status: &StatusView) {
    let hints_width = (status.hints.chars().count() as u16 + 1).min(area.width / 2);
    let [message, hints] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(hints_width)]).areas(area);
    if let Some(cell) = &status.message {
        let line = Line::from(vec![Span::raw(" "), theme::span(cell)]);
        frame.render_widget(Paragraph::new(line), message);
    }
    frame.render_widget(
        Paragraph::new(Span::styled(status.hints.as_str(), theme::style(Tone::Dim)))
            .right_aligned(),
        hints,
    );
}
