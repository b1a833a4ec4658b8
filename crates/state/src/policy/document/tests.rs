#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use super::*;
use crate::policy::action::Action;

fn json(text: &str) -> Result<PolicyDocument, PolicyError> {
    PolicyDocument::parse(text, Format::Json)
}

fn error(text: &str) -> String {
    json(text).unwrap_err().to_string()
}

const FULL: &str = r#"{ "statements": [
  { "sid": "enc", "effect": "allow", "identities": ["spiffe://prod/billing/*"],
    "actions": ["kms:Encrypt", "kms:GenerateDataKey*"], "keys": ["alias/billing-*"],
    "conditions": { "context": [ { "key": "tenant", "glob": "eu-*" } ],
                    "tags": [ { "key": "team", "equals": "billing" },
                              { "key": "legal-hold", "present": false } ] } },
  { "effect": "deny", "identities": ["*"], "actions": ["operator:*"] } ] }"#;

#[test]
fn a_full_document_parses() {
    let doc = json(FULL).unwrap();
    let [first, second] = doc.statements() else {
        panic!("two statements")
    };
    assert_eq!(first.sid.as_deref(), Some("enc"));
    assert_eq!(first.effect, Effect::Allow);
    assert!(first.actions.contains(Action::GenerateDataKeyPair));
    assert!(!first.actions.contains(Action::Decrypt));
    assert_eq!(first.keys.as_ref().unwrap()[0].as_str(), "alias/billing-*");
    assert_eq!(first.context[0].test, Test::Glob(Glob::new("eu-*")));
    assert_eq!(first.tags[1].test, Test::Present(false));
    assert_eq!(second.effect, Effect::Deny);
    assert!(second.keys.is_none());
    assert!(second.actions.contains(Action::Seal));
}

#[test]
fn toml_and_json_give_the_same_document() {
    let toml = r#"
[[statements]]
sid = "enc"
effect = "allow"
identities = ["spiffe://prod/billing/*"]
actions = ["kms:Encrypt", "kms:GenerateDataKey*"]
keys = ["alias/billing-*"]
[statements.conditions]
context = [ { key = "tenant", glob = "eu-*" } ]
tags = [ { key = "team", equals = "billing" }, { key = "legal-hold", present = false } ]

[[statements]]
effect = "deny"
identities = ["*"]
actions = ["operator:*"]
"#;
    assert_eq!(
        PolicyDocument::parse(toml, Format::Toml).unwrap(),
        json(FULL).unwrap()
    );
}

#[test]
fn the_replicated_and_json_forms_round_trip() {
    let doc = json(FULL).unwrap();
    let bytes = postcard::to_allocvec(&doc).unwrap();
    assert_eq!(postcard::from_bytes::<PolicyDocument>(&bytes).unwrap(), doc);
    assert_eq!(json(&doc.to_json().unwrap()).unwrap(), doc);
}

#[test]
fn errors_point_at_the_statement_and_field() {
    let text = r#"{ "statements": [
      { "effect": "allow", "identities": ["a"], "actions": ["kms:Encrypt"] },
      { "effect": "allow", "identities": ["a"], "actions": ["kms:Decrypt"] },
      { "effect": "allow", "identities": ["a"], "actions": ["kms:Encrypy"] } ] }"#;
    assert_eq!(
        error(text),
        r#"statements[2].actions[0]: "kms:Encrypy" is not an action"#
    );
    assert_eq!(
        json(text).unwrap_err(),
        PolicyError::Invalid {
            location: Location {
                statement: Some(2),
                field: Some(Field::Actions),
                item: Some(0),
                part: None
            },
            problem: Problem::NotAnAction {
                pattern: "kms:Encrypy".into()
            }
        }
    );
    assert_eq!(
        error(r#"{"statements":[{"effect":"deny","identities":[],"actions":["kms:*"]}]}"#),
        "statements[0].identities: must not be empty"
    );
    assert_eq!(
        error(r#"{"statements":[{"effect":"deny","identities":["x"],"actions":[]}]}"#),
        "statements[0].actions: must not be empty"
    );
    assert_eq!(
        error(
            r#"{"statements":[{"effect":"deny","identities":["x"],"actions":["kms:*"],"keys":[]}]}"#
        ),
        "statements[0].keys: must not be empty"
    );
    assert_eq!(
        error(
            r#"{"statements":[{"effect":"deny","identities":["x"],"actions":["policy:*"],"keys":["k"]}]}"#
        ),
        r#"statements[0].keys: "keys" is given but none of the statement's actions acts on a key"#
    );
    assert_eq!(
        error(
            r#"{"statements":[{"effect":"allow","identities":["x"],"actions":["kms:*"],
            "conditions":{"context":[{"key":"t","equals":"a","glob":"b"}]}}]}"#
        ),
        r#"statements[0].conditions.context[0]: a condition needs exactly one of "equals", "glob" or "present""#
    );
    assert_eq!(
        error(
            r#"{"statements":[{"effect":"allow","identities":["x"],"actions":["kms:*"],
            "conditions":{"tags":[{"key":"t","equals":""}]}}]}"#
        ),
        "statements[0].conditions.tags[0].equals: must be 1..=1024 bytes without control characters"
    );
    assert_eq!(
        error(
            r#"{"statements":[{"sid":"s","effect":"allow","identities":["x"],"actions":["kms:*"]},
            {"sid":"s","effect":"allow","identities":["x"],"actions":["kms:*"]}]}"#
        ),
        r#"statements[1].sid: statement id "s" is used by an earlier statement"#
    );
    assert_eq!(
        error(r#"{"statements":[]}"#),
        "statements: must not be empty"
    );
}

#[test]
fn syntax_and_shape_errors_name_the_format() {
    assert!(error("{").starts_with("not a valid JSON policy document"));
    assert!(error(r#"{"statements":[{"efect":"allow"}]}"#).contains("efect"));
    assert!(error(
        r#"{"statements":[{"effect":"permit","identities":["x"],"actions":["kms:*"]}]}"#
    )
    .contains("permit"));
    let toml = PolicyDocument::parse("statements = 3", Format::Toml).unwrap_err();
    assert!(matches!(
        toml,
        PolicyError::Syntax {
            format: Format::Toml,
            ..
        }
    ));
}

#[test]
fn limits_are_enforced() {
    let statement = r#"{"effect":"allow","identities":["x"],"actions":["kms:Encrypt"]}"#;
    let many = vec![statement; MAX_STATEMENTS + 1].join(",");
    assert_eq!(
        error(&format!(r#"{{"statements":[{many}]}}"#)),
        format!("statements: at most {MAX_STATEMENTS} entries are accepted, got 65")
    );
    let identities = vec![r#""x""#; MAX_LIST_LEN + 1].join(",");
    assert!(error(&format!(
        r#"{{"statements":[{{"effect":"allow","identities":[{identities}],"actions":["kms:*"]}}]}}"#
    ))
    .starts_with("statements[0].identities: at most"));
    let long = "x".repeat(MAX_STRING_LEN + 1);
    assert_eq!(
        error(&format!(
            r#"{{"statements":[{{"effect":"allow","identities":["{long}"],"actions":["kms:*"]}}]}}"#
        )),
        "statements[0].identities[0]: must be 1..=1024 bytes without control characters"
    );
    let huge = " ".repeat(MAX_DOCUMENT_BYTES + 1);
    assert!(matches!(json(&huge), Err(PolicyError::TooLarge { .. })));
}
