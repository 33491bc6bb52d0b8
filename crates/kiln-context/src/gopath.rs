//! Go's lexical path helpers (`path/filepath.Clean` and `Dir`) for the `/` separator.
//!
//! `.dockerignore` semantics are defined by Go code that cleans patterns and paths with these
//! functions, so kiln needs their exact results, including for odd inputs (`..`, `//`, a lone
//! `/`). They are purely lexical: nothing here touches the file system.

/// Returns the shortest path equivalent to `path` by purely lexical processing, exactly as Go's
/// `filepath.Clean` does on Unix.
///
/// Repeated slashes collapse, `.` elements vanish, `x/..` pairs cancel, `..` at the root of a
/// rooted path is dropped, a trailing slash is removed (except for `/` itself), and the empty
/// string becomes `.`.
pub fn clean(path: &str) -> String {
    if path.is_empty() {
        return ".".to_owned();
    }
    let bytes = path.as_bytes();
    let n = bytes.len();
    let rooted = bytes[0] == b'/';
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let mut r = 0;
    // `dotdot` is the length of `out` that a `..` may not backtrack past.
    let mut dotdot = 0;
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        let at_sep = |i: usize| i == n || bytes[i] == b'/';
        if bytes[r] == b'/' || (bytes[r] == b'.' && at_sep(r + 1)) {
            r += 1;
        } else if bytes[r] == b'.' && r + 1 < n && bytes[r + 1] == b'.' && at_sep(r + 2) {
            r += 2;
            if out.len() > dotdot {
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && bytes[r] != b'/' {
                out.push(bytes[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return ".".to_owned();
    }
    // Only whole elements are copied and cuts happen at ASCII `/`, so UTF-8 stays valid.
    String::from_utf8(out).expect("cleaning cuts only at `/`")
}

/// Returns all but the last element of `path`, cleaned, exactly as Go's `filepath.Dir` does on
/// Unix: `a/b` gives `a`, `a` gives `.`, `a/` gives `a`, `/` gives `/`.
pub(crate) fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{clean, dir};

    #[test]
    fn clean_matches_go_table() {
        // A selection of Go's own `TestClean` table.
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
            ("!foo/", "!foo"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn dir_matches_go() {
        for (input, want) in [
            ("a/b", "a"),
            ("a", "."),
            ("a/", "a"),
            ("/", "/"),
            ("a//b/", "a/b"),
            ("", "."),
        ] {
            assert_eq!(dir(input), want, "dir({input:?})");
        }
    }
}
