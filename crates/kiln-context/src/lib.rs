//! Build context rules: `.dockerignore` files and the matcher BuildKit uses for them.
