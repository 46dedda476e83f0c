//! Several processes on one disk at once, through the real path: rsetest
//! `disk_parallel` in the guest (four processes, each writing and
//! checking its own region of a raw disk and its own file on an ext4
//! disk), the regions then checked on the host image and the ext4 image
//! by `e2fsck -fn`. On one CPU, a task reading the raw disk sleeps while
//! the device works: the CPU is idle meanwhile (/proc/stat), where
//! polling the used ring kept it busy. The guest boots with
//! `blk.spin_us=0` (no look at the device before sleeping): QEMU often
//! completes a 64 KiB request within the default 50 µs look, and then
//! nothing sleeps and no tick finds the CPU idle (1 run in ~8 failed so).

use crate::qemu::Machine;
use crate::scenarios::{exec_opts, expect_lines};
use crate::{artifacts, RunOpts};

/// rsetest's layout (user/rsetest/src/disk_parallel.rs).
const WORKERS: usize = 4;
const REGION: usize = 512 << 10;
const LAST_ROUND: usize = 2;

fn pattern(w: usize, r: usize, i: usize) -> u8 {
    let x = (i as u64)
        .wrapping_mul(0x9e37_79b9_7f4a_7c15)
        .wrapping_add(((w * 131 + r * 7919) as u64) << 32);
    (x >> 29) as u8 ^ (i >> 9) as u8
}

/// The raw disk: the regions, then what the idle check reads. Not the
/// ext4 image's size: the guest tells the two apart by it (`microvm`
/// lists its virtio-mmio disks last attached first).
const RAW_SIZE: u64 = 48 << 20;

pub fn disk_parallel(machine: Machine, smp: u32) -> Result<(), String> {
    crate::ext4_programs::with_empty_image("blk-parallel", "32M", |ext| {
        let raw = artifacts::out_dir().join(format!("blk-parallel-raw-{}.img", std::process::id()));
        let r = std::fs::File::create(&raw)
            .and_then(|f| f.set_len(RAW_SIZE))
            .map_err(|e| format!("{}: {e}", raw.display()))
            .and_then(|()| run(machine, smp, ext, &raw));
        let _ = std::fs::remove_file(&raw);
        r
    })
}

fn run(
    machine: Machine,
    smp: u32,
    ext: &std::path::Path,
    raw: &std::path::Path,
) -> Result<(), String> {
    let opts = RunOpts {
        exec: Some(format!(
            "for d in /dev/vda /dev/vdb; do \
             if [ $(blockdev --getsize64 $d) = {size} ]; then raw=$d; else ext=$d; fi; done; \
             mkdir -p /mnt/d; mount -t ext4 $ext /mnt/d && echo mounted; \
             rsetest disk_parallel $raw /mnt/d; echo \"disk_parallel status $?\"; \
             s0=$(head -1 /proc/stat); \
             for i in 1 2 3 4; do dd if=$raw of=/dev/null bs=1M count={mib} 2>/dev/null; done; \
             s1=$(head -1 /proc/stat); echo \"before $s0\"; echo \"after $s1\"; \
             umount /mnt/d && echo umounted",
            mib = RAW_SIZE >> 20,
            size = RAW_SIZE,
        )),
        adds: crate::ext4_programs::rsetest_only()?,
        disks: vec![ext.to_path_buf(), raw.to_path_buf()],
        machine: Some(machine),
        smp: Some(smp),
        append: vec!["blk.spin_us=0".into()],
        ..Default::default()
    };
    let (c, _) = exec_opts(&opts, "blk-parallel")?;
    expect_lines(
        &c,
        &[
            "mounted".to_string(),
            "disk_parallel status 0".into(),
            "umounted".into(),
        ],
    )?;
    crate::ext4_programs::fsck_clean(ext)?;
    let got = std::fs::read(raw).map_err(|e| format!("{}: {e}", raw.display()))?;
    for w in 0..WORKERS {
        for i in 0..REGION {
            let (have, want) = (got[w * REGION + i], pattern(w, LAST_ROUND, i));
            if have != want {
                return Err(format!(
                    "raw image byte {} is {have:#04x}, expected {want:#04x}",
                    w * REGION + i
                ));
            }
        }
    }
    if smp == 1 {
        let idle = |tag: &str| -> Result<u64, String> {
            c.lines()
                .find_map(|l| l.trim_end().strip_prefix(tag))
                .and_then(|l| l.split_whitespace().nth(4))
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("no {tag:?}/proc/stat line:\n{c}"))
        };
        let (a, b) = (idle("before ")?, idle("after ")?);
        if b <= a {
            return Err(format!(
                "the CPU was never idle while dd read {} MiB of the disk (idle {a} -> {b}): \
                 the reader did not sleep\n{c}",
                4 * (RAW_SIZE >> 20)
            ));
        }
    }
    Ok(())
}
