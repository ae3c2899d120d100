//! Registered claim validation (RFC 7519 section 4.1).
//!
//! Every registered claim is type-checked when present, whether or not a
//! rule asks about it. A verifier that treats a wrongly typed `exp` as
//! absent turns `"exp": "9999999999"` into a token that never expires
//! (CVE-2026-25537); here it is [`JwtError::InvalidClaim`].

use serde_json::{Map, Number, Value};

use crate::error::JwtError;
use crate::header::Header;
use crate::verify::{AudienceRule, MAX_LEEWAY, Validation, VerifiedJwt, verified};

/// Validates signature-checked claims and builds the verified token.
pub(crate) fn validate(
    header: Header,
    claims: Map<String, Value>,
    v: &Validation<'_>,
    expiry: Expiry,
) -> Result<VerifiedJwt, JwtError> {
    // Rounding towards the stricter side: an expiry with a fraction ends at
    // the whole second before it, a start time begins at the one after.
    let exp = numeric_date(&claims, "exp", Rounding::Down)?;
    let nbf = numeric_date(&claims, "nbf", Rounding::Up)?;
    let iat = numeric_date(&claims, "iat", Rounding::Up)?;
    match expiry {
        Expiry::Enforce => check_times([exp, nbf, iat], v)?,
        Expiry::Ignore => {
            if exp.is_none() && v.require_exp {
                return Err(JwtError::MissingClaim("exp"));
            }
            let without_exp = Validation {
                require_exp: false,
                ..*v
            };
            check_times([None, nbf, iat], &without_exp)?;
        }
    }

    let iss = optional_str(&claims, "iss")?;
    optional_str(&claims, "sub")?;
    optional_str(&claims, "jti")?;
    if let Some(expected) = v.issuer {
        // RFC 7519 section 4.1.1: a case-sensitive string comparison.
        match iss {
            None => return Err(JwtError::MissingClaim("iss")),
            Some(iss) if iss != expected => return Err(JwtError::WrongIssuer),
            Some(_) => {}
        }
    }

    let audience = audience(&claims)?;
    check_audience(audience.as_deref(), v.audience)?;

    Ok(verified(
        header,
        claims,
        audience.unwrap_or_default(),
        [exp, nbf, iat],
    ))
}

/// Whether `exp` is applied: always, except for the one caller that must read a token after
/// its expiry (an ID token naming the session to end at logout).
#[derive(Clone, Copy)]
pub(crate) enum Expiry {
    Enforce,
    Ignore,
}

/// The time rules: `exp` (required when the validation says so), `nbf` and `iat`, each with
/// the validation's leeway, at its `now`.
pub(crate) fn check_times(
    [exp, nbf, iat]: [Option<u64>; 3],
    v: &Validation<'_>,
) -> Result<(), JwtError> {
    let leeway = v.leeway.min(MAX_LEEWAY);
    // RFC 7519 section 4.1.4: the token must not be accepted on or after
    // `exp`; leeway extends the window by the allowed skew.
    match exp {
        Some(exp) if v.now >= exp.saturating_add(leeway) => return Err(JwtError::Expired),
        None if v.require_exp => return Err(JwtError::MissingClaim("exp")),
        _ => {}
    }
    // RFC 7519 section 4.1.5: not accepted before `nbf`.
    if nbf.is_some_and(|nbf| v.now.saturating_add(leeway) < nbf) {
        return Err(JwtError::NotYetValid);
    }
    // A token issued in the future comes from a skewed or lying clock, and
    // would extend a lifetime computed from `iat`.
    if iat.is_some_and(|iat| iat > v.now.saturating_add(leeway)) {
        return Err(JwtError::IssuedInFuture);
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Rounding {
    Down,
    Up,
}

/// Reads a NumericDate (RFC 7519 section 2): a JSON number of seconds,
/// possibly fractional. Strings, `null`, negative values and values beyond
/// `u64` are refused.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
    rounding: Rounding,
) -> Result<Option<u64>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => number_to_secs(n, rounding)
            .map(Some)
            .ok_or(JwtError::InvalidClaim(name)),
        Some(_) => Err(JwtError::InvalidClaim(name)),
    }
}

fn number_to_secs(n: &Number, rounding: Rounding) -> Option<u64> {
    if let Some(secs) = n.as_u64() {
        return Some(secs);
    }
    if n.is_i64() {
        // Integers that do not fit u64 but fit i64 are negative.
        return None;
    }
    let secs = n.as_f64()?;
    // 2^64 as f64; anything at or beyond it (or negative, or not finite)
    // cannot be a meaningful time.
    const LIMIT: f64 = 18_446_744_073_709_551_616.0;
    if !secs.is_finite() || !(0.0..LIMIT).contains(&secs) {
        return None;
    }
    let rounded = match rounding {
        Rounding::Down => secs.floor(),
        Rounding::Up => secs.ceil(),
    };
    // In range by the check above; `as` saturates regardless.
    Some(rounded as u64)
}

/// A claim that must be a string when present.
fn optional_str<'c>(
    claims: &'c Map<String, Value>,
    name: &'static str,
) -> Result<Option<&'c str>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(JwtError::InvalidClaim(name)),
    }
}

/// `aud` is a string or an array of strings (RFC 7519 section 4.1.3);
/// `None` when absent.
fn audience(claims: &Map<String, Value>) -> Result<Option<Vec<String>>, JwtError> {
    match claims.get("aud") {
        None => Ok(None),
        Some(Value::String(aud)) => Ok(Some(vec![aud.clone()])),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(aud) => Ok(aud.clone()),
                _ => Err(JwtError::InvalidClaim("aud")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(JwtError::InvalidClaim("aud")),
    }
}

fn check_audience(audience: Option<&[String]>, rule: AudienceRule<'_>) -> Result<(), JwtError> {
    let (accepted, single) = match rule {
        AudienceRule::Skip => return Ok(()),
        AudienceRule::AnyOf(accepted) => (accepted, false),
        AudienceRule::SingleOf(accepted) => (accepted, true),
    };
    let audience = audience.ok_or(JwtError::MissingClaim("aud"))?;
    // An empty array names no audience, so it can satisfy no rule.
    if single && audience.len() != 1 {
        return Err(JwtError::WrongAudience);
    }
    if audience.iter().any(|aud| accepted.contains(&aud.as_str())) {
        Ok(())
    } else {
        Err(JwtError::WrongAudience)
    }
}
