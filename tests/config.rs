//! Config: every example passes `check-config`; mistakes are named by their key path.

use std::path::Path;
use std::process::Command;

use crate::harness::{config_dir, TempDir};

fn check_config(files: &[&Path], env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.arg("check-config").args(files);
    for (name, value) in env {
        command.env(name, value);
    }
    command.env_remove("WEBCHAT_IDENTITY_SECRET_MISSING");
    let output = command.output().expect("run switchboard check-config");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// Secrets the examples reference; an admin sets them in the environment.
/// Example values for secrets whose form is checked (Slack tokens by their prefix, a Redis
/// URL); every other secret an example names (`*_env = "NAME"`) gets a generic value, so a new
/// channel's example needs no line here.
const SHAPED_EXAMPLE_ENV: [(&str, &str); 6] = [
    ("SLACK_CUSTOMER_BOT_TOKEN", "xoxb-example"),
    ("SLACK_CUSTOMER_APP_TOKEN", "xapp-example"),
    ("TELEGRAM_BOT_TOKEN", "123456:example"),
    ("SWITCHBOARD_REDIS_URL", "redis://127.0.0.1:6379/"),
    ("SLACK_BOT_TOKEN", "xoxb-example"),
    ("SLACK_APP_TOKEN", "xapp-example"),
];

/// The environment the examples need: each `*_env = "NAME"` they name, with an example value.
fn example_env(examples: &[std::path::PathBuf]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = SHAPED_EXAMPLE_ENV
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    for example in examples {
        let text = std::fs::read_to_string(example).unwrap();
        for line in text
            .lines()
            .filter(|line| !line.trim_start().starts_with('#'))
        {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let name = value.trim().trim_matches('"');
            let names_a_variable = key.trim().ends_with("_env")
                && !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            if names_a_variable && !env.iter().any(|(known, _)| known == name) {
                // Distinct per variable: some channels refuse two integrations sharing one.
                env.push((name.to_owned(), format!("example-secret-{name}-0123456789")));
            }
        }
    }
    env
}

#[test]
fn every_example_config_passes_check_config() {
    let mut examples: Vec<_> = std::fs::read_dir(config_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    examples.sort();
    assert!(
        examples.len() >= 2,
        "expected example configs, found {examples:?}"
    );
    let paths: Vec<&Path> = examples.iter().map(|p| p.as_path()).collect();
    let env = example_env(&examples);
    let env: Vec<(&str, &str)> = env.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    let (ok, output) = check_config(&paths, &env);
    assert!(ok, "check-config failed:\n{output}");
    for example in &examples {
        assert!(
            output.contains(&format!("{}: ok", example.display())),
            "{output}"
        );
    }
}

fn write_config(dir: &TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.0.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::create_dir_all(dir.0.join("knowledge")).unwrap();
    std::fs::copy(
        config_dir()
            .join("knowledge")
            .read_dir()
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
        dir.0.join("knowledge/faq.md"),
    )
    .unwrap();
    path
}

#[test]
fn typos_are_reported_with_their_key_paths_and_a_nonzero_exit() {
    let dir = TempDir::new("config-typo");
    let path = write_config(
        &dir,
        "typo.toml",
        r#"
[gatway]
listen = "127.0.0.1:8080"

[outbox]
max_atempts = 3

[connectors.webchat]
enabled = true
max_mesage_bytes = 100

[connectors.telegarm]
enabled = true
"#,
    );
    let (ok, output) = check_config(&[&path], &[]);
    assert!(!ok, "a typo must fail: {output}");
    for key in [
        "gatway",
        "outbox.max_atempts",
        "connectors.webchat.max_mesage_bytes",
        "connectors.telegarm",
    ] {
        assert!(
            output
                .lines()
                .any(|line| line.trim_start().starts_with(&format!("{key}:"))),
            "expected a problem for `{key}` in:\n{output}"
        );
    }
}

#[test]
fn a_missing_secret_names_the_key_and_the_variable() {
    let dir = TempDir::new("config-secret");
    let path = write_config(
        &dir,
        "secret.toml",
        r#"
[connectors.webchat]
enabled = true
identity_secret_env = "WEBCHAT_IDENTITY_SECRET_MISSING"
"#,
    );
    let (ok, output) = check_config(&[&path], &[]);
    assert!(!ok);
    assert!(
        output.contains("connectors.webchat.identity_secret_env")
            && output.contains("WEBCHAT_IDENTITY_SECRET_MISSING"),
        "{output}"
    );
}

#[test]
fn bad_values_and_broken_syntax_are_clear_errors() {
    let dir = TempDir::new("config-values");
    let values = write_config(
        &dir,
        "values.toml",
        "[gateway]\nlisten = \"not an address\"\nworkers = 0\nadmin_listen = \"9090\"\n\
         admin_token_env = \"SB_TEST_ADMIN_TOKEN_UNSET\"\n[redis]\nurl = \"http://nope\"\n\
         [desk]\nunstaffed_notice = 3\n",
    );
    let syntax = write_config(&dir, "syntax.toml", "[gateway\nlisten = 1\n");
    let (ok, output) = check_config(&[&values, &syntax], &[]);
    assert!(!ok);
    assert!(output.contains("gateway.listen:"), "{output}");
    assert!(
        output.contains("gateway.workers: must be between 1 and 16"),
        "{output}"
    );
    assert!(output.contains("redis.url:"), "{output}");
    assert!(
        output.contains("gateway.admin_listen: `9090` is not a socket address"),
        "{output}"
    );
    assert!(
        output.contains(
            "gateway.admin_token_env: environment variable SB_TEST_ADMIN_TOKEN_UNSET is not set"
        ),
        "{output}"
    );
    assert!(output.contains("desk.unstaffed_notice:"), "{output}");
    assert!(
        output.contains("syntax.toml") && output.contains("(syntax)"),
        "{output}"
    );
}

#[test]
fn the_replaced_max_attempts_names_its_successor_and_the_give_up_window_is_checked() {
    let dir = TempDir::new("config-outbox");
    let old = write_config(
        &dir,
        "old.toml",
        "[outbox]\nmax_attempts = 12\ninitial_backoff_ms = 500\nmax_backoff_mss = 1\n",
    );
    let zero = write_config(
        &dir,
        "zero.toml",
        "[outbox]\ngive_up_after_ms = 0\nunhealthy_after_ms = 0\n",
    );
    let (ok, output) = check_config(&[&old, &zero], &[]);
    assert!(!ok, "{output}");
    assert!(
        output.contains("outbox.max_attempts: was replaced by outbox.give_up_after_ms"),
        "{output}"
    );
    assert!(
        output.contains("outbox.max_backoff_mss:"),
        "the section's other mistakes are still reported: {output}"
    );
    assert!(
        output.contains("outbox.give_up_after_ms: must be greater than 0"),
        "{output}"
    );
    assert!(
        output.contains("outbox.unhealthy_after_ms: must be greater than 0"),
        "{output}"
    );
}

#[test]
fn a_misspelt_reason_or_channel_in_a_desk_route_is_a_config_error() {
    let dir = TempDir::new("config-routes");
    let path = write_config(
        &dir,
        "routes.toml",
        r#"
[desk.slack]
enabled = true
mode = "socket"
channel = "C0123SUPPORT"
bot_token_env = "SLACK_BOT_TOKEN"
app_token_env = "SLACK_APP_TOKEN"

[[desk.routes]]
channel = "C0123CARE"
reasons = ["negative_sentimnet"]

[[desk.routes]]
channel = "C0123MAIL"
customer_channels = ["whatsap"]

[[desk.routes]]
channel = "C0123LOOPS"
reasons = ["bot_loop", "human_requested"]
customer_channels = ["email"]
"#,
    );
    let (ok, output) = check_config(&[&path], &SHAPED_EXAMPLE_ENV);
    assert!(!ok, "a route that can never match must fail: {output}");
    assert!(
        output.contains(
            "desk.routes[0].reasons: `negative_sentimnet` is not an escalation reason (vip_tier, \
             always_human_category, human_requested, negative_sentiment, repeated_question, \
             bot_loop, low_confidence, repeat_contact)"
        ),
        "{output}"
    );
    assert!(
        output.contains("desk.routes[1].customer_channels: `whatsap` is not a channel"),
        "{output}"
    );
    assert!(
        !output.contains("desk.routes[2]") && !output.contains("desk.slack"),
        "valid routes and the desk pass: {output}"
    );
}

/// What a reviewer of the container set-up checks, kept true as the files change (no Docker
/// engine runs here, so the files themselves are read).
#[test]
fn the_container_files_build_locked_on_the_pinned_toolchain_and_keep_data_safe() {
    let root = config_dir().join("..");
    let read = |name: &str| std::fs::read_to_string(root.join(name)).expect(name);
    let manifest = read("Cargo.toml");
    let rust_version = manifest
        .lines()
        .find_map(|line| line.strip_prefix("rust-version = "))
        .map(|version| version.trim_matches('"').to_owned())
        .expect("the workspace declares rust-version");
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("FROM rust:{rust_version}-bookworm")),
        "the build image is pinned to rust-version {rust_version}"
    );
    assert!(dockerfile.contains("cargo build --release --locked"));
    assert!(
        dockerfile.contains("--mount=type=cache"),
        "dependencies are cached"
    );
    assert!(
        dockerfile.contains("\nUSER "),
        "the gateway does not run as root"
    );
    let ignore = read(".dockerignore");
    for excluded in ["target/", ".git/", "node_modules/"] {
        assert!(
            ignore.contains(excluded),
            ".dockerignore leaves out {excluded}"
        );
    }
    let compose = read("docker-compose.yml");
    for needed in [
        "condition: service_healthy",
        "restart: unless-stopped",
        "noeviction",
        "--maxmemory",
        "--appendonly",
        "healthcheck:",
        "/app/config/knowledge",
        "stop_grace_period",
    ] {
        assert!(
            compose.contains(needed),
            "docker-compose.yml lacks `{needed}`"
        );
    }
    // The config the image runs keeps admin endpoints off the public port, behind a token.
    let docker = read("config/docker.toml");
    assert!(docker.contains("admin_listen = \"0.0.0.0:9090\""));
    assert!(docker.contains("admin_token_env"));
}

#[test]
fn case_and_metrics_keys_are_checked_and_a_typo_is_an_error() {
    let problems = switchboard::config::Config::parse(
        "[case]\nidle_close_dayz = 3\nai_idle_close_hours = 0\nreopen_window_hours = -1\n\
         confirmation_phrases = [\"!!\"]\n[metrics]\nrepeat_window_days = nan\n",
        config_dir(),
    )
    .expect_err("bad [case] and [metrics]");
    let keys: Vec<&str> = problems
        .iter()
        .map(|problem| problem.key.as_str())
        .collect();
    assert!(keys.contains(&"case.idle_close_dayz"), "{keys:?}");
    let problems = switchboard::config::Config::parse(
        "[case]\nai_idle_close_hours = 0\nreopen_window_hours = -1\n\
         confirmation_phrases = [\"!!\"]\n[metrics]\nrepeat_window_days = nan\nwindow = 3\n",
        config_dir(),
    )
    .expect_err("bad values");
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(
        text.iter().any(|line| line.starts_with("metrics.window:")),
        "{text:?}"
    );
    let problems = switchboard::config::Config::parse(
        "[case]\nai_idle_close_hours = 0\nreopen_window_hours = -1\n\
         confirmation_phrases = [\"!!\"]\n[metrics]\nrepeat_window_days = nan\n",
        config_dir(),
    )
    .expect_err("bad values");
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    for expected in [
        "case.ai_idle_close_hours: must be above 0",
        "case.reopen_window_hours: must be 0 or more",
        "case.confirmation_phrases: phrase \"!!\" has no words",
        "metrics.repeat_window_days: must be 0 or more",
    ] {
        assert!(
            text.iter().any(|line| line.starts_with(expected)),
            "{expected} in {text:?}"
        );
    }
    let defaults = switchboard::config::Config::parse("", config_dir())
        .expect("defaults")
        .case_rules();
    assert_eq!(defaults.idle_close_ms, 7 * 86_400_000);
    assert_eq!(defaults.ai_idle_close_ms, 86_400_000);
    assert_eq!(defaults.repeat_window_ms, 7 * 86_400_000);
}

#[test]
fn an_s3_archive_beside_a_directory_or_without_its_credentials_is_refused_by_key() {
    let dir = TempDir::new("config-s3");
    let misspelt = write_config(
        &dir,
        "misspelt.toml",
        "[retention]\narchive_dir = \"archive\"\n[retention.s3]\nbucket = \"acme-archive\"\n\
         region = \"eu-west-1\"\naccess_key_id_env = \"SB_TEST_S3_KEY_UNSET\"\n\
         secret_access_key_env = \"SB_TEST_S3_SECRET_UNSET\"\n\
         endpoint = \"http://minio.internal:9000\"\nbukcet = \"typo\"\n",
    );
    let (ok, output) = check_config(&[&misspelt], &[]);
    assert!(!ok);
    assert!(
        output.contains("retention.s3.bukcet: unknown field"),
        "{output}"
    );
    let fixed = write_config(
        &dir,
        "fixed.toml",
        "[retention]\narchive_dir = \"archive\"\n[retention.s3]\nbucket = \"acme-archive\"\n\
         region = \"eu-west-1\"\naccess_key_id_env = \"SB_TEST_S3_KEY_UNSET\"\n\
         secret_access_key_env = \"SB_TEST_S3_SECRET_UNSET\"\n\
         endpoint = \"http://minio.internal:9000\"\n",
    );
    let (ok, output) = check_config(&[&fixed], &[]);
    assert!(!ok);
    for expected in [
        "retention.s3: retention.archive_dir is set too",
        "retention.s3.access_key_id_env: environment variable SB_TEST_S3_KEY_UNSET is not set",
        "retention.s3.secret_access_key_env: environment variable SB_TEST_S3_SECRET_UNSET is not set",
        "retention.s3.endpoint: `http://minio.internal:9000` is plain http off this machine",
    ] {
        assert!(output.contains(expected), "{expected:?} in:\n{output}");
    }
}
