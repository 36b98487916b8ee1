//! Small formatting helpers shared by the bundles: human units, percentages, text bars, natural
//! ordering of names, aligned text columns, and the one check that decides whether a URL may
//! become a link. They produce *values*; markup is the templates' business.

use std::cmp::Ordering;

/// Bytes in binary units with one decimal, e.g. `45.0 GiB`, `512.0 MiB`, `1.2 TiB`.
///
/// Dask reports memory limits in bytes; GiB is what a SLURM user reasons in (`--mem 90000mb`
/// is 87.9 GiB), so GiB is the common case and the others keep small and huge values readable.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    // Lossy above 2^53 bytes (8 PiB), far beyond one display digit of precision anyway.
    #[allow(clippy::cast_precision_loss)]
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// How far `done` is towards `target`, in whole percent, clamped to 0..=100.
///
/// A target of zero (an attached cluster nobody said how many workers to expect of) counts as
/// complete once anything has joined.
pub(crate) fn percent(done: u32, target: u32) -> u32 {
    if target == 0 {
        return if done > 0 { 100 } else { 0 };
    }
    let p = u64::from(done) * 100 / u64::from(target);
    u32::try_from(p.min(100)).unwrap_or(100)
}

/// A fixed-width text progress bar, e.g. `[######----]`.
pub(crate) fn text_bar(percent: u32, width: usize) -> String {
    let filled = (usize::try_from(percent.min(100)).unwrap_or(100) * width + 50) / 100;
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

/// `1 worker`, `3 workers`.
pub(crate) fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

/// `and 1 more host`, `and 980 more workers`.
pub(crate) fn and_more(n: usize, one: &str, many: &str) -> String {
    format!("and {n} more {}", if n == 1 { one } else { many })
}

/// Compares names so that embedded numbers sort by value: `w-2` before `w-10`, `n9` before `n10`.
pub(crate) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (trim_zeros(&a[..da]), trim_zeros(&b[..db]));
                let by_value = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                // Equal values: fewer leading zeros first, so the order stays total.
                match by_value.then_with(|| da.cmp(&db)) {
                    Ordering::Equal => {
                        a = &a[da..];
                        b = &b[db..];
                    }
                    other => return other,
                }
            }
            (Some(x), Some(y)) => match x.cmp(y) {
                Ordering::Equal => {
                    a = &a[1..];
                    b = &b[1..];
                }
                other => return other,
            },
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&c| c == b'0').count();
    &digits[zeros..]
}

/// The URL itself if it may go into an `href`: only `http://` and `https://`. Anything else
/// (`javascript:`, `data:`, a bare host) is shown as text, never as a link.
pub(crate) fn safe_href(url: &str) -> Option<&str> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    (lower.starts_with("http://") || lower.starts_with("https://")).then_some(url)
}

/// A path on the page's own origin if it may go into an `href`: it starts with one `/` (not
/// `//`, which a browser reads as another host) and has no backslash, which browsers read as
/// `/`.
pub(crate) fn same_origin_href(path: &str) -> Option<&str> {
    let safe = path.starts_with('/') && !path.starts_with("//") && !path.contains('\\');
    safe.then_some(path)
}

/// A time stamp for people: RFC 3339 `2026-05-01T14:03:22.123+02:00` becomes
/// `2026-05-01 14:03:22` (in the offset it was written with). Anything unparsable is shown as
/// given, so a card never hides what it was told.
pub(crate) fn human_time(rfc3339: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(rfc3339) {
        Ok(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        Err(_) => rfc3339.to_owned(),
    }
}

/// A time as SLURM prints it (`2026-05-01T15:10:00`, local time) for people:
/// `2026-05-01 15:10`. Anything else (`N/A`, a format we do not know) is shown as given.
pub(crate) fn human_slurm_time(slurm: &str) -> String {
    match chrono::NaiveDateTime::parse_from_str(slurm, "%Y-%m-%dT%H:%M:%S") {
        Ok(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        Err(_) => slurm.to_owned(),
    }
}

/// How a text column is aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextAlign {
    /// Padded on the right (names, states).
    Left,
    /// Padded on the left (counts, sizes).
    Right,
}

/// Lays rows out in aligned columns separated by two spaces, each line prefixed by `indent`,
/// trailing spaces removed. Widths count characters, not bytes, so `—` and `≈` line up.
pub(crate) fn text_columns(rows: &[Vec<String>], align: &[TextAlign], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0; columns];
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(indent);
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i] - cell.chars().count();
            match align.get(i).copied().unwrap_or(TextAlign::Left) {
                TextAlign::Left => {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                TextAlign::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_in_binary_units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(90_000 * 1024 * 1024), "87.9 GiB");
        assert_eq!(human_bytes(45 * (1 << 30)), "45.0 GiB");
        assert_eq!(human_bytes(1000 * 45 * (1 << 30)), "43.9 TiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }

    #[test]
    fn percent_is_clamped_and_handles_zero_target() {
        assert_eq!(percent(3, 5), 60);
        assert_eq!(percent(7, 5), 100);
        assert_eq!(percent(0, 0), 0);
        assert_eq!(percent(2, 0), 100);
        assert_eq!(percent(u32::MAX, u32::MAX), 100);
    }

    #[test]
    fn text_bar_rounds_to_width() {
        assert_eq!(text_bar(0, 10), "[----------]");
        assert_eq!(text_bar(60, 10), "[######----]");
        assert_eq!(text_bar(100, 4), "[####]");
        assert_eq!(text_bar(250, 4), "[####]");
    }

    #[test]
    fn natural_order_compares_numbers_by_value() {
        let mut names = vec!["w-10", "w-2", "w-1", "n010", "n9", "n10", "a"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["a", "n9", "n10", "n010", "w-1", "w-2", "w-10"]);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }

    #[test]
    fn only_http_urls_become_links() {
        assert_eq!(
            safe_href("http://n1:8787/status"),
            Some("http://n1:8787/status")
        );
        assert_eq!(safe_href("HTTPS://n1/"), Some("HTTPS://n1/"));
        assert_eq!(safe_href("javascript:alert(1)"), None);
        assert_eq!(safe_href("data:text/html,x"), None);
        assert_eq!(safe_href("n1:8787"), None);
        assert_eq!(safe_href(""), None);
    }

    #[test]
    fn time_is_shortened_or_kept() {
        assert_eq!(
            human_time("2026-05-01T14:03:22.5+02:00"),
            "2026-05-01 14:03:22"
        );
        assert_eq!(human_time("yesterday"), "yesterday");
        assert_eq!(human_slurm_time("2026-05-01T15:10:00"), "2026-05-01 15:10");
        assert_eq!(human_slurm_time("Unknown"), "Unknown");
    }

    #[test]
    fn columns_align_by_characters() {
        let rows = vec![
            vec!["JOB".to_owned(), "NODES".to_owned(), "NOTE".to_owned()],
            vec!["1".to_owned(), "12".to_owned(), "—".to_owned()],
            vec!["12345".to_owned(), "2".to_owned(), String::new()],
        ];
        let text = text_columns(
            &rows,
            &[TextAlign::Left, TextAlign::Right, TextAlign::Left],
            "  ",
        );
        assert_eq!(
            text,
            "  JOB    NODES  NOTE\n  1         12  —\n  12345      2\n"
        );
    }
}
