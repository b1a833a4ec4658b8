//! Parsing command-line values and local input: durations, `k=v` pairs, base64 and files.
//!
//! Every failure here is bad usage (exit 2): clap value parsers return a `String` error that
//! clap reports, the others a [`Failure::Usage`].

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use anyhow::{anyhow, Context};
use base64::Engine;
use zeroize::Zeroizing;

use crate::output::Failure;

/// Standard base64 with padding, as every command prints and reads it.
pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Most bytes read from `--in` (the server's limits are lower; this only bounds memory).
const MAX_INPUT: u64 = 16 * 1024 * 1024;

/// A positive duration such as `90d`, `12h` or `30s` (clap value parser).
///
/// # Errors
/// A message for clap when the text is not a humantime duration or is zero.
pub fn duration(text: &str) -> Result<Duration, String> {
    let parsed = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 90d, 12h or 30s: {e}"))?;
    if parsed.is_zero() {
        return Err(format!("{text:?} is zero; give a positive duration"));
    }
    Ok(parsed)
}

/// A rotation period: a positive duration, or `off` (also `none`, `0`) for no automatic
/// rotation (clap value parser).
///
/// # Errors
/// A message for clap when the text is neither.
pub fn rotation_period(text: &str) -> Result<RotationPeriod, String> {
    match text.trim() {
        "off" | "none" | "0" => Ok(RotationPeriod(None)),
        other => duration(other)
            .map(|d| RotationPeriod(Some(d)))
            .map_err(|e| format!("{e} (or `off`)")),
    }
}

/// A rate-limit budget `RATE[/BURST]` in requests per second (clap value parser); the burst
/// defaults to the rate (at least 1). `0` refuses the class.
///
/// # Errors
/// A message for clap when either part is not a whole number.
pub fn budget(text: &str) -> Result<tessera_client::Budget, String> {
    let number = |part: &str, what: &str| {
        part.trim()
            .parse::<u32>()
            .map_err(|_| format!("{text:?}: the {what} must be a whole number (RATE[/BURST])"))
    };
    let (rate, burst) = match text.split_once('/') {
        Some((rate, burst)) => (number(rate, "rate")?, number(burst, "burst")?),
        None => {
            let rate = number(text, "rate")?;
            (rate, rate.max(1))
        }
    };
    Ok(tessera_client::Budget {
        per_second: rate,
        burst,
    })
}

/// The value of `key set-rotation-period`: `None` turns automatic rotation off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPeriod(pub Option<Duration>);

/// Parses repeated `k=v` values of flag `flag` (e.g. `--context`, `--tag`) into a map.
///
/// # Errors
/// [`Failure::Usage`] for a pair without `=`, an empty key or a repeated key.
pub fn pairs(flag: &str, values: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    let mut map = BTreeMap::new();
    for pair in values {
        let (k, v) = pair.split_once('=').ok_or_else(|| {
            Failure::Usage(anyhow!("{flag} {pair:?} is not of the form key=value"))
        })?;
        if k.is_empty() {
            return Err(Failure::Usage(anyhow!("{flag} {pair:?} has an empty key")));
        }
        if map.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(Failure::Usage(anyhow!("{flag} key {k:?} is given twice")));
        }
    }
    Ok(map)
}

/// Parses repeated `--context k=v` flags.
///
/// # Errors
/// [`Failure::Usage`] for a pair without `=` or a repeated key.
pub fn context(values: &[String]) -> Result<BTreeMap<String, String>, Failure> {
    pairs("--context", values)
}

/// A tag filter `k` or `k=v`: the tag key and the value (empty: any value).
pub fn tag_filter(text: &str) -> (String, String) {
    match text.split_once('=') {
        Some((k, v)) => (k.to_owned(), v.to_owned()),
        None => (text.to_owned(), String::new()),
    }
}

/// `bytes` without ASCII whitespace (base64 and hex may be wrapped over lines).
fn without_whitespace(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect()
}

/// Decodes base64 text, ignoring whitespace (line breaks).
///
/// # Errors
/// [`Failure::Usage`] naming `what` when the text is not base64.
pub fn base64(what: &str, text: &[u8]) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let compact = Zeroizing::new(without_whitespace(text));
    B64.decode(compact.as_slice())
        .map(Zeroizing::new)
        .map_err(|e| Failure::Usage(anyhow!("{what} is not base64: {e}")))
}

/// Input that may be base64 text or the raw bytes themselves: if it decodes as base64
/// (whitespace ignored), the decoded bytes, otherwise the input as is.
pub fn base64_or_raw(input: &[u8]) -> Zeroizing<Vec<u8>> {
    let compact = Zeroizing::new(without_whitespace(input));
    if !compact.is_empty() {
        if let Ok(decoded) = B64.decode(compact.as_slice()) {
            return Zeroizing::new(decoded);
        }
    }
    Zeroizing::new(input.to_vec())
}

/// Decodes hex text (either case), or `None` if it is empty or not an even number of hex
/// digits.
fn decode_hex(text: &[u8]) -> Option<Vec<u8>> {
    if text.is_empty() {
        return None;
    }
    hex::decode(text).ok()
}

/// A digest given on input: its hex text (as `sha256sum` prints it), its base64 text, or the
/// raw digest bytes, tried in that order.
pub fn digest(input: &[u8]) -> Vec<u8> {
    let compact = without_whitespace(input);
    // The hash tools print "HEX  FILENAME": keep the first word.
    let first_word: Vec<u8> = input
        .iter()
        .copied()
        .skip_while(u8::is_ascii_whitespace)
        .take_while(|b| !b.is_ascii_whitespace())
        .collect();
    if let Some(bytes) = decode_hex(&first_word) {
        return bytes;
    }
    if !compact.is_empty() {
        if let Ok(bytes) = B64.decode(&compact) {
            return bytes;
        }
    }
    input.to_vec()
}

/// Reads `--in`: a file, or stdin for `-`.
///
/// # Errors
/// [`Failure::Usage`] if it cannot be read.
pub fn read_input(input: &str) -> Result<Zeroizing<Vec<u8>>, Failure> {
    let mut buf = Zeroizing::new(Vec::new());
    let result = if input == "-" {
        std::io::stdin().take(MAX_INPUT).read_to_end(&mut buf)
    } else {
        std::fs::File::open(input).and_then(|f| f.take(MAX_INPUT).read_to_end(&mut buf))
    };
    result
        .with_context(|| format!("cannot read input {input}"))
        .map_err(Failure::Usage)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_humantime() {
        assert_eq!(duration("90d").unwrap(), Duration::from_secs(90 * 86400));
        assert_eq!(duration("12h").unwrap(), Duration::from_secs(12 * 3600));
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("1h 30m").unwrap(), Duration::from_secs(5400));
        for bad in ["", "soon", "12", "0s", "-3d"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn budgets_parse_with_an_optional_burst() {
        let b = |per_second, burst| tessera_client::Budget { per_second, burst };
        assert_eq!(budget("100/200").unwrap(), b(100, 200));
        assert_eq!(budget("50").unwrap(), b(50, 50));
        assert_eq!(budget("0").unwrap(), b(0, 1));
        for bad in ["", "fast", "1/", "/2", "-1", "1.5"] {
            assert!(budget(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rotation_periods_may_be_off() {
        assert_eq!(rotation_period("off").unwrap(), RotationPeriod(None));
        assert_eq!(rotation_period("0").unwrap(), RotationPeriod(None));
        assert_eq!(
            rotation_period("30d").unwrap(),
            RotationPeriod(Some(Duration::from_secs(30 * 86400)))
        );
        assert!(rotation_period("sometimes").is_err());
    }

    #[test]
    fn pairs_parse() {
        let c = pairs("--tag", &["a=1".into(), "b=x=y".into(), "c=".into()]).unwrap();
        assert_eq!(c["a"], "1");
        assert_eq!(c["b"], "x=y");
        assert_eq!(c["c"], "");
    }

    #[test]
    fn bad_pairs_are_usage_errors() {
        for bad in [
            vec!["novalue".to_string()],
            vec!["=v".to_string()],
            vec!["a=1".into(), "a=2".into()],
        ] {
            match context(&bad) {
                Err(Failure::Usage(_)) => {}
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn tag_filters_may_omit_the_value() {
        assert_eq!(tag_filter("team"), ("team".into(), String::new()));
        assert_eq!(tag_filter("team=ops"), ("team".into(), "ops".into()));
    }

    #[test]
    fn base64_ignores_line_breaks_and_refuses_garbage() {
        assert_eq!(base64("x", b"aGVs\nbG8=\n").unwrap().as_slice(), b"hello");
        assert!(matches!(base64("x", b"%%%"), Err(Failure::Usage(_))));
    }

    #[test]
    fn base64_or_raw_prefers_base64() {
        assert_eq!(base64_or_raw(b"aGVsbG8=\n").as_slice(), b"hello");
        let raw = [0u8, 0xff, 0x10, b'-', 0x80];
        assert_eq!(base64_or_raw(&raw).as_slice(), raw);
        assert_eq!(base64_or_raw(b"").as_slice(), b"");
        let pem = b"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEA\n-----END PUBLIC KEY-----\n";
        assert_eq!(base64_or_raw(pem).as_slice(), pem);
    }

    #[test]
    fn digests_may_be_hex_base64_or_raw() {
        let bytes: Vec<u8> = (0u8..32).collect();
        let hex_text = hex::encode(&bytes);
        assert_eq!(digest(hex_text.as_bytes()), bytes);
        assert_eq!(digest(format!("{hex_text}  file.txt\n").as_bytes()), bytes);
        assert_eq!(digest(hex_text.to_uppercase().as_bytes()), bytes);
        assert_eq!(digest(B64.encode(&bytes).as_bytes()), bytes);
        let raw = [0xffu8; 32];
        assert_eq!(digest(&raw), raw);
    }
}
