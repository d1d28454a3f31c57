//! Exact comparison of decimal128 values with each other and with the other numbers.
//!
//! MongoDB compares a decimal128 with an integer exactly, and with a double after
//! rounding the double to 34 significant decimal digits (the precision of decimal128).
//! Decimals are read from their IEEE 754-2008 "binary integer decimal" encoding: a sign, a
//! coefficient of at most 34 digits and a power of ten.

use std::cmp::Ordering;

/// A number as compared with a decimal128: finite (sign, coefficient, exponent) or special.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exact {
    /// Not a number: below every other number, equal to itself.
    NaN,
    /// Positive or negative infinity.
    Infinity { negative: bool },
    /// `(-1)^negative × coefficient × 10^exponent`.
    Finite {
        negative: bool,
        coefficient: u128,
        exponent: i32,
    },
}

/// The exponent bias of decimal128.
const BIAS: i32 = 6176;

/// Coefficients above this are not canonical and read as zero.
const MAX_COEFFICIENT: u128 = 10u128.pow(34) - 1;

impl Exact {
    /// A decimal128 from its 16 bytes (little-endian).
    pub fn from_decimal(d: &bson::Decimal128) -> Exact {
        let bits = u128::from_le_bytes(d.bytes());
        let negative = bits >> 127 == 1;
        let combination = (bits >> 122) & 0x1f;
        if combination == 0x1f {
            return Exact::NaN;
        }
        if combination == 0x1e {
            return Exact::Infinity { negative };
        }
        let (exponent, coefficient) = if (bits >> 125) & 0b11 == 0b11 {
            // The coefficient's implied leading bits are 100: always above 10^34 - 1.
            (((bits >> 111) & 0x3fff) as i32, 0)
        } else {
            (((bits >> 113) & 0x3fff) as i32, bits & ((1u128 << 113) - 1))
        };
        let coefficient = if coefficient > MAX_COEFFICIENT {
            0
        } else {
            coefficient
        };
        Exact::Finite {
            negative,
            coefficient,
            exponent: exponent - BIAS,
        }
    }

    /// An integer, exactly.
    pub fn from_int(i: i64) -> Exact {
        Exact::Finite {
            negative: i < 0,
            coefficient: u128::from(i.unsigned_abs()),
            exponent: 0,
        }
    }

    /// A double rounded to 34 significant digits, as MongoDB compares it with a decimal.
    pub fn from_double(f: f64) -> Exact {
        if f.is_nan() {
            return Exact::NaN;
        }
        if f.is_infinite() {
            return Exact::Infinity { negative: f < 0.0 };
        }
        if f == 0.0 {
            return Exact::Finite {
                negative: false,
                coefficient: 0,
                exponent: 0,
            };
        }
        // Rust formats the double's exact binary value correctly rounded (half to even):
        // `d.ddd…e±x` with 34 significant digits.
        let text = format!("{:.33e}", f.abs());
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let coefficient: u128 = digits.parse().unwrap_or(0);
        let exponent: i32 = exponent.parse().unwrap_or(0);
        Exact::Finite {
            negative: f < 0.0,
            coefficient,
            exponent: exponent - 33,
        }
    }
}

/// Numeric order: NaN below everything, then negative infinity, the finite values, and
/// positive infinity; finite values by their exact value (`1.0` equals `1.00`, and `-0`
/// equals `0`).
pub fn compare(a: Exact, b: Exact) -> Ordering {
    use Exact::*;
    match (a, b) {
        (NaN, NaN) => Ordering::Equal,
        (NaN, _) => Ordering::Less,
        (_, NaN) => Ordering::Greater,
        (Infinity { negative: x }, Infinity { negative: y }) => y.cmp(&x),
        (Infinity { negative }, _) => {
            if negative {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (_, Infinity { negative }) => {
            if negative {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (
            Finite {
                negative: na,
                coefficient: ca,
                exponent: ea,
            },
            Finite {
                negative: nb,
                coefficient: cb,
                exponent: eb,
            },
        ) => {
            let sign = |negative: bool, coefficient: u128| match (coefficient, negative) {
                (0, _) => 0,
                (_, true) => -1,
                (_, false) => 1,
            };
            let (sa, sb) = (sign(na, ca), sign(nb, cb));
            if sa != sb || sa == 0 {
                return sa.cmp(&sb);
            }
            let magnitude = compare_magnitudes(ca, ea, cb, eb);
            if sa < 0 {
                magnitude.reverse()
            } else {
                magnitude
            }
        }
    }
}

/// Compares `ca × 10^ea` with `cb × 10^eb`, both coefficients non-zero.
fn compare_magnitudes(ca: u128, ea: i32, cb: u128, eb: i32) -> Ordering {
    let (ca, ea) = strip_zeros(ca, ea);
    let (cb, eb) = strip_zeros(cb, eb);
    // The position of the leading digit decides, unless it is the same for both.
    let (la, lb) = (ea + digits(ca) as i32, eb + digits(cb) as i32);
    if la != lb {
        return la.cmp(&lb);
    }
    // Same leading position: align both to the same number of digits (at most 34 each,
    // so at most 34 digits after alignment) and compare as integers.
    let (da, db) = (digits(ca), digits(cb));
    let width = da.max(db);
    let scale = |c: u128, d: u32| c * 10u128.pow(width - d);
    scale(ca, da).cmp(&scale(cb, db))
}

fn strip_zeros(mut c: u128, mut e: i32) -> (u128, i32) {
    while c.is_multiple_of(10) {
        c /= 10;
        e += 1;
    }
    (c, e)
}

fn digits(mut c: u128) -> u32 {
    let mut n = 1;
    while c >= 10 {
        c /= 10;
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(text: &str) -> Exact {
        Exact::from_decimal(&bson::Decimal128::from_str(text).unwrap())
    }

    #[test]
    fn decimals_decode() {
        assert_eq!(
            dec("9007199254740993"),
            Exact::Finite {
                negative: false,
                coefficient: 9_007_199_254_740_993,
                exponent: 0
            }
        );
        assert_eq!(
            dec("-1.25"),
            Exact::Finite {
                negative: true,
                coefficient: 125,
                exponent: -2
            }
        );
    }

    #[test]
    fn decimals_compare_exactly() {
        assert_eq!(
            compare(dec("9007199254740993"), dec("9007199254740992")),
            Ordering::Greater
        );
        assert_eq!(
            compare(
                dec("1.0000000000000000000000000000002"),
                dec("1.0000000000000000000000000000001")
            ),
            Ordering::Greater
        );
        assert_eq!(compare(dec("1.0"), dec("1.00")), Ordering::Equal);
        assert_eq!(compare(dec("-0"), dec("0")), Ordering::Equal);
        assert_eq!(compare(dec("-2"), dec("-10")), Ordering::Greater);
        assert_eq!(compare(dec("NaN"), dec("-Infinity")), Ordering::Less);
        assert_eq!(compare(dec("Infinity"), dec("1E+6000")), Ordering::Greater);
        assert_eq!(compare(dec("1E+3"), dec("999")), Ordering::Greater);
    }

    #[test]
    fn integers_and_doubles_compare_with_decimals() {
        assert_eq!(
            compare(
                dec("9007199254740993"),
                Exact::from_int(9_007_199_254_740_993)
            ),
            Ordering::Equal
        );
        assert_eq!(
            compare(dec("0.5"), Exact::from_double(0.5)),
            Ordering::Equal
        );
        // 0.1 as a double is slightly above one tenth.
        assert_eq!(compare(dec("0.1"), Exact::from_double(0.1)), Ordering::Less);
        assert_eq!(compare(dec("-3"), Exact::from_double(-2.5)), Ordering::Less);
        assert_eq!(
            compare(Exact::from_double(f64::NAN), dec("NaN")),
            Ordering::Equal
        );
    }
}
