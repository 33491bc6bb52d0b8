//! Source wildcards: Go's `filepath.Match` on one path element, and fsutil's split of a
//! source into a literal prefix and a pattern.

/// Whether `name` holds an unescaped `*`, `?` or `[` (fsutil's `containsWildcards`: a `\`
/// escapes the next character).
pub(crate) fn contains_wildcards(name: &str) -> bool {
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                chars.next();
            }
            '*' | '?' | '[' => return true,
            _ => {}
        }
    }
    false
}

/// Splits a cleaned absolute source into the elements before the first one with a wildcard
/// and the elements from there on (fsutil's `splitWildcards`). The pattern part is empty when
/// there is no wildcard.
pub(crate) fn split_wildcards(path: &str) -> (Vec<String>, Vec<String>) {
    let mut literal = Vec::new();
    let mut pattern = Vec::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if pattern.is_empty() && !contains_wildcards(part) {
            literal.push(part.to_owned());
        } else {
            pattern.push(part.to_owned());
        }
    }
    (literal, pattern)
}

/// Go's `filepath.Match` for one element: `*` (any run), `?` (one character), `[...]` and
/// `[^...]` classes with ranges, `\` escapes. A malformed pattern never matches (the copier
/// ignores `filepath.Match`'s `ErrBadPattern` the same way).
pub(crate) fn matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let s: Vec<char> = name.chars().collect();
    match_from(&p, &s).unwrap_or(false)
}

fn match_from(p: &[char], s: &[char]) -> Result<bool, ()> {
    let Some((&first, rest)) = p.split_first() else {
        return Ok(s.is_empty());
    };
    match first {
        '*' => {
            let rest = trim_stars(rest);
            if rest.is_empty() {
                return Ok(true);
            }
            for i in 0..=s.len() {
                if match_from(rest, &s[i..])? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        '?' => match s.split_first() {
            Some((_, s_rest)) => match_from(rest, s_rest),
            None => Ok(false),
        },
        '[' => {
            let (hit_set, after) = parse_class(rest)?;
            match s.split_first() {
                Some((&c, s_rest)) if hit_set(c) => match_from(after, s_rest),
                _ => Ok(false),
            }
        }
        '\\' => {
            let (&lit, rest) = rest.split_first().ok_or(())?;
            match s.split_first() {
                Some((&c, s_rest)) if c == lit => match_from(rest, s_rest),
                _ => Ok(false),
            }
        }
        lit => match s.split_first() {
            Some((&c, s_rest)) if c == lit => match_from(rest, s_rest),
            _ => Ok(false),
        },
    }
}

fn trim_stars(mut p: &[char]) -> &[char] {
    while p.first() == Some(&'*') {
        p = &p[1..];
    }
    p
}

/// One character of a class, with `\` escapes; `-` and `]` are not characters here.
fn class_char(p: &[char]) -> Result<(char, &[char]), ()> {
    match p.split_first() {
        None | Some(('-' | ']', _)) => Err(()),
        Some(('\\', rest)) => rest.split_first().map(|(&c, r)| (c, r)).ok_or(()),
        Some((&c, rest)) => Ok((c, rest)),
    }
}

/// Parses a class body after `[`; returns a membership test and the pattern after `]`.
#[allow(clippy::type_complexity)]
fn parse_class(mut p: &[char]) -> Result<(Box<dyn Fn(char) -> bool>, &[char]), ()> {
    let negated = p.first() == Some(&'^');
    if negated {
        p = &p[1..];
    }
    let mut ranges = Vec::new();
    loop {
        if p.first() == Some(&']') && !ranges.is_empty() {
            p = &p[1..];
            break;
        }
        let (lo, rest) = class_char(p)?;
        p = rest;
        let mut hi = lo;
        if p.first() == Some(&'-') {
            let (h, rest) = class_char(&p[1..])?;
            hi = h;
            p = rest;
        }
        ranges.push((lo, hi));
    }
    Ok((
        Box::new(move |c| ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != negated),
        p,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_match_table() {
        for (pattern, name, want) in [
            ("abc", "abc", true),
            ("*", "abc", true),
            ("*c", "abc", true),
            ("a*", "a", true),
            ("a*b*c*d*e*", "axbxcxdxe", true),
            ("ab[c]", "abc", true),
            ("ab[b-d]", "abc", true),
            ("ab[e-g]", "abc", false),
            ("ab[^c]", "abc", false),
            ("ab[^e-g]", "abc", true),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a???b", "a☺b", false),
            ("[", "a", false),
            ("[]a]", "]", false),
            ("[-]", "-", false),
            ("a[", "a", false),
            ("arr[[]0].txt", "arr[0].txt", true),
            ("index.?s", "index.js", true),
        ] {
            assert_eq!(matches(pattern, name), want, "{pattern} ~ {name}");
        }
    }

    #[test]
    fn wildcards_are_detected_unless_escaped() {
        assert!(contains_wildcards("*.txt"));
        assert!(contains_wildcards("a[0]"));
        assert!(!contains_wildcards("a\\*b"));
        assert!(!contains_wildcards("plain"));
    }

    #[test]
    fn split_keeps_the_literal_prefix() {
        let (lit, pat) = split_wildcards("/src/a*/b/c?");
        assert_eq!(lit, ["src"]);
        assert_eq!(pat, ["a*", "b", "c?"]);
        let (lit, pat) = split_wildcards("/x/y");
        assert_eq!(lit, ["x", "y"]);
        assert!(pat.is_empty());
    }
}
