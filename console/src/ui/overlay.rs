//! Pop-ups drawn over the body: the help listing every key binding, and the
//! y/n dialog in front of restart and reload.

use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    style::{Color, Style},
    text::{Line, Span},
    widgets::{Block, Clear, Paragraph, Wrap},
};

use super::theme;
use crate::view::{Overlay, Tone};

pub(crate) fn render(frame: &mut Frame, area: Rect, overlay: &Overlay) {
    match overlay {
        Overlay::Help(bindings) => {
            let key_width = bindings
                .iter()
                .map(|(k, _)| k.chars().count())
                .max()
                .unwrap_or(0);
            let lines: Vec<Line> = bindings
                .iter()
                .map(|(key, what)| {
                    Line::from(vec![
                        Span::styled(format!(" {key:key_width$}  "), theme::style(Tone::Accent)),
                        Span::raw(what.as_str()),
                    ])
                })
                .collect();
            let popup = centered(area, 76, lines.len() as u16 + 2);
            let block = Block::bordered()
                .border_style(theme::style(Tone::Accent))
                .title(Span::styled(" keys ", theme::title()));
            frame.render_widget(Clear, popup);
            frame.render_widget(Paragraph::new(lines).block(block), popup);
        }
        Overlay::Confirm { title, lines } => {
            let text: Vec<Line> = lines.iter().map(|l| Line::raw(l.as_str())).collect();
            let popup = centered(area, 60, text.len() as u16 + 4);
            let block = Block::bordered()
                .border_style(Style::new().fg(Color::Yellow))
                .title(Span::styled(format!(" {title} "), theme::title()));
            frame.render_widget(Clear, popup);
            frame.render_widget(
                Paragraph::new(text)
                    .wrap(Wrap { trim: true })
                    .block(block.padding(ratatui::widgets::Padding::horizontal(1))),
                popup,
            );
        }
    }
}

/// A `width` × `height` rectangle in the middle of `area`, shrunk to fit.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    area.centered(
        Constraint::Length(width.min(area.width)),
        Constraint::Length(height.min(area.height)),
    )
}
