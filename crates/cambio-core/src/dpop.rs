//! DPoP (RFC 9449): whether a verified proof fits the request it came with, and what binding a
//! token carries. The signature and the proof's form were checked by `cambio_jose`; this module
//! holds the protocol rules, with the request and the clock passed in.

use cambio_jose::DpopProof;
use serde_json::Value;

use crate::error::{OAuthError, OAuthResult};
use crate::model::Client;
use crate::realm::RealmSnapshot;

/// How far back a proof's `iat` may lie. RFC 9449 §11.1 asks for a short window; a proof is made
/// for one request, right before it is sent.
pub const PROOF_MAX_AGE: u64 = 60;
/// How far ahead of our clock a proof's `iat` may lie (the client's clock may run fast).
pub const PROOF_CLOCK_SKEW: u64 = 5;
/// The longest `jti` accepted (RFC 9449 §4.2 suggests 96 bits of randomness; UUIDs fit).
pub const MAX_JTI_BYTES: usize = 128;
/// The realm attribute that makes every proof carry a server nonce (RFC 9449 §8).
pub const REALM_REQUIRES_NONCE: &str = "cambio.dpopNonceRequired";
/// The client attribute that makes DPoP required (Keycloak's name).
pub const CLIENT_REQUIRES_DPOP: &str = "dpop.bound.access.tokens";
/// The realm attribute that allows an exchange to turn a DPoP-bound token into a bearer token
/// for resource servers that cannot verify proofs (see [`exchange_binding`]).
pub const REALM_ALLOWS_EXCHANGE_UNBINDING: &str = "cambio.dpopExchangeUnbind";
/// The client attribute marking a client, as a resource server, that cannot verify DPoP proofs
/// and so accepts bearer tokens only (see [`exchange_binding`]).
pub const CLIENT_ACCEPTS_BEARER_ONLY: &str = "cambio.dpopBearerOnly";

/// What the request a proof came with looks like.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    /// The HTTP method, upper case.
    pub method: &'a str,
    /// The request's URL without query and fragment, as the client addressed it.
    pub url: &'a str,
    pub now: u64,
    /// The `ath` the proof must carry: the hash of the access token presented with it.
    pub access_token_hash: Option<&'a str>,
}

/// A proof that fits its request: the key it binds to, and its `jti` with how long it must be
/// remembered to refuse a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedProof {
    pub jkt: String,
    pub jti: String,
    /// The proof's `ath`, if it has one (checked against `access_token_hash` when one was
    /// expected).
    pub ath: Option<String>,
    /// The proof's `nonce`, if it has one (the server checks it when the realm asks for one).
    pub nonce: Option<String>,
    /// Until when the `jti` must stay remembered: past it, the `iat` check refuses the proof.
    pub remember_until: u64,
}

/// Applies RFC 9449 §4.3's checks to a proof whose signature verified.
///
/// # Errors
/// `invalid_dpop_proof` naming the first check that failed.
pub fn check(proof: &DpopProof, context: &ProofContext<'_>) -> OAuthResult<AcceptedProof> {
    let text = |name: &str| proof.claims.get(name).and_then(Value::as_str);
    let refuse = OAuthError::invalid_dpop_proof;
    let jti = text("jti")
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_BYTES)
        .ok_or_else(|| refuse("DPoP proof has no valid jti"))?;
    if text("htm") != Some(context.method) {
        return Err(refuse("DPoP proof is for another HTTP method"));
    }
    let htu = text("htu").ok_or_else(|| refuse("DPoP proof has no htu"))?;
    if !same_target(htu, context.url) {
        return Err(refuse("DPoP proof is for another URL"));
    }
    let iat = proof
        .claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or_else(|| refuse("DPoP proof has no valid iat"))?;
    if iat > context.now.saturating_add(PROOF_CLOCK_SKEW) {
        return Err(refuse("DPoP proof is issued in the future"));
    }
    if iat.saturating_add(PROOF_MAX_AGE) < context.now {
        return Err(refuse("DPoP proof is too old"));
    }
    match (context.access_token_hash, text("ath")) {
        (Some(expected), Some(ath)) if constant_time_eq(expected, ath) => {}
        (Some(_), Some(_)) => return Err(refuse("DPoP proof is for another access token")),
        (Some(_), None) => return Err(refuse("DPoP proof has no ath for the access token")),
        (None, _) => {}
    }
    Ok(AcceptedProof {
        jkt: proof.jkt.clone(),
        jti: jti.to_owned(),
        ath: text("ath").map(str::to_owned),
        nonce: text("nonce").map(str::to_owned),
        remember_until: iat.saturating_add(PROOF_MAX_AGE + PROOF_CLOCK_SKEW),
    })
}

/// The key a token is bound to (`cnf.jkt`), if any. A `cnf` without a `jkt` (another kind of
/// binding, such as mutual TLS's `x5t#S256`) cannot be proven here, so it binds to a key no
/// proof has: the empty string.
pub fn bound_key(cnf: Option<&Value>) -> Option<&str> {
    let cnf = cnf?;
    Some(cnf.get("jkt").and_then(Value::as_str).unwrap_or(""))
}

/// The `cnf` claim binding a token to `jkt` (RFC 9449 §6.1).
pub fn confirmation(jkt: &str) -> Value {
    serde_json::json!({ "jkt": jkt })
}

/// Whether a proof for `proven_key` may present a token bound to `bound` (or unbound).
///
/// # Errors
/// `invalid_dpop_proof` when the token is bound and no proof, or a proof by another key, came.
pub fn check_binding(bound: Option<&str>, proven_key: Option<&str>) -> OAuthResult<()> {
    match (bound, proven_key) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(OAuthError::invalid_dpop_proof(
            "The token is DPoP-bound: a DPoP proof by its key is required",
        )),
        (Some(bound), Some(proven)) if !bound.is_empty() && constant_time_eq(bound, proven) => {
            Ok(())
        }
        (Some(_), Some(_)) => Err(OAuthError::invalid_dpop_proof(
            "The DPoP proof is not by the key the token is bound to",
        )),
    }
}

/// Whether a token presented inside a request (a subject or actor token of an exchange) may
/// be used with the request's proof: an unbound token always; a bound one only with a proof by
/// its key that also names it in `ath`, so that a proof made for another request cannot carry a
/// stolen bound token into an exchange.
///
/// # Errors
/// `invalid_dpop_proof` saying which part is missing.
pub fn check_presented_token(
    bound: Option<&str>,
    proof: Option<&AcceptedProof>,
    token_hash: &str,
) -> OAuthResult<()> {
    check_binding(bound, proof.map(|p| p.jkt.as_str()))?;
    if bound.is_some() {
        let names_token = proof
            .and_then(|p| p.ath.as_deref())
            .is_some_and(|ath| constant_time_eq(ath, token_hash));
        if !names_token {
            return Err(OAuthError::invalid_dpop_proof(
                "The DPoP proof must name the bound token in ath",
            ));
        }
    }
    Ok(())
}

/// The thumbprint an authorization request binds its code to (`dpop_jkt`, RFC 9449 §10): the
/// base64url form (no padding) of a SHA-256 digest, so exactly 43 characters that decode to 32
/// bytes. `None` for anything else, which the authorization endpoint refuses.
pub fn parse_code_thumbprint(value: &str) -> Option<&str> {
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .ok()?;
    // The decoder accepts a final character with stray low bits set; the thumbprint a client
    // computed always re-encodes to itself, so anything else is not one.
    let canonical = decoded.len() == 32
        && base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&decoded) == value;
    canonical.then_some(value)
}

/// Whether a token request may redeem a code bound to `code_jkt` (RFC 9449 §10): only with a
/// proof by that key, so that a code captured on its way back to the client is worthless to
/// anyone without the key (§11.9).
///
/// # Errors
/// `invalid_grant` when the code is bound and the request has no proof, or one by another key.
pub fn check_code_binding(
    code_jkt: Option<&str>,
    proof: Option<&AcceptedProof>,
) -> OAuthResult<()> {
    let Some(code_jkt) = code_jkt else {
        return Ok(());
    };
    match proof {
        None => Err(OAuthError::invalid_grant(
            "The code is bound to a DPoP key (dpop_jkt): a DPoP proof by that key is required",
        )),
        Some(proof) if constant_time_eq(code_jkt, &proof.jkt) => Ok(()),
        Some(_) => Err(OAuthError::invalid_grant(
            "The DPoP proof is not by the key the code is bound to (dpop_jkt)",
        )),
    }
}

/// What an exchanged access token is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExchangeBinding {
    /// The key of the request's proof, when the request sent one (and it must have, when a
    /// presented token was bound): the usual outcome.
    ProofKey,
    /// No key: a bearer token, although a bound token was presented. Only where both the realm
    /// and every audience asked for it.
    Bearer,
}

/// What decides an exchange's binding.
#[derive(Debug, Clone, Copy)]
pub struct BindingInput<'a> {
    pub realm: &'a RealmSnapshot,
    pub requester: &'a Client,
    /// Whether the subject or the actor token was DPoP-bound (and proven by the request).
    pub presented_bound: bool,
    /// The audiences of the token to be issued.
    pub audiences: &'a [String],
    /// Whether a refresh token is issued with it.
    pub refresh_token: bool,
}

/// Whether an exchange binds its access token to the request's proof key or issues a bearer
/// token. The exchange never turns a bound token into a bearer token unless two parties said
/// so explicitly: the realm ([`REALM_ALLOWS_EXCHANGE_UNBINDING`]) and every audience of the
/// new token, each a resource server that cannot verify proofs
/// ([`CLIENT_ACCEPTS_BEARER_ONLY`]). Even then it stays bound when the requester itself
/// requires DPoP ([`CLIENT_REQUIRES_DPOP`]) or a refresh token comes with it (a refresh token
/// would keep issuing unbound tokens long after this decision). The bound token itself was
/// proven by its key as usual (the proof names it in `ath`) before this question is asked.
pub fn exchange_binding(input: BindingInput<'_>) -> ExchangeBinding {
    let realm_allows = || {
        input
            .realm
            .realm
            .attributes
            .get(REALM_ALLOWS_EXCHANGE_UNBINDING)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    let every_audience_bearer_only = || {
        !input.audiences.is_empty()
            && input.audiences.iter().all(|audience| {
                input
                    .realm
                    .client_by_client_id(audience)
                    .is_some_and(|c| c.attribute_is_true(CLIENT_ACCEPTS_BEARER_ONLY))
            })
    };
    // Cheapest first: the common exchange (nothing bound) asks nothing more.
    let unbind = input.presented_bound
        && !input.refresh_token
        && realm_allows()
        && !input.requester.attribute_is_true(CLIENT_REQUIRES_DPOP)
        && every_audience_bearer_only();
    if unbind {
        ExchangeBinding::Bearer
    } else {
        ExchangeBinding::ProofKey
    }
}

/// Compares `htu` with the request URL as RFC 9449 §4.3 step 9 asks: without query and
/// fragment, after the normalisation of RFC 3986 §6.2.2 and §6.2.3 (case of scheme and host,
/// default port, percent-encoding), which the `url` crate's parser applies.
fn same_target(htu: &str, request: &str) -> bool {
    let strip = |text: &str| {
        url::Url::parse(text).ok().map(|mut u| {
            u.set_query(None);
            u.set_fragment(None);
            u
        })
    };
    match (strip(htu), strip(request)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_000_000;
    const URL: &str = "https://as.example/realms/demo/protocol/openid-connect/token";

    fn proof(claims: Value) -> DpopProof {
        DpopProof {
            jkt: "key-1".into(),
            claims: claims.as_object().cloned().unwrap_or_default(),
        }
    }

    fn context(ath: Option<&str>) -> ProofContext<'_> {
        ProofContext {
            method: "POST",
            url: URL,
            now: NOW,
            access_token_hash: ath,
        }
    }

    fn good() -> Value {
        json!({"jti": "j", "htm": "POST", "htu": URL, "iat": NOW})
    }

    fn with(name: &str, value: Value) -> Value {
        let mut claims = good();
        claims[name] = value;
        claims
    }

    #[test]
    fn a_fitting_proof_is_accepted() {
        let accepted = check(&proof(good()), &context(None)).unwrap();
        assert_eq!(accepted.jkt, "key-1");
        assert_eq!(
            accepted.remember_until,
            NOW + PROOF_MAX_AGE + PROOF_CLOCK_SKEW
        );
        // Case and default port are normalised; query and fragment ignored.
        let htu = "HTTPS://AS.example:443/realms/demo/protocol/openid-connect/token?x=1#f";
        assert!(check(&proof(with("htu", json!(htu))), &context(None)).is_ok());
        let ath = with("ath", json!("hash"));
        assert!(check(&proof(ath), &context(Some("hash"))).is_ok());
    }

    #[test]
    fn each_rule_refuses() {
        let cases = [
            (with("jti", json!("")), None, "DPoP proof has no valid jti"),
            (
                with("jti", json!("x".repeat(129))),
                None,
                "DPoP proof has no valid jti",
            ),
            (
                with("htm", json!("GET")),
                None,
                "DPoP proof is for another HTTP method",
            ),
            (
                with("htu", json!("https://as.example/other")),
                None,
                "DPoP proof is for another URL",
            ),
            (
                with(
                    "htu",
                    json!("https://as.example:8443/realms/demo/protocol/openid-connect/token"),
                ),
                None,
                "DPoP proof is for another URL",
            ),
            (with("htu", json!(7)), None, "DPoP proof has no htu"),
            (
                with("iat", json!("1000000")),
                None,
                "DPoP proof has no valid iat",
            ),
            (
                with("iat", json!(NOW + 6)),
                None,
                "DPoP proof is issued in the future",
            ),
            (with("iat", json!(NOW - 61)), None, "DPoP proof is too old"),
            (
                good(),
                Some("hash"),
                "DPoP proof has no ath for the access token",
            ),
            (
                with("ath", json!("other")),
                Some("hash"),
                "DPoP proof is for another access token",
            ),
        ];
        for (claims, ath, description) in cases {
            let error = check(&proof(claims.clone()), &context(ath)).unwrap_err();
            assert_eq!(
                (error.code.as_str(), error.description.as_ref()),
                ("invalid_dpop_proof", description),
                "{claims}"
            );
        }
    }

    #[test]
    fn bindings() {
        assert!(check_binding(None, None).is_ok());
        assert!(check_binding(None, Some("k")).is_ok());
        assert!(check_binding(Some("k"), Some("k")).is_ok());
        assert!(check_binding(Some("k"), None).is_err());
        assert!(check_binding(Some("k"), Some("other")).is_err());
        // A binding this server cannot prove (no jkt) is never satisfied.
        assert_eq!(bound_key(Some(&json!({"x5t#S256": "t"}))), Some(""));
        assert!(check_binding(Some(""), Some("")).is_err());
        assert_eq!(bound_key(Some(&json!({"jkt": "k"}))), Some("k"));
        assert_eq!(bound_key(None), None);
    }

    #[test]
    fn a_code_thumbprint_is_a_sha256_in_base64url_and_binds_the_code() {
        let good = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
        assert_eq!(parse_code_thumbprint(good), Some(good));
        for bad in [
            "",
            "abc",
            // Padded, standard alphabet, too long, too short, a stray bit in the last character.
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs=",
            "NzbLsXh8uDCcd+6MNwXF4W/7noWXFZAfHkxZsRGC9Xs",
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9XsA",
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X",
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xt",
        ] {
            assert_eq!(parse_code_thumbprint(bad), None, "{bad}");
        }
        let proof = AcceptedProof {
            jkt: good.into(),
            jti: "j".into(),
            ath: None,
            nonce: None,
            remember_until: 0,
        };
        assert!(check_code_binding(None, None).is_ok());
        assert!(check_code_binding(None, Some(&proof)).is_ok());
        assert!(check_code_binding(Some(good), Some(&proof)).is_ok());
        let refused = |jkt, proof| {
            let e = check_code_binding(Some(jkt), proof).unwrap_err();
            (e.code.as_str(), e.description.into_owned())
        };
        assert_eq!(
            refused(good, None),
            (
                "invalid_grant",
                "The code is bound to a DPoP key (dpop_jkt): a DPoP proof by that key is required"
                    .to_owned()
            )
        );
        assert_eq!(
            refused("another-key", Some(&proof)),
            (
                "invalid_grant",
                "The DPoP proof is not by the key the code is bound to (dpop_jkt)".to_owned()
            )
        );
    }

    #[test]
    fn unbinding_needs_the_realm_and_every_audience_to_ask_for_it() {
        use crate::model::Realm;
        let client = |id: &str, bearer_only: bool, requires_dpop: bool| {
            let mut c = Client {
                id: format!("{id}-uuid"),
                client_id: id.into(),
                ..Default::default()
            };
            if bearer_only {
                c.attributes
                    .insert(CLIENT_ACCEPTS_BEARER_ONLY.into(), "true".into());
            }
            if requires_dpop {
                c.attributes
                    .insert(CLIENT_REQUIRES_DPOP.into(), "true".into());
            }
            c
        };
        let realm = |allows: bool| {
            let mut realm = Realm::default();
            if allows {
                realm
                    .attributes
                    .insert(REALM_ALLOWS_EXCHANGE_UNBINDING.into(), "true".into());
            }
            RealmSnapshot::new(
                realm,
                "https://as.example/realms/r".into(),
                vec![
                    client("legacy-api", true, false),
                    client("modern-api", false, false),
                    client("requester", false, false),
                    client("strict-requester", false, true),
                ],
                vec![],
                vec![],
            )
        };
        let (allowing, refusing) = (realm(true), realm(false));
        let requester = client("requester", false, false);
        let strict = client("strict-requester", false, true);
        let legacy = ["legacy-api".to_owned()];
        let modern = ["modern-api".to_owned()];
        let both = ["legacy-api".to_owned(), "modern-api".to_owned()];
        let decide = |realm, requester, bound, audiences: &[String], refresh| {
            exchange_binding(BindingInput {
                realm,
                requester,
                presented_bound: bound,
                audiences,
                refresh_token: refresh,
            })
        };
        use ExchangeBinding::{Bearer, ProofKey};
        // Both the realm and the audience: a bearer token.
        assert_eq!(decide(&allowing, &requester, true, &legacy, false), Bearer);
        // By default (neither), the realm alone, the audience alone: bound.
        assert_eq!(
            decide(&refusing, &requester, true, &modern, false),
            ProofKey
        );
        assert_eq!(
            decide(&allowing, &requester, true, &modern, false),
            ProofKey
        );
        assert_eq!(
            decide(&refusing, &requester, true, &legacy, false),
            ProofKey
        );
        // Every audience must ask, a refresh token keeps the binding, so does a requester that
        // requires DPoP, and no audience at all is not "every audience".
        assert_eq!(decide(&allowing, &requester, true, &both, false), ProofKey);
        assert_eq!(decide(&allowing, &requester, true, &legacy, true), ProofKey);
        assert_eq!(decide(&allowing, &strict, true, &legacy, false), ProofKey);
        assert_eq!(decide(&allowing, &requester, true, &[], false), ProofKey);
        // An unbound subject with the requester's own proof is bound as the requester asked.
        assert_eq!(
            decide(&allowing, &requester, false, &legacy, false),
            ProofKey
        );
    }

    #[test]
    fn a_bound_token_inside_a_request_needs_its_key_and_its_hash() {
        let proof = |ath: Option<&str>| AcceptedProof {
            jkt: "k".into(),
            jti: "j".into(),
            ath: ath.map(str::to_owned),
            nonce: None,
            remember_until: 0,
        };
        assert!(check_presented_token(None, None, "h").is_ok());
        assert!(check_presented_token(Some("k"), Some(&proof(Some("h"))), "h").is_ok());
        let refused = |bound, p: Option<&AcceptedProof>| {
            check_presented_token(bound, p, "h")
                .unwrap_err()
                .description
        };
        assert_eq!(
            refused(Some("k"), Some(&proof(None))),
            "The DPoP proof must name the bound token in ath"
        );
        assert_eq!(
            refused(Some("k"), Some(&proof(Some("other")))),
            "The DPoP proof must name the bound token in ath"
        );
        assert_eq!(
            refused(Some("other-key"), Some(&proof(Some("h")))),
            "The DPoP proof is not by the key the token is bound to"
        );
        assert_eq!(
            refused(Some("k"), None),
            "The token is DPoP-bound: a DPoP proof by its key is required"
        );
    }
}
