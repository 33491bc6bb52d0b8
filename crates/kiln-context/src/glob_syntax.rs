//! The syntax check `patternmatcher.New` performs with Go's `filepath.Match(pattern, ".")`.
//!
//! `New` calls `filepath.Match` only for its error, so kiln needs exactly the set of patterns
//! that Go calls malformed, not Go's matching. Patterns that pass here may still fail later:
//! matching uses a regular expression built from the pattern, and Go's regexp compiler is
//! stricter in places (`[Local-Only]` has the empty range `l-O`).

/// Reports whether Go's `filepath.Match` (on Unix) accepts `pattern` as well formed.
///
/// Rejected: a trailing `\`, an unclosed `[`, a class that starts with `]` or `-` (`[]a]`,
/// `[-]`), a range with a missing end (`[x-]`), and a range followed by `-` (`[a-b-c]`).
/// Go checks every chunk of the pattern even once the match has failed, so the name the
/// pattern is matched against does not matter.
pub(crate) fn is_valid_glob(pattern: &str) -> bool {
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' => {
                if i + 1 == chars.len() {
                    return false;
                }
                i += 2;
            }
            '[' => {
                i += 1;
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                let mut ranges = 0;
                loop {
                    if chars.get(i) == Some(&']') && ranges > 0 {
                        i += 1;
                        break;
                    }
                    let Some(next) = class_char(&chars, i) else {
                        return false;
                    };
                    i = next;
                    if chars[i] == '-' {
                        let Some(next) = class_char(&chars, i + 1) else {
                            return false;
                        };
                        i = next;
                    }
                    ranges += 1;
                }
            }
            _ => i += 1,
        }
    }
    true
}

/// Reads one (possibly escaped) character of a class at `i`, like Go's `getEsc`, and returns
/// the index after it. `None` when the class is malformed, including when nothing follows the
/// character (the class can then never be closed).
fn class_char(chars: &[char], mut i: usize) -> Option<usize> {
    match chars.get(i)? {
        '-' | ']' => return None,
        '\\' => i += 1,
        _ => {}
    }
    chars.get(i)?;
    i += 1;
    (i < chars.len()).then_some(i)
}

#[cfg(test)]
mod tests {
    use super::is_valid_glob;

    #[test]
    fn go_filepath_match_errors() {
        for bad in [
            "[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a[", "[\\",
        ] {
            assert!(!is_valid_glob(bad), "{bad:?} must be rejected");
        }
        for good in [
            "abc",
            "*",
            "a*b?c",
            "[\\]a]",
            "[\\-]",
            "[x\\-]",
            "[\\-x]",
            "[a-ζ]*",
            "[Local-Only]",
            "[*]",
            "]",
            "a\\*b",
            "[^a]",
        ] {
            assert!(is_valid_glob(good), "{good:?} must be accepted");
        }
    }
}
