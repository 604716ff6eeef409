//! Figures computed from the event log and the messages (definitions in
//! `docs/metrics.md`). Reading is one query per table; the arithmetic is pure so it can
//! be tested on hand-written facts.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use serde::Serialize;
use sqlx::{Row, SqlitePool};

use super::EventKind;
use crate::store::format_at;

/// Which conversations to count: opened in `[from, to)` and matching the filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsFilter {
    /// Start (inclusive).
    pub from: DateTime<Utc>,
    /// End (exclusive).
    pub to: DateTime<Utc>,
    /// Only chats a team queued or held.
    pub team: Option<String>,
    /// Only chats an agent held.
    pub agent: Option<String>,
    /// Only chats in this language (primary subtag match: `zh` matches `zh-Hant`).
    pub lang: Option<String>,
    /// Width of the series buckets.
    pub interval: Interval,
}

/// Width of a series bucket (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// One hour.
    Hour,
    /// One calendar day.
    Day,
    /// Monday to Sunday.
    Week,
}

impl Interval {
    /// The interval a query parameter names.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "hour" => Some(Self::Hour),
            "day" => Some(Self::Day),
            "week" => Some(Self::Week),
            _ => None,
        }
    }

    fn start_of(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let day = Utc.from_utc_datetime(&at.date_naive().and_time(chrono::NaiveTime::MIN));
        match self {
            Self::Hour => day + Duration::hours(i64::from(chrono::Timelike::hour(&at))),
            Self::Day => day,
            Self::Week => day - Duration::days(i64::from(at.weekday().num_days_from_monday())),
        }
    }

    fn next(self, start: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Self::Hour => start + Duration::hours(1),
            Self::Day => start + Duration::days(1),
            Self::Week => start + Duration::weeks(1),
        }
    }
}

/// One stored event, as the report reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFact {
    /// What.
    pub kind: EventKind,
    /// When (ms since the epoch).
    pub at: i64,
    /// Agent, if any.
    pub agent: Option<String>,
    /// Team, if any.
    pub team: Option<String>,
    /// Detail, by kind.
    pub detail: Option<String>,
    /// The rating.
    pub value: Option<i64>,
}

/// What the report needs to know about one conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationFacts {
    /// When it was opened (ms).
    pub opened_at: i64,
    /// Its language, once known.
    pub lang: Option<String>,
    /// The visitor's first message (ms); none: the visitor never wrote.
    pub first_visitor: Option<i64>,
    /// The first bot or agent message after it (ms).
    pub first_reply: Option<i64>,
    /// Its events, in order.
    pub events: Vec<EventFact>,
}

/// Count, mean and 90th percentile (nearest rank) of durations in seconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stat {
    /// How many measurements.
    pub count: usize,
    /// Mean, seconds.
    pub avg: Option<f64>,
    /// 90th percentile (nearest rank), seconds.
    pub p90: Option<f64>,
}

impl Stat {
    fn of(mut ms: Vec<i64>) -> Self {
        ms.sort_unstable();
        let count = ms.len();
        if count == 0 {
            return Self { count, avg: None, p90: None };
        }
        #[allow(clippy::cast_precision_loss)]
        let avg = ms.iter().sum::<i64>() as f64 / count as f64 / 1000.0;
        let rank = (count * 9).div_ceil(10).max(1) - 1;
        #[allow(clippy::cast_precision_loss)]
        let p90 = ms[rank] as f64 / 1000.0;
        Self { count, avg: Some(round3(avg)), p90: Some(p90) }
    }
}

/// Ratings: how many, the mean and the share of 4 and 5.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Csat {
    /// Ratings given.
    pub ratings: usize,
    /// Mean score (1–5).
    pub avg: Option<f64>,
    /// Share of ratings that are 4 or 5 (0–1).
    pub satisfied: Option<f64>,
}

impl Csat {
    fn of(scores: &[i64]) -> Self {
        let ratings = scores.len();
        if ratings == 0 {
            return Self { ratings, avg: None, satisfied: None };
        }
        #[allow(clippy::cast_precision_loss)]
        let n = ratings as f64;
        #[allow(clippy::cast_precision_loss)]
        let avg = scores.iter().sum::<i64>() as f64 / n;
        #[allow(clippy::cast_precision_loss)]
        let satisfied = scores.iter().filter(|s| **s >= 4).count() as f64 / n;
        Self { ratings, avg: Some(round3(avg)), satisfied: Some(round3(satisfied)) }
    }
}

/// The headline figures for a set of conversations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// Conversations opened.
    pub conversations: usize,
    /// Of those, where the visitor wrote at least once.
    pub engaged: usize,
    /// Engaged conversations never handed to a person.
    pub bot_contained: usize,
    /// `bot_contained / engaged`.
    pub containment_rate: Option<f64>,
    /// Engaged conversations handed to people.
    pub handoffs: usize,
    /// `handoffs / engaged`.
    pub handoff_rate: Option<f64>,
    /// Visitor's first message → first bot or agent message.
    pub first_response_secs: Stat,
    /// Handoff request → first agent message.
    pub first_agent_reply_secs: Stat,
    /// Joined a queue → an agent took it.
    pub queue_wait_secs: Stat,
    /// Visitor's first message → closed by an agent, or the bot's last answer when contained.
    pub resolution_secs: Stat,
    /// All ratings.
    pub csat: Csat,
}

/// One bucket of the series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    /// Start of the bucket (UTC).
    pub start: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// Ratings split by who resolved the chat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CsatSplit {
    /// Every rating.
    pub all: Csat,
    /// Chats no person held before the rating.
    pub bot: Csat,
    /// Chats a person held before the rating.
    pub human: Csat,
    /// Per agent (the last one who held the chat before the rating).
    pub per_agent: Vec<AgentCsat>,
}

/// One agent's ratings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentCsat {
    /// Agent id.
    pub agent: String,
    /// Display name, when the agent still exists.
    pub name: Option<String>,
    /// Their ratings.
    #[serde(flatten)]
    pub csat: Csat,
}

/// A handoff reason and how many chats gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    /// The reason.
    pub reason: String,
    /// Chats.
    pub count: usize,
}

/// How one knowledge-base document did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArticleFigures {
    /// `faq:<id>` or `article:<slug>`.
    pub doc: String,
    /// Its title (an FAQ's question), when it is still in the knowledge base.
    pub title: Option<String>,
    /// Times it was given as an answer.
    pub shown: usize,
    /// Times the visitor said it did not help.
    pub unhelpful: usize,
    /// Times the visitor said it helped ("did this help?" yes).
    pub helpful: usize,
    /// `1 − unhelpful / shown`.
    pub helpful_rate: Option<f64>,
    /// `helpful / (helpful + unhelpful)`: the share of yes among the votes.
    pub helpful_votes_share: Option<f64>,
}

/// A question the bot could not answer, with how often it was asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unanswered {
    /// The question as first asked.
    pub question: String,
    /// The language of the conversation it was first asked in.
    pub lang: String,
    /// Times asked (case and spacing ignored).
    pub count: usize,
    /// The last time.
    pub last_asked: String,
}

/// `GET /api/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsReport {
    /// Start of the range.
    pub from: String,
    /// End of the range (exclusive).
    pub to: String,
    /// Series bucket width.
    pub interval: Interval,
    /// Over the whole range.
    pub totals: Figures,
    /// Handoff reasons, most frequent first.
    pub handoff_reasons: Vec<ReasonCount>,
    /// Ratings by who resolved.
    pub csat: CsatSplit,
    /// Per document, most shown first.
    pub articles: Vec<ArticleFigures>,
    /// Top 20 unanswered questions.
    pub unanswered: Vec<Unanswered>,
    /// Per bucket, oldest first.
    pub series: Vec<Bucket>,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[allow(clippy::cast_precision_loss)]
fn ratio(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| round3(part as f64 / whole as f64))
}

fn first(c: &ConversationFacts, kind: EventKind) -> Option<&EventFact> {
    c.events.iter().find(|e| e.kind == kind)
}

fn handed_off(c: &ConversationFacts) -> bool {
    first(c, EventKind::HandoffRequested).is_some()
}

fn matches(c: &ConversationFacts, filter: &MetricsFilter) -> bool {
    let lang_ok = filter.lang.as_deref().is_none_or(|want| {
        let have = c.lang.as_deref().unwrap_or("en");
        have.eq_ignore_ascii_case(want)
            || have.split('-').next().unwrap_or(have).eq_ignore_ascii_case(want.split('-').next().unwrap_or(want))
    });
    let team_ok = filter.team.as_deref().is_none_or(|t| c.events.iter().any(|e| e.team.as_deref() == Some(t)));
    let agent_ok = filter.agent.as_deref().is_none_or(|a| c.events.iter().any(|e| e.agent.as_deref() == Some(a)));
    lang_ok && team_ok && agent_ok
}

/// The conversation's rating (the last one: a changed mind replaces the first) with the
/// agent who last held the chat before it (none: the bot).
fn ratings(c: &ConversationFacts) -> Option<(i64, Option<&str>)> {
    let mut holder = None;
    let mut rating = None;
    for e in &c.events {
        match e.kind {
            EventKind::Assigned => holder = e.agent.as_deref(),
            EventKind::Rated => rating = e.value.map(|v| (v, holder)).or(rating),
            _ => {}
        }
    }
    rating
}

fn figures(convs: &[&ConversationFacts]) -> Figures {
    let engaged: Vec<_> = convs.iter().filter(|c| c.first_visitor.is_some()).collect();
    let handoffs = engaged.iter().filter(|c| handed_off(c)).count();
    let contained = engaged.len() - handoffs;
    let gap = |a: Option<i64>, b: Option<i64>| a.zip(b).map(|(a, b)| b - a).filter(|d| *d >= 0);
    let first_response = engaged.iter().filter_map(|c| gap(c.first_visitor, c.first_reply)).collect();
    let agent_reply = convs
        .iter()
        .filter_map(|c| {
            let asked = first(c, EventKind::HandoffRequested)?.at;
            let replied = c.events.iter().find(|e| e.kind == EventKind::AgentReplied && e.at >= asked)?.at;
            Some(replied - asked)
        })
        .collect();
    let queue_wait = convs
        .iter()
        .filter_map(|c| {
            let queued = first(c, EventKind::Queued)?.at;
            let taken = c.events.iter().find(|e| e.kind == EventKind::Assigned && e.at >= queued)?.at;
            Some(taken - queued)
        })
        .collect();
    let resolution = engaged
        .iter()
        .filter_map(|c| {
            let end = match first(c, EventKind::Closed) {
                Some(closed) => closed.at,
                None if !handed_off(c) => c.events.iter().rev().find(|e| e.kind == EventKind::Answered)?.at,
                None => return None,
            };
            gap(c.first_visitor, Some(end))
        })
        .collect();
    let scores: Vec<i64> = convs.iter().flat_map(|c| ratings(c)).map(|(s, _)| s).collect();
    Figures {
        conversations: convs.len(),
        engaged: engaged.len(),
        bot_contained: contained,
        containment_rate: ratio(contained, engaged.len()),
        handoffs,
        handoff_rate: ratio(handoffs, engaged.len()),
        first_response_secs: Stat::of(first_response),
        first_agent_reply_secs: Stat::of(agent_reply),
        queue_wait_secs: Stat::of(queue_wait),
        resolution_secs: Stat::of(resolution),
        csat: Csat::of(&scores),
    }
}

fn at_string(ms: i64) -> String {
    format_at(DateTime::from_timestamp_millis(ms).unwrap_or_default())
}

/// The report over `facts` (conversations opened in the filter's range): pure.
#[must_use]
pub fn compute(facts: &[ConversationFacts], filter: &MetricsFilter) -> MetricsReport {
    let convs: Vec<&ConversationFacts> = facts.iter().filter(|c| matches(c, filter)).collect();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &convs {
        if let Some(reason) = first(c, EventKind::HandoffRequested).and_then(|e| e.detail.as_deref()) {
            *reasons.entry(reason).or_default() += 1;
        }
    }
    let mut handoff_reasons: Vec<ReasonCount> =
        reasons.into_iter().map(|(reason, count)| ReasonCount { reason: reason.to_owned(), count }).collect();
    handoff_reasons.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.reason.cmp(&b.reason)));

    let (mut all, mut bot, mut human) = (Vec::new(), Vec::new(), Vec::new());
    let mut per_agent: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for c in &convs {
        if let Some((score, holder)) = ratings(c) {
            all.push(score);
            match holder {
                Some(agent) => {
                    human.push(score);
                    per_agent.entry(agent).or_default().push(score);
                }
                None => bot.push(score),
            }
        }
    }
    let csat = CsatSplit {
        all: Csat::of(&all),
        bot: Csat::of(&bot),
        human: Csat::of(&human),
        per_agent: per_agent
            .into_iter()
            .map(|(agent, scores)| AgentCsat { agent: agent.to_owned(), name: None, csat: Csat::of(&scores) })
            .collect(),
    };

    let mut docs: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    let mut asked: HashMap<String, (String, usize, i64, String)> = HashMap::new();
    for c in &convs {
        for e in &c.events {
            let Some(detail) = e.detail.as_deref() else { continue };
            match e.kind {
                EventKind::Answered => docs.entry(detail).or_default().0 += 1,
                EventKind::Unhelpful => docs.entry(detail).or_default().1 += 1,
                EventKind::Helpful => docs.entry(detail).or_default().2 += 1,
                EventKind::Fallback => {
                    let key = detail.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
                    let lang = c.lang.clone().unwrap_or_else(|| crate::lang::DEFAULT_LANG.to_owned());
                    let entry = asked.entry(key).or_insert_with(|| (detail.trim().to_owned(), 0, e.at, lang));
                    entry.1 += 1;
                    entry.2 = entry.2.max(e.at);
                }
                _ => {}
            }
        }
    }
    let mut articles: Vec<ArticleFigures> = docs
        .into_iter()
        .map(|(doc, (shown, unhelpful, helpful))| ArticleFigures {
            doc: doc.to_owned(),
            title: None,
            shown,
            unhelpful,
            helpful,
            helpful_rate: ratio(shown.saturating_sub(unhelpful), shown),
            helpful_votes_share: ratio(helpful, helpful + unhelpful),
        })
        .collect();
    articles.sort_by(|a, b| b.shown.cmp(&a.shown).then_with(|| a.doc.cmp(&b.doc)));
    let mut unanswered: Vec<(String, usize, i64, String)> = asked.into_values().collect();
    unanswered.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| b.2.cmp(&a.2)).then_with(|| a.0.cmp(&b.0)));
    let unanswered = unanswered
        .into_iter()
        .take(20)
        .map(|(question, count, last, lang)| Unanswered { question, lang, count, last_asked: at_string(last) })
        .collect();

    let mut by_open = convs.clone();
    by_open.sort_by_key(|c| c.opened_at);
    let mut series = Vec::new();
    let mut start = filter.interval.start_of(filter.from);
    while start < filter.to && series.len() < 2000 {
        let end = filter.interval.next(start);
        let (lo, hi) = (start.timestamp_millis(), end.timestamp_millis());
        let (first, last) =
            (by_open.partition_point(|c| c.opened_at < lo), by_open.partition_point(|c| c.opened_at < hi));
        let inside = &by_open[first..last];
        series.push(Bucket { start: format_at(start), figures: figures(inside) });
        start = end;
    }

    MetricsReport {
        from: format_at(filter.from),
        to: format_at(filter.to),
        interval: filter.interval,
        totals: figures(&convs),
        handoff_reasons,
        csat,
        articles,
        unanswered,
        series,
    }
}

/// Reads the facts of the conversations opened in `[from, to)`.
///
/// # Errors
/// Database errors.
pub async fn load(
    pool: &SqlitePool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<ConversationFacts>, sqlx::Error> {
    let (from, to) = (from.timestamp_millis(), to.timestamp_millis());
    let rows = sqlx::query(
        "SELECT c.id, c.created_at, c.lang, \
           (SELECT MIN(m.at) FROM messages m WHERE m.conversation_id = c.id AND m.sender = 'visitor') AS first_visitor \
         FROM conversations c WHERE c.created_at >= ? AND c.created_at < ? ORDER BY c.created_at",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let replies = sqlx::query(
        "SELECT c.id, MIN(r.at) AS first_reply FROM conversations c \
         JOIN messages r ON r.conversation_id = c.id AND r.sender IN ('bot', 'agent') \
           AND r.at >= (SELECT MIN(m.at) FROM messages m WHERE m.conversation_id = c.id AND m.sender = 'visitor') \
           AND r.seq > (SELECT MIN(m.seq) FROM messages m WHERE m.conversation_id = c.id AND m.sender = 'visitor') \
         WHERE c.created_at >= ? AND c.created_at < ? GROUP BY c.id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let replies: HashMap<String, i64> =
        replies.iter().map(|r| (r.get::<String, _>("id"), r.get::<i64, _>("first_reply"))).collect();
    let events = sqlx::query(
        "SELECT e.conversation_id, e.kind, e.at, e.agent, e.team, e.detail, e.value FROM conversation_events e \
         JOIN conversations c ON c.id = e.conversation_id WHERE c.created_at >= ? AND c.created_at < ? \
         ORDER BY e.id",
    )
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    let mut by_conversation: HashMap<String, Vec<EventFact>> = HashMap::new();
    for r in &events {
        let Some(kind) = EventKind::parse(&r.get::<String, _>("kind")) else { continue };
        by_conversation.entry(r.get("conversation_id")).or_default().push(EventFact {
            kind,
            at: r.get("at"),
            agent: r.get("agent"),
            team: r.get("team"),
            detail: r.get("detail"),
            value: r.get("value"),
        });
    }
    Ok(rows
        .iter()
        .map(|r| {
            let id: String = r.get("id");
            ConversationFacts {
                opened_at: r.get("created_at"),
                lang: r.get("lang"),
                first_visitor: r.get("first_visitor"),
                first_reply: replies.get(&id).copied(),
                events: by_conversation.remove(&id).unwrap_or_default(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, at: i64, agent: Option<&str>, value: Option<i64>) -> EventFact {
        EventFact { kind, at, agent: agent.map(str::to_owned), team: None, detail: None, value }
    }

    fn filter() -> MetricsFilter {
        MetricsFilter {
            from: DateTime::from_timestamp_millis(0).unwrap_or_default(),
            to: DateTime::from_timestamp_millis(86_400_000).unwrap_or_default(),
            team: None,
            agent: None,
            lang: None,
            interval: Interval::Day,
        }
    }

    #[test]
    fn p90_is_the_nearest_rank() {
        let s = Stat::of((1..=10).map(|s| s * 1000).collect());
        assert_eq!((s.count, s.avg, s.p90), (10, Some(5.5), Some(9.0)));
        let s = Stat::of(vec![7000]);
        assert_eq!((s.avg, s.p90), (Some(7.0), Some(7.0)));
        assert_eq!(Stat::of(Vec::new()).avg, None);
    }

    #[test]
    fn a_rating_belongs_to_the_agent_who_held_the_chat_last() {
        use EventKind::{Assigned, HandoffRequested, Rated};
        let chat = |events| ConversationFacts {
            opened_at: 1000,
            lang: Some("pl".into()),
            first_visitor: Some(1000),
            first_reply: Some(1000),
            events,
        };
        let facts = vec![
            chat(vec![
                event(HandoffRequested, 2000, None, None),
                event(Assigned, 3000, Some("ann"), None),
                event(Assigned, 4000, Some("bob"), None),
                event(Rated, 5000, None, Some(5)),
                event(Rated, 6000, None, Some(2)),
            ]),
            chat(vec![event(Rated, 2000, None, Some(4))]),
        ];
        let report = compute(&facts, &filter());
        assert_eq!(report.csat.all.ratings, 2, "a changed mind replaces the first rating");
        assert_eq!(report.csat.per_agent.len(), 1);
        assert_eq!((report.csat.per_agent[0].agent.as_str(), report.csat.per_agent[0].csat.avg), ("bob", Some(2.0)));
        assert_eq!((report.csat.bot.ratings, report.csat.human.ratings), (1, 1));
        assert_eq!(report.totals.csat.satisfied, Some(0.5));
        let polish = compute(&facts, &MetricsFilter { lang: Some("pl-PL".into()), ..filter() });
        assert_eq!(polish.totals.conversations, 2, "language filter matches the primary subtag");
        let ann = compute(&facts, &MetricsFilter { agent: Some("ann".into()), ..filter() });
        assert_eq!(ann.totals.conversations, 1);
    }

    #[test]
    fn unanswered_questions_group_ignoring_case_and_spacing() {
        let fallback = |at, q: &str| EventFact { detail: Some(q.into()), ..event(EventKind::Fallback, at, None, None) };
        let chat =
            |events| ConversationFacts { opened_at: 0, lang: None, first_visitor: None, first_reply: None, events };
        let facts = vec![
            chat(vec![fallback(1, "Do you ship to  Mars?"), fallback(2, "gift wrap?")]),
            chat(vec![fallback(3, "do you ship to mars?")]),
        ];
        let report = compute(&facts, &filter());
        assert_eq!(report.unanswered[0].question, "Do you ship to  Mars?".trim());
        assert_eq!((report.unanswered[0].count, report.unanswered[1].count), (2, 1));
    }
}
