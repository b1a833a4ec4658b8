#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use super::*;
use crate::ids::{AliasName, KeyName};
use crate::policy::document::Format;
use crate::policy::eval::KeyAttributes;
use crate::policy::grant::ContextConstraint;
use crate::policy::revocation::CertificateSerial;

fn identity(s: &str) -> Identity {
    Identity::parse(s).unwrap()
}

fn key() -> KeyAttributes {
    KeyAttributes {
        id: Some(KeyId::from_random_bytes([7; 16])),
        name: Some(KeyName::parse("billing-main").unwrap()),
        aliases: vec![AliasName::parse("billing").unwrap()],
        tags: BTreeMap::from([("team".to_owned(), "billing".to_owned())]),
    }
}

fn request(who: &str, action: Action) -> AccessRequest {
    AccessRequest {
        identity: identity(who),
        certificate: None,
        action,
        key: (action.scope() == crate::policy::Scope::Key).then(key),
        context: BTreeMap::new(),
    }
}

/// Whether `access` allows `who` the `action`, at time 0.
fn allows(access: &AccessControl, who: &str, action: Action) -> bool {
    access.authorize(&request(who, action), 0).is_allowed()
}

fn with_policy(name: &str, text: &str) -> AccessControl {
    let mut access = AccessControl::default();
    put(&mut access, name, text);
    access
}

fn put(access: &mut AccessControl, name: &str, text: &str) -> u64 {
    access.put_policy(
        &PolicyName::parse(name).unwrap(),
        &PolicyDocument::parse(text, Format::Json).unwrap(),
    )
}

fn by_statement(decision: &Decision) -> Option<(String, usize)> {
    match decision {
        Decision::Allow {
            by: AllowedBy::Statement(at),
        }
        | Decision::Deny {
            reason: DenyReason::Statement(at),
        } => Some((at.policy.to_string(), at.index)),
        _ => None,
    }
}

const DENY_NOTHING_MATCHES: Decision = Decision::Deny {
    reason: DenyReason::NoMatch,
};

#[test]
fn default_deny() {
    let access = AccessControl::default();
    assert_eq!(
        access.authorize(&request("a", Action::Encrypt), 0),
        DENY_NOTHING_MATCHES
    );
    let access = with_policy(
        "p",
        r#"{"statements":[{"effect":"allow","identities":["a"],"actions":["kms:Decrypt"]}]}"#,
    );
    assert_eq!(
        access.authorize(&request("a", Action::Encrypt), 0),
        DENY_NOTHING_MATCHES
    );
    assert_eq!(
        access.authorize(&request("b", Action::Decrypt), 0),
        DENY_NOTHING_MATCHES
    );
    assert!(allows(&access, "a", Action::Decrypt));
}

#[test]
fn explicit_deny_wins_over_allows_admin_and_grants() {
    let mut access = with_policy(
        "a-allow",
        r#"{"statements":[{"effect":"allow","identities":["*"],"actions":["kms:*"]}]}"#,
    );
    put(
        &mut access,
        "b-deny",
        r#"{"statements":[{"sid":"no-decrypt","effect":"deny","identities":["spiffe://x/*"],"actions":["kms:Decrypt"]}]}"#,
    );
    access.bind_admin(&identity("spiffe://x/admin"));
    access.insert_grant(Grant {
        grant_id: GrantId::parse("g1").unwrap(),
        key_id: key().id.unwrap(),
        grantee: identity("spiffe://x/app"),
        actions: vec![Action::Decrypt],
        constraint: None,
        expires_at_ms: None,
        created_by: identity("spiffe://x/admin"),
    });
    for who in ["spiffe://x/app", "spiffe://x/admin"] {
        let decision = access.authorize(&request(who, Action::Decrypt), 0);
        assert_eq!(by_statement(&decision), Some(("b-deny".into(), 0)), "{who}");
        assert!(!decision.is_allowed());
        let Decision::Deny {
            reason: DenyReason::Statement(at),
        } = decision
        else {
            panic!("explicit deny")
        };
        assert_eq!(at.sid.as_deref(), Some("no-decrypt"));
        assert_eq!(at.version, 1);
    }
    assert_eq!(
        by_statement(&access.authorize(&request("spiffe://x/app", Action::Encrypt), 0)),
        Some(("a-allow".into(), 0))
    );
    assert_eq!(
        access.authorize(&request("spiffe://x/admin", Action::Seal), 0),
        Decision::Allow {
            by: AllowedBy::Admin
        }
    );
}

#[test]
fn key_patterns_match_ids_names_and_aliases() {
    for pattern in [
        "billing-*",
        "alias/billing",
        "alias/bill*",
        "*-0707-4707-8707-070707070707",
    ] {
        let access = with_policy(
            "p",
            &format!(
                r#"{{"statements":[{{"effect":"allow","identities":["a"],"actions":["kms:Encrypt"],"keys":["{pattern}"]}}]}}"#
            ),
        );
        assert!(allows(&access, "a", Action::Encrypt), "{pattern}");
        let mut other = request("a", Action::Encrypt);
        other.key = Some(KeyAttributes {
            name: Some(KeyName::parse("payroll").unwrap()),
            ..KeyAttributes::default()
        });
        assert!(!access.authorize(&other, 0).is_allowed(), "{pattern}");
    }
    let access = with_policy(
        "p",
        r#"{"statements":[{"effect":"allow","identities":["a"],"actions":["kms:*"],"keys":["*"]}]}"#,
    );
    assert!(
        !allows(&access, "a", Action::ListKeys),
        "a statement with keys never covers an action without a key"
    );
}

#[test]
fn context_conditions_equals_glob_and_present() {
    let access = with_policy(
        "p",
        r#"{"statements":[{"effect":"allow","identities":["a"],"actions":["kms:Decrypt"],
            "conditions":{"context":[{"key":"tenant","glob":"eu-*"},{"key":"app","equals":"web"},
            {"key":"debug","present":false}]}}]}"#,
    );
    let with = |pairs: &[(&str, &str)]| {
        let mut r = request("a", Action::Decrypt);
        r.context = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        access.authorize(&r, 0).is_allowed()
    };
    assert!(with(&[("tenant", "eu-west"), ("app", "web")]));
    assert!(with(&[
        ("tenant", "eu-west"),
        ("app", "web"),
        ("other", "x")
    ]));
    assert!(!with(&[("tenant", "us-east"), ("app", "web")]));
    assert!(!with(&[("tenant", "eu-west"), ("app", "webx")]));
    assert!(!with(&[("tenant", "eu-west")]));
    assert!(!with(&[
        ("tenant", "eu-west"),
        ("app", "web"),
        ("debug", "1")
    ]));
    assert!(!with(&[]));
}

#[test]
fn tag_conditions_test_the_keys_tags() {
    let access = with_policy(
        "p",
        r#"{"statements":[{"effect":"allow","identities":["a"],"actions":["kms:Encrypt","kms:ListKeys"],
            "conditions":{"tags":[{"key":"team","equals":"billing"},{"key":"env","present":true}]}}]}"#,
    );
    let mut r = request("a", Action::Encrypt);
    assert!(!access.authorize(&r, 0).is_allowed(), "no env tag");
    if let Some(k) = r.key.as_mut() {
        k.tags.insert("env".into(), "prod".into());
    }
    assert!(access.authorize(&r, 0).is_allowed());
    if let Some(k) = r.key.as_mut() {
        k.tags.insert("team".into(), "payroll".into());
    }
    assert!(!access.authorize(&r, 0).is_allowed());
    assert!(
        !allows(&access, "a", Action::ListKeys),
        "tag conditions never hold without a key"
    );
}

#[test]
fn grants_allow_and_expire_and_respect_their_constraint() {
    let mut access = AccessControl::default();
    access.insert_grant(Grant {
        grant_id: GrantId::parse("g1").unwrap(),
        key_id: key().id.unwrap(),
        grantee: identity("app"),
        actions: vec![Action::Decrypt, Action::Encrypt],
        constraint: Some(ContextConstraint::Subset(BTreeMap::from([(
            "tenant".to_owned(),
            "t1".to_owned(),
        )]))),
        expires_at_ms: Some(1_000),
        created_by: identity("admin"),
    });
    let mut r = request("app", Action::Decrypt);
    assert!(!access.authorize(&r, 0).is_allowed(), "constraint unmet");
    r.context.insert("tenant".into(), "t1".into());
    r.context.insert("more".into(), "ok".into());
    assert_eq!(
        access.authorize(&r, 999),
        Decision::Allow {
            by: AllowedBy::Grant(GrantId::parse("g1").unwrap())
        }
    );
    assert_eq!(access.authorize(&r, 1_000), DENY_NOTHING_MATCHES, "expired");
    let mut sign = r.clone();
    sign.action = Action::Sign;
    assert!(!access.authorize(&sign, 0).is_allowed(), "not granted");
    let mut other = r.clone();
    other.identity = identity("app2");
    assert!(!access.authorize(&other, 0).is_allowed(), "not the grantee");
    let mut other_key = r.clone();
    other_key.key = Some(KeyAttributes {
        id: Some(KeyId::from_random_bytes([8; 16])),
        ..KeyAttributes::default()
    });
    assert!(!access.authorize(&other_key, 0).is_allowed(), "another key");
    let equals = Grant {
        constraint: Some(ContextConstraint::Equals(BTreeMap::from([(
            "tenant".to_owned(),
            "t1".to_owned(),
        )]))),
        ..access
            .grant(&GrantId::parse("g1").unwrap())
            .unwrap()
            .clone()
    };
    assert!(!equals.allows(Action::Decrypt, &r.context, 0), "extra pair");
    r.context.remove("more");
    assert!(equals.allows(Action::Decrypt, &r.context, 0));
    assert_eq!(access.remove_grants_of_key(&key().id.unwrap()).len(), 1);
    assert_eq!(access.authorize(&r, 0), DENY_NOTHING_MATCHES);
}

#[test]
fn a_revoked_certificate_is_denied_whatever_else_allows() {
    let mut access = AccessControl::default();
    access.bind_admin(&identity("root"));
    let cert = PresentedCertificate {
        serial: CertificateSerial::from_hex("0abc").unwrap(),
        fingerprint: [9; 32],
    };
    let mut r = request("root", Action::Seal);
    r.certificate = Some(cert.clone());
    assert!(access.authorize(&r, 0).is_allowed());
    access.revoke(&RevokedCertificate::Serial(cert.serial.clone()), 5);
    let revoked = Decision::Deny {
        reason: DenyReason::RevokedCertificate,
    };
    assert_eq!(access.authorize(&r, 0), revoked);
    r.action = Action::WhoAmI;
    assert_eq!(access.authorize(&r, 0), revoked);
    let mut by_fingerprint = AccessControl::default();
    by_fingerprint.bind_admin(&identity("root"));
    by_fingerprint.revoke(&RevokedCertificate::Fingerprint([9; 32]), 5);
    assert_eq!(by_fingerprint.authorize(&r, 0), revoked);
    r.certificate = Some(PresentedCertificate {
        serial: CertificateSerial::from_hex("0abd").unwrap(),
        fingerprint: [8; 32],
    });
    assert!(access.authorize(&r, 0).is_allowed(), "another certificate");
}

#[test]
fn whoami_is_always_allowed() {
    assert_eq!(
        AccessControl::default().authorize(&request("anyone", Action::WhoAmI), 0),
        Decision::Allow {
            by: AllowedBy::Always
        }
    );
}

#[test]
fn views_hold_exactly_the_identitys_statements_and_stale_views_are_recompiled() {
    let mut access = with_policy(
        "p",
        r#"{"statements":[
            {"effect":"allow","identities":["alice","bob"],"actions":["kms:Encrypt"]},
            {"effect":"allow","identities":["ali*"],"actions":["kms:Decrypt"]},
            {"effect":"allow","identities":["alice","al?ce"],"actions":["kms:Sign"]},
            {"effect":"allow","identities":["carol"],"actions":["kms:Verify"]}]}"#,
    );
    let view = access.view(&identity("alice"));
    assert_eq!(
        view.statement_count(),
        3,
        "statements 0, 1 and 2, once each"
    );
    assert_eq!(access.view(&identity("bob")).statement_count(), 1);
    assert_eq!(access.view(&identity("dave")).statement_count(), 0);
    let encrypt = request("alice", Action::Encrypt);
    assert!(access.decide(&view, &encrypt, 0).is_allowed());
    // The policy changes: the cached view is stale and must not decide with old statements.
    let before = access.fingerprint();
    put(
        &mut access,
        "p",
        r#"{"statements":[{"effect":"deny","identities":["alice"],"actions":["kms:Encrypt"]}]}"#,
    );
    assert_ne!(access.fingerprint(), before);
    assert!(!access.decide(&view, &encrypt, 0).is_allowed());
    // A view of another identity is never used for this one.
    let bob = access.view(&identity("bob"));
    assert!(!access.decide(&bob, &encrypt, 0).is_allowed());
    // Binding an admin changes the fingerprint too.
    let view = access.view(&identity("root"));
    access.bind_admin(&identity("root"));
    assert!(access
        .decide(&view, &request("root", Action::Seal), 0)
        .is_allowed());
}

#[test]
fn versions_go_up_and_deleted_policies_stop_applying() {
    let mut access = AccessControl::default();
    let doc = r#"{"statements":[{"effect":"allow","identities":["a"],"actions":["kms:Encrypt"]}]}"#;
    assert_eq!(put(&mut access, "p", doc), 1);
    assert_eq!(put(&mut access, "p", doc), 2);
    let Decision::Allow {
        by: AllowedBy::Statement(at),
    } = access.authorize(&request("a", Action::Encrypt), 0)
    else {
        panic!("allowed by the statement")
    };
    assert_eq!(at.version, 2);
    assert_eq!(
        at.to_string(),
        "policy p v2 statements[0]",
        "what policy check shows"
    );
    assert!(access.delete_policy(&PolicyName::parse("p").unwrap()));
    assert!(!access.delete_policy(&PolicyName::parse("p").unwrap()));
    assert_eq!(
        access.authorize(&request("a", Action::Encrypt), 0),
        DENY_NOTHING_MATCHES
    );
}

#[test]
fn the_first_worked_example_of_the_security_doc_decides_as_documented() {
    let mut access = with_policy(
        "billing",
        r#"{ "statements": [
          { "sid": "billing-use", "effect": "allow",
            "identities": ["spiffe://prod/billing/*"],
            "actions": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"],
            "keys": ["alias/billing-*"],
            "conditions": { "context": [ { "key": "tenant", "glob": "eu-*" } ] } },
          { "sid": "no-export", "effect": "deny", "identities": ["*"],
            "actions": ["kms:ExportKey"], "keys": ["*"],
            "conditions": { "tags": [ { "key": "class", "equals": "restricted" } ] } } ] }"#,
    );
    access.bind_admin(&identity("root"));
    let billing_key = KeyAttributes {
        aliases: vec![AliasName::parse("billing-main").unwrap()],
        tags: BTreeMap::from([("class".to_owned(), "restricted".to_owned())]),
        ..key()
    };
    let mut r = request("spiffe://prod/billing/api", Action::Encrypt);
    r.key = Some(billing_key.clone());
    r.context.insert("tenant".into(), "eu-west".into());
    assert_eq!(
        by_statement(&access.authorize(&r, 0)),
        Some(("billing".into(), 0))
    );
    r.context.insert("tenant".into(), "us-east".into());
    assert_eq!(access.authorize(&r, 0), DENY_NOTHING_MATCHES);
    r.context.clear();
    assert_eq!(access.authorize(&r, 0), DENY_NOTHING_MATCHES);
    let mut export = request("root", Action::ExportKey);
    export.key = Some(billing_key);
    assert_eq!(
        by_statement(&access.authorize(&export, 0)),
        Some(("billing".into(), 1))
    );
}
