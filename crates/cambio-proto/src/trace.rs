//! The W3C Trace Context `traceparent` header (W3C Trace Context §3.2), read the same way by
//! the server (to keep a caller's trace id with its audit event) and by the client SDK (to
//! refuse a malformed value before anything is sent).

use std::fmt;

/// A valid `traceparent`: version `00`, a trace id of 32 lowercase hex digits and a parent id
/// of 16, neither all zeros, and 2 hex digits of flags, separated by `-`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent<'a> {
    trace_id: &'a str,
    parent_id: &'a str,
}

/// Why a `traceparent` value is refused, in words a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidTraceParent;

impl fmt::Display for InvalidTraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "traceparent must be 00-<32 lowercase hex trace id>-<16 lowercase hex parent id>-<2 hex flags>, ids not all zero",
        )
    }
}

impl std::error::Error for InvalidTraceParent {}

impl<'a> TraceParent<'a> {
    /// Parses a header value; surrounding spaces are allowed, as in a header.
    ///
    /// # Errors
    /// [`InvalidTraceParent`] for anything but version `00` in the exact form above.
    pub fn parse(value: &'a str) -> Result<TraceParent<'a>, InvalidTraceParent> {
        let mut parts = value.trim().split('-');
        let mut next = || parts.next().ok_or(InvalidTraceParent);
        let (version, trace_id, parent_id, flags) = (next()?, next()?, next()?, next()?);
        let hex = |s: &str, len: usize| {
            s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        };
        let valid = version == "00"
            && parts.next().is_none()
            && hex(trace_id, 32)
            && hex(parent_id, 16)
            && hex(flags, 2)
            && trace_id.bytes().any(|b| b != b'0')
            && parent_id.bytes().any(|b| b != b'0');
        if valid {
            Ok(TraceParent {
                trace_id,
                parent_id,
            })
        } else {
            Err(InvalidTraceParent)
        }
    }

    /// The trace id (32 lowercase hex digits).
    pub fn trace_id(&self) -> &'a str {
        self.trace_id
    }

    /// The caller's span id (16 lowercase hex digits).
    pub fn parent_id(&self) -> &'a str {
        self.parent_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_the_version_00_form() {
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(good).map(|t| (t.trace_id(), t.parent_id()));
        assert_eq!(
            parsed,
            Ok(("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"))
        );
        assert!(TraceParent::parse(&format!(" {good} ")).is_ok());
        for bad in [
            "",
            "not-a-trace",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert_eq!(TraceParent::parse(bad), Err(InvalidTraceParent), "{bad:?}");
        }
    }
}
