//! Every crypto operation through the real cluster, on the leader and on a follower:
//! re-encryption, batches with bad items, data keys and key pairs, signatures (message and
//! digest), public keys, MACs, random bytes — with wrong usages and malformed inputs refused.

use std::collections::BTreeMap;

use sha2::Digest;
use tessera_proto::v1 as pb;
use tessera_testkit::{ClusterOptions, TestCluster};
use tonic::Code;

use crate::api::{
    answer, assert_refused, create, crypto, decrypt_request, encrypt_request, keys,
    leader_and_follower, write,
};
use crate::{ctx, tessera};

#[tokio::test]
async fn t72_reencrypt_batches_and_data_keys() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    for node in leader_and_follower(&cluster).await {
        let mut c = crypto(&cluster, node);
        let src = format!("src-{node}");
        let dst = format!("dst-{node}");
        let signer = format!("signer-{node}");
        create(&cluster, node, &src, "").await;
        let dst_key = create(&cluster, node, &dst, "").await;
        create(&cluster, node, &signer, "ED25519").await;
        let context = ctx(&[("app", "billing")]);
        let old = answer(
            c.encrypt(encrypt_request(&src, b"move me", context.clone()))
                .await,
        );
        keys(&cluster, node).rotate_key(write(&src)).await.unwrap();

        // Same key: lands on the new primary version.
        let same = answer(
            c.re_encrypt(pb::ReEncryptRequest {
                ciphertext: old.ciphertext.clone(),
                source_context: context.clone(),
                destination_context: context.clone(),
                ..Default::default()
            })
            .await,
        );
        assert_eq!((same.source_version, same.version), (1, 2));
        // Another key, another context.
        let moved = answer(
            c.re_encrypt(pb::ReEncryptRequest {
                ciphertext: old.ciphertext.clone(),
                source_context: context.clone(),
                destination_key: dst.clone(),
                destination_context: ctx(&[("app", "archive")]),
            })
            .await,
        );
        assert_eq!(moved.key_id, dst_key.key_id);
        let opened = answer(
            c.decrypt(decrypt_request(
                &moved.ciphertext,
                ctx(&[("app", "archive")]),
            ))
            .await,
        );
        assert_eq!(opened.plaintext, b"move me");
        assert_refused(
            c.re_encrypt(pb::ReEncryptRequest {
                ciphertext: old.ciphertext.clone(),
                source_context: ctx(&[("app", "wrong")]),
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            "UNDECRYPTABLE",
            "encryption context",
        );
        assert_refused(
            c.re_encrypt(pb::ReEncryptRequest {
                ciphertext: old.ciphertext.clone(),
                source_context: context.clone(),
                destination_key: signer.clone(),
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            "WRONG_KEY_USAGE",
            "SIGN_VERIFY",
        );

        // Batches: one bad item does not fail the others.
        let items = vec![
            encrypt_request(&src, b"one", BTreeMap::new()),
            encrypt_request("missing", b"two", BTreeMap::new()),
            encrypt_request(&src, b"", BTreeMap::new()),
            encrypt_request(&signer, b"four", BTreeMap::new()),
            encrypt_request(&dst, b"five", BTreeMap::new()),
        ];
        let results = answer(c.batch_encrypt(pb::BatchEncryptRequest { items }).await).results;
        use pb::batch_decrypt_result::Result as D;
        use pb::batch_encrypt_result::Result as E;
        let codes: Vec<String> = results
            .iter()
            .map(|r| match r.result.as_ref().unwrap() {
                E::Ok(_) => "OK".to_owned(),
                E::Error(e) => format!("{}/{}", e.code, e.tessera_code),
            })
            .collect();
        assert_eq!(
            codes,
            [
                "OK",
                "NOT_FOUND/KEY_NOT_FOUND",
                "INVALID_ARGUMENT/INVALID_ARGUMENT",
                "INVALID_ARGUMENT/WRONG_KEY_USAGE",
                "OK"
            ]
        );
        let mut to_decrypt: Vec<pb::DecryptRequest> = results
            .iter()
            .filter_map(|r| match r.result.as_ref() {
                Some(E::Ok(ok)) => Some(decrypt_request(&ok.ciphertext, BTreeMap::new())),
                _ => None,
            })
            .collect();
        let mut tampered = to_decrypt[0].ciphertext.clone();
        *tampered.last_mut().unwrap() ^= 1;
        to_decrypt.insert(1, decrypt_request(&tampered, BTreeMap::new()));
        let opened = answer(
            c.batch_decrypt(pb::BatchDecryptRequest { items: to_decrypt })
                .await,
        )
        .results;
        let outcomes: Vec<String> = opened
            .iter()
            .map(|r| match r.result.as_ref().unwrap() {
                D::Ok(ok) => String::from_utf8(ok.plaintext.clone()).unwrap(),
                D::Error(e) => e.tessera_code.clone(),
            })
            .collect();
        assert_eq!(outcomes, ["one", "UNDECRYPTABLE", "five"]);
        assert_refused(
            c.batch_encrypt(pb::BatchEncryptRequest { items: vec![] })
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "items",
        );
        let too_many = vec![encrypt_request(&src, b"x", BTreeMap::new()); 257];
        assert_refused(
            c.batch_encrypt(pb::BatchEncryptRequest { items: too_many })
                .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "at most 256",
        );

        // Data keys: plaintext and wrapped copy agree; without plaintext; 128-bit.
        for (spec, len) in [("", 32), ("AES_256", 32), ("AES_128", 16)] {
            let dk = answer(
                c.generate_data_key(pb::GenerateDataKeyRequest {
                    key: src.clone(),
                    data_key_spec: spec.into(),
                    context: context.clone(),
                })
                .await,
            );
            assert_eq!(dk.plaintext.len(), len);
            let unwrapped = answer(
                c.decrypt(decrypt_request(&dk.ciphertext, context.clone()))
                    .await,
            );
            assert_eq!(unwrapped.plaintext, dk.plaintext);
        }
        let blind = answer(
            c.generate_data_key_without_plaintext(pb::GenerateDataKeyRequest {
                key: src.clone(),
                context: context.clone(),
                ..Default::default()
            })
            .await,
        );
        assert!(blind.plaintext.is_empty());
        let recovered = answer(
            c.decrypt(decrypt_request(&blind.ciphertext, context.clone()))
                .await,
        );
        assert_eq!(recovered.plaintext.len(), 32);
        assert_refused(
            c.generate_data_key(pb::GenerateDataKeyRequest {
                key: src.clone(),
                data_key_spec: "AES_512".into(),
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "data_key_spec",
        );
        assert_refused(
            c.generate_data_key(pb::GenerateDataKeyRequest {
                key: signer.clone(),
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            "WRONG_KEY_USAGE",
            "cannot generate data keys",
        );

        // Data key pairs: the private key comes back encrypted (and in plaintext unless asked
        // not to), and the public key matches it.
        for spec in ["ECC_NIST_P256", "ECC_NIST_P384", "ED25519"] {
            let pair = answer(
                c.generate_data_key_pair(pb::GenerateDataKeyPairRequest {
                    key: src.clone(),
                    key_pair_spec: spec.into(),
                    context: context.clone(),
                    without_plaintext: false,
                })
                .await,
            );
            assert!(!pair.public_key.is_empty());
            let private = answer(
                c.decrypt(decrypt_request(
                    &pair.private_key_ciphertext,
                    context.clone(),
                ))
                .await,
            );
            assert_eq!(private.plaintext, pair.private_key_plaintext);
        }
        let pair = answer(
            c.generate_data_key_pair(pb::GenerateDataKeyPairRequest {
                key: src.clone(),
                key_pair_spec: "ED25519".into(),
                context: BTreeMap::new(),
                without_plaintext: true,
            })
            .await,
        );
        assert!(pair.private_key_plaintext.is_empty());
        assert_refused(
            c.generate_data_key_pair(pb::GenerateDataKeyPairRequest {
                key: src.clone(),
                key_pair_spec: "RSA_2048".into(),
                ..Default::default()
            })
            .await,
            Code::InvalidArgument,
            "INVALID_ARGUMENT",
            "key_pair_spec",
        );
    }
}

#[tokio::test]
async fn t73_signatures_public_keys_macs_and_random() {
    let cluster = TestCluster::start_unsealed(tessera(), ClusterOptions::default()).await;
    for node in leader_and_follower(&cluster).await {
        let mut c = crypto(&cluster, node);
        for (spec, algorithm, digest_len) in [
            ("ED25519", "ED25519", None),
            ("ECDSA_P256", "ECDSA_SHA_256", Some(32)),
            ("ECDSA_P384", "ECDSA_SHA_384", Some(48)),
        ] {
            let name = format!("{}-{node}", spec.to_lowercase().replace('_', "-"));
            let key = create(&cluster, node, &name, spec).await;
            assert_eq!(key.usage, "SIGN_VERIFY");
            let message = b"release artifact v1.2.3".to_vec();
            let signed = answer(
                c.sign(pb::SignRequest {
                    key: name.clone(),
                    message: message.clone(),
                    ..Default::default()
                })
                .await,
            );
            assert_eq!(signed.algorithm, algorithm);
            let verify =
                |message: Vec<u8>, signature: Vec<u8>, message_type: &str| pb::VerifyRequest {
                    key: name.clone(),
                    message,
                    message_type: message_type.into(),
                    signature,
                    ..Default::default()
                };
            let mut c2 = crypto(&cluster, node);
            assert!(
                answer(
                    c2.verify(verify(message.clone(), signed.signature.clone(), ""))
                        .await
                )
                .valid
            );
            assert!(
                !answer(
                    c2.verify(verify(b"tampered".to_vec(), signed.signature.clone(), ""))
                        .await
                )
                .valid
            );
            assert_refused(
                c2.verify(verify(message.clone(), vec![0x30, 0x01], ""))
                    .await,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                "signature",
            );

            // Digest mode for ECDSA: a signature over the digest verifies as one over the message.
            match digest_len {
                Some(32) | Some(48) => {
                    let digest = if digest_len == Some(32) {
                        sha2::Sha256::digest(&message).to_vec()
                    } else {
                        sha2::Sha384::digest(&message).to_vec()
                    };
                    let by_digest = answer(
                        c.sign(pb::SignRequest {
                            key: name.clone(),
                            message: digest.clone(),
                            message_type: "DIGEST".into(),
                            ..Default::default()
                        })
                        .await,
                    );
                    assert!(
                        answer(
                            c2.verify(verify(message.clone(), by_digest.signature.clone(), "RAW"))
                                .await
                        )
                        .valid
                    );
                    assert!(
                        answer(
                            c2.verify(verify(digest.clone(), signed.signature.clone(), "DIGEST"))
                                .await
                        )
                        .valid
                    );
                    let err = c
                        .sign(pb::SignRequest {
                            key: name.clone(),
                            message: vec![1; 20],
                            message_type: "DIGEST".into(),
                            ..Default::default()
                        })
                        .await
                        .unwrap_err();
                    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
                }
                _ => {
                    let err = c
                        .sign(pb::SignRequest {
                            key: name.clone(),
                            message: vec![1; 32],
                            message_type: "DIGEST".into(),
                            ..Default::default()
                        })
                        .await
                        .unwrap_err();
                    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
                }
            }
            let err = c
                .sign(pb::SignRequest {
                    key: name.clone(),
                    message: message.clone(),
                    algorithm: "ECDSA_SHA_512".into(),
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
            let other_algorithm = if algorithm == "ED25519" {
                "ECDSA_SHA_256"
            } else {
                "ED25519"
            };
            assert_refused(
                c.sign(pb::SignRequest {
                    key: name.clone(),
                    message: message.clone(),
                    algorithm: other_algorithm.into(),
                    ..Default::default()
                })
                .await,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                "keys sign with",
            );
            let public = answer(
                c.get_public_key(pb::GetPublicKeyRequest {
                    key: name.clone(),
                    version: 0,
                })
                .await,
            );
            assert!(public
                .public_key_pem
                .starts_with("-----BEGIN PUBLIC KEY-----"));
            assert_eq!(public.signing_algorithms, vec![algorithm.to_owned()]);

            // Rotation: new signatures use version 2; version-1 signatures still verify.
            keys(&cluster, node).rotate_key(write(&name)).await.unwrap();
            let fresh = answer(
                c.sign(pb::SignRequest {
                    key: name.clone(),
                    message: message.clone(),
                    ..Default::default()
                })
                .await,
            );
            assert_eq!(fresh.version, 2);
            let mut old = verify(message.clone(), signed.signature.clone(), "");
            old.version = 1;
            assert!(c2.verify(old.clone()).await.unwrap().into_inner().valid);
            assert!(
                !answer(
                    c2.verify(verify(message.clone(), signed.signature.clone(), ""))
                        .await
                )
                .valid
            );
            assert_refused(
                c.encrypt(encrypt_request(&name, b"x", BTreeMap::new()))
                    .await,
                Code::InvalidArgument,
                "WRONG_KEY_USAGE",
                "cannot encrypt",
            );
        }

        for (spec, algorithm, len) in [
            ("HMAC_SHA256", "HMAC_SHA_256", 32),
            ("HMAC_SHA512", "HMAC_SHA_512", 64),
        ] {
            let name = format!("{}-{node}", spec.to_lowercase().replace('_', "-"));
            create(&cluster, node, &name, spec).await;
            let mac = answer(
                c.generate_mac(pb::GenerateMacRequest {
                    key: name.clone(),
                    message: b"payload".to_vec(),
                    algorithm: String::new(),
                })
                .await,
            );
            assert_eq!((mac.mac.len(), mac.algorithm.as_str()), (len, algorithm));
            let check = |message: &[u8], mac: Vec<u8>| pb::VerifyMacRequest {
                key: name.clone(),
                message: message.to_vec(),
                mac,
                ..Default::default()
            };
            assert!(answer(c.verify_mac(check(b"payload", mac.mac.clone())).await).valid);
            assert!(!answer(c.verify_mac(check(b"payload!", mac.mac.clone())).await).valid);
            assert!(
                !answer(
                    c.verify_mac(check(b"payload", mac.mac[..len - 1].to_vec()))
                        .await
                )
                .valid
            );
            assert_refused(
                c.verify_mac(check(b"payload", Vec::new())).await,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                "mac",
            );
            let err = c
                .generate_mac(pb::GenerateMacRequest {
                    key: name.clone(),
                    message: b"p".to_vec(),
                    algorithm: "HMAC_MD5".into(),
                })
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument);
            assert_refused(
                c.sign(pb::SignRequest {
                    key: name.clone(),
                    message: b"p".to_vec(),
                    ..Default::default()
                })
                .await,
                Code::InvalidArgument,
                "WRONG_KEY_USAGE",
                "cannot sign",
            );
        }
        let aes = format!("aes-{node}");
        create(&cluster, node, &aes, "AES256_GCM").await;
        assert_refused(
            c.generate_mac(pb::GenerateMacRequest {
                key: aes.clone(),
                message: b"p".to_vec(),
                algorithm: String::new(),
            })
            .await,
            Code::InvalidArgument,
            "WRONG_KEY_USAGE",
            "cannot generate MACs",
        );

        for n in [1u32, 32, 1024] {
            let random = answer(
                c.generate_random(pb::GenerateRandomRequest { number_of_bytes: n })
                    .await,
            );
            assert_eq!(random.random.len(), n as usize);
        }
        for n in [0u32, 1025] {
            assert_refused(
                c.generate_random(pb::GenerateRandomRequest { number_of_bytes: n })
                    .await,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                "1..=1024",
            );
        }
    }
}
