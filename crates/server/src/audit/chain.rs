//! The hash chain over audit records, and its verification.
//!
//! A line is `BODY` with its closing brace replaced by `,"hash":"<H>"}` where `BODY` is the
//! record's JSON ending in `"prev":"<P>"}`, `H` = hex SHA-256 of the bytes of `BODY` and `P` =
//! the `H` of the record before (64 zeros for a node's first record). A changed byte breaks
//! the line's own hash; a deleted, inserted or moved line breaks the `prev` link or the `seq`
//! succession of the line after it, so verification names the first line where the chain
//! breaks. Truncating the newest records cannot be seen from the files alone (ship them off
//! the node, see `docs/operations.md`).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// `prev` of a node's very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_SUFFIX_LEN: usize = 9 + 64 + 2;

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Seals a record body: returns the line (without newline) and the record's hash.
pub fn seal(body: &str) -> (String, String) {
    let hash = sha256_hex(body.as_bytes());
    let open = body.strip_suffix('}').unwrap_or(body);
    (format!("{open},\"hash\":\"{hash}\"}}"), hash)
}

/// What a verified line says about the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Its `seq`.
    pub seq: u64,
    /// Its `prev`.
    pub prev: String,
    /// Its own hash.
    pub hash: String,
}

/// Why one line is not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line does not end in `,"hash":"<64 hex>"}`.
    #[error("the line does not end with its hash")]
    NoHash,
    /// The line's hash is not the SHA-256 of its body: the record was changed.
    #[error("the record's hash does not match its content (the record was changed)")]
    HashMismatch,
    /// The body is not a version-1 record.
    #[error("the record is not a version 1 audit record: {0}")]
    Malformed(&'static str),
}

/// Checks one line's own hash and reads its chain fields.
///
/// # Errors
/// [`LineError`].
pub fn parse_line(line: &str) -> Result<Link, LineError> {
    let split = line
        .len()
        .checked_sub(HASH_SUFFIX_LEN)
        .filter(|at| line.is_char_boundary(*at))
        .ok_or(LineError::NoHash)?;
    let (open, suffix) = line.split_at(split);
    let hash = suffix
        .strip_prefix(",\"hash\":\"")
        .and_then(|s| s.strip_suffix("\"}"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or(LineError::NoHash)?;
    let body = format!("{open}}}");
    if sha256_hex(body.as_bytes()) != hash {
        return Err(LineError::HashMismatch);
    }
    let value: serde_json::Value =
        serde_json::from_str(&body).map_err(|_| LineError::Malformed("not JSON"))?;
    if value.get("v").and_then(serde_json::Value::as_u64)
        != Some(u64::from(super::record::SCHEMA_VERSION))
    {
        return Err(LineError::Malformed("\"v\" is not 1"));
    }
    let seq = value
        .get("seq")
        .and_then(serde_json::Value::as_u64)
        .ok_or(LineError::Malformed("no \"seq\""))?;
    let prev = value
        .get("prev")
        .and_then(serde_json::Value::as_str)
        .ok_or(LineError::Malformed("no \"prev\""))?
        .to_owned();
    Ok(Link {
        seq,
        prev,
        hash: hash.to_owned(),
    })
}

/// The first place where a set of audit files does not form one chain.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// A file cannot be read.
    #[error("{}: cannot read: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A record is broken or does not follow the one before.
    #[error("{}:{line}: {reason}", file.display())]
    Broken {
        /// The file.
        file: PathBuf,
        /// The line, from 1.
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

/// A chain that verified.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// Files checked.
    pub files: usize,
    /// Records checked.
    pub records: u64,
    /// `seq` of the first record (`null` without records).
    pub first_seq: Option<u64>,
    /// `prev` of the first record: [`GENESIS`] if the chain starts at the node's first record,
    /// else the hash of a record in a file not given (rotated away).
    pub anchor: Option<String>,
    /// Hash of the last record.
    pub last_hash: Option<String>,
}

/// Follows the chain through lines, one file after another.
#[derive(Debug, Default)]
pub struct Verifier {
    last: Option<Link>,
    verified: Option<Verified>,
}

impl Verifier {
    /// Checks the next line (`line_no` from 1, of `file`).
    ///
    /// # Errors
    /// [`VerifyError::Broken`].
    pub fn line(&mut self, file: &Path, line_no: usize, line: &str) -> Result<(), VerifyError> {
        let broken = |reason: String| VerifyError::Broken {
            file: file.to_owned(),
            line: line_no,
            reason,
        };
        let link = parse_line(line).map_err(|e| broken(e.to_string()))?;
        if let Some(last) = &self.last {
            if link.prev != last.hash {
                return Err(broken(format!(
                    "the record does not follow the previous one: prev {} but the previous record's hash is {} (a record was deleted, inserted or moved)",
                    link.prev, last.hash
                )));
            }
            if Some(link.seq) != last.seq.checked_add(1) {
                return Err(broken(format!(
                    "seq {} does not follow seq {}",
                    link.seq, last.seq
                )));
            }
        } else if link.prev == GENESIS && link.seq != 1 {
            return Err(broken(format!(
                "the first record has seq {}, not 1",
                link.seq
            )));
        }
        let verified = self.verified.get_or_insert_with(Verified::default);
        if verified.first_seq.is_none() {
            verified.first_seq = Some(link.seq);
            verified.anchor = Some(link.prev.clone());
        }
        verified.records += 1;
        verified.last_hash = Some(link.hash.clone());
        self.last = Some(link);
        Ok(())
    }

    /// Checks every line of `text`, the content of `file`.
    ///
    /// # Errors
    /// [`VerifyError::Broken`], also for a last line without its newline (a torn write).
    pub fn file(&mut self, file: &Path, text: &str) -> Result<(), VerifyError> {
        for (index, line) in text.split_inclusive('\n').enumerate() {
            let line_no = index + 1;
            let Some(line) = line.strip_suffix('\n') else {
                return Err(VerifyError::Broken {
                    file: file.to_owned(),
                    line: line_no,
                    reason: "the last record is incomplete (no newline)".into(),
                });
            };
            self.line(file, line_no, line)?;
        }
        self.verified.get_or_insert_with(Verified::default).files += 1;
        Ok(())
    }

    /// The result once every file was checked.
    pub fn finish(self) -> Verified {
        self.verified.unwrap_or_default()
    }
}

/// Verifies `files`, given oldest first, as one chain.
///
/// # Errors
/// [`VerifyError`] naming the first broken record by file and line.
pub fn verify_files(files: &[PathBuf]) -> Result<Verified, VerifyError> {
    let mut verifier = Verifier::default();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|source| VerifyError::Read {
            file: file.clone(),
            source,
        })?;
        verifier.file(file, &text)?;
    }
    Ok(verifier.finish())
}
