//! The reliable channel between two kernels for one moved process: a TCP
//! connection of smoltcp's, carrying framed messages (docs/architecture.md
//! says why TCP rather than our own acknowledged UDP records).
//!
//! A message is a 16-byte header — magic, kind, payload length, CRC32C of
//! the payload — and the payload. A header with a wrong magic, an unknown
//! kind, a length over [`MAX_MSG`] or a payload whose CRC does not match
//! is counted and ends the connection: on a byte stream nothing after a
//! bad frame can be trusted to start a frame.
//!
//! Every socket's buffers are fixed ([`BUF`] each way); the receive side
//! holds at most one message being assembled ([`MAX_MSG`]). Sleepers wait
//! on [`WQ`], woken by smoltcp's wakers (data or room) and by the braid's
//! boundary every [`TICK_NS`] (deadlines, a machine that left the view).

use alloc::sync::Arc;
use alloc::task::Wake;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::task::Waker;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp;
use smoltcp::wire::Ipv4Address;
use spin::Mutex;

use super::STATS;
use crate::net::stack;
use crate::proc::sched::WaitQueue;

/// The port every machine listens on for moved processes; outgoing
/// connections use the next [`CLIENT_PORTS`] ports.
pub const PORT: u16 = 7500;
pub const CLIENT_PORTS: u16 = 16;
/// Socket buffers, each way.
const BUF: usize = 64 * 1024;
/// Largest message (a whole address space at a move).
pub const MAX_MSG: usize = 64 << 20;
const MAGIC: u32 = 0x524d_4731; // "RMG1"
const HDR: usize = 16;
/// Highest message kind.
pub const KIND_MAX: u8 = 8;
/// How often sleepers are woken to look at deadlines and failures.
pub const TICK_NS: u64 = 10_000_000;

/// Where every channel's users sleep.
pub static WQ: WaitQueue = WaitQueue::new();

struct Wakes;

impl Wake for Wakes {
    fn wake(self: Arc<Self>) {
        WQ.wake_all();
    }
}

fn waker() -> Waker {
    Waker::from(Arc::new(Wakes))
}

/// Sockets being closed, with when and their client port: removed (and
/// the port given back) once closed, or after a while.
static CLOSING: Mutex<Vec<(SocketHandle, u64, Option<u16>)>> = Mutex::new(Vec::new());
/// Client ports in use (bit i: PORT + 1 + i).
static PORTS: Mutex<u32> = Mutex::new(0);

/// Why a channel stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChanErr {
    /// The peer closed or reset the connection, or it never opened.
    Closed,
    /// A malformed frame arrived (counted).
    Corrupt,
}

pub struct Chan {
    h: SocketHandle,
    /// Bytes received and not yet a whole message.
    rx: Vec<u8>,
    port: Option<u16>,
    waker: Waker,
}

pub fn tcp_socket() -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; BUF]),
        tcp::SocketBuffer::new(vec![0; BUF]),
    );
    s.set_nagle_enabled(false);
    s.set_keep_alive(Some(smoltcp::time::Duration::from_secs(2)));
    s.set_timeout(Some(smoltcp::time::Duration::from_secs(10)));
    s
}

impl Chan {
    /// Opens a connection to machine `peer`'s listener (not yet
    /// established: the first send or receive waits for it).
    pub fn connect(peer: Ipv4Address) -> Option<Chan> {
        let port = {
            let mut p = PORTS.lock();
            let i = (0..CLIENT_PORTS).find(|i| *p & (1 << i) == 0)?;
            *p |= 1 << i;
            PORT + 1 + i
        };
        let h = stack::with(|iface, set| {
            let mut s = tcp_socket();
            s.connect(iface.context(), (peer, PORT), port).ok()?;
            Some(set.add(s))
        })
        .flatten();
        match h {
            Some(h) => Some(Chan {
                h,
                rx: Vec::new(),
                port: Some(port),
                waker: waker(),
            }),
            None => {
                *PORTS.lock() &= !(1 << (port - PORT - 1));
                None
            }
        }
    }

    /// A connection a listener accepted.
    pub fn accepted(h: SocketHandle) -> Chan {
        Chan {
            h,
            rx: Vec::new(),
            port: None,
            waker: waker(),
        }
    }

    /// Sends one message, waiting for room in the socket (not for a
    /// signal: the caller's state must cross whole). Err if the
    /// connection is gone.
    pub fn send(&mut self, kind: u8, payload: &[u8]) -> Result<(), ChanErr> {
        let frame = encode(kind, payload);
        let mut off = 0;
        while off < frame.len() {
            let h = self.h;
            let w = &self.waker;
            let step = || {
                stack::with(|_, set| {
                    let s = set.get_mut::<tcp::Socket>(h);
                    if !s.is_active() || (s.state() != tcp::State::SynSent && !s.may_send()) {
                        return Some(Err(ChanErr::Closed));
                    }
                    if s.can_send() {
                        return Some(Ok(s.send_slice(&frame[off..]).unwrap_or(0)));
                    }
                    s.register_send_waker(w);
                    None
                })
                .unwrap_or(Some(Err(ChanErr::Closed)))
            };
            let n = match step() {
                Some(r) => r?,
                None => WQ.wait_until_uninterruptible(step)?,
            };
            off += n;
        }
        STATS
            .bytes_sent
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Sends one small message if it fits in the socket now (exit paths,
    /// the boundary): false if it did not.
    pub fn send_now(&mut self, kind: u8, payload: &[u8]) -> bool {
        let frame = encode(kind, payload);
        let h = self.h;
        let ok = stack::with(|_, set| {
            let s = set.get_mut::<tcp::Socket>(h);
            s.may_send()
                && s.send_capacity() - s.send_queue() >= frame.len()
                && s.send_slice(&frame).is_ok()
        })
        .unwrap_or(false);
        if ok {
            STATS
                .bytes_sent
                .fetch_add(frame.len() as u64, Ordering::Relaxed);
        }
        ok
    }

    /// A whole message if one has arrived, without waiting.
    pub fn try_recv(&mut self) -> Result<Option<(u8, Vec<u8>)>, ChanErr> {
        let h = self.h;
        let rx = &mut self.rx;
        let w = &self.waker;
        let closed = stack::with_quiet(|_, set| {
            let s = set.get_mut::<tcp::Socket>(h);
            let mut buf = [0u8; 2048];
            // Only what the message being assembled still needs.
            while rx.len() < HDR + MAX_MSG {
                let want = if rx.len() < HDR {
                    HDR - rx.len()
                } else {
                    let len = u32::from_le_bytes([rx[8], rx[9], rx[10], rx[11]]) as usize;
                    (HDR + len).saturating_sub(rx.len())
                };
                if want == 0 {
                    break;
                }
                let n = want.min(buf.len());
                match s.recv_slice(&mut buf[..n]) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => {
                        STATS.bytes_received.fetch_add(k as u64, Ordering::Relaxed);
                        rx.extend_from_slice(&buf[..k]);
                        if rx.len() == HDR {
                            let len = u32::from_le_bytes([rx[8], rx[9], rx[10], rx[11]]) as usize;
                            let magic = u32::from_le_bytes([rx[0], rx[1], rx[2], rx[3]]);
                            if magic != MAGIC || len > MAX_MSG || rx[4] == 0 || rx[4] > KIND_MAX {
                                return Some(ChanErr::Corrupt);
                            }
                        }
                    }
                }
            }
            s.register_recv_waker(w);
            let gone = !s.is_active() || (!s.may_recv() && s.state() != tcp::State::SynSent);
            gone.then_some(ChanErr::Closed)
        })
        .unwrap_or(Some(ChanErr::Closed));
        if closed == Some(ChanErr::Corrupt) {
            STATS.corrupt.fetch_add(1, Ordering::Relaxed);
            return Err(ChanErr::Corrupt);
        }
        if self.rx.len() >= HDR {
            let len =
                u32::from_le_bytes([self.rx[8], self.rx[9], self.rx[10], self.rx[11]]) as usize;
            if self.rx.len() == HDR + len {
                let crc = u32::from_le_bytes([self.rx[12], self.rx[13], self.rx[14], self.rx[15]]);
                let kind = self.rx[4];
                let payload = self.rx.split_off(HDR);
                self.rx.clear();
                if braid::codec::crc(&payload) != crc {
                    STATS.corrupt.fetch_add(1, Ordering::Relaxed);
                    return Err(ChanErr::Corrupt);
                }
                return Ok(Some((kind, payload)));
            }
        }
        match closed {
            Some(e) => Err(e),
            None => Ok(None),
        }
    }

    /// Resets the connection (a peer that sent garbage: closing would
    /// leave it sending into a window nobody reads).
    pub fn abort(self) {
        let h = self.h;
        stack::with(|_, set| set.get_mut::<tcp::Socket>(h).abort());
        CLOSING.lock().push((h, hal::time::now_ns(), self.port));
    }

    /// Closes: what was sent still goes, then the socket is removed.
    pub fn close(self) {
        let h = self.h;
        stack::with(|_, set| set.get_mut::<tcp::Socket>(h).close());
        CLOSING.lock().push((h, hal::time::now_ns(), self.port));
    }
}

/// Removes closed sockets (and ones still closing after 30 s).
pub fn sweep(now: u64) {
    let Some(mut c) = CLOSING.try_lock() else {
        return;
    };
    if c.is_empty() {
        return;
    }
    stack::with_quiet(|_, set| {
        c.retain(|&(h, since, port)| {
            let st = set.get::<tcp::Socket>(h).state();
            let done = matches!(st, tcp::State::Closed | tcp::State::TimeWait)
                || now.saturating_sub(since) > 30_000_000_000;
            if done {
                set.get_mut::<tcp::Socket>(h).abort();
                set.remove(h);
                // Free only now: a new connection from the same port to
                // the same listener must not meet the old one's segments.
                if let Some(p) = port {
                    *PORTS.lock() &= !(1 << (p - PORT - 1));
                }
            }
            !done
        });
    });
}

/// Reserves the listener's and the clients' ports (a program's bind gets
/// EADDRINUSE).
pub fn reserve_ports() -> bool {
    (0..=CLIENT_PORTS)
        .all(|i| crate::net::inet::reserve_port(crate::net::socket::SOCK_STREAM, PORT + i).is_ok())
}

/// One message as it goes on the wire: magic, kind, payload length,
/// the payload's CRC32C, the payload.
fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HDR + payload.len());
    frame.extend_from_slice(&MAGIC.to_le_bytes());
    frame.extend_from_slice(&[kind, 0, 0, 0]);
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&braid::codec::crc(payload).to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}
