//! The event loop `cargo xtask bench braid` times: pop the earliest event,
//! run a small handler, push its follow-up. It lives here, not in xtask,
//! so it is compiled like the kernel's own use of the queue (this crate
//! is optimised even in dev builds), not as unoptimised harness code.

use crate::{Event, EventQueue};

/// A queue `depth` events deep.
pub fn queue(depth: usize) -> EventQueue {
    let mut q = EventQueue::new();
    for i in 0..depth as u64 {
        q.push(Event::slice(i * 7 % 1000, i, 0));
    }
    q
}

/// Runs `events` dequeue → handler → enqueue steps on `q` (stopping early
/// if it empties); returns a checksum so the work cannot be optimised
/// away.
pub fn run(q: &mut EventQueue, events: u64, seed: u64) -> u64 {
    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ seed;
    let mut sum = 0u64;
    for _ in 0..events {
        let Some(ev) = q.pop() else { break };
        // The handler: a little work and a follow-up event.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum = sum.wrapping_add(ev.payload);
        q.push(Event {
            time: ev.time + 1 + (x % 1000),
            ..ev
        });
    }
    sum
}
