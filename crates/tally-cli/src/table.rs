//! Plain-text tables for the terminal: right-aligned numbers, SI-scaled counts.

use tally::core::report::Row;

/// `1234567` → `1.23 M`.
pub fn si(v: f64) -> String {
    let a = v.abs();
    let (scaled, unit) = if a >= 1e12 {
        (v / 1e12, " T")
    } else if a >= 1e9 {
        (v / 1e9, " G")
    } else if a >= 1e6 {
        (v / 1e6, " M")
    } else if a >= 1e3 {
        (v / 1e3, " k")
    } else {
        return format!("{v:.0}");
    };
    format!("{scaled:.2}{unit}")
}

/// Seconds as µs / ms / s.
pub fn time(s: f64) -> String {
    if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.3} ms", s * 1e3)
    } else {
        format!("{:.1} µs", s * 1e6)
    }
}

/// Renders rows as an aligned table (first column left-aligned, the rest right).
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, &w))| {
                let pad = " ".repeat(w - c.chars().count());
                if i == 0 {
                    format!("{c}{pad}")
                } else {
                    format!("{pad}{c}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    let mut out = line(&head);
    out.push('\n');
    out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1)));
    for r in rows {
        out.push('\n');
        out.push_str(&line(r));
    }
    out
}

/// The standard cost table over report rows (and a total row): its header and cells.
pub fn cost_rows(first: &str, rows: &[Row], total: &Row) -> (Vec<String>, Vec<Vec<String>>) {
    let header = [
        first, "calls", "FPO", "add", "mul", "fma", "special", "bytes", "time", "GFLOP/s", "GB/s",
    ];
    let cells = |r: &Row| {
        vec![
            r.name.clone(),
            r.calls.to_string(),
            si(r.fpo as f64),
            si(r.work.add as f64),
            si(r.work.mul as f64),
            si(r.work.fma as f64),
            si(r.work.special as f64),
            si(r.work.bytes() as f64),
            time(r.time_s),
            format!("{:.2}", r.gflops),
            format!("{:.2}", r.gbytes_per_s),
        ]
    };
    let mut body: Vec<Vec<String>> = rows.iter().map(cells).collect();
    body.push(cells(total));
    (header.iter().map(|h| h.to_string()).collect(), body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_scales_and_tables_align() {
        assert_eq!(si(999.0), "999");
        assert_eq!(si(1_234_567.0), "1.23 M");
        let t = render(
            &["op", "n"],
            &[
                vec!["matmul".into(), "3".into()],
                vec!["add".into(), "12".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "op       n");
        assert_eq!(lines[2], "matmul   3");
        assert_eq!(lines[3], "add     12");
    }
}
