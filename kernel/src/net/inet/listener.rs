//! A TCP listener's accept queue over smoltcp's sockets.
//!
//! smoltcp has no accept queue: a listening smoltcp socket takes one SYN
//! and becomes that connection. So a listener keeps a few smoltcp
//! sockets listening on its port (`half`: listening, or holding a
//! half-open connection) and, as each becomes established, moves it to
//! its accept queue (`queue`) and puts a fresh listening socket in its
//! place ([`refill`]). That happens after every stack poll that changed
//! a socket ([`on_poll`], from the stack's wake hook), not only at
//! accept, so a listener takes connections up to its backlog before the
//! program accepts any, as Linux does.
//!
//! **Bounds.** The queue holds at most backlog + 1 connections (Linux's
//! `sk_acceptq_is_full`; the backlog capped at somaxconn, 4096):
//! `half` and `queue` together never exceed that, so every connection
//! `half` completes has a place in the queue, and a listener with a full
//! queue has no listening socket (a SYN gets smoltcp's reset, which
//! `synbusy` turns into a drop, as Linux drops it). At most
//! [`LISTEN_MAX`] sockets listen at once: each has its full buffers, and
//! the family's socket cap bounds all of them together (ENOBUFS: the
//! listener refills as sockets are freed).

use abi::{Errno, KResult};
use alloc::collections::{BTreeSet, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::task::Waker;
use smoltcp::iface::SocketHandle;
use smoltcp::socket::tcp::{self, State};
use spin::Mutex;

use super::{quiet, unreserve, InetSocket, St, LIVE};

/// Most smoltcp sockets a listener keeps listening (or half-open) at
/// once. A burst beyond them is parked by `synbusy` and taken as
/// they are refilled, one poll later, not refused or resent.
pub const LISTEN_MAX: usize = 4;
/// Linux's net.core.somaxconn: the most a listen backlog may be.
const SOMAXCONN: usize = 4096;

/// A listener's smoltcp sockets.
pub struct Listener {
    /// Listening, or half-open (a SYN came, the handshake goes on).
    pub half: VecDeque<SocketHandle>,
    /// Established connections not accepted yet, oldest first.
    pub queue: VecDeque<SocketHandle>,
    /// The most `half` and `queue` hold together: backlog + 1.
    pub max: usize,
    /// The listener's waker, armed on every socket in `half` (its
    /// handshake completing wakes the acceptors).
    pub waker: Waker,
}

impl Listener {
    pub fn new(backlog: i32, waker: Waker) -> Listener {
        Listener {
            half: VecDeque::new(),
            queue: VecDeque::new(),
            max: limit(backlog),
            waker,
        }
    }

    /// Every smoltcp socket the listener holds.
    pub fn handles(&self) -> impl Iterator<Item = SocketHandle> + '_ {
        self.half.iter().chain(self.queue.iter()).copied()
    }
}

/// The connections a listen backlog lets wait: backlog + 1, a negative
/// backlog (a huge unsigned one) and anything above somaxconn counting
/// as somaxconn.
pub fn limit(backlog: i32) -> usize {
    (backlog as u32 as usize).min(SOMAXCONN) + 1
}

/// Listeners by inode, for [`on_poll`].
static LISTENERS: Mutex<BTreeSet<u64>> = Mutex::new(BTreeSet::new());

pub fn register(ino: u64) {
    LISTENERS.lock().insert(ino);
}

pub fn unregister(ino: u64) {
    LISTENERS.lock().remove(&ino);
}

/// After a stack poll: every listener moves its new connections to its
/// queue and refills. A listener whose lock is held is skipped: its
/// holder (accept, a readiness check, listen) refills it itself.
pub fn on_poll() {
    if LISTENERS.lock().is_empty() {
        return;
    }
    // The Arcs are dropped after every lock is released (a last
    // reference runs release()).
    let socks: Vec<Arc<InetSocket>> = {
        let ids = LISTENERS.lock();
        let live = LIVE.lock();
        ids.iter().filter_map(|i| live.get(i)?.upgrade()).collect()
    };
    for s in &socks {
        if let Some(mut st) = s.st.try_lock() {
            let queued = |st: &St| st.listen.as_ref().map_or(0, |l| l.queue.len());
            let before = queued(&st);
            refill(&mut st);
            let moved = queued(&st) > before;
            drop(st);
            // A connection its handshake's wake-up did not hand to an
            // acceptor (its listening socket was not armed then).
            if moved {
                s.notify();
            }
        }
    }
}

/// Brings a listener up to date: connections established since the last
/// look move to the accept queue, half-open ones that timed out (Closed)
/// give their place back, fresh listening sockets fill the places (as
/// the bounds and the socket cap allow), and as many SYNs parked for the
/// port as sockets are free are released to the stack (`synbusy`).
/// Whether it released any (the caller should see the stack polled).
///
/// Rule: this runs at every stack change, accept and readiness check,
/// not only at accept: when AF_INET is at its socket cap the gap stays
/// until sockets are freed, and the next look fills it (filling only at
/// accept let each ENOBUFS shrink the listener for good, down to none
/// listening: every SYN dropped, accept waiting forever).
pub fn refill(st: &mut St) -> bool {
    let (Some(local), nodelay) = (st.local, st.nodelay) else {
        return false;
    };
    let Some(l) = st.listen.as_mut() else {
        return false;
    };
    let Listener {
        half,
        queue,
        max,
        waker,
    } = l;
    let mut free = 0;
    let _ = quiet(|_, set| {
        half.retain(|&h| {
            let sock = set.get_mut::<tcp::Socket>(h);
            match sock.state() {
                State::Listen => {
                    super::arm(sock, waker);
                    free += 1;
                    true
                }
                State::SynReceived => {
                    super::arm(sock, waker);
                    true
                }
                State::Closed => {
                    set.remove(h);
                    unreserve();
                    false
                }
                _ => {
                    // The handshake's timeout ends with it: an idle
                    // connection is not reset for being idle.
                    sock.set_timeout(None);
                    queue.push_back(h);
                    false
                }
            }
        });
        // A listen again with a smaller backlog: listening sockets past
        // it go (half-open ones finish; the queue may then hold more
        // than the bound until accepts drain it, as on Linux).
        while half.len() + queue.len() > *max && free > 0 {
            let Some(i) = half
                .iter()
                .position(|&h| set.get::<tcp::Socket>(h).state() == State::Listen)
            else {
                break;
            };
            if let Some(h) = half.remove(i) {
                set.remove(h);
                unreserve();
                free -= 1;
            }
        }
    });
    while half.len() < LISTEN_MAX && half.len() + queue.len() < *max {
        match super::tcp::add_listener(local, nodelay, waker) {
            Ok(h) => {
                half.push_back(h);
                free += 1;
            }
            Err(_) => break,
        }
    }
    super::synbusy::release(local.0, local.1, free) > 0
}

/// The oldest connection waiting to be accepted.
pub fn take(st: &mut St) -> KResult<Option<SocketHandle>> {
    refill(st);
    let l = st.listen.as_mut().ok_or(Errno::EINVAL)?;
    let h = l.queue.pop_front();
    if h.is_some() {
        // Its place in the queue is free: another listening socket.
        refill(st);
    }
    Ok(h)
}
