//! `[connectors.email.oauth2]`: the OAuth 2.0 client, its refresh token and the provider's
//! endpoints and scopes, for `auth = "oauth2"`.

use serde::Deserialize;

/// Whose OAuth 2.0 endpoints and scopes to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OAuthProvider {
    /// Google Workspace / Gmail.
    Google,
    /// Microsoft 365 / Exchange Online.
    Microsoft,
    /// Any other provider: `token_url` and `scopes` (and `authorize_url` for the consent flow).
    Custom,
}

/// `[connectors.email.oauth2]`: where access tokens come from when `auth = "oauth2"`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthConfig {
    /// `google`, `microsoft` or `custom`.
    pub provider: OAuthProvider,
    /// Environment variable holding the OAuth client id.
    pub client_id_env: String,
    /// Environment variable holding the client secret (absent for public clients).
    #[serde(default)]
    pub client_secret_env: Option<String>,
    /// Environment variable holding the refresh token `switchboard email authorize` printed.
    pub refresh_token_env: String,
    /// Microsoft only: the directory (tenant) id or domain; `common` when absent.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Token endpoint; required for `custom`, overrides the provider's otherwise.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Consent page for `switchboard email authorize`; required there for `custom`.
    #[serde(default)]
    pub authorize_url: Option<String>,
    /// Scopes to ask for; required for `custom`, overrides the provider's otherwise.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Resolved client id (never read from TOML).
    #[serde(skip)]
    pub client_id: String,
    /// Resolved client secret (never read from TOML).
    #[serde(skip)]
    pub client_secret: Option<String>,
    /// Resolved refresh token (never read from TOML).
    #[serde(skip)]
    pub refresh_token: String,
}

impl OAuthConfig {
    /// The token endpoint: `token_url`, or the provider's.
    pub fn token_endpoint(&self) -> Option<String> {
        if let Some(url) = &self.token_url {
            return Some(url.clone());
        }
        match self.provider {
            OAuthProvider::Google => Some("https://oauth2.googleapis.com/token".into()),
            OAuthProvider::Microsoft => Some(format!(
                "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
                self.tenant.as_deref().unwrap_or("common")
            )),
            OAuthProvider::Custom => None,
        }
    }

    /// The consent page: `authorize_url`, or the provider's.
    pub fn authorize_endpoint(&self) -> Option<String> {
        if let Some(url) = &self.authorize_url {
            return Some(url.clone());
        }
        match self.provider {
            OAuthProvider::Google => Some("https://accounts.google.com/o/oauth2/v2/auth".into()),
            OAuthProvider::Microsoft => Some(format!(
                "https://login.microsoftonline.com/{}/oauth2/v2.0/authorize",
                self.tenant.as_deref().unwrap_or("common")
            )),
            OAuthProvider::Custom => None,
        }
    }

    /// The scopes: `scopes`, or what the provider needs for IMAP and SMTP (with a refresh
    /// token: Microsoft's `offline_access`; Google's comes from `access_type=offline`).
    pub fn scope_list(&self) -> Vec<String> {
        if let Some(scopes) = &self.scopes {
            return scopes.clone();
        }
        match self.provider {
            OAuthProvider::Google => vec!["https://mail.google.com/".into()],
            OAuthProvider::Microsoft => vec![
                "https://outlook.office.com/IMAP.AccessAsUser.All".into(),
                "https://outlook.office.com/SMTP.Send".into(),
                "offline_access".into(),
            ],
            OAuthProvider::Custom => Vec::new(),
        }
    }
}

/// Checks an OAuth endpoint: https, or http to this machine only (test and proxy setups).
pub fn check_endpoint_url(url: &str) -> Result<(), String> {
    let rest = if let Some(rest) = url.strip_prefix("https://") {
        rest
    } else if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', '?']).next().unwrap_or("");
        let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
        if !["127.0.0.1", "localhost", "[::1]"].contains(&host) {
            return Err(format!(
                "{url:?} must use https:// (plain http only to 127.0.0.1 or localhost)"
            ));
        }
        rest
    } else {
        return Err(format!("{url:?} must be an https:// URL"));
    };
    if rest.split(['/', '?']).next().unwrap_or("").is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    Ok(())
}

pub(crate) fn validate_oauth(oauth: &OAuthConfig, problem: &mut impl FnMut(&str, &str)) {
    match oauth.token_endpoint() {
        None => problem("oauth2.token_url", "is required with provider = \"custom\""),
        Some(url) => {
            if let Err(why) = check_endpoint_url(&url) {
                problem("oauth2.token_url", &why);
            }
        }
    }
    if let Some(url) = &oauth.authorize_url {
        if let Err(why) = check_endpoint_url(url) {
            problem("oauth2.authorize_url", &why);
        }
    }
    if oauth.scope_list().is_empty() {
        problem("oauth2.scopes", "is required with provider = \"custom\"");
    }
    if oauth.tenant.is_some() && oauth.provider != OAuthProvider::Microsoft {
        problem(
            "oauth2.tenant",
            "is only used with provider = \"microsoft\"",
        );
    }
}
