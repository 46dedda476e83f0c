//! `cargo xtask soak`, `cargo xtask model` and `cargo xtask bench braid`:
//! host runners for the braid simulator, model checker and benchmark (the
//! threaded harness is `crate::braid_bench`).

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

/// `model [KEY=VALUE...] [--minutes M]`: the exhaustive model check of the
/// braid protocol (crates/braid/src/model.rs, docs/reliability.md) at the
/// given bounds, in release mode; prints states explored, time and any
/// counterexample path. The model is test-only code of the braid crate
/// (stateright is a dev-dependency), so this runs its ignored test with
/// the bounds in the environment. Keys: tori, procs, crashes, drops,
/// fault_rounds, rounds, delay, k_miss; the defaults are the unit test's.
pub fn model(args: &[String]) -> Result<i32, String> {
    let mut words = Vec::new();
    let mut minutes = 15u64;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--minutes" {
            minutes = it
                .next()
                .and_then(|m| m.parse().ok())
                .ok_or("--minutes needs a number")?;
        } else if a.contains('=') {
            words.push(a.as_str());
        } else {
            return Err(format!(
                "model: unexpected argument {a:?} (want KEY=VALUE or --minutes M)"
            ));
        }
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let st = std::process::Command::new(cargo)
        .current_dir(crate::artifacts::root())
        .args([
            "test",
            "--release",
            "-p",
            "braid",
            "--lib",
            "model::tests::model_from_env",
            "--",
            "--ignored",
            "--exact",
            "--nocapture",
        ])
        .env("BRAID_MODEL", words.join(" "))
        .env("BRAID_MODEL_LIMIT", (minutes * 60).to_string())
        .status()
        .map_err(|e| format!("cargo: {e}"))?;
    Ok(if st.success() { 0 } else { 1 })
}
