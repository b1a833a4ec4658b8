//! Every crypto operation through the real cluster, on the leader and on a follower:
//! re-encryption, batches with bad items, data keys and key pairs, signatures (message and
//! digest), public keys, MACs, random bytes — with wrong usages and malformed inputs refused.

use std::collections::BTreeMap;

use sha2::Digest;
use tessera_proto::v1 as pb;
use tessera_proto::v1::crypto_client::CryptoClient;
use tessera_testkit::{ClusterOptions, TestCluster};
use tonic::transport::Channel;
use tonic::Code;

use crate::api::{
    answer, assert_refused, create, crypto, decrypt_no_context, decrypt_request,
    encrypt_no_context, encrypt_request, keys, leader_and_follower, public_key_request,
    sign_request, write,
};
use crate::{ctx, tessera};

fn key_pair_request(
    key: &str,
    spec: &str,
    context: &BTreeMap<String, String>,
    without_plaintext: bool,
) -> pb::GenerateDataKeyPairRequest {
    pb::GenerateDataKeyPairRequest {
        key: key.into(),
        key_pair_spec: spec.into(),
        context: context.clone(),
        without_plaintext,
    }
}

/// Whether the verification `request` holds (the call itself must succeed).
async fn verifies(c: &mut CryptoClient<Channel>, request: pb::VerifyRequest) -> bool {
    answer(c.verify(request).await).valid
}

fn mac_request(key: &str, message: &[u8], algorithm: &str) -> pb::GenerateMacRequest {
    pb::GenerateMacRequest {
        key: key.into(),
        message: message.to_vec(),
        algorithm: algorithm.into(),
    }
}

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

        let from_old = pb::ReEncryptRequest {
            ciphertext: old.ciphertext.clone(),
            source_context: context.clone(),
            ..Default::default()
        };

        // Same key: lands on the new primary version.
        let same = answer(
            c.re_encrypt(pb::ReEncryptRequest {
                destination_context: context.clone(),
                ..from_old.clone()
            })
            .await,
        );
        assert_eq!((same.source_version, same.version), (1, 2));
        // Another key, another context.
        let moved = answer(
            c.re_encrypt(pb::ReEncryptRequest {
                destination_key: dst.clone(),
                destination_context: ctx(&[("app", "archive")]),
                ..from_old.clone()
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
                source_context: ctx(&[("app", "wrong")]),
                ..from_old.clone()
            })
            .await,
            Code::InvalidArgument,
            "UNDECRYPTABLE",
            "encryption context",
        );
        assert_refused(
            c.re_encrypt(pb::ReEncryptRequest {
                destination_key: signer.clone(),
                ..from_old
            })
            .await,
            Code::InvalidArgument,
            "WRONG_KEY_USAGE",
            "SIGN_VERIFY",
        );

        // Batches: one bad item does not fail the others.
        let items = vec![
            encrypt_no_context(&src, b"one"),
            encrypt_no_context("missing", b"two"),
            encrypt_no_context(&src, b""),
            encrypt_no_context(&signer, b"four"),
            encrypt_no_context(&dst, b"five"),
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
                Some(E::Ok(ok)) => Some(decrypt_no_context(&ok.ciphertext)),
                _ => None,
            })
            .collect();
        let mut tampered = to_decrypt[0].ciphertext.clone();
        *tampered.last_mut().unwrap() ^= 1;
        to_decrypt.insert(1, decrypt_no_context(&tampered));
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
        for (items, fragment) in [
            (vec![], "items"),
            (vec![encrypt_no_context(&src, b"x"); 257], "at most 256"),
        ] {
            assert_refused(
                c.batch_encrypt(pb::BatchEncryptRequest { items }).await,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                fragment,
            );
        }

        // Data keys: plaintext and wrapped copy agree; without plaintext; 128-bit.
        let data_key = |spec: &str| pb::GenerateDataKeyRequest {
            key: src.clone(),
            data_key_spec: spec.into(),
            context: context.clone(),
        };
        for (spec, len) in [("", 32), ("AES_256", 32), ("AES_128", 16)] {
            let dk = answer(c.generate_data_key(data_key(spec)).await);
            assert_eq!(dk.plaintext.len(), len);
            let unwrapped = answer(
                c.decrypt(decrypt_request(&dk.ciphertext, context.clone()))
                    .await,
            );
            assert_eq!(unwrapped.plaintext, dk.plaintext);
        }
        let blind = answer(c.generate_data_key_without_plaintext(data_key("")).await);
        assert!(blind.plaintext.is_empty());
        let recovered = answer(
            c.decrypt(decrypt_request(&blind.ciphertext, context.clone()))
                .await,
        );
        assert_eq!(recovered.plaintext.len(), 32);
        for (request, tessera_code, fragment) in [
            (
                pb::GenerateDataKeyRequest {
                    key: src.clone(),
                    data_key_spec: "AES_512".into(),
                    ..Default::default()
                },
                "INVALID_ARGUMENT",
                "data_key_spec",
            ),
            (
                pb::GenerateDataKeyRequest {
                    key: signer.clone(),
                    ..Default::default()
                },
                "WRONG_KEY_USAGE",
                "cannot generate data keys",
            ),
        ] {
            assert_refused(
                c.generate_data_key(request).await,
                Code::InvalidArgument,
                tessera_code,
                fragment,
            );
        }

        // Data key pairs: the private key comes back encrypted (and in plaintext unless asked
        // not to), and the public key matches it.
        for spec in ["ECC_NIST_P256", "ECC_NIST_P384", "ED25519"] {
            let pair = answer(
                c.generate_data_key_pair(key_pair_request(&src, spec, &context, false))
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
            c.generate_data_key_pair(key_pair_request(&src, "ED25519", &BTreeMap::new(), true))
                .await,
        );
        assert!(pair.private_key_plaintext.is_empty());
        assert_refused(
            c.generate_data_key_pair(key_pair_request(&src, "RSA_2048", &BTreeMap::new(), false))
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
            let signed = answer(c.sign(sign_request(&name, &message)).await);
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
                verifies(
                    &mut c2,
                    verify(message.clone(), signed.signature.clone(), "")
                )
                .await
            );
            assert!(
                !verifies(
                    &mut c2,
                    verify(b"tampered".to_vec(), signed.signature.clone(), "")
                )
                .await
            );
            assert_refused(
                c2.verify(verify(message.clone(), vec![0x30, 0x01], ""))
                    .await,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                "signature",
            );

            // Digest mode for ECDSA: a signature over the digest verifies as one over the message.
            let digest_request = |digest: &[u8]| pb::SignRequest {
                message_type: "DIGEST".into(),
                ..sign_request(&name, digest)
            };
            if let Some(len) = digest_len {
                let digest = if len == 32 {
                    sha2::Sha256::digest(&message).to_vec()
                } else {
                    sha2::Sha384::digest(&message).to_vec()
                };
                let by_digest = answer(c.sign(digest_request(&digest)).await);
                let raw = verify(message.clone(), by_digest.signature.clone(), "RAW");
                assert!(verifies(&mut c2, raw).await);
                let prehashed = verify(digest.clone(), signed.signature.clone(), "DIGEST");
                assert!(verifies(&mut c2, prehashed).await);
            }
            // Refused: a digest of the wrong size (ECDSA) or any digest (Ed25519 signs whole
            // messages), and an algorithm no key signs with.
            let refused_digest: &[u8] = if digest_len.is_some() {
                &[1; 20]
            } else {
                &[1; 32]
            };
            for request in [
                digest_request(refused_digest),
                pb::SignRequest {
                    algorithm: "ECDSA_SHA_512".into(),
                    ..sign_request(&name, &message)
                },
            ] {
                let err = c.sign(request).await.unwrap_err();
                assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
            }
            let other_algorithm = if algorithm == "ED25519" {
                "ECDSA_SHA_256"
            } else {
                "ED25519"
            };
            assert_refused(
                c.sign(pb::SignRequest {
                    algorithm: other_algorithm.into(),
                    ..sign_request(&name, &message)
                })
                .await,
                Code::InvalidArgument,
                "INVALID_ARGUMENT",
                "keys sign with",
            );
            let public = answer(c.get_public_key(public_key_request(&name)).await);
            assert!(public
                .public_key_pem
                .starts_with("-----BEGIN PUBLIC KEY-----"));
            assert_eq!(public.signing_algorithms, vec![algorithm.to_owned()]);

            // Rotation: new signatures use version 2; version-1 signatures still verify.
            keys(&cluster, node).rotate_key(write(&name)).await.unwrap();
            let fresh = answer(c.sign(sign_request(&name, &message)).await);
            assert_eq!(fresh.version, 2);
            let mut old = verify(message.clone(), signed.signature.clone(), "");
            old.version = 1;
            assert!(c2.verify(old.clone()).await.unwrap().into_inner().valid);
            assert!(
                !verifies(
                    &mut c2,
                    verify(message.clone(), signed.signature.clone(), "")
                )
                .await
            );
            assert_refused(
                c.encrypt(encrypt_no_context(&name, b"x")).await,
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
            let mac = answer(c.generate_mac(mac_request(&name, b"payload", "")).await);
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
                .generate_mac(mac_request(&name, b"p", "HMAC_MD5"))
                .await
                .unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument);
            assert_refused(
                c.sign(sign_request(&name, b"p")).await,
                Code::InvalidArgument,
                "WRONG_KEY_USAGE",
                "cannot sign",
            );
        }
        let aes = format!("aes-{node}");
        create(&cluster, node, &aes, "AES256_GCM").await;
        assert_refused(
            c.generate_mac(mac_request(&aes, b"p", "")).await,
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
