//! `supportbot flows check`: validates the flows directory and replays the transcript
//! tests kept next to the flows (`flows/tests/*.toml`).
//!
//! A transcript is visitor turns with the text each bot reply must contain, replayed
//! through the real engine. Orders come from `[[order]]` fixtures in the test file (they
//! stand in for the shop's order system, which is outside us); knowledge-base searches
//! find nothing, so transcripts test flows, not answers.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::engine::AnswerPolicy;
use crate::engine::driver::{Ports, drive};
use crate::engine::{ConversationState, Event, LookupOutcome, Reply};
use crate::flows::{BotScript, FlowError, line_of, toml_error};
use crate::ids::Seq;
use crate::kb::KbHit;
use crate::orders::{Order, OrderInput, lookup::order_slots};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestFile {
    #[serde(default)]
    order: Vec<OrderInput>,
    #[serde(default)]
    transcript: Vec<toml::Spanned<Transcript>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Transcript {
    name: String,
    #[serde(default = "default_locale")]
    locale: String,
    turn: Vec<Turn>,
}

fn default_locale() -> String {
    "en-GB".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Turn {
    /// Typed text…
    #[serde(default)]
    visitor: Option<String>,
    /// …or a clicked quick reply's value.
    #[serde(default)]
    choice: Option<String>,
    /// Text each bot reply must contain, in order (exactly as many replies).
    #[serde(default)]
    bot: Vec<String>,
    /// Quick-reply values the last reply must offer.
    #[serde(default)]
    offers: Vec<String>,
    /// A handoff must (true) or must not (false) be requested.
    #[serde(default)]
    handoff: Option<bool>,
    /// Minutes passing before this turn (timeouts).
    #[serde(default)]
    wait_minutes: u32,
}

/// One failed transcript.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptFailure {
    /// File and line of the transcript.
    pub location: String,
    /// Its name.
    pub name: String,
    /// What differed.
    pub message: String,
}

/// What `flows check` found.
#[derive(Debug, Default)]
pub struct FlowCheckReport {
    /// Invalid flows (the server would not start with them).
    pub errors: Vec<FlowError>,
    /// Problems that do not stop loading (missing translations).
    pub warnings: Vec<FlowError>,
    /// Transcripts replayed.
    pub transcripts: usize,
    /// Transcripts that failed.
    pub failures: Vec<TranscriptFailure>,
}

impl FlowCheckReport {
    /// True when everything is valid and every transcript passed.
    #[must_use]
    pub fn passed(&self) -> bool {
        self.errors.is_empty() && self.failures.is_empty()
    }
}

/// Validates `flows_dir` and replays its transcripts, printing findings to `out`.
///
/// # Errors
/// Only when writing to `out` fails.
pub fn run(flows_dir: &Path, out: &mut dyn Write) -> std::io::Result<FlowCheckReport> {
    let mut report = FlowCheckReport::default();
    let script = match BotScript::load(flows_dir) {
        Ok(script) => script,
        Err(errors) => {
            for e in &errors {
                writeln!(out, "error: {e}")?;
            }
            report.errors = errors;
            writeln!(out, "FAILED: {} errors", report.errors.len())?;
            return Ok(report);
        }
    };
    for w in &script.warnings {
        writeln!(out, "warning: {w}")?;
    }
    report.warnings.clone_from(&script.warnings);
    let mut files: Vec<PathBuf> = std::fs::read_dir(flows_dir.join("tests"))
        .map(|entries| {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect()
        })
        .unwrap_or_default();
    files.sort();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                report.errors.push(FlowError { path: path.clone(), line: None, message: format!("cannot read: {e}") });
                continue;
            }
        };
        let file: TestFile = match toml::from_str(&text) {
            Ok(file) => file,
            Err(e) => {
                report.errors.push(toml_error(&path, &text, &e));
                continue;
            }
        };
        let now = Utc::now();
        let mut orders = Vec::new();
        for input in file.order {
            let id = input.id.clone().unwrap_or_default();
            match input.into_order(&id, now) {
                Ok(order) => orders.push(order),
                Err(fields) => report.errors.push(FlowError {
                    path: path.clone(),
                    line: None,
                    message: format!(
                        "order fixture {id:?}: {}",
                        fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ")
                    ),
                }),
            }
        }
        for spanned in file.transcript {
            let location = format!("{}:{}", path.display(), line_of(&text, spanned.span().start));
            let transcript = spanned.into_inner();
            report.transcripts += 1;
            if let Err(message) = replay(&script, &orders, &transcript) {
                writeln!(out, "FAIL {location} {:?}: {message}", transcript.name)?;
                report.failures.push(TranscriptFailure { location, name: transcript.name, message });
            }
        }
    }
    for e in &report.errors {
        writeln!(out, "error: {e}")?;
    }
    writeln!(
        out,
        "{}: {} errors, {} warnings, {} of {} transcripts passed",
        if report.passed() { "ok" } else { "FAILED" },
        report.errors.len(),
        report.warnings.len(),
        report.transcripts - report.failures.len(),
        report.transcripts
    )?;
    Ok(report)
}

/// Transcripts test flows, not answers: searches find nothing, and orders come from the
/// test file's fixtures (standing in for the shop).
struct FixturePorts<'a> {
    orders: &'a [Order],
}

impl Ports for FixturePorts<'_> {
    type Error = std::convert::Infallible;

    fn search(&mut self, _: &str, _: &str, _: Option<&str>) -> Result<Vec<KbHit>, Self::Error> {
        Ok(Vec::new())
    }

    fn lookup_order(&mut self, order_id: &str, proof: &str) -> Option<LookupOutcome> {
        Some(match self.orders.iter().find(|o| o.id.eq_ignore_ascii_case(order_id)) {
            Some(order) if order.matches_proof(proof) => LookupOutcome::Found(order_slots(order)),
            _ => LookupOutcome::NotFound,
        })
    }
}

/// Replays one transcript; the error says which turn differed and how.
fn replay(script: &BotScript, orders: &[Order], transcript: &Transcript) -> Result<(), String> {
    let policy = AnswerPolicy::default();
    let mut now: DateTime<Utc> = Utc::now();
    let mut state = ConversationState::new(Some(&transcript.locale));
    for (n, turn) in transcript.turn.iter().enumerate() {
        let turn_no = n + 1;
        now += chrono::Duration::minutes(i64::from(turn.wait_minutes));
        let seq = Seq(2 * turn_no as i64);
        let first = match (&turn.visitor, &turn.choice) {
            (Some(text), None) => Event::VisitorText { seq, text: text.clone() },
            (None, Some(value)) => Event::VisitorChoice { seq, value: value.clone() },
            _ => return Err(format!("turn {turn_no}: give exactly one of `visitor` or `choice`")),
        };
        let mut ports = FixturePorts { orders };
        let Ok(step) = drive(&state, first, script, &policy, now, &mut ports);
        let replies: Vec<Reply> = step.replies().cloned().collect();
        let handoff = step.requests_handoff();
        state = step.state;
        let got: Vec<&str> = replies.iter().map(|r| r.text.as_str()).collect();
        if got.len() != turn.bot.len() {
            return Err(format!("turn {turn_no}: expected {} bot replies, got {}: {got:?}", turn.bot.len(), got.len()));
        }
        for (i, (want, text)) in turn.bot.iter().zip(&got).enumerate() {
            if !text.contains(want.as_str()) {
                return Err(format!("turn {turn_no}, reply {}: expected to contain {want:?}, got {text:?}", i + 1));
            }
        }
        if !turn.offers.is_empty() {
            let offered: Vec<&str> = replies
                .last()
                .map(|r| r.extras.quick_replies.iter().map(|q| q.value.as_str()).collect())
                .unwrap_or_default();
            if offered != turn.offers.iter().map(String::as_str).collect::<Vec<_>>() {
                return Err(format!("turn {turn_no}: expected quick replies {:?}, got {offered:?}", turn.offers));
            }
        }
        if let Some(want) = turn.handoff {
            if want != handoff {
                return Err(format!("turn {turn_no}: expected handoff {want}, got {handoff}"));
            }
        }
    }
    Ok(())
}
