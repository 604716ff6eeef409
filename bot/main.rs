//! The `supportbot` binary: `serve` (default) runs the chat server; `kb check` and
//! `orders import` are tools for editors and the shop's staff.

use std::io::IsTerminal as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use supportbot::auth::{Role, hash_token, new_token};
use supportbot::config::{Config, OrderSourceConfig, ServeArgs};
use supportbot::handoff::accounts::{Accounts, AgentDraft, AgentRole, TeamDraft, password};
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(name = "supportbot", version, about = "Support chatbot with knowledge-base answers and human handoff")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the chat server (the default).
    Serve,
    /// Knowledge-base tools for editors.
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
    /// Flow tools: `flows check` validates flows and replays their transcript tests.
    Flows {
        #[command(subcommand)]
        command: FlowsCommand,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Order tools for the shop's staff.
    Orders {
        #[command(subcommand)]
        command: OrdersCommand,
    },
    /// Agents who take handed-off chats (in the server's database).
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// Teams of agents (in the server's database).
    Teams {
        #[command(subcommand)]
        command: TeamsCommand,
    },
}

/// Where a password comes from: never the command line (it would sit in shell history and
/// the process list).
const PASSWORD_ENV: &str = "SUPPORTBOT_AGENT_PASSWORD";

#[derive(Subcommand)]
enum AgentsCommand {
    /// Create an agent. The password is read from SUPPORTBOT_AGENT_PASSWORD or, if unset,
    /// one line of standard input.
    Add {
        /// Login e-mail.
        #[arg(long)]
        email: String,
        /// Display name shown to visitors.
        #[arg(long)]
        name: String,
        /// A team id (the team must exist); repeat for several.
        #[arg(long = "team")]
        teams: Vec<String>,
        /// Concurrent chats [default: 3].
        #[arg(long)]
        capacity: Option<u32>,
        /// agent | manager | editor; repeat for several [default: agent].
        #[arg(long = "role")]
        roles: Vec<AgentRole>,
    },
    /// List agents.
    List,
    /// Delete an agent (refused while they hold chats).
    Remove {
        /// Login e-mail.
        #[arg(long)]
        email: String,
    },
    /// Set an agent's password (read like `add`'s) and end their sessions.
    Password {
        /// Login e-mail.
        #[arg(long)]
        email: String,
    },
    /// Print the argon2id hash of a password (read like `add`'s) for `[[agents]]
    /// password_hash` in the config file.
    HashPassword,
}

#[derive(Subcommand)]
enum TeamsCommand {
    /// Create a team.
    Add {
        /// Team id: a-z, 0-9, _ and -, at most 40.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// A skill (orders, billing); repeat for several.
        #[arg(long = "skill")]
        skills: Vec<String>,
        /// A language tag (en, pl); repeat for several.
        #[arg(long = "lang")]
        languages: Vec<String>,
    },
    /// List teams.
    List,
}

#[derive(Subcommand)]
enum FlowsCommand {
    /// Validate every flow (steps, reachability, slots, regexes, messages) and replay the
    /// transcripts in `tests/*.toml` next to them.
    Check,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Print a new random token and the `[[tokens]]` entry (its hash) for the config file.
    New {
        /// Who will hold it, for logs ("content-team").
        #[arg(long)]
        name: String,
        /// What it may do; repeat for several roles.
        #[arg(long = "role", value_enum, required = true)]
        roles: Vec<RoleArg>,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum RoleArg {
    Editor,
    Orders,
    Agent,
    Manager,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Editor => Role::Editor,
            RoleArg::Orders => Role::Orders,
            RoleArg::Agent => Role::Agent,
            RoleArg::Manager => Role::Manager,
        }
    }
}

#[derive(Subcommand)]
enum OrdersCommand {
    /// Load orders from a CSV export into the embedded orders table (header row: id,
    /// status, email, postcode, placed_at, and optionally customer_name, carrier,
    /// tracking_number, tracking_url, expected_delivery, delivered_at, delay_reason, items).
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum KbCommand {
    /// Validate every file and run the knowledge base's answer tests (`tests/*.toml`).
    Check {
        /// Fail when answer-test accuracy is below this share (0..1).
        #[arg(long)]
        min_accuracy: Option<f64>,
    },
}

/// Log filter when `SUPPORTBOT_LOG` is not set.
const DEFAULT_LOG: &str = "info,tantivy=warn,sqlx=warn,tower_http=warn";
/// Libraries that log whole WebSocket frames (visitor tokens included) at debug/trace
/// level: kept at info unless the filter names them explicitly.
const FRAME_LOGGERS: [&str; 2] = ["tungstenite", "tokio_tungstenite"];

fn log_filter(spec: Option<&str>) -> EnvFilter {
    let spec = spec.unwrap_or(DEFAULT_LOG);
    let mut filter = EnvFilter::try_new(spec).unwrap_or_else(|e| {
        eprintln!("SUPPORTBOT_LOG is not a valid filter ({e}); using {DEFAULT_LOG:?}");
        EnvFilter::new(DEFAULT_LOG)
    });
    for target in FRAME_LOGGERS {
        let named = spec.split(',').any(|d| d.trim().split(['=', '[']).next() == Some(target));
        if !named {
            if let Ok(directive) = format!("{target}=info").parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    filter
}

fn init_logging(json: bool) {
    let filter = log_filter(std::env::var("SUPPORTBOT_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::Token { command: TokenCommand::New { name, roles } }) = &cli.command {
        let token = new_token();
        let roles: Vec<String> = roles.iter().map(|r| format!("\"{}\"", Role::from(*r).as_str())).collect();
        println!("Token (give it to {name}; it is shown only now):\n\n  {token}\n");
        println!("Add this to the config file:\n");
        println!("[[tokens]]\nname = {name:?}\nsha256 = \"{}\"\nroles = [{}]", hash_token(&token), roles.join(", "));
        return Ok(());
    }
    let config = Config::resolve(&cli.serve)?;
    if matches!(cli.command, None | Some(Command::Serve)) {
        init_logging(config.log_json);
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Token { .. } => Ok(()), // handled before the config is read
        Command::Kb { command: KbCommand::Check { min_accuracy } } => {
            let outcome = supportbot::checks::kb::run_check(
                &config.kb_dir,
                &config.flows_dir,
                &config.answers,
                min_accuracy,
                &mut std::io::stdout().lock(),
            )?;
            if !outcome.passed {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Flows { command: FlowsCommand::Check } => {
            let report = supportbot::checks::flows::run(&config.flows_dir, &mut std::io::stdout().lock())?;
            if !report.passed() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Orders { command: OrdersCommand::Import { file } } => {
            if !import_orders(&config, &file).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Agents { command } => agents_command(&config, command).await,
        Command::Teams { command } => teams_command(&config, command).await,
    }
}

/// The server's database, for the account commands.
async fn open_accounts(config: &Config) -> anyhow::Result<(supportbot::store::SqliteStore, Accounts)> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = supportbot::store::SqliteStore::open(&config.data_dir.join("supportbot.db")).await?;
    let clock = std::sync::Arc::new(supportbot::clock::SystemClock);
    let accounts = Accounts::new(store.pool().clone(), clock, config.accounts);
    Ok((store, accounts))
}

/// A password from `SUPPORTBOT_AGENT_PASSWORD`, or one line of standard input.
fn read_password() -> anyhow::Result<String> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        return Ok(password);
    }
    if std::io::stdin().is_terminal() {
        eprint!(
            "Password (at least {} characters; it will be visible): ",
            supportbot::handoff::accounts::validate::MIN_PASSWORD
        );
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    anyhow::ensure!(!password.is_empty(), "no password: set {PASSWORD_ENV} or write it on standard input");
    Ok(password.to_owned())
}

async fn agents_command(config: &Config, command: AgentsCommand) -> anyhow::Result<()> {
    if let AgentsCommand::HashPassword = command {
        let plain = read_password()?;
        supportbot::handoff::accounts::validate::password(&plain)?;
        println!("{}", password::hash(&plain)?);
        return Ok(());
    }
    let (store, accounts) = open_accounts(config).await?;
    let result = run_agents_command(&accounts, command).await;
    store.close().await;
    result
}

async fn run_agents_command(accounts: &Accounts, command: AgentsCommand) -> anyhow::Result<()> {
    match command {
        AgentsCommand::Add { email, name, teams, capacity, roles } => {
            let password = read_password()?;
            let draft =
                AgentDraft { email, name, password: Some(password), capacity, roles, teams, ..AgentDraft::default() };
            let agent = accounts.create_agent(draft).await?;
            println!("created agent {} ({}) with id {}", agent.email, agent.name, agent.id);
        }
        AgentsCommand::List => {
            for agent in accounts.list_agents().await? {
                let teams: Vec<&str> = agent.teams.iter().map(|t| t.as_str()).collect();
                let roles: Vec<&str> = agent.roles.iter().map(|r| r.as_str()).collect();
                println!(
                    "{}\t{}\tcapacity {}\tteams [{}]\troles [{}]{}",
                    agent.email,
                    agent.name,
                    agent.capacity,
                    teams.join(", "),
                    roles.join(", "),
                    if agent.disabled { "\tdisabled" } else { "" }
                );
            }
        }
        AgentsCommand::Remove { email } => {
            let agent = accounts.agent_by_email(&email).await?;
            accounts.delete_agent(&agent.id).await?;
            println!("removed agent {}", agent.email);
        }
        AgentsCommand::Password { email } => {
            let agent = accounts.agent_by_email(&email).await?;
            let password = read_password()?;
            accounts.set_password(&agent.id, &password).await?;
            println!("password of {} changed; their sessions were ended", agent.email);
        }
        AgentsCommand::HashPassword => {}
    }
    Ok(())
}

async fn teams_command(config: &Config, command: TeamsCommand) -> anyhow::Result<()> {
    let (store, accounts) = open_accounts(config).await?;
    let result = async {
        match command {
            TeamsCommand::Add { id, name, skills, languages } => {
                let team =
                    accounts.create_team(&TeamDraft { id: Some(id), name, skills, languages, hours: None }).await?;
                println!("created team {} ({})", team.id, team.name);
            }
            TeamsCommand::List => {
                for team in accounts.list_teams().await? {
                    println!(
                        "{}\t{}\tskills [{}]\tlanguages [{}]{}",
                        team.id,
                        team.name,
                        team.skills.join(", "),
                        team.languages.join(", "),
                        team.hours.as_ref().map(|h| format!("\thours in {}", h.time_zone)).unwrap_or_default()
                    );
                }
            }
        }
        anyhow::Ok(())
    }
    .await;
    store.close().await;
    result
}

/// Imports the good rows, prints each bad one with its line; false when any row failed.
async fn import_orders(config: &Config, file: &std::path::Path) -> anyhow::Result<bool> {
    if matches!(config.orders.source, OrderSourceConfig::Http(_)) {
        anyhow::bail!("orders.source is \"http\": orders are read from the shop's API, an import would not be used");
    }
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let store = supportbot::store::SqliteStore::open(&config.data_dir.join("supportbot.db")).await?;
    let orders = supportbot::orders::EmbeddedOrders::new(store.pool().clone());
    let report = supportbot::orders::import::import_file(&orders, file, chrono::Utc::now()).await;
    store.close().await;
    let report = report?;
    for error in &report.errors {
        println!("{}: {error}", file.display());
    }
    println!(
        "imported {} order(s): {} new, {} updated; {} row(s) failed",
        report.created + report.updated,
        report.created,
        report.updated,
        report.errors.len()
    );
    Ok(report.errors.is_empty())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let server = supportbot::server::start(config).await.context("cannot start supportbot")?;
    let shutdown = server.shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
    server.task.await.context("server task failed")?;
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

#[cfg(test)]
mod tests {
    use super::log_filter;

    #[test]
    fn frame_logging_stays_off_unless_asked_for() {
        assert!(log_filter(Some("trace")).to_string().contains("tungstenite=info"));
        let asked = log_filter(Some("trace,tungstenite=trace")).to_string();
        let directives: Vec<&str> = asked.split(',').collect();
        assert!(directives.contains(&"tungstenite=trace") && !directives.contains(&"tungstenite=info"), "{asked}");
        assert!(log_filter(None).to_string().contains("tokio_tungstenite=info"));
    }
}
