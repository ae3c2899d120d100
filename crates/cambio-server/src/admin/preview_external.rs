//! The exchange preview for an external provider's token: the token endpoint's external path
//! (`routes::external::exchange`) step by step, without its two side effects. A user the
//! provider would create on first use is described, not stored; nothing is signed.

use cambio_core::OAuthError;
use cambio_core::exchange::GRANT_TYPE;
use cambio_core::federation::{
    self, ExternalExchange, MAX_EXTERNAL_TOKEN_BYTES, Provisioning, provider_refused,
};
use cambio_core::form::FormParams;
use cambio_core::model::Client;
use serde_json::{Value, json};

use super::preview::{Refusal, Stage, at};
use crate::error::ApiResult;
use crate::random;
use crate::routes::external::{self, ExternalGrant};
use crate::state::{AppState, RealmRuntime};

/// What the token endpoint would answer `requester` for this external token exchange.
pub async fn run(
    app: &AppState,
    rt: &RealmRuntime,
    requester: &Client,
    form: &FormParams,
) -> ApiResult<Result<Value, Refusal>> {
    let grant = ExternalGrant::TokenExchange;
    let parameters = at(Stage::Parameters);
    let token = match form.require("subject_token") {
        Ok(token) if token.len() <= MAX_EXTERNAL_TOKEN_BYTES => token,
        Ok(_) => {
            return Ok(Err(parameters(OAuthError::invalid_request(
                "Invalid token",
            ))));
        }
        Err(error) => return Ok(Err(parameters(error))),
    };
    if let Err(error) = external::check_token_types(form, grant) {
        return Ok(Err(parameters(error)));
    }
    let provider = match external::select_provider(rt, form, grant, GRANT_TYPE, token) {
        Ok(provider) => provider,
        Err(error) => return Ok(Err(at(Stage::Subject)(error))),
    };
    if !provider.enabled || !federation::client_may_use(&rt.snapshot, provider, requester) {
        return Ok(Err(at(Stage::Decision)(provider_refused())));
    }
    let now = random::now();
    let verified = match external::verify(app, provider, requester, token, now).await {
        Ok(verified) => verified,
        Err(reason) => {
            return Ok(Err(Refusal {
                stage: Stage::Subject,
                error: OAuthError::invalid_request("Invalid token"),
                detail: Some(reason),
            }));
        }
    };
    let identity = match federation::identity(provider, &verified) {
        Ok(identity) => identity,
        Err(error) => return Ok(Err(at(Stage::Subject)(error))),
    };
    let linked = app
        .user_by_federated_identity(rt.id(), &provider.alias, &identity.subject)
        .await?;
    let (user, created) = match linked {
        Some(user) => ((*user).clone(), false),
        // The user the first real exchange would create, with a stand-in id.
        None if provider.provisioning == Provisioning::Create => (
            federation::provisioned_user(provider, &identity, "(new user)".into(), now),
            true,
        ),
        None => {
            return Ok(Err(at(Stage::Subject)(OAuthError::invalid_request(
                format!("User is not linked to identity provider {}", provider.alias),
            ))));
        }
    };
    let audiences: Vec<&str> = form.all("audience").collect();
    let issued = federation::decide(ExternalExchange {
        realm: &rt.snapshot,
        provider,
        requester,
        user: &user,
        external: &identity,
        audiences: &audiences,
        scope: form.get("scope"),
        now,
        access_jti: random::uuid(),
        id_jti: random::uuid(),
    });
    let issued = match issued {
        Ok(issued) => issued,
        Err(error) => return Ok(Err(at(Stage::Decision)(error))),
    };
    Ok(Ok(json!({
        "outcome": "issued",
        "permissionModel": {"kind": "provider", "provider": provider.alias},
        "issued_token_type": cambio_core::exchange::TOKEN_TYPE_ACCESS,
        "scope": issued.scope,
        "expires_in": issued.expires_in,
        "refreshToken": Value::Null,
        "accessToken": issued.access,
        "idToken": issued.id_token,
        "subject": verified.claims(),
        "externalSubject": identity.subject,
        "userCreated": created,
        "username": user.username,
    })))
}
