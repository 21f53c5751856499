//! Plain-text tables for the terminal and Markdown.

/// Renders rows as a Markdown table with the given header.
pub fn markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain(std::iter::once(header[c].chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.iter().map(|h| h.to_string()).collect());
    out += &line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for row in rows {
        out += &line(row.clone());
    }
    out
}

/// Escapes text for HTML.
pub fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders rows as an HTML table with the given header.
pub fn html(header: &[&str], rows: &[Vec<String>]) -> String {
    let cells = |tag: &str, row: &mut dyn Iterator<Item = &str>| {
        row.map(|c| format!("<{tag}>{}</{tag}>", escape_html(c)))
            .collect::<String>()
    };
    let mut out = format!(
        "<table>\n<tr>{}</tr>\n",
        cells("th", &mut header.iter().copied())
    );
    for row in rows {
        out += &format!(
            "<tr>{}</tr>\n",
            cells("td", &mut row.iter().map(String::as_str))
        );
    }
    out + "</table>\n"
}

/// A setting as its command-line value (`cpu`, `infonce`, `global-cosine`), as reports name it.
pub fn flag_value(value: &impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_string())
}

/// A self-contained HTML page around `body` (tables, inline SVG figures, settings).
pub fn html_page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title>\n\
         <style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #bbb;padding:3px 8px}}\
         figure{{display:inline-block;margin:0.5em}}pre{{background:#f4f4f4;padding:1em}}</style>\n\
         </head><body>\n{body}</body></html>\n",
        escape_html(title)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns() {
        let t = super::markdown(&["a", "bb"], &[vec!["xyz".into(), "1".into()]]);
        assert_eq!(t, "| a   | bb |\n| --- | -- |\n| xyz | 1  |\n");
    }

    #[test]
    fn html_escapes_cells() {
        let t = super::html(&["a<b"], &[vec!["x & y".into()]]);
        assert_eq!(
            t,
            "<table>\n<tr><th>a&lt;b</th></tr>\n<tr><td>x &amp; y</td></tr>\n</table>\n"
        );
    }
}
