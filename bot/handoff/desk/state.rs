//! The desk's state and its rules, run one command at a time by [`DeskState::run`].

#[allow(clippy::wildcard_imports)]
use super::*;

static CONNECTIONS: AtomicU64 = AtomicU64::new(1);
/// Commands handled before the queue views go out.
const BURST: usize = 256;

/// A team as the desk routes to it.
struct TeamDesk {
    name: String,
    languages: Vec<String>,
    hours: Option<Schedule>,
    /// Recent handling times, seconds.
    handle_times: VecDeque<i64>,
}

/// One agent: who they are, their connections, what they hold and are offered.
struct Seat {
    name: String,
    teams: Vec<String>,
    capacity: usize,
    presence: Presence,
    conns: HashMap<u64, mpsc::UnboundedSender<AgentEvent>>,
    chats: BTreeSet<ConversationId>,
    /// Offers out and assignments under way: they count against capacity.
    pending: BTreeSet<ConversationId>,
    /// Last time they were given a chat (routing ties go to the longest idle).
    last_assigned: DateTime<Utc>,
    /// Bumped on every connect/disconnect so a stale grace timer does nothing.
    grace_epoch: u64,
}

impl Seat {
    fn available(&self) -> bool {
        self.presence == Presence::Online && !self.conns.is_empty()
    }

    fn load(&self) -> usize {
        self.chats.len() + self.pending.len()
    }

    fn send(&self, event: &AgentEvent) {
        for conn in self.conns.values() {
            let _ = conn.send(event.clone());
        }
    }
}

struct OfferOut {
    agent: String,
    id: u64,
    expires_at: DateTime<Utc>,
}

/// A chat waiting in a team's queue.
struct Waiting {
    team: String,
    lang: String,
    reason: String,
    queued_at: DateTime<Utc>,
    offer: Option<OfferOut>,
    /// Agents who declined it: never offered it again.
    declined: BTreeSet<String>,
    /// Agents who let its offer expire: offered again only when nobody else can take it.
    missed: BTreeSet<String>,
    /// An assignment to this agent is being carried out.
    assigning: Option<String>,
    /// What the visitor was last told (position, minutes).
    told: Option<(usize, u32)>,
}

/// A chat an agent holds.
struct Held {
    agent: String,
    team: String,
    queued_at: DateTime<Utc>,
    assigned_at: DateTime<Utc>,
}

pub(super) struct DeskState {
    hub: Hub,
    store: Arc<dyn Store>,
    config: HandoffConfig,
    clock: SharedClock,
    tx: mpsc::UnboundedSender<Command>,
    teams: BTreeMap<String, TeamDesk>,
    seats: BTreeMap<String, Seat>,
    waiting: HashMap<ConversationId, Waiting>,
    held: HashMap<ConversationId, Held>,
    offline: Vec<StoredOfflineRequest>,
    next_offer: u64,
    /// Chats the desk sent back to the queue after their holder's grace period: they go
    /// to the front.
    requeuing: BTreeSet<ConversationId>,
    /// Teams whose queue changed while handling the current command.
    dirty: BTreeSet<String>,
}

impl DeskState {
    pub(super) fn new(
        hub: Hub,
        store: Arc<dyn Store>,
        config: HandoffConfig,
        clock: SharedClock,
        tx: mpsc::UnboundedSender<Command>,
    ) -> Self {
        Self {
            hub,
            store,
            config,
            clock,
            tx,
            teams: BTreeMap::new(),
            seats: BTreeMap::new(),
            waiting: HashMap::new(),
            held: HashMap::new(),
            offline: Vec::new(),
            next_offer: 1,
            requeuing: BTreeSet::new(),
            dirty: BTreeSet::new(),
        }
    }

    /// Teams and agents as configured now (seats keep their connections and chats).
    pub(super) fn set_directory(&mut self, teams: Vec<Team>, agents: Vec<Agent>) {
        let mut next = BTreeMap::new();
        for team in teams {
            let id = team.id.as_str().to_owned();
            let hours = team.hours.as_ref().and_then(|h| match h.schedule() {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!(team = %id, error = %e, "invalid business hours; treated as always open");
                    None
                }
            });
            let handle_times = self.teams.remove(&id).map(|t| t.handle_times).unwrap_or_default();
            next.insert(id, TeamDesk { name: team.name, languages: team.languages, hours, handle_times });
        }
        self.teams = next;
        for agent in agents {
            self.update_seat(&agent);
        }
    }

    fn update_seat(&mut self, agent: &Agent) {
        let id = agent.id.to_string();
        let teams: Vec<String> = agent.teams.iter().map(|t| t.as_str().to_owned()).collect();
        let capacity = usize::try_from(agent.capacity).unwrap_or(1).max(1);
        match self.seats.get_mut(&id) {
            Some(seat) => {
                seat.name.clone_from(&agent.name);
                seat.teams = teams;
                seat.capacity = capacity;
            }
            None => {
                self.seats.insert(
                    id,
                    Seat {
                        name: agent.name.clone(),
                        teams,
                        capacity,
                        presence: Presence::Online,
                        conns: HashMap::new(),
                        chats: BTreeSet::new(),
                        pending: BTreeSet::new(),
                        last_assigned: DateTime::<Utc>::MIN_UTC,
                        grace_epoch: 0,
                    },
                );
            }
        }
    }

    /// Queues and holdings from the stored ownership columns; holders start their grace
    /// period now (they have that long to reconnect).
    pub(super) async fn rebuild(&mut self) -> Result<(), crate::store::StoreError> {
        let now = self.clock.now();
        let owned = self.store.owned_conversations().await?;
        let mut unplaced = Vec::new();
        for chat in owned {
            let queued_at = chat.queued_at.unwrap_or(now);
            match chat.held_by {
                Some(agent) => {
                    if let Some(seat) = self.seats.get_mut(&agent) {
                        seat.chats.insert(chat.id);
                    }
                    let assigned_at = chat.assigned_at.unwrap_or(now);
                    self.held.insert(chat.id, Held { agent, team: chat.team, queued_at, assigned_at });
                }
                None if chat.team.is_empty() => unplaced.push(chat),
                None => {
                    self.waiting.insert(chat.id, waiting(chat.team.clone(), chat.lang, chat.reason, queued_at));
                    self.dirty.insert(chat.team);
                }
            }
        }
        let holders: BTreeSet<String> = self.held.values().map(|h| h.agent.clone()).collect();
        for agent in holders {
            self.start_grace(&agent);
        }
        self.offline = self.store.open_offline_requests(OFFLINE_SHOWN).await?;
        info!(waiting = self.waiting.len(), held = self.held.len(), "desk rebuilt from the store");
        // Chats that asked for a person while the desk was down: place them now.
        for chat in unplaced {
            let queued = Owner::Queued { reason: chat.reason.clone(), team: String::new() };
            let change =
                OwnerChange { conversation: chat.id, before: Owner::Bot, after: queued, lang: chat.lang, at: now };
            self.on_owner(change);
        }
        Ok(())
    }

    pub(super) async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Command>,
        accounts: Accounts,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut refresh = tokio::time::interval(DIRECTORY_REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                command = rx.recv() => match command {
                    Some(command) => {
                        self.handle(command, &accounts);
                        // A burst is handled whole before views and positions go out once.
                        for _ in 0..BURST {
                            let Ok(command) = rx.try_recv() else { break };
                            self.handle(command, &accounts);
                        }
                    }
                    None => break,
                },
                _ = refresh.tick() => {
                    let (tx, accounts) = (self.tx.clone(), accounts.clone());
                    tokio::spawn(async move {
                        let (teams, agents) = read_directory(&accounts).await;
                        let _ = tx.send(Command::Directory { teams, agents });
                    });
                }
            }
            self.flush();
        }
    }

    fn handle(&mut self, command: Command, accounts: &Accounts) {
        match command {
            Command::Owner(change) => self.on_owner(change),
            Command::OfflineFiled => self.reload_offline(),
            Command::OfflineLoaded(list) => {
                self.offline = list;
                self.dirty.extend(self.teams.keys().cloned());
            }
            Command::Directory { teams, agents } => {
                self.set_directory(teams, agents);
                self.dirty.extend(self.teams.keys().cloned());
                self.dispatch_all();
            }
            Command::Connect { agent, reply } => self.on_connect(&agent, reply, accounts),
            Command::Disconnect { agent, conn } => self.on_disconnect(&agent, conn),
            Command::Presence { agent, presence } => self.on_presence(&agent, presence),
            Command::Accept { agent, conversation, reply } => self.on_accept(&agent, conversation, reply),
            Command::Decline { agent, conversation } => self.on_decline(&agent, conversation, "declined"),
            Command::Claim { agent, conversation, reply } => self.on_claim(&agent, conversation, reply),
            Command::AssignDone { conversation, agent, result, reply } => {
                self.on_assign_done(conversation, &agent, result, reply);
            }
            Command::Transfer { agent, conversation, target, note, reply } => {
                self.on_transfer(&agent, conversation, target, note, reply);
            }
            Command::CloseOffline { agent, id, reply } => self.on_close_offline(&agent, id, reply),
            Command::OfferExpired { conversation, offer } => self.on_offer_expired(conversation, offer),
            Command::GraceExpired { agent, epoch } => self.on_grace_expired(&agent, epoch),
            Command::Holder { conversation, reply } => {
                let _ = reply.send(self.held.get(&conversation).map(|h| h.agent.clone()));
            }
            Command::Position { conversation, reply } => {
                let _ = reply.send(self.position_of(conversation));
            }
            Command::CanSee { agent, conversation, reply } => {
                let _ = reply.send(self.can_see(&agent, conversation));
            }
        }
    }

    fn can_see(&self, agent: &str, conversation: ConversationId) -> bool {
        if let Some(held) = self.held.get(&conversation) {
            return held.agent == agent;
        }
        let Some(seat) = self.seats.get(agent) else { return false };
        self.waiting.get(&conversation).is_some_and(|w| seat.teams.contains(&w.team))
    }

    // ---- ownership changes reported by conversations ----

    fn on_owner(&mut self, change: OwnerChange) {
        let id = change.conversation;
        match (&change.before, &change.after) {
            (_, Owner::Queued { team, reason }) if team.is_empty() => {
                self.release_holding(id, "transferred");
                self.place_new(id, reason.clone(), change.lang, change.at);
            }
            (_, Owner::Queued { team, reason }) => {
                let requeued = self.requeuing.remove(&id);
                let why = if requeued { "requeued" } else { "transferred" };
                let mut queued_at = self.held.get(&id).map_or(change.at, |h| h.queued_at);
                if requeued {
                    // Back to the front of the line.
                    let first = self.queue_of(team).first().and_then(|c| self.waiting.get(c)).map(|w| w.queued_at);
                    if let Some(first) = first.filter(|f| *f <= queued_at) {
                        queued_at = first - chrono::Duration::milliseconds(1);
                    }
                }
                self.release_holding(id, why);
                if self.waiting.get(&id).is_some_and(|w| &w.team == team) {
                    return;
                }
                self.remove_waiting(id, "transferred");
                self.enqueue(id, team.clone(), reason.clone(), change.lang, queued_at);
            }
            (_, Owner::Agent { agent, team, .. }) => {
                let queued_at =
                    self.waiting.get(&id).map(|w| w.queued_at).or_else(|| self.held.get(&id).map(|h| h.queued_at));
                self.remove_waiting(id, "taken");
                self.release_holding(id, "transferred");
                let now = change.at;
                if let Some(seat) = self.seats.get_mut(&agent.id) {
                    seat.pending.remove(&id);
                    seat.chats.insert(id);
                    seat.last_assigned = now;
                    seat.send(&AgentEvent::Assigned { conversation: id });
                }
                let held = Held {
                    agent: agent.id.clone(),
                    team: team.clone(),
                    queued_at: queued_at.unwrap_or(now),
                    assigned_at: now,
                };
                self.held.insert(id, held);
                self.dirty.insert(team.clone());
            }
            (before, Owner::Bot | Owner::Closed) => {
                let why = match (before, &change.after) {
                    (Owner::Agent { .. }, Owner::Closed) => "closed",
                    (Owner::Agent { .. }, _) => "handed_back",
                    _ => "left",
                };
                if let Some(held) = self.held.get(&id) {
                    let seconds = (change.at - held.assigned_at).num_seconds().max(0);
                    if let Some(team) = self.teams.get_mut(&held.team) {
                        team.handle_times.push_back(seconds);
                        while team.handle_times.len() > HANDLE_SAMPLES {
                            team.handle_times.pop_front();
                        }
                    }
                }
                self.release_holding(id, why);
                self.remove_waiting(id, why);
            }
        }
    }

    /// A new handoff: route it, then queue it or tell the visitor nobody can take it now.
    fn place_new(&mut self, id: ConversationId, reason: String, lang: String, at: DateTime<Utc>) {
        let team = self.route(&reason, &lang);
        self.enqueue(id, team, reason, lang, at);
    }

    fn enqueue(&mut self, id: ConversationId, team: String, reason: String, lang: String, queued_at: DateTime<Utc>) {
        let now = self.clock.now();
        if let Some(news) = self.unavailable(&team, now) {
            info!(conversation = %id, team = %team, "nobody can take the chat now; offline form");
            self.place(id, news);
            return;
        }
        self.waiting.insert(id, waiting(team.clone(), lang, reason, queued_at));
        // `told` stays empty: the flush after this command sends the first `queue` frame too.
        let (position, eta) = self.position_of(id).unwrap_or((1, 1));
        let team_name = self.teams.get(&team).map_or_else(|| team.clone(), |t| t.name.clone());
        self.place(id, DeskNews::Queued { team: team.clone(), team_name, position, eta_minutes: eta });
        self.dirty.insert(team.clone());
        self.dispatch(&team);
    }

    /// Offline news when the team is closed or nobody of it is online.
    fn unavailable(&self, team: &str, now: DateTime<Utc>) -> Option<DeskNews> {
        let desk = self.teams.get(team);
        let schedule = desk.and_then(|t| t.hours.as_ref());
        let open = schedule.is_none_or(|s| s.is_open(now));
        let staffed = self.seats.values().any(|s| s.available() && s.teams.iter().any(|t| t == team));
        if open && staffed {
            return None;
        }
        let back_at = if open { None } else { schedule.and_then(|s| s.next_open(now)) };
        let time_zone = schedule.map_or_else(|| "UTC".to_owned(), |s| s.zone().to_owned());
        Some(DeskNews::Offline { team: team.to_owned(), back_at, time_zone })
    }

    fn route(&self, reason: &str, lang: &str) -> String {
        let reason = reason.to_lowercase();
        let speaks = |langs: &[String]| {
            langs.is_empty()
                || langs.iter().any(|l| {
                    l.eq_ignore_ascii_case(lang) || primary_subtag(l).eq_ignore_ascii_case(primary_subtag(lang))
                })
        };
        let rule_fits = |r: &RouteRule| {
            self.teams.contains_key(&r.team)
                && (r.reason_contains.is_empty() || reason.contains(&r.reason_contains.to_lowercase()))
                && speaks(&r.languages)
        };
        if let Some(rule) = self.config.routes.iter().find(|r| rule_fits(r)) {
            return rule.team.clone();
        }
        // A team that names the language, preferring one with someone online; then the
        // default team; then any team.
        let default = &self.config.default_team;
        let mut speakers: Vec<&String> = self
            .teams
            .iter()
            .filter(|(_, t)| !t.languages.is_empty() && speaks(&t.languages))
            .map(|(id, _)| id)
            .collect();
        speakers
            .sort_by_key(|id| (!self.seats.values().any(|s| s.available() && s.teams.contains(id)), *id != default));
        if let Some(team) = speakers.first() {
            return (*team).clone();
        }
        if self.teams.contains_key(default) || self.teams.is_empty() {
            return default.clone();
        }
        self.teams.keys().next().cloned().unwrap_or_else(|| default.clone())
    }

    fn place(&self, id: ConversationId, news: DeskNews) {
        let hub = self.hub.clone();
        tokio::spawn(async move { hub.place(id, news).await });
    }

    fn remove_waiting(&mut self, id: ConversationId, why: &'static str) {
        let Some(w) = self.waiting.remove(&id) else { return };
        if let Some(offer) = w.offer {
            self.withdraw(&offer.agent, id, why);
        }
        if let Some(agent) = w.assigning {
            if let Some(seat) = self.seats.get_mut(&agent) {
                seat.pending.remove(&id);
            }
        }
        self.dirty.insert(w.team.clone());
        self.dispatch(&w.team);
    }

    fn release_holding(&mut self, id: ConversationId, why: &'static str) {
        let Some(held) = self.held.remove(&id) else { return };
        if let Some(seat) = self.seats.get_mut(&held.agent) {
            seat.chats.remove(&id);
            seat.send(&AgentEvent::Released { conversation: id, why });
            let teams = seat.teams.clone();
            for team in teams {
                self.dirty.insert(team.clone());
                self.dispatch(&team);
            }
        }
        self.dirty.insert(held.team);
    }

    fn withdraw(&mut self, agent: &str, id: ConversationId, why: &'static str) {
        if let Some(seat) = self.seats.get_mut(agent) {
            seat.pending.remove(&id);
            seat.send(&AgentEvent::OfferWithdrawn { conversation: id, why });
        }
    }

    // ---- offers and routing ----

    fn dispatch_all(&mut self) {
        let teams: Vec<String> = self.teams.keys().cloned().collect();
        for team in teams {
            self.dispatch(&team);
        }
    }

    /// Offers the team's waiting chats, oldest first, to its online agents with room:
    /// fewest chats first, ties to the one idle longest.
    fn dispatch(&mut self, team: &str) {
        let now = self.clock.now();
        for id in self.queue_of(team) {
            let Some(w) = self.waiting.get(&id) else { continue };
            if w.offer.is_some() || w.assigning.is_some() {
                continue;
            }
            let pick = |allow_missed: bool| {
                self.seats
                    .iter()
                    .filter(|(agent, s)| {
                        s.available()
                            && s.teams.iter().any(|t| t == team)
                            && s.load() < s.capacity
                            && !w.declined.contains(*agent)
                            && (allow_missed || !w.missed.contains(*agent))
                    })
                    .min_by_key(|(agent, s)| (s.load(), s.last_assigned, (*agent).clone()))
                    .map(|(agent, _)| agent.clone())
            };
            let candidate = pick(false).or_else(|| pick(true));
            let Some(agent) = candidate else { continue };
            let offer = self.next_offer;
            self.next_offer += 1;
            let expires_at = now + chrono::Duration::from_std(self.config.offer_timeout).unwrap_or_default();
            if let Some(w) = self.waiting.get_mut(&id) {
                w.offer = Some(OfferOut { agent: agent.clone(), id: offer, expires_at });
            }
            if let Some(seat) = self.seats.get_mut(&agent) {
                seat.pending.insert(id);
                seat.send(&AgentEvent::Offer { conversation: id, team: team.to_owned(), expires_at });
            }
            self.dirty.insert(team.to_owned());
            let (tx, clock) = (self.tx.clone(), Arc::clone(&self.clock));
            tokio::spawn(async move {
                clock.sleep_until(expires_at).await;
                let _ = tx.send(Command::OfferExpired { conversation: id, offer });
            });
        }
    }

    fn on_offer_expired(&mut self, id: ConversationId, offer: u64) {
        let Some(w) = self.waiting.get(&id) else { return };
        let Some(out) = w.offer.as_ref().filter(|o| o.id == offer) else { return };
        let agent = out.agent.clone();
        info!(conversation = %id, agent = %agent, "offer expired; moving on");
        if let Some(w) = self.waiting.get_mut(&id) {
            w.offer = None;
            w.missed.insert(agent.clone());
            let team = w.team.clone();
            self.withdraw(&agent, id, "expired");
            self.dirty.insert(team.clone());
            self.dispatch(&team);
        }
    }

    fn on_decline(&mut self, agent: &str, id: ConversationId, why: &'static str) {
        let Some(w) = self.waiting.get_mut(&id) else { return };
        if w.offer.as_ref().is_none_or(|o| o.agent != agent) {
            return;
        }
        w.offer = None;
        w.declined.insert(agent.to_owned());
        let team = w.team.clone();
        self.withdraw(agent, id, why);
        self.dirty.insert(team.clone());
        self.dispatch(&team);
    }

    fn on_accept(&mut self, agent: &str, id: ConversationId, reply: Reply<()>) {
        let offered = self.waiting.get(&id).and_then(|w| w.offer.as_ref()).is_some_and(|o| o.agent == agent);
        if !offered {
            let teammate_took_it =
                self.held.get(&id).is_some_and(|h| self.seats.get(agent).is_some_and(|s| s.teams.contains(&h.team)));
            let error =
                if self.can_see(agent, id) || teammate_took_it { DeskError::OfferGone } else { DeskError::NotFound };
            let _ = reply.send(Err(error));
            return;
        }
        self.begin_assign(agent, id, Some(reply));
    }

    fn on_claim(&mut self, agent: &str, id: ConversationId, reply: Reply<()>) {
        if self.held.get(&id).is_some_and(|h| h.agent == agent) {
            let _ = reply.send(Ok(()));
            return;
        }
        let in_my_queue =
            self.seats.get(agent).is_some_and(|s| self.waiting.get(&id).is_some_and(|w| s.teams.contains(&w.team)));
        if !in_my_queue {
            // Taken by a teammate a moment ago, or never ours to see.
            let taken =
                self.held.get(&id).is_some_and(|h| self.seats.get(agent).is_some_and(|s| s.teams.contains(&h.team)));
            let _ = reply.send(Err(if taken { DeskError::Taken } else { DeskError::NotFound }));
            return;
        }
        if self.waiting.get(&id).is_some_and(|w| w.assigning.is_some()) {
            let _ = reply.send(Err(DeskError::Taken));
            return;
        }
        self.begin_assign(agent, id, Some(reply));
    }

    /// Marks the chat as being assigned (nobody else can take it meanwhile) and asks the
    /// conversation to carry the assignment out.
    fn begin_assign(&mut self, agent: &str, id: ConversationId, reply: Option<Reply<()>>) {
        let Some(w) = self.waiting.get_mut(&id) else { return };
        let team = w.team.clone();
        let offer = w.offer.take();
        w.assigning = Some(agent.to_owned());
        if let Some(offer) = offer.filter(|o| o.agent != agent) {
            self.withdraw(&offer.agent, id, "taken");
        }
        let Some(seat) = self.seats.get_mut(agent) else { return };
        seat.pending.insert(id);
        let who = AgentRef { id: agent.to_owned(), name: seat.name.clone() };
        self.dirty.insert(team.clone());
        let (hub, tx, agent) = (self.hub.clone(), self.tx.clone(), agent.to_owned());
        tokio::spawn(async move {
            let result = hub.act(id, AgentAction::Assign { agent: who, team }, None).await.map_err(act_error);
            let _ = tx.send(Command::AssignDone { conversation: id, agent, result, reply });
        });
    }

    fn on_assign_done(
        &mut self,
        id: ConversationId,
        agent: &str,
        result: Result<(), DeskError>,
        reply: Option<Reply<()>>,
    ) {
        if let Some(seat) = self.seats.get_mut(agent) {
            seat.pending.remove(&id);
        }
        if result.is_err() {
            // The visitor left meanwhile, or the store failed: the chat is free again.
            if let Some(w) = self.waiting.get_mut(&id) {
                w.assigning = None;
                let team = w.team.clone();
                self.dirty.insert(team.clone());
                self.dispatch(&team);
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
    }

    fn on_transfer(
        &mut self,
        agent: &str,
        id: ConversationId,
        target: TransferTarget,
        note: Option<String>,
        reply: Reply<()>,
    ) {
        let Some(held) = self.held.get(&id).filter(|h| h.agent == agent) else {
            let _ = reply.send(Err(DeskError::NotFound));
            return;
        };
        let action = match target {
            TransferTarget::Agent(to) => {
                if to == agent {
                    let _ = reply.send(Err(DeskError::SameAgent));
                    return;
                }
                let Some(seat) = self.seats.get(&to) else {
                    let _ = reply.send(Err(DeskError::UnknownTarget));
                    return;
                };
                if seat.conns.is_empty() {
                    let _ = reply.send(Err(DeskError::TargetOffline));
                    return;
                }
                let team = seat.teams.iter().find(|t| **t == held.team).or(seat.teams.first()).cloned();
                let team = team.unwrap_or_else(|| held.team.clone());
                AgentAction::TransferToAgent {
                    agent: agent.to_owned(),
                    to: AgentRef { id: to, name: seat.name.clone() },
                    team,
                }
            }
            TransferTarget::Team(team) => {
                let Some(desk) = self.teams.get(&team) else {
                    let _ = reply.send(Err(DeskError::UnknownTarget));
                    return;
                };
                AgentAction::TransferToTeam { agent: agent.to_owned(), team, team_name: desk.name.clone() }
            }
        };
        let (hub, agent) = (self.hub.clone(), agent.to_owned());
        tokio::spawn(async move {
            if let Some(text) = note.filter(|n| !n.trim().is_empty()) {
                if let Err(e) = hub.act(id, AgentAction::Note { agent: agent.clone(), text }, None).await {
                    let _ = reply.send(Err(match e {
                        ActError::Refused(Refusal::NotHeld) => DeskError::NotFound,
                        other => act_error(other),
                    }));
                    return;
                }
            }
            let result = hub.act(id, action, None).await.map_err(|e| match e {
                ActError::Refused(Refusal::NotHeld) => DeskError::NotFound,
                other => act_error(other),
            });
            let _ = reply.send(result);
        });
    }

    fn on_close_offline(&mut self, agent: &str, id: i64, reply: Reply<()>) {
        let Some(seat) = self.seats.get(agent) else {
            let _ = reply.send(Err(DeskError::NoSuchRequest));
            return;
        };
        let visible = self.offline.iter().any(|r| r.id == id && self.sees_request(seat, r));
        if !visible {
            let _ = reply.send(Err(DeskError::NoSuchRequest));
            return;
        }
        let (store, tx, agent, now) = (Arc::clone(&self.store), self.tx.clone(), agent.to_owned(), self.clock.now());
        tokio::spawn(async move {
            let result = match store.close_offline_request(id, &agent, now).await {
                Ok(true) => Ok(()),
                Ok(false) => Err(DeskError::NoSuchRequest),
                Err(e) => Err(DeskError::Unavailable(e.to_string())),
            };
            let _ = reply.send(result);
            let _ = tx.send(Command::OfflineFiled);
        });
    }

    fn sees_request(&self, seat: &Seat, request: &StoredOfflineRequest) -> bool {
        // A request for a team that no longer exists is everybody's.
        seat.teams.contains(&request.team) || !self.teams.contains_key(&request.team)
    }

    fn reload_offline(&self) {
        let (store, tx) = (Arc::clone(&self.store), self.tx.clone());
        tokio::spawn(async move {
            match store.open_offline_requests(OFFLINE_SHOWN).await {
                Ok(list) => {
                    let _ = tx.send(Command::OfflineLoaded(list));
                }
                Err(e) => warn!(error = %e, "cannot read offline requests"),
            }
        });
    }

    // ---- connections and presence ----

    fn on_connect(&mut self, agent: &Agent, reply: oneshot::Sender<Connected>, _accounts: &Accounts) {
        self.update_seat(agent);
        let id = agent.id.to_string();
        let conn = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
        let (events_tx, events) = mpsc::unbounded_channel();
        let Some(seat) = self.seats.get_mut(&id) else { return };
        if seat.conns.is_empty() {
            seat.grace_epoch += 1;
        }
        seat.conns.insert(conn, events_tx.clone());
        let connected =
            Connected { conn, events, presence: seat.presence, chats: seat.chats.iter().copied().collect() };
        let teams = seat.teams.clone();
        let _ = reply.send(connected);
        let view = Arc::new(self.view_for(&id));
        let _ = events_tx.send(AgentEvent::Queue(view));
        // Offers out to this agent reach the new tab too.
        for (cid, w) in &self.waiting {
            if let Some(offer) = w.offer.as_ref().filter(|o| o.agent == id) {
                let expires_at = offer.expires_at;
                let _ = events_tx.send(AgentEvent::Offer { conversation: *cid, team: w.team.clone(), expires_at });
            }
        }
        self.dirty.extend(teams.iter().cloned());
        for team in teams {
            self.dispatch(&team);
        }
    }

    fn on_disconnect(&mut self, agent: &str, conn: u64) {
        let Some(seat) = self.seats.get_mut(agent) else { return };
        if seat.conns.remove(&conn).is_none() || !seat.conns.is_empty() {
            return;
        }
        info!(agent = %agent, chats = seat.chats.len(), "agent's last connection closed; grace period starts");
        self.start_grace(agent);
        self.withdraw_offers(agent, "left");
    }

    fn start_grace(&mut self, agent: &str) {
        let Some(seat) = self.seats.get_mut(agent) else { return };
        seat.grace_epoch += 1;
        let epoch = seat.grace_epoch;
        let deadline = self.clock.now() + chrono::Duration::from_std(self.config.grace).unwrap_or_default();
        let (tx, clock, agent) = (self.tx.clone(), Arc::clone(&self.clock), agent.to_owned());
        tokio::spawn(async move {
            clock.sleep_until(deadline).await;
            let _ = tx.send(Command::GraceExpired { agent, epoch });
        });
    }

    fn on_grace_expired(&mut self, agent: &str, epoch: u64) {
        let chats: Vec<ConversationId> = match self.seats.get(agent) {
            Some(seat) if seat.grace_epoch == epoch && seat.conns.is_empty() => seat.chats.iter().copied().collect(),
            Some(_) => return,
            // An agent deleted since: their chats go back too.
            None => self.held.iter().filter(|(_, h)| h.agent == agent).map(|(id, _)| *id).collect(),
        };
        for id in chats {
            info!(conversation = %id, agent = %agent, "grace period over; back to the queue");
            self.requeuing.insert(id);
            let (hub, agent) = (self.hub.clone(), agent.to_owned());
            tokio::spawn(async move {
                if let Err(e) = hub.act(id, AgentAction::Requeue { agent }, None).await {
                    warn!(conversation = %id, error = %e, "cannot requeue");
                }
            });
        }
    }

    fn withdraw_offers(&mut self, agent: &str, why: &'static str) {
        let offered: Vec<ConversationId> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.offer.as_ref().is_some_and(|o| o.agent == agent))
            .map(|(id, _)| *id)
            .collect();
        for id in offered {
            if let Some(w) = self.waiting.get_mut(&id) {
                w.offer = None;
                self.dirty.insert(w.team.clone());
            }
            self.withdraw(agent, id, why);
        }
        let teams = self.seats.get(agent).map(|s| s.teams.clone()).unwrap_or_default();
        for team in teams {
            self.dispatch(&team);
        }
    }

    fn on_presence(&mut self, agent: &str, presence: Presence) {
        let Some(seat) = self.seats.get_mut(agent) else { return };
        seat.presence = presence;
        seat.send(&AgentEvent::Presence(presence));
        let teams = seat.teams.clone();
        self.dirty.extend(teams.iter().cloned());
        if presence == Presence::Away {
            self.withdraw_offers(agent, "away");
        } else {
            for team in teams {
                self.dispatch(&team);
            }
        }
    }

    // ---- views, positions and estimates ----

    /// The team's waiting chats in order: oldest first.
    fn queue_of(&self, team: &str) -> Vec<ConversationId> {
        let mut ids: Vec<(DateTime<Utc>, ConversationId)> =
            self.waiting.iter().filter(|(_, w)| w.team == team).map(|(id, w)| (w.queued_at, *id)).collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id).collect()
    }

    fn position_of(&self, id: ConversationId) -> Option<(usize, u32)> {
        let team = &self.waiting.get(&id)?.team;
        let queue = self.queue_of(team);
        let position = queue.iter().position(|c| *c == id)? + 1;
        Some((position, self.eta(team, position)))
    }

    fn eta(&self, team: &str, position: usize) -> u32 {
        let handle_secs = self
            .teams
            .get(team)
            .filter(|t| !t.handle_times.is_empty())
            .map_or(i64::from(self.config.default_handle_minutes) * 60, |t| {
                t.handle_times.iter().sum::<i64>() / i64::try_from(t.handle_times.len()).unwrap_or(1)
            });
        let online: Vec<&Seat> =
            self.seats.values().filter(|s| s.available() && s.teams.iter().any(|t| t == team)).collect();
        let slots: usize = online.iter().map(|s| s.capacity).sum::<usize>().max(1);
        let free: usize = online.iter().map(|s| s.capacity.saturating_sub(s.load())).sum();
        let ahead = position.saturating_sub(free);
        let secs =
            i64::try_from(ahead).unwrap_or(i64::MAX).saturating_mul(handle_secs) / i64::try_from(slots).unwrap_or(1);
        u32::try_from((secs + 59) / 60).unwrap_or(u32::MAX).max(1)
    }

    fn view_for(&self, agent: &str) -> QueueView {
        let now = self.clock.now();
        let Some(seat) = self.seats.get(agent) else {
            return QueueView {
                offline_requests: Vec::new(),
                items: Vec::new(),
                agents: Vec::new(),
                teams: Vec::new(),
            };
        };
        let mut items = Vec::new();
        for team in &seat.teams {
            for (index, id) in self.queue_of(team).into_iter().enumerate() {
                let Some(w) = self.waiting.get(&id) else { continue };
                items.push(QueueItem {
                    conversation: id,
                    team: team.clone(),
                    position: index + 1,
                    lang: w.lang.clone(),
                    reason: w.reason.clone(),
                    queued_at: w.queued_at,
                    offered_to: w.offer.as_ref().map(|o| o.agent.clone()),
                });
            }
        }
        items.sort_by_key(|i| (i.queued_at, i.conversation));
        let offline_requests = self.offline.iter().filter(|r| self.sees_request(seat, r)).cloned().collect();
        let agents = self
            .seats
            .iter()
            .map(|(id, s)| RosterEntry {
                id: id.clone(),
                name: s.name.clone(),
                teams: s.teams.clone(),
                online: s.available(),
                chats: s.chats.len(),
            })
            .collect();
        let teams = self
            .teams
            .iter()
            .map(|(id, t)| TeamEntry {
                id: id.clone(),
                name: t.name.clone(),
                open: t.hours.as_ref().is_none_or(|h| h.is_open(now)),
            })
            .collect();
        QueueView { offline_requests, items, agents, teams }
    }

    /// After each command: new queue views to the agents of changed teams, and new
    /// positions to the visitors whose place or estimate changed.
    fn flush(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        let dirty = std::mem::take(&mut self.dirty);
        let agents: Vec<String> = self
            .seats
            .iter()
            .filter(|(_, s)| !s.conns.is_empty() && s.teams.iter().any(|t| dirty.contains(t)))
            .map(|(id, _)| id.clone())
            .collect();
        for agent in agents {
            let view = Arc::new(self.view_for(&agent));
            if let Some(seat) = self.seats.get(&agent) {
                seat.send(&AgentEvent::Queue(view));
            }
        }
        for team in &dirty {
            for (index, id) in self.queue_of(team).into_iter().enumerate() {
                let now = (index + 1, self.eta(team, index + 1));
                let Some(w) = self.waiting.get_mut(&id) else { continue };
                if w.told != Some(now) {
                    w.told = Some(now);
                    self.hub.signal(id, Live::Queue { position: now.0, eta_minutes: now.1 });
                }
            }
        }
    }
}

fn waiting(team: String, lang: String, reason: String, queued_at: DateTime<Utc>) -> Waiting {
    Waiting {
        team,
        lang,
        reason,
        queued_at,
        offer: None,
        declined: BTreeSet::new(),
        missed: BTreeSet::new(),
        assigning: None,
        told: None,
    }
}

fn act_error(e: ActError) -> DeskError {
    match e {
        ActError::Busy => DeskError::Busy,
        ActError::Refused(Refusal::NotHeld | Refusal::NotQueued) => DeskError::Taken,
        ActError::Refused(Refusal::SameAgent) => DeskError::SameAgent,
        other => DeskError::Unavailable(other.to_string()),
    }
}
