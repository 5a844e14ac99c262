/// A syntactic check of an e-mail address: one `@`, a plausible local part
/// and a dotted domain of letters, digits and hyphens. It does not try to
/// accept every address RFC 5321 allows, only to refuse obvious mistakes.
pub fn is_valid_email(text: &str) -> bool {
    if text.len() > 254 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = text.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !local.chars().any(|c| "()<>[]\\,;:\"".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::is_valid_email;

    #[test]
    fn accepts_ordinary_addresses() {
        for ok in ["jane.doe@email.com", "a+b@sub.example.co.uk", "x@mañana.es"] {
            assert!(is_valid_email(ok), "{ok}");
        }
    }

    #[test]
    fn refuses_mistakes() {
        for bad in [
            "",
            "jane",
            "jane@",
            "@email.com",
            "jane@email",
            "jane doe@email.com",
            "jane@@email.com",
            "jane@email..com",
            ".jane@email.com",
            "jane@-email.com",
        ] {
            assert!(!is_valid_email(bad), "{bad}");
        }
    }
}
