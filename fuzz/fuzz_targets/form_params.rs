//! `FormParams::parse` on arbitrary request bodies, then every accessor.
//! Replayed on stable by `cambio-core/src/fuzz_corpus.rs`.
#![no_main]

use cambio_core::form::FormParams;
use libfuzzer_sys::fuzz_target;

const NAMES: [&str; 6] = [
    "grant_type",
    "audience",
    "resource",
    "client_id",
    "scope",
    "",
];

fuzz_target!(|data: &[u8]| {
    let Ok(form) = FormParams::parse(data) else {
        return;
    };
    for name in NAMES {
        // Empty values count as absent; a single-valued parameter is never repeated.
        assert!(form.get(name).is_none_or(|v| !v.is_empty()));
        assert!(form.all(name).all(|v| !v.is_empty()));
        assert_eq!(form.contains(name), form.get(name).is_some());
        if name != "audience" && name != "resource" {
            assert!(form.all(name).count() <= 1);
        }
    }
    let _ = form.require("grant_type");
});
