//! Sessions and their cascades: refresh, a used refresh token presented again, logout and
//! refresh-token revocation, each followed by what introspection says of the tokens that came
//! from the session, exchanged ones included.

use serde_json::json;

use super::*;
use crate::{EXCHANGE, Reply};

const SUBJECT: (&str, &str) = ("subject-client", "subject-secret");
const REQUESTER: (&str, &str) = ("requester-client", "requester-secret");
const INTROSPECTOR: (&str, &str) = ("orders-api", "orders-secret");

/// What one server answered along the way.
struct Observed {
    refreshed: Reply,
    refreshed_again: Reply,
    logout: Reply,
    after_logout: [Reply; 3],
    revoke: Reply,
    after_revoke: [Reply; 3],
}

pub(super) async fn cascades(kc: &Peer, cb: &Peer, report: &mut Report) {
    let (a, b) = (observe(kc).await, observe(cb).await);
    compare_token_answers(report, "refresh after exchange", &a.refreshed, &b.refreshed);
    compare_token_answers(
        report,
        "refresh: used refresh token again",
        &a.refreshed_again,
        &b.refreshed_again,
    );
    let status = |r: &Reply| json!(r.status.as_u16());
    report.compare("logout", "status", &status(&a.logout), &status(&b.logout));
    report.compare(
        "refresh token revocation",
        "status",
        &status(&a.revoke),
        &status(&b.revoke),
    );
    let names = ["login token active", "exchanged token active", "refresh"];
    for (scenario, kc_after, cb_after) in [
        ("after logout", &a.after_logout, &b.after_logout),
        (
            "after refresh token revocation",
            &a.after_revoke,
            &b.after_revoke,
        ),
    ] {
        for (i, name) in names.iter().enumerate() {
            if i < 2 {
                report.compare(
                    scenario,
                    name,
                    &kc_after[i].body["active"],
                    &cb_after[i].body["active"],
                );
            } else {
                compare_token_answers(
                    report,
                    &format!("{scenario}: refresh"),
                    &kc_after[i],
                    &cb_after[i],
                );
            }
        }
    }
}

/// alice's session at `subject-client`, a token exchanged from it for `orders-api`.
async fn session(peer: &Peer) -> (String, String, String) {
    let login = peer.alice((SUBJECT.0, Some(SUBJECT.1))).await;
    let access = login.access_token();
    let refresh = login.body["refresh_token"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let exchanged = peer
        .token(
            &[
                ("grant_type", EXCHANGE),
                ("subject_token", &access),
                ("subject_token_type", ACCESS_TYPE),
                ("audience", "orders-api"),
            ],
            Some(REQUESTER),
        )
        .await
        .access_token();
    (access, refresh, exchanged)
}

async fn introspect(peer: &Peer, token: &str) -> Reply {
    peer.form(
        &peer.oidc("token/introspect"),
        &[("token", token)],
        Some(INTROSPECTOR),
    )
    .await
}

async fn refresh(peer: &Peer, token: &str) -> Reply {
    peer.token(
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
        Some(SUBJECT),
    )
    .await
}

async fn after(peer: &Peer, access: &str, exchanged: &str, refresh_token: &str) -> [Reply; 3] {
    [
        introspect(peer, access).await,
        introspect(peer, exchanged).await,
        refresh(peer, refresh_token).await,
    ]
}

async fn observe(peer: &Peer) -> Observed {
    let (access, refresh_token, exchanged) = session(peer).await;
    let refreshed = refresh(peer, &refresh_token).await;
    let refreshed_again = refresh(peer, &refresh_token).await;
    let latest = refreshed.body["refresh_token"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    let logout = peer
        .form(
            &peer.oidc("logout"),
            &[("refresh_token", &latest)],
            Some(SUBJECT),
        )
        .await;
    let after_logout = after(peer, &access, &exchanged, &latest).await;

    let (access, refresh_token, exchanged) = session(peer).await;
    let revoke = peer
        .form(
            &peer.oidc("revoke"),
            &[
                ("token", &refresh_token),
                ("token_type_hint", "refresh_token"),
            ],
            Some(SUBJECT),
        )
        .await;
    let after_revoke = after(peer, &access, &exchanged, &refresh_token).await;
    Observed {
        refreshed,
        refreshed_again,
        logout,
        after_logout,
        revoke,
        after_revoke,
    }
}
