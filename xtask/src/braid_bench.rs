//! Host benchmark of the braid crate: event throughput per torus on its
//! own thread, on the same [`EventQueue`] the kernel uses, and the
//! simulator's soak entry point re-exported for the host tool. (It lives
//! here, not in `braid`, so that `braid` never links std: the kernel
//! depends on it.)

use std::time::Instant;
use std::vec::Vec;

pub use braid::sim::soak;

/// Events per second for each of `tori` threads, each doing `events`
/// dequeue → handler → enqueue steps ([`braid::firehose::run`]) on a
/// queue `depth` events deep.
pub fn firehose(tori: usize, depth: usize, events: u64) -> Vec<f64> {
    let handles: Vec<_> = (0..tori)
        .map(|t| {
            std::thread::spawn(move || {
                let mut q = braid::firehose::queue(depth);
                let start = Instant::now();
                std::hint::black_box(braid::firehose::run(&mut q, events, t as u64));
                events as f64 / start.elapsed().as_secs_f64()
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or(0.0))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    #[ignore]
    fn print_firehose() {
        for t in [1, 3, 8] {
            let r = super::firehose(t, 1000, 20_000_000);
            std::println!(
                "{t} tori: {:?} total {:.1}M",
                r.iter()
                    .map(|x| (x / 1e6) as u64)
                    .collect::<std::vec::Vec<_>>(),
                r.iter().sum::<f64>() / 1e6
            );
        }
    }
}
