//! A report as a list of blocks (headings, lines of text, tables), rendered once for the
//! terminal and once as Markdown, so both always say the same thing.

use crate::table::render;

/// One piece of a report.
enum Block {
    /// A section heading.
    Heading(String),
    /// A line of prose (one paragraph in Markdown).
    Text(String),
    /// A table: the first column is a label, the rest are figures.
    Table {
        header: Vec<String>,
        rows: Vec<Vec<String>>,
    },
}

/// A report under construction.
pub struct Doc {
    title: String,
    blocks: Vec<Block>,
}

impl Doc {
    /// An empty report titled `title` (the terminal prints it as the first line).
    pub fn new(title: impl Into<String>) -> Doc {
        Doc {
            title: title.into(),
            blocks: Vec::new(),
        }
    }

    /// Adds a section heading.
    pub fn heading(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Heading(text.into()));
    }

    /// Adds a line of prose.
    pub fn text(&mut self, text: impl Into<String>) {
        self.blocks.push(Block::Text(text.into()));
    }

    /// Adds a table.
    pub fn table(&mut self, header: &[&str], rows: Vec<Vec<String>>) {
        self.blocks.push(Block::Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows,
        });
    }

    /// The report for a terminal: aligned tables, headings as plain lines.
    pub fn terminal(&self) -> String {
        let mut out = format!("{}\n", self.title);
        let mut last_was_text = false;
        for b in &self.blocks {
            match b {
                Block::Heading(h) => {
                    out.push_str(&format!("\n{h}\n"));
                    last_was_text = false;
                }
                Block::Text(t) => {
                    if !last_was_text {
                        out.push('\n');
                    }
                    out.push_str(t);
                    out.push('\n');
                    last_was_text = true;
                }
                Block::Table { header, rows } => {
                    let h: Vec<&str> = header.iter().map(String::as_str).collect();
                    out.push('\n');
                    out.push_str(&render(&h, rows));
                    out.push('\n');
                    last_was_text = false;
                }
            }
        }
        out
    }

    /// The report as Markdown: `#` title, `##` headings, paragraphs, pipe tables with the
    /// figures right-aligned.
    pub fn markdown(&self) -> String {
        let mut out = format!("# {}\n", escape(&self.title));
        for b in &self.blocks {
            out.push('\n');
            match b {
                Block::Heading(h) => out.push_str(&format!("## {}\n", escape(h))),
                Block::Text(t) => out.push_str(&format!("{}\n", escape(t))),
                Block::Table { header, rows } => {
                    let line = |cells: &[String]| {
                        let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
                        format!("| {} |\n", cells.join(" | "))
                    };
                    out.push_str(&line(header));
                    let align: Vec<&str> = (0..header.len())
                        .map(|i| if i == 0 { "---" } else { "---:" })
                        .collect();
                    out.push_str(&format!("|{}|\n", align.join("|")));
                    for r in rows {
                        out.push_str(&line(r));
                    }
                }
            }
        }
        out
    }
}

/// Markdown-escapes characters that would start emphasis or markup in prose.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '_' | '`' | '<' | '>' | '[' | ']' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A table cell: escaped, with no line breaks.
fn cell(s: &str) -> String {
    escape(&s.replace('\n', " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Doc {
        let mut d = Doc::new("digits-mlp on AMD EPYC");
        d.heading("Roofline");
        d.table(
            &["class", "FPO", "time"],
            vec![
                vec!["matmul".into(), "18.71 M".into(), "151.6 µs".into()],
                vec!["a|b".into(), "1".into(), "2".into()],
            ],
        );
        d.text("energy: not measured (no powercap directory)");
        d.text("floor = max(FPO / peak, bytes / bandwidth)");
        d
    }

    #[test]
    fn markdown_has_title_headings_and_aligned_pipe_tables() {
        let md = sample().markdown();
        let lines: Vec<&str> = md.lines().collect();
        assert_eq!(lines[0], "# digits-mlp on AMD EPYC");
        assert!(lines.contains(&"## Roofline"), "{md}");
        assert!(lines.contains(&"| class | FPO | time |"), "{md}");
        assert!(lines.contains(&"|---|---:|---:|"), "{md}");
        assert!(lines.contains(&"| matmul | 18.71 M | 151.6 µs |"), "{md}");
        // A pipe inside a cell must not split the row.
        assert!(lines.contains(&"| a\\|b | 1 | 2 |"), "{md}");
        // Each line of prose is its own paragraph.
        let i = lines.iter().position(|l| l.starts_with("energy")).unwrap();
        assert_eq!(lines[i + 1], "");
    }

    #[test]
    fn terminal_and_markdown_carry_the_same_figures() {
        let d = sample();
        let (term, md) = (d.terminal(), d.markdown());
        for figure in ["18.71 M", "151.6 µs", "not measured", "Roofline"] {
            assert!(term.contains(figure) && md.contains(figure), "{figure}");
        }
        assert!(term.starts_with("digits-mlp on AMD EPYC\n"));
        assert!(term.contains("matmul  18.71 M  151.6 µs"), "{term}");
    }
}
