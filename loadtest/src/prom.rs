//! Just enough of the Prometheus text format to read the server's histograms from `/metrics`,
//! subtract two scrapes, and estimate quantiles the way `histogram_quantile` does.

use std::collections::BTreeMap;

/// One histogram series: cumulative bucket counts by upper bound, sum and count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Hist {
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

impl Hist {
    /// `self − before` (the observations made between two scrapes).
    pub fn since(&self, before: Option<&Hist>) -> Hist {
        let Some(before) = before else {
            return self.clone();
        };
        let buckets = self
            .buckets
            .iter()
            .map(|(le, n)| {
                let was = before
                    .buckets
                    .iter()
                    .find(|(b, _)| b == le)
                    .map_or(0.0, |(_, n)| *n);
                (*le, n - was)
            })
            .collect();
        Hist {
            buckets,
            sum: self.sum - before.sum,
            count: self.count - before.count,
        }
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }

    /// Linear interpolation inside the bucket holding the quantile, like PromQL's
    /// `histogram_quantile`. `None` without observations; the largest finite bound when the
    /// quantile falls in the `+Inf` bucket.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count <= 0.0 {
            return None;
        }
        let rank = q * self.count;
        let mut lower = 0.0;
        let mut below = 0.0;
        for (le, cumulative) in &self.buckets {
            if *cumulative >= rank {
                if le.is_infinite() {
                    return Some(lower);
                }
                let in_bucket = cumulative - below;
                if in_bucket <= 0.0 {
                    return Some(*le);
                }
                return Some(lower + (le - lower) * (rank - below) / in_bucket);
            }
            lower = *le;
            below = *cumulative;
        }
        Some(lower)
    }

    /// The share of observations at or below `bound` (which must be a bucket bound).
    pub fn share_at_most(&self, bound: f64) -> Option<f64> {
        if self.count <= 0.0 {
            return None;
        }
        self.buckets
            .iter()
            .find(|(le, _)| (*le - bound).abs() < 1e-12)
            .map(|(_, n)| n / self.count)
    }
}

/// Every histogram of a scrape, keyed by `name{labels without le}`.
pub fn histograms(text: &str) -> BTreeMap<String, Hist> {
    let mut out: BTreeMap<String, Hist> = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let mut le = None;
        let kept: Vec<&str> = labels
            .split(',')
            .filter(|l| !l.is_empty())
            .filter(|l| match l.strip_prefix("le=") {
                Some(v) => {
                    le = Some(v.trim_matches('"').to_owned());
                    false
                }
                None => true,
            })
            .collect();
        let key = |base: &str| format!("{base}{{{}}}", kept.join(","));
        if let Some(base) = name.strip_suffix("_bucket") {
            let Some(le) = le else { continue };
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                match le.parse() {
                    Ok(b) => b,
                    Err(_) => continue,
                }
            };
            out.entry(key(base))
                .or_default()
                .buckets
                .push((bound, value));
        } else if let Some(base) = name.strip_suffix("_sum") {
            out.entry(key(base)).or_default().sum = value;
        } else if let Some(base) = name.strip_suffix("_count") {
            out.entry(key(base)).or_default().count = value;
        }
    }
    out.retain(|_, h| !h.buckets.is_empty());
    for h in out.values_mut() {
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// The sum of every series of a counter or gauge `name` (e.g. `hotline_events_total`).
pub fn total(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let base = series.split('{').next()?;
            (base == name).then(|| value.trim().parse::<f64>().ok())?
        })
        .sum()
}

/// A line per series of `name` that saw observations between the two scrapes.
pub fn report(before: &str, after: &str, name: &str) -> Vec<String> {
    let before = histograms(before);
    let mut lines = Vec::new();
    for (key, h) in histograms(after) {
        if !key.starts_with(&format!("{name}{{")) {
            continue;
        }
        let d = h.since(before.get(&key));
        if d.count <= 0.0 {
            continue;
        }
        let ms = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{:.3} ms", v * 1e3));
        let le1ms = d
            .share_at_most(0.001)
            .map_or(String::new(), |s| format!(", {:.1}% ≤ 1 ms", s * 100.0));
        lines.push(format!(
            "{key}: n={} mean={} p50≈{} p99≈{}{le1ms}",
            d.count,
            ms(d.mean()),
            ms(d.quantile(0.5)),
            ms(d.quantile(0.99)),
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRAPE: &str = "\
# HELP hotline_routing_seconds Engine decision time per command batch.
# TYPE hotline_routing_seconds histogram
hotline_routing_seconds_bucket{op=\"command\",le=\"0.0001\"} 80
hotline_routing_seconds_bucket{op=\"command\",le=\"0.001\"} 99
hotline_routing_seconds_bucket{op=\"command\",le=\"+Inf\"} 100
hotline_routing_seconds_sum{op=\"command\"} 0.02
hotline_routing_seconds_count{op=\"command\"} 100
hotline_connections{role=\"caller\"} 3
";

    #[test]
    fn parses_histograms_and_estimates_quantiles() {
        let all = histograms(SCRAPE);
        let h = &all["hotline_routing_seconds{op=\"command\"}"];
        assert_eq!(h.count, 100.0);
        assert_eq!(h.buckets.len(), 3);
        assert!((h.mean().unwrap() - 0.0002).abs() < 1e-12);
        // 50th of 100 lies in the first bucket [0, 0.0001].
        assert!((h.quantile(0.5).unwrap() - 0.0000625).abs() < 1e-9);
        // 99th is the top of the second bucket.
        assert!((h.quantile(0.99).unwrap() - 0.001).abs() < 1e-12);
        assert_eq!(h.share_at_most(0.001), Some(0.99));
        assert!(!all.keys().any(|k| k.starts_with("hotline_connections")));
        assert_eq!(total(SCRAPE, "hotline_connections"), 3.0);
        assert_eq!(total(SCRAPE, "hotline_routing_seconds_count"), 100.0);
    }

    #[test]
    fn subtracts_an_earlier_scrape() {
        let before = histograms(SCRAPE);
        let after = histograms(
            &SCRAPE
                .replace("} 80", "} 90")
                .replace("} 99", "} 109")
                .replace("} 100", "} 110"),
        );
        let key = "hotline_routing_seconds{op=\"command\"}";
        let d = after[key].since(before.get(key));
        assert_eq!(d.count, 10.0);
        assert_eq!(d.buckets[0], (0.0001, 10.0));
        assert_eq!(
            report(SCRAPE, SCRAPE, "hotline_routing_seconds"),
            Vec::<String>::new()
        );
    }
}
