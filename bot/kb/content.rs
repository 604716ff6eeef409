//! Reading the editor-owned knowledge base (`knowledge-base/`) into memory.
//!
//! Layout: `articles/<lang>/<slug>.md` (YAML front matter + Markdown) and `faq/*.toml`
//! (`[[entry]]` tables). A broken file is reported with its path and line and left out;
//! the rest of the knowledge base still loads.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// A help-centre article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Article {
    /// File name without `.md`; the article's id.
    pub slug: String,
    /// Folder name under `articles/`.
    pub lang: String,
    /// Front matter `title`.
    pub title: String,
    /// Front matter `tags`.
    pub tags: Vec<String>,
    /// Front matter `summary`, the chat answer when present.
    pub summary: Option<String>,
    /// Markdown body after the front matter.
    pub body: String,
    /// 1-based line of the file where the body starts, for error locations.
    pub body_line: usize,
    /// Front matter keys this version does not know (likely typos).
    pub unknown_keys: Vec<String>,
    /// Where it was read from, for error messages.
    pub path: PathBuf,
}

/// One FAQ entry from `faq/*.toml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaqEntry {
    /// Stable id.
    pub id: String,
    /// Language code.
    pub lang: String,
    /// The canonical question.
    pub question: String,
    /// Other ways customers ask the same thing.
    pub also: Vec<String>,
    /// Markdown answer, sent as-is (as plain text) in chat.
    pub answer: String,
    /// Where it was read from.
    pub path: PathBuf,
}

/// A problem with one knowledge-base file, located as precisely as the parser allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentError {
    /// The file at fault.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl fmt::Display for ContentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path.display(), line, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// Everything loaded from a knowledge-base directory.
#[derive(Debug, Clone, Default)]
pub struct KbContent {
    /// Articles in path order.
    pub articles: Vec<Article>,
    /// FAQ entries in file order.
    pub faqs: Vec<FaqEntry>,
    /// Editor synonym lists (`synonyms/<lang>.txt`), by language.
    pub synonyms: std::collections::BTreeMap<String, String>,
    /// Files or entries that were left out, and why.
    pub errors: Vec<ContentError>,
    /// Hash of every content file; a changed fingerprint means the index must be rebuilt.
    pub fingerprint: String,
}

#[derive(Deserialize)]
struct FrontMatter {
    title: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaqFile {
    #[serde(default)]
    entry: Vec<RawFaq>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaq {
    id: String,
    lang: String,
    question: String,
    #[serde(default)]
    also: Vec<String>,
    answer: String,
}

/// The slug reserved for the FAQ listing page.
pub const RESERVED_SLUG: &str = "faq";

/// True for ids made of lowercase ASCII letters, digits and single dashes.
#[must_use]
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
        && !id.ends_with('-')
        && !id.contains("--")
}

/// True for language codes such as `en`, `pl`, `zh-Hans`.
#[must_use]
pub fn is_valid_lang(lang: &str) -> bool {
    let mut parts = lang.split('-');
    let primary_ok =
        parts.next().is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()));
    primary_ok && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

impl KbContent {
    /// Reads a knowledge-base directory. Only an unreadable directory is an error; broken
    /// files are collected in [`KbContent::errors`].
    ///
    /// # Errors
    /// When `dir` itself cannot be read.
    pub fn load(dir: &Path) -> std::io::Result<Self> {
        let mut content = Self::default();
        let mut hasher = Sha256::new();
        let mut files = list_files(&dir.join("articles"), "md")?;
        files.extend(list_files(&dir.join("faq"), "toml")?);
        files.extend(list_files(&dir.join("synonyms"), "txt")?);
        if !dir.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("knowledge-base directory {} does not exist", dir.display()),
            ));
        }
        for path in &files {
            let text = match std::fs::read(path) {
                Ok(bytes) => {
                    hasher.update(path.strip_prefix(dir).unwrap_or(path).to_string_lossy().as_bytes());
                    hasher.update([0]);
                    hasher.update(&bytes);
                    hasher.update([0]);
                    match String::from_utf8(bytes) {
                        Ok(text) => text,
                        Err(_) => {
                            content.errors.push(error(path, None, "file is not valid UTF-8"));
                            continue;
                        }
                    }
                }
                Err(e) => {
                    content.errors.push(error(path, None, &format!("cannot read: {e}")));
                    continue;
                }
            };
            if path.extension().is_some_and(|e| e == "txt") {
                let lang = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
                if is_valid_lang(&lang) {
                    content.synonyms.insert(lang, text);
                } else {
                    content.errors.push(error(path, None, "synonym files are named <lang>.txt, e.g. en.txt"));
                }
            } else if path.extension().is_some_and(|e| e == "md") {
                match parse_article(dir, path, &text) {
                    Ok(article) => content.articles.push(article),
                    Err(e) => content.errors.push(e),
                }
            } else {
                match parse_faq_file(path, &text) {
                    Ok(entries) => content.faqs.extend(entries),
                    Err(e) => content.errors.push(e),
                }
            }
        }
        content.drop_duplicates();
        content.fingerprint = hex::encode(hasher.finalize());
        Ok(content)
    }

    /// Ids must be unique per language across articles and FAQ; later duplicates are dropped.
    fn drop_duplicates(&mut self) {
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut errors = Vec::new();
        self.articles.retain(|a| {
            let fresh = seen.insert((a.lang.clone(), a.slug.clone()));
            if !fresh {
                errors.push(error(&a.path, None, &format!("duplicate id {:?} in language {}", a.slug, a.lang)));
            }
            fresh
        });
        self.faqs.retain(|f| {
            let fresh = seen.insert((f.lang.clone(), f.id.clone()));
            if !fresh {
                errors.push(error(
                    &f.path,
                    None,
                    &format!("duplicate id {:?} in language {} (ids are shared by articles and FAQ)", f.id, f.lang),
                ));
            }
            fresh
        });
        self.errors.extend(errors);
    }

    /// Languages that have any content, sorted.
    #[must_use]
    pub fn languages(&self) -> Vec<String> {
        let mut langs: Vec<String> =
            self.articles.iter().map(|a| a.lang.clone()).chain(self.faqs.iter().map(|f| f.lang.clone())).collect();
        langs.sort();
        langs.dedup();
        langs
    }
}

fn error(path: &Path, line: Option<usize>, message: &str) -> ContentError {
    ContentError { path: path.to_owned(), line, message: message.to_owned() }
}

/// Files with `ext` below `root`, recursively, sorted; a missing root is empty.
fn list_files(root: &Path, ext: &str) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !root.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == ext)
                && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn parse_article(kb_dir: &Path, path: &Path, text: &str) -> Result<Article, ContentError> {
    let rel = path.strip_prefix(kb_dir.join("articles")).unwrap_or(path);
    let parts: Vec<_> = rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    let [lang, file] = parts.as_slice() else {
        return Err(error(path, None, "articles must be at articles/<lang>/<slug>.md"));
    };
    if !is_valid_lang(lang) {
        return Err(error(path, None, &format!("folder {lang:?} is not a language code like en, pl or zh-Hans")));
    }
    let slug = file.trim_end_matches(".md").to_owned();
    if !is_valid_id(&slug) {
        return Err(error(path, None, "file name must be a slug: lowercase letters, digits and dashes"));
    }
    if slug == RESERVED_SLUG {
        return Err(error(path, None, "the slug \"faq\" is reserved for the FAQ page"));
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let Some(rest) = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n")) else {
        return Err(error(path, Some(1), "file must start with a '---' line opening the YAML front matter"));
    };
    let Some((yaml, body)) = split_front_matter(rest) else {
        return Err(error(path, Some(1), "front matter is not closed by a '---' line"));
    };
    let front: FrontMatter = serde_saphyr::from_str(yaml).map_err(|e| {
        // The YAML starts on line 2 of the file.
        let line = e.location().map(|l| usize::try_from(l.line()).unwrap_or(0) + 1);
        error(path, line, &format!("invalid front matter: {e}"))
    })?;
    if front.title.trim().is_empty() {
        return Err(error(path, Some(2), "front matter field \"title\" is empty"));
    }
    Ok(Article {
        slug,
        lang: lang.clone(),
        title: front.title.trim().to_owned(),
        tags: front.tags,
        summary: front.summary.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()),
        body: body.to_owned(),
        body_line: text[..text.len() - body.len()].lines().count() + 1,
        unknown_keys: unknown_front_matter_keys(yaml),
        path: path.to_owned(),
    })
}

const KNOWN_KEYS: [&str; 3] = ["title", "tags", "summary"];

fn unknown_front_matter_keys(yaml: &str) -> Vec<String> {
    serde_saphyr::from_str::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(yaml)
        .map(|map| map.into_keys().filter(|k| !KNOWN_KEYS.contains(&k.as_str())).collect())
        .unwrap_or_default()
}

/// Splits `yaml\n---\nbody` at the closing delimiter line.
fn split_front_matter(rest: &str) -> Option<(&str, &str)> {
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some((&rest[..offset], &rest[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].bytes().filter(|&b| b == b'\n').count() + 1
}

fn parse_faq_file(path: &Path, text: &str) -> Result<Vec<FaqEntry>, ContentError> {
    let file: FaqFile = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        error(path, line, &format!("invalid FAQ file: {}", e.message()))
    })?;
    let mut entries = Vec::new();
    for raw in file.entry {
        let problem = if !is_valid_id(&raw.id) {
            Some(format!("FAQ id {:?} must be lowercase letters, digits and dashes", raw.id))
        } else if !is_valid_lang(&raw.lang) {
            Some(format!("FAQ {:?}: lang {:?} is not a language code", raw.id, raw.lang))
        } else if raw.question.trim().is_empty() || raw.answer.trim().is_empty() {
            Some(format!("FAQ {:?}: question and answer must not be empty", raw.id))
        } else {
            None
        };
        if let Some(message) = problem {
            let line = text.find(&format!("\"{}\"", raw.id)).map(|b| line_of(text, b));
            return Err(error(path, line, &message));
        }
        entries.push(FaqEntry {
            id: raw.id,
            lang: raw.lang,
            question: raw.question.trim().to_owned(),
            also: raw.also.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect(),
            answer: raw.answer.trim().to_owned(),
            path: path.to_owned(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }

    #[test]
    fn loads_articles_and_faq_and_reports_broken_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        write(d, "articles/en/returns.md", "---\ntitle: Returns\ntags: [returns]\nsummary: 30 days.\n---\nBody.\n");
        write(d, "articles/en/broken.md", "---\ntitle: [unclosed\n---\nBody\n");
        write(d, "articles/en/nofront.md", "Just text\n");
        write(d, "faq/a.toml", "[[entry]]\nid = \"x\"\nlang = \"en\"\nquestion = \"Q?\"\nanswer = \"A.\"\n");
        write(d, "faq/dup.toml", "[[entry]]\nid = \"returns\"\nlang = \"en\"\nquestion = \"Q?\"\nanswer = \"A.\"\n");
        write(d, "faq/bad.toml", "[[entry]]\nid = \"y\"\nlang = \"en\"\nquestion = \"Q?\"\nanswr = \"A.\"\n");
        let kb = KbContent::load(d).expect("load");
        assert_eq!(kb.articles.len(), 1);
        assert_eq!(kb.articles[0].summary.as_deref(), Some("30 days."));
        assert_eq!(kb.faqs.len(), 1);
        let messages: Vec<String> = kb.errors.iter().map(ToString::to_string).collect();
        assert_eq!(kb.errors.len(), 4, "{messages:#?}");
        assert!(messages.iter().any(|m| m.contains("broken.md:2")), "{messages:#?}");
        assert!(messages.iter().any(|m| m.contains("nofront.md:1")), "{messages:#?}");
        assert!(messages.iter().any(|m| m.contains("bad.toml:5") && m.contains("answr")), "{messages:#?}");
        assert!(messages.iter().any(|m| m.contains("duplicate id \"returns\"")), "{messages:#?}");
    }

    #[test]
    fn fingerprint_changes_with_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "faq/a.toml", "");
        let a = KbContent::load(dir.path()).expect("load").fingerprint;
        write(dir.path(), "faq/a.toml", "# changed\n");
        let b = KbContent::load(dir.path()).expect("load").fingerprint;
        assert_ne!(a, b);
    }
}
