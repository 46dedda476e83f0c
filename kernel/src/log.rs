//! The kernel log: every line goes to QEMU's debug console (a file the host
//! tool keeps), and to the serial console too unless the command line says
//! `quiet` — so `--exec` output is exactly the guest program's output.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicBool, Ordering};

static TO_CONSOLE: AtomicBool = AtomicBool::new(true);

/// Sends kernel log lines to the serial console as well (or not).
pub fn set_console(on: bool) {
    TO_CONSOLE.store(on, Ordering::Relaxed);
}

struct Sink;

impl Write for Sink {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        hal::serial::debugcon_write(s.as_bytes());
        if TO_CONSOLE.load(Ordering::Relaxed) {
            // Serial needs CR before LF on a terminal.
            for (i, part) in s.split('\n').enumerate() {
                if i > 0 {
                    hal::serial::write_bytes(b"\r\n");
                }
                hal::serial::write_bytes(part.as_bytes());
            }
        }
        Ok(())
    }
}

#[doc(hidden)]
pub fn _print(args: fmt::Arguments) {
    let us = hal::time::now_ns() / 1000;
    let _ = writeln!(Sink, "[{us:>8} us] {args}");
}

/// Logs one line with the time since kernel entry in microseconds.
#[macro_export]
macro_rules! klog {
    ($($arg:tt)*) => { $crate::log::_print(format_args!($($arg)*)) };
}
