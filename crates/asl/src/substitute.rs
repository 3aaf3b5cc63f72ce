//! `${Name}` placeholders, filled the way AWS SAM's DefinitionSubstitutions fill them.

use std::collections::BTreeMap;

use crate::error::AslError;

/// Replace every `${Name}` placeholder in an ASL text (as AWS SAM DefinitionSubstitutions does)
/// before parsing. An unresolved placeholder is an error naming it. `${!Name}` is left as the
/// literal `${Name}`, as in CloudFormation's `Fn::Sub`. Values go in verbatim (not JSON-escaped).
pub fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, AslError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let Some(close) = after.find('}') else {
            return Err(AslError::UnterminatedPlaceholder(
                text.len() - rest.len() + at,
            ));
        };
        let name = &after[..close];
        if let Some(literal) = name.strip_prefix('!') {
            out.push_str("${");
            out.push_str(literal);
            out.push('}');
        } else {
            let value = vars
                .get(name)
                .ok_or_else(|| AslError::UnresolvedPlaceholder(name.to_owned()))?;
            out.push_str(value);
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        BTreeMap::from([
            (
                "FnArn".to_owned(),
                "arn:aws:lambda:eu-west-1:1:function:f".to_owned(),
            ),
            ("Other".to_owned(), "x".to_owned()),
        ])
    }

    #[test]
    fn fills_every_placeholder() {
        let text = r#"{"Resource": "${FnArn}", "B": "${Other}-${Other}", "C": "$.not ${!Kept}"}"#;
        assert_eq!(
            substitute(text, &vars()).unwrap(),
            r#"{"Resource": "arn:aws:lambda:eu-west-1:1:function:f", "B": "x-x", "C": "$.not ${Kept}"}"#
        );
        assert_eq!(
            substitute("no placeholders $ {", &vars()).unwrap(),
            "no placeholders $ {"
        );
    }

    #[test]
    fn a_missing_placeholder_is_named() {
        let err = substitute(r#"{"Resource": "${MissingArn}"}"#, &vars()).unwrap_err();
        assert!(matches!(&err, AslError::UnresolvedPlaceholder(n) if n == "MissingArn"));
        assert_eq!(err.to_string(), "unresolved placeholder ${MissingArn}");
        let err = substitute("abc ${Open", &vars()).unwrap_err();
        assert_eq!(err.to_string(), "unterminated placeholder at byte 4");
    }
}
