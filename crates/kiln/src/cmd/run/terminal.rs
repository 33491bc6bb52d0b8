//! A step's pseudo-terminal joined to the caller's: `kiln run -t` and the debug shell of
//! `kiln build --on-error=shell`.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};

/// Copies the step's terminal (`master`) to stdout until every holder of its other side has
/// gone, and, with `forward_stdin`, stdin to it; the caller's terminal is in raw mode
/// meanwhile (keys, Ctrl-C included, go to the step as typed).
pub(crate) fn attach(master: OwnedFd, forward_stdin: bool) -> io::Result<()> {
    let stdin = io::stdin();
    let raw = kiln_sandbox::pty::RawMode::enter(stdin.as_fd()).ok();
    let mut to_step = std::fs::File::from(master.try_clone()?);
    if forward_stdin {
        // Detached: it ends with the process when the step's side closes.
        std::thread::spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdin.read(&mut buf) {
                if n == 0 || to_step.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    let mut from_step = std::fs::File::from(master);
    let mut out = io::stdout().lock();
    let mut buf = [0u8; 4096];
    // EIO once every holder of the slave side has gone.
    while let Ok(n) = from_step.read(&mut buf) {
        if n == 0 || out.write_all(&buf[..n]).and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    drop(raw);
    Ok(())
}
