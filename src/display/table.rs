//! A generic table bundle: a caption, a header row, rows of cells, an empty-state message and an
//! optional footer line; HTML plus an aligned text twin. `%squeue` (jobs), `%sinfo`
//! (partitions) and `%cluster list` ([`cluster_list`]) use it.
//!
//! The number of columns is part of the type (`Table<N>` takes rows of `[Cell; N]`), so a row
//! that does not fit its header is a compile error, not a broken table.
//!
//! ```
//! use rust_cluster_kernel::display::table::{Cell, Column, Table};
//!
//! let mut partitions = Table::new(
//!     "Partitions",
//!     [Column::left("partition"), Column::right("idle"), Column::right("allocated"),
//!      Column::right("other"), Column::right("total")],
//! )
//! .empty_message("sinfo lists no partitions.");
//! partitions.push(["multiple".into(), 3u32.into(), 1u32.into(), 0u32.into(), 4u32.into()]);
//! let bundle = partitions.to_bundle();
//! assert!(bundle.data["text/html"].as_str().unwrap().contains("<td class=\"rck-num\">3</td>"));
//! assert!(bundle.data["text/plain"].as_str().unwrap().contains("multiple      3"));
//! ```

use askama::Template;
use dask_slurm::model::ClusterView;

use super::card::{backend_word, security_tone, security_word, state_word};
use super::format::{human_bytes, human_time, safe_href, text_columns, TextAlign};
use super::{html_bundle, Bundle, Tone};

/// How a column's cells are aligned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text: names, states, node lists.
    Left,
    /// Numbers: counts, sizes, times.
    Right,
}

/// A column header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    title: String,
    align: Align,
}

impl Column {
    /// A left-aligned column (text).
    pub fn left(title: impl Into<String>) -> Self {
        Column {
            title: title.into(),
            align: Align::Left,
        }
    }

    /// A right-aligned column (numbers).
    pub fn right(title: impl Into<String>) -> Self {
        Column {
            title: title.into(),
            align: Align::Right,
        }
    }
}

/// One cell: text, shown plain, as code, as a coloured badge, or as a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    text: String,
    look: Look,
}

/// How a cell's text is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Look {
    Plain,
    Code,
    Badge(Tone),
    /// A link to this URL (only `http(s)` URLs become links; others stay text).
    Link(String),
}

impl Cell {
    /// Plain text.
    pub fn text(text: impl Into<String>) -> Self {
        Cell {
            text: text.into(),
            look: Look::Plain,
        }
    }

    /// Monospaced text: job ids, addresses, paths.
    pub fn code(text: impl Into<String>) -> Self {
        Cell {
            text: text.into(),
            look: Look::Code,
        }
    }

    /// A coloured badge.
    pub fn badge(text: impl Into<String>, tone: Tone) -> Self {
        Cell {
            text: text.into(),
            look: Look::Badge(tone),
        }
    }

    /// A SLURM job state as a badge in the state's colour ([`Tone::of_job_state`]).
    pub fn job_state(state: impl Into<String>) -> Self {
        let state = state.into();
        let tone = Tone::of_job_state(&state);
        Cell::badge(state, tone)
    }

    /// A link; only `http://` and `https://` URLs become one, anything else shows as text.
    pub fn link(text: impl Into<String>, url: impl Into<String>) -> Self {
        Cell {
            text: text.into(),
            look: Look::Link(url.into()),
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Self {
        Cell::text(text)
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Self {
        Cell::text(text)
    }
}

impl From<u32> for Cell {
    fn from(n: u32) -> Self {
        Cell::text(n.to_string())
    }
}

impl From<u64> for Cell {
    fn from(n: u64) -> Self {
        Cell::text(n.to_string())
    }
}

impl From<usize> for Cell {
    fn from(n: usize) -> Self {
        Cell::text(n.to_string())
    }
}

/// A table with `N` columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table<const N: usize> {
    caption: String,
    columns: [Column; N],
    rows: Vec<[Cell; N]>,
    empty_message: String,
    footer: Option<String>,
}

impl<const N: usize> Table<N> {
    /// An empty table; its empty-state message is "Nothing to show." until
    /// [`empty_message`](Self::empty_message) says better.
    pub fn new(caption: impl Into<String>, columns: [Column; N]) -> Self {
        Table {
            caption: caption.into(),
            columns,
            rows: Vec::new(),
            empty_message: "Nothing to show.".to_owned(),
            footer: None,
        }
    }

    /// What the table says when it has no rows (for example "No jobs in the queue.").
    #[must_use]
    pub fn empty_message(mut self, message: impl Into<String>) -> Self {
        self.empty_message = message.into();
        self
    }

    /// A line under the table: totals, "and 12 more", a hint.
    #[must_use]
    pub fn footer(mut self, footer: impl Into<String>) -> Self {
        self.footer = Some(footer.into());
        self
    }

    /// Appends a row.
    pub fn push(&mut self, row: [Cell; N]) {
        self.rows.push(row);
    }

    /// How many rows the table has.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the table has no rows (it then shows its empty-state message).
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as HTML with its aligned text twin.
    pub fn to_bundle(&self) -> Bundle {
        let html = TableHtml {
            caption: &self.caption,
            columns: self
                .columns
                .iter()
                .map(|c| HeaderHtml {
                    title: &c.title,
                    class: align_class(c.align),
                })
                .collect(),
            rows: self
                .rows
                .iter()
                .map(|row| {
                    row.iter()
                        .zip(&self.columns)
                        .map(|(cell, column)| CellHtml::new(cell, column.align))
                        .collect()
                })
                .collect(),
            width: N,
            empty_message: &self.empty_message,
            footer: self.footer.as_deref(),
        };
        html_bundle("table", html.render(), self.text())
    }

    /// The text twin: the caption, then aligned columns (or the empty-state message).
    pub fn text(&self) -> String {
        self.text_indented("")
    }

    /// The text twin with every line after the caption indented by `indent` (a table inside a
    /// larger text, such as a card's jobs); no newline at the end.
    pub fn text_indented(&self, indent: &str) -> String {
        let mut out = format!("{}\n", self.caption);
        if self.rows.is_empty() {
            out.push_str(indent);
            out.push_str(&self.empty_message);
            return out;
        }
        let mut rows = Vec::with_capacity(self.rows.len() + 1);
        rows.push(self.columns.iter().map(|c| c.title.clone()).collect());
        rows.extend(
            self.rows
                .iter()
                .map(|row| row.iter().map(|cell| cell.text.clone()).collect()),
        );
        let align: Vec<TextAlign> = self
            .columns
            .iter()
            .map(|c| match c.align {
                Align::Left => TextAlign::Left,
                Align::Right => TextAlign::Right,
            })
            .collect();
        out.push_str(&text_columns(&rows, &align, indent));
        if let Some(footer) = &self.footer {
            out.push_str(indent);
            out.push_str(footer);
        }
        out.truncate(out.trim_end().len());
        out
    }
}

/// `%cluster list`: one row per cluster with its state, jobs, workers and dashboard.
pub fn cluster_list(clusters: &[ClusterView]) -> Bundle {
    let mut table = Table::new(
        format!("Clusters ({})", clusters.len()),
        [
            Column::left("name"),
            Column::left("state"),
            Column::left("backend"),
            Column::left("security"),
            Column::left("jobs"),
            Column::right("workers"),
            Column::right("threads"),
            Column::right("memory"),
            Column::left("dashboard"),
            Column::left("updated"),
        ],
    )
    .empty_message("No clusters yet: %cluster up starts one.");
    for view in clusters {
        let jobs = view
            .jobs
            .iter()
            .map(|j| format!("{} {}", j.id, j.state))
            .collect::<Vec<_>>()
            .join(", ");
        let (workers, threads, memory) = match &view.scheduler {
            Some(s) => (
                s.workers.len(),
                s.total_threads().to_string(),
                human_bytes(s.total_memory()),
            ),
            None => (0, "—".to_owned(), "—".to_owned()),
        };
        let dashboard = match &view.dashboard {
            Some(d) => Cell::link(&d.url, &d.url),
            None => Cell::text("—"),
        };
        table.push([
            Cell::text(&view.name),
            Cell::badge(state_word(view.state), Tone::of_cluster(view.state)),
            Cell::text(backend_word(view.backend)),
            Cell::badge(
                security_word(view.tls.is_some()),
                security_tone(view.tls.is_some()),
            ),
            Cell::text(if jobs.is_empty() {
                "—".to_owned()
            } else {
                jobs
            }),
            Cell::text(format!("{workers}/{}", view.workers_expected)),
            Cell::text(threads),
            Cell::text(memory),
            dashboard,
            Cell::text(human_time(&view.updated_at)),
        ]);
    }
    table.to_bundle()
}

fn align_class(align: Align) -> &'static str {
    match align {
        Align::Left => "rck-txt",
        Align::Right => "rck-num",
    }
}

#[derive(Template)]
#[template(path = "table.html")]
struct TableHtml<'a> {
    caption: &'a str,
    columns: Vec<HeaderHtml<'a>>,
    rows: Vec<Vec<CellHtml<'a>>>,
    /// The number of columns, for the empty-state row's `colspan`.
    width: usize,
    empty_message: &'a str,
    footer: Option<&'a str>,
}

struct HeaderHtml<'a> {
    title: &'a str,
    class: &'static str,
}

struct CellHtml<'a> {
    text: &'a str,
    class: &'static str,
    code: bool,
    /// `rck-tone-*` when the cell is a badge.
    badge: Option<&'static str>,
    href: Option<&'a str>,
}

impl<'a> CellHtml<'a> {
    fn new(cell: &'a Cell, align: Align) -> Self {
        let mut html = CellHtml {
            text: &cell.text,
            class: align_class(align),
            code: false,
            badge: None,
            href: None,
        };
        match &cell.look {
            Look::Plain => {}
            Look::Code => html.code = true,
            Look::Badge(tone) => html.badge = Some(tone.css_class()),
            Look::Link(url) => match safe_href(url) {
                Some(href) => html.href = Some(href),
                None => html.code = true,
            },
        }
        html
    }
}
