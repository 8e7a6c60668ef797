//! The `switchboard` command: run the gateway, check config, evaluate triage.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard::config::Config;

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
    },
    /// Measure the embedded answerer on CLINC150: knowledge base from `train`, questions from
    /// `val` + `oos_val`; prints accuracy, out-of-scope recall, wrong answers and a threshold sweep.
    Eval {
        /// CLINC150's `clinc150_train_val.json` (or the full `data_full.json`).
        #[arg(
            long,
            default_value = "../shared/data/clinc150/clinc150_train_val.json"
        )]
        clinc150: PathBuf,
        /// Confidence threshold to report at (defaults to the built-in one).
        #[arg(long)]
        threshold: Option<f32>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run(config),
        Command::CheckConfig { files } => check_config(&files),
        Command::Eval {
            clinc150,
            threshold,
        } => match switchboard::triage::eval_clinc150(&clinc150, threshold) {
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

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

fn run(path: PathBuf) -> ExitCode {
    init_logging();
    let config = match Config::load(&path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        match switchboard::app::start(config).await {
            Ok(gateway) => {
                println!(
                    "switchboard: listening on http://{} (demo page at /)",
                    gateway.local_addr
                );
                gateway.wait().await;
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        }
    })
}

fn check_config(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for path in files {
        match Config::load(path) {
            Ok(_) => println!("{}: ok", path.display()),
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
