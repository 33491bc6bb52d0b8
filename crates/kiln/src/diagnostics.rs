//! Rendering of errors for people: one place draws snippets and carets.

/// Print an error and its causes to stderr.
pub fn print_error(err: &anyhow::Error) {
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
}
