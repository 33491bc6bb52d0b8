//! Character classes as Go's `unicode` package defines them, which is what BuildKit uses for
//! variable names and word splitting.

/// Go's `unicode.IsSpace`, used to split words after expansion.
///
/// Go's definition is the Unicode `White_Space` property, which is exactly Rust's
/// [`char::is_whitespace`].
pub(super) fn is_space(ch: char) -> bool {
    ch.is_whitespace()
}

/// Go's `unicode.IsLetter` (general category `L`), for the characters of a variable name.
///
/// Note to future maintainers: Rust's standard library has no general-category query, so
/// outside ASCII this uses the `Alphabetic` property, which is `L` plus letter numbers (`Nl`,
/// such as `Ⅻ`) and `Other_Alphabetic` (mostly combining vowel signs, such as Devanagari `ि`).
/// For those characters kiln reads a longer name than BuildKit. Both agree on every ASCII and
/// Latin-1 character and on every precomposed letter (Latin, Greek, Cyrillic, CJK, Hangul...).
pub(super) fn is_letter(ch: char) -> bool {
    if ch.is_ascii() {
        ch.is_ascii_alphabetic()
    } else {
        ch.is_alphabetic()
    }
}

/// Go's `unicode.IsDigit` (general category `Nd`, decimal digits in any script).
///
/// A name that starts with a digit is a positional parameter and takes only digits.
pub(super) fn is_digit(ch: char) -> bool {
    if ch.is_ascii() {
        return ch.is_ascii_digit();
    }
    let cp = u32::from(ch);
    DECIMAL_DIGITS
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Whether `ch` is a special parameter (`$@ $* $# $? $- $$ $! $0`), a one-character name.
///
/// See POSIX, Shell Command Language, 2.5.2. They are never set in a Dockerfile, so they
/// expand to nothing unless an env deliberately defines them.
pub(super) fn is_special_param(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// Non-ASCII ranges of general category `Nd` as of Unicode 15.0 (the version of Go's
/// `unicode` tables that BuildKit is built with), sorted, inclusive.
const DECIMAL_DIGITS: &[(u32, u32)] = &[
    (0x0660, 0x0669),
    (0x06F0, 0x06F9),
    (0x07C0, 0x07C9),
    (0x0966, 0x096F),
    (0x09E6, 0x09EF),
    (0x0A66, 0x0A6F),
    (0x0AE6, 0x0AEF),
    (0x0B66, 0x0B6F),
    (0x0BE6, 0x0BEF),
    (0x0C66, 0x0C6F),
    (0x0CE6, 0x0CEF),
    (0x0D66, 0x0D6F),
    (0x0DE6, 0x0DEF),
    (0x0E50, 0x0E59),
    (0x0ED0, 0x0ED9),
    (0x0F20, 0x0F29),
    (0x1040, 0x1049),
    (0x1090, 0x1099),
    (0x17E0, 0x17E9),
    (0x1810, 0x1819),
    (0x1946, 0x194F),
    (0x19D0, 0x19D9),
    (0x1A80, 0x1A89),
    (0x1A90, 0x1A99),
    (0x1B50, 0x1B59),
    (0x1BB0, 0x1BB9),
    (0x1C40, 0x1C49),
    (0x1C50, 0x1C59),
    (0xA620, 0xA629),
    (0xA8D0, 0xA8D9),
    (0xA900, 0xA909),
    (0xA9D0, 0xA9D9),
    (0xA9F0, 0xA9F9),
    (0xAA50, 0xAA59),
    (0xABF0, 0xABF9),
    (0xFF10, 0xFF19),
    (0x104A0, 0x104A9),
    (0x10D30, 0x10D39),
    (0x11066, 0x1106F),
    (0x110F0, 0x110F9),
    (0x11136, 0x1113F),
    (0x111D0, 0x111D9),
    (0x112F0, 0x112F9),
    (0x11450, 0x11459),
    (0x114D0, 0x114D9),
    (0x11650, 0x11659),
    (0x116C0, 0x116C9),
    (0x11730, 0x11739),
    (0x118E0, 0x118E9),
    (0x11950, 0x11959),
    (0x11C50, 0x11C59),
    (0x11D50, 0x11D59),
    (0x11DA0, 0x11DA9),
    (0x11F50, 0x11F59),
    (0x16A60, 0x16A69),
    (0x16AC0, 0x16AC9),
    (0x16B50, 0x16B59),
    (0x1D7CE, 0x1D7FF),
    (0x1E140, 0x1E149),
    (0x1E2F0, 0x1E2F9),
    (0x1E4F0, 0x1E4F9),
    (0x1E950, 0x1E959),
    (0x1FBF0, 0x1FBF9),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_decimal_digits_of_any_script_only() {
        for ch in ['0', '9', '٣', '७', '９', '𝟎'] {
            assert!(is_digit(ch), "{ch:?} is Nd");
        }
        // Superscripts, fractions, circled and Roman numerals are numbers but not `Nd`.
        for ch in ['a', '²', '½', '①', 'Ⅻ', '/', ':'] {
            assert!(!is_digit(ch), "{ch:?} is not Nd");
        }
    }

    #[test]
    fn digit_table_is_sorted_and_disjoint() {
        for pair in DECIMAL_DIGITS.windows(2) {
            assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:?}");
        }
    }

    #[test]
    fn letters_include_non_ascii_scripts() {
        for ch in ['a', 'Z', 'é', 'ª', 'µ', 'ж', '한', '字'] {
            assert!(is_letter(ch), "{ch:?} is a letter");
        }
        for ch in ['_', '1', '-', '.', ' ', '×', '÷'] {
            assert!(!is_letter(ch), "{ch:?} is not a letter");
        }
    }
}
