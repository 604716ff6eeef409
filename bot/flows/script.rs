//! Scripted flows (`flows/*.toml`): intents that start them, and their steps.
//!
//! A flow is data: editors change it without recompiling. It is validated completely at
//! load (`supportbot flows check` prints the same findings): unknown steps and step
//! types, unreachable steps, slots used before anything sets them, bad regexes and
//! messages missing from a catalog, each with file and line.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use regex::{Regex, RegexBuilder};
use serde::Deserialize;
use toml::Spanned;

use super::{Catalog, FlowError, line_of, toml_error};

/// The shipped flows, used when the flows directory has no flow files.
const BUILTIN: &[(&str, &str)] = &[("order-tracking.toml", include_str!("../../flows/order-tracking.toml"))];

/// Files in the flows directory that are not flows.
const NOT_FLOWS: &[&str] = &["smalltalk.toml"];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    intent: Vec<RawIntent>,
    #[serde(default)]
    flow: Vec<RawFlow>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    id: Spanned<String>,
    flow: String,
    patterns: BTreeMap<String, Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlow {
    id: Spanned<String>,
    start: String,
    #[serde(default = "default_max_steps")]
    max_steps: u32,
    #[serde(default = "default_timeout")]
    timeout_minutes: u32,
    /// Slots filled before the flow starts (by its intent, or `order.*` for a flow
    /// started with an order's fields, such as a delay notice).
    #[serde(default)]
    slots: Vec<String>,
    step: Vec<Spanned<Step>>,
}

fn default_max_steps() -> u32 {
    40
}

fn default_timeout() -> u32 {
    30
}

/// One option of a `choice` step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    /// Catalog key of the button label.
    pub label: String,
    /// Value sent back when clicked.
    pub value: String,
    /// Step to go to.
    pub next: String,
}

/// What a step does. Message fields name catalog keys (`flows/messages/<lang>.toml`), whose
/// `{slot}` placeholders are filled from the flow's slots.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum StepKind {
    /// Say something, then go on.
    Say {
        /// Catalog key.
        message: String,
        /// Next step; none ends the flow.
        #[serde(default)]
        next: Option<String>,
    },
    /// Ask for a value and keep it in a slot (skipped when the slot is already filled,
    /// unless `always`).
    Ask {
        /// Slot to fill.
        slot: String,
        /// Ask even when the slot has a value (asking again after a failure).
        #[serde(default)]
        always: bool,
        /// Catalog key of the question.
        message: String,
        /// The answer must match this (case-insensitive); its first capture group (or
        /// the whole match) becomes the slot value.
        #[serde(default)]
        pattern: Option<String>,
        /// Catalog key said when the answer does not match.
        retry: String,
        /// Tries after the first before giving up.
        #[serde(default = "default_retries")]
        max_retries: u32,
        /// Step after a valid answer.
        next: String,
        /// Step after too many invalid answers.
        on_fail: String,
    },
    /// Offer quick replies.
    Choice {
        /// Catalog key of the question.
        message: String,
        /// The buttons.
        options: Vec<ChoiceOption>,
    },
    /// Look an order up in the order source, proving ownership with a slot.
    Lookup {
        /// Slot holding the order number.
        order: String,
        /// Slot holding the e-mail or postcode given as proof.
        proof: String,
        /// Found and the proof matches: the order's fields become `order.*` slots.
        found: String,
        /// Unknown order or wrong proof (the same step, so nothing is given away).
        not_found: String,
        /// The source is down or slow.
        unavailable: String,
        /// Too many wrong proofs for this order or conversation.
        locked: String,
    },
    /// Go to the step named for a slot's value.
    Branch {
        /// Slot to look at.
        on: String,
        /// Value → step.
        cases: BTreeMap<String, String>,
        /// Step when no case matches.
        default: String,
    },
    /// Put a value in a slot (placeholders allowed).
    Set {
        /// Slot.
        slot: String,
        /// Value.
        value: String,
        /// Next step.
        next: String,
    },
    /// Hand the conversation to people.
    Handoff {
        /// Why, for the agent.
        reason: String,
        /// Catalog key said first.
        #[serde(default)]
        message: Option<String>,
    },
    /// Finish the flow.
    End {
        /// Catalog key said first.
        #[serde(default)]
        message: Option<String>,
        /// Ask for a satisfaction rating.
        #[serde(default)]
        csat: bool,
    },
}

fn default_retries() -> u32 {
    2
}

/// A named step.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Step {
    /// Unique within its flow.
    pub id: String,
    /// What it does.
    #[serde(flatten)]
    pub kind: StepKind,
}

/// A validated flow.
#[derive(Debug, Clone)]
pub struct Flow {
    /// Name.
    pub id: String,
    /// First step.
    pub start: String,
    /// Steps run per visitor turn and in total before the flow gives up.
    pub max_steps: u32,
    /// Minutes of silence after which the flow is forgotten.
    pub timeout_minutes: u32,
    steps: HashMap<String, Step>,
    patterns: HashMap<String, Regex>,
}

impl Flow {
    /// A step by id.
    #[must_use]
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.get(id)
    }

    /// The compiled validation pattern of an `ask` step.
    #[must_use]
    pub fn pattern(&self, step: &str) -> Option<&Regex> {
        self.patterns.get(step)
    }
}

/// An intent that starts a flow; named captures fill slots.
#[derive(Debug, Clone)]
pub struct FlowIntent {
    /// Name.
    pub id: String,
    /// Flow it starts.
    pub flow: String,
    patterns: BTreeMap<String, Vec<Regex>>,
}

/// Every flow and its intents.
#[derive(Debug, Clone, Default)]
pub struct FlowSet {
    flows: HashMap<String, Flow>,
    intents: Vec<FlowIntent>,
}

/// A message in a visitor's text that starts a flow.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentMatch {
    /// Flow to start.
    pub flow: String,
    /// Slots filled from named captures.
    pub slots: BTreeMap<String, String>,
}

impl FlowSet {
    /// Errors for flows the code starts by name (notices) that no file defines, placed at
    /// the end of the first flow file (where one would add them).
    fn missing_required_flows(&self, files: &[(PathBuf, String)]) -> Vec<FlowError> {
        let (path, line) = files.first().map_or_else(
            || (PathBuf::from("<flows>"), None),
            |(path, text)| (path.clone(), Some(line_of(text, text.len()))),
        );
        super::REQUIRED_FLOWS
            .iter()
            .filter(|(id, _)| !self.flows.contains_key(*id))
            .map(|(id, why)| FlowError {
                path: path.clone(),
                line,
                message: format!("required flow {id:?} is missing ({why})"),
            })
            .collect()
    }

    /// A flow by id.
    #[must_use]
    pub fn flow(&self, id: &str) -> Option<&Flow> {
        self.flows.get(id)
    }

    /// The first intent matching `text`, trying `lang`'s patterns first, then every language.
    #[must_use]
    pub fn match_intent(&self, text: &str, lang: &str) -> Option<IntentMatch> {
        let primary = crate::kb::analysis::primary_subtag(lang);
        let try_in = |intent: &FlowIntent, l: &str| -> Option<IntentMatch> {
            let caps = intent.patterns.get(l)?.iter().find_map(|re| re.captures(text))?;
            let mut slots = BTreeMap::new();
            for re in intent.patterns.get(l).into_iter().flatten() {
                for name in re.capture_names().flatten() {
                    if let Some(m) = caps.name(name) {
                        slots.insert(name.to_owned(), m.as_str().trim().to_owned());
                    }
                }
            }
            Some(IntentMatch { flow: intent.flow.clone(), slots })
        };
        for l in [lang, primary] {
            if let Some(found) = self.intents.iter().find_map(|i| try_in(i, l)) {
                return Some(found);
            }
        }
        self.intents.iter().find_map(|i| i.patterns.keys().find_map(|l| try_in(i, l)))
    }

    /// Loads every flow file of `dir` (or the built-in flows when there are none) and
    /// validates them against the catalog. Returns the flows and warnings (messages without
    /// a translation, which fall back to English).
    ///
    /// # Errors
    /// Every problem, with file and line.
    pub fn load(dir: &Path, catalog: &Catalog) -> Result<(Self, Vec<FlowError>), Vec<FlowError>> {
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut paths: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "toml"))
                .filter(|p| !p.file_name().is_some_and(|n| NOT_FLOWS.iter().any(|x| n == *x)))
                .collect();
            paths.sort();
            for path in paths {
                match std::fs::read_to_string(&path) {
                    Ok(text) => files.push((path, text)),
                    Err(e) => {
                        return Err(vec![FlowError { path, line: None, message: format!("cannot read: {e}") }]);
                    }
                }
            }
        }
        if files.is_empty() {
            files = BUILTIN
                .iter()
                .map(|(name, text)| (PathBuf::from(format!("<built-in {name}>")), (*text).to_owned()))
                .collect();
        }
        let mut set = FlowSet::default();
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut intent_sources: Vec<(PathBuf, String, RawIntent)> = Vec::new();
        for (path, text) in &files {
            let raw: RawFile = match toml::from_str(text) {
                Ok(raw) => raw,
                Err(e) => {
                    errors.push(toml_error(path, text, &e));
                    continue;
                }
            };
            for flow in raw.flow {
                match build_flow(path, text, flow, catalog, &mut warnings) {
                    Ok(flow) if set.flows.contains_key(&flow.id) => errors.push(FlowError {
                        path: path.clone(),
                        line: None,
                        message: format!("flow {:?} is defined twice", flow.id),
                    }),
                    Ok(flow) => {
                        set.flows.insert(flow.id.clone(), flow);
                    }
                    Err(mut e) => errors.append(&mut e),
                }
            }
            for intent in raw.intent {
                intent_sources.push((path.clone(), text.clone(), intent));
            }
        }
        for (path, text, raw) in intent_sources {
            let line = Some(line_of(&text, raw.id.span().start));
            let id = raw.id.into_inner();
            let Some(flow) = set.flows.get(&raw.flow) else {
                errors.push(FlowError {
                    path,
                    line,
                    message: format!("intent {id:?} starts unknown flow {:?}", raw.flow),
                });
                continue;
            };
            let mut patterns = BTreeMap::new();
            for (lang, sources) in raw.patterns {
                let mut compiled = Vec::new();
                for source in sources {
                    let line = Some(line_of(&text, source.span().start));
                    match RegexBuilder::new(source.get_ref()).case_insensitive(true).size_limit(1 << 20).build() {
                        Ok(re) => {
                            for name in re.capture_names().flatten() {
                                if !flow
                                    .steps
                                    .values()
                                    .any(|s| matches!(&s.kind, StepKind::Ask { slot, .. } if slot == name))
                                    && !name.starts_with('_')
                                {
                                    errors.push(FlowError {
                                        path: path.clone(),
                                        line,
                                        message: format!(
                                            "intent {id:?}: capture {name:?} fills no slot that flow {:?} asks for",
                                            flow.id
                                        ),
                                    });
                                }
                            }
                            compiled.push(re);
                        }
                        Err(e) => errors.push(FlowError {
                            path: path.clone(),
                            line,
                            message: format!("intent {id:?} ({lang}): invalid regex: {e}"),
                        }),
                    }
                }
                patterns.insert(lang, compiled);
            }
            set.intents.push(FlowIntent { id, flow: raw.flow, patterns });
        }
        if errors.is_empty() {
            errors.extend(set.missing_required_flows(&files));
        }
        if errors.is_empty() { Ok((set, warnings)) } else { Err(errors) }
    }
}

/// Slots a lookup fills when the order is found.
pub const ORDER_SLOTS: &[&str] = &[
    "order.id",
    "order.status",
    "order.status_text",
    "order.carrier",
    "order.tracking_number",
    "order.tracking_url",
    "order.expected_delivery",
    "order.delivered_at",
    "order.delay_reason",
    "order.items",
    "order.customer_name",
    "order_id",
];

fn build_flow(
    path: &Path,
    text: &str,
    raw: RawFlow,
    catalog: &Catalog,
    warnings: &mut Vec<FlowError>,
) -> Result<Flow, Vec<FlowError>> {
    let flow_line = Some(line_of(text, raw.id.span().start));
    let id = raw.id.into_inner();
    let mut errors = Vec::new();
    let err = |line: Option<usize>, message: String| FlowError { path: path.to_owned(), line, message };
    let mut steps: HashMap<String, Step> = HashMap::new();
    let mut lines: HashMap<String, usize> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for spanned in raw.step {
        let line = line_of(text, spanned.span().start);
        let step = spanned.into_inner();
        if steps.contains_key(&step.id) {
            errors.push(err(Some(line), format!("flow {id:?}: step {:?} is defined twice", step.id)));
            continue;
        }
        lines.insert(step.id.clone(), line);
        order.push(step.id.clone());
        steps.insert(step.id.clone(), step);
    }
    if !steps.contains_key(&raw.start) {
        errors.push(err(flow_line, format!("flow {id:?}: start step {:?} does not exist", raw.start)));
    }
    if raw.max_steps == 0 || raw.timeout_minutes == 0 {
        errors.push(err(flow_line, format!("flow {id:?}: max_steps and timeout_minutes must be at least 1")));
    }
    let mut patterns = HashMap::new();
    for step_id in &order {
        let step = &steps[step_id];
        let line = Some(lines[step_id]);
        for target in targets(&step.kind) {
            if !steps.contains_key(target) {
                errors.push(err(line, format!("flow {id:?}: step {step_id:?} goes to unknown step {target:?}")));
            }
        }
        for key in messages(&step.kind) {
            if !catalog.has(key) {
                errors.push(err(
                    line,
                    format!("flow {id:?}: step {step_id:?}: message {key:?} is not in messages/en.toml"),
                ));
            }
            for lang in catalog.languages() {
                if !catalog.has_in(&lang, key) {
                    warnings.push(err(
                        line,
                        format!("flow {id:?}: step {step_id:?}: message {key:?} has no {lang} translation"),
                    ));
                }
            }
        }
        if let StepKind::Ask { pattern: Some(source), .. } = &step.kind {
            match RegexBuilder::new(source).case_insensitive(true).size_limit(1 << 20).build() {
                Ok(re) => {
                    patterns.insert(step_id.clone(), re);
                }
                Err(e) => errors.push(err(line, format!("flow {id:?}: step {step_id:?}: invalid pattern: {e}"))),
            }
        }
    }
    // Reachability from the start.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut stack = vec![raw.start.as_str()];
    while let Some(s) = stack.pop() {
        if seen.insert(s) {
            if let Some(step) = steps.get(s) {
                stack.extend(targets(&step.kind));
            }
        }
    }
    for step_id in &order {
        if !seen.contains(step_id.as_str()) {
            errors.push(err(
                Some(lines[step_id]),
                format!("flow {id:?}: step {step_id:?} is unreachable from {:?}", raw.start),
            ));
        }
    }
    // Slots: everything used must be set by some step, a lookup, or be declared.
    let mut defined: BTreeSet<String> = raw.slots.iter().cloned().collect();
    if defined.contains("order.*") {
        // A flow started with an order (a notice) has every field a lookup gives.
        defined.extend(ORDER_SLOTS.iter().map(|s| (*s).to_owned()));
        defined.insert("order_id".to_owned());
    }
    for step in steps.values() {
        match &step.kind {
            StepKind::Ask { slot, .. } | StepKind::Set { slot, .. } => {
                defined.insert(slot.clone());
            }
            StepKind::Lookup { .. } => defined.extend(ORDER_SLOTS.iter().map(|s| (*s).to_owned())),
            _ => {}
        }
    }
    for step_id in &order {
        let step = &steps[step_id];
        let line = Some(lines[step_id]);
        let mut used: Vec<String> = Vec::new();
        match &step.kind {
            StepKind::Branch { on, .. } => used.push(on.clone()),
            StepKind::Lookup { order, proof, .. } => used.extend([order.clone(), proof.clone()]),
            StepKind::Set { value, .. } => used.extend(placeholders(value)),
            _ => {}
        }
        for key in messages(&step.kind) {
            used.extend(placeholders(&catalog.text("en", key, &[])));
        }
        for slot in used {
            if !defined.contains(&slot) {
                errors.push(err(line, format!("flow {id:?}: step {step_id:?} uses slot {slot:?}, which nothing sets")));
            }
        }
    }
    if errors.is_empty() {
        Ok(Flow {
            id,
            start: raw.start,
            max_steps: raw.max_steps,
            timeout_minutes: raw.timeout_minutes,
            steps,
            patterns,
        })
    } else {
        Err(errors)
    }
}

/// Steps a step can go to.
fn targets(kind: &StepKind) -> Vec<&str> {
    match kind {
        StepKind::Say { next, .. } => next.iter().map(String::as_str).collect(),
        StepKind::Ask { next, on_fail, .. } => vec![next, on_fail],
        StepKind::Choice { options, .. } => options.iter().map(|o| o.next.as_str()).collect(),
        StepKind::Lookup { found, not_found, unavailable, locked, .. } => vec![found, not_found, unavailable, locked],
        StepKind::Branch { cases, default, .. } => {
            cases.values().map(String::as_str).chain([default.as_str()]).collect()
        }
        StepKind::Set { next, .. } => vec![next],
        StepKind::Handoff { .. } | StepKind::End { .. } => Vec::new(),
    }
}

/// Catalog keys a step says.
fn messages(kind: &StepKind) -> Vec<&str> {
    match kind {
        StepKind::Say { message, .. } => vec![message],
        StepKind::Ask { message, retry, .. } => vec![message, retry],
        StepKind::Choice { message, options } => {
            std::iter::once(message.as_str()).chain(options.iter().map(|o| o.label.as_str())).collect()
        }
        StepKind::Handoff { message, .. } | StepKind::End { message, .. } => {
            message.iter().map(String::as_str).collect()
        }
        StepKind::Lookup { .. } | StepKind::Branch { .. } | StepKind::Set { .. } => Vec::new(),
    }
}

/// `{name}` placeholders in a template.
#[must_use]
pub fn placeholders(template: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let name = &after[..close];
        if !name.is_empty() && name.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.') {
            out.push(name.to_owned());
        }
        rest = &after[close + 1..];
    }
    out
}
