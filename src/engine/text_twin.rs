//! Text twins: a `text/plain` for rich output that has none, so that consoles and
//! `nbconvert --to markdown` show something useful.

use crate::display::Bundle;

/// Adds a `text/plain` twin to a bundle that has none: the text of its HTML (tags dropped), or
/// else the names of its MIME types (`<image/png>`), so that consoles and `nbconvert --to
/// markdown` show something useful.
pub(super) fn with_text_twin(mut bundle: Bundle) -> Bundle {
    if bundle.data.contains_key("text/plain") {
        return bundle;
    }
    let text = match bundle.data.get("text/html").and_then(|v| v.as_str()) {
        Some(html) if !text_of_html(html).is_empty() => text_of_html(html),
        _ => {
            let mimes: Vec<String> = bundle.data.keys().cloned().collect();
            format!("<{}>", mimes.join(", "))
        }
    };
    bundle.data.insert("text/plain".into(), text.into());
    bundle
}

/// The visible text of an HTML fragment, roughly: tags dropped, the common entities decoded,
/// runs of blank space made one space.
fn text_of_html(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    let text = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_twins_say_what_a_display_shows() {
        let html = with_text_twin(Bundle::default().with(
            "text/html",
            "<table><tr><td>a &amp; b</td>\n<td>&lt;42&gt;</td></tr></table>",
        ));
        assert_eq!(html.data["text/plain"], "a & b <42>");
        let png = with_text_twin(Bundle::default().with("image/png", "iVBOR"));
        assert_eq!(png.data["text/plain"], "<image/png>");
        let own = with_text_twin(Bundle::text("mine").with("text/html", "<b>x</b>"));
        assert_eq!(own.data["text/plain"], "mine", "a twin of its own is kept");
    }
}
