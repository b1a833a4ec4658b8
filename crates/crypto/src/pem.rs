//! PEM (RFC 7468) armour for the DER documents this crate exchanges with
//! other tools: public keys handed to customers and X25519 wrapping keys
//! they send back.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::Error;

/// The RFC 7468 label of a SubjectPublicKeyInfo.
pub(crate) const PUBLIC_KEY_LABEL: &str = "PUBLIC KEY";

/// Base64 characters per line, as RFC 7468 requires of generators.
const LINE_WIDTH: usize = 64;

/// Armours `der` under `label` in the strict RFC 7468 form (64-column
/// lines, `\n` line endings, trailing newline) that OpenSSL writes.
///
/// Infallible, unlike the `der` crate's encoder, so that encoding a key
/// that is valid by construction needs no error path.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out =
        String::with_capacity(body.len() + body.len() / LINE_WIDTH + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for (index, c) in body.chars().enumerate() {
        if index > 0 && index % LINE_WIDTH == 0 {
            out.push('\n');
        }
        out.push(c);
    }
    out.push_str("\n-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

/// Removes the armour of a PEM document that must carry `label`, with the
/// `der` crate's strict RFC 7468 parser. Any problem, including another
/// label, is [`Error::InvalidPublicKey`]: this crate only reads public keys
/// from PEM.
pub(crate) fn decode_public_key(pem: &[u8]) -> Result<Vec<u8>, Error> {
    match spki::der::pem::decode_vec(pem) {
        Ok((label, der)) if label == PUBLIC_KEY_LABEL => Ok(der),
        _ => Err(Error::InvalidPublicKey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_the_der_crate() {
        for len in [0usize, 1, 44, 47, 48, 49, 91, 120, 300] {
            let der: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let ours = encode(PUBLIC_KEY_LABEL, &der);
            let theirs = spki::der::pem::encode_string(
                PUBLIC_KEY_LABEL,
                spki::der::pem::LineEnding::LF,
                &der,
            )
            .unwrap();
            assert_eq!(ours, theirs, "length {len}");
            if len > 0 {
                assert_eq!(decode_public_key(ours.as_bytes()).unwrap(), der);
            }
        }
    }

    #[test]
    fn decoding_checks_the_label_and_armour() {
        let der = [0x30, 0x03, 0x02, 0x01, 0x01];
        let good = encode(PUBLIC_KEY_LABEL, &der);
        assert_eq!(decode_public_key(good.as_bytes()).unwrap(), der);
        let crlf = good.replace('\n', "\r\n");
        assert_eq!(decode_public_key(crlf.as_bytes()).unwrap(), der);
        for bad in [
            encode("PRIVATE KEY", &der),
            encode("EC PUBLIC KEY", &der),
            good.replace("-----END PUBLIC KEY-----\n", ""),
            good.replace("MAMCAQE", "MAMCAQ!"),
            String::new(),
            "PUBLIC KEY".to_owned(),
        ] {
            assert_eq!(
                decode_public_key(bad.as_bytes()),
                Err(Error::InvalidPublicKey),
                "{bad:?}"
            );
        }
    }
}
