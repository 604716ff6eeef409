//! How sure the engine must be before it answers: configuration the engine reads, so it
//! lives with the engine and the config module only fills it in.

/// Confidence thresholds that decide between answering and the honest fallback.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerPolicy {
    /// A hit at or above this confidence is given as the answer.
    pub min_confidence: f32,
    /// Below the answer threshold, hits at or above this are offered as related articles.
    pub related_min_confidence: f32,
    /// Honest fallbacks in a row after which the chat goes to a person (0: never).
    pub handoff_after_fallbacks: u32,
}

impl Default for AnswerPolicy {
    fn default() -> Self {
        // Calibrated on knowledge-base/tests (see docs/search.md).
        Self { min_confidence: 0.45, related_min_confidence: 0.2, handoff_after_fallbacks: 2 }
    }
}
