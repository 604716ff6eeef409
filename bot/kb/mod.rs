//! The knowledge base: editor content, its tantivy index, and answering questions from it.
//!
//! Knows nothing about conversations: it takes a question and a language and returns
//! ranked hits with a confidence; the engine decides what to say.

pub mod analysis;
pub mod check;
pub mod chinese;
pub mod content;
pub mod editor;
pub mod gaps;
pub mod index;
pub mod phrase_model;
pub mod query;
pub mod reload;
pub mod render;
mod search;

use std::path::{Path, PathBuf};

pub use content::{Article, ContentError, FaqEntry, KbContent};
pub use search::{DocKind, KbHit, KnowledgeBase};

/// Failures of the knowledge-base machinery (not of content, see [`ContentError`]).
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// Tantivy failed to build, open or search the index.
    #[error("search index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// A file or directory could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
}

impl KbError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io { path: path.to_owned(), source }
    }
}

/// The knowledge base currently serving answers; `None` until the first load finishes.
/// Readers take a cheap snapshot; a reload swaps the whole thing atomically.
pub type SharedKb = std::sync::Arc<arc_swap::ArcSwapOption<KnowledgeBase>>;
