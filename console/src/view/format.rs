//! Numbers and durations as the console prints them: short, fixed units.

/// A latency: `850µs`, `1.2ms`, `35ms`, `1.50s`.
pub(crate) fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us}µs"),
        1_000..10_000 => format!("{:.1}ms", us as f64 / 1e3),
        10_000..1_000_000 => format!("{}ms", us / 1_000),
        _ => format!("{:.2}s", us as f64 / 1e6),
    }
}

/// An uptime: `45s`, `3m12s`, `2h05m`, `3d04h`.
pub(crate) fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// Requests per second: `0`, `7.5`, `312`, `12.4k`.
pub(crate) fn rps(rps: f64) -> String {
    if rps <= 0.0 {
        "0".to_string()
    } else if rps < 100.0 {
        format!("{rps:.1}")
    } else if rps < 10_000.0 {
        format!("{rps:.0}")
    } else {
        format!("{:.1}k", rps / 1e3)
    }
}

/// An error fraction (0..1) as a percentage: `0.0%`, `12.5%`.
pub(crate) fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// How long ago: `now`, `12s ago`, `5m ago`, `3h ago`, `2d ago`.
pub(crate) fn ago(now_ms: i64, then_ms: i64) -> String {
    let s = (now_ms - then_ms).max(0) / 1000;
    match s {
        0 => "now".to_string(),
        1..60 => format!("{s}s ago"),
        60..3600 => format!("{}m ago", s / 60),
        3600..86400 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_latencies() {
        assert_eq!(micros(850), "850µs");
        assert_eq!(micros(1_234), "1.2ms");
        assert_eq!(micros(35_400), "35ms");
        assert_eq!(micros(1_500_000), "1.50s");
    }

    #[test]
    fn formats_uptimes() {
        assert_eq!(uptime(999), "0s");
        assert_eq!(uptime(45_000), "45s");
        assert_eq!(uptime(192_000), "3m12s");
        assert_eq!(uptime(7_500_000), "2h05m");
        assert_eq!(uptime(273_600_000), "3d04h");
    }

    #[test]
    fn formats_rates() {
        assert_eq!(rps(0.0), "0");
        assert_eq!(rps(7.49), "7.5");
        assert_eq!(rps(312.4), "312");
        assert_eq!(rps(12_400.0), "12.4k");
        assert_eq!(percent(0.125), "12.5%");
    }

    #[test]
    fn formats_ages() {
        assert_eq!(ago(10_000, 10_500), "now");
        assert_eq!(ago(10_000, 0), "10s ago");
        assert_eq!(ago(600_000, 0), "10m ago");
    }
}
