//! Helpers shared by this crate's unit tests.

/// Bytes from a hex string, for encodings captured from earlier builds.
pub(crate) fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}
