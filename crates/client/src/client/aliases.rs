//! Aliases: stable `alias/NAME` references to keys.

use tessera_proto::v1 as pb;
use tessera_proto::v1::keys_client::KeysClient;

use super::{new_request_id, Client};
use crate::error::Error;

/// The prefix every alias carries.
pub const ALIAS_PREFIX: &str = "alias/";

/// `name` as `alias/NAME`, whether or not it already carries the prefix.
pub fn alias_name(name: &str) -> String {
    if name.starts_with(ALIAS_PREFIX) {
        name.to_owned()
    } else {
        format!("{ALIAS_PREFIX}{name}")
    }
}

/// The message that creates or re-points `alias` (prefixed if need be) at `key`.
fn alias_request(alias: &str, key: &str) -> pb::AliasRequest {
    pb::AliasRequest {
        alias: alias_name(alias),
        key: key.to_owned(),
        request_id: new_request_id(),
    }
}

impl Client {
    rpc_methods! {
        /// Creates the alias `alias` (with or without the `alias/` prefix) for `key`.
        ///
        /// # Errors
        /// [`Error`]; `ALREADY_EXISTS` if the alias exists, `NOT_FOUND` for an unknown key.
        pub async fn create_alias(&self, alias: &str, key: &str) -> pb::AliasResponse
            = call(KeysClient::create_alias, alias_request(alias, key));

        /// Re-points an existing alias at another key of the same usage.
        ///
        /// # Errors
        /// [`Error`]; `NOT_FOUND` for an unknown alias or key, `FAILED_PRECONDITION` for a key
        /// of another usage.
        pub async fn update_alias(&self, alias: &str, key: &str) -> pb::AliasResponse
            = call(KeysClient::update_alias, alias_request(alias, key));

        /// Deletes an alias; the key itself is untouched.
        ///
        /// # Errors
        /// [`Error`]; `NOT_FOUND` for an unknown alias.
        pub async fn delete_alias(&self, alias: &str) -> pb::DeleteAliasResponse
            = call(KeysClient::delete_alias, pb::DeleteAliasRequest {
                alias: alias_name(alias),
                request_id: new_request_id(),
            });

        /// Lists the aliases of `key`, or with `None` every alias.
        ///
        /// # Errors
        /// [`Error`]; `NOT_FOUND` for an unknown key.
        pub async fn list_aliases(&self, key: Option<&str>) -> pb::ListAliasesResponse
            = call(KeysClient::list_aliases, pb::ListAliasesRequest {
                key: key.unwrap_or_default().to_owned(),
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_names_get_the_prefix_once() {
        assert_eq!(alias_name("payments"), "alias/payments");
        assert_eq!(alias_name("alias/payments"), "alias/payments");
    }
}
