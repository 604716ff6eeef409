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
    /// When to ask for a satisfaction rating.
    pub csat: CsatPolicy,
}

/// When the bot asks for a satisfaction rating (`[csat]` in the config file). Flows ask
/// where their file says so; an API call asks regardless of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsatPolicy {
    /// Ask when an agent closes the chat.
    pub after_agent_close: bool,
    /// Ask when the visitor says an answer helped.
    pub after_helpful_answer: bool,
    /// Ask when a chat the bot answered has been quiet this many minutes (0: never).
    pub after_inactivity_minutes: u32,
    /// Never ask the same visitor twice within this many days (0: no limit). The visitor
    /// is the conversation, or the same verified identity or e-mail across conversations.
    pub min_days_between: u32,
}

impl Default for CsatPolicy {
    fn default() -> Self {
        Self { after_agent_close: true, after_helpful_answer: true, after_inactivity_minutes: 30, min_days_between: 30 }
    }
}

impl Default for AnswerPolicy {
    fn default() -> Self {
        // Calibrated on knowledge-base/tests (see docs/search.md).
        Self {
            min_confidence: 0.45,
            related_min_confidence: 0.2,
            handoff_after_fallbacks: 2,
            csat: CsatPolicy::default(),
        }
    }
}
