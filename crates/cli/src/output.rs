//! Printing results and errors in the formats scripts depend on.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use tessera_client::proto as pb;

use crate::cli::OutputFormat;

/// How a command failed, and therefore its exit status.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage (exit 2): invalid flags or local input.
    Usage(anyhow::Error),
    /// The server or the connection refused the request (exit 1).
    Refused(tessera_client::Error),
    /// A local operation failed (exit 1).
    Local(anyhow::Error),
}

impl Failure {
    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Refused(_) | Self::Local(_) => 1,
        }
    }

    fn code_and_message(&self) -> (&'static str, String) {
        match self {
            Self::Usage(e) => ("INVALID_ARGUMENT", format!("{e:#}")),
            Self::Refused(e) => (e.code_name(), e.to_string()),
            Self::Local(e) => ("INTERNAL", format!("{e:#}")),
        }
    }

    /// Prints the error on stderr: a message, and with JSON output also
    /// `{"error":{"code","message"}}`.
    pub fn report(&self, format: OutputFormat) {
        let (code, message) = self.code_and_message();
        let mut stderr = std::io::stderr().lock();
        // Nothing sensible can be done if stderr is closed.
        let _ = writeln!(stderr, "error: {message}");
        if format == OutputFormat::Json {
            let doc = json!({"error": {"code": code, "message": message}});
            let _ = writeln!(stderr, "{doc}");
        }
    }
}

impl From<tessera_client::Error> for Failure {
    fn from(e: tessera_client::Error) -> Self {
        Self::Refused(e)
    }
}

/// Prints a JSON document on stdout.
pub fn print_json(value: &Value) {
    println!("{value}");
}

/// RFC 3339 UTC time with milliseconds, from milliseconds since the Unix epoch.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The JSON form of a key (see `docs/operations.md`).
pub fn key_json(key: &pb::Key) -> Value {
    json!({
        "key_id": key.key_id,
        "name": key.name,
        "spec": key.spec,
        "usage": key.usage,
        "state": key.state,
        "primary_version": key.primary_version,
        "versions": key.versions.iter().map(|v| json!({
            "version": v.version,
            "state": v.state,
            "created_at": rfc3339(v.created_at_ms),
        })).collect::<Vec<_>>(),
        "aliases": key.aliases,
        "description": key.description,
        "created_at": rfc3339(key.created_at_ms),
        "created_by": key.created_by,
    })
}

/// The text form of a key.
pub fn key_text(key: &pb::Key) -> String {
    let mut out = format!(
        "key_id:          {}\nname:            {}\nspec:            {}\nusage:           {}\nstate:           {}\nprimary_version: {}\ncreated_at:      {}\ncreated_by:      {}\n",
        key.key_id,
        key.name,
        key.spec,
        key.usage,
        key.state,
        key.primary_version,
        rfc3339(key.created_at_ms),
        key.created_by,
    );
    if !key.description.is_empty() {
        out.push_str(&format!("description:     {}\n", key.description));
    }
    for v in &key.versions {
        out.push_str(&format!(
            "version {:<7} {} (created {})\n",
            v.version,
            v.state,
            rfc3339(v.created_at_ms)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_epoch_millis() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn key_json_has_the_documented_fields() {
        let key = pb::Key {
            key_id: "id".into(),
            name: "n".into(),
            spec: "AES256_GCM".into(),
            usage: "ENCRYPT_DECRYPT".into(),
            state: "ENABLED".into(),
            primary_version: 1,
            versions: vec![pb::KeyVersion {
                version: 1,
                state: "ENABLED".into(),
                created_at_ms: 0,
            }],
            ..Default::default()
        };
        let v = key_json(&key);
        for field in [
            "key_id",
            "name",
            "spec",
            "usage",
            "state",
            "primary_version",
            "versions",
            "aliases",
            "created_at",
        ] {
            assert!(v.get(field).is_some(), "{field}");
        }
        assert_eq!(v["versions"][0]["created_at"], "1970-01-01T00:00:00.000Z");
    }
}
