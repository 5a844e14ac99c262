//! JSON number literals written out as the exact plain decimal they denote,
//! so a custom field keeps what the client wrote and never a float's
//! rounding of it (README, "Numbers").
//!
//! The request body is parsed with serde_json's `arbitrary_precision`, so a
//! `Number` still holds its literal; this only rewrites the exponent form
//! (`1.5e-3` → `0.0015`) and a negative zero (`-0` → `0`). A literal without
//! an exponent comes back byte for byte (`1.50` stays `1.50`).

/// A literal whose plain form would be longer than the caller allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong {
    /// How many characters the plain form has (saturating for absurd
    /// exponents, which are never written out).
    pub chars: u64,
}

/// `literal` (the JSON number grammar: `-?digits[.digits][(e|E)[+-]digits]`)
/// as a plain decimal of at most `max_chars` characters. Anything that is
/// not such a literal is returned unchanged: serde_json has already checked
/// the grammar, and the caller's own rules decide what else to accept.
pub fn plain_decimal(literal: &str, max_chars: usize) -> Result<String, TooLong> {
    let Some(parts) = Parts::split(literal) else {
        return Ok(literal.to_owned());
    };
    if parts.exponent.is_none() && !parts.is_negative_zero() {
        return Ok(literal.to_owned());
    }
    parts.write_out(max_chars)
}

/// A number literal taken apart: the sign, the significand's digits without
/// their point, and where the point goes after scaling by the exponent.
struct Parts<'a> {
    negative: bool,
    integer: &'a str,
    fraction: &'a str,
    exponent: Option<i64>,
}

impl<'a> Parts<'a> {
    fn split(literal: &'a str) -> Option<Parts<'a>> {
        let (negative, unsigned) = match literal.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, literal),
        };
        let (significand, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], Some(parse_exponent(&unsigned[at + 1..])?)),
            None => (unsigned, None),
        };
        let (integer, fraction) = significand.split_once('.').unwrap_or((significand, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        (!integer.is_empty() && digits(integer) && digits(fraction)).then_some(Parts {
            negative,
            integer,
            fraction,
            exponent,
        })
    }

    fn is_zero(&self) -> bool {
        self.integer
            .bytes()
            .chain(self.fraction.bytes())
            .all(|b| b == b'0')
    }

    fn is_negative_zero(&self) -> bool {
        self.negative && self.is_zero()
    }

    fn write_out(&self, max_chars: usize) -> Result<String, TooLong> {
        // The digits, and how many of them stand before the point once the
        // exponent has moved it (negative: zeros come between point and digits).
        let mut digits: String = [self.integer, self.fraction].concat();
        let mut point = i128::try_from(self.integer.len()).unwrap_or(i128::MAX)
            + i128::from(self.exponent.unwrap_or(0));
        if self.is_zero() {
            // Zero keeps only the fraction digits still behind the point:
            // `0.00e1` is `0.0`, `0e5` is `0`.
            let fraction = (i128::try_from(digits.len()).unwrap_or(0) - point).max(0);
            digits = "0".to_owned();
            point = 1 - fraction;
        }
        // Leading zeros say nothing; dropping one moves the point with it.
        let significant = digits.trim_start_matches('0').len().max(1);
        let dropped = digits.len() - significant;
        digits.drain(..dropped);
        point -= i128::try_from(dropped).unwrap_or(0);

        let sign = usize::from(self.negative && !self.is_zero());
        let length = i128::try_from(digits.len()).unwrap_or(i128::MAX);
        let chars = if point <= 0 {
            2 - point + length // "0." then zeros, then the digits
        } else if point >= length {
            point // the digits, then zeros
        } else {
            length + 1 // the point among the digits
        } + i128::try_from(sign).unwrap_or(0);
        if chars > i128::try_from(max_chars).unwrap_or(i128::MAX) {
            return Err(TooLong {
                chars: u64::try_from(chars).unwrap_or(u64::MAX),
            });
        }

        // `chars` fits in `max_chars`, so every count below fits a usize.
        let point = usize::try_from(point.max(0)).unwrap_or(0);
        let leading_zeros = usize::try_from(chars).unwrap_or(0) - sign - digits.len();
        let mut out = String::with_capacity(usize::try_from(chars).unwrap_or(0));
        if sign == 1 {
            out.push('-');
        }
        if point == 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', leading_zeros - 2));
            out.push_str(&digits);
        } else if point >= digits.len() {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', point - digits.len()));
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
        Ok(out)
    }
}

/// An exponent's value, saturating: `1e99999999999999999999` is as
/// "too long" as `1e400`, and must not wrap around to a short number.
fn parse_exponent(text: &str) -> Option<i64> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let magnitude = digits
        .bytes()
        .try_fold(0_i64, |n, b| {
            n.checked_mul(10)?.checked_add(i64::from(b - b'0'))
        })
        .unwrap_or(i64::MAX / 2);
    Some(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    fn plain(literal: &str) -> String {
        plain_decimal(literal, 4096).expect("fits")
    }

    #[test]
    fn literals_without_an_exponent_are_kept_as_written() {
        for literal in [
            "0",
            "7",
            "-1.5",
            "1.50",
            "18446744073709551616",
            "12345678901234567.5",
            "0.000",
            "-12.0100",
        ] {
            assert_eq!(plain(literal), literal);
        }
    }

    #[test]
    fn exponents_are_written_out() {
        for (literal, written) in [
            ("1e2", "100"),
            ("1E+2", "100"),
            ("1.5e-3", "0.0015"),
            ("-1.5e-3", "-0.0015"),
            ("1.50e1", "15.0"),
            ("12e-5", "0.00012"),
            ("123.456e2", "12345.6"),
            ("123.456e3", "123456"),
            ("1.0e-1", "0.10"),
            ("0.0015e2", "0.15"),
            ("0e5", "0"),
            ("0.00e1", "0.0"),
            ("5e0", "5"),
        ] {
            assert_eq!(plain(literal), written, "{literal}");
        }
    }

    #[test]
    fn negative_zero_loses_its_sign() {
        assert_eq!(plain("-0"), "0");
        assert_eq!(plain("-0.0"), "0.0");
        assert_eq!(plain("-0e7"), "0");
    }

    #[test]
    fn a_plain_form_past_the_limit_is_refused_without_being_built() {
        assert_eq!(plain_decimal("1e400", 4096).map(|s| s.len()), Ok(401));
        assert_eq!(plain_decimal("1e4096", 4096), Err(TooLong { chars: 4097 }));
        assert_eq!(plain_decimal("1e-4096", 4096), Err(TooLong { chars: 4098 }));
        assert!(plain_decimal("-1e999999999999999999999", 4096).is_err());
        assert!(plain_decimal("1e-999999999999999999999", 4096).is_err());
        assert_eq!(
            plain_decimal("123456", 5),
            Ok("123456".into()),
            "no exponent: no rewrite"
        );
    }

    /// A JSON number literal: sign, integer part without superfluous leading
    /// zeros, optional fraction, optional exponent.
    fn literal() -> impl Strategy<Value = String> {
        (
            any::<bool>(),
            "(0|[1-9][0-9]{0,25})",
            proptest::option::of("[0-9]{1,25}"),
            proptest::option::of(("[eE]", "[+-]?", 0_u32..600)),
        )
            .prop_map(|(negative, integer, fraction, exponent)| {
                let mut text = String::new();
                if negative {
                    text.push('-');
                }
                text.push_str(&integer);
                if let Some(fraction) = fraction {
                    text.push('.');
                    text.push_str(&fraction);
                }
                if let Some((e, sign, value)) = exponent {
                    text.push_str(&format!("{e}{sign}{value}"));
                }
                text
            })
    }

    proptest! {
        /// Whatever the literal, the plain form denotes exactly the same
        /// number (checked with an arbitrary-precision decimal), is plain
        /// (digits, at most one point, a sign only when not zero), and is
        /// the literal itself when that had no exponent and was not -0.
        #[test]
        fn the_plain_form_is_the_same_number(literal in literal()) {
            let written = plain_decimal(&literal, 100_000).expect("short enough");
            let exact = |s: &str| bigdecimal::BigDecimal::from_str(s).expect("decimal");
            prop_assert_eq!(exact(&written), exact(&literal));
            let unsigned = written.strip_prefix('-').unwrap_or(&written);
            prop_assert!(unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            prop_assert!(unsigned.matches('.').count() <= 1);
            prop_assert!(!unsigned.starts_with('.') && !unsigned.ends_with('.'));
            prop_assert!(!unsigned.starts_with("00"));
            if written.starts_with('-') {
                prop_assert!(unsigned.bytes().any(|b| (b'1'..=b'9').contains(&b)));
            }
            let has_exponent = literal.contains(['e', 'E']);
            let negative_zero = literal.starts_with('-')
                && !literal.split(['e', 'E']).next().unwrap_or("").bytes().any(|b| (b'1'..=b'9').contains(&b));
            if !has_exponent && !negative_zero {
                prop_assert_eq!(&written, &literal);
            }
        }

        /// The limit is exact: a plain form of n characters passes a limit
        /// of n and is refused (with its length) under a limit of n - 1.
        #[test]
        fn the_limit_counts_the_plain_form(literal in literal()) {
            let written = plain_decimal(&literal, 100_000).expect("short enough");
            let n = written.chars().count();
            prop_assert_eq!(plain_decimal(&literal, n).map(|s| s.len()), Ok(n));
            let has_exponent = literal.contains(['e', 'E']);
            if has_exponent {
                prop_assert_eq!(plain_decimal(&literal, n - 1), Err(TooLong { chars: n as u64 }));
            }
        }
    }
}
