//! `cargo xtask soak` and `cargo xtask bench braid`: host runners for the
//! braid simulator and benchmark (the threaded harness is
//! `crate::braid_bench`).

/// `soak [SEEDS] [START]`: run simulator seeds; prints and returns 1 on the
/// first failing seed (replay: `soak 1 SEED`).
pub fn soak(args: &[String]) -> i32 {
    let seeds = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000u64);
    let start = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0u64);
    let t = std::time::Instant::now();
    match crate::braid_bench::soak(seeds, start) {
        Ok(()) => {
            println!(
                "soak: {seeds} seeds from {start}: 0 violations in {:.1?}",
                t.elapsed()
            );
            0
        }
        Err(seed) => {
            let sc = braid::sim::Scenario::soak(seed);
            let v = braid::sim::Sim::run(sc).err();
            println!("soak: seed {seed} FAILED: {v:?} in {sc:?}");
            1
        }
    }
}

/// `bench braid [DEPTH] [EVENTS]`: events/s per torus for 1, 3 and 8 tori.
pub fn bench(args: &[String]) -> i32 {
    let depth = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000usize);
    let events = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000_000u64);
    for tori in [1usize, 3, 8] {
        let rates = crate::braid_bench::firehose(tori, depth, events);
        let total: f64 = rates.iter().sum();
        let per = total / tori as f64;
        println!("braid firehose: {tori} tori, queue depth {depth}: {:.1}M events/s per torus, {:.1}M total", per / 1e6, total / 1e6);
    }
    0
}
