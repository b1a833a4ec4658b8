//! Access control: the caller's identity, policies, grants and the certificate deny-list.
//!
//! Every call fails over like the key calls (any node serves them: writes go through Raft,
//! reads come from the node's applied state), and every write carries a request id, so a
//! retried write is applied once. The server authorises each call itself (`policy:*`,
//! `grant:*`, `cert:*`); a refusal is an [`Error::Status`] with `PERMISSION_DENIED`.

use std::collections::BTreeMap;
use std::time::Duration;

use tessera_proto::v1 as pb;
use tessera_proto::v1::access_client::AccessClient;

use super::{new_request_id, Client};
use crate::error::Error;

/// The text format of a policy document sent with [`Client::put_policy`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyFormat {
    /// JSON.
    Json,
    /// TOML (`[[statements]]` tables).
    Toml,
    /// Let the server tell from the text.
    Detect,
}

impl PolicyFormat {
    /// The value of the `format` field of `PutPolicyRequest`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Toml => "toml",
            Self::Detect => "",
        }
    }
}

/// What [`Client::create_grant`] delegates.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateGrantOptions {
    /// The key: id, name or `alias/NAME`.
    pub key: String,
    /// The exact identity that may use the grant.
    pub grantee: String,
    /// The actions it allows, e.g. `kms:Decrypt`.
    pub actions: Vec<String>,
    /// Encryption-context pairs a request must carry (empty: no constraint).
    pub context: BTreeMap<String, String>,
    /// With `true` the request's context must contain [`Self::context`] and may hold more;
    /// with `false` it must equal it.
    pub context_subset: bool,
    /// How long the grant lasts (`None`: until revoked). The API counts whole seconds, so a
    /// fraction of a second is rounded up rather than turned into "never expires".
    pub expires_in: Option<Duration>,
}

impl CreateGrantOptions {
    fn into_request(self) -> pb::CreateGrantRequest {
        pb::CreateGrantRequest {
            key: self.key,
            grantee: self.grantee,
            actions: self.actions,
            context_equals: self.context,
            context_subset: self.context_subset,
            expires_in_seconds: self.expires_in.map_or(0, whole_seconds_up),
            request_id: new_request_id(),
        }
    }
}

/// `duration` in seconds, rounded up, at least 1.
fn whole_seconds_up(duration: Duration) -> u64 {
    let seconds = duration.as_secs();
    let seconds = if duration.subsec_nanos() > 0 {
        seconds.saturating_add(1)
    } else {
        seconds
    };
    seconds.max(1)
}

impl Client {
    /// Adds the certificate with serial `serial_hex` (colons accepted) to the deny-list.
    ///
    /// # Errors
    /// [`Error`]; `INVALID_ARGUMENT` for text that is not a serial number.
    pub async fn revoke_certificate_by_serial(
        &self,
        serial_hex: &str,
    ) -> Result<pb::RevokeCertificateResponse, Error> {
        self.revoke_certificate(pb::revoke_certificate_request::Certificate::SerialHex(
            serial_hex.to_owned(),
        ))
        .await
    }

    /// Adds the certificate whose DER has SHA-256 `fingerprint_hex` (colons accepted) to the
    /// deny-list.
    ///
    /// # Errors
    /// [`Error`]; `INVALID_ARGUMENT` for text that is not a 32-byte hex fingerprint.
    pub async fn revoke_certificate_by_fingerprint(
        &self,
        fingerprint_hex: &str,
    ) -> Result<pb::RevokeCertificateResponse, Error> {
        self.revoke_certificate(
            pb::revoke_certificate_request::Certificate::FingerprintSha256Hex(
                fingerprint_hex.to_owned(),
            ),
        )
        .await
    }

    rpc_methods! {
        /// The identity the server derives from this client's certificate, the certificate's
        /// fingerprint and serial, and the policies that name it.
        ///
        /// # Errors
        /// [`Error`] from the cluster.
        pub async fn whoami(&self) -> pb::WhoAmIResponse
            = call(AccessClient::who_am_i, pb::WhoAmIRequest {});

        /// Creates or replaces policy `name` from its text; returns the new version.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for a document that does not parse or breaks a rule
        /// (the message names the statement and field), `PERMISSION_DENIED` without
        /// `policy:Put`.
        pub async fn put_policy(&self, name: &str, document: &str, format: PolicyFormat)
            -> pb::PutPolicyResponse
            = call(AccessClient::put_policy, pb::PutPolicyRequest {
                name: name.to_owned(),
                document: document.to_owned(),
                format: format.as_str().to_owned(),
                request_id: new_request_id(),
            });

        /// Policy `name`, its version and its document as canonical JSON text.
        ///
        /// # Errors
        /// [`Error`]; `NOT_FOUND` for an unknown policy.
        pub async fn get_policy(&self, name: &str) -> pb::Policy
            = call(AccessClient::get_policy, pb::GetPolicyRequest { name: name.to_owned() });

        /// Every policy's name, version and number of statements.
        ///
        /// # Errors
        /// [`Error`] from the cluster.
        pub async fn list_policies(&self) -> pb::ListPoliciesResponse
            = call(AccessClient::list_policies, pb::ListPoliciesRequest {});

        /// Deletes policy `name`.
        ///
        /// # Errors
        /// [`Error`]; `NOT_FOUND` for an unknown policy.
        pub async fn delete_policy(&self, name: &str) -> pb::DeletePolicyResponse
            = call(AccessClient::delete_policy, pb::DeletePolicyRequest {
                name: name.to_owned(),
                request_id: new_request_id(),
            });

        /// How a request by `identity` for `action` on `key` (`None` for actions that name no
        /// key) with encryption context `context` would be decided now, and what decided it.
        ///
        /// # Errors
        /// [`Error`]; `INVALID_ARGUMENT` for an unknown action.
        pub async fn check_policy(
            &self,
            identity: &str,
            action: &str,
            key: Option<&str>,
            context: BTreeMap<String, String>,
        ) -> pb::CheckPolicyResponse = call(AccessClient::check_policy, pb::CheckPolicyRequest {
            identity: identity.to_owned(),
            action: action.to_owned(),
            key: key.unwrap_or_default().to_owned(),
            context,
        });

        /// Delegates actions on one key to one identity.
        ///
        /// # Errors
        /// [`Error`]; `NOT_FOUND` for an unknown key, `INVALID_ARGUMENT` for an action that
        /// cannot be granted.
        pub async fn create_grant(&self, options: CreateGrantOptions) -> pb::Grant
            = call(AccessClient::create_grant, options.into_request());

        /// The grants on `key`, or with `None` every grant.
        ///
        /// # Errors
        /// [`Error`]; `NOT_FOUND` for an unknown key.
        pub async fn list_grants(&self, key: Option<&str>) -> pb::ListGrantsResponse
            = call(AccessClient::list_grants, pb::ListGrantsRequest {
                key: key.unwrap_or_default().to_owned(),
            });

        /// Revokes grant `grant_id`.
        ///
        /// # Errors
        /// [`Error`]; `NOT_FOUND` for an unknown grant.
        pub async fn revoke_grant(&self, grant_id: &str) -> pb::RevokeGrantResponse
            = call(AccessClient::revoke_grant, pb::RevokeGrantRequest {
                grant_id: grant_id.to_owned(),
                request_id: new_request_id(),
            });

        async fn revoke_certificate(
            &self,
            certificate: pb::revoke_certificate_request::Certificate,
        ) -> pb::RevokeCertificateResponse = call(
            AccessClient::revoke_certificate,
            pb::RevokeCertificateRequest {
                certificate: Some(certificate),
                request_id: new_request_id(),
            }
        );

        /// The certificate deny-list (`serial/<hex>` and `sha256/<hex>` entries).
        ///
        /// # Errors
        /// [`Error`] from the cluster.
        pub async fn list_revoked_certificates(&self) -> pb::ListRevokedCertificatesResponse
            = call(AccessClient::list_revoked_certificates, pb::ListRevokedCertificatesRequest {});
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rounds_up_to_whole_seconds() {
        assert_eq!(whole_seconds_up(Duration::from_secs(3600)), 3600);
        assert_eq!(whole_seconds_up(Duration::from_millis(1500)), 2);
        assert_eq!(whole_seconds_up(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds_up(Duration::ZERO), 1);
    }

    #[test]
    fn grant_requests_carry_the_options_and_a_request_id() {
        let request = CreateGrantOptions {
            key: "demo".into(),
            grantee: "app".into(),
            actions: vec!["kms:Decrypt".into()],
            context: [("tenant".to_string(), "a".to_string())].into(),
            context_subset: true,
            expires_in: None,
        }
        .into_request();
        assert_eq!(request.key, "demo");
        assert_eq!(request.grantee, "app");
        assert_eq!(request.actions, ["kms:Decrypt"]);
        assert_eq!(
            request.context_equals.get("tenant").map(String::as_str),
            Some("a")
        );
        assert!(request.context_subset);
        assert_eq!(request.expires_in_seconds, 0);
        assert!(request.request_id.starts_with("req-"));
    }

    #[test]
    fn policy_formats_are_the_api_strings() {
        assert_eq!(PolicyFormat::Json.as_str(), "json");
        assert_eq!(PolicyFormat::Toml.as_str(), "toml");
        assert_eq!(PolicyFormat::Detect.as_str(), "");
    }
}
