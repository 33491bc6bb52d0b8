//! Dockerfile text to an AST with byte spans, exactly as BuildKit's parser reads it, plus the
//! shell-word lexer that expands `$VAR`, `${VAR:-x}` and friends.
//!
//! This crate knows text only: it does not know what an instruction *means* (that is
//! `kiln-frontend`), nor files, images or processes.

pub mod shell;
