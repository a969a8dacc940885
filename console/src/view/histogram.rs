//! The detail view's latency histogram and throughput sparkline, derived
//! from one `GetLatency` answer: which bucket holds each quantile, the
//! legend, the axis labels.

use super::{Cell, Tone, format};
use crate::model::{Bucket, Latency};

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramView {
    pub title: String,
    /// `p50 512µs  p90 2.0ms  p99 8.1ms  max 12ms`, each in its marker's tone.
    pub legend: Vec<Cell>,
    pub bars: Vec<HistogramBar>,
    /// Under the bars, left to right.
    pub markers: Vec<Marker>,
    /// Upper bounds of the first and last bucket.
    pub axis: (String, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HistogramBar {
    pub count: u64,
    pub tone: Tone,
}

/// Points at the bucket that holds one or more quantiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Marker {
    pub bucket: usize,
    /// e.g. `p99` or `p99/max` when both fall in the same bucket.
    pub label: String,
    pub tone: Tone,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ThroughputView {
    pub title: String,
    /// Requests per second, oldest first.
    pub history: Vec<u64>,
}

pub(crate) fn histogram(latency: &Latency) -> HistogramView {
    let operation = if latency.operation.is_empty() {
        "all operations"
    } else {
        latency.operation.as_str()
    };
    let title = format!(
        "latency · {operation} · {} req in {}s · mean {}",
        latency.count,
        latency.window_seconds,
        format::micros(latency.mean_us.round() as u64)
    );
    let quantiles = [
        ("p50", latency.p50_us, Tone::Good),
        ("p90", latency.p90_us, Tone::Warn),
        ("p99", latency.p99_us, Tone::Bad),
        ("max", latency.max_us, Tone::Accent),
    ];
    // Quantiles of an empty window are no figures.
    let legend = quantiles
        .iter()
        .filter(|_| latency.count > 0)
        .map(|(name, us, tone)| Cell::new(format!("{name} {}", format::micros(*us)), *tone))
        .collect();

    let mut markers: Vec<Marker> = Vec::new();
    for (name, us, tone) in quantiles {
        let Some(bucket) = bucket_of(&latency.buckets, us) else {
            continue;
        };
        match markers.iter_mut().find(|m| m.bucket == bucket) {
            Some(marker) => {
                marker.label.push('/');
                marker.label.push_str(name);
            }
            None => markers.push(Marker {
                bucket,
                label: name.to_string(),
                tone,
            }),
        }
    }
    markers.sort_by_key(|m| m.bucket);

    let bars = latency
        .buckets
        .iter()
        .enumerate()
        .map(|(i, b)| HistogramBar {
            count: b.count,
            tone: markers
                .iter()
                .find(|m| m.bucket == i)
                .map_or(Tone::Bar, |m| m.tone),
        })
        .collect();
    let bound = |b: Option<&Bucket>| {
        b.map(|b| format!("≤{}", format::micros(b.upper_bound_us)))
            .unwrap_or_default()
    };
    HistogramView {
        title,
        legend,
        bars,
        markers,
        axis: (
            bound(latency.buckets.first()),
            bound(latency.buckets.last()),
        ),
    }
}

pub(crate) fn throughput(latency: &Latency) -> ThroughputView {
    let peak = latency
        .rps_history
        .iter()
        .max()
        .copied()
        .unwrap_or_default();
    ThroughputView {
        title: format!("throughput {} rps · peak {peak}", format::rps(latency.rps)),
        history: latency.rps_history.clone(),
    }
}

/// The bucket whose range holds `us`: the first with an upper bound at or
/// above it (buckets are sorted); values past the last bound go there.
/// `None` when there are no buckets or no data.
pub(crate) fn bucket_of(buckets: &[Bucket], us: u64) -> Option<usize> {
    if buckets.iter().all(|b| b.count == 0) {
        return None;
    }
    buckets
        .iter()
        .position(|b| us <= b.upper_bound_us)
        .or(Some(buckets.len() - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(bounds_counts: &[(u64, u64)]) -> Vec<Bucket> {
        bounds_counts
            .iter()
            .map(|&(upper_bound_us, count)| Bucket {
                upper_bound_us,
                count,
            })
            .collect()
    }

    #[test]
    fn finds_the_bucket_of_a_value() {
        let b = buckets(&[(128, 1), (256, 5), (512, 0), (1024, 2)]);
        assert_eq!(bucket_of(&b, 100), Some(0));
        assert_eq!(bucket_of(&b, 128), Some(0));
        assert_eq!(bucket_of(&b, 129), Some(1));
        assert_eq!(bucket_of(&b, 5000), Some(3));
        assert_eq!(bucket_of(&[], 5), None);
        assert_eq!(bucket_of(&buckets(&[(128, 0)]), 5), None);
    }

    #[test]
    fn marks_quantiles_and_merges_those_sharing_a_bucket() {
        let latency = Latency {
            count: 64,
            buckets: buckets(&[(128, 10), (256, 50), (512, 3), (1024, 1)]),
            p50_us: 200,
            p90_us: 300,
            p99_us: 900,
            max_us: 1000,
            ..Default::default()
        };
        let view = histogram(&latency);
        let labels: Vec<_> = view
            .markers
            .iter()
            .map(|m| (m.bucket, m.label.as_str()))
            .collect();
        assert_eq!(labels, [(1, "p50"), (2, "p90"), (3, "p99/max")]);
        assert_eq!(view.bars[0].tone, Tone::Bar);
        assert_eq!(view.bars[1].tone, Tone::Good);
        assert_eq!(view.bars[3].tone, Tone::Bad);
        assert_eq!(view.axis, ("≤128µs".to_string(), "≤1.0ms".to_string()));
        assert!(view.legend.iter().any(|c| c.text == "p99 900µs"));
    }

    #[test]
    fn an_empty_window_has_no_legend_and_no_markers() {
        let view = histogram(&Latency::default());
        assert!(view.legend.is_empty() && view.markers.is_empty() && view.bars.is_empty());
    }
}
