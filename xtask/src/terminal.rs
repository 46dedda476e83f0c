//! A scripted terminal: runs `cargo xtask run` (this very binary, `run`)
//! on a fresh pseudo-terminal that is its controlling terminal, types into
//! it and waits for what a user would see.
//!
//! util-linux `script` provides the pty and the session: what we write to
//! its stdin arrives at the pty master exactly as keystrokes, so a Ctrl-C
//! byte meets the host line discipline the way it does for a user. That is
//! the point: the test fails both if the guest mishandles ^C and if QEMU
//! (instead of the guest) gets SIGINT from the host terminal.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Terminal {
    child: Child,
    keys: ChildStdin,
    screen: Arc<Mutex<Vec<u8>>>,
    /// Output before this offset has already been matched.
    seen: usize,
}

impl Terminal {
    /// Starts `program args…` on a new pty.
    pub fn spawn(program: &str, args: &[&str]) -> Result<Terminal, String> {
        let cmdline = std::iter::once(program)
            .chain(args.iter().copied())
            .map(shell_quote)
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = Command::new("script")
            .args(["-q", "-f", "-e", "-c", &cmdline, "/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("script (util-linux): {e}"))?;
        let keys = child.stdin.take().ok_or("no stdin")?;
        let mut out = child.stdout.take().ok_or("no stdout")?;
        let screen = Arc::new(Mutex::new(Vec::new()));
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Ok(Terminal {
            child,
            keys,
            screen,
            seen: 0,
        })
    }

    pub fn type_keys(&mut self, keys: &[u8]) -> Result<(), String> {
        self.keys
            .write_all(keys)
            .and_then(|_| self.keys.flush())
            .map_err(|e| format!("typing {:?}: {e}", String::from_utf8_lossy(keys)))
    }

    /// Waits until `text` appears after everything matched so far; returns
    /// the output from the previous match up to and including it.
    pub fn expect(&mut self, text: &str, timeout: Duration) -> Result<String, String> {
        let start = Instant::now();
        loop {
            {
                let screen = self.screen.lock().unwrap();
                let new = &screen[self.seen..];
                if let Some(at) = find(new, text.as_bytes()) {
                    let end = at + text.len();
                    let got = String::from_utf8_lossy(&new[..end]).into_owned();
                    self.seen += end;
                    return Ok(got);
                }
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "waited {timeout:?} for {text:?}; the terminal shows:\n{}",
                    self.transcript()
                ));
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                return Err(format!(
                    "the terminal program ended ({st}) before {text:?} appeared:\n{}",
                    self.transcript()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the terminal has shown.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.screen.lock().unwrap()).into_owned()
    }

    /// Waits for the program to end; its exit code, or None on timeout
    /// (then it is killed).
    pub fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
