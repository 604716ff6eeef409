//! `supportbot kb check`: everything an editor should fix before a change goes live.
//!
//! Errors make a file unusable (the server leaves it out or refuses the change); warnings
//! are quality problems: links to articles that do not exist, missing translations, front
//! matter keys that are probably typos, languages without a dedicated analyzer.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use pulldown_cmark::{Event, Parser, Tag};

use super::analysis::AnalyzerKind;
use super::content::{Article, ContentError, KbContent, RESERVED_SLUG};

/// Problems found in a knowledge-base directory.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Files or entries that cannot be used.
    pub errors: Vec<ContentError>,
    /// Things that work but should be fixed.
    pub warnings: Vec<ContentError>,
}

/// The language other translations are compared against.
pub const SOURCE_LANG: &str = "en";

/// Validates loaded content beyond parsing: links, translations, keys, languages.
#[must_use]
pub fn check_content(content: &KbContent) -> CheckReport {
    let mut report = CheckReport { errors: content.errors.clone(), warnings: Vec::new() };
    let articles: BTreeSet<(&str, &str)> =
        content.articles.iter().map(|a| (a.lang.as_str(), a.slug.as_str())).collect();
    let faqs: BTreeSet<(&str, &str)> = content.faqs.iter().map(|f| (f.lang.as_str(), f.id.as_str())).collect();
    for article in &content.articles {
        for key in &article.unknown_keys {
            report.warnings.push(warning(
                &article.path,
                None,
                format!("unknown front matter key {key:?} (known: title, tags, summary)"),
            ));
        }
        if article.summary.is_none() {
            report.warnings.push(warning(
                &article.path,
                Some(2),
                "no summary: the bot will answer with the first paragraph".into(),
            ));
        }
        for (line, target) in links(article) {
            if let Some((lang, slug, fragment)) = resolve_link(&article.lang, &target) {
                let exists = if slug == RESERVED_SLUG {
                    fragment.is_none_or(|id| faqs.contains(&(lang.as_str(), id.as_str())))
                } else {
                    articles.contains(&(lang.as_str(), slug.as_str()))
                };
                if !exists {
                    report.errors.push(ContentError {
                        path: article.path.clone(),
                        line: Some(line),
                        message: format!("link to {target:?}: no such article or FAQ entry in {lang}"),
                    });
                }
            }
        }
    }
    for lang in content.languages() {
        if AnalyzerKind::for_lang(&lang) == AnalyzerKind::Generic {
            report.warnings.push(warning(
                Path::new(&format!("articles/{lang}")),
                None,
                format!("no language-specific analyzer for {lang:?}: matching uses generic word splitting"),
            ));
        }
    }
    missing_translations(content, &mut report);
    report
}

fn warning(path: &Path, line: Option<usize>, message: String) -> ContentError {
    ContentError { path: path.to_owned(), line, message }
}

/// Relative link targets in an article body, with their file line numbers.
fn links(article: &Article) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (event, range) in Parser::new(&article.body).into_offset_iter() {
        if let Event::Start(Tag::Link { dest_url, .. }) = event {
            let line = article.body_line + article.body[..range.start].matches('\n').count();
            out.push((line, dest_url.to_string()));
        }
    }
    out
}

/// Resolves a link written in an article of `from_lang` to (lang, slug, fragment), or `None`
/// for links that leave the knowledge base (http, mailto, in-page anchors).
fn resolve_link(from_lang: &str, target: &str) -> Option<(String, String, Option<String>)> {
    if target.is_empty() || target.starts_with('#') || target.contains(':') {
        return None;
    }
    let (path, fragment) = match target.split_once('#') {
        Some((p, f)) => (p, Some(f.to_owned())),
        None => (target, None),
    };
    let path = path.split('?').next().unwrap_or(path).trim_end_matches('/').trim_end_matches(".md");
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    let (lang, slug) = match parts.as_slice() {
        [slug] => (from_lang.to_owned(), (*slug).to_owned()),
        ["..", lang, slug] | ["kb", lang, slug] => ((*lang).to_owned(), (*slug).to_owned()),
        _ => return None,
    };
    Some((lang, slug, fragment))
}

fn missing_translations(content: &KbContent, report: &mut CheckReport) {
    let langs = content.languages();
    if langs.len() < 2 || !langs.iter().any(|l| l == SOURCE_LANG) {
        return;
    }
    let mut ids: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for a in &content.articles {
        ids.entry(a.lang.as_str()).or_default().insert(a.slug.as_str());
    }
    for f in &content.faqs {
        ids.entry(f.lang.as_str()).or_default().insert(f.id.as_str());
    }
    let source = ids.get(SOURCE_LANG).cloned().unwrap_or_default();
    for lang in langs.iter().filter(|l| *l != SOURCE_LANG) {
        let have = ids.get(lang.as_str()).cloned().unwrap_or_default();
        let missing: Vec<&str> = source.difference(&have).copied().collect();
        if !missing.is_empty() {
            report.warnings.push(warning(
                Path::new(&format!("articles/{lang}")),
                None,
                format!(
                    "{} of {} {SOURCE_LANG} ids have no {lang} translation: {}",
                    missing.len(),
                    source.len(),
                    missing.join(", ")
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_resolve_relative_to_the_article_language() {
        assert_eq!(resolve_link("en", "returns-policy"), Some(("en".into(), "returns-policy".into(), None)));
        assert_eq!(resolve_link("pl", "../en/returns-policy"), Some(("en".into(), "returns-policy".into(), None)));
        assert_eq!(
            resolve_link("en", "/kb/en/faq#gift-card-expiry"),
            Some(("en".into(), "faq".into(), Some("gift-card-expiry".into())))
        );
        assert_eq!(resolve_link("en", "https://example.com/x"), None);
        assert_eq!(resolve_link("en", "mailto:help@x"), None);
        assert_eq!(resolve_link("en", "#section"), None);
    }

    #[test]
    fn broken_links_and_unknown_keys_are_reported_with_lines() {
        let dir = tempfile::tempdir().expect("temp");
        let en = dir.path().join("articles/en");
        std::fs::create_dir_all(&en).expect("mkdir");
        std::fs::write(en.join("a.md"), "---\ntitle: A\nsumary: typo\n---\nSee [b](b).\n\nAnd [gone](missing).\n")
            .expect("write");
        std::fs::write(en.join("b.md"), "---\ntitle: B\nsummary: ok\n---\nBack to [a](a).\n").expect("write");
        let content = KbContent::load(dir.path()).expect("load");
        let report = check_content(&content);
        let errors: Vec<String> = report.errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("a.md:7") && errors[0].contains("missing"), "{errors:?}");
        assert!(report.warnings.iter().any(|w| w.message.contains("\"sumary\"")), "{:?}", report.warnings);
    }
}
