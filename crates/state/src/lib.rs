//! The deterministic replicated model of Tessera.
//!
//! [`State`] holds what the Raft group replicates: the seal configuration, customer keys with
//! their lifecycle and barrier-sealed versions, aliases, and a bounded table of applied request
//! ids. [`State::apply`]
//! turns a committed [`Request`] into a [`Response`]. Time enters only as data: proposers'
//! timestamps inside commands, and the replicated cluster time ([`clock`]) that decides when
//! destruction is due.
//!
//! What this crate is not: it does no I/O, reads no clock, draws no randomness and never sees
//! a plaintext secret. Key ids, sealed material and timestamps are produced by the proposing
//! node and arrive inside the command, so the same log gives byte-identical state on every
//! node. Persistence (rows and snapshots) is described here as bytes; writing them is the
//! `raft` crate's job.

/// Declares a validated text identifier: a `String` newtype that is (de)serialised as its text
/// through `TryFrom<String>`, i.e. through the type's own `parse` returning `$error` (so a
/// stored or received value is checked like a new one), with `as_str` and the conversion back
/// to `String`. Unless declared `displayed by hand`, it displays as its text.
macro_rules! text_newtype {
    ($(#[$doc:meta])* $name:ident, $error:ty, displayed by hand) => {
        $(#[$doc])*
        #[derive(
            Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
        )]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The text as validated.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;
            fn try_from(value: String) -> Result<Self, $error> {
                Self::parse(&value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }
    };
    ($(#[$doc:meta])* $name:ident, $error:ty) => {
        text_newtype!($(#[$doc])* $name, $error, displayed by hand);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

pub mod backup;
pub mod barrier;
pub mod clock;
pub mod command;
pub mod dedup;
pub mod error;
pub mod ids;
pub mod key;
pub mod machine;
pub mod node_id;
pub mod policy;
pub mod rows;
pub mod seal_config;
pub mod snapshot;

pub use barrier::{BarrierTerms, BlobRef, ResealedBlob};
pub use clock::ClusterClock;
pub use command::{ApplyError, Command, KeyBinding, NewKey, Request, Response};
pub use error::Error;
pub use ids::{AliasName, CallerId, KeyId, KeyName, KeyRef, RequestId};
pub use key::{
    ImportToken, KeyMetadata, KeyOrigin, KeyRecord, KeyState, KeyVersionRecord, KeyVersions,
    Unusable, VersionState,
};
pub use machine::State;
pub use machine::{KeyFilter, KeyPage};
pub use node_id::NodeId;
pub use rows::RowChange;
pub use seal_config::SealConfig;
/// Re-exported so the crates above name key versions without depending on the crypto crate
/// for it.
pub use tessera_crypto::KeyVersion;
