//! Results: latency percentiles, the named metrics each scenario returns, and the comparison
//! table the suite prints (Natter, baseline, ratio, budget, met or not).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Latencies in microseconds, sorted once.
pub struct Latencies(Vec<u64>);

impl Latencies {
    pub fn new(mut v: Vec<u64>) -> Self {
        v.sort_unstable();
        Self(v)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The `p` quantile (0..=1) in milliseconds, nearest-rank.
    pub fn ms(&self, p: f64) -> Option<f64> {
        if self.0.is_empty() {
            return None;
        }
        let rank = ((self.0.len() as f64 * p).ceil() as usize).clamp(1, self.0.len());
        Some(self.0[rank - 1] as f64 / 1000.0)
    }

    /// Every latency, µs, sorted.
    pub fn micros(&self) -> &[u64] {
        &self.0
    }

    pub fn max_ms(&self) -> Option<f64> {
        self.0.last().map(|&v| v as f64 / 1000.0)
    }

    /// "p50 1.23 ms, p99 4.56 ms, max 7.89 ms (n = 1000)".
    pub fn summary(&self) -> String {
        format!(
            "p50 {} ms, p99 {} ms, max {} ms (n = {})",
            fmt(self.ms(0.50)),
            fmt(self.ms(0.99)),
            fmt(self.max_ms()),
            self.len()
        )
    }
}

/// The middle value of `v` (of an even count, the upper of the two middle ones); `None` when
/// empty.
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

pub fn fmt(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.is_nan() => "-".into(),
        Some(v) if v.fract() == 0.0 && v.abs() < 1e15 => group(v as i64),
        Some(v) if v.abs() >= 1000.0 => group(v.round() as i64),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// 1234567 → "1,234,567".
pub fn group(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// Which direction is good, for the ratio column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Lower,
    Higher,
    /// A count or a fact (lost messages, evictions): no ratio.
    Neither,
}

/// One number a scenario measured.
#[derive(Debug, Clone)]
pub struct Metric {
    /// Stable id, `s2.p99_ms`: the table joins Natter's and the baseline's on it.
    pub key: String,
    pub label: String,
    pub unit: &'static str,
    pub value: Option<f64>,
    pub better: Better,
}

#[derive(Debug, Default, Clone)]
pub struct Metrics(pub Vec<Metric>);

impl Metrics {
    pub fn add(
        &mut self,
        key: &str,
        label: &str,
        unit: &'static str,
        value: Option<f64>,
        better: Better,
    ) {
        self.0.push(Metric {
            key: key.to_owned(),
            label: label.to_owned(),
            unit,
            value,
            better,
        });
    }

    pub fn extend(&mut self, other: Metrics) {
        self.0.extend(other.0);
    }

    pub fn get(&self, key: &str) -> Option<f64> {
        self.0.iter().find(|m| m.key == key).and_then(|m| m.value)
    }
}

/// A budget from issue 6: the metric must be at most / at least `limit`.
pub struct Budget {
    pub key: &'static str,
    pub text: &'static str,
    pub check: fn(f64) -> bool,
}

pub const BUDGETS: &[Budget] = &[
    Budget {
        key: "s1.rss_per_conn_kib",
        text: "≤ 8 KiB",
        check: |v| v <= 8.0,
    },
    Budget {
        key: "s1.connect_per_s",
        text: "≥ 5,000/s",
        check: |v| v >= 5000.0,
    },
    Budget {
        key: "s1.rss_start_mib",
        text: "≤ 30 MB (28.6 MiB)",
        check: |v| v * 1048576.0 <= 30e6,
    },
    Budget {
        key: "s1.rss_signed_in_mib",
        text: "≤ 30 MB (28.6 MiB)",
        check: |v| v * 1048576.0 <= 30e6,
    },
    Budget {
        key: "s1.start_to_ready_ms",
        text: "≤ 200 ms",
        check: |v| v <= 200.0,
    },
    Budget {
        key: "s2.cpu_us_per_delivery",
        text: "≤ 3 µs",
        check: |v| v <= 3.0,
    },
    Budget {
        key: "s2.p99_ms",
        text: "≤ 50 ms",
        check: |v| v <= 50.0,
    },
    Budget {
        key: "s2.lost",
        text: "0",
        check: |v| v == 0.0,
    },
    Budget {
        key: "s3.p99_ms",
        text: "≤ 100 ms",
        check: |v| v <= 100.0,
    },
    Budget {
        key: "s3.nonreaders_kept",
        text: "0 (all evicted)",
        check: |v| v == 0.0,
    },
    Budget {
        key: "s3.rss_growth_mib",
        text: "flat (< 5 MiB)",
        check: |v| v < 5.0,
    },
    Budget {
        key: "s4.writes_at_10k_per_s",
        text: "≥ 10,000/s",
        check: |v| v >= 10000.0 * 0.98,
    },
    Budget {
        key: "s4.commit_p99_at_10k_ms",
        text: "≤ 10 ms",
        check: |v| v <= 10.0,
    },
    Budget {
        key: "s4.history_p99_ms",
        text: "≤ 10 ms",
        check: |v| v <= 10.0,
    },
    Budget {
        key: "s4.storm_p99_change_pct",
        text: "≤ +20 %",
        check: |v| v <= 20.0,
    },
    Budget {
        key: "client.first_load_kb",
        text: "≤ 250 KB",
        check: |v| v <= 250.0,
    },
];

/// Keys of the machine's floor (no server; `scenarios::floor`): shown in their own table.
const FLOOR: &str = "floor.";

/// The machine's floor, when it was measured: what the hardware allows with no server at all.
pub fn floor_table(m: &Metrics) -> String {
    let rows: Vec<&Metric> = m.0.iter().filter(|m| m.key.starts_with(FLOOR)).collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut out = String::from("\n| the machine alone, no server | value |\n|---|---|\n");
    for r in rows {
        let unit = if r.unit.is_empty() { "" } else { r.unit };
        let v = r
            .value
            .map_or_else(|| "none".to_owned(), |v| format!("{} {unit}", fmt(Some(v))));
        let _ = writeln!(out, "| {} | {} |", r.label, v.trim_end());
    }
    out
}

/// The comparison table, Markdown: one row per metric Natter reported, in order.
pub fn table(natter: &Metrics, baseline: &Metrics) -> String {
    let base: BTreeMap<&str, Option<f64>> = baseline
        .0
        .iter()
        .map(|m| (m.key.as_str(), m.value))
        .collect();
    let mut out = String::new();
    out.push_str(
        "| metric | Natter | baseline (Node) | Natter advantage | budget | met |\n\
         |---|---|---|---|---|---|\n",
    );
    let mut seen = std::collections::HashSet::new();
    let rows = natter
        .0
        .iter()
        .chain(baseline.0.iter().filter(|m| natter.get(&m.key).is_none()));
    for m in rows {
        if m.key.starts_with(FLOOR) || !seen.insert(m.key.as_str()) {
            continue;
        }
        let n = natter
            .0
            .iter()
            .find(|x| x.key == m.key)
            .and_then(|x| x.value);
        let b = base.get(m.key.as_str()).copied().flatten();
        let ratio = match (m.better, n, b) {
            (Better::Lower, Some(n), Some(b)) if n > 0.0 => Some(b / n),
            (Better::Higher, Some(n), Some(b)) if b > 0.0 => Some(n / b),
            _ => None,
        };
        let budget = BUDGETS.iter().find(|x| x.key == m.key);
        let met = match (budget, n) {
            (Some(bu), Some(v)) => {
                if (bu.check)(v) {
                    "met"
                } else {
                    "**not met**"
                }
            }
            (Some(_), None) => "not measured",
            _ => "",
        };
        let unit = if m.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", m.unit)
        };
        let cell = |v: Option<f64>| match v {
            Some(_) => format!("{}{unit}", fmt(v)),
            None => "n/a".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            m.label,
            cell(n),
            cell(b),
            ratio.map_or(String::new(), |r| if r < 0.095 {
                format!("{r:.3}×")
            } else {
                format!("{r:.1}×")
            }),
            budget.map_or("", |b| b.text),
            met
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let l = Latencies::new((1..=100).map(|v| v * 1000).collect());
        assert_eq!(l.ms(0.5), Some(50.0));
        assert_eq!(l.ms(0.99), Some(99.0));
        assert_eq!(l.max_ms(), Some(100.0));
        assert_eq!(Latencies::new(vec![]).ms(0.5), None);
    }

    #[test]
    fn the_median_is_the_middle_value() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 100.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 100.0]), Some(4.0));
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(group(1234567), "1,234,567");
        assert_eq!(group(999), "999");
        assert_eq!(fmt(Some(20000.4)), "20,000");
    }

    #[test]
    fn the_table_shows_ratios_in_natters_favour_above_one() {
        let mut n = Metrics::default();
        n.add("s2.p99_ms", "S2 p99", "ms", Some(10.0), Better::Lower);
        let mut b = Metrics::default();
        b.add("s2.p99_ms", "S2 p99", "ms", Some(40.0), Better::Lower);
        let t = table(&n, &b);
        assert!(
            t.contains("| S2 p99 | 10 ms | 40 ms | 4.0× | ≤ 50 ms | met |"),
            "{t}"
        );
    }
}
