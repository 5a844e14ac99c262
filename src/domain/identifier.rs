use super::Source;

/// A contact's identifier (its phone number on WhatsApp) as given at
/// creation, with what lookups and uniqueness compare it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identifier {
    /// The spelling the client gave, surrounding white space removed.
    pub raw: String,
    /// Only the digits: `+39 333-12 34` and `393331234` are one number.
    pub digits: String,
    /// What decides "same contact" within a channel: the digits on WhatsApp,
    /// where the identifier is a phone number; the exact identifier elsewhere.
    pub key: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum IdentifierError {
    Blank,
    NoDigits,
}

impl Identifier {
    pub fn parse(text: &str, source: Source) -> Result<Self, IdentifierError> {
        let raw = text.trim();
        if raw.is_empty() {
            return Err(IdentifierError::Blank);
        }
        let digits = digits_of(raw);
        let key = match source {
            Source::Whatsapp if digits.is_empty() => return Err(IdentifierError::NoDigits),
            Source::Whatsapp => digits.clone(),
            _ => raw.to_owned(),
        };
        Ok(Identifier {
            raw: raw.to_owned(),
            digits,
            key,
        })
    }
}

/// The digits of a phone number, in order.
pub fn digits_of(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsapp_numbers_compare_by_digits() {
        let a = Identifier::parse("+39 333-12 34", Source::Whatsapp).expect("valid");
        let b = Identifier::parse("393331234", Source::Whatsapp).expect("valid");
        assert_eq!(a.key, b.key);
        assert_eq!(a.raw, "+39 333-12 34");
        assert_eq!(a.digits, "393331234");
    }

    #[test]
    fn other_sources_compare_exactly() {
        let a = Identifier::parse(" someone.42 ", Source::Telegram).expect("valid");
        assert_eq!(a.key, "someone.42");
        assert_eq!(a.digits, "42");
    }

    #[test]
    fn rejects_blank_and_digitless_whatsapp() {
        assert_eq!(
            Identifier::parse("   ", Source::Facebook),
            Err(IdentifierError::Blank)
        );
        assert_eq!(
            Identifier::parse("call me", Source::Whatsapp),
            Err(IdentifierError::NoDigits)
        );
    }
}
