//! The `switchboard` command: run the gateway, check config, evaluate triage.

// Many small, short-lived allocations per message: mimalloc carries ~10% more messages/s
// than the system allocator on the pipeline bench (the bench runs with it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use switchboard::config::{Config, LogFormat};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "AI-first, human-backed omnichannel support gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Run {
        /// The config file.
        #[arg(long, short, default_value = "config/switchboard.toml")]
        config: PathBuf,
    },
    /// Validate config files offline; prints every problem with its key path.
    CheckConfig {
        /// One or more config files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Also ask the platforms whether the desk can post in its channel and every routed
        /// one, and whether each app was granted every permission it needs (needs the tokens
        /// in the environment and a route to the platforms).
        #[arg(long)]
        online: bool,
    },
    /// Hash a web desk agent's password for `[[desk.web.agents]] password_hash`: reads one line
    /// from standard input (so the password stays out of the shell history) and prints the
    /// argon2 hash.
    HashPassword,
    /// Support figures for a time window, from Redis (all instances): text on stdout, optionally
    /// a self-contained HTML page with charts.
    Report {
        /// The config file (for Redis).
        #[arg(long, short, default_value = "config/switchboard.toml")]
        config: PathBuf,
        /// Start: 7d, 24h, 30m (ago), now, or epoch milliseconds.
        #[arg(long, default_value = "7d")]
        since: String,
        /// End (exclusive), same forms.
        #[arg(long, default_value = "now")]
        until: String,
        /// Also write the HTML report here.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// What a candidate triage config would decide about the stored customer messages of a
    /// window, against what was decided then. Read-only: nothing is sent or written.
    Replay {
        /// The candidate config (its `[triage]` section and knowledge folder are replayed).
        #[arg(long, short)]
        config: PathBuf,
        /// The config whose Redis holds the conversations (defaults to the candidate).
        #[arg(long)]
        live_config: Option<PathBuf>,
        /// Start: 7d, 24h, 30m (ago), now, or epoch milliseconds.
        #[arg(long, default_value = "7d")]
        since: String,
        /// End (exclusive), same forms.
        #[arg(long, default_value = "now")]
        until: String,
        /// Print json instead of text.
        #[arg(long)]
        json: bool,
        /// Also write the changes, their counts and examples as a self-contained HTML page.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Review knowledge-base candidates learned from agents' answers.
    Kb {
        /// The config file (for Redis and the knowledge folder).
        #[arg(long, short, default_value = "config/switchboard.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: KbAction,
    },
    /// Look after the outbox: what waits per channel (or the desk), what was given up on, and
    /// put dead letters back.
    Outbox {
        /// The config file (for Redis).
        #[arg(long, short, default_value = "config/switchboard.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: OutboxAction,
    },
    /// One customer's data: export it as JSON, or erase it everywhere (Redis, archive, files,
    /// the desk's posts), with an audit log of erasures.
    Contact {
        /// The config file (for Redis, the archive and the desk).
        #[arg(long, short, default_value = "config/switchboard.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: ContactAction,
    },
    /// Move resolved conversations older than `retention.archive_after_days` out of Redis into
    /// the archive (`retention.archive_dir` or an S3 bucket), or show what it holds.
    Archive {
        /// The config file (for Redis and the archive).
        #[arg(long, short, default_value = "config/switchboard.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: ArchiveAction,
    },
    /// Measure the embedded answerer on CLINC150: knowledge base from `train`, questions from
    /// `val` + `oos_val`; prints accuracy, out-of-scope recall, wrong answers and a threshold sweep.
    Eval {
        /// CLINC150 as published: `data/data_full.json` of https://github.com/clinc/oos-eval
        /// (any JSON with its `train`, `val` and `oos_val` lists, e.g. the subset in
        /// `tests/fixtures/clinc150`).
        #[arg(long, value_name = "JSON")]
        clinc150: PathBuf,
        /// Confidence threshold to report at (defaults to the built-in one).
        // Negative numbers are taken as values so they get the range error, not "unexpected
        // argument".
        #[arg(long, allow_negative_numbers = true)]
        threshold: Option<f32>,
        /// Share of questions your knowledge base cannot answer, in [0, 1): the rates "of all"
        /// are weighted to it (CLINC150 `val` alone is 3% out of scope).
        #[arg(
            long,
            allow_negative_numbers = true,
            default_value_t = switchboard::triage::eval::DEFAULT_OOS_SHARE
        )]
        oos_share: f32,
        /// Target wrong-answer rate, in (0, 1): the lowest threshold meeting it is printed.
        #[arg(
            long,
            allow_negative_numbers = true,
            default_value_t = switchboard::triage::eval::DEFAULT_MAX_WRONG
        )]
        max_wrong: f32,
        /// Instead of evaluating, refit the confidence calibration on `train` (+ `oos_train`)
        /// and print its weights, for `src/triage/calibrate.rs`.
        #[arg(long)]
        fit_calibration: bool,
    },
}

#[derive(Subcommand)]
enum KbAction {
    /// List candidates waiting for review.
    Review {
        /// Show approved and rejected ones too.
        #[arg(long)]
        all: bool,
    },
    /// Add a candidate to the knowledge base (running gateways reload it within seconds).
    Approve {
        /// The candidate id (`kb-…`).
        id: String,
        /// Replace the agent's answer with this text.
        #[arg(long)]
        answer: Option<String>,
    },
    /// Discard a candidate.
    Reject {
        /// The candidate id (`kb-…`).
        id: String,
    },
    /// List the learned entries every instance answers from (kept in Redis).
    List,
    /// Write the learned entries as a knowledge file (to commit, or to load as a normal one).
    Export {
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Move entries of a knowledge file into the shared knowledge base (default: the
    /// `learned.md` that older versions wrote in the knowledge folder); ids already there are kept.
    Import {
        /// The knowledge file.
        file: Option<PathBuf>,
    },
    /// Take a learned entry out of the knowledge base (running gateways reload within seconds).
    Remove {
        /// The entry id (`learned-…`, as `kb list` shows).
        id: String,
    },
}

#[derive(Subcommand)]
enum ContactAction {
    /// Write everything held about a customer as JSON: conversations on every linked channel
    /// with transcripts, decisions, CSAT and files (base64), and their archived conversations.
    Export {
        /// An email address, `channel:conversation key` (`telegram:12345`) or a conversation id.
        subject: String,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Erase a customer everywhere and record an audit entry (who, when, counts; no content).
    Forget {
        /// An email address, `channel:conversation key` or a conversation id.
        subject: String,
        /// Who asks, for the audit entry (default: the OS user).
        #[arg(long)]
        by: Option<String>,
        /// The request's reference (a ticket id), kept in the audit entry.
        #[arg(long)]
        ticket: Option<String>,
    },
    /// The erasure audit log, one JSON object per line, oldest first.
    Audit,
}

#[derive(Subcommand)]
enum ArchiveAction {
    /// Archive what is due, then remove it from Redis (safe to re-run after a crash).
    Run,
    /// What the archive holds, and how many conversations in Redis are due.
    Status,
}

#[derive(Subcommand)]
enum OutboxAction {
    /// Deliveries waiting per target (after failures) and the oldest's age, dead letters.
    Status,
    /// List dead letters: their ids, what they deliver and why they were given up on.
    Dead,
    /// Put dead letters back into the outbox, once each; what already reached the customer
    /// (a stored delivery receipt) is not sent again.
    Replay {
        /// The id, as `outbox dead` lists it (`3/1718000000000-0`).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Replay every dead letter.
        #[arg(long)]
        all: bool,
    },
    /// Delete a dead letter for good.
    Drop {
        /// The id, as `outbox dead` lists it.
        id: String,
    },
}

fn main() -> ExitCode {
    // Channels' own commands (`switchboard slack manifest`, `switchboard email authorize`)
    // come from the registry, next to the core's.
    let tools = switchboard::registry::TOOLS;
    let matches = tools
        .iter()
        .fold(Cli::command(), |cli, tool| cli.subcommand((tool.command)()))
        .get_matches();
    if let Some((name, arguments)) = matches.subcommand() {
        if let Some(tool) = tools.iter().find(|tool| tool.name == name) {
            return match (tool.run)(arguments) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    match cli.command {
        Command::Run { config } => run(config),
        Command::CheckConfig { files, online } => check_config(&files, online),
        Command::HashPassword => hash_password(),
        Command::Kb { config, action } => with_runtime(|| kb(config, action)),
        Command::Outbox { config, action } => with_runtime(|| outbox(config, action)),
        Command::Contact { config, action } => {
            use switchboard::admin::ContactCommand;
            let command = match action {
                ContactAction::Export { subject, out } => ContactCommand::Export { subject, out },
                ContactAction::Forget {
                    subject,
                    by,
                    ticket,
                } => ContactCommand::Forget {
                    subject,
                    by,
                    ticket,
                },
                ContactAction::Audit => ContactCommand::Audit,
            };
            with_runtime(|| switchboard::admin::contact(&config, command))
        }
        Command::Archive { config, action } => {
            let command = match action {
                ArchiveAction::Run => switchboard::admin::ArchiveCommand::Run,
                ArchiveAction::Status => switchboard::admin::ArchiveCommand::Status,
            };
            with_runtime(|| switchboard::admin::archive(&config, command))
        }
        Command::Report {
            config,
            since,
            until,
            html,
        } => with_runtime(|| report(config, since, until, html)),
        Command::Replay {
            config,
            live_config,
            since,
            until,
            json,
            html,
        } => with_runtime(|| replay(config, live_config, since, until, json, html)),
        Command::Eval {
            clinc150,
            fit_calibration: true,
            ..
        } => match switchboard::triage::fit_clinc150(&clinc150) {
            Ok((calibration, top1)) => {
                println!("held-out top-1 on train: {:.1}%", top1 * 100.0);
                println!("{calibration:?}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Eval {
            clinc150,
            threshold,
            oos_share,
            max_wrong,
            ..
        } => match switchboard::triage::eval_clinc150(
            &clinc150,
            &switchboard::triage::EvalOptions {
                threshold,
                oos_share,
                max_wrong,
            },
        ) {
            Ok(report) => {
                println!("{report}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        },
    }
}

/// `RUST_LOG` picks what is logged (default `info`); `format` only how each line looks.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logger = tracing_subscriber::fmt().with_env_filter(filter);
    match format {
        LogFormat::Text => logger.init(),
        // The current span and its parents as objects, so a pipeline can filter on a
        // connector or conversation the way one greps the text form's `span{field=..}:` prefix.
        LogFormat::Json => logger
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .init(),
    }
}

fn run(path: PathBuf) -> ExitCode {
    // Nothing logs while the config loads; its problems go to stderr as check-config prints them.
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let log_format = config.gateway.log_format;
    init_logging(log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            announce(
                log_format,
                true,
                &format!("cannot start the async runtime: {error}"),
            );
            return ExitCode::FAILURE;
        }
    };
    let notes: String = config
        .connectors
        .startup_notes()
        .iter()
        .map(|note| format!(" ({note})"))
        .collect();
    runtime.block_on(async {
        match switchboard::app::start(config).await {
            Ok(gateway) => {
                announce(
                    log_format,
                    false,
                    &format!(
                        "listening on http://{}{notes} (admin: http://{}/metrics, /readyz)",
                        gateway.local_addr, gateway.admin_addr
                    ),
                );
                gateway.wait().await;
                ExitCode::SUCCESS
            }
            Err(error) => {
                announce(log_format, true, &error.to_string());
                ExitCode::FAILURE
            }
        }
    })
}

/// The start-up line and fatal errors of `run`: printed as they always were in the text form
/// (whatever `RUST_LOG` says), a log event under JSON so every line a pipeline reads parses.
fn announce(format: LogFormat, error: bool, line: &str) {
    match (format, error) {
        (LogFormat::Text, false) => println!("switchboard: {line}"),
        (LogFormat::Text, true) => eprintln!("error: {line}"),
        (LogFormat::Json, false) => tracing::info!("{line}"),
        (LogFormat::Json, true) => tracing::error!("{line}"),
    }
}

fn check_config(files: &[PathBuf], online: bool) -> ExitCode {
    let mut failed = false;
    for path in files {
        match Config::load(path) {
            Ok(config) => {
                if online && !set_up_online(path, config) {
                    failed = true;
                } else {
                    println!("{}: ok", path.display());
                }
            }
            Err(error) => {
                failed = true;
                println!("{error}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Asks each enabled channel's and the desk's platform what of their set-up is missing
/// (permissions), and whether the desk can post in every channel `config` names; prints each
/// problem with its key path. True when nothing is missing.
fn set_up_online(path: &std::path::Path, mut config: Config) -> bool {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            println!("cannot start the async runtime: {error}");
            return false;
        }
    };
    let cx = switchboard_api::BuildContext::single_instance("check-config", config.files.max_bytes);
    let mut usable = true;
    let mut report = |key: &str, problems: Result<Vec<String>, switchboard_api::ConnectorError>| {
        let problems = problems.unwrap_or_else(|error| vec![format!("cannot ask: {error}")]);
        for problem in problems {
            usable = false;
            println!("{}: {key}: {problem}", path.display());
        }
    };
    let names = config.connectors.names();
    match std::mem::take(&mut config.connectors).build(&cx) {
        Ok(connectors) => {
            for connector in connectors {
                let key = format!("connectors.{}", connector.channel());
                report(&key, runtime.block_on(connector.check_setup()));
            }
        }
        Err(error) => report(&format!("connectors ({})", names.join(", ")), Err(error)),
    }
    let Some(section) = config.desk.take_enabled() else {
        return usable;
    };
    let key = format!("desk.{}", section.name);
    let default_channel = section.config.default_channel().to_owned();
    let desk = match section.config.build(&cx) {
        Ok(desk) => desk,
        Err(error) => {
            println!("{}: {key}: cannot check channels: {error}", path.display());
            return false;
        }
    };
    report(&key, runtime.block_on(desk.check_setup()));
    let checks = runtime.block_on(switchboard::desk::channels::check_channels(
        desk.as_ref(),
        &key,
        &default_channel,
        &config.desk.routes,
    ));
    for check in checks {
        let Some(problem) = check.problem else {
            continue;
        };
        usable = false;
        let consequence = if check.is_default {
            "escalations cannot be posted".to_owned()
        } else {
            format!("escalations routed there would fall back to {default_channel}")
        };
        println!(
            "{}: {}: the desk cannot post in {}: {problem}; {consequence}",
            path.display(),
            check.key,
            check.channel
        );
    }
    usable
}

/// Runs an async command on a fresh runtime; a runtime that cannot start is one error line.
fn with_runtime<F, Fut>(command: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let outcome = tokio::runtime::Runtime::new()
        .map_err(|error| format!("cannot start the async runtime: {error}"))
        .and_then(|runtime| runtime.block_on(command()));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn kb(path: PathBuf, action: KbAction) -> Result<(), String> {
    use switchboard::learning::LEARNED_FILE;
    let config = Config::load(&path).map_err(|error| error.to_string())?;
    let timeout = std::time::Duration::from_millis(config.redis.command_timeout_ms);
    let store = switchboard::store::Store::connect(&config.redis.url, timeout)
        .await
        .map_err(|error| {
            let url = switchboard::app::redact_url(&config.redis.url);
            format!("cannot reach Redis at {url}: {error}")
        })?;
    let knowledge_dir = config.base_dir.join(&config.triage.knowledge_dir);
    let learning = switchboard::learning::KnowledgeLoop::new(store, None);
    match action {
        KbAction::Review { all } => {
            let candidates = learning.candidates().await.map_err(|e| e.to_string())?;
            let shown: Vec<_> = candidates
                .into_iter()
                .filter(|candidate| all || candidate.status == "pending")
                .collect();
            if shown.is_empty() {
                println!("no candidates waiting for review");
            }
            for candidate in shown {
                let failed = candidate
                    .error
                    .as_deref()
                    .map(|error| format!("  last approval failed: {error}\n"))
                    .unwrap_or_default();
                println!(
                    "{}  [{}] answered by {} (conversation {})\n  Q: {}\n  A: {}\n{failed}",
                    candidate.id,
                    candidate.status,
                    candidate.agent,
                    candidate.conversation_id,
                    candidate.question,
                    candidate.answer.replace('\n', "\n     ")
                );
            }
        }
        KbAction::Approve { id, answer } => {
            let approved = learning
                .approve(&id, answer.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            println!("{} approved: added to the knowledge base", approved.id);
        }
        KbAction::Reject { id } => {
            let rejected = learning.reject(&id).await.map_err(|e| e.to_string())?;
            println!("{} rejected", rejected.id);
        }
        KbAction::List => {
            let entries = learning.learned().await.map_err(|e| e.to_string())?;
            if entries.is_empty() {
                println!("no learned entries yet");
            }
            for entry in entries {
                let by = entry.agent.as_deref().unwrap_or("import");
                println!(
                    "{}  (from {by})\n  Q: {}\n  A: {}\n",
                    entry.id,
                    entry.question,
                    entry.answer.replace('\n', "\n     ")
                );
            }
        }
        KbAction::Export { out } => {
            let entries = learning.learned().await.map_err(|e| e.to_string())?;
            let (text, problems) = switchboard::learning::learned::export_markdown(&entries);
            for problem in problems {
                eprintln!("warning: {problem}; left out");
            }
            match out {
                Some(out) => {
                    std::fs::write(&out, text)
                        .map_err(|error| format!("cannot write {}: {error}", out.display()))?;
                    eprintln!(
                        "{} learned entries written to {}",
                        entries.len(),
                        out.display()
                    );
                }
                None => print!("{text}"),
            }
        }
        KbAction::Import { file } => {
            let file = file.unwrap_or_else(|| knowledge_dir.join(LEARNED_FILE));
            let text = std::fs::read_to_string(&file)
                .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
            let stem = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("learned");
            let entries = switchboard::triage::parse_knowledge_file(stem, &text)
                .map_err(|problem| format!("{}: {problem}", file.display()))?;
            let added = learning.import(&entries).await.map_err(|e| e.to_string())?;
            println!(
                "{added} of {} entries from {} added to the shared knowledge base ({} were already there).\n\
                 Every instance answers them from Redis now; the file can be deleted from the knowledge folders.",
                entries.len(),
                file.display(),
                entries.len() - added
            );
        }
        KbAction::Remove { id } => {
            if !learning.remove(&id).await.map_err(|e| e.to_string())? {
                return Err(format!("no learned entry {id} (see `switchboard kb list`)"));
            }
            println!("{id} removed from the knowledge base");
        }
    }
    Ok(())
}

async fn report(
    path: PathBuf,
    since: String,
    until: String,
    html: Option<PathBuf>,
) -> Result<(), String> {
    use switchboard::report::{run_report, Window};
    let config = Config::load(&path).map_err(|error| error.to_string())?;
    let now = switchboard::model::now_ms();
    let window = Window::parse_bound(&since, now)
        .and_then(|since| Ok((since, Window::parse_bound(&until, now)?)))
        .and_then(|(since, until)| Window::new(since, until))
        .map_err(|error| error.to_string())?;
    let report = run_report(&config, window, html.as_deref())
        .await
        .map_err(|error| error.to_string())?;
    println!("{report}");
    Ok(())
}

async fn replay(
    candidate: PathBuf,
    live: Option<PathBuf>,
    since: String,
    until: String,
    json: bool,
    html: Option<PathBuf>,
) -> Result<(), String> {
    use switchboard::report::replay::run_replay;
    use switchboard::report::Window;
    let load =
        |path: &PathBuf| Config::load(path).map_err(|error| format!("{}: {error}", path.display()));
    let candidate_config = load(&candidate)?;
    let live_config = load(live.as_ref().unwrap_or(&candidate))?;
    let now = switchboard::model::now_ms();
    let window = Window::parse_bound(&since, now)
        .and_then(|since| Ok((since, Window::parse_bound(&until, now)?)))
        .and_then(|(since, until)| Window::new(since, until))
        .map_err(|error| error.to_string())?;
    let replay = run_replay(&live_config, &candidate_config, window)
        .await
        .map_err(|error| error.to_string())?;
    if let Some(path) = &html {
        replay.write_html(path).map_err(|error| error.to_string())?;
    }
    if json {
        println!("{:#}", replay.to_json());
    } else {
        println!("{replay}");
    }
    Ok(())
}

async fn outbox(path: PathBuf, action: OutboxAction) -> Result<(), String> {
    use switchboard::outbox::admin::OutboxAdmin;
    let config = Config::load(&path).map_err(|error| error.to_string())?;
    let timeout = std::time::Duration::from_millis(config.redis.command_timeout_ms);
    let store = switchboard::store::Store::connect(&config.redis.url, timeout)
        .await
        .map_err(|error| {
            let url = switchboard::app::redact_url(&config.redis.url);
            format!("cannot reach Redis at {url}: {error}")
        })?;
    let admin = OutboxAdmin::new(store);
    let failed = |error: switchboard::outbox::admin::AdminError| error.to_string();
    match action {
        OutboxAction::Status => println!("{}", admin.status().await.map_err(failed)?),
        OutboxAction::Dead => {
            let dead = admin.dead().await.map_err(failed)?;
            if dead.is_empty() {
                println!("no dead letters");
            }
            for entry in dead {
                println!("{entry}\n");
            }
        }
        OutboxAction::Replay { all: true, .. } => {
            let replayed = admin.replay_all().await.map_err(failed)?;
            for id in &replayed {
                println!("{id} replayed");
            }
            println!("{} dead letter(s) put back into the outbox", replayed.len());
        }
        OutboxAction::Replay { id, .. } => {
            let id = admin
                .resolve(id.as_deref().unwrap_or_default())
                .await
                .map_err(failed)?;
            admin.replay(&id).await.map_err(failed)?;
            println!("{id} replayed: back in the outbox");
        }
        OutboxAction::Drop { id } => {
            let id = admin.resolve(&id).await.map_err(failed)?;
            admin.drop(&id).await.map_err(failed)?;
            println!("{id} dropped");
        }
    }
    Ok(())
}

/// Reads a password from standard input and prints its argon2 hash.
fn hash_password() -> ExitCode {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        eprintln!("could not read the password from standard input");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 8 {
        eprintln!("the password must be at least 8 characters");
        return ExitCode::FAILURE;
    }
    match switchboard_webdesk::hash_password(password) {
        Ok(hash) => {
            println!("{hash}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("could not hash the password: {error}");
            ExitCode::FAILURE
        }
    }
}
