//! The console tty: a line discipline over COM1.
//!
//! Received bytes are queued by the COM1 interrupt (console.rs) and run
//! through the discipline by [`pump`] in process or idle context, never in
//! the interrupt itself (it sends signals and takes process locks).
//! Canonical mode edits lines (erase, kill, EOF); ISIG turns ^C, ^\ and ^Z
//! into signals for the foreground process group; ECHO echoes; ONLCR maps
//! output newlines to CR LF. `--exec` runs start with ONLCR off so the
//! captured output is byte-exact.

use abi::{Errno, KResult};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use spin::Mutex;

use super::file::{POLLIN, POLLOUT};
use crate::proc::sched::WaitQueue;
use crate::proc::{signal, Pid};

// termios flag bits (asm-generic/termbits.h).
const ICRNL: u32 = 0o400;
const OPOST: u32 = 1;
const ONLCR: u32 = 4;
const ISIG: u32 = 1;
const ICANON: u32 = 2;
const ECHO: u32 = 0o10;
const ECHOE: u32 = 0o20;
const ECHOK: u32 = 0o40;
const ECHOCTL: u32 = 0o1000;
const IEXTEN: u32 = 0o100000;
const VINTR: usize = 0;
const VQUIT: usize = 1;
const VERASE: usize = 2;
const VKILL: usize = 3;
const VEOF: usize = 4;
const VTIME: usize = 5;
const VMIN: usize = 6;
const VSUSP: usize = 10;
const NCCS: usize = 19;

/// The kernel's `struct termios` (36 bytes, as TCGETS returns it).
#[derive(Clone, Copy)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
}

impl Termios {
    fn default_console() -> Termios {
        let mut cc = [0u8; NCCS];
        cc[VINTR] = 3;
        cc[VQUIT] = 0x1c;
        cc[VERASE] = 0x7f;
        cc[VKILL] = 0x15;
        cc[VEOF] = 4;
        cc[VTIME] = 0;
        cc[VMIN] = 1;
        cc[VSUSP] = 0x1a;
        Termios {
            iflag: ICRNL | 0o2000, // ICRNL | IXON
            oflag: OPOST | ONLCR,
            cflag: 0o277 | 0o4000, // B38400 | CS8 | CREAD | HUPCL-ish as Linux reports
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | IEXTEN | 0o4000,
            line: 0,
            cc,
        }
    }

    /// Encodes as the 36-byte kernel struct.
    pub fn to_bytes(self) -> [u8; 36] {
        let mut b = [0u8; 36];
        b[0..4].copy_from_slice(&self.iflag.to_le_bytes());
        b[4..8].copy_from_slice(&self.oflag.to_le_bytes());
        b[8..12].copy_from_slice(&self.cflag.to_le_bytes());
        b[12..16].copy_from_slice(&self.lflag.to_le_bytes());
        b[16] = self.line;
        b[17..36].copy_from_slice(&self.cc);
        b
    }

    /// Decodes the 36-byte kernel struct.
    pub fn from_bytes(b: &[u8; 36]) -> Termios {
        let w = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let mut cc = [0u8; NCCS];
        cc.copy_from_slice(&b[17..36]);
        Termios {
            iflag: w(0),
            oflag: w(4),
            cflag: w(8),
            lflag: w(12),
            line: b[16],
            cc,
        }
    }
}

struct Tty {
    termios: Termios,
    /// The line being edited (canonical mode).
    line: Vec<u8>,
    /// Bytes ready for readers.
    ready: VecDeque<u8>,
    /// Pending end-of-file (^D on an empty line) for the next read.
    eof: usize,
    pub fg_pgrp: Pid,
    pub session: Pid,
    pub winsize: [u16; 4],
}

static TTY: Mutex<Option<Tty>> = Mutex::new(None);
static READERS: WaitQueue = WaitQueue::new();

/// Sets up the console tty; `raw_output` turns ONLCR off (for --exec).
pub fn init(raw_output: bool) {
    let mut t = Termios::default_console();
    if raw_output {
        t.oflag &= !ONLCR;
    }
    *TTY.lock() = Some(Tty {
        termios: t,
        line: Vec::new(),
        ready: VecDeque::new(),
        eof: 0,
        fg_pgrp: 1,
        session: 1,
        winsize: [24, 80, 0, 0],
    });
}

fn with<R>(f: impl FnOnce(&mut Tty) -> R) -> R {
    let mut g = TTY.lock();
    f(g.as_mut().expect("tty initialised"))
}

fn echo(bytes: &[u8], t: &Termios) {
    if t.lflag & ECHO != 0 {
        out(bytes, t);
    }
}

fn out(bytes: &[u8], t: &Termios) {
    if t.oflag & OPOST != 0 && t.oflag & ONLCR != 0 {
        for chunk in bytes.split_inclusive(|&b| b == b'\n') {
            if let Some((&b'\n', head)) = chunk.split_last() {
                hal::serial::write_bytes(head);
                hal::serial::write_bytes(b"\r\n");
            } else {
                hal::serial::write_bytes(chunk);
            }
        }
    } else {
        hal::serial::write_bytes(bytes);
    }
}

/// Runs received bytes through the line discipline (process context).
pub fn pump() {
    // One CPU at a time: two pumping at once would reorder the bytes. A
    // CPU that finds another pumping leaves the bytes to it (or to the
    // next tick's deferred work, which looks again).
    static PUMPING: spin::Mutex<()> = spin::Mutex::new(());
    let Some(_one) = PUMPING.try_lock() else {
        return;
    };
    let mut signals: Vec<(Pid, u32)> = Vec::new();
    let mut woke = false;
    while let Some(mut c) = crate::console::read_byte() {
        let sig = with(|tty| {
            let t = tty.termios;
            if c == b'\r' && t.iflag & ICRNL != 0 {
                c = b'\n';
            }
            if t.lflag & ISIG != 0 {
                let s = if c == t.cc[VINTR] {
                    Some(signal::SIGINT)
                } else if c == t.cc[VQUIT] {
                    Some(signal::SIGQUIT)
                } else if c == t.cc[VSUSP] {
                    Some(signal::SIGTSTP)
                } else {
                    None
                };
                if let Some(s) = s {
                    if t.lflag & ECHO != 0 {
                        out(&[b'^', c + 0x40, b'\n'], &t);
                    }
                    tty.line.clear();
                    return Some((tty.fg_pgrp, s));
                }
            }
            if t.lflag & ICANON != 0 {
                if c == t.cc[VERASE] || c == 8 {
                    if tty.line.pop().is_some() && t.lflag & ECHOE != 0 {
                        echo(b"\x08 \x08", &t);
                    }
                } else if c == t.cc[VKILL] {
                    tty.line.clear();
                    echo(b"\n", &t);
                } else if c == t.cc[VEOF] {
                    let l = core::mem::take(&mut tty.line);
                    if l.is_empty() {
                        tty.eof += 1;
                    }
                    tty.ready.extend(l);
                    woke = true;
                } else {
                    tty.line.push(c);
                    echo(&[c], &t);
                    if c == b'\n' {
                        let l = core::mem::take(&mut tty.line);
                        tty.ready.extend(l);
                        woke = true;
                    }
                }
            } else {
                tty.ready.push_back(c);
                echo(&[c], &t);
                woke = true;
            }
            None
        });
        if let Some(s) = sig {
            signals.push(s);
        }
    }
    for (pgrp, sig) in signals {
        for p in crate::proc::all() {
            if p.rel.lock().pgid == pgrp && !p.is_dead_process() {
                signal::send_process(&p, sig, signal::SigInfo::sent(0x80, 0)); // SI_KERNEL
            }
        }
        woke = true;
    }
    if woke {
        READERS.wake_all();
        super::POLL_WQ.wake_all();
    }
}

/// read(2) on the console.
pub fn read(buf: &mut [u8], nonblock: bool) -> KResult<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    let (canon, vmin, vtime) = with(|t| {
        (
            t.termios.lflag & ICANON != 0,
            t.termios.cc[VMIN] as usize,
            t.termios.cc[VTIME] as u64,
        )
    });
    if !canon {
        return read_raw(buf, nonblock, vmin, vtime);
    }
    READERS.wait_until(|| {
        pump_locked_free();
        with(|tty| {
            let canon = tty.termios.lflag & ICANON != 0;
            if !tty.ready.is_empty() {
                let mut n = 0;
                while n < buf.len() {
                    let Some(b) = tty.ready.pop_front() else {
                        break;
                    };
                    buf[n] = b;
                    n += 1;
                    if canon && b == b'\n' {
                        break;
                    }
                }
                Some(Ok(n))
            } else if tty.eof > 0 {
                tty.eof -= 1;
                Some(Ok(0))
            } else if nonblock {
                Some(Err(Errno::EAGAIN))
            } else {
                None
            }
        })
    })?
}

/// A non-canonical read with termios(3)'s MIN and TIME (tenths of a
/// second): MIN 0 TIME 0 returns what is there, even nothing; MIN 0 TIME t
/// waits up to t for a first byte; MIN m TIME 0 waits for m bytes (or the
/// buffer's length); MIN m TIME t as well, but once a byte has come, t
/// without another one ends the read.
fn read_raw(buf: &mut [u8], nonblock: bool, vmin: usize, vtime: u64) -> KResult<usize> {
    use super::{POLL_DEADLINES, POLL_WQ};
    let want = vmin.min(buf.len());
    let tenths = |now: u64| now.saturating_add(vtime * 100_000_000);
    let mut deadline = (vmin == 0 && vtime > 0).then(|| tenths(hal::time::now_ns()));
    let mut n = 0;
    loop {
        let since = POLL_WQ.wakes();
        pump_locked_free();
        let got = with(|tty| {
            let k = tty.ready.len().min(buf.len() - n);
            for (d, b) in buf[n..n + k].iter_mut().zip(tty.ready.drain(..k)) {
                *d = b;
            }
            k
        });
        n += got;
        let now = hal::time::now_ns();
        if got > 0 && vmin > 0 && vtime > 0 {
            deadline = Some(tenths(now)); // the inter-byte timer restarts
        }
        let done = match (vmin, vtime) {
            (0, 0) => true,
            (0, _) => n > 0,
            _ => n >= want,
        };
        if done || deadline.is_some_and(|d| now >= d) {
            return Ok(n);
        }
        if nonblock {
            return if n > 0 { Ok(n) } else { Err(Errno::EAGAIN) };
        }
        if let Err(e) = POLL_WQ.wait_for_wake_until(since, deadline, &POLL_DEADLINES) {
            return if n > 0 { Ok(n) } else { Err(e) };
        }
    }
}

/// Bytes may arrive between the wake-up and the check: drain them first.
fn pump_locked_free() {
    if crate::console::has_input() {
        // pump() takes the tty lock itself and may send signals; it is safe
        // here because wait_until's closure holds no other lock.
        pump();
    }
}

/// write(2) on the console.
pub fn write(data: &[u8]) -> KResult<usize> {
    let t = with(|tty| tty.termios);
    out(data, &t);
    Ok(data.len())
}

/// poll(2) events of the console.
pub fn poll() -> u16 {
    pump_locked_free();
    with(|tty| {
        if tty.ready.is_empty() && tty.eof == 0 {
            POLLOUT
        } else {
            POLLIN | POLLOUT
        }
    })
}

/// Terminal ioctls: TCGETS/TCSETS*, TIOCGPGRP/TIOCSPGRP, TIOCGWINSZ/
/// TIOCSWINSZ, TIOCSCTTY, TIOCGSID, FIONREAD.
pub fn ioctl(cmd: u64, arg: u64) -> KResult<u64> {
    use crate::uaccess::{copy_in, copy_out, read_u32, write_u32};
    match cmd {
        0x5401 => copy_out(arg, &with(|t| t.termios).to_bytes()).map(|_| 0), // TCGETS
        0x5402..=0x5404 => {
            // TCSETS, TCSETSW, TCSETSF
            let mut b = [0u8; 36];
            copy_in(arg, &mut b)?;
            let new = Termios::from_bytes(&b);
            with(|t| {
                if cmd == 0x5404 {
                    t.ready.clear();
                }
                // Leaving canonical mode hands the partial line to readers.
                if new.lflag & ICANON == 0 && t.termios.lflag & ICANON != 0 {
                    let l = core::mem::take(&mut t.line);
                    t.ready.extend(l);
                }
                t.termios = new;
            });
            Ok(0)
        }
        0x540f => write_u32(arg, with(|t| t.fg_pgrp)).map(|_| 0), // TIOCGPGRP
        0x5410 => {
            // TIOCSPGRP, with Linux's checks: the console must be the
            // caller's controlling tty (ENOTTY), the group valid (EINVAL),
            // existing (ESRCH) and in the console's session (EPERM).
            let pg = read_u32(arg)? as i32;
            let sid = crate::proc::sched::current().leader().rel.lock().sid;
            if with(|t| t.session) != sid {
                return Err(Errno::ENOTTY);
            }
            if pg < 0 {
                return Err(Errno::EINVAL);
            }
            let members: Vec<Pid> = crate::proc::all()
                .iter()
                .filter(|p| !p.is_zombie())
                .map(|p| p.rel.lock())
                .filter(|r| r.pgid == pg as Pid)
                .map(|r| r.sid)
                .collect();
            if members.is_empty() {
                return Err(Errno::ESRCH);
            }
            if members.iter().any(|&s| s != sid) {
                return Err(Errno::EPERM);
            }
            with(|t| t.fg_pgrp = pg as Pid);
            Ok(0)
        }
        0x5413 => {
            // TIOCGWINSZ
            let w = with(|t| t.winsize);
            let mut b = [0u8; 8];
            for (i, v) in w.iter().enumerate() {
                b[i * 2..i * 2 + 2].copy_from_slice(&v.to_le_bytes());
            }
            copy_out(arg, &b).map(|_| 0)
        }
        0x5414 => {
            // TIOCSWINSZ
            let mut b = [0u8; 8];
            copy_in(arg, &mut b)?;
            with(|t| {
                for i in 0..4 {
                    t.winsize[i] = u16::from_le_bytes([b[i * 2], b[i * 2 + 1]]);
                }
            });
            Ok(0)
        }
        0x540e => {
            // TIOCSCTTY: a session leader's session takes the console.
            // As Linux: only a session leader (EPERM), and a console that
            // is another live session's controlling tty only with arg 1
            // (root, which everyone is, may steal it).
            let me = crate::proc::sched::current().leader();
            let (sid, pgid) = {
                let r = me.rel.lock();
                (r.sid, r.pgid)
            };
            let owner = with(|t| t.session);
            if owner == sid && sid == me.pid {
                return Ok(0);
            }
            if sid != me.pid {
                return Err(Errno::EPERM);
            }
            let owner_alive = crate::proc::lookup(owner).is_some_and(|p| !p.is_zombie());
            if owner_alive && arg != 1 {
                return Err(Errno::EPERM);
            }
            with(|t| {
                t.session = sid;
                t.fg_pgrp = pgid;
            });
            Ok(0)
        }
        0x5429 => write_u32(arg, with(|t| t.session)).map(|_| 0), // TIOCGSID
        0x541b => write_u32(arg, with(|t| t.ready.len() as u32)).map(|_| 0), // FIONREAD
        0x5422 => Ok(0),                                          // TIOCNOTTY
        _ => Err(Errno::ENOTTY),
    }
}
