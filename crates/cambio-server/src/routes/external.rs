//! Exchanging an external identity provider's JWT for a local access token: token exchange
//! with an external subject token, alias grant types (Tapkey's), and the RFC 7523 JWT bearer
//! grant. No refresh token is ever issued here.

use cambio_core::exchange::{RequestedType, TOKEN_TYPE_ACCESS, TOKEN_TYPE_ID, TOKEN_TYPE_JWT};
use cambio_core::federation::{
    self, ExternalExchange, KeySource, MAX_EXTERNAL_TOKEN_BYTES, ProviderTrust, Provisioning,
    provider_refused,
};
use cambio_core::form::FormParams;
use cambio_core::model::Client;
use cambio_core::{ErrorCode, OAuthError};
use cambio_jose::{Algorithm, VerifyingKey};
use cambio_proto::TokenResponse;
use std::sync::Arc;

use crate::admin::Approved;
use crate::audit::Event;
use crate::error::ApiResult;
use crate::random;
use crate::routes::token::respond;
use crate::state::{AppState, FederatedLink, RealmRuntime};

/// Which request shape brought us here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternalGrant {
    /// `urn:ietf:params:oauth:grant-type:token-exchange` with an external subject token.
    TokenExchange,
    /// A declared alias grant type (the short token type `jwt` is accepted).
    Alias,
    /// `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    JwtBearer,
}

impl ExternalGrant {
    /// The error code for a bad token: RFC 7523 uses `invalid_grant`, RFC 8693 `invalid_request`.
    fn bad_token(self, description: &'static str) -> OAuthError {
        match self {
            ExternalGrant::JwtBearer => OAuthError::invalid_grant(description),
            _ => OAuthError::invalid_request(description),
        }
    }
}

/// Whether a token exchange request is about an external token: it names a provider, says
/// the token is a JWT or ID token, or carries an issuer other than this realm's that a
/// provider claims.
pub fn is_external_exchange(rt: &RealmRuntime, form: &FormParams) -> bool {
    if form.contains("subject_issuer") || form.contains("provider") {
        return true;
    }
    let typed_external = matches!(
        form.get("subject_token_type"),
        Some(TOKEN_TYPE_JWT | TOKEN_TYPE_ID)
    );
    if !typed_external && rt.snapshot.providers().next().is_none() {
        // The common case, decided without decoding anything.
        return false;
    }
    let iss = form
        .get("subject_token")
        .and_then(|t| cambio_jose::peek_unverified(t, MAX_EXTERNAL_TOKEN_BYTES).ok())
        .and_then(|(_, claims)| {
            claims
                .get("iss")
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        });
    match iss {
        // Our own tokens follow the standard rules, whatever type they claim to be.
        Some(iss) if iss == rt.issuer() => false,
        Some(iss) => typed_external || rt.snapshot.providers().any(|p| p.issuer == iss),
        None => typed_external,
    }
}

#[allow(clippy::too_many_arguments)]
pub async fn exchange(
    app: &AppState,
    rt: &RealmRuntime,
    client: &Client,
    form: &FormParams,
    grant: ExternalGrant,
    grant_type: &str,
    proof: Option<&cambio_core::dpop::AcceptedProof>,
    now: u64,
    event: &mut Event,
) -> ApiResult<TokenResponse> {
    let token = match grant {
        ExternalGrant::JwtBearer => form.require("assertion")?,
        _ => form.require("subject_token")?,
    };
    if token.len() > MAX_EXTERNAL_TOKEN_BYTES {
        return Err(grant.bad_token("Invalid token").into());
    }
    if grant != ExternalGrant::JwtBearer {
        check_token_types(form, grant)?;
    }
    if grant == ExternalGrant::Alias && form.get("scope").is_none() {
        return Err(OAuthError::invalid_request("Parameter 'scope' required").into());
    }
    let ExternalSubject {
        provider,
        external,
        user,
        ..
    } = external_subject(app, rt, client, form, grant, grant_type, token, now, event).await?;
    event.user_id = Some(user.id.clone());
    let audiences: Vec<&str> = form.all("audience").collect();
    let issued = federation::decide(ExternalExchange {
        realm: &rt.snapshot,
        provider,
        requester: client,
        user: &user,
        external: &external,
        audiences: &audiences,
        scope: form.get("scope"),
        now,
        access_jti: random::uuid(),
        id_jti: random::uuid(),
    })?;
    let exchanged = match grant {
        ExternalGrant::JwtBearer => None,
        _ => Some(RequestedType::AccessToken),
    };
    respond(app, rt, client, issued, None, exchanged, proof, now).await
}

/// The local user an external token stands for, as its provider maps it.
pub(crate) struct ExternalSubject<'a> {
    pub provider: &'a ProviderTrust,
    pub external: federation::ExternalIdentity,
    pub user: Arc<cambio_core::model::User>,
    /// The token's verified claims (its `scope`, for callers that narrow to it).
    pub verified: cambio_jose::VerifiedJwt,
}

/// Resolves an external token: the provider the request means (which `client` must be
/// allowed to use), the token verified by its keys, a JWT bearer assertion taken once, the
/// mapped identity and the linked (or, when the provider says so, newly created) user.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn external_subject<'a>(
    app: &AppState,
    rt: &'a RealmRuntime,
    client: &Client,
    form: &FormParams,
    grant: ExternalGrant,
    grant_type: &str,
    token: &str,
    now: u64,
    event: &mut Event,
) -> ApiResult<ExternalSubject<'a>> {
    let provider = select_provider(rt, form, grant, grant_type, token)?;
    event.details.insert("provider", provider.alias.clone());
    if !provider.enabled || !federation::client_may_use(&rt.snapshot, provider, client) {
        return Err(provider_refused().into());
    }
    let verified = verify(app, provider, client, token, now).await;
    let verified = verified.map_err(|reason| {
        // The caller learns only that the token is invalid; the operator learns why from the
        // audit event: the verifier's refusal, and why the provider's keys could not be had (a
        // refused internal address names the flag).
        event.details.insert("token_error", reason);
        if let KeySource::Url(url) = &provider.keys
            && let Some(error) = app.external_keys.last_error(url)
        {
            event.details.insert("jwks_error", error.to_string());
        }
        grant.bad_token("Invalid token")
    })?;
    if grant == ExternalGrant::JwtBearer {
        take_assertion_once(app, provider, &verified, now).await?;
    }
    let external = federation::identity(provider, &verified).map_err(|e| match grant {
        ExternalGrant::JwtBearer => OAuthError::invalid_grant(e.description),
        _ => e,
    })?;
    event.details.insert(
        "external_subject",
        external.subject.chars().take(255).collect(),
    );
    let user = match app
        .user_by_federated_identity(rt.id(), &provider.alias, &external.subject)
        .await?
    {
        Some(user) => user,
        None if provider.provisioning == Provisioning::Create => {
            provision(app, rt, provider, &external, now).await?
        }
        None => {
            return Err(OAuthError::new(
                match grant {
                    ExternalGrant::JwtBearer => ErrorCode::InvalidGrant,
                    _ => ErrorCode::InvalidRequest,
                },
                format!("User is not linked to identity provider {}", provider.alias),
            )
            .into());
        }
    };
    Ok(ExternalSubject {
        provider,
        external,
        user,
        verified,
    })
}

/// The longest assertion `jti` kept to refuse its replay.
const MAX_ASSERTION_JTI_BYTES: usize = 256;

/// Takes a JWT bearer assertion that carries a `jti` once (RFC 7523 §3 item 7): a grant seen
/// again while it could still be accepted, even by another node, is refused. This is the
/// identity chaining draft's mitigation for a replayed authorization grant; an assertion
/// without `jti` cannot be told from another one and stays usable until it expires.
async fn take_assertion_once(
    app: &AppState,
    provider: &ProviderTrust,
    verified: &cambio_jose::VerifiedJwt,
    now: u64,
) -> ApiResult<()> {
    let Some(jti) = verified.jwt_id() else {
        return Ok(());
    };
    if jti.len() > MAX_ASSERTION_JTI_BYTES {
        return Err(OAuthError::invalid_grant("Invalid token").into());
    }
    let until = verified
        .expires_at()
        .unwrap_or(now)
        .saturating_add(federation::EXTERNAL_LEEWAY);
    let key = format!("{}\u{1f}{jti}", provider.issuer);
    if app
        .store
        .consume_once("jwt-bearer-assertion", &key, until)
        .await?
    {
        Ok(())
    } else {
        Err(OAuthError::invalid_grant("The assertion has already been used").into())
    }
}

/// Token types: the URNs everywhere, and the short forms under an alias grant. Refresh
/// tokens are never issued for external tokens.
pub(crate) fn check_token_types(form: &FormParams, grant: ExternalGrant) -> Result<(), OAuthError> {
    let short = grant == ExternalGrant::Alias;
    match form.get("subject_token_type") {
        Some(TOKEN_TYPE_JWT | TOKEN_TYPE_ID | TOKEN_TYPE_ACCESS) => {}
        Some("jwt" | "id_token" | "access_token") if short => {}
        None if short => {}
        None => {
            return Err(OAuthError::invalid_request(
                "Parameter 'subject_token_type' required",
            ));
        }
        Some(_) => {
            return Err(OAuthError::invalid_request(
                "subject_token_type unsupported",
            ));
        }
    }
    match form.get("requested_token_type") {
        None | Some(TOKEN_TYPE_ACCESS) => Ok(()),
        Some("access_token") if short => Ok(()),
        Some(cambio_core::exchange::TOKEN_TYPE_REFRESH) | Some("refresh_token") => Err(
            OAuthError::invalid_request("Refresh tokens are not issued for external tokens"),
        ),
        Some(_) => Err(OAuthError::invalid_request(
            "requested_token_type unsupported",
        )),
    }
}

/// The provider a request means: `provider` or `subject_issuer` (they must agree), the
/// alias grant's provider, or the single provider whose issuer equals the token's `iss`.
pub(crate) fn select_provider<'a>(
    rt: &'a RealmRuntime,
    form: &FormParams,
    grant: ExternalGrant,
    grant_type: &str,
    token: &str,
) -> Result<&'a ProviderTrust, OAuthError> {
    let named = match (form.get("provider"), form.get("subject_issuer")) {
        (Some(a), Some(b)) if a != b => {
            return Err(OAuthError::invalid_request(
                "'provider' and 'subject_issuer' disagree",
            ));
        }
        (Some(a), _) | (None, Some(a)) => Some(a),
        (None, None) => None,
    };
    if let Some(alias) = named {
        return rt.snapshot.provider(alias).ok_or_else(provider_refused);
    }
    if grant == ExternalGrant::Alias
        && let Some(provider) = rt.snapshot.provider_for_grant(grant_type)
    {
        return Ok(provider);
    }
    let (_, claims) = cambio_jose::peek_unverified(token, MAX_EXTERNAL_TOKEN_BYTES)
        .map_err(|_| grant.bad_token("Invalid token"))?;
    let iss = claims.get("iss").and_then(|v| v.as_str()).unwrap_or("");
    let mut matching = rt.snapshot.providers().filter(|p| p.issuer == iss);
    match (matching.next(), matching.next()) {
        (Some(one), None) => Ok(one),
        // No provider, or several claiming the issuer: the request must name one.
        _ => Err(grant.bad_token("Invalid token")),
    }
}

/// Verifies the external token with its provider's keys only, with the provider's
/// algorithms and audiences. Nothing in the token's header can add a key or a URL.
pub(crate) async fn verify(
    app: &AppState,
    provider: &ProviderTrust,
    client: &Client,
    token: &str,
    now: u64,
) -> Result<cambio_jose::VerifiedJwt, String> {
    let (header, _) = cambio_jose::peek_unverified(token, MAX_EXTERNAL_TOKEN_BYTES)
        .map_err(|e| format!("not a JWT: {e}"))?;
    let alg: Algorithm = header
        .algorithm()
        .ok_or("unsupported or missing alg header")?;
    if !provider.allowed_algorithms.contains(&alg) {
        return Err(format!(
            "algorithm {alg:?} is not allowed for this provider"
        ));
    }
    let keys: Arc<Vec<VerifyingKey>> = match &provider.keys {
        KeySource::Inline(keys) => Arc::new(keys.clone()),
        KeySource::Url(url) => {
            app.external_keys
                .keys_for(url, header.kid.as_deref(), Some(alg))
                .await
        }
    };
    let audiences = provider.accepted_audiences(client);
    let validation = provider.validation(&audiences, now);
    cambio_jose::verify(token, keys.as_slice(), &validation).map_err(|e| {
        format!(
            "{e} (accepted audiences: {}; issuer: {})",
            audiences.join(" "),
            provider.issuer
        )
    })
}

/// Creates and links a local user on first use.
async fn provision(
    app: &AppState,
    rt: &RealmRuntime,
    provider: &ProviderTrust,
    external: &federation::ExternalIdentity,
    now: u64,
) -> ApiResult<Arc<cambio_core::model::User>> {
    let user = federation::provisioned_user(provider, external, random::uuid(), now);
    app.insert_user(rt.id(), &Approved::by_system(user.clone()))
        .await
        .map_err(|e| match e {
            cambio_store::StoreError::Conflict(_) => {
                OAuthError::invalid_request("Cannot create a local user: the username is taken")
                    .into()
            }
            other => crate::error::ApiError::from(other),
        })?;
    let link = FederatedLink {
        user_id: user.id.clone(),
        identity_provider: provider.alias.clone(),
        external_subject: external.subject.clone(),
    };
    if let Err(error) = app.insert_federated_link(rt.id(), &link).await {
        // Another request linked the same identity first: use that user, drop ours.
        app.delete_user(rt.id(), &user.id).await?;
        if let Some(existing) = app
            .user_by_federated_identity(rt.id(), &provider.alias, &external.subject)
            .await?
        {
            return Ok(existing);
        }
        return Err(error.into());
    }
    Ok(Arc::new(user))
}
