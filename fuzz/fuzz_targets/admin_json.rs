//! The admin API's JSON decoders (`serde_json` into `cambio_proto::admin` types, as
//! `admin::parse_json` does): whatever decodes must encode and decode back to itself.
//! Replayed on stable by `cambio-proto/src/fuzz_corpus.rs`.
#![no_main]

use std::fmt::Debug;

use cambio_proto::admin::{
    ClientRep, ClientScopeRep, CredentialRep, FederatedIdentityRep, ManagementPermissionRep,
    RealmRep, RoleRep, UserRep,
};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: DeserializeOwned + Serialize + PartialEq + Debug>(data: &[u8]) {
    let Ok(rep) = serde_json::from_slice::<T>(data) else {
        return;
    };
    let json = serde_json::to_vec(&rep).expect("a decoded representation encodes");
    let again: T = serde_json::from_slice(&json).expect("an encoded representation decodes");
    assert_eq!(again, rep);
}

fuzz_target!(|data: &[u8]| {
    round_trip::<ClientRep>(data);
    round_trip::<UserRep>(data);
    round_trip::<CredentialRep>(data);
    round_trip::<RoleRep>(data);
    round_trip::<Vec<RoleRep>>(data);
    round_trip::<ClientScopeRep>(data);
    round_trip::<ManagementPermissionRep>(data);
    round_trip::<FederatedIdentityRep>(data);
    round_trip::<RealmRep>(data);
});
