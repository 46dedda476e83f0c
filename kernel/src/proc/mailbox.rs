//! The shared-memory mailbox between two tori: one writer (the sending
//! torus), any number of readers, no lock. A reader that races a write
//! sees a torn sequence number and retries.

use core::sync::atomic::{fence, AtomicU64, Ordering};

/// A single-writer seqlock over `W` words.
pub struct Mailbox<const W: usize> {
    seq: AtomicU64,
    words: [AtomicU64; W],
}

impl<const W: usize> Mailbox<W> {
    pub const fn new() -> Self {
        Mailbox {
            seq: AtomicU64::new(0),
            words: [const { AtomicU64::new(0) }; W],
        }
    }

    /// Its sequence number: it moves on every write (liveness of the
    /// writer, without reading the message).
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    pub fn write(&self, b: &[u8]) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s + 1, Ordering::Relaxed);
        fence(Ordering::Release);
        for (w, c) in self.words.iter().zip(b.chunks(8)) {
            let mut x = [0u8; 8];
            x[..c.len()].copy_from_slice(c);
            w.store(u64::from_le_bytes(x), Ordering::Relaxed);
        }
        self.seq.store(s + 2, Ordering::Release);
    }

    /// The message and its sequence number (None: never written, or torn
    /// by a concurrent write several times).
    pub fn read(&self, out: &mut [u8]) -> Option<u64> {
        for _ in 0..4 {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 == 0 || s1 & 1 == 1 {
                core::hint::spin_loop();
                continue;
            }
            for (w, c) in self.words.iter().zip(out.chunks_mut(8)) {
                let n = c.len();
                c.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes()[..n]);
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return Some(s1);
            }
        }
        None
    }
}
