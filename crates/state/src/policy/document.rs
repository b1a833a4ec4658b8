//! Policy documents: their text form (JSON or TOML), validation, and the compiled statements.
//!
//! ```json
//! { "statements": [ {
//!     "sid": "billing-encrypts",
//!     "effect": "allow",
//!     "identities": ["spiffe://prod/billing/*"],
//!     "actions": ["kms:Encrypt", "kms:GenerateDataKey*"],
//!     "keys": ["alias/billing-*"],
//!     "conditions": { "context": [ { "key": "tenant", "glob": "eu-*" } ],
//!                     "tags": [ { "key": "team", "equals": "billing" } ] } } ] }
//! ```
//!
//! The document is validated once, when it is parsed, and errors point at the offending
//! statement and field (`statements[2].actions[0]: "kms:Encrypy" is not an action`). The
//! replicated form is the same structure encoded with postcard; decoding validates it again,
//! so the state never holds an invalid document.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::policy::action::{ActionSet, Scope};
use crate::policy::glob::Glob;
use crate::policy::{truncate, MAX_DOCUMENT_BYTES, MAX_LIST_LEN, MAX_STATEMENTS, MAX_STRING_LEN};

/// Whether a statement allows or denies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Allows the actions, unless a deny statement or nothing else matches.
    Allow,
    /// Denies the actions; wins over every allow and every grant.
    Deny,
}

/// The text format of a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// TOML (`[[statements]]` tables).
    Toml,
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Json => "JSON",
            Self::Toml => "TOML",
        })
    }
}

/// Why a policy document was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text does not parse as the format, or has the wrong shape (unknown or missing
    /// fields); the detail is the parser's, with its line and column.
    #[error("not a valid {format} policy document: {detail}")]
    Syntax {
        /// The format tried.
        format: Format,
        /// The parser's message.
        detail: String,
    },
    /// The text is larger than [`MAX_DOCUMENT_BYTES`].
    #[error("the policy document is {len} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A value breaks a rule; the location names the statement and field.
    #[error("{location}: {problem}")]
    Invalid {
        /// Where.
        location: Location,
        /// What is wrong.
        problem: Problem,
    },
}

/// Where in a document a problem is: `statements[2].conditions.context[0].equals`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// The statement's index, or `None` for the statement list itself.
    pub statement: Option<usize>,
    /// The field of the statement.
    pub field: Option<Field>,
    /// The index inside the field's list.
    pub item: Option<usize>,
    /// The part of a condition (`key`, `equals`, `glob`, `present`).
    pub part: Option<&'static str>,
}

/// A field of a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// `sid`.
    Sid,
    /// `identities`.
    Identities,
    /// `actions`.
    Actions,
    /// `keys`.
    Keys,
    /// `conditions.context`.
    ContextConditions,
    /// `conditions.tags`.
    TagConditions,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("statements")?;
        if let Some(i) = self.statement {
            write!(f, "[{i}]")?;
        }
        if let Some(field) = self.field {
            f.write_str(match field {
                Field::Sid => ".sid",
                Field::Identities => ".identities",
                Field::Actions => ".actions",
                Field::Keys => ".keys",
                Field::ContextConditions => ".conditions.context",
                Field::TagConditions => ".conditions.tags",
            })?;
        }
        if let Some(i) = self.item {
            write!(f, "[{i}]")?;
        }
        if let Some(part) = self.part {
            write!(f, ".{part}")?;
        }
        Ok(())
    }
}

/// What is wrong with a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// An action pattern that matches no action.
    #[error("{pattern:?} is not an action")]
    NotAnAction {
        /// The pattern (truncated).
        pattern: String,
    },
    /// A list that must have entries.
    #[error("must not be empty")]
    Empty,
    /// A list over its limit.
    #[error("at most {max} entries are accepted, got {len}")]
    TooMany {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A string that is empty, too long or holds control characters.
    #[error("must be 1..={max} bytes without control characters")]
    BadString {
        /// The limit.
        max: usize,
    },
    /// A condition without exactly one test.
    #[error("a condition needs exactly one of \"equals\", \"glob\" or \"present\"")]
    ConditionTest,
    /// `keys` on a statement whose actions never act on a key: it could never match.
    #[error("\"keys\" is given but none of the statement's actions acts on a key")]
    KeysWithoutKeyActions,
    /// A statement id used twice in the document.
    #[error("statement id {sid:?} is used by an earlier statement")]
    DuplicateSid {
        /// The id.
        sid: String,
    },
}

/// A validated policy document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawDocument", into = "RawDocument")]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

/// One validated statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// Optional statement id, unique in its document, shown by `policy check`.
    pub sid: Option<String>,
    /// Allow or deny.
    pub effect: Effect,
    /// Identity globs.
    pub identities: Vec<Glob>,
    /// The action patterns as written.
    pub action_patterns: Vec<String>,
    /// The actions they match.
    pub actions: ActionSet,
    /// Key reference globs (ids, names, `alias/NAME`); `None` means any key, and actions
    /// without a key.
    pub keys: Option<Vec<Glob>>,
    /// Conditions on the request's encryption context; all must hold.
    pub context: Vec<Condition>,
    /// Conditions on the key's tags; all must hold.
    pub tags: Vec<Condition>,
}

/// A condition on one entry of a map (encryption context or tags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// The entry's key.
    pub key: String,
    /// The test on its value.
    pub test: Test,
}

/// The test a condition applies to a map entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Test {
    /// The entry exists with exactly this value.
    Equals(String),
    /// The entry exists and its value matches the glob.
    Glob(Glob),
    /// The entry exists (`true`) or does not (`false`).
    Present(bool),
}

impl PolicyDocument {
    /// Parses and validates a document in `format`.
    ///
    /// # Errors
    /// [`PolicyError`] for text over [`MAX_DOCUMENT_BYTES`], a syntax or shape error, or a
    /// value that breaks a rule (pointing at the statement and field).
    pub fn parse(text: &str, format: Format) -> Result<Self, PolicyError> {
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(PolicyError::TooLarge {
                len: text.len(),
                max: MAX_DOCUMENT_BYTES,
            });
        }
        let syntax = |detail: String| PolicyError::Syntax { format, detail };
        let raw: RawDocument = match format {
            Format::Json => serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?,
            Format::Toml => toml::from_str(text).map_err(|e| syntax(e.to_string()))?,
        };
        Self::try_from(raw)
    }

    /// The statements, in document order.
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// The document as pretty-printed JSON (for `policy get`).
    ///
    /// # Errors
    /// [`PolicyError::Syntax`] if encoding fails (a bug, never input-dependent).
    pub fn to_json(&self) -> Result<String, PolicyError> {
        serde_json::to_string_pretty(&RawDocument::from(self.clone())).map_err(|e| {
            PolicyError::Syntax {
                format: Format::Json,
                detail: e.to_string(),
            }
        })
    }
}

fn invalid(location: Location, problem: Problem) -> PolicyError {
    PolicyError::Invalid { location, problem }
}

fn at(statement: usize, field: Field) -> Location {
    Location {
        statement: Some(statement),
        field: Some(field),
        ..Location::default()
    }
}

fn item(statement: usize, field: Field, index: usize) -> Location {
    Location {
        item: Some(index),
        ..at(statement, field)
    }
}

fn check_string(value: &str, location: impl FnOnce() -> Location) -> Result<(), PolicyError> {
    if value.is_empty() || value.len() > MAX_STRING_LEN || value.chars().any(char::is_control) {
        Err(invalid(
            location(),
            Problem::BadString {
                max: MAX_STRING_LEN,
            },
        ))
    } else {
        Ok(())
    }
}

fn check_len(len: usize, location: impl FnOnce() -> Location) -> Result<(), PolicyError> {
    if len > MAX_LIST_LEN {
        Err(invalid(
            location(),
            Problem::TooMany {
                len,
                max: MAX_LIST_LEN,
            },
        ))
    } else {
        Ok(())
    }
}

/// A non-empty list of valid strings, turned into globs.
fn globs(statement: usize, field: Field, values: &[String]) -> Result<Vec<Glob>, PolicyError> {
    if values.is_empty() {
        return Err(invalid(at(statement, field), Problem::Empty));
    }
    check_len(values.len(), || at(statement, field))?;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            check_string(v, || item(statement, field, i))?;
            Ok(Glob::new(v))
        })
        .collect()
}

fn conditions(
    statement: usize,
    field: Field,
    raw: &[RawCondition],
) -> Result<Vec<Condition>, PolicyError> {
    check_len(raw.len(), || at(statement, field))?;
    raw.iter()
        .enumerate()
        .map(|(i, c)| {
            let part = |part| Location {
                part: Some(part),
                ..item(statement, field, i)
            };
            check_string(&c.key, || part("key"))?;
            let test = match (&c.equals, &c.glob, c.present) {
                (Some(v), None, None) => {
                    check_string(v, || part("equals"))?;
                    Test::Equals(v.clone())
                }
                (None, Some(g), None) => {
                    check_string(g, || part("glob"))?;
                    Test::Glob(Glob::new(g))
                }
                (None, None, Some(p)) => Test::Present(p),
                _ => return Err(invalid(item(statement, field, i), Problem::ConditionTest)),
            };
            Ok(Condition {
                key: c.key.clone(),
                test,
            })
        })
        .collect()
}

fn statement(index: usize, raw: RawStatement) -> Result<Statement, PolicyError> {
    if let Some(sid) = &raw.sid {
        check_string(sid, || at(index, Field::Sid))?;
    }
    let identities = globs(index, Field::Identities, &raw.identities)?;
    if raw.actions.is_empty() {
        return Err(invalid(at(index, Field::Actions), Problem::Empty));
    }
    check_len(raw.actions.len(), || at(index, Field::Actions))?;
    let mut actions = ActionSet::default();
    for (i, pattern) in raw.actions.iter().enumerate() {
        check_string(pattern, || item(index, Field::Actions, i))?;
        let matched = ActionSet::matching(pattern).map_err(|_| {
            invalid(
                item(index, Field::Actions, i),
                Problem::NotAnAction {
                    pattern: truncate(pattern),
                },
            )
        })?;
        actions = actions.union(matched);
    }
    let keys = match &raw.keys {
        Some(keys) => {
            if !actions.iter().any(|a| a.scope() == Scope::Key) {
                return Err(invalid(
                    at(index, Field::Keys),
                    Problem::KeysWithoutKeyActions,
                ));
            }
            Some(globs(index, Field::Keys, keys)?)
        }
        None => None,
    };
    let (context, tags) = match &raw.conditions {
        Some(c) => (
            conditions(index, Field::ContextConditions, &c.context)?,
            conditions(index, Field::TagConditions, &c.tags)?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    Ok(Statement {
        sid: raw.sid,
        effect: raw.effect,
        identities,
        action_patterns: raw.actions,
        actions,
        keys,
        context,
        tags,
    })
}

impl TryFrom<RawDocument> for PolicyDocument {
    type Error = PolicyError;

    fn try_from(raw: RawDocument) -> Result<Self, PolicyError> {
        let whole = Location::default;
        if raw.statements.is_empty() {
            return Err(invalid(whole(), Problem::Empty));
        }
        if raw.statements.len() > MAX_STATEMENTS {
            return Err(invalid(
                whole(),
                Problem::TooMany {
                    len: raw.statements.len(),
                    max: MAX_STATEMENTS,
                },
            ));
        }
        let mut sids = BTreeSet::new();
        let mut statements = Vec::with_capacity(raw.statements.len());
        for (index, raw) in raw.statements.into_iter().enumerate() {
            let statement = statement(index, raw)?;
            if let Some(sid) = &statement.sid {
                if !sids.insert(sid.clone()) {
                    return Err(invalid(
                        at(index, Field::Sid),
                        Problem::DuplicateSid { sid: truncate(sid) },
                    ));
                }
            }
            statements.push(statement);
        }
        Ok(Self { statements })
    }
}

impl From<PolicyDocument> for RawDocument {
    fn from(doc: PolicyDocument) -> Self {
        let raw_conditions = |conditions: Vec<Condition>| {
            conditions
                .into_iter()
                .map(|c| {
                    let (equals, glob, present) = match c.test {
                        Test::Equals(v) => (Some(v), None, None),
                        Test::Glob(g) => (None, Some(String::from(g)), None),
                        Test::Present(p) => (None, None, Some(p)),
                    };
                    RawCondition {
                        key: c.key,
                        equals,
                        glob,
                        present,
                    }
                })
                .collect()
        };
        RawDocument {
            statements: doc
                .statements
                .into_iter()
                .map(|s| RawStatement {
                    sid: s.sid,
                    effect: s.effect,
                    identities: s.identities.into_iter().map(String::from).collect(),
                    actions: s.action_patterns,
                    keys: s
                        .keys
                        .map(|keys| keys.into_iter().map(String::from).collect()),
                    conditions: (!s.context.is_empty() || !s.tags.is_empty()).then(|| {
                        RawConditions {
                            context: raw_conditions(s.context),
                            tags: raw_conditions(s.tags),
                        }
                    }),
                })
                .collect(),
        }
    }
}

/// The document as written; also its replicated encoding (so every field is always encoded:
/// postcard is not self-describing).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDocument {
    statements: Vec<RawStatement>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStatement {
    #[serde(default)]
    sid: Option<String>,
    effect: Effect,
    identities: Vec<String>,
    actions: Vec<String>,
    #[serde(default)]
    keys: Option<Vec<String>>,
    #[serde(default)]
    conditions: Option<RawConditions>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConditions {
    #[serde(default)]
    context: Vec<RawCondition>,
    #[serde(default)]
    tags: Vec<RawCondition>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    key: String,
    #[serde(default)]
    equals: Option<String>,
    #[serde(default)]
    glob: Option<String>,
    #[serde(default)]
    present: Option<bool>,
}

#[cfg(test)]
mod tests;
