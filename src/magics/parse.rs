//! Splitting a cell into magics and Rust.

use super::MagicCall;

/// A cell, split into what runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellPlan<'a> {
    /// `%%name args` on the first line: the whole rest of the cell is that magic's body.
    CellMagic(MagicCall<'a>),
    /// Zero or more leading `%name args` lines, then Rust (possibly empty).
    Lines {
        /// The line magics, in order.
        magics: Vec<MagicCall<'a>>,
        /// The code after the magics, for the engine.
        rust: &'a str,
    },
}

/// Splits `code` into magics and Rust. Blank lines may stand between line magics; the first
/// other line starts the Rust part. Each magic splits its own arguments (or takes its line as
/// code, as `%time` and `%python` do).
///
/// ```
/// use rust_cluster_kernel::magics::parse::{plan_cell, CellPlan};
/// match plan_cell("%cd /tmp\nlet x = 1;") {
///     CellPlan::Lines { magics, rust } => {
///         assert_eq!(magics[0].name, "cd");
///         assert_eq!(rust, "let x = 1;");
///     }
///     _ => unreachable!(),
/// }
/// ```
pub fn plan_cell(code: &str) -> CellPlan<'_> {
    let start = code.len() - code.trim_start().len();
    let trimmed = &code[start..];
    if let Some(rest) = trimmed.strip_prefix("%%") {
        let (line, body) = rest.split_once('\n').unwrap_or((rest, ""));
        let (name, line) = split_name(line);
        return CellPlan::CellMagic(MagicCall {
            name,
            line,
            body: Some(body),
        });
    }
    let mut magics = Vec::new();
    let mut offset = 0;
    while offset < code.len() {
        let end = code[offset..]
            .find('\n')
            .map_or(code.len(), |i| offset + i + 1);
        let line = code[offset..end].trim();
        if line.is_empty() {
            offset = end;
            continue;
        }
        let Some(rest) = line.strip_prefix('%') else {
            break;
        };
        let (name, line) = split_name(rest);
        magics.push(MagicCall {
            name,
            line,
            body: None,
        });
        offset = end;
    }
    CellPlan::Lines {
        magics,
        rust: &code[offset..],
    }
}

fn split_name(line: &str) -> (&str, &str) {
    let line = line.trim();
    match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], line[i..].trim_start()),
        None => (line, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_magic_takes_the_body() {
        let plan = plan_cell("%%bash -x\necho hi\necho 'there'\n");
        let CellPlan::CellMagic(call) = plan else {
            panic!()
        };
        assert_eq!(call.name, "bash");
        assert_eq!(call.args().unwrap(), ["-x"]);
        assert_eq!(call.body, Some("echo hi\necho 'there'\n"));
    }

    #[test]
    fn line_magics_then_rust() {
        let plan = plan_cell("%env A=1\n\n%cd '/tmp/a b'\nlet x = 5 % 2;\n%not_a_magic");
        let CellPlan::Lines { magics, rust } = plan else {
            panic!()
        };
        assert_eq!(magics.len(), 2);
        assert_eq!(magics[1].args().unwrap(), ["/tmp/a b"]);
        assert_eq!(rust, "let x = 5 % 2;\n%not_a_magic");
    }

    #[test]
    fn plain_rust_and_empty_cells() {
        assert_eq!(
            plan_cell("40 + 2"),
            CellPlan::Lines {
                magics: vec![],
                rust: "40 + 2"
            }
        );
        assert_eq!(
            plan_cell(""),
            CellPlan::Lines {
                magics: vec![],
                rust: ""
            }
        );
        let CellPlan::Lines { magics, .. } = plan_cell("%cd 'unclosed\n%time let s = \"it's\";")
        else {
            panic!()
        };
        assert!(matches!(
            magics[0].args(),
            Err(crate::magics::MagicError::Usage(_))
        ));
        // A magic that takes code gets its line as written.
        assert_eq!(magics[1].line, "let s = \"it's\";");
    }

    #[test]
    fn magic_name_without_args() {
        let CellPlan::Lines { magics, .. } = plan_cell("%lsmagic") else {
            panic!()
        };
        assert_eq!(
            magics[0],
            MagicCall {
                name: "lsmagic",
                line: "",
                body: None
            }
        );
    }
}
