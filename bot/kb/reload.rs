//! Keeping the served knowledge base in step with the files: load at start, then watch
//! the directory and re-index in the background, swapping the searcher atomically.
//!
//! A change that leaves any file broken is not swapped in: the last good knowledge base
//! keeps answering and the problems are kept in [`KbStatus`] for editors to see. At start,
//! with nothing to fall back to, the valid files are served and the broken ones reported.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::analysis::AnalysisOptions;
use super::{ContentError, KbContent, KbError, KnowledgeBase, SharedKb};

/// Quiet period after the last file event before re-indexing (editors save in bursts).
const DEBOUNCE: Duration = Duration::from_millis(300);

/// What editors need to know about the knowledge base right now.
#[derive(Debug, Clone, Default)]
pub struct KbStatus {
    /// Fingerprint of the content being served.
    pub serving: Option<String>,
    /// Problems found in the files at the last load attempt (empty when all is well).
    pub errors: Vec<ContentError>,
    /// True when the last attempt was rejected and an older version is still served.
    pub stale: bool,
    /// Number of successful loads since start.
    pub generation: u64,
}

/// Loads, reloads and watches one knowledge-base directory.
#[derive(Clone)]
pub struct KbService {
    kb: SharedKb,
    status: Arc<ArcSwap<KbStatus>>,
    kb_dir: PathBuf,
    index_root: PathBuf,
    /// One reload at a time: a reload that starts later reads newer files, so it must
    /// also finish later (the watcher and an API edit can both trigger one).
    reloading: Arc<std::sync::Mutex<()>>,
}

impl KbService {
    /// A service that will serve `kb_dir`, keeping indexes under `index_root`.
    #[must_use]
    pub fn new(kb: SharedKb, kb_dir: PathBuf, index_root: PathBuf) -> Self {
        Self {
            kb,
            status: Arc::new(ArcSwap::from_pointee(KbStatus::default())),
            kb_dir,
            index_root,
            reloading: Arc::new(std::sync::Mutex::new(())),
        }
    }

    /// The knowledge base being served.
    #[must_use]
    pub fn shared(&self) -> &SharedKb {
        &self.kb
    }

    /// Current status.
    #[must_use]
    pub fn status(&self) -> Arc<KbStatus> {
        self.status.load_full()
    }

    /// Loads the directory now (blocking) and swaps it in if it may be served.
    ///
    /// # Errors
    /// When the directory cannot be read or the index cannot be built; the served
    /// knowledge base is left as it was.
    pub fn reload(&self) -> Result<(), KbError> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let started = Instant::now();
        let content =
            KbContent::load(&self.kb_dir).map_err(|e| KbError::Io { path: self.kb_dir.clone(), source: e })?;
        let previous = self.status.load_full();
        let have_kb = self.kb.load().is_some();
        if have_kb && previous.serving.as_deref() == Some(content.fingerprint.as_str()) {
            return Ok(());
        }
        for problem in &content.errors {
            warn!(%problem, "knowledge-base file has a problem");
        }
        if have_kb && !content.errors.is_empty() {
            warn!(errors = content.errors.len(), "keeping the last good knowledge base until the files are fixed");
            self.status.store(Arc::new(KbStatus { errors: content.errors, stale: true, ..(*previous).clone() }));
            return Ok(());
        }
        let fingerprint = content.fingerprint.clone();
        let errors = content.errors.clone();
        let (articles, faqs) = (content.articles.len(), content.faqs.len());
        let dir = self.index_root.join(&fingerprint[..16.min(fingerprint.len())]);
        let (kb, rebuilt) = KnowledgeBase::open(content, &dir, AnalysisOptions::default())?;
        self.kb.store(Some(Arc::new(kb)));
        self.status.store(Arc::new(KbStatus {
            serving: Some(fingerprint),
            errors,
            stale: false,
            generation: previous.generation + 1,
        }));
        remove_other_indexes(&self.index_root, &dir);
        info!(articles, faqs, rebuilt, elapsed_ms = started.elapsed().as_millis(), "knowledge base loaded");
        Ok(())
    }

    /// Loads in the background, then keeps watching the directory for changes.
    /// Returns the watcher, which stops watching when dropped.
    pub fn spawn(self) -> Option<notify::RecommendedWatcher> {
        let (events, mut changed) = mpsc::unbounded_channel::<()>();
        let watcher = match notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok_and(|e| !e.kind.is_access()) {
                let _ = events.send(());
            }
        }) {
            Ok(mut watcher) => match watcher.watch(&self.kb_dir, RecursiveMode::Recursive) {
                Ok(()) => Some(watcher),
                Err(e) => {
                    warn!(error = %e, dir = %self.kb_dir.display(), "cannot watch the knowledge base; edits need a restart");
                    None
                }
            },
            Err(e) => {
                warn!(error = %e, "file watching unavailable; edits need a restart");
                None
            }
        };
        tokio::spawn(async move {
            self.reload_in_background().await;
            while changed.recv().await.is_some() {
                // Wait for a quiet period so a burst of saves is one re-index.
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, changed.recv()).await {}
                self.reload_in_background().await;
            }
        });
        watcher
    }

    async fn reload_in_background(&self) {
        let service = self.clone();
        match tokio::task::spawn_blocking(move || service.reload()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => error!(error = %e, "knowledge base reload failed; still serving the previous one"),
            Err(e) => error!(error = %e, "knowledge base reload panicked"),
        }
    }
}

/// Deletes index directories other than `keep` (open readers keep their files on Unix).
fn remove_other_indexes(root: &Path, keep: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path != keep && path.is_dir() {
            if let Err(e) = std::fs::remove_dir_all(&path) {
                warn!(error = %e, path = %path.display(), "cannot remove old index");
            }
        }
    }
}
