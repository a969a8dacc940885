//! Pure render functions: a [`View`] in, a frame out. Layout only — every
//! figure and colour was decided in [`crate::view`].
//!
//! Modules: [`header`], [`table`], [`detail`], [`histogram`], [`status`],
//! [`overlay`] (help and confirm dialog), [`theme`] (colours).

pub(crate) mod detail;
pub(crate) mod header;
pub(crate) mod histogram;
pub(crate) mod overlay;
pub(crate) mod status;
pub(crate) mod table;
pub(crate) mod theme;

use ratatui::{
    Frame,
    layout::{Constraint, Layout},
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
    }
    status::render(frame, status_area, &view.status);
    if let Some(overlay) = &view.overlay {
        overlay::render(frame, body_area, overlay);
    }
}

#[cfg(test)]
mod screens;
#[cfg(test)]
mod tests;
