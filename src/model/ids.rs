//! The rule for user ids and call ids: short, and made of `A-Z a-z 0-9 _ . @ -` only (as
//! TUICallKit's user ids), so an id can never carry a control character, a direction override,
//! a look-alike letter or a payload.

/// The longest user id, in bytes.
pub const MAX_USER_ID_BYTES: usize = 32;
/// The longest call id, in bytes.
pub const MAX_CALL_ID_BYTES: usize = 64;

fn allowed(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '@' | '-')
}

fn check(what: &str, id: &str, max_bytes: usize) -> Result<(), String> {
    if id.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if id.len() > max_bytes {
        return Err(format!(
            "the {what} is {} bytes long; at most {max_bytes} are allowed",
            id.len()
        ));
    }
    if let Some(bad) = id.chars().find(|character| !allowed(*character)) {
        return Err(format!(
            "the {what} holds {}, but only letters, digits and _ . @ - are allowed",
            bad.escape_default()
        ));
    }
    Ok(())
}

/// Checks a user id against the rule; the reason when it breaks it.
pub fn check_user_id(user_id: &str) -> Result<(), String> {
    check("user id", user_id, MAX_USER_ID_BYTES)
}

/// Checks a call id against the rule; the reason when it breaks it.
pub fn check_call_id(call_id: &str) -> Result<(), String> {
    check("call id", call_id, MAX_CALL_ID_BYTES)
}

/// A piece of untrusted text fit to quote in an error: at most `max_chars` characters, control
/// and formatting characters escaped.
pub fn quote_untrusted(text: &str, max_chars: usize) -> String {
    let mut quoted: String = text
        .chars()
        .take(max_chars)
        .flat_map(|character| {
            let safe = character.is_ascii_graphic() || character == ' ';
            let shown: Vec<char> = if safe {
                vec![character]
            } else {
                character.escape_unicode().collect()
            };
            shown
        })
        .collect();
    if text.chars().count() > max_chars {
        quoted.push('…');
    }
    quoted
}

#[cfg(test)]
mod tests {
    use super::{check_call_id, check_user_id, quote_untrusted};

    #[test]
    fn ids_are_short_and_plain() {
        for good in ["alice", "bob.smith@example", "user_01-a", "c-1f2e"] {
            assert_eq!(check_user_id(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "a b",
            "nul\0",
            "line\nbreak",
            "right\u{202e}left",
            "аlice", // a Cyrillic a
            &"x".repeat(33),
        ] {
            assert!(check_user_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_call_id(&"c".repeat(64)).is_ok());
        assert!(check_call_id(&"c".repeat(65)).is_err());
    }

    #[test]
    fn untrusted_text_is_cut_and_escaped() {
        assert_eq!(quote_untrusted("teleport", 32), "teleport");
        assert_eq!(quote_untrusted(&"x".repeat(40), 4), "xxxx…");
        assert_eq!(quote_untrusted("a\u{202e}b", 8), "a\\u{202e}b");
    }
}
