//! Pure render functions: a [`View`] in, a frame out. Layout only — every
//! figure and colour was decided in [`crate::view`].
//!
//! Modules: [`header`], [`table`], [`detail`], [`exemplars`] (the detail
//! view's trace list), [`histogram`], [`logs`] (the log view), [`status`],
//! [`overlay`] (help and confirm dialog), [`theme`] (colours).

pub(crate) mod detail;
pub(crate) mod exemplars;
pub(crate) mod header;
pub(crate) mod health;
pub(crate) mod histogram;
pub(crate) mod logs;
pub(crate) mod overlay;
pub(crate) mod status;
pub(crate) mod table;
pub(crate) mod theme;

use ratatui::{
    Frame,
    layout::{Constraint, Layout},
    text::Span,
};

use crate::view::{Body, View};

pub(crate) fn render(frame: &mut Frame, view: &View) {
    let [header_area, body_area, status_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    header::render(frame, header_area, &view.header);
    match &view.body {
        Body::Table(table) => table::render(frame, body_area, table),
        Body::Detail(detail) => detail::render(frame, body_area, detail),
        Body::Logs(view) => logs::render(frame, body_area, view),
    }
    status::render(frame, status_area, &view.status);
    if let Some(overlay) = &view.overlay {
        overlay::render(frame, body_area, overlay);
    }
}

/// The first of `variants` (fullest first) that fits in `width` cells, else
/// the last, the shortest, which the renderer then cuts.
pub(crate) fn fitting(variants: &[String], width: u16) -> &str {
    variants
        .iter()
        .find(|v| cells(v) <= width)
        .or(variants.last())
        .map_or("", String::as_str)
}

/// How many cells `text` takes on screen.
pub(crate) fn cells(text: &str) -> u16 {
    u16::try_from(Span::raw(text).width()).unwrap_or(u16::MAX)
}

#[cfg(test)]
mod narrow;
#[cfg(test)]
mod screens;
#[cfg(test)]
mod tests;
