//! Text a plugin writes reaches logs and terminals: it must be one printable line, or a plugin
//! could forge lines ("policy x: allow") or drive the terminal with escape sequences.

/// Characters that reorder or hide text on screen without being control characters.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}'   // zero-width spaces and joiners, LTR/RTL marks
        | '\u{2028}' | '\u{2029}' // line and paragraph separators
        | '\u{202A}'..='\u{202E}' // bidirectional embeddings and overrides
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' // bidirectional isolates
        | '\u{FEFF}')
}

fn is_unprintable(c: char) -> bool {
    c.is_control() || is_invisible_format(c)
}

/// A reason, warning or version is one printable line of at most `max` bytes, not blank.
pub fn check_entry(text: &str, max: usize) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("is empty".to_owned());
    }
    if text.len() > max {
        return Err(format!(
            "is {} bytes long, over the limit of {max}",
            text.len()
        ));
    }
    if let Some(c) = text.chars().find(|c| is_unprintable(*c)) {
        return Err(format!(
            "contains {}, which is not printable on one line",
            c.escape_unicode()
        ));
    }
    Ok(())
}

/// `text` made safe to show on one line: unprintable characters escaped, cut at `max` bytes.
pub fn one_line(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.trim().chars() {
        let piece: String = match c {
            '\n' | '\r' | '\t' => " ".to_owned(),
            c if is_unprintable(c) => c.escape_unicode().to_string(),
            c => c.to_string(),
        };
        if out.len() + piece.len() > max {
            out.push('…');
            break;
        }
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_printable_line_passes() {
        assert!(check_entry("snapshot x is 80h old, over 24h", 100).is_ok());
        assert!(check_entry("données résidentes: eu-west-1 ✓", 100).is_ok());
    }

    #[test]
    fn forged_lines_escapes_and_blanks_are_refused() {
        for bad in [
            "",
            "   ",
            "ok\npolicy naming: allow",
            "carriage\rreturn",
            "\u{1b}[2Jcleared",
            "bell\u{7}",
            "rtl \u{202E}wolla",
            "c1 \u{9b}",
        ] {
            assert!(check_entry(bad, 100).is_err(), "{bad:?} passed");
        }
        assert!(check_entry(&"x".repeat(101), 100).is_err());
    }

    #[test]
    fn shown_on_one_line() {
        assert_eq!(
            one_line("panicked at src/lib.rs:3:9:\nboom\n", 100),
            "panicked at src/lib.rs:3:9: boom"
        );
        assert_eq!(one_line("\u{1b}[31mred", 100), "\\u{1b}[31mred");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
