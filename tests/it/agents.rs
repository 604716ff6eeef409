//! Agents' accounts through the real server: login, sessions on the server's clock,
//! logout, the login rate limits per account and per address, the managers' API, agents
//! and teams from the config file, the demo agent of an empty start, and the CLI.

use std::net::IpAddr;
use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use supportbot::clock::ManualClock;
use supportbot::handoff::accounts::{AgentConfig, AgentRole, DEMO_EMAIL, TeamConfig, password};

use crate::harness::{EDITOR_TOKEN, MANAGER_TOKEN, TestServer, test_config};

/// An HTTP client whose connections come from the loopback address `from`.
fn client_from(from: &str) -> reqwest::Client {
    let ip: IpAddr = from.parse().expect("ip");
    reqwest::Client::builder().local_address(ip).build().expect("client")
}

async fn call(
    client: &reqwest::Client,
    server: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    crate::harness::api_call(client, server.url(path), method, token, body).await
}

async fn manager(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let (status, _, json) = call(&reqwest::Client::new(), server, method, path, Some(MANAGER_TOKEN), body).await;
    (status, json)
}

async fn login_from(
    server: &TestServer,
    from: &str,
    email: &str,
    password: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let body = json!({"email": email, "password": password});
    call(&client_from(from), server, Method::POST, "/api/agent/login", None, Some(body)).await
}

async fn login(server: &TestServer, email: &str, password: &str) -> (u16, Value) {
    let (status, _, body) = login_from(server, "127.0.0.1", email, password).await;
    (status, body)
}

async fn me(server: &TestServer, token: &str) -> (u16, Value) {
    let (status, _, body) =
        call(&reqwest::Client::new(), server, Method::GET, "/api/agent/me", Some(token), None).await;
    (status, body)
}

/// A team `support` and an agent in it, through the managers' API.
async fn add_agent(server: &TestServer, email: &str, password: &str) -> Value {
    let (status, _) = manager(server, Method::POST, "/api/teams", Some(json!({"id": "desk", "name": "Desk"}))).await;
    assert!(status == 201 || status == 409, "team: {status}");
    let body = json!({"email": email, "name": "Maria", "password": password, "teams": ["desk"], "capacity": 4});
    let (status, agent) = manager(server, Method::POST, "/api/agents", Some(body)).await;
    assert_eq!(status, 201, "{agent}");
    agent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_logs_in_sees_themself_and_logs_out() {
    let server = TestServer::start().await;
    let agent = add_agent(&server, "maria@shop.example", "correct horse battery").await;
    let (status, headers, session) =
        login_from(&server, "127.0.0.1", "Maria@Shop.Example", "correct horse battery").await;
    assert_eq!(status, 200, "{session}");
    assert_eq!(headers["cache-control"], "no-store", "the token is not cached");
    let token = session["token"].as_str().expect("token").to_owned();
    assert_eq!(session["agent"]["id"], agent["id"]);
    assert!(session["expires_at"].is_string());
    assert!(session["agent"].get("password_hash").is_none() && !session.to_string().contains("argon2"));
    let (status, who) = me(&server, &token).await;
    assert_eq!((status, &who["email"], &who["teams"]), (200, &json!("maria@shop.example"), &json!(["desk"])));

    // A wrong password and an unknown e-mail look exactly alike.
    let (wrong_status, wrong) = login(&server, "maria@shop.example", "wrong password!").await;
    let (unknown_status, unknown) = login(&server, "nobody@shop.example", "correct horse battery").await;
    assert_eq!((wrong_status, unknown_status), (401, 401));
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["error"], "bad_credentials");

    let (status, _, _) =
        call(&reqwest::Client::new(), &server, Method::POST, "/api/agent/logout", Some(&token), None).await;
    assert_eq!(status, 204);
    assert_eq!(me(&server, &token).await.0, 401, "logout revokes the session");
    let (status, _, _) =
        call(&reqwest::Client::new(), &server, Method::POST, "/api/agent/logout", Some(&token), None).await;
    assert_eq!(status, 401, "a revoked session cannot log out again");
    assert_eq!(me(&server, "made-up").await.0, 401);
    let (status, _, body) = call(&reqwest::Client::new(), &server, Method::GET, "/api/agent/me", None, None).await;
    assert_eq!((status, &body["error"]), (401, &json!("unauthorized")));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_on_the_servers_clock() {
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.accounts.session_hours = 1;
    let clock = ManualClock::new(chrono::Utc::now());
    let mut server = TestServer::start_with_clock(config, Arc::new(clock.clone())).await;
    server.keep(temp);
    add_agent(&server, "maria@shop.example", "correct horse battery").await;
    let (_, session) = login(&server, "maria@shop.example", "correct horse battery").await;
    let token = session["token"].as_str().expect("token");
    clock.advance(chrono::Duration::minutes(59));
    assert_eq!(me(&server, token).await.0, 200);
    clock.advance(chrono::Duration::minutes(1));
    let (status, body) = me(&server, token).await;
    assert_eq!(status, 401, "expired after session_hours: {body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("expired"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_account_and_per_address() {
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.accounts.login.per_account = 3;
    config.accounts.login.per_address = 6;
    let mut server = TestServer::start_with(config).await;
    server.keep(temp);
    add_agent(&server, "maria@shop.example", "correct horse battery").await;
    let body = json!({"email": "ola@shop.example", "name": "Ola", "password": "another good password"});
    assert_eq!(manager(&server, Method::POST, "/api/agents", Some(body)).await.0, 201);

    // Per account: three wrong passwords from three addresses lock Maria's account, even
    // for the right password from a fourth; Ola is not affected.
    for from in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        assert_eq!(login_from(&server, from, "maria@shop.example", "wrong password!").await.0, 401);
    }
    let (status, headers, body) = login_from(&server, "127.0.0.5", "maria@shop.example", "correct horse battery").await;
    assert_eq!((status, &body["error"]), (429, &json!("rate_limited")), "{body}");
    let retry: u64 = headers["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=900).contains(&retry), "{retry}");
    assert_eq!(login_from(&server, "127.0.0.5", "ola@shop.example", "another good password").await.0, 200);

    // Per address: six failures from one address (any e-mails) lock the address; a
    // success in between does not reset its window; other addresses are not affected.
    for i in 0..5 {
        let (status, _, _) = login_from(&server, "127.0.0.9", &format!("guess{i}@shop.example"), "whatever123").await;
        assert_eq!(status, 401);
    }
    assert_eq!(login_from(&server, "127.0.0.9", "ola@shop.example", "another good password").await.0, 200);
    assert_eq!(login_from(&server, "127.0.0.9", "guess5@shop.example", "whatever123").await.0, 401);
    let (status, headers, _) = login_from(&server, "127.0.0.9", "ola@shop.example", "another good password").await;
    assert_eq!(status, 429, "the earlier success did not reset the address");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(login_from(&server, "127.0.0.10", "ola@shop.example", "another good password").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn managers_alone_manage_agents_and_teams() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    // Without the manager role: no token, another role, an agent's session (a login without
    // the role is known but not allowed).
    let agent = json!({"email": "al@shop.example", "name": "Al", "password": "agent password", "roles": ["agent"]});
    assert_eq!(manager(&server, Method::POST, "/api/agents", Some(agent)).await.0, 201);
    let (_, session) = login(&server, "al@shop.example", "agent password").await;
    let session_token = session["token"].as_str().expect("token").to_owned();
    for (path, method) in
        [("/api/agents", Method::GET), ("/api/teams", Method::POST), ("/api/agents/x", Method::DELETE)]
    {
        assert_eq!(call(&http, &server, method.clone(), path, None, None).await.0, 401, "{path}");
        assert_eq!(call(&http, &server, method.clone(), path, Some(EDITOR_TOKEN), None).await.0, 403, "{path}");
        assert_eq!(call(&http, &server, method, path, Some(&session_token), None).await.0, 403, "{path}");
    }

    // Teams.
    let team = json!({"id": "billing", "name": "Billing", "skills": ["billing"], "languages": ["en-GB", "pl"],
        "hours": {"time_zone": "Europe/Warsaw", "days": {"mon": "09:00-17:00"}, "holidays": ["2026-12-24"]}});
    let (status, created) = manager(&server, Method::POST, "/api/teams", Some(team.clone())).await;
    assert_eq!((status, &created["languages"]), (201, &json!(["en", "pl"])), "{created}");
    assert_eq!(manager(&server, Method::POST, "/api/teams", Some(team)).await.0, 409);
    let bad = json!({"id": "night", "name": "Night", "hours": {"time_zone": "Mars/Base"}});
    let (status, body) = manager(&server, Method::POST, "/api/teams", Some(bad)).await;
    assert_eq!((status, &body["fields"][0]["field"]), (422, &json!("hours")), "{body}");
    let (status, body) = manager(&server, Method::POST, "/api/teams", Some(json!({"id": "Bad Id", "name": "x"}))).await;
    assert_eq!((status, &body["fields"][0]["field"]), (422, &json!("id")), "{body}");
    let (status, updated) =
        manager(&server, Method::PUT, "/api/teams/billing", Some(json!({"name": "Billing EU", "skills": ["refunds"]})))
            .await;
    assert_eq!((status, &updated["name"], &updated["hours"]), (200, &json!("Billing EU"), &Value::Null), "{updated}");
    let (status, teams) = manager(&server, Method::GET, "/api/teams", None).await;
    let ids: Vec<&str> = teams["teams"].as_array().expect("list").iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!((status, ids), (200, vec!["billing", "support"]));

    // Agents.
    let body = json!({"email": "maria@shop.example", "name": "Maria", "password": "correct horse battery",
        "teams": ["billing"], "roles": ["agent", "manager"], "capacity": 5});
    let (status, maria) = manager(&server, Method::POST, "/api/agents", Some(body.clone())).await;
    assert_eq!(status, 201, "{maria}");
    assert!(maria.get("password").is_none() && !maria.to_string().contains("correct horse"), "{maria}");
    let id = maria["id"].as_str().expect("id").to_owned();
    let (status, dup) = manager(&server, Method::POST, "/api/agents", Some(body)).await;
    assert_eq!((status, &dup["error"]), (409, &json!("email_taken")));
    let short = json!({"email": "x@shop.example", "name": "X", "password": "short"});
    let (status, err) = manager(&server, Method::POST, "/api/agents", Some(short)).await;
    assert_eq!((status, &err["fields"][0]["field"]), (422, &json!("password")));
    let unknown_team = json!({"email": "x@shop.example", "name": "X", "password": "long enough pw", "teams": ["nope"]});
    let (status, err) = manager(&server, Method::POST, "/api/agents", Some(unknown_team)).await;
    assert_eq!((status, &err["fields"][0]["field"]), (422, &json!("teams[0]")));
    let (status, got) = manager(&server, Method::GET, &format!("/api/agents/{id}"), None).await;
    assert_eq!((status, &got["capacity"], &got["roles"]), (200, &json!(5), &json!(["agent", "manager"])));
    let replace =
        json!({"email": "maria@shop.example", "name": "Maria K.", "teams": ["billing", "support"], "capacity": 2});
    let (status, got) = manager(&server, Method::PUT, &format!("/api/agents/{id}"), Some(replace)).await;
    assert_eq!(
        (status, &got["name"], &got["teams"]),
        (200, &json!("Maria K."), &json!(["billing", "support"])),
        "{got}"
    );
    let (status, maria_session) = login(&server, "maria@shop.example", "correct horse battery").await;
    assert_eq!(status, 200, "password kept");
    assert_eq!(maria_session["agent"]["roles"], json!(["agent"]), "PUT replaced the roles too");
    // A manager's console login may use the manager routes (the /admin dashboard), not the
    // editors' API; an editor's login may use the editors' API, not the manager routes.
    let boss = json!({"email": "mo@shop.example", "name": "Mo", "password": "manager password", "roles": ["manager"]});
    assert_eq!(manager(&server, Method::POST, "/api/agents", Some(boss)).await.0, 201);
    let (_, mo_session) = login(&server, "mo@shop.example", "manager password").await;
    let mo_token = mo_session["token"].as_str().expect("token").to_owned();
    assert_eq!(call(&http, &server, Method::GET, "/api/teams", Some(&mo_token), None).await.0, 200);
    assert_eq!(call(&http, &server, Method::GET, "/api/metrics", Some(&mo_token), None).await.0, 200);
    assert_eq!(call(&http, &server, Method::GET, "/api/kb/faq", Some(&mo_token), None).await.0, 403);
    let editor = json!({"email": "ed@shop.example", "name": "Ed", "password": "editor password", "roles": ["editor"]});
    assert_eq!(manager(&server, Method::POST, "/api/agents", Some(editor)).await.0, 201);
    let (_, ed_session) = login(&server, "ed@shop.example", "editor password").await;
    let ed_token = ed_session["token"].as_str().expect("token").to_owned();
    assert_eq!(call(&http, &server, Method::GET, "/api/kb/faq", Some(&ed_token), None).await.0, 200);
    assert_eq!(call(&http, &server, Method::GET, "/api/metrics", Some(&ed_token), None).await.0, 200);
    assert_eq!(call(&http, &server, Method::GET, "/api/teams", Some(&ed_token), None).await.0, 403);
    assert_eq!(call(&http, &server, Method::GET, "/api/export/ratings.csv", Some(&ed_token), None).await.0, 403);
    let (status, list) = manager(&server, Method::GET, "/api/agents", None).await;
    assert_eq!((status, list["agents"].as_array().map(Vec::len)), (200, Some(5)));
    assert_eq!(manager(&server, Method::DELETE, &format!("/api/agents/{id}"), None).await.0, 204);
    assert_eq!(manager(&server, Method::GET, &format!("/api/agents/{id}"), None).await.0, 404);
    assert_eq!(manager(&server, Method::DELETE, "/api/teams/billing", None).await.0, 204);
    assert_eq!(manager(&server, Method::GET, "/api/teams/billing", None).await.0, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_agents_and_teams_are_synced_at_start() {
    let temp = tempfile::tempdir().expect("temp");
    let mut config = test_config(temp.path());
    config.teams = vec![TeamConfig {
        id: "orders".into(),
        name: "Orders".into(),
        skills: vec!["orders".into()],
        languages: vec!["en".into(), "pl".into()],
        hours: None,
    }];
    config.agents = vec![AgentConfig {
        email: "ola@shop.example".into(),
        name: "Ola".into(),
        password_hash: password::hash("configured password").expect("hash"),
        capacity: Some(6),
        teams: vec!["orders".into()],
        roles: vec![AgentRole::Agent],
        avatar_url: None,
    }];
    let data_dir = config.data_dir.clone();
    let server = TestServer::start_with(config.clone()).await;
    assert!(server.demo_agent().is_none(), "a configured agent means no demo agent");
    let (status, session) = login(&server, "ola@shop.example", "configured password").await;
    assert_eq!(
        (status, &session["agent"]["capacity"], &session["agent"]["teams"]),
        (200, &json!(6), &json!(["orders"]))
    );
    let (_, agents) = manager(&server, Method::GET, "/api/agents", None).await;
    assert_eq!(agents["agents"].as_array().map(Vec::len), Some(1), "{agents}");
    server.stop().await;

    // A restart with a changed entry updates the same agent (by e-mail).
    config.agents[0].name = "Ola N.".into();
    config.agents[0].capacity = Some(2);
    assert_eq!(config.data_dir, data_dir);
    let mut server = TestServer::start_with(config).await;
    server.keep(temp);
    let (_, agents) = manager(&server, Method::GET, "/api/agents", None).await;
    let list = agents["agents"].as_array().expect("list");
    assert_eq!((list.len(), &list[0]["name"], &list[0]["capacity"]), (1, &json!("Ola N."), &json!(2)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_start_creates_a_demo_agent_with_a_random_password() {
    let server = TestServer::start().await;
    let demo = server.demo_agent().expect("demo agent").clone();
    assert_eq!(demo.email, DEMO_EMAIL);
    assert!(demo.password.len() >= 20);
    let (status, session) = login(&server, &demo.email, &demo.password).await;
    assert_eq!(status, 200, "{session}");
    assert_eq!((&session["agent"]["name"], &session["agent"]["teams"]), (&json!("Demo Agent"), &json!(["support"])));
    assert_eq!(session["agent"]["roles"], json!(["agent", "manager", "editor"]), "one account tries everything");
    let temp = server.stop().await.expect("temp dir");
    // The next start finds an agent and makes none; another empty start gets another password.
    let mut again = TestServer::start_with(test_config(temp.path())).await;
    again.keep(temp);
    assert!(again.demo_agent().is_none());
    let other = TestServer::start().await;
    assert_ne!(other.demo_agent().expect("demo").password, demo.password, "never a fixed password");
    other.stop().await;
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_added_agents_log_in() {
    let temp = tempfile::tempdir().expect("temp");
    let data_dir = temp.path().to_str().expect("utf-8 path").to_owned();
    let run = |args: &[&str], password: Option<&str>, stdin: Option<&str>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_supportbot"));
        command.args(["--data-dir", &data_dir]).args(args).env_remove("SUPPORTBOT_AGENT_PASSWORD");
        if let Some(password) = password {
            command.env("SUPPORTBOT_AGENT_PASSWORD", password);
        }
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let stdin = stdin.map(str::to_owned);
        async move {
            use tokio::io::AsyncWriteExt as _;
            let mut child = command.spawn().expect("run supportbot");
            let mut pipe = child.stdin.take().expect("stdin");
            if let Some(text) = stdin {
                pipe.write_all(text.as_bytes()).await.expect("write stdin");
            }
            drop(pipe);
            let out = child.wait_with_output().await.expect("wait");
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let (ok, out, err) =
        run(&["teams", "add", "--id", "billing", "--name", "Billing", "--lang", "pl"], None, None).await;
    assert!(ok, "{out}{err}");
    let add =
        ["agents", "add", "--email", "maria@shop.example", "--name", "Maria", "--team", "billing", "--capacity", "4"];
    let (ok, out, err) = run(&add, Some("correct horse battery"), None).await;
    assert!(ok && out.contains("maria@shop.example"), "{out}{err}");
    assert!(!out.contains("correct horse") && !err.contains("correct horse"), "the password is never printed");
    let (ok, _, err) = run(&["agents", "add", "--email", "x@shop.example", "--name", "X"], None, Some("short\n")).await;
    assert!(!ok && err.contains("at least 10"), "{err}");
    let (ok, out, _) = run(&["agents", "list"], None, None).await;
    assert!(ok && out.contains("maria@shop.example") && out.contains("billing") && !out.contains("x@shop"), "{out}");
    let (ok, out, err) =
        run(&["agents", "password", "--email", "maria@shop.example"], None, Some("a new password from stdin\n")).await;
    assert!(ok, "{out}{err}");

    let mut server = TestServer::start_with(test_config(temp.path())).await;
    server.keep(temp);
    assert!(server.demo_agent().is_none(), "an agent exists");
    assert_eq!(login(&server, "maria@shop.example", "correct horse battery").await.0, 401);
    let (status, session) = login(&server, "maria@shop.example", "a new password from stdin").await;
    assert_eq!(
        (status, &session["agent"]["teams"], &session["agent"]["capacity"]),
        (200, &json!(["billing"]), &json!(4))
    );
    server.stop().await;
}
