//! "Did you mean ...?": BuildKit's `suggest.Search`, for messages that name a close option.

/// The option closest to `word` by Levenshtein distance, when it is under 3 (BuildKit's
/// `util/suggest.Search`); `None` when nothing is that close, or when an option equals `word`
/// (the message is then about something else).
///
/// Ties go to the earliest option. Without `case_sensitive`, the comparison is on lowercase
/// text and the match comes back in `word`'s case when `word` is all lower or all upper case
/// (else lowercase).
pub fn search<S: AsRef<str>>(word: &str, options: &[S], case_sensitive: bool) -> Option<String> {
    let fold = |s: &str| {
        if case_sensitive {
            s.to_owned()
        } else {
            s.to_lowercase()
        }
    };
    let val = fold(word);
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let opt = fold(opt.as_ref());
        if val == opt {
            return None;
        }
        let d = levenshtein(&val, &opt);
        if d < min {
            min = d;
            best = Some(opt);
        }
    }
    let best = best?;
    if case_sensitive {
        return Some(best);
    }
    Some(if word == word.to_lowercase() {
        best.to_lowercase()
    } else if word == word.to_uppercase() {
        best.to_uppercase()
    } else {
        best
    })
}

/// The edit distance between `a` and `b`, in characters (insert, delete, substitute: 1 each).
pub(crate) fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_under_three_edits() {
        assert_eq!(
            search("BULIDPLATFORM", &["TARGETPLATFORM", "BUILDPLATFORM"], true).as_deref(),
            Some("BUILDPLATFORM")
        );
        assert_eq!(
            search("MYARCH", &["MY_OS", "MY_ARCH"], true).as_deref(),
            Some("MY_ARCH")
        );
        assert_eq!(search("version", &["tag", "TARGETOS"], true), None);
        assert_eq!(search("a", &["a", "b"], true), None);
        assert_eq!(search("PAHT", &["path"], true), None);
    }

    #[test]
    fn case_insensitive_keeps_the_words_case() {
        assert_eq!(search("CPY", &["copy"], false).as_deref(), Some("COPY"));
        assert_eq!(search("cpy", &["copy"], false).as_deref(), Some("copy"));
        assert_eq!(search("Cpy", &["copy"], false).as_deref(), Some("copy"));
        assert_eq!(search("COPY", &["copy"], false), None);
    }
}
