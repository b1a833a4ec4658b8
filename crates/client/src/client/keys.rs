//! Key lifecycle: create, describe, list, rotate, enable/disable, deletion, versions,
//! description, tags and the rotation period.

use std::collections::BTreeMap;
use std::time::Duration;

use tessera_proto::v1 as pb;
use tessera_proto::v1::keys_client::KeysClient;

use super::{new_request_id, Client};
use crate::error::Error;

/// The `origin` of a key whose material Tessera generates.
pub const ORIGIN_TESSERA: &str = "TESSERA";
/// The `origin` of a key whose material is imported later with
/// [`Client::import_key_material`].
pub const ORIGIN_EXTERNAL: &str = "EXTERNAL";
/// The `version` argument that names a key's primary version, whichever it is when the call
/// is served ([`Client::verify`], [`Client::get_public_key`], [`Client::verify_mac`],
/// [`Client::export_key`]). Versions are plain `u32`s in this SDK, as in the protocol
/// messages it returns; 0 is never a version's number.
pub const PRIMARY_VERSION: u32 = 0;

/// Everything [`Client::create_key_with_options`] may set besides the name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateKeyOptions {
    /// Key spec, e.g. `AES256_GCM` or `ECDSA_P256`; empty means `AES256_GCM`.
    pub spec: String,
    /// Free-form description.
    pub description: String,
    /// Automatic rotation period; `None` rotates only on request.
    pub rotation_period: Option<Duration>,
    /// Whether the material may later be exported with [`Client::export_key`].
    pub exportable: bool,
    /// Whether the material is imported later (origin `EXTERNAL`) instead of generated.
    pub origin_external: bool,
    /// Tags to attach.
    pub tags: BTreeMap<String, String>,
}

/// The `origin` of a key whose material is imported later (`external`) or generated.
fn origin(external: bool) -> &'static str {
    if external {
        ORIGIN_EXTERNAL
    } else {
        ORIGIN_TESSERA
    }
}

/// Milliseconds of a duration for the API, where 0 means "none": a non-zero duration never
/// becomes 0 (it is rounded up to 1 ms, which the server then judges on its merits).
pub(crate) fn duration_ms(duration: Option<Duration>) -> u64 {
    match duration {
        None => 0,
        Some(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1),
    }
}

impl Client {
    /// Creates a key of `spec` (empty: `AES256_GCM`) with a description.
    ///
    /// A convenience for [`Client::create_key_with_options`].
    ///
    /// # Errors
    /// [`Error`]; `ALREADY_EXISTS` if the name is taken.
    pub async fn create_key(
        &self,
        name: &str,
        spec: &str,
        description: &str,
    ) -> Result<pb::Key, Error> {
        self.create_key_with_id(name, spec, description, &new_request_id())
            .await
    }

    /// Creates a key with every option the API offers.
    ///
    /// # Errors
    /// [`Error`]; `ALREADY_EXISTS` if the name is taken, `INVALID_ARGUMENT` for a bad spec,
    /// name, tag or a rotation period below the server's minimum.
    pub async fn create_key_with_options(
        &self,
        name: &str,
        options: &CreateKeyOptions,
    ) -> Result<pb::Key, Error> {
        self.create_key_request(name, options, &new_request_id())
            .await
    }

    /// Creates a key with an explicit request id: a repeat with the same id and arguments
    /// returns the first result and creates nothing.
    ///
    /// # Errors
    /// [`Error`]; `INVALID_ARGUMENT` if the id was used for different arguments.
    pub async fn create_key_with_id(
        &self,
        name: &str,
        spec: &str,
        description: &str,
        request_id: &str,
    ) -> Result<pb::Key, Error> {
        let options = CreateKeyOptions {
            spec: spec.to_owned(),
            description: description.to_owned(),
            ..CreateKeyOptions::default()
        };
        self.create_key_request(name, &options, request_id).await
    }

    /// Describes a key by id, name or `alias/NAME`.
    ///
    /// # Errors
    /// [`Error`]; `NOT_FOUND` for an unknown key.
    pub async fn describe_key(&self, key: &str) -> Result<pb::Key, Error> {
        self.describe(key, "").await
    }

    /// Describes a key after confirming the latest committed state with the leader, so the
    /// answer reflects every write acknowledged before the call (a linearizable read).
    ///
    /// # Errors
    /// [`Error`]; `NOT_FOUND` for an unknown key, `UNAVAILABLE` if no leader confirms.
    pub async fn describe_key_linearizable(&self, key: &str) -> Result<pb::Key, Error> {
        self.describe(key, "LINEARIZABLE").await
    }

    /// Every key matching the filters of `filter`, following the pages from
    /// `filter.page_token` (empty: the first page) to the last.
    ///
    /// # Errors
    /// [`Error`] from any page.
    pub async fn list_keys_matching(
        &self,
        filter: pb::ListKeysRequest,
    ) -> Result<Vec<pb::Key>, Error> {
        let mut request = filter;
        let mut keys = Vec::new();
        loop {
            let page = self.list_keys_page(request.clone()).await?;
            keys.extend(page.keys);
            // An unchanged token would loop forever: treat it as the end.
            if page.next_page_token.is_empty() || page.next_page_token == request.page_token {
                return Ok(keys);
            }
            request.page_token = page.next_page_token;
        }
    }

    /// Lists all keys (every page).
    ///
    /// # Errors
    /// [`Error`] from the cluster.
    pub async fn list_keys(&self) -> Result<Vec<pb::Key>, Error> {
        self.list_keys_matching(pb::ListKeysRequest::default())
            .await
    }

    /// A write naming only the key (rotate, enable, disable, cancel deletion, import).
    pub(super) fn key_write(key: &str, request_id: &str) -> pb::KeyWriteRequest {
        pb::KeyWriteRequest {
            key: key.to_owned(),
            request_id: request_id.to_owned(),
        }
    }

    fn key_version(key: &str, version: u32) -> pb::KeyVersionRequest {
        pb::KeyVersionRequest {
            key: key.to_owned(),
            version,
            request_id: new_request_id(),
        }
    }

    /// Adds a new primary version to a key; older versions still decrypt.
    ///
    /// # Errors
    /// [`Error`]; `NOT_FOUND` for an unknown key, `FAILED_PRECONDITION` for a key that is not
    /// enabled or whose material is imported.
    pub async fn rotate_key(&self, key: &str) -> Result<pb::Key, Error> {
        self.rotate_key_with_id(key, &new_request_id()).await
    }

    /// Enables a disabled key.
    ///
    /// # Errors
    /// [`Error`]; `FAILED_PRECONDITION` for a key pending deletion or import.
    pub async fn enable_key(&self, key: &str) -> Result<pb::Key, Error> {
        self.enable_key_with_id(key, &new_request_id()).await
    }

    /// Disables a key: it refuses every cryptographic operation until enabled again.
    ///
    /// # Errors
    /// [`Error`]; `FAILED_PRECONDITION` for a key pending deletion.
    pub async fn disable_key(&self, key: &str) -> Result<pb::Key, Error> {
        self.disable_key_with_id(key, &new_request_id()).await
    }

    rpc_methods! {
        async fn create_key_request(
            &self,
            name: &str,
            options: &CreateKeyOptions,
            request_id: &str,
        ) -> pb::Key = key_call(KeysClient::create_key, pb::CreateKeyRequest {
            name: name.to_owned(),
            spec: options.spec.clone(),
            description: options.description.clone(),
            request_id: request_id.to_owned(),
            rotation_period_ms: duration_ms(options.rotation_period),
            exportable: options.exportable,
            origin: origin(options.origin_external).to_owned(),
            tags: options.tags.clone(),
        });

        async fn describe(&self, key: &str, consistency: &str) -> pb::Key
            = key_call(KeysClient::describe_key, pb::DescribeKeyRequest {
                key: key.to_owned(),
                consistency: consistency.to_owned(),
            });

        /// One page of keys: `request` carries the page size, the previous page's token and
        /// the filters (state, spec, tag); its default lists the first page of all keys.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for a malformed page token or filter.
        pub async fn list_keys_page(&self, request: pb::ListKeysRequest) -> pb::ListKeysResponse
            = call(KeysClient::list_keys, request);

        /// [`Client::rotate_key`] with an explicit request id: a repeat with the same id returns
        /// the first result and adds no second version.
        ///
        /// # Errors
        /// As [`Client::rotate_key`].
        pub async fn rotate_key_with_id(&self, key: &str, request_id: &str) -> pb::Key
            = key_call(KeysClient::rotate_key, Self::key_write(key, request_id));

        /// [`Client::enable_key`] with an explicit request id.
        ///
        /// # Errors
        /// As [`Client::enable_key`].
        pub async fn enable_key_with_id(&self, key: &str, request_id: &str) -> pb::Key
            = key_call(KeysClient::enable_key, Self::key_write(key, request_id));

        /// [`Client::disable_key`] with an explicit request id.
        ///
        /// # Errors
        /// As [`Client::disable_key`].
        pub async fn disable_key_with_id(&self, key: &str, request_id: &str) -> pb::Key
            = key_call(KeysClient::disable_key, Self::key_write(key, request_id));

        /// Schedules a key's destruction after `pending_window` (whole seconds; `None`: the
        /// server's default of 30 days). The key refuses crypto meanwhile.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for a window below the server's minimum.
        pub async fn schedule_key_deletion(&self, key: &str, pending_window: Option<Duration>)
            -> pb::Key
            = key_call(KeysClient::schedule_key_deletion, pb::ScheduleKeyDeletionRequest {
                key: key.to_owned(),
                pending_window_seconds: pending_window.map_or(0, |w| w.as_secs().max(1)),
                request_id: new_request_id(),
            });

        /// Cancels a scheduled deletion; the key comes back disabled.
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` if no deletion is pending.
        pub async fn cancel_key_deletion(&self, key: &str) -> pb::Key
            = key_call(KeysClient::cancel_key_deletion, Self::key_write(key, &new_request_id()));

        /// Refuses decryption with versions older than `version`.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for a version above the primary.
        pub async fn set_min_decryption_version(&self, key: &str, version: u32) -> pb::Key
            = key_call(KeysClient::set_min_decryption_version, Self::key_version(key, version));

        /// Enables one disabled version of a key.
        ///
        /// # Errors
        /// [`Error`]; `NOT_FOUND` for an unknown version, `FAILED_PRECONDITION` for a destroyed
        /// one.
        pub async fn enable_key_version(&self, key: &str, version: u32) -> pb::Key
            = key_call(KeysClient::enable_key_version, Self::key_version(key, version));

        /// Disables one version of a key: it no longer decrypts, signs or verifies.
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` for the primary version.
        pub async fn disable_key_version(&self, key: &str, version: u32) -> pb::Key
            = key_call(KeysClient::disable_key_version, Self::key_version(key, version));

        /// Destroys one version's material for good (crypto-shredding).
        ///
        /// # Errors
        /// [`Error`]; `FAILED_PRECONDITION` for the primary version.
        pub async fn destroy_key_version(&self, key: &str, version: u32) -> pb::Key
            = key_call(KeysClient::destroy_key_version, Self::key_version(key, version));

        /// Replaces a key's description.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for an oversized description.
        pub async fn update_key_description(&self, key: &str, description: &str) -> pb::Key
            = key_call(KeysClient::update_key_description, pb::UpdateKeyDescriptionRequest {
                key: key.to_owned(),
                description: description.to_owned(),
                request_id: new_request_id(),
            });

        /// Adds tags to a key, replacing the values of tag keys it already has.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for a malformed tag or too many tags.
        pub async fn tag_key(&self, key: &str, tags: &BTreeMap<String, String>) -> pb::Key
            = key_call(KeysClient::tag_key, pb::TagKeyRequest {
                key: key.to_owned(),
                tags: tags.clone(),
                request_id: new_request_id(),
            });

        /// Removes tags (by tag key) from a key.
        ///
        /// # Errors
        /// [`Error`]; `NOT_FOUND` for an unknown key.
        pub async fn untag_key(&self, key: &str, tag_keys: &[String]) -> pb::Key
            = key_call(KeysClient::untag_key, pb::UntagKeyRequest {
                key: key.to_owned(),
                tag_keys: tag_keys.to_vec(),
                request_id: new_request_id(),
            });

        /// Sets the automatic rotation period, or with `None` turns automatic rotation off.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for a period below the server's minimum.
        pub async fn set_rotation_period(&self, key: &str, period: Option<Duration>) -> pb::Key
            = key_call(KeysClient::set_rotation_period, pb::SetRotationPeriodRequest {
                key: key.to_owned(),
                rotation_period_ms: duration_ms(period),
                request_id: new_request_id(),
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_become_milliseconds_and_never_zero() {
        assert_eq!(duration_ms(None), 0);
        assert_eq!(duration_ms(Some(Duration::from_secs(90))), 90_000);
        assert_eq!(duration_ms(Some(Duration::from_micros(10))), 1);
        assert_eq!(duration_ms(Some(Duration::MAX)), u64::MAX);
    }

    #[test]
    fn default_options_generate_an_aes_key() {
        let options = CreateKeyOptions::default();
        assert!(options.spec.is_empty());
        assert!(!options.origin_external);
        assert!(options.rotation_period.is_none());
    }
}
