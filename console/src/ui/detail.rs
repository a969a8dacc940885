//! The detail view of one namespace: process summary, health message and
//! details, throughput sparkline, latency histogram and its event log.

use ratatui::{
    Frame,
    layout::{Constraint, Layout, Rect},
    text::{Line, Span},
    widgets::{Block, Paragraph},
};

use super::{exemplars, histogram, theme};
use crate::view::{Cell, DetailView, LatencyView, Tone};

/// Rows of the health / throughput band, borders included; less on short
/// terminals so the histogram keeps its height.
const BAND_HEIGHT: u16 = 6;
const BAND_HEIGHT_SHORT: u16 = 4;
const SHORT: u16 = 26;
/// The histogram's minimum: borders, legend, two rows of bars, markers, axis.
const HISTOGRAM_MIN: u16 = 7;

pub(crate) fn render(frame: &mut Frame, area: Rect, detail: &DetailView) {
    let summary_height = detail.summary.len() as u16;
    let band_height = if area.height < SHORT {
        BAND_HEIGHT_SHORT
    } else {
        BAND_HEIGHT
    };
    let rest = area.height.saturating_sub(1 + summary_height + band_height);
    // The histogram gets three fifths of what is left, the event log the rest.
    let histogram_height = (rest * 3 / 5).max(HISTOGRAM_MIN).min(rest);
    let [title, summary, band, latency, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(summary_height),
        Constraint::Length(band_height),
        Constraint::Length(histogram_height),
        Constraint::Fill(1),
    ])
    .areas(area);
    // The trace list takes what it needs, up to half of what is below the
    // histogram; the event log the rest.
    let traces_height = exemplars::height(&detail.exemplars)
        .min(bottom.height / 2)
        .max(3.min(bottom.height));
    let [traces, events] =
        Layout::vertical([Constraint::Length(traces_height), Constraint::Fill(1)]).areas(bottom);
    exemplars::render(frame, traces, &detail.exemplars);

    frame.render_widget(
        Paragraph::new(Span::styled(format!(" {}", detail.title), theme::title())),
        title,
    );
    let lines: Vec<Line> = detail.summary.iter().map(|cells| line(cells)).collect();
    frame.render_widget(Paragraph::new(lines), summary);

    let [health, throughput] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(band);
    let health_lines: Vec<Line> = detail
        .health
        .iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!("{k}: "), theme::style(Tone::Dim)),
                Span::raw(v.as_str()),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(health_lines).block(boxed("health")), health);

    match &detail.latency {
        LatencyView::Ready {
            histogram: h,
            throughput: t,
        } => {
            histogram::render_throughput(frame, throughput, t);
            histogram::render(frame, latency, h);
        }
        LatencyView::Loading => {
            note(frame, throughput, "throughput", "loading…");
            note(frame, latency, "latency", "loading…");
        }
        LatencyView::NotAvailable(why) => {
            note(frame, throughput, "throughput", "n/a");
            note(frame, latency, "latency", why);
        }
    }

    let mut event_lines: Vec<Line> = Vec::new();
    if let Some(why) = &detail.events_note {
        event_lines.push(Line::styled(why.as_str(), theme::style(Tone::Dim)));
    } else if detail.events.is_empty() {
        event_lines.push(Line::styled("no events yet", theme::style(Tone::Dim)));
    }
    for e in &detail.events {
        event_lines.push(Line::from(vec![
            Span::styled(format!("{:>8}  ", e.age), theme::style(Tone::Dim)),
            Span::styled(format!("{:<19} ", e.kind.text), theme::style(e.kind.tone)),
            Span::raw(format!("{:<10} ", e.pid)),
            Span::raw(e.reason.as_str()),
        ]));
    }
    frame.render_widget(Paragraph::new(event_lines).block(boxed("events")), events);
}

fn line(cells: &[Cell]) -> Line<'_> {
    let mut spans = vec![Span::raw(" ")];
    spans.extend(cells.iter().map(theme::span));
    Line::from(spans)
}

fn boxed(title: &str) -> Block<'_> {
    Block::bordered()
        .border_style(theme::border())
        .title(Span::styled(format!(" {title} "), theme::title()))
}

fn note(frame: &mut Frame, area: Rect, title: &str, text: &str) {
    frame.render_widget(
        Paragraph::new(Span::styled(text, theme::style(Tone::Dim))).block(boxed(title)),
        area,
    );
}
