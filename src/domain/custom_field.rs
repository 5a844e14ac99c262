use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use time::Date;
use time::macros::format_description;

use super::fold_case;

/// The six kinds of custom field an account can define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CustomFieldType {
    Text,
    Email,
    Number,
    Date,
    Dropdown,
    Checkbox,
}

impl CustomFieldType {
    pub const ALL: [CustomFieldType; 6] = [
        CustomFieldType::Text,
        CustomFieldType::Email,
        CustomFieldType::Number,
        CustomFieldType::Date,
        CustomFieldType::Dropdown,
        CustomFieldType::Checkbox,
    ];

    pub const EXPECTED: &'static str = "one of text, email, number, date, dropdown, checkbox";

    pub const fn as_str(self) -> &'static str {
        match self {
            CustomFieldType::Text => "text",
            CustomFieldType::Email => "email",
            CustomFieldType::Number => "number",
            CustomFieldType::Date => "date",
            CustomFieldType::Dropdown => "dropdown",
            CustomFieldType::Checkbox => "checkbox",
        }
    }

    /// Dropdowns and checkboxes choose from a list of options.
    pub const fn has_options(self) -> bool {
        matches!(self, CustomFieldType::Dropdown | CustomFieldType::Checkbox)
    }
}

impl FromStr for CustomFieldType {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        CustomFieldType::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or(())
    }
}

impl serde::Serialize for CustomFieldType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for CustomFieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value that fits its field, in the string form the API shows and the
/// store keeps (checkboxes as a JSON-encoded array of option labels).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFieldValue(String);

impl CustomFieldValue {
    /// Checks `value` against a field of type `kind` with `options`, and
    /// returns its canonical form, or what is wrong. A JSON number is kept
    /// as the exact decimal the client wrote ([`super::decimal`]).
    pub fn parse(
        kind: CustomFieldType,
        options: &[String],
        value: &Value,
    ) -> Result<Self, ValueProblem> {
        let text = match (kind, value) {
            (CustomFieldType::Text, Value::String(s)) => s.clone(),
            (CustomFieldType::Text | CustomFieldType::Number, Value::Number(n)) => {
                exact_decimal(n)?
            }
            (CustomFieldType::Text, _) => return Err("must be a string".into()),

            (CustomFieldType::Email, Value::String(s))
                if super::email::is_valid_email(s.trim()) =>
            {
                s.trim().to_owned()
            }
            (CustomFieldType::Email, _) => return Err("must be a valid e-mail address".into()),

            (CustomFieldType::Number, Value::String(s)) if is_decimal(s.trim()) => {
                s.trim().to_owned()
            }
            (CustomFieldType::Number, _) => {
                return Err("must be a number, or a string holding a decimal number".into());
            }

            (CustomFieldType::Date, Value::String(s)) if is_calendar_date(s.trim()) => {
                s.trim().to_owned()
            }
            (CustomFieldType::Date, _) => {
                return Err("must be a date written YYYY-MM-DD that exists on the calendar".into());
            }

            (CustomFieldType::Dropdown, Value::String(s)) => match find_option(options, s) {
                Some(option) => option.to_owned(),
                None => return Err(format!("must be one of: {}", options.join(", ")).into()),
            },
            (CustomFieldType::Dropdown, _) => {
                return Err(format!("must be one of: {}", options.join(", ")).into());
            }

            (CustomFieldType::Checkbox, value) => encode_checked(&checked_options(options, value)?),
        };
        Ok(CustomFieldValue(text))
    }

    /// Wraps a value read back from storage, where it was validated on write.
    pub fn from_stored(text: String) -> Self {
        CustomFieldValue(text)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Why a value does not fit its field: `too_long` for a number whose exact
/// decimal is past the value limit, `invalid_custom_field_value` for all
/// else, with a sentence that completes "custom field 'x' (type) ...".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueProblem {
    pub code: &'static str,
    pub message: String,
}

impl From<String> for ValueProblem {
    fn from(message: String) -> Self {
        ValueProblem {
            code: "invalid_custom_field_value",
            message,
        }
    }
}

impl From<&str> for ValueProblem {
    fn from(message: &str) -> Self {
        ValueProblem::from(message.to_owned())
    }
}

impl fmt::Display for ValueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// A JSON number as its plain decimal, refused when that is longer than
/// any value may be (`1e5000` written out).
fn exact_decimal(number: &serde_json::Number) -> Result<String, ValueProblem> {
    let limit = super::contact::MAX_FIELD_VALUE_CHARS;
    super::decimal::plain_decimal(number.as_str(), limit).map_err(|too_long| ValueProblem {
        code: "too_long",
        message: format!(
            "is {} characters long when written out; at most {limit} are allowed",
            too_long.chars
        ),
    })
}

/// The labels of a stored checkbox value, for the typed metadata view.
pub fn decode_checked(stored: &str) -> Vec<String> {
    serde_json::from_str(stored).unwrap_or_default()
}

/// `["A", "B"]`: the spelling Callbell shows checkbox values in.
fn encode_checked(labels: &[&str]) -> String {
    let items: Vec<String> = labels
        .iter()
        .map(|label| Value::String((*label).to_owned()).to_string())
        .collect();
    format!("[{}]", items.join(", "))
}

/// A checkbox value is an array of options; the JSON-encoded string form the
/// API itself shows is accepted too, so a value read can be written back.
fn checked_options<'o>(options: &'o [String], value: &Value) -> Result<Vec<&'o str>, String> {
    let must_be = || {
        format!(
            "must be an array of distinct options from: {}",
            options.join(", ")
        )
    };
    let decoded;
    let items = match value {
        Value::Array(items) => items,
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => {
                decoded = items;
                &decoded
            }
            _ => return Err(must_be()),
        },
        _ => return Err(must_be()),
    };
    let mut checked: Vec<&str> = Vec::with_capacity(items.len());
    for item in items {
        let option = item
            .as_str()
            .and_then(|label| find_option(options, label))
            .ok_or_else(must_be)?;
        if checked.contains(&option) {
            return Err(format!("lists '{option}' twice; {}", must_be()));
        }
        checked.push(option);
    }
    Ok(checked)
}

/// Options match case-insensitively and are stored in their defined spelling.
fn find_option<'o>(options: &'o [String], label: &str) -> Option<&'o str> {
    let wanted = fold_case(label);
    options
        .iter()
        .find(|o| fold_case(o) == wanted)
        .map(String::as_str)
}

/// `-12`, `3.50`, `+7`, `.5`: an optional sign, digits, an optional fraction.
fn is_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let has_digits = !whole.is_empty() || fraction.is_some_and(|f| !f.is_empty());
    has_digits && all_digits(whole) && fraction.is_none_or(|f| !f.is_empty() && all_digits(f))
}

fn is_calendar_date(text: &str) -> bool {
    let format = format_description!("[year]-[month]-[day]");
    text.len() == 10 && Date::parse(text, &format).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(kind: CustomFieldType, value: Value) -> Result<String, String> {
        let options = vec![
            "Dark Mode".to_owned(),
            "Notifications".to_owned(),
            "Analytics".to_owned(),
        ];
        CustomFieldValue::parse(kind, &options, &value)
            .map(CustomFieldValue::into_string)
            .map_err(|problem| problem.message)
    }

    #[test]
    fn text_takes_strings_and_numbers() {
        assert_eq!(
            parse(CustomFieldType::Text, json!("98765430")),
            Ok("98765430".into())
        );
        assert_eq!(parse(CustomFieldType::Text, json!(42)), Ok("42".into()));
        assert!(parse(CustomFieldType::Text, json!(true)).is_err());
        assert!(parse(CustomFieldType::Text, json!(["a"])).is_err());
    }

    #[test]
    fn numbers_are_kept_as_decimal_strings() {
        assert_eq!(parse(CustomFieldType::Number, json!(123)), Ok("123".into()));
        assert_eq!(
            parse(CustomFieldType::Number, json!(-1.5)),
            Ok("-1.5".into())
        );
        assert_eq!(
            parse(CustomFieldType::Number, json!(" 3.50 ")),
            Ok("3.50".into())
        );
        for bad in [
            json!("12a"),
            json!("1.2.3"),
            json!(""),
            json!("."),
            json!("1e5"),
            json!(false),
        ] {
            assert!(
                parse(CustomFieldType::Number, bad.clone()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn dates_must_exist() {
        assert_eq!(
            parse(CustomFieldType::Date, json!("2024-02-29")),
            Ok("2024-02-29".into())
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "01/02/2024",
            "2024-02-29T00:00:00Z",
        ] {
            assert!(parse(CustomFieldType::Date, json!(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_are_checked() {
        assert_eq!(
            parse(CustomFieldType::Email, json!("a@b.co")),
            Ok("a@b.co".into())
        );
        assert!(parse(CustomFieldType::Email, json!("not an email")).is_err());
    }

    #[test]
    fn dropdown_takes_one_option_in_its_canonical_spelling() {
        assert_eq!(
            parse(CustomFieldType::Dropdown, json!("dark mode")),
            Ok("Dark Mode".into())
        );
        assert!(parse(CustomFieldType::Dropdown, json!("Light Mode")).is_err());
        assert!(parse(CustomFieldType::Dropdown, json!(["Dark Mode"])).is_err());
    }

    #[test]
    fn checkbox_takes_distinct_options() {
        assert_eq!(
            parse(CustomFieldType::Checkbox, json!(["Analytics", "dark mode"])),
            Ok(r#"["Analytics", "Dark Mode"]"#.into())
        );
        assert_eq!(parse(CustomFieldType::Checkbox, json!([])), Ok("[]".into()));
        assert_eq!(
            parse(CustomFieldType::Checkbox, json!(r#"["Analytics"]"#)),
            Ok(r#"["Analytics"]"#.into())
        );
        assert!(parse(CustomFieldType::Checkbox, json!(["Analytics", "Analytics"])).is_err());
        assert!(parse(CustomFieldType::Checkbox, json!(["Telepathy"])).is_err());
        assert!(parse(CustomFieldType::Checkbox, json!("Analytics")).is_err());
    }

    #[test]
    fn checkbox_values_decode_back_to_labels() {
        assert_eq!(
            decode_checked(r#"["A \"quoted\"", "B"]"#),
            vec!["A \"quoted\"", "B"]
        );
    }

    /// Days in a month by the Gregorian rule, written out independently
    /// of the `time` crate the parser uses.
    fn days_in(year: i32, month: u32) -> u32 {
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        }
    }

    proptest::proptest! {
        /// `YYYY-MM-DD` is accepted exactly when the day exists, and kept
        /// as written (trimmed).
        #[test]
        fn a_date_is_accepted_exactly_when_it_exists(
            year in 1_i32..=9999, month in 0_u32..=13, day in 0_u32..=32, pad in " {0,2}"
        ) {
            let text = format!("{pad}{year:04}-{month:02}-{day:02}{pad}");
            let exists = (1..=12).contains(&month) && day >= 1 && day <= days_in(year, month);
            let parsed = parse(CustomFieldType::Date, json!(text));
            proptest::prop_assert_eq!(parsed.is_ok(), exists, "{}", text);
            if exists {
                proptest::prop_assert_eq!(parsed, Ok(text.trim().to_owned()));
            }
        }

        /// Any other shape of text is refused: a date is ten characters of
        /// digits and dashes and nothing else.
        #[test]
        fn other_text_is_not_a_date(text in "[0-9/ .T:Z-]{0,14}") {
            let trimmed = text.trim();
            let shaped = trimmed.len() == 10
                && trimmed.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
            if !shaped {
                proptest::prop_assert!(parse(CustomFieldType::Date, json!(text)).is_err(), "{}", text);
            }
        }

        /// A JSON number in a number field is stored as its exact plain
        /// decimal, whatever its size or form.
        #[test]
        fn a_number_field_keeps_the_exact_value(
            integer in "(0|[1-9][0-9]{0,30})", fraction in "[0-9]{0,20}", exponent in -40_i32..40
        ) {
            let literal = if fraction.is_empty() {
                format!("{integer}e{exponent}")
            } else {
                format!("{integer}.{fraction}e{exponent}")
            };
            let value: Value = serde_json::from_str(&literal).expect("a JSON number");
            let stored = parse(CustomFieldType::Number, value).expect("fits");
            let exact = |s: &str| s.parse::<bigdecimal::BigDecimal>().expect("decimal");
            proptest::prop_assert_eq!(exact(&stored), exact(&literal));
            proptest::prop_assert!(!stored.contains(['e', 'E']));
        }
    }
}
