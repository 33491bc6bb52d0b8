//! Any bytes through the parser, the dump, and the frontend planner: no panic, and spans
//! always inside the text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(df) = kiln_syntax::parse_bytes(data) else { return };
    let text = std::str::from_utf8(data).expect("parse_bytes accepted it");
    let _ = kiln_syntax::dump(&df);
    for inst in &df.instructions {
        assert!(inst.span.start <= inst.span.end && inst.span.end <= text.len());
        for w in inst.flags.iter().chain(&inst.args) {
            assert!(w.span.start <= w.span.end && w.span.end <= text.len());
        }
    }
    let index = kiln_syntax::LineIndex::new(text);
    match kiln_frontend::plan(&df, &kiln_frontend::BuildOptions::default()) {
        Ok(plan) => {
            let _ = plan.build_order();
        }
        Err(e) => {
            assert!(e.span.start <= e.span.end && e.span.end <= text.len());
            let _ = index.line_col(text, e.span.start);
        }
    }
});
