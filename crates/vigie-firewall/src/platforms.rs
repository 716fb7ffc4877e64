//! The platform catalogue: the AI platforms Vigie knows (id, name, hosts, vetted by default),
//! with each tenant's changes (vetting, hosts) and custom platforms on top. An interaction on a
//! platform id that is not in the catalogue is accepted and treated as unvetted.
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A platform as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Platform {
    /// The `platform_id` interactions carry.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Host names the extension and proxy recognise.
    pub hosts: Vec<String>,
    /// Whether the organisation approved it.
    pub vetted: bool,
    /// Whether it comes from Vigie's catalogue (false: added by the tenant).
    pub builtin: bool,
}

/// Vigie's catalogue: (id, name, hosts, vetted by default). ChatGPT, Claude and Gemini are
/// vetted by default, matching the default detection rule on unvetted platforms.
pub const CATALOGUE: &[(&str, &str, &[&str], bool)] = &[
    ("chatgpt", "ChatGPT (OpenAI)", &["chatgpt.com", "chat.openai.com"], true),
    ("claude", "Claude (Anthropic)", &["claude.ai"], true),
    ("gemini", "Gemini (Google)", &["gemini.google.com", "aistudio.google.com"], true),
    ("copilot", "Microsoft Copilot", &["copilot.microsoft.com", "copilot.cloud.microsoft", "m365.cloud.microsoft"], false),
    ("deepseek", "DeepSeek", &["chat.deepseek.com"], false),
    ("perplexity", "Perplexity", &["www.perplexity.ai", "perplexity.ai"], false),
    ("mistral", "Le Chat (Mistral AI)", &["chat.mistral.ai"], false),
    ("poe", "Poe", &["poe.com"], false),
    ("huggingchat", "HuggingChat", &["huggingface.co"], false),
    ("grok", "Grok (xAI)", &["grok.com", "x.com"], false),
    ("mammouth", "Mammouth AI", &["mammouth.ai"], false),
    ("typingmind", "TypingMind", &["www.typingmind.com", "typingmind.com"], false),
    ("openrouter", "OpenRouter", &["openrouter.ai"], false),
    ("windsurf", "Windsurf (Codeium)", &["windsurf.com", "codeium.com"], false),
    ("cursor", "Cursor", &["cursor.com", "www.cursor.com"], false),
    ("meta-ai", "Meta AI", &["www.meta.ai", "meta.ai"], false),
    ("qwen", "Qwen Chat (Alibaba)", &["chat.qwen.ai"], false),
    ("you", "You.com", &["you.com"], false),
];

/// The built-in entry for `id`.
pub fn builtin(id: &str) -> Option<Platform> {
    CATALOGUE.iter().find(|p| p.0 == id).map(|&(id, name, hosts, vetted)| Platform {
        id: id.to_owned(),
        name: name.to_owned(),
        hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
        vetted,
        builtin: true,
    })
}

/// Whether `id` is vetted by default (unknown platforms are not).
pub fn vetted_by_default(id: &str) -> bool {
    CATALOGUE.iter().any(|p| p.0 == id && p.3)
}

/// The catalogue with a tenant's rows (overrides and custom platforms) applied, sorted by id.
pub fn merged(tenant_rows: Vec<Platform>) -> Vec<Platform> {
    let mut out: Vec<Platform> = CATALOGUE.iter().filter_map(|p| builtin(p.0)).collect();
    for row in tenant_rows {
        match out.iter_mut().find(|p| p.id == row.id) {
            Some(p) => *p = Platform { builtin: true, ..row },
            None => out.push(row),
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_catalogue_has_the_platforms_users_expect() {
        for id in [
            "chatgpt",
            "claude",
            "gemini",
            "copilot",
            "deepseek",
            "perplexity",
            "mistral",
            "poe",
            "huggingchat",
            "grok",
            "mammouth",
            "typingmind",
            "openrouter",
            "windsurf",
            "cursor",
        ] {
            assert!(super::builtin(id).is_some(), "{id} missing");
        }
        assert!(super::vetted_by_default("claude"));
        assert!(!super::vetted_by_default("deepseek"));
        assert!(!super::vetted_by_default("some-new-ai"));
    }
}

/// The tenant's rows: overrides of built-in platforms and custom ones.
pub fn tenant_rows(c: &rusqlite::Connection, tenant: uuid::Uuid) -> Result<Vec<Platform>, vigie_core::StoreError> {
    let mut stmt = c.prepare_cached("SELECT id, name, hosts, vetted, builtin FROM platforms WHERE tenant_id = ?1")?;
    let rows = stmt.query_map([tenant.to_string()], |r| {
        let hosts: String = r.get(2)?;
        Ok(Platform {
            id: r.get(0)?,
            name: r.get(1)?,
            hosts: serde_json::from_str(&hosts).unwrap_or_default(),
            vetted: r.get(3)?,
            builtin: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// HTTP routes of the catalogue.
pub mod routes {
    use super::{Platform, builtin, merged, tenant_rows};
    use crate::model::normalize_platform;
    use crate::state::FirewallState;
    use axum::Json;
    use axum::extract::{Path, State};
    use axum::http::StatusCode;
    use rusqlite::params;
    use serde::Deserialize;
    use utoipa::ToSchema;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    use vigie_core::StoreError;
    use vigie_core::auth::{Permission, Principal};
    use vigie_core::http::{Admin, ApiError, ApiJson, ErrorBody, FieldError, Page};

    /// The platform routes.
    pub fn router() -> OpenApiRouter<FirewallState> {
        OpenApiRouter::new().routes(routes!(platforms_list, platforms_create)).routes(routes!(platforms_get, platforms_update))
    }

    pub(crate) async fn all(st: &FirewallState, tenant: uuid::Uuid) -> Result<Vec<Platform>, ApiError> {
        Ok(merged(st.store.read(move |c| tenant_rows(c, tenant)).await?))
    }

    /// The catalogue: Vigie's platforms with the tenant's vetting, plus custom platforms.
    #[utoipa::path(get, path = "/api/v1/platforms", tag = "platforms", security(("bearer" = [])),
        responses((status = 200, body = Page<Platform>)))]
    async fn platforms_list(State(st): State<FirewallState>, p: Principal) -> Result<Json<Page<Platform>>, ApiError> {
        p.require(Permission::ReadConfig)?;
        Ok(Json(Page { items: all(&st, p.tenant_id).await?, next_cursor: None }))
    }

    /// One platform.
    #[utoipa::path(get, path = "/api/v1/platforms/{id}", tag = "platforms", security(("bearer" = [])), params(("id" = String, Path)),
        responses((status = 200, body = Platform), (status = 404, body = ErrorBody)))]
    async fn platforms_get(State(st): State<FirewallState>, p: Principal, Path(id): Path<String>) -> Result<Json<Platform>, ApiError> {
        p.require(Permission::ReadConfig)?;
        let id = id.to_ascii_lowercase();
        all(&st, p.tenant_id).await?.into_iter().find(|x| x.id == id).map(Json).ok_or_else(|| ApiError::not_found("platform"))
    }

    /// A custom platform.
    #[derive(Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct NewPlatform {
        /// The `platform_id` interactions will carry (lower case letters, digits, `-_.`).
        #[schema(pattern = "^[A-Za-z0-9._-]{1,64}$")]
        pub id: String,
        /// Display name.
        #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
        pub name: String,
        /// Host names.
        #[serde(default)]
        pub hosts: Vec<String>,
        /// Approved by the organisation (default false).
        #[serde(default)]
        pub vetted: bool,
    }

    /// A change to a platform.
    #[derive(Deserialize, ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PlatformPatch {
        /// New display name.
        #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
        pub name: Option<String>,
        /// New host list.
        pub hosts: Option<Vec<String>>,
        /// Approve or withdraw approval.
        pub vetted: Option<bool>,
    }

    fn check(name: Option<&str>, hosts: Option<&[String]>) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        if name.is_some_and(|n| n.trim().is_empty() || n.chars().count() > 100) {
            errors.push(FieldError::new("name", "a platform name has 1 to 100 characters"));
        }
        if let Some(hosts) = hosts {
            for (i, h) in hosts.iter().enumerate() {
                let ok = !h.is_empty() && h.len() <= 253 && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
                if !ok {
                    errors.push(FieldError::new(format!("hosts[{i}]"), format!("{h:?} is not a host name")));
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(ApiError::validation(errors)) }
    }

    fn upsert(c: &rusqlite::Connection, tenant: uuid::Uuid, p: &Platform, now: i64) -> Result<(), StoreError> {
        c.execute(
            "INSERT INTO platforms (tenant_id, id, name, hosts, vetted, builtin, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (tenant_id, id) DO UPDATE SET name = excluded.name, hosts = excluded.hosts, vetted = excluded.vetted, updated_at = excluded.updated_at",
            params![tenant.to_string(), p.id, p.name, serde_json::to_string(&p.hosts)?, p.vetted, p.builtin, now],
        )?;
        Ok(())
    }

    /// The tenant's row for `id`, else the built-in entry.
    fn current(c: &rusqlite::Connection, tenant: uuid::Uuid, id: &str) -> Result<Option<Platform>, StoreError> {
        Ok(tenant_rows(c, tenant)?
            .into_iter()
            .find(|x| x.id == id)
            .map(|p| Platform { builtin: builtin(&p.id).is_some(), ..p })
            .or_else(|| builtin(id)))
    }

    /// Add a custom platform (admins).
    #[utoipa::path(post, path = "/api/v1/platforms", tag = "platforms", security(("bearer" = [])), request_body = NewPlatform,
        responses((status = 201, body = Platform), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
    async fn platforms_create(
        State(st): State<FirewallState>,
        Admin(p): Admin,
        ApiJson(new): ApiJson<NewPlatform>,
    ) -> Result<(StatusCode, Json<Platform>), ApiError> {
        let id = normalize_platform(&new.id)
            .ok_or_else(|| ApiError::validation(vec![FieldError::new("id", format!("{:?} is not a platform id", new.id))]))?;
        check(Some(&new.name), Some(&new.hosts))?;
        let platform = Platform { id, name: new.name.trim().to_owned(), hosts: new.hosts, vetted: new.vetted, builtin: false };
        let (row, tenant, now) = (platform.clone(), p.tenant_id, st.clock.now().timestamp_micros());
        // Checked and written in one transaction, so two concurrent creations cannot both succeed.
        crate::policy::write_rules(&st, tenant, move |c| {
            if current(c, tenant, &row.id)?.is_some() {
                return Err(StoreError::Conflict(format!("platform {:?} (change it with PATCH /api/v1/platforms/{})", row.id, row.id)));
            }
            upsert(c, tenant, &row, now)
        })
        .await?;
        Ok((StatusCode::CREATED, Json(platform)))
    }

    /// Change a platform: vet or unvet it, rename it, change its hosts (admins).
    #[utoipa::path(patch, path = "/api/v1/platforms/{id}", tag = "platforms", security(("bearer" = [])), params(("id" = String, Path)), request_body = PlatformPatch,
        responses((status = 200, body = Platform), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
    async fn platforms_update(
        State(st): State<FirewallState>,
        Admin(p): Admin,
        Path(id): Path<String>,
        ApiJson(patch): ApiJson<PlatformPatch>,
    ) -> Result<Json<Platform>, ApiError> {
        check(patch.name.as_deref(), patch.hosts.as_deref())?;
        let (id, tenant, now) = (id.to_ascii_lowercase(), p.tenant_id, st.clock.now().timestamp_micros());
        // Read, changed and written in one transaction: concurrent changes do not undo each other.
        let platform = crate::policy::write_rules(&st, tenant, move |c| {
            let mut platform = current(c, tenant, &id)?.ok_or(StoreError::NotFound)?;
            if let Some(n) = patch.name {
                platform.name = n.trim().to_owned();
            }
            if let Some(h) = patch.hosts {
                platform.hosts = h;
            }
            if let Some(v) = patch.vetted {
                platform.vetted = v;
            }
            upsert(c, tenant, &platform, now)?;
            Ok(platform)
        })
        .await
        .map_err(ApiError::from_store("platform"))?;
        Ok(Json(platform))
    }
}
