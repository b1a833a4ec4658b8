//! Printing results and errors in the formats scripts depend on.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};
use tessera_client::proto as pb;

use crate::args::OutputFormat;

/// How a command failed, and therefore its exit status.
#[derive(Debug)]
pub enum Failure {
    /// Bad usage (exit 2): invalid flags or local input.
    Usage(anyhow::Error),
    /// The server or the connection refused the request (exit 1).
    Refused(tessera_client::Error),
    /// A local operation failed (exit 1).
    Local(anyhow::Error),
    /// A local check refused the input the way the server would have (exit 1, with the
    /// status and Tessera code the server sends for it), e.g. a damaged snapshot file.
    Refusal {
        /// gRPC status name, e.g. `INVALID_ARGUMENT`.
        code: &'static str,
        /// Stable Tessera code, e.g. `SNAPSHOT_CHECKSUM_MISMATCH`.
        tessera_code: &'static str,
        /// What was refused.
        message: String,
    },
    /// The server answered, and the answer is "no": a signature or MAC that does not verify
    /// (exit 1). The command has printed its result document already.
    Invalid {
        /// Stable code for scripts, e.g. `INVALID_SIGNATURE`.
        tessera_code: &'static str,
        /// What did not verify.
        message: String,
    },
}

impl Failure {
    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Refused(_) | Self::Local(_) | Self::Invalid { .. } | Self::Refusal { .. } => 1,
        }
    }

    /// The gRPC status name, the message and the stable Tessera code, if any.
    fn parts(&self) -> (&'static str, String, Option<&str>) {
        match self {
            Self::Usage(e) => ("INVALID_ARGUMENT", format!("{e:#}"), None),
            Self::Refused(e) => (e.code_name(), e.to_string(), e.tessera_code()),
            Self::Local(e) => ("INTERNAL", format!("{e:#}"), None),
            Self::Invalid {
                tessera_code,
                message,
            } => ("INVALID_ARGUMENT", message.clone(), Some(tessera_code)),
            Self::Refusal {
                code,
                tessera_code,
                message,
            } => (code, message.clone(), Some(tessera_code)),
        }
    }

    /// The JSON error document: `{"error":{"code","message"}}`, plus `tessera_code` when the
    /// server sent one.
    pub fn error_json(&self) -> Value {
        let (code, message, tessera_code) = self.parts();
        let mut error = json!({"code": code, "message": message});
        if let (Some(tessera_code), Some(object)) = (tessera_code, error.as_object_mut()) {
            object.insert("tessera_code".into(), tessera_code.into());
        }
        json!({ "error": error })
    }

    /// Prints the error on stderr: a message, and with JSON output also the document of
    /// [`Failure::error_json`].
    pub fn report(&self, format: OutputFormat) {
        let (_, message, _) = self.parts();
        let mut stderr = std::io::stderr().lock();
        // Nothing sensible can be done if stderr is closed.
        let _ = writeln!(stderr, "error: {message}");
        if format == OutputFormat::Json {
            let _ = writeln!(stderr, "{}", self.error_json());
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

/// Prints a list result: in JSON `{name: [the JSON of each item]}`, in text one line per item.
pub fn print_list<T>(
    format: OutputFormat,
    name: &str,
    items: &[T],
    json: impl Fn(&T) -> Value,
    line: impl Fn(&T) -> String,
) {
    match format {
        OutputFormat::Json => {
            let list = Value::Array(items.iter().map(json).collect());
            print_json(&Value::Object(
                [(name.to_owned(), list)].into_iter().collect(),
            ));
        }
        OutputFormat::Text => {
            for item in items {
                println!("{}", line(item));
            }
        }
    }
}

/// Prints what a key made of the input (a ciphertext, a signature, a MAC) in base64: alone on
/// a line in text mode; in JSON as `field` of `document` (an object naming the key id, the
/// version and what else the call answered).
pub fn print_made(format: OutputFormat, field: &str, made: &[u8], document: Value) {
    use base64::Engine;
    let made = crate::parse::B64.encode(made);
    match format {
        OutputFormat::Json => {
            let mut document = document;
            if let Some(object) = document.as_object_mut() {
                object.insert(field.to_owned(), made.into());
            }
            print_json(&document);
        }
        OutputFormat::Text => println!("{made}"),
    }
}

/// Prints a flat result: in JSON the object of `fields`; in text one `name: value` line per
/// field, in the order given, the values aligned one column after the longest name and
/// strings without their quotes.
pub fn print_fields(format: OutputFormat, fields: &[(&str, Value)]) {
    match format {
        OutputFormat::Json => print_json(&Value::Object(
            fields
                .iter()
                .map(|(name, value)| ((*name).to_owned(), value.clone()))
                .collect(),
        )),
        OutputFormat::Text => print!("{}", fields_text(fields)),
    }
}

/// The text form of [`print_fields`].
fn fields_text(fields: &[(&str, Value)]) -> String {
    let width = fields
        .iter()
        .map(|(name, _)| name.len() + 1)
        .max()
        .unwrap_or_default();
    let mut out = String::new();
    for (name, value) in fields {
        let label = format!("{name}:");
        match value {
            Value::String(text) => out.push_str(&format!("{label:<width$} {text}\n")),
            other => out.push_str(&format!("{label:<width$} {other}\n")),
        }
    }
    out
}

/// RFC 3339 UTC time with milliseconds, from milliseconds since the Unix epoch.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// [`rfc3339`] of a time the API gives as 0 when there is none: then JSON `null`.
pub fn rfc3339_or_null(ms: u64) -> Value {
    if ms == 0 {
        Value::Null
    } else {
        Value::String(rfc3339(ms))
    }
}

/// A duration in milliseconds as text humantime parses back (`90d`, `1d 12h`, `30s`), in
/// days, hours, minutes, seconds and milliseconds; `None` for 0.
pub fn duration_text(ms: u64) -> Option<String> {
    if ms == 0 {
        return None;
    }
    let units = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
        (1, "ms"),
    ];
    let mut rest = ms;
    let mut parts = Vec::new();
    for (size, unit) in units {
        let count = rest / size;
        if count > 0 {
            parts.push(format!("{count}{unit}"));
            rest %= size;
        }
    }
    Some(parts.join(" "))
}

/// The JSON form of a key (see `docs/operations.md`).
pub fn key_json(key: &pb::Key) -> Value {
    json!({
        "key_id": key.key_id,
        "name": key.name,
        "spec": key.spec,
        "usage": key.usage,
        "state": key.state,
        "origin": key.origin,
        "primary_version": key.primary_version,
        "min_decryption_version": key.min_decryption_version,
        "versions": key.versions.iter().map(|v| json!({
            "version": v.version,
            "state": v.state,
            "created_at": rfc3339(v.created_at_ms),
            "destroyed_at": rfc3339_or_null(v.destroyed_at_ms),
        })).collect::<Vec<_>>(),
        "aliases": key.aliases,
        "description": key.description,
        "created_at": rfc3339(key.created_at_ms),
        "created_by": key.created_by,
        "rotation_period": duration_text(key.rotation_period_ms),
        "next_rotation_at": rfc3339_or_null(key.next_rotation_ms),
        "exportable": key.exportable,
        "tags": key.tags,
        "deletion_date": rfc3339_or_null(key.deletion_date_ms),
    })
}

/// The text form of a key.
pub fn key_text(key: &pb::Key) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        ("key_id", key.key_id.clone()),
        ("name", key.name.clone()),
        ("spec", key.spec.clone()),
        ("usage", key.usage.clone()),
        ("state", key.state.clone()),
        ("origin", key.origin.clone()),
        ("primary_version", key.primary_version.to_string()),
        (
            "min_decryption_version",
            key.min_decryption_version.to_string(),
        ),
        ("created_at", rfc3339(key.created_at_ms)),
        ("created_by", key.created_by.clone()),
        ("exportable", key.exportable.to_string()),
        (
            "rotation_period",
            duration_text(key.rotation_period_ms).unwrap_or_else(|| "off".into()),
        ),
    ];
    if key.next_rotation_ms != 0 {
        lines.push(("next_rotation_at", rfc3339(key.next_rotation_ms)));
    }
    if key.deletion_date_ms != 0 {
        lines.push(("deletion_date", rfc3339(key.deletion_date_ms)));
    }
    if !key.description.is_empty() {
        lines.push(("description", key.description.clone()));
    }
    if !key.aliases.is_empty() {
        lines.push(("aliases", key.aliases.join(", ")));
    }
    if !key.tags.is_empty() {
        let tags: Vec<String> = key.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        lines.push(("tags", tags.join(", ")));
    }
    let mut out = String::new();
    for (label, value) in lines {
        out.push_str(&format!("{:<23} {value}\n", format!("{label}:")));
    }
    for v in &key.versions {
        out.push_str(&format!(
            "version {:<7} {} (created {}",
            v.version,
            v.state,
            rfc3339(v.created_at_ms)
        ));
        if v.destroyed_at_ms != 0 {
            out.push_str(&format!(", destroyed {}", rfc3339(v.destroyed_at_ms)));
        }
        out.push_str(")\n");
    }
    out
}

/// Prints a key in `format`.
pub fn print_key(key: &pb::Key, format: OutputFormat) {
    match format {
        OutputFormat::Json => print_json(&key_json(key)),
        OutputFormat::Text => print!("{}", key_text(key)),
    }
}

/// Armours DER in PEM (RFC 7468: 64-column base64 lines) under `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = crate::parse::B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        // Base64 is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 1 of a key, created at the epoch, in `state`.
    fn version_one(state: &str, destroyed_at_ms: u64) -> pb::KeyVersion {
        pb::KeyVersion {
            version: 1,
            state: state.into(),
            created_at_ms: 0,
            destroyed_at_ms,
        }
    }

    #[test]
    fn fields_print_as_aligned_lines_in_their_order() {
        let fields = [
            ("key_id", json!("k-1")),
            ("version", json!(2)),
            ("wrapping_algorithm", json!("X25519")),
        ];
        assert_eq!(
            fields_text(&fields),
            "key_id:             k-1\nversion:            2\nwrapping_algorithm: X25519\n"
        );
    }

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
            versions: vec![version_one("ENABLED", 0)],
            ..Default::default()
        };
        assert_eq!(
            key_json(&key),
            json!({
                "key_id": "id",
                "name": "n",
                "spec": "AES256_GCM",
                "usage": "ENCRYPT_DECRYPT",
                "state": "ENABLED",
                "origin": "",
                "primary_version": 1,
                "min_decryption_version": 0,
                "versions": [{
                    "version": 1,
                    "state": "ENABLED",
                    "created_at": "1970-01-01T00:00:00.000Z",
                    "destroyed_at": null,
                }],
                "aliases": [],
                "description": "",
                "created_at": "1970-01-01T00:00:00.000Z",
                "created_by": "",
                "rotation_period": null,
                "next_rotation_at": null,
                "exportable": false,
                "tags": {},
                "deletion_date": null,
            })
        );
    }

    #[test]
    fn key_json_has_the_lifecycle_fields() {
        let plain = key_json(&pb::Key {
            versions: vec![pb::KeyVersion::default()],
            ..Default::default()
        });
        for field in ["rotation_period", "next_rotation_at", "deletion_date"] {
            assert_eq!(plain[field], Value::Null, "{field}");
        }
        assert_eq!(plain["versions"][0]["destroyed_at"], Value::Null);
        assert_eq!(plain["tags"], json!({}));
        assert_eq!(plain["exportable"], false);

        let key = pb::Key {
            origin: "EXTERNAL".into(),
            min_decryption_version: 2,
            rotation_period_ms: 90 * 86_400_000,
            next_rotation_ms: 1_700_000_000_123,
            exportable: true,
            tags: [("team".to_string(), "ops".to_string())].into(),
            aliases: vec!["alias/payments".into()],
            deletion_date_ms: 1_700_000_000_000,
            versions: vec![version_one("DESTROYED", 1_700_000_000_123)],
            ..Default::default()
        };
        let v = key_json(&key);
        assert_eq!(v["origin"], "EXTERNAL");
        assert_eq!(v["min_decryption_version"], 2);
        assert_eq!(v["rotation_period"], "90d");
        assert_eq!(v["next_rotation_at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["exportable"], true);
        assert_eq!(v["tags"], json!({"team": "ops"}));
        assert_eq!(v["aliases"], json!(["alias/payments"]));
        assert_eq!(v["deletion_date"], "2023-11-14T22:13:20.000Z");
        assert_eq!(v["versions"][0]["destroyed_at"], "2023-11-14T22:13:20.123Z");
        let text = key_text(&key);
        assert!(text.contains("tags:"), "{text}");
        assert!(
            text.contains("destroyed 2023-11-14T22:13:20.123Z"),
            "{text}"
        );
    }

    #[test]
    fn durations_print_with_humantime() {
        assert_eq!(duration_text(0), None);
        assert_eq!(duration_text(12 * 3_600_000).as_deref(), Some("12h"));
        assert_eq!(
            duration_text(36 * 3_600_000 + 1).as_deref(),
            Some("1d 12h 1ms")
        );
        for ms in [1, 999, 30_000, 90 * 86_400_000, 123_456_789_012] {
            let text = duration_text(ms).unwrap();
            assert_eq!(
                humantime::parse_duration(&text).unwrap(),
                Duration::from_millis(ms),
                "{text}"
            );
        }
    }

    #[test]
    fn error_documents_carry_the_tessera_code() {
        let failure = Failure::Invalid {
            tessera_code: "INVALID_SIGNATURE",
            message: "no".into(),
        };
        assert_eq!(failure.exit_code(), 1);
        assert_eq!(
            failure.error_json(),
            json!({"error": {"code": "INVALID_ARGUMENT", "message": "no", "tessera_code": "INVALID_SIGNATURE"}})
        );
        let usage = Failure::Usage(anyhow::anyhow!("bad"));
        assert_eq!(usage.exit_code(), 2);
        assert_eq!(
            usage.error_json(),
            json!({"error": {"code": "INVALID_ARGUMENT", "message": "bad"}})
        );
    }

    #[test]
    fn pem_wraps_at_64_columns() {
        let der = vec![0u8; 100];
        let text = pem("PUBLIC KEY", &der);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN PUBLIC KEY-----"));
        assert_eq!(lines.get(1).map(|l| l.len()), Some(64));
        assert_eq!(lines.last(), Some(&"-----END PUBLIC KEY-----"));
        assert_eq!(lines.len(), 5);
    }
}
