//! The printed report: figures named `METRIC.COLUMN` grouped into tables (one row per metric,
//! one column per path or variant, ratio columns computed from the row when both figures are
//! positive), then every figure no table showed, one a line. The JSON report has every figure, tables or not.

use std::collections::BTreeSet;

use super::Figures;

/// One table: which metrics (by name prefix; `exclude` wins), its columns and ratio columns
/// (label, numerator column, denominator column).
struct Table {
    title: String,
    include: &'static [&'static str],
    exclude: &'static [&'static str],
    columns: &'static [&'static str],
    ratios: &'static [(&'static str, &'static str, &'static str)],
}

/// The metric and column of a figure name (`added_latency_p50_us.floor` →
/// (`added_latency_p50_us`, `floor`)).
fn split(name: &str) -> Option<(&str, &str)> {
    name.rsplit_once('.')
}

fn cell(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v.abs() < 10.0 && v.fract() != 0.0 => format!("{v:.2}"),
        Some(v) if v.is_finite() => format!("{v:.1}"),
        Some(v) => format!("{v}"),
        None => "—".into(),
    }
}

impl Table {
    fn matches(&self, metric: &str) -> bool {
        self.include.iter().any(|p| metric.starts_with(p))
            && !self.exclude.iter().any(|p| metric.starts_with(p))
    }

    /// Prints the table without the columns in `skip` (and ratios using them); returns the
    /// figure names it showed.
    fn print(&self, figures: &Figures, skip: &[&str]) -> BTreeSet<String> {
        let mut shown = BTreeSet::new();
        let columns: Vec<&str> = self
            .columns
            .iter()
            .copied()
            .filter(|c| !skip.contains(c))
            .collect();
        let ratios: Vec<_> = (self.ratios.iter())
            .filter(|(_, a, b)| !skip.contains(a) && !skip.contains(b))
            .collect();
        let metrics: BTreeSet<&str> = figures
            .keys()
            .filter_map(|k| split(k))
            .filter(|(m, c)| columns.contains(c) && self.matches(m))
            .map(|(m, _)| m)
            .collect();
        if metrics.is_empty() {
            return shown;
        }
        let width = metrics.iter().map(|m| m.len()).max().unwrap_or(0).max(6);
        println!("\n{}", self.title);
        let mut head = format!("{:<width$}", "metric");
        for c in &columns {
            head += &format!(" {c:>13}");
        }
        for (label, _, _) in &ratios {
            head += &format!(" {label:>13}");
        }
        println!("{head}");
        for m in metrics {
            let get = |c: &str| figures.get(&format!("{m}.{c}")).copied();
            let mut line = format!("{m:<width$}");
            for c in &columns {
                line += &format!(" {:>13}", cell(get(c)));
                if get(c).is_some() {
                    shown.insert(format!("{m}.{c}"));
                }
            }
            for (_, num, den) in &ratios {
                // Only between two positive figures (an added latency can come out negative).
                let ratio = (get(num).zip(get(den)))
                    .filter(|(a, b)| *a > 0.0 && *b > 0.0)
                    .map(|(a, b)| a / b);
                line += &format!(" {:>13}", cell(ratio.filter(|r| r.is_finite())));
            }
            println!("{line}");
        }
        shown
    }
}

/// Prints every table, the notes, then the figures no table showed.
pub fn print(figures: &Figures) {
    let delay = figures
        .get("tls_handshake_delay_ms")
        .copied()
        .unwrap_or(f64::NAN);
    let tables = [
        Table {
            title: "paths (µs unless named; ratios from the row; added_* = path − direct)".into(),
            include: &[""],
            exclude: &["tls_", "added_tls_", "coldstart_"],
            columns: &["direct", "floor", "switchyard", "nginx"],
            ratios: &[
                ("sw/floor", "switchyard", "floor"),
                ("sw/nginx", "switchyard", "nginx"),
                ("nginx/floor", "nginx", "floor"),
            ],
        },
        Table {
            title: format!("cold start over TLS (mock handshake delay {delay} ms; medians)"),
            include: &["coldstart_"],
            exclude: &[],
            columns: &["prewarm_0", "prewarm_1"],
            ratios: &[],
        },
        Table {
            title: "concurrent streams over TLS: upstream connections per protocol".into(),
            include: &["tls_streams_"],
            exclude: &[],
            columns: &["http1", "h2"],
            ratios: &[],
        },
        Table {
            title: "concurrency 1 over TLS, warm (µs; gateway and direct on the same upstream protocol)".into(),
            include: &["tls_latency_", "added_tls_latency_"],
            exclude: &[],
            columns: &["direct", "switchyard", "direct_h1", "switchyard_h1"],
            ratios: &[],
        },
    ];
    let nginx = figures.get("nginx_available") == Some(&1.0);
    let skip: &[&str] = if nginx { &[] } else { &["nginx"] };
    let mut shown = BTreeSet::new();
    for t in &tables {
        shown.extend(t.print(figures, skip));
    }
    if !nginx {
        println!(
            "\nnginx: skipped, not installed or it did not start (the reason is on stderr); \
             apt-get install nginx-light"
        );
    }
    println!("\nother figures");
    for (k, v) in figures.iter().filter(|(k, _)| !shown.contains(*k)) {
        println!("{k:<48} {:>14}", cell(Some(*v)));
    }
}
