//! Turning editor Markdown into what visitors see: plain chat text, and sanitised HTML pages.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd, html};

use super::content::{Article, FaqEntry};

fn markdown_options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH
}

/// Markdown as chat text: paragraphs separated by blank lines, list items as bullets,
/// absolute links kept as `text (url)`, formatting dropped.
#[must_use]
pub fn markdown_to_plain(markdown: &str) -> String {
    let mut out = String::new();
    let mut link_stack: Vec<String> = Vec::new();
    let mut list_depth = 0usize;
    for event in Parser::new_ext(markdown, markdown_options()) {
        match event {
            Event::Text(t) | Event::Code(t) => out.push_str(&t),
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::Start(Tag::Item) => {
                if !out.is_empty() && !out.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&"  ".repeat(list_depth.saturating_sub(1)));
                out.push_str("• ");
            }
            Event::Start(Tag::List(_)) => list_depth += 1,
            Event::End(TagEnd::List(_)) => {
                list_depth = list_depth.saturating_sub(1);
                if list_depth == 0 {
                    out.push_str("\n\n");
                }
            }
            Event::Start(Tag::Link { dest_url, .. }) => link_stack.push(dest_url.to_string()),
            Event::End(TagEnd::Link) => {
                if let Some(url) = link_stack.pop() {
                    if url.starts_with("https://") || url.starts_with("http://") {
                        out.push_str(&format!(" ({url})"));
                    }
                }
            }
            Event::End(TagEnd::Paragraph | TagEnd::Heading(_) | TagEnd::CodeBlock | TagEnd::BlockQuote(_))
                if list_depth == 0 =>
            {
                out.push_str("\n\n");
            }
            Event::End(TagEnd::TableRow | TagEnd::TableHead) => out.push('\n'),
            Event::End(TagEnd::TableCell) => out.push_str(" | "),
            _ => {}
        }
    }
    let lines: Vec<&str> = out.lines().map(str::trim_end).collect();
    let mut text = lines.join("\n");
    while text.contains("\n\n\n") {
        text = text.replace("\n\n\n", "\n\n");
    }
    text.trim().to_owned()
}

/// The first paragraph of a Markdown body, as plain text (the fallback chat answer).
#[must_use]
pub fn first_paragraph(markdown: &str) -> String {
    let plain = markdown_to_plain(markdown);
    plain.split("\n\n").find(|p| !p.trim().is_empty()).unwrap_or_default().trim().to_owned()
}

/// Markdown to HTML with anything unsafe removed.
#[must_use]
pub fn markdown_to_safe_html(markdown: &str) -> String {
    let mut raw = String::new();
    html::push_html(&mut raw, Parser::new_ext(markdown, markdown_options()));
    ammonia::Builder::default().link_rel(Some("noopener")).clean(&raw).to_string()
}

/// Escapes text for HTML element content and attribute values.
#[must_use]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

const PAGE_STYLE: &str = "body{font:16px/1.6 system-ui,sans-serif;color:#1f2933;max-width:46rem;margin:2rem auto;padding:0 1rem}\
a{color:#0b5cad}h1{line-height:1.2}table{border-collapse:collapse}td,th{border:1px solid #ccd;padding:.3rem .6rem}\
nav{font-size:.9rem;margin-bottom:1rem}.tags{color:#52606d;font-size:.9rem}dt{font-weight:600;margin-top:1.2rem}";

fn page(lang: &str, title: &str, body_html: &str) -> String {
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{PAGE_STYLE}</style></head><body>\
         <nav><a href=\"/kb/{lang}/\">Help centre</a></nav><main>{body_html}</main></body></html>",
        lang = escape_html(lang),
        title = escape_html(title),
    )
}

/// The full article page at `/kb/<lang>/<slug>`.
#[must_use]
pub fn article_page(article: &Article) -> String {
    let tags = if article.tags.is_empty() {
        String::new()
    } else {
        format!("<p class=\"tags\">{}</p>", escape_html(&article.tags.join(" · ")))
    };
    let body = format!(
        "<article><h1>{}</h1>{tags}{}</article>",
        escape_html(&article.title),
        markdown_to_safe_html(&article.body)
    );
    page(&article.lang, &article.title, &body)
}

/// The FAQ page at `/kb/<lang>/faq`, one anchor per entry id.
#[must_use]
pub fn faq_page(lang: &str, entries: &[&FaqEntry]) -> String {
    let mut body = String::from("<h1>Frequently asked questions</h1><dl>");
    for entry in entries {
        body.push_str(&format!(
            "<dt id=\"{}\">{}</dt><dd>{}</dd>",
            escape_html(&entry.id),
            escape_html(&entry.question),
            markdown_to_safe_html(&entry.answer)
        ));
    }
    body.push_str("</dl>");
    page(lang, "Frequently asked questions", &body)
}

/// The index page at `/kb/<lang>/`: every article and a link to the FAQ.
#[must_use]
pub fn index_page(lang: &str, articles: &[&Article]) -> String {
    let mut body = String::from("<h1>Help centre</h1><ul>");
    for a in articles {
        body.push_str(&format!("<li><a href=\"{}\">{}</a></li>", escape_html(&a.slug), escape_html(&a.title)));
    }
    body.push_str("</ul><p><a href=\"faq\">Frequently asked questions</a></p>");
    page(lang, "Help centre", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_keeps_structure_not_markup() {
        let md = "We ship **fast**.\n\n- UK: 2 days\n- EU: 5 days\n\nSee [our page](https://x.example/a) or [returns](returns).";
        assert_eq!(
            markdown_to_plain(md),
            "We ship fast.\n\n• UK: 2 days\n• EU: 5 days\n\nSee our page (https://x.example/a) or returns."
        );
    }

    #[test]
    fn html_is_sanitised() {
        let html = markdown_to_safe_html("Hi <script>alert(1)</script><img src=x onerror=alert(1)>");
        assert!(!html.contains("<script"));
        assert!(!html.contains("onerror"));
    }
}
