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

/// `bench braid [DEPTH] [EVENTS]`: events/s per torus for 1 torus, one
/// per core, 3 and 8 tori (each on its own thread, placed by the host).
pub fn bench(args: &[String]) -> i32 {
    let depth = args
        .first()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000usize);
    let events = args
        .get(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000_000u64);
    // One torus per core is the configuration the kernel runs (a torus
    // per CPU); 3 and 8 show what sharing cores costs.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts = vec![1usize, cores, 3, 8];
    counts.sort_unstable();
    counts.dedup();
    for tori in counts {
        let rates = crate::braid_bench::firehose(tori, depth, events);
        let total: f64 = rates.iter().sum();
        let per = total / tori as f64;
        println!("braid firehose: {tori} tori, queue depth {depth}: {:.1}M events/s per torus, {:.1}M total", per / 1e6, total / 1e6);
    }
    0
}
