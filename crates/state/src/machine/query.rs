//! Read-side queries: filtered, paged listing, and what the leader's background jobs must do.

use tessera_crypto::spec::KeySpec;
use tessera_crypto::KeyVersion;

use crate::ids::{KeyId, KeyName};
use crate::key::{KeyOrigin, KeyRecord, KeyState};
use crate::machine::State;

/// Which keys a listing includes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyFilter {
    /// Only keys in this state.
    pub state: Option<KeyState>,
    /// Only keys of this spec.
    pub spec: Option<KeySpec>,
    /// Only keys with this tag key (and, if given, this value).
    pub tag: Option<(String, Option<String>)>,
}

impl KeyFilter {
    fn matches(&self, key: &KeyRecord) -> bool {
        self.state.is_none_or(|s| key.state == s)
            && self.spec.is_none_or(|s| key.spec == s)
            && self
                .tag
                .as_ref()
                .is_none_or(|(k, v)| match (key.tags.get(k), v) {
                    (Some(found), Some(wanted)) => found == wanted,
                    (Some(_), None) => true,
                    (None, _) => false,
                })
    }
}

/// One page of a key listing.
#[derive(Debug)]
pub struct KeyPage<'a> {
    /// The keys, ordered by name.
    pub keys: Vec<&'a KeyRecord>,
    /// The name to continue after, if more keys match.
    pub next_after: Option<KeyName>,
}

impl State {
    /// Up to `limit` keys matching `filter`, ordered by name, starting after `after`.
    pub fn list_keys(
        &self,
        filter: &KeyFilter,
        after: Option<&KeyName>,
        limit: usize,
    ) -> KeyPage<'_> {
        let start = match after {
            Some(name) => std::ops::Bound::Excluded(name),
            None => std::ops::Bound::Unbounded,
        };
        let mut matching = self
            .names
            .range::<KeyName, _>((start, std::ops::Bound::Unbounded))
            .filter_map(|(_, id)| self.keys.get(id).map(Box::as_ref))
            .filter(|k| filter.matches(k));
        let keys: Vec<&KeyRecord> = matching.by_ref().take(limit).collect();
        let next_after = if matching.next().is_some() {
            keys.last().map(|k| k.name.clone())
        } else {
            None
        };
        KeyPage { keys, next_after }
    }

    /// Enabled, Tessera-generated keys whose rotation period has elapsed at `now_ms`, with the
    /// version their rotation must create.
    pub fn due_rotations(&self, now_ms: u64) -> Vec<(KeyId, KeyVersion)> {
        self.keys
            .values()
            .filter(|k| k.state == KeyState::Enabled && k.origin == KeyOrigin::Tessera)
            .filter(|k| k.next_rotation_ms().is_some_and(|due| due <= now_ms))
            .filter_map(|k| k.latest_version().next().map(|v| (k.key_id.clone(), v)))
            .collect()
    }

    /// Keys pending deletion whose deletion date has passed in cluster time (see
    /// [`crate::clock`]); no single node's clock decides it.
    pub fn due_deletions(&self) -> Vec<KeyId> {
        let now_ms = self.clock.now_ms();
        self.keys
            .values()
            .filter(|k| k.state == KeyState::PendingDeletion)
            .filter(|k| k.deletion_date_ms.is_some_and(|due| due <= now_ms))
            .map(|k| k.key_id.clone())
            .collect()
    }
}
