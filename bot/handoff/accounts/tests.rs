use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use super::*;
use crate::clock::ManualClock;
use crate::store::SqliteStore;

struct Fixture {
    accounts: Accounts,
    clock: ManualClock,
    _store: SqliteStore,
    _dir: tempfile::TempDir,
}

async fn fixture(settings: AccountSettings) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("t.db")).await.expect("open");
    let clock = ManualClock::new(Utc::now());
    let accounts = Accounts::new(store.pool().clone(), Arc::new(clock.clone()), settings);
    Fixture { accounts, clock, _store: store, _dir: dir }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn maria() -> AgentDraft {
    AgentDraft {
        email: "Maria@Shop.Example".into(),
        name: "Maria".into(),
        password: Some("correct horse battery".into()),
        teams: vec!["billing".into()],
        ..AgentDraft::default()
    }
}

fn billing() -> TeamDraft {
    TeamDraft {
        id: Some("billing".into()),
        name: "Billing".into(),
        skills: vec!["billing".into()],
        languages: vec!["en-GB".into(), "pl".into()],
        hours: None,
    }
}

#[tokio::test]
async fn agents_and_teams_round_trip_without_secrets() {
    let f = fixture(AccountSettings::default()).await;
    let team = f.accounts.create_team(&billing()).await.expect("team");
    assert_eq!(team.languages, ["en", "pl"], "tags stored as conversation languages");
    let agent = f.accounts.create_agent(maria()).await.expect("agent");
    assert_eq!(
        (agent.email.as_str(), agent.capacity, agent.roles.as_slice()),
        ("maria@shop.example", 3, &[AgentRole::Agent][..])
    );
    assert_eq!(agent.teams, [TeamId("billing".into())]);
    let json = serde_json::to_string(&f.accounts.list_agents().await.expect("list")).expect("json");
    assert!(!json.contains("argon2") && !json.contains("password"), "{json}");
    assert_eq!(f.accounts.members(&team.id).await.expect("members").len(), 1);
    assert!(matches!(f.accounts.create_agent(maria()).await, Err(AccountError::EmailTaken(_))));
    assert!(matches!(f.accounts.create_team(&billing()).await, Err(AccountError::TeamExists(_))));
    f.accounts.delete_team(&team.id).await.expect("delete team");
    assert!(f.accounts.agent(&agent.id).await.expect("agent").teams.is_empty(), "membership went with the team");
    f.accounts.delete_agent(&agent.id).await.expect("delete agent");
    assert!(matches!(f.accounts.agent(&agent.id).await, Err(AccountError::AgentNotFound(_))));
}

#[tokio::test]
async fn bad_fields_are_named() {
    let f = fixture(AccountSettings::default()).await;
    let field = |r: Result<Agent, AccountError>| match r {
        Err(AccountError::Invalid { field, .. }) => field,
        other => panic!("expected a validation error, got {other:?}"),
    };
    assert_eq!(field(f.accounts.create_agent(maria()).await), "teams[0]", "unknown team");
    let mut draft = maria();
    draft.teams.clear();
    draft.capacity = Some(0);
    assert_eq!(field(f.accounts.create_agent(draft.clone()).await), "capacity");
    draft.capacity = None;
    draft.password = Some("short".into());
    assert_eq!(field(f.accounts.create_agent(draft.clone()).await), "password");
    draft.password = None;
    assert_eq!(field(f.accounts.create_agent(draft).await), "password", "required to create");
    let mut team = billing();
    team.hours = Some(crate::handoff::hours::BusinessHours {
        time_zone: "Mars/Base".into(),
        days: Default::default(),
        holidays: vec![],
    });
    assert!(
        matches!(f.accounts.create_team(&team).await, Err(AccountError::Invalid { field, .. }) if field == "hours")
    );
}

#[tokio::test]
async fn login_gives_one_error_for_unknown_email_and_wrong_password() {
    let f = fixture(AccountSettings::default()).await;
    f.accounts.create_team(&billing()).await.expect("team");
    let agent = f.accounts.create_agent(maria()).await.expect("agent");
    let session = f.accounts.login("MARIA@shop.example ", "correct horse battery", ip(1)).await.expect("login");
    assert_eq!(session.agent.id, agent.id);
    assert_eq!(session.token.len(), 43);
    assert_eq!(f.accounts.authenticate(&session.token).await.expect("live").id, agent.id);
    let wrong = f.accounts.login("maria@shop.example", "wrong password!", ip(1)).await.expect_err("wrong");
    let unknown = f.accounts.login("nobody@shop.example", "correct horse battery", ip(1)).await.expect_err("unknown");
    assert_eq!(wrong.to_string(), unknown.to_string());
    assert!(matches!(unknown, AccountError::BadCredentials));
}

#[tokio::test]
async fn sessions_expire_on_the_clock_and_end_on_logout_or_password_change() {
    let f = fixture(AccountSettings { session_hours: 2, ..AccountSettings::default() }).await;
    let mut draft = maria();
    draft.teams.clear();
    let agent = f.accounts.create_agent(draft.clone()).await.expect("agent");
    let a = f.accounts.login("maria@shop.example", "correct horse battery", ip(1)).await.expect("login");
    let b = f.accounts.login("maria@shop.example", "correct horse battery", ip(1)).await.expect("login");
    assert_eq!(a.expires_at, b.expires_at);
    f.clock.advance(chrono::Duration::minutes(119));
    f.accounts.authenticate(&a.token).await.expect("still live");
    assert!(f.accounts.logout(&a.token).await.expect("logout"));
    assert!(!f.accounts.logout(&a.token).await.expect("twice"));
    assert!(matches!(f.accounts.authenticate(&a.token).await, Err(AccountError::RevokedSession)));
    f.clock.advance(chrono::Duration::minutes(1));
    assert!(matches!(f.accounts.authenticate(&b.token).await, Err(AccountError::ExpiredSession)));
    assert!(matches!(f.accounts.authenticate("not-a-token").await, Err(AccountError::UnknownSession)));
    assert!(matches!(f.accounts.authenticate(&"A".repeat(43)).await, Err(AccountError::UnknownSession)));

    let c = f.accounts.login("maria@shop.example", "correct horse battery", ip(1)).await.expect("login");
    f.accounts.set_password(&agent.id, "a brand new password").await.expect("new password");
    assert!(matches!(f.accounts.authenticate(&c.token).await, Err(AccountError::RevokedSession)));
    let d = f.accounts.login("maria@shop.example", "a brand new password", ip(1)).await.expect("login");
    draft.disabled = true;
    draft.password = None;
    f.accounts.update_agent(&agent.id, draft).await.expect("disable");
    assert!(f.accounts.authenticate(&d.token).await.is_err(), "disabling ends sessions");
    let err = f.accounts.login("maria@shop.example", "a brand new password", ip(1)).await.expect_err("disabled");
    assert!(matches!(err, AccountError::Disabled));
}

#[tokio::test]
async fn failed_logins_are_limited_per_account_on_the_clock() {
    let login = LoginLimits { per_account: 3, per_address: 100, window: Duration::from_secs(900) };
    let f = fixture(AccountSettings { login, ..AccountSettings::default() }).await;
    let mut draft = maria();
    draft.teams.clear();
    f.accounts.create_agent(draft).await.expect("agent");
    for i in 0..3 {
        let err = f.accounts.login("maria@shop.example", "wrong password!", ip(i)).await.expect_err("wrong");
        assert!(matches!(err, AccountError::BadCredentials));
    }
    let err = f.accounts.login("maria@shop.example", "correct horse battery", ip(9)).await.expect_err("limited");
    assert!(matches!(err, AccountError::RateLimited { retry_after } if retry_after == Duration::from_secs(900)));
    f.clock.advance(chrono::Duration::minutes(15));
    f.accounts.login("maria@shop.example", "correct horse battery", ip(9)).await.expect("window passed");
}

#[tokio::test]
async fn config_is_synced_and_the_demo_agent_only_appears_on_an_empty_start() {
    let f = fixture(AccountSettings::default()).await;
    let hash = password::hash("configured password").expect("hash");
    let teams = [TeamConfig {
        id: "orders".into(),
        name: "Orders".into(),
        skills: vec!["orders".into()],
        languages: vec!["en".into()],
        hours: None,
    }];
    let agents = [AgentConfig {
        email: "ola@shop.example".into(),
        name: "Ola".into(),
        password_hash: hash,
        capacity: Some(5),
        teams: vec!["orders".into()],
        roles: vec![AgentRole::Agent, AgentRole::Manager],
        avatar_url: None,
    }];
    assert!(bootstrap::check_config(&agents, &teams).is_ok());
    let report = f.accounts.sync_config(&agents, &teams).await.expect("sync");
    assert_eq!((report.teams, report.agents_created), (1, 1));
    let again = f.accounts.sync_config(&agents, &teams).await.expect("sync twice");
    assert_eq!((again.agents_created, again.agents_updated), (0, 1), "upserted by e-mail");
    let ola = f.accounts.login("ola@shop.example", "configured password", ip(1)).await.expect("configured login");
    assert_eq!((ola.agent.capacity, ola.agent.roles.len()), (5, 2));
    assert!(f.accounts.ensure_demo_agent().await.expect("demo").is_none(), "a configured agent exists");

    let empty = fixture(AccountSettings::default()).await;
    let demo = empty.accounts.ensure_demo_agent().await.expect("demo").expect("created");
    assert_eq!(demo.email, DEMO_EMAIL);
    let session = empty.accounts.login(DEMO_EMAIL, &demo.password, ip(1)).await.expect("demo logs in");
    assert_eq!((session.agent.name.as_str(), session.agent.teams[0].as_str()), ("Demo Agent", DEMO_TEAM));
    assert!(empty.accounts.ensure_demo_agent().await.expect("again").is_none(), "only once");
    let other = fixture(AccountSettings::default()).await.accounts.ensure_demo_agent().await.expect("d").expect("d");
    assert_ne!(other.password, demo.password, "random, never fixed");
}

#[test]
fn bad_config_entries_are_named() {
    let team = TeamConfig { id: "Bad Id".into(), name: "x".into(), skills: vec![], languages: vec![], hours: None };
    assert_eq!(bootstrap::check_config(&[], &[team]).map_err(|e| e.0), Err("teams"));
    let agent = AgentConfig {
        email: "a@b.example".into(),
        name: "A".into(),
        password_hash: "hunter2hunter2".into(),
        capacity: None,
        teams: vec![],
        roles: vec![],
        avatar_url: None,
    };
    assert_eq!(bootstrap::check_config(&[agent], &[]).map_err(|e| e.0), Err("agents.password_hash"));
}
