//! `switchboard email ...`: the commands the email channel adds to the binary, registered in
//! the core's tool table like its config section.

use clap::{FromArgMatches, Subcommand};

use crate::oauth::{authorize, Authorize};
use crate::{OAuthConfig, OAuthProvider};

/// The `email` command and its subcommands.
pub fn command() -> clap::Command {
    EmailAction::augment_subcommands(
        clap::Command::new("email")
            .about("Email: run the OAuth 2.0 consent flow for `auth = \"oauth2\"`")
            .subcommand_required(true),
    )
}

/// Runs what [`command`] parsed.
pub fn run(arguments: &clap::ArgMatches) -> Result<(), String> {
    let action = EmailAction::from_arg_matches(arguments).map_err(|error| error.to_string())?;
    tokio::runtime::Runtime::new()
        .map_err(|error| format!("cannot start the async runtime: {error}"))?
        .block_on(authorize_once(action))
}

#[derive(Subcommand)]
enum EmailAction {
    /// Sign in to the support mailbox's account once and print the refresh token to store in
    /// the variable `[connectors.email.oauth2] refresh_token_env` names. Listens on 127.0.0.1
    /// for the provider's redirect (register `http://127.0.0.1` as a redirect URI, any port)
    /// and prints the URL to open in a browser.
    Authorize {
        /// `google`, `microsoft` or `custom`.
        #[arg(long)]
        provider: String,
        /// Environment variable holding the OAuth client id.
        #[arg(long, value_name = "VAR")]
        client_id_env: String,
        /// Environment variable holding the client secret (none for public clients).
        #[arg(long, value_name = "VAR")]
        client_secret_env: Option<String>,
        /// Microsoft: the directory (tenant) id or domain (default `common`).
        #[arg(long)]
        tenant: Option<String>,
        /// The consent page (required for `custom`).
        #[arg(long)]
        authorize_url: Option<String>,
        /// The token endpoint (required for `custom`).
        #[arg(long)]
        token_url: Option<String>,
        /// A scope to ask for; repeat for several (required for `custom`).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// The loopback port for the redirect (0: any free port).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

async fn authorize_once(action: EmailAction) -> Result<(), String> {
    let EmailAction::Authorize {
        provider,
        client_id_env,
        client_secret_env,
        tenant,
        authorize_url,
        token_url,
        scopes,
        port,
    } = action;
    let provider = match provider.as_str() {
        "google" => OAuthProvider::Google,
        "microsoft" => OAuthProvider::Microsoft,
        "custom" => OAuthProvider::Custom,
        other => {
            return Err(format!(
                "--provider {other:?}: expected google, microsoft or custom"
            ))
        }
    };
    let env = |name: &str| {
        std::env::var(name)
            .ok()
            .filter(|value| !value.is_empty())
            .ok_or_else(|| format!("environment variable {name} is not set"))
    };
    let client_secret = client_secret_env.as_deref().map(env).transpose()?;
    let oauth = OAuthConfig {
        provider,
        client_id: env(&client_id_env)?,
        client_id_env,
        client_secret,
        client_secret_env,
        refresh_token_env: String::new(),
        tenant,
        token_url,
        authorize_url,
        scopes: (!scopes.is_empty()).then_some(scopes),
        refresh_token: String::new(),
    };
    for url in [oauth.token_endpoint(), oauth.authorize_endpoint()]
        .into_iter()
        .flatten()
    {
        crate::config::check_endpoint_url(&url)?;
    }
    let refresh_token = authorize(
        Authorize {
            oauth: &oauth,
            port,
        },
        |url| {
            println!("Open this URL in a browser and sign in as the support mailbox:\n\n  {url}\n");
            println!("Waiting for the provider to redirect back to this machine...");
        },
    )
    .await?;
    println!(
        "\nRefresh token (store it in the environment variable your \
         [connectors.email.oauth2] refresh_token_env names; it is a password):\n\n{refresh_token}"
    );
    Ok(())
}
