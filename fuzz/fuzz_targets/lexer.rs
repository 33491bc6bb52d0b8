//! Any word through the shell lexer with every option combination: no panic, and error
//! offsets inside the word.
#![no_main]

use kiln_syntax::shell::Lexer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&opts, rest)) = data.split_first() else { return };
    let Ok(word) = std::str::from_utf8(rest) else { return };
    let escape = if opts & 1 == 0 { '\\' } else { '`' };
    let lexer = Lexer::new(escape)
        .raw_quotes(opts & 2 != 0)
        .raw_escapes(opts & 4 != 0)
        .skip_unset_env(opts & 8 != 0)
        .skip_process_quotes(opts & 16 != 0);
    let env = ["A=a", "B=", "PATTERN=*x?", "KOREAN=한국어"];
    match lexer.process_word_with_matches(word, &env) {
        Ok(_) => {}
        Err(e) => assert!(e.offset() <= word.len()),
    }
    let _ = lexer.process_words(word, &env);
});
