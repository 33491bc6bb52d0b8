//! The sandbox init as a program of its own: `kiln-sandbox-init SPEC`. The `kiln` binary embeds
//! the same code behind `kiln __sandbox-init`; this one serves the crate's tests.

fn main() {
    kiln_sandbox::init::main();
}
