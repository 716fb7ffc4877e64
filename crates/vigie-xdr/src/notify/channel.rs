//! Notification channels: what the API takes and shows, the check of each kind's settings, and
//! how a channel is stored — its secrets (a Slack, Teams or webhook URL, an SMTP password, a
//! webhook signing secret) sealed with the channel's id as associated data, never returned.
use super::template;
use crate::alerts::severity_number;
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;
use vigie_core::StoreError;
use vigie_core::clock::from_micros;
use vigie_core::http::FieldError;
use vigie_core::secrets::SecretBox;
use vigie_webhook::signature::SigningSecret;

/// The longest channel name (characters).
pub const MAX_NAME: usize = 100;
/// The most rules a channel's route names.
pub const MAX_RULES: usize = 200;
/// The most default recipients of an e-mail channel.
pub const MAX_RECIPIENTS: usize = 50;

/// Where a channel delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    /// A Slack incoming webhook.
    Slack,
    /// A Microsoft Teams incoming webhook.
    Teams,
    /// E-mail over SMTP.
    Email,
    /// A generic webhook, signed (Standard Webhooks).
    Webhook,
}

impl ChannelKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Teams => "teams",
            ChannelKind::Email => "email",
            ChannelKind::Webhook => "webhook",
        }
    }

    /// The kind of a stored name.
    pub fn parse(s: &str) -> Option<ChannelKind> {
        [ChannelKind::Slack, ChannelKind::Teams, ChannelKind::Email, ChannelKind::Webhook].into_iter().find(|k| k.as_str() == s)
    }
}

/// How an e-mail channel secures its SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on a trusted network only).
    None,
    /// STARTTLS, required: a server that does not offer it is not sent to.
    Starttls,
    /// Implicit TLS from the first byte (port 465).
    Tls,
}

/// Message template overrides (minijinja; missing values render empty).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Templates {
    /// The subject (e-mail subject, Slack header, Teams title).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The plain-text body (Slack and Teams show it as Markdown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// E-mail only: an HTML alternative (values HTML-escaped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// A channel's settings as written: which apply depends on the kind.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsInput {
    /// slack, teams, webhook: the URL to post to (a secret — it often carries a token: stored
    /// sealed, shown masked).
    pub url: Option<String>,
    /// webhook: the signing secret `whsec_…` (generated when absent, shown once).
    pub secret: Option<String>,
    /// email: the SMTP server.
    pub host: Option<String>,
    /// email: its port (default 25, 587 with STARTTLS, 465 with TLS).
    pub port: Option<u16>,
    /// email: `none`, `starttls` (default) or `tls`.
    pub tls: Option<SmtpTls>,
    /// email: the SMTP user.
    pub username: Option<String>,
    /// email: the SMTP password (stored sealed, never shown).
    pub password: Option<String>,
    /// email: the sender, `Vigie <vigie@example.com>`.
    pub from: Option<String>,
    /// email: the default recipients.
    pub to: Option<Vec<String>>,
    /// email: a PEM certificate authority to trust (a private mail relay).
    pub ca_pem: Option<String>,
}

/// The ports an e-mail channel may use unless private destinations are allowed.
pub const SMTP_PORTS: [u16; 4] = [25, 465, 587, 2525];

/// A new channel.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannel {
    /// Unique in the space, 1–100 characters.
    pub name: String,
    /// slack | teams | email | webhook.
    pub kind: ChannelKind,
    /// Default true.
    pub enabled: Option<bool>,
    /// The lowest alert severity sent: low (default), medium, high, critical.
    pub min_severity: Option<String>,
    /// Only alerts of these rules (ids or names); empty: every rule.
    pub rules: Option<Vec<String>>,
    /// Template overrides.
    pub templates: Option<Templates>,
    /// The kind's settings.
    #[serde(default)]
    pub settings: SettingsInput,
}

/// A change to a channel: any subset of its fields (its kind stays). Settings given replace
/// those of the channel one by one; secrets not given are kept.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelPatch {
    /// New name.
    pub name: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// The lowest severity sent.
    pub min_severity: Option<String>,
    /// The rules routed (empty: every rule).
    pub rules: Option<Vec<String>>,
    /// Template overrides (replace the previous ones whole).
    pub templates: Option<Templates>,
    /// Settings to change.
    pub settings: Option<SettingsInput>,
}

/// A channel as the API shows it: secrets masked or left out.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Channel {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// slack | teams | email | webhook.
    pub kind: ChannelKind,
    /// Whether it receives notifications.
    pub enabled: bool,
    /// The lowest alert severity sent.
    pub min_severity: String,
    /// The rules routed (ids or names); empty: every rule.
    pub rules: Vec<String>,
    /// Template overrides.
    pub templates: Templates,
    /// The settings, secrets masked (`url` of Slack and Teams) or only said to be set.
    #[schema(value_type = Object)]
    pub settings: Value,
    /// Creation time.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Who created it.
    pub created_by: Option<String>,
    /// Who changed it last.
    pub updated_by: Option<String>,
}

/// A channel just created: a webhook's signing secret is shown this once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedChannel {
    /// The channel.
    #[serde(flatten)]
    pub channel: Channel,
    /// webhook: the signing secret `whsec_…` to verify deliveries with; never shown again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// The secrets of a channel, sealed together.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Secrets {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// The non-secret settings, stored as JSON.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Plain {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<SmtpTls>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

/// A channel as stored, its secrets opened: what the sender needs.
#[derive(Debug, Clone)]
pub(crate) struct ChannelRow {
    pub id: String,
    pub space_no: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub enabled: bool,
    pub min_severity: String,
    pub rules: Vec<String>,
    pub templates: Templates,
    pub plain: Plain,
    pub sealed: Option<String>,
    pub hint: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

const COLS: &str = "id, space_no, name, kind, enabled, min_severity, rules, templates, settings, sealed, secret_hint, \
                    created_at, updated_at, created_by, updated_by";

fn conversion(i: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

fn json_col<T: serde::de::DeserializeOwned>(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s).map_err(|e| conversion(i, e))
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ChannelRow> {
    let kind: String = r.get(3)?;
    Ok(ChannelRow {
        id: r.get(0)?,
        space_no: r.get(1)?,
        name: r.get(2)?,
        kind: ChannelKind::parse(&kind).ok_or_else(|| conversion(3, StoreError::Invalid(format!("unknown channel kind {kind:?}"))))?,
        enabled: r.get(4)?,
        min_severity: r.get(5)?,
        rules: json_col(r, 6)?,
        templates: json_col(r, 7)?,
        plain: json_col(r, 8)?,
        sealed: r.get(9)?,
        hint: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
        created_by: r.get(13)?,
        updated_by: r.get(14)?,
    })
}

/// What the secrets are sealed for: this channel's id, so a sealed value copied onto another
/// channel does not open.
fn associated(id: &str) -> Vec<u8> {
    format!("notify-channel:{id}").into_bytes()
}

impl ChannelRow {
    /// The secrets, opened.
    pub fn secrets(&self, sealer: &SecretBox) -> Result<Secrets, StoreError> {
        let Some(s) = &self.sealed else { return Ok(Secrets::default()) };
        let plain = sealer
            .open(s, &associated(&self.id))
            .map_err(|e| StoreError::Invalid(format!("the secrets of channel {:?} cannot be opened: {e}", self.name)))?;
        serde_json::from_slice(&plain)
            .map_err(|e| StoreError::Invalid(format!("the secrets of channel {:?} are unreadable: {e}", self.name)))
    }

    /// As the API shows it.
    pub fn shown(&self) -> Channel {
        let p = &self.plain;
        let settings = match self.kind {
            ChannelKind::Slack | ChannelKind::Teams => json!({"url": self.hint}),
            // Zapier- or n8n-style URLs carry a token: masked like Slack's (rows from before
            // the URL was sealed show their plain one masked too).
            ChannelKind::Webhook => {
                json!({"url": self.hint.clone().or_else(|| p.url.as_deref().map(mask_url)), "secret_set": self.sealed.is_some()})
            }
            ChannelKind::Email => json!({
                "host": p.host, "port": p.port, "tls": p.tls, "username": p.username,
                "password_set": self.hint.as_deref() == Some("password"), "from": p.from, "to": p.to, "ca_pem": p.ca_pem,
            }),
        };
        Channel {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            enabled: self.enabled,
            min_severity: self.min_severity.clone(),
            rules: self.rules.clone(),
            templates: self.templates.clone(),
            settings,
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
            created_by: self.created_by.clone(),
            updated_by: self.updated_by.clone(),
        }
    }

    /// Whether an alert of `severity` (a word) raised by rule (`rule_id`, `rule_name`) goes here.
    pub fn routes(&self, severity: &str, rule_id: &str, rule_name: &str) -> bool {
        let rank = |w: &str| severity_number(w).unwrap_or(0);
        rank(severity) >= rank(&self.min_severity)
            && (self.rules.is_empty() || self.rules.iter().any(|r| r == rule_id || r.trim().eq_ignore_ascii_case(rule_name.trim())))
    }
}

/// A channel of the space, by id.
pub(crate) fn fetch(c: &Connection, space_no: i64, id: &str) -> Result<ChannelRow, StoreError> {
    c.prepare_cached(&format!("SELECT {COLS} FROM notify_channels WHERE space_no = ?1 AND id = ?2"))?
        .query_row(params![space_no, id], row)
        .optional()?
        .ok_or(StoreError::NotFound)
}

/// A channel of the space, by name (exact, then any case).
pub(crate) fn by_name(c: &Connection, space_no: i64, name: &str) -> Result<Option<ChannelRow>, StoreError> {
    Ok(c.prepare_cached(&format!(
        "SELECT {COLS} FROM notify_channels WHERE space_no = ?1 AND (name = ?2 OR lower(name) = lower(?2)) ORDER BY name = ?2 DESC LIMIT 1"
    ))?
    .query_row(params![space_no, name.trim()], row)
    .optional()?)
}

/// The space's channels, by name, after `after`.
pub(crate) fn list(c: &Connection, space_no: i64, after: Option<&str>, limit: i64) -> Result<Vec<ChannelRow>, StoreError> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT {COLS} FROM notify_channels WHERE space_no = ?1 AND (?2 IS NULL OR name > ?2) ORDER BY name LIMIT ?3"
    ))?;
    let rows = stmt.query_map(params![space_no, after, limit], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The space's enabled channels, oldest first.
pub(crate) fn enabled(c: &Connection, space_no: i64) -> Result<Vec<ChannelRow>, StoreError> {
    let mut stmt = c.prepare_cached(&format!("SELECT {COLS} FROM notify_channels WHERE space_no = ?1 AND enabled = 1 ORDER BY id"))?;
    let rows = stmt.query_map([space_no], row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Writes a checked channel (insert or replace by id).
pub(crate) fn save(c: &Connection, ch: &ChannelRow, insert: bool) -> Result<(), StoreError> {
    let taken = |e: rusqlite::Error| {
        if StoreError::is_unique_violation(&e) {
            StoreError::Conflict(format!("a channel named {:?}", ch.name))
        } else {
            StoreError::from(e)
        }
    };
    let args = params![
        ch.id,
        ch.space_no,
        ch.name,
        ch.kind.as_str(),
        ch.enabled,
        ch.min_severity,
        serde_json::to_string(&ch.rules)?,
        serde_json::to_string(&ch.templates)?,
        serde_json::to_string(&ch.plain)?,
        ch.sealed,
        ch.hint,
        ch.created_at,
        ch.updated_at,
        ch.created_by,
        ch.updated_by,
    ];
    let sql = if insert {
        format!("INSERT INTO notify_channels ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)")
    } else {
        "UPDATE notify_channels SET name = ?3, kind = ?4, enabled = ?5, min_severity = ?6, rules = ?7, templates = ?8, settings = ?9, \
         sealed = ?10, secret_hint = ?11, created_at = ?12, updated_at = ?13, created_by = ?14, updated_by = ?15 \
         WHERE id = ?1 AND space_no = ?2"
            .to_owned()
    };
    c.prepare_cached(&sql)?.execute(args).map_err(taken)?;
    Ok(())
}

/// `https://hooks.slack.com/…/abcd`: the scheme, the host and the last four characters.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or(host);
    let tail: String = {
        let chars: Vec<char> = url.trim_end_matches('/').chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    if scheme.is_empty() { format!("…{tail}") } else { format!("{scheme}://{host}/…/{tail}") }
}

/// The channel a create or an update leads to, checked (every problem at once, each naming
/// its field), and the webhook signing secret generated for a new webhook channel.
pub(crate) struct Checked {
    pub row: ChannelRow,
    pub new_secret: Option<String>,
}

fn check_name(name: &str, errors: &mut Vec<FieldError>) -> String {
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", "1 to 100 characters, no control characters"));
    }
    name
}

fn check_severity(raw: &str, errors: &mut Vec<FieldError>) -> String {
    match severity_number(raw) {
        Some(_) => raw.trim().to_ascii_lowercase(),
        None => {
            errors.push(FieldError::new("min_severity", format!("{raw:?} is not one of low, medium, high, critical")));
            "low".into()
        }
    }
}

fn check_rules(rules: Vec<String>, errors: &mut Vec<FieldError>) -> Vec<String> {
    let rules: Vec<String> = rules.into_iter().map(|r| r.trim().to_owned()).collect();
    if rules.len() > MAX_RULES {
        errors.push(FieldError::new("rules", format!("at most {MAX_RULES} rules")));
    }
    for (i, r) in rules.iter().enumerate() {
        if r.is_empty() || r.chars().count() > 200 {
            errors.push(FieldError::new(format!("rules[{i}]"), "a rule's id or name, 1 to 200 characters"));
        }
    }
    rules
}

fn check_templates(t: &Templates, kind: ChannelKind, errors: &mut Vec<FieldError>) {
    for (field, src) in [("subject", &t.subject), ("body", &t.body), ("html", &t.html)] {
        if let Some(src) = src
            && let Err(e) = template::check(src)
        {
            errors.push(FieldError::new(format!("templates.{field}"), e));
        }
    }
    if t.html.is_some() && kind != ChannelKind::Email {
        errors.push(FieldError::new("templates.html", "only e-mail channels send HTML"));
    }
}

/// Whether `s` is an e-mail address lettre sends to (`a@b.c` or `Name <a@b.c>`).
pub fn is_mailbox(s: &str) -> bool {
    s.trim().parse::<lettre::message::Mailbox>().is_ok()
}

/// Applies `input` over the current settings of a channel of `kind`, checking them.
fn apply_settings(
    kind: ChannelKind,
    input: SettingsInput,
    plain: &mut Plain,
    secrets: &mut Secrets,
    allow_private: bool,
    creating: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let foreign = |present: bool, field: &str, errors: &mut Vec<FieldError>| {
        if present {
            errors.push(FieldError::new(format!("settings.{field}"), format!("not a setting of {} channels", kind.as_str())));
        }
    };
    let mut new_secret = None;
    match kind {
        ChannelKind::Slack | ChannelKind::Teams | ChannelKind::Webhook => {
            for (present, field) in [
                (input.host.is_some(), "host"),
                (input.port.is_some(), "port"),
                (input.tls.is_some(), "tls"),
                (input.username.is_some(), "username"),
                (input.password.is_some(), "password"),
                (input.from.is_some(), "from"),
                (input.to.is_some(), "to"),
                (input.ca_pem.is_some(), "ca_pem"),
            ] {
                foreign(present, field, errors);
            }
            if kind != ChannelKind::Webhook {
                foreign(input.secret.is_some(), "secret", errors);
            }
            if let Some(url) = input.url {
                let url = url.trim().to_owned();
                match vigie_webhook::destination::check_url(&url, allow_private) {
                    Ok(_) if url.len() <= 2048 => {
                        plain.url = None;
                        secrets.url = Some(url);
                    }
                    Ok(_) => errors.push(FieldError::new("settings.url", "at most 2048 characters")),
                    Err(e) => errors.push(FieldError::new("settings.url", e.to_string())),
                }
            } else if creating {
                errors.push(FieldError::new("settings.url", format!("give the URL of the {} webhook", kind.as_str())));
            }
            if kind == ChannelKind::Webhook {
                match input.secret {
                    Some(s) => match SigningSecret::parse(&s) {
                        Ok(s) => secrets.secret = Some(s.expose()),
                        Err(e) => errors.push(FieldError::new("settings.secret", e.to_string())),
                    },
                    None if creating => {
                        let s = SigningSecret::generate().expose();
                        secrets.secret = Some(s.clone());
                        new_secret = Some(s);
                    }
                    None => {}
                }
            }
        }
        ChannelKind::Email => {
            foreign(input.url.is_some(), "url", errors);
            foreign(input.secret.is_some(), "secret", errors);
            // Only a change of address counts: a form that sends the stored host and port back
            // unchanged (the console's edit form does) must not be refused for a port that was
            // allowed when it was set.
            let moved = input.host.as_deref().is_some_and(|h| plain.host.as_deref() != Some(h.trim()))
                || input.port.is_some_and(|p| plain.port != Some(p));
            if let Some(h) = input.host {
                plain.host = Some(h.trim().to_owned());
            }
            if plain.host.as_deref().is_none_or(|h| h.is_empty() || h.len() > 253 || h.contains(['/', ' ', '@'])) {
                errors.push(FieldError::new("settings.host", "the SMTP server's host name or IP address"));
            }
            if let Some(t) = input.tls {
                plain.tls = Some(t);
            }
            if input.port.is_some() {
                plain.port = input.port;
            }
            if plain.port == Some(0) {
                errors.push(FieldError::new("settings.port", "a port from 1 to 65535"));
            } else if let Some(p) = plain.port
                && !allow_private
                && moved
                && !SMTP_PORTS.contains(&p)
            {
                // A mail relay is usually on the inside, so its address is not checked; its
                // port is, so a channel (and its test call, which reports the server's answer)
                // cannot probe any other internal service.
                errors.push(FieldError::new(
                    "settings.port",
                    format!("{p} is not an SMTP port: use 25, 465, 587 or 2525 (other ports need private destinations allowed)"),
                ));
            }
            if let Some(u) = input.username {
                let u = u.trim().to_owned();
                plain.username = (!u.is_empty()).then_some(u);
            }
            if let Some(p) = input.password {
                secrets.password = (!p.is_empty()).then_some(p);
            }
            if plain.username.is_some() != secrets.password.is_some() {
                errors.push(FieldError::new("settings.password", "give both username and password, or neither"));
            }
            if let Some(f) = input.from {
                plain.from = Some(f.trim().to_owned());
            }
            match &plain.from {
                Some(f) if is_mailbox(f) => {}
                _ => errors.push(FieldError::new("settings.from", "the sender's address, such as \"Vigie <vigie@example.com>\"")),
            }
            if let Some(to) = input.to {
                plain.to = to.into_iter().map(|t| t.trim().to_owned()).collect();
            }
            if plain.to.len() > MAX_RECIPIENTS {
                errors.push(FieldError::new("settings.to", format!("at most {MAX_RECIPIENTS} recipients")));
            }
            for (i, t) in plain.to.iter().enumerate() {
                if !is_mailbox(t) {
                    errors.push(FieldError::new(
                        format!("settings.to[{i}]"),
                        format!("{:?} is not an e-mail address", t.chars().take(80).collect::<String>()),
                    ));
                }
            }
            if let Some(pem) = input.ca_pem {
                let pem = pem.trim().to_owned();
                plain.ca_pem = (!pem.is_empty()).then_some(pem);
            }
            if let Some(pem) = &plain.ca_pem
                && (pem.len() > 64 * 1024 || lettre::transport::smtp::client::Certificate::from_pem(pem.as_bytes()).is_err())
            {
                errors.push(FieldError::new("settings.ca_pem", "a PEM certificate (-----BEGIN CERTIFICATE-----), at most 64 KiB"));
            }
        }
    }
    new_secret
}

/// Checks a new channel and builds its row (secrets sealed with `sealer`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn create(
    new: NewChannel,
    id: String,
    space_no: i64,
    sealer: &SecretBox,
    allow_private: bool,
    now_us: i64,
    by: &str,
) -> Result<Checked, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = check_name(&new.name, &mut errors);
    let min_severity = check_severity(new.min_severity.as_deref().unwrap_or("low"), &mut errors);
    let rules = check_rules(new.rules.unwrap_or_default(), &mut errors);
    let templates = new.templates.unwrap_or_default();
    check_templates(&templates, new.kind, &mut errors);
    let (mut plain, mut secrets) = (Plain::default(), Secrets::default());
    let new_secret = apply_settings(new.kind, new.settings, &mut plain, &mut secrets, allow_private, true, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut row = ChannelRow {
        id,
        space_no,
        name,
        kind: new.kind,
        enabled: new.enabled.unwrap_or(true),
        min_severity,
        rules,
        templates,
        plain,
        sealed: None,
        hint: None,
        created_at: now_us,
        updated_at: now_us,
        created_by: Some(by.to_owned()),
        updated_by: Some(by.to_owned()),
    };
    seal(&mut row, &secrets, sealer);
    Ok(Checked { row, new_secret })
}

/// Checks a change of `cur` and builds the changed row.
pub(crate) fn update(
    mut cur: ChannelRow,
    patch: ChannelPatch,
    sealer: &SecretBox,
    allow_private: bool,
    now_us: i64,
    by: &str,
) -> Result<Checked, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut secrets = match cur.secrets(sealer) {
        Ok(s) => s,
        Err(e) => {
            // Unreadable secrets (another master key): the change must give them again.
            tracing::warn!(channel = %cur.id, error = %e, "a channel's secrets cannot be opened; they must be given again");
            Secrets::default()
        }
    };
    if let Some(n) = patch.name {
        cur.name = check_name(&n, &mut errors);
    }
    if let Some(s) = patch.min_severity {
        cur.min_severity = check_severity(&s, &mut errors);
    }
    if let Some(r) = patch.rules {
        cur.rules = check_rules(r, &mut errors);
    }
    if let Some(t) = patch.templates {
        check_templates(&t, cur.kind, &mut errors);
        cur.templates = t;
    }
    if let Some(e) = patch.enabled {
        cur.enabled = e;
    }
    if cur.kind == ChannelKind::Webhook && secrets.url.is_none() {
        // A webhook channel stored before its URL was sealed: sealed now.
        secrets.url = cur.plain.url.take();
    }
    let settings = patch.settings.unwrap_or_default();
    let password_given = settings.password.is_some();
    // No TLS setting means STARTTLS (as the sender reads it): a form that sends it explicitly
    // changes nothing.
    let destination = |p: &Plain| (p.host.clone(), p.port, p.tls.unwrap_or(SmtpTls::Starttls), p.username.clone(), p.ca_pem.clone());
    let before = destination(&cur.plain);
    apply_settings(cur.kind, settings, &mut cur.plain, &mut secrets, allow_private, false, &mut errors);
    if cur.kind != ChannelKind::Email && secrets.url.is_none() {
        errors.push(FieldError::new("settings.url", "give the webhook URL again (the stored one cannot be read)"));
    }
    // The stored password would otherwise be sent to the new server, or to whoever the new
    // certificate authority vouches for.
    if cur.kind == ChannelKind::Email && secrets.password.is_some() && !password_given && destination(&cur.plain) != before {
        errors.push(FieldError::new(
            "settings.password",
            "give the password again when you change where it goes (host, port, tls, username or ca_pem)",
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    cur.updated_at = now_us.max(cur.updated_at);
    cur.updated_by = Some(by.to_owned());
    seal(&mut cur, &secrets, sealer);
    Ok(Checked { row: cur, new_secret: None })
}

fn seal(row: &mut ChannelRow, secrets: &Secrets, sealer: &SecretBox) {
    let empty = secrets.url.is_none() && secrets.secret.is_none() && secrets.password.is_none();
    row.sealed = (!empty).then(|| {
        let plain = serde_json::to_vec(secrets).unwrap_or_default();
        sealer.seal(&plain, &associated(&row.id))
    });
    row.hint = match row.kind {
        ChannelKind::Slack | ChannelKind::Teams | ChannelKind::Webhook => secrets.url.as_deref().map(mask_url),
        ChannelKind::Email => secrets.password.as_ref().map(|_| "password".to_owned()),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_masked_to_host_and_last_four() {
        assert_eq!(mask_url("https://hooks.slack.com/services/T000/B000/XXXXabcd"), "https://hooks.slack.com/…/abcd");
        assert_eq!(mask_url("http://127.0.0.1:9/x/y/zz12/"), "http://127.0.0.1:9/…/zz12");
    }

    #[test]
    fn routes_by_severity_and_rule() {
        let row = ChannelRow {
            id: "c".into(),
            space_no: 1,
            name: "n".into(),
            kind: ChannelKind::Slack,
            enabled: true,
            min_severity: "high".into(),
            rules: vec!["Policy violation".into()],
            templates: Templates::default(),
            plain: Plain::default(),
            sealed: None,
            hint: None,
            created_at: 0,
            updated_at: 0,
            created_by: None,
            updated_by: None,
        };
        assert!(row.routes("critical", "r1", "policy violation"));
        assert!(!row.routes("medium", "r1", "Policy violation"));
        assert!(!row.routes("high", "r1", "Other"));
    }

    fn email_row(port: u16) -> ChannelRow {
        ChannelRow {
            id: "c".into(),
            space_no: 1,
            name: "soc".into(),
            kind: ChannelKind::Email,
            enabled: true,
            min_severity: "low".into(),
            rules: vec![],
            templates: Templates::default(),
            plain: Plain {
                host: Some("127.0.0.1".into()),
                port: Some(port),
                tls: Some(SmtpTls::None),
                from: Some("Vigie <vigie@example.com>".into()),
                to: vec!["soc@example.com".into()],
                ..Plain::default()
            },
            sealed: None,
            hint: None,
            created_at: 0,
            updated_at: 0,
            created_by: None,
            updated_by: None,
        }
    }

    #[test]
    fn an_edit_that_sends_the_stored_host_and_port_back_keeps_a_port_allowed_earlier() {
        let master = vigie_core::secrets::MasterKey::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").expect("32 bytes");
        let sealer = SecretBox::new(&master, "test");
        let settings = |host: &str, port: u16| SettingsInput {
            host: Some(host.into()),
            port: Some(port),
            tls: Some(SmtpTls::None),
            from: Some("Vigie <vigie@example.com>".into()),
            to: Some(vec!["soc@example.com".into()]),
            ..Default::default()
        };
        // The console's form: the same host (as typed, with spaces) and port, another recipient.
        let mut same = settings(" 127.0.0.1 ", 40123);
        same.to = Some(vec!["soc2@example.com".into()]);
        let patch = ChannelPatch { settings: Some(same), ..Default::default() };
        let ok = update(email_row(40123), patch, &sealer, false, 1, "t").expect("an unchanged address is not checked again");
        assert_eq!(ok.row.plain.to, vec!["soc2@example.com".to_owned()]);
        // A new port (or a new host with a non-SMTP port) still is.
        for s in [settings("127.0.0.1", 40124), settings("10.0.0.1", 40123)] {
            let patch = ChannelPatch { settings: Some(s), ..Default::default() };
            let errors = update(email_row(40123), patch, &sealer, false, 1, "t").err().expect("refused");
            assert!(errors.iter().any(|e| e.field == "settings.port"), "{errors:?}");
        }
    }
}
