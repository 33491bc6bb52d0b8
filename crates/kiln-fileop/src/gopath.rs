//! Go's lexical path helpers (`path.Clean`, `Split`, `Base`) for `/`-separated paths.
//!
//! BuildKit decides what a COPY path means with these functions, so kiln needs their exact
//! results (a lone `/`, `..` at the root, trailing slashes). Nothing here touches the disk.

/// Go's `path.Clean`: collapse `//`, drop `.`, resolve `x/..`, drop `..` at a rooted path's
/// root, remove a trailing slash (except for `/`), and turn the empty string into `.`.
pub(crate) use kiln_context::clean_path as clean;

/// BuildKit's `cleanPath` for copy paths: made absolute and cleaned, but a trailing `/` or
/// `/.` is kept, because it says "this is a directory".
pub(crate) fn clean_keep_slash(path: &str) -> String {
    let cleaned = clean(&format!("/{path}"));
    if path.ends_with("/.") {
        if cleaned == "/" {
            "/.".to_owned()
        } else {
            format!("{cleaned}/.")
        }
    } else if path.ends_with('/') && cleaned != "/" {
        format!("{cleaned}/")
    } else {
        cleaned
    }
}

/// The destination as BuildKit's `pathRelativeToWorkingDir` makes it: absolute, cleaned,
/// relative ones joined to `workdir`, `""` and `.` meaning the working directory itself, and
/// a trailing `/` (or `/.`) kept.
pub(crate) fn dest_in_workdir(dest: &str, workdir: &str) -> String {
    let dest = if dest.is_empty() || dest == "." {
        "./"
    } else {
        dest
    };
    let joined = if dest.starts_with('/') {
        clean(dest)
    } else {
        clean(&format!("/{workdir}/{dest}"))
    };
    if dest.ends_with('/') && !joined.ends_with('/') {
        format!("{joined}/")
    } else if dest.ends_with("/.") {
        if joined == "/" {
            "/.".to_owned()
        } else {
            format!("{joined}/.")
        }
    } else {
        joined
    }
}

/// Go's `path.Base`: the last element, `/` for a root, `.` for the empty string.
pub(crate) fn base(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return if path.is_empty() { "." } else { "/" }.to_owned();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
}

/// Go's `path.Split` reduced to what the copier asks: the last element after the final `/`
/// (empty when the path ends with `/`).
pub(crate) fn last_element(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("/", "/"),
            ("a//b/./c/..", "a/b"),
            ("/../x", "/x"),
            ("../../x", "../../x"),
            ("a/../..", ".."),
            ("/a/b/", "/a/b"),
        ] {
            assert_eq!(clean(input), want, "{input}");
        }
    }

    #[test]
    fn copy_paths_keep_their_directory_marker() {
        assert_eq!(clean_keep_slash("foo/"), "/foo/");
        assert_eq!(clean_keep_slash("../foo/."), "/foo/.");
        assert_eq!(clean_keep_slash("/"), "/");
        assert_eq!(clean_keep_slash("./"), "/");
    }

    #[test]
    fn destinations_resolve_against_workdir() {
        assert_eq!(dest_in_workdir(".", "/app"), "/app/");
        assert_eq!(dest_in_workdir("", "/app"), "/app/");
        assert_eq!(dest_in_workdir("rel/x", "/app"), "/app/rel/x");
        assert_eq!(dest_in_workdir("rel/", "/app"), "/app/rel/");
        assert_eq!(dest_in_workdir("/abs/../y", "/app"), "/y");
        assert_eq!(dest_in_workdir("../../..", "/app"), "/");
    }

    #[test]
    fn base_and_last_element() {
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(base(""), ".");
        assert_eq!(last_element("/a/b/"), "");
        assert_eq!(last_element("/a/b"), "b");
    }
}
