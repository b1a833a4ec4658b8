//! Caller-supplied text echoed in error messages, cut to a fixed length.
//!
//! Errors name the value they refuse so a caller can see what was wrong, but a value can be as
//! large as a request allows (megabytes). A gRPC error message travels in an HTTP/2 header, and
//! a header beyond the peer's limit breaks the response: the caller sees a transport error
//! instead of the status. Every layer that echoes input (this crate's errors, the state
//! crate's identifier errors, the server's argument errors) cuts it here, so one limit holds
//! everywhere.

/// The most bytes of a caller's value an error message repeats.
pub const MAX_ECHO_BYTES: usize = 80;

/// `value` as an error message may repeat it: unchanged up to [`MAX_ECHO_BYTES`] bytes, else
/// its longest prefix of whole characters within that length followed by `…`.
pub fn truncate_for_message(value: &str) -> String {
    if value.len() <= MAX_ECHO_BYTES {
        return value.to_owned();
    }
    let mut end = MAX_ECHO_BYTES;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", value.get(..end).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_kept() {
        assert_eq!(truncate_for_message(""), "");
        let exact = "x".repeat(MAX_ECHO_BYTES);
        assert_eq!(truncate_for_message(&exact), exact);
    }

    #[test]
    fn long_values_are_cut_with_an_ellipsis() {
        let cut = truncate_for_message(&"y".repeat(1 << 20));
        assert_eq!(cut, format!("{}…", "y".repeat(MAX_ECHO_BYTES)));
    }

    #[test]
    fn cuts_never_split_a_character() {
        // 'é' is two bytes: byte 80 falls inside the 41st one.
        let cut = truncate_for_message(&format!("a{}", "é".repeat(100)));
        assert_eq!(cut, format!("a{}…", "é".repeat(39)));
        let cut = truncate_for_message(&"🔑".repeat(100));
        assert_eq!(cut, format!("{}…", "🔑".repeat(20)));
    }
}
