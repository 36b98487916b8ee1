//! Compile errors rendered like rustc's, but pointing into the user's cell rather than into the
//! code that evcxr generates around it.

use evcxr::CompilationError;

/// Renders one error: `error[E0308]: message`, then each spanned line of the cell with carets
/// under the span and the label, then notes and help.
pub fn render_compile_error(error: &CompilationError, cell: &str) -> String {
    let lines: Vec<&str> = cell.lines().collect();
    let code = error.code().map(|c| format!("[{c}]")).unwrap_or_default();
    let mut out = format!(
        "\x1b[1;31m{}{code}\x1b[0m\x1b[1m: {}\x1b[0m\n",
        error.level(),
        error.message()
    );
    for spanned in error.spanned_messages() {
        let Some(span) = &spanned.span else { continue };
        let Some(line) = lines.get(span.start_line.saturating_sub(1)) else {
            continue;
        };
        let gutter = span.start_line.to_string().len();
        let start = span.start_column.saturating_sub(1);
        let end = if span.end_line == span.start_line {
            span.end_column.saturating_sub(1).max(start + 1)
        } else {
            line.chars().count().max(start + 1)
        };
        let marker = if spanned.is_primary { '^' } else { '-' };
        out.push_str(&format!(
            "{:gutter$}\x1b[1;34m-->\x1b[0m cell:{}:{}\n",
            "", span.start_line, span.start_column
        ));
        out.push_str(&format!("{:gutter$} \x1b[1;34m|\x1b[0m\n", ""));
        out.push_str(&format!(
            "\x1b[1;34m{}\x1b[0m \x1b[1;34m|\x1b[0m {line}\n",
            span.start_line
        ));
        out.push_str(&format!(
            "{:gutter$} \x1b[1;34m|\x1b[0m {}\x1b[1;31m{}\x1b[0m {}\n",
            "",
            " ".repeat(start),
            marker.to_string().repeat(end - start),
            spanned.label
        ));
    }
    for help in error.help() {
        out.push_str(&format!("\x1b[1;36mhelp\x1b[0m: {help}\n"));
    }
    if let Some(hint) = error.evcxr_extra_hint() {
        out.push_str(&format!("\x1b[1;36mhint\x1b[0m: {hint}\n"));
    }
    out
}
