//! `rbuild layer ls` and `rbuild image ls` as people and scripts read them: a table with a
//! header and sizes in human units (decimal, three significant digits, as Docker prints them),
//! `-q` for the ids alone, `--format json` for one JSON object per line (Docker's keys, sizes
//! in bytes). No kernel interface (rows come from maint.rs).

use serde_json::json;

use crate::maint::{ImageRow, LayerRow};

/// How to print a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    /// Ids only, `sha256:<hex>`, one per line.
    Quiet,
    /// One JSON object per line.
    Json,
}

/// `layer ls`: LAYER ID, SIZE, SOURCE.
pub fn layers(rows: &[LayerRow], f: Format) -> Vec<String> {
    match f {
        Format::Quiet => rows.iter().map(|r| format!("sha256:{}", r.id)).collect(),
        Format::Json => rows
            .iter()
            .map(|r| {
                json!({"ID": format!("sha256:{}", r.id), "Size": r.size, "Source": r.source})
                    .to_string()
            })
            .collect(),
        Format::Table => table(
            &["LAYER ID", "SIZE", "SOURCE"],
            rows.iter()
                .map(|r| {
                    vec![
                        format!("sha256:{}", r.id),
                        human_size(r.size),
                        r.source.clone(),
                    ]
                })
                .collect(),
        ),
    }
}

/// `image ls`: IMAGE ID, TAGS, LAYERS, SIZE.
pub fn images(rows: &[ImageRow], f: Format) -> Vec<String> {
    let tags = |r: &ImageRow| match &r.tags {
        None => "<tags unreadable>".to_string(),
        Some(t) if t.is_empty() => "<none>".to_string(),
        Some(t) => t.join(","),
    };
    match f {
        Format::Quiet => rows.iter().map(|r| format!("sha256:{}", r.id)).collect(),
        Format::Json => rows
            .iter()
            .map(|r| {
                let mut v = json!({"ID": format!("sha256:{}", r.id), "Tags": r.tags});
                match r.layers {
                    Some((n, size)) => {
                        v["Layers"] = n.into();
                        v["Size"] = size.into();
                    }
                    None => v["Error"] = "damaged config (see `rbuild fsck`)".into(),
                }
                v.to_string()
            })
            .collect(),
        Format::Table => table(
            &["IMAGE ID", "TAGS", "LAYERS", "SIZE"],
            rows.iter()
                .map(|r| match r.layers {
                    Some((n, size)) => {
                        vec![
                            format!("sha256:{}", r.id),
                            tags(r),
                            n.to_string(),
                            human_size(size),
                        ]
                    }
                    None => vec![
                        format!("sha256:{}", r.id),
                        tags(r),
                        "-".into(),
                        "damaged config (see `rbuild fsck`)".into(),
                    ],
                })
                .collect(),
        ),
    }
}

/// Rows under a header, each column as wide as its widest cell, three spaces apart, the last
/// one unpadded.
fn table(head: &[&str], rows: Vec<Vec<String>>) -> Vec<String> {
    let all: Vec<Vec<String>> = std::iter::once(head.iter().map(|h| h.to_string()).collect())
        .chain(rows)
        .collect();
    let mut width = vec![0usize; head.len()];
    for r in &all {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    all.iter()
        .map(|r| {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                line.push_str(c);
                if i + 1 < r.len() {
                    line.extend(std::iter::repeat_n(' ', width[i] - c.chars().count() + 3));
                }
            }
            line
        })
        .collect()
}

/// Bytes in decimal units with three significant digits, as Docker prints sizes: `0B`,
/// `512B`, `5.59MB`, `1.1GB`, `12.3kB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    // three significant digits, trailing zeros dropped (Go's %.3g)
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_docker_prints_them() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(5_586_842), "5.59MB");
        assert_eq!(human_size(12_300), "12.3kB");
        assert_eq!(human_size(1_100_000_000), "1.1GB");
        assert_eq!(human_size(999_999), "1000kB");
    }

    #[test]
    fn a_table_has_a_header_and_aligned_columns() {
        let rows = [LayerRow {
            id: "ab".repeat(32),
            size: 2_000,
            source: "/x.tar".into(),
        }];
        let t = layers(&rows, Format::Table);
        assert_eq!(t.len(), 2);
        assert!(t[0].starts_with("LAYER ID"));
        assert_eq!(t[0].find("SIZE"), t[1].find("2kB"));
        assert_eq!(
            layers(&rows, Format::Quiet),
            [format!("sha256:{}", "ab".repeat(32))]
        );
        let v: serde_json::Value = serde_json::from_str(&layers(&rows, Format::Json)[0]).unwrap();
        assert_eq!(v["Size"], 2000);
    }
}
